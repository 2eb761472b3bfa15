package powerplot

import (
	"fmt"
	"image/color"
	"math"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// dpi is the resolution of the PNG output; Figure sizes are pixels at it.
const dpi = 96

// pxToPt converts pixels at dpi to points.
func pxToPt(px int) vg.Length { return vg.Length(px) * 72 / dpi }

// band is a span converted to seconds since the origin.
type band struct {
	label string
	a, b  float64
	fill  color.NRGBA // shade; its tag is the same colour, more opaque
}

// baseline is one dashed horizontal line to draw.
type baseline struct {
	watts float64
	style draw.LineStyle
	label string // drawn at the right end of the plot when not empty
}

// legendEntry is one line of the legend.
type legendEntry struct {
	text  string
	style draw.LineStyle
}

// tag is a span label drawn above the data area.
type tag struct {
	text string
	x    float64 // centre, in data units
	row  int     // 0 is the row nearest the data area
	fill color.Color
}

// figure is a Figure prepared for drawing.
type figure struct {
	st         style
	format     string // "png" or "svg"
	wpx, hpx   int
	title      string
	oneMetric  bool // every line has the same metric, named in the y label
	hasOrigin  bool
	origin     time.Time
	xmin, xmax float64
	ymin, ymax float64
	series     []series
	styles     []draw.LineStyle
	window     *band
	runs       []band
	phases     []band
	baselines  []baseline
	legend     []legendEntry
	yLabel     string
	noData     bool
}

func render(format string, f Figure) (vg.CanvasWriterTo, error) {
	wpx, hpx := f.size()
	wpt, hpt := pxToPt(wpx), pxToPt(hpx)
	var cw vg.CanvasWriterTo
	switch format {
	case "png":
		cw = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(wpt, hpt), vgimg.UseDPI(dpi))}
	case "svg":
		cw = vgsvg.New(wpt, hpt)
	default:
		return nil, fmt.Errorf("format %q: %w", format, ErrFormat)
	}
	c := draw.New(cw)
	if len(f.Panels) == 0 {
		fig := prepare(f)
		fig.format = format
		fig.draw(c)
		return cw, nil
	}
	drawPanels(c, format, f, wpx, hpx)
	return cw, nil
}

// drawPanels draws f's title, then its panels one below the other.
func drawPanels(c draw.Canvas, format string, f Figure, wpx, hpx int) {
	n := len(f.Panels)
	st := newStyle(wpx, hpx/n, 1)
	top := c.Max.Y
	if f.Title != "" {
		ts := st.title
		for ts.Width(f.Title) > c.Size().X*0.95 && ts.Font.Size > 6 {
			ts.Font.Size *= 0.92
		}
		c.FillText(ts, vg.Point{X: (c.Min.X + c.Max.X) / 2, Y: top - st.pt(6)}, f.Title)
		top -= ts.Height(f.Title) + st.pt(12)
	}
	ph := (top - c.Min.Y) / vg.Length(n)
	for i, p := range f.Panels {
		p.Width, p.Height, p.Panels = wpx, max(hpx/n, MinHeight), nil
		fig := prepare(p)
		fig.format = format
		hi := top - vg.Length(i)*ph
		fig.draw(draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{Min: vg.Point{X: c.Min.X, Y: hi - ph}, Max: vg.Point{X: c.Max.X, Y: hi}}})
	}
}

// prepare converts f to plot coordinates and reduces its lines.
func prepare(f Figure) *figure {
	fig := &figure{title: f.Title}
	fig.wpx, fig.hpx = f.size()
	fig.st = newStyle(fig.wpx, fig.hpx, len(f.Lines))
	lines := fig.setOrigin(f)
	fig.setXRange(f, lines)
	ymin, ymax := fig.reduceLines(lines)
	labels := lineLabels(f.Lines, fig)
	ymin, ymax = fig.addBaselines(f, labels, ymin, ymax)
	for i := range f.Lines {
		fig.legend = append(fig.legend, legendEntry{text: labels[i], style: fig.styles[i]})
	}
	fig.setYRange(ymin, ymax)
	return fig
}

// sortedLine is a line's samples in time order.
type sortedLine struct {
	ts      []int64
	ws      []float64
	maxStep time.Duration
}

func spanOK(s Span) bool { return !s.Start.IsZero() && !s.End.IsZero() }

// setOrigin sorts the lines (copies, only when needed) and sets the origin
// of the time axis: the window's start, else the first sample, else the
// first span.
func (fig *figure) setOrigin(f Figure) []sortedLine {
	lines := make([]sortedLine, len(f.Lines))
	var first int64 = math.MaxInt64
	for i, l := range f.Lines {
		ts, ws := sortedCopy(l.Times, l.Watts)
		lines[i] = sortedLine{ts, ws, l.MaxStep}
		if len(ts) > 0 && ts[0] < first {
			first = ts[0]
		}
	}
	switch {
	case spanOK(f.Window):
		fig.origin, fig.hasOrigin = f.Window.Start, true
	case first != math.MaxInt64:
		fig.origin, fig.hasOrigin = time.Unix(0, first), true
	default:
		for _, s := range append(append([]Span(nil), f.Runs...), f.Phases...) {
			if spanOK(s) && (!fig.hasOrigin || s.Start.Before(fig.origin)) {
				fig.origin, fig.hasOrigin = s.Start, true
			}
		}
	}
	return lines
}

// originNs is the origin in Unix nanoseconds (0 without one).
func (fig *figure) originNs() int64 {
	if !fig.hasOrigin {
		return 0
	}
	return fig.origin.UnixNano()
}

// setXRange sets the x range (the samples and the spans, in seconds from
// the origin) and the window, run and phase bands.
func (fig *figure) setXRange(f Figure, lines []sortedLine) {
	origin := fig.originNs()
	sec := func(t time.Time) float64 { return float64(t.UnixNano()-origin) / 1e9 }
	xmin, xmax := math.Inf(1), math.Inf(-1)
	extend := func(a, b float64) {
		xmin, xmax = math.Min(xmin, a), math.Max(xmax, b)
	}
	for _, l := range lines {
		if n := len(l.ts); n > 0 {
			extend(float64(l.ts[0]-origin)/1e9, float64(l.ts[n-1]-origin)/1e9)
		}
	}
	toBands := func(spans []Span, prefix string) []band {
		var out []band
		for i, s := range spans {
			if !spanOK(s) {
				continue
			}
			a, b := sec(s.Start), sec(s.End)
			if b < a {
				a, b = b, a
			}
			label := s.Label
			if label == "" && prefix != "" {
				label = prefix + " " + strconv.Itoa(i+1)
			}
			out = append(out, band{label: label, a: a, b: b})
			extend(a, b)
		}
		return out
	}
	if w := toBands([]Span{f.Window}, ""); len(w) == 1 {
		fig.window = &w[0]
	}
	fig.runs = toBands(f.Runs, "run")
	for i := range fig.runs {
		fig.runs[i].fill = runFills[i%len(runFills)]
	}
	// Phases with the same label share a colour, so that the phases of
	// repeated runs read alike; distinct labels take the colours in turn.
	fig.phases = toBands(f.Phases, "phase")
	colourOf := map[string]int{}
	for i, b := range fig.phases {
		k, ok := colourOf[b.label]
		if !ok {
			k = len(colourOf)
			colourOf[b.label] = k
		}
		fig.phases[i].fill = phaseFills[k%len(phaseFills)]
	}
	if xmin > xmax { // nothing at all
		xmin, xmax = 0, 1
	}
	if xmin == xmax {
		xmin, xmax = xmin-0.5, xmax+0.5
	}
	fig.xmin, fig.xmax = xmin, xmax
}

// reduceLines reduces the lines to about two points per pixel column and
// returns the range of their values.
func (fig *figure) reduceLines(lines []sortedLine) (ymin, ymax float64) {
	origin := fig.originNs()
	bucket := (fig.xmax - fig.xmin) / float64(fig.wpx)
	ymin, ymax = math.Inf(1), math.Inf(-1)
	fig.noData = true
	for i, l := range lines {
		gap := gapThreshold(l.ts)
		switch {
		case l.maxStep < 0:
			gap = math.MaxInt64
		case l.maxStep > 0:
			gap = int64(l.maxStep)
		}
		s := reduce(l.ts, l.ws, origin, gap, fig.xmin, bucket)
		fig.series = append(fig.series, s)
		fig.styles = append(fig.styles, fig.st.lineStyle(i))
		if s.points > 0 {
			fig.noData = false
			ymin, ymax = math.Min(ymin, s.ymin), math.Max(ymax, s.ymax)
		}
	}
	return ymin, ymax
}

// lineLabels returns the legend's labels, "node metric", or "node" when all
// lines share one metric (which the y label then names).
func lineLabels(lines []Line, fig *figure) []string {
	oneMetric := len(lines) > 0
	for _, l := range lines {
		if l.Metric != lines[0].Metric {
			oneMetric = false
		}
	}
	fig.oneMetric = oneMetric
	fig.yLabel = "power (W)"
	if oneMetric && lines[0].Metric != "" {
		fig.yLabel += " — " + lines[0].Metric
	}
	labels := make([]string, len(lines))
	for i, l := range lines {
		parts := []string{}
		if l.Node != "" {
			parts = append(parts, l.Node)
		}
		if l.Metric != "" && (!oneMetric || l.Node == "") {
			parts = append(parts, l.Metric)
		}
		if len(parts) == 0 {
			parts = append(parts, "line "+strconv.Itoa(i+1))
		}
		labels[i] = strings.Join(parts, " ")
	}
	return labels
}

// addBaselines adds the baselines: on their lines' labels and colours, or
// as labelled lines of their own; the y range grows to include them.
func (fig *figure) addBaselines(f Figure, labels []string, ymin, ymax float64) (float64, float64) {
	for _, lv := range f.Baselines {
		if math.IsNaN(lv.Watts) || math.IsInf(lv.Watts, 0) {
			continue
		}
		matched := false
		if lv.Node != "" {
			for i, l := range f.Lines {
				if l.Node != lv.Node || (lv.Metric != "" && lv.Metric != l.Metric) {
					continue
				}
				matched = true
				labels[i] += ", baseline " + formatWatts(lv.Watts)
				fig.baselines = append(fig.baselines, baseline{
					watts: lv.Watts,
					style: fig.st.baselineStyle(fig.styles[i].Color),
				})
			}
		}
		if !matched {
			name := strings.TrimSpace(lv.Node + " " + lv.Metric)
			if name == "" || (fig.oneMetric && lv.Node == "") {
				name = "baseline"
			} else {
				name += " baseline"
			}
			fig.baselines = append(fig.baselines, baseline{
				watts: lv.Watts,
				style: fig.st.baselineStyle(globalBase),
				label: name + " " + formatWatts(lv.Watts),
			})
		}
		ymin, ymax = math.Min(ymin, lv.Watts), math.Max(ymax, lv.Watts)
	}
	return ymin, ymax
}

// setYRange sets the y range: from 0 (or a bit below a negative minimum)
// to a bit above the peak.
func (fig *figure) setYRange(ymin, ymax float64) {
	switch {
	case ymin > ymax: // no value at all
		ymin, ymax = 0, 1
	case ymin >= 0:
		ymin = 0
	default:
		ymin -= 0.05 * (ymax - ymin)
	}
	if ymax <= ymin {
		ymax = ymin + 1
	}
	ymax += 0.06 * (ymax - ymin)
	fig.ymin, fig.ymax = ymin, ymax
}

// formatWatts formats a power for a label.
func formatWatts(w float64) string {
	if math.Abs(w) >= 1000 {
		return strconv.FormatFloat(w, 'f', 0, 64) + " W"
	}
	return strconv.FormatFloat(w, 'f', 1, 64) + " W"
}

// newPlot returns the plot with its axes set, without plotters.
func (fig *figure) newPlot(dataWidth, dataHeight vg.Length) *plot.Plot {
	st := fig.st
	p := plot.New()
	p.BackgroundColor = nil // the canvas is already white
	for _, ax := range []*plot.Axis{&p.X, &p.Y} {
		ax.Padding = 0
		ax.Label.TextStyle.Font = st.axisLabel.Font
		ax.Label.TextStyle.Color = st.axisLabel.Color
		ax.Label.Padding = st.pt(4)
		ax.Tick.Label.Font = st.tick.Font
		ax.Tick.Label.Color = st.tick.Color
		ax.Tick.Length = st.pt(6)
		ax.Tick.LineStyle.Width = st.pt(0.6)
		ax.LineStyle.Width = st.pt(0.8)
	}
	p.X.Min, p.X.Max = fig.xmin, fig.xmax
	p.Y.Min, p.Y.Max = fig.ymin, fig.ymax
	p.X.Tick.Marker = niceTicks{n: max(3, int(dataWidth/st.pt(95)))}
	p.Y.Tick.Marker = niceTicks{n: max(3, int(dataHeight/st.pt(50)))}
	if fig.hasOrigin {
		p.X.Label.Text = "time since " + fig.origin.UTC().Format(time.RFC3339Nano) + " (s)"
	} else {
		p.X.Label.Text = "time (s)"
	}
	p.Y.Label.Text = fig.yLabel
	return p
}

// draw lays the figure out on c: title, span tags, plot, legend.
func (fig *figure) draw(c draw.Canvas) {
	st := fig.st
	margin := st.pt(10)
	area := c.Rectangle
	area.Min.X += margin
	area.Max.X -= margin
	area.Min.Y += margin
	area.Max.Y -= margin

	// Title, shrunk to fit the width.
	top := area.Max.Y
	if fig.title != "" {
		ts := st.title
		for ts.Width(fig.title) > area.Size().X && ts.Font.Size > 6 {
			ts.Font.Size *= 0.92
		}
		c.FillText(ts, vg.Point{X: (area.Min.X + area.Max.X) / 2, Y: top}, fig.title)
		top -= ts.Height(fig.title) + st.pt(8)
	}

	// Legend, at the bottom, in as many columns as fit.
	lg := fig.layoutLegend(area.Size().X, 0.25*area.Size().Y)
	bottom := area.Min.Y
	if lg.rows > 0 {
		bottom += lg.height + st.pt(8)
	}

	// The plot, with room above its data area for the span tags.
	plotRect := vg.Rectangle{Min: vg.Point{X: area.Min.X, Y: bottom}, Max: vg.Point{X: area.Max.X, Y: top}}
	p := fig.newPlot(plotRect.Size().X*0.9, plotRect.Size().Y*0.8)
	plotC := draw.Canvas{Canvas: c.Canvas, Rectangle: plotRect}
	data := p.DataCanvas(plotC)
	rowH := st.tag.Height("Mg") * 1.45
	tags, rows := fig.placeTags(p, data, max(2, int(0.12*area.Size().Y/rowH)))
	if rows > 0 {
		plotC.Max.Y -= vg.Length(rows)*rowH + st.pt(4)
	}

	p.Add(&bandsPlotter{fig: fig})
	p.Add(&gridPlotter{color: gridColor, width: st.pt(0.6)})
	p.Add(&baselinesPlotter{fig: fig})
	for i, s := range fig.series {
		chunk := math.MaxInt
		if fig.format == "png" {
			chunk = strokeChunk
		}
		p.Add(&seriesPlotter{s: s, style: fig.styles[i], chunk: chunk})
	}
	p.Add(&notesPlotter{fig: fig, tags: tags, rowH: rowH})
	p.Draw(plotC)

	if lg.rows > 0 {
		fig.drawLegend(c, lg, vg.Rectangle{Min: area.Min, Max: vg.Point{X: area.Max.X, Y: area.Min.Y + lg.height}})
	}
}

// legendLayout is the grid of the legend entries.
type legendLayout struct {
	text          text.Style
	entries       []legendEntry // those shown; the last may be "+N more"
	rows, cols    int
	colW, rowH    vg.Length
	thumbW, gap   vg.Length
	height, width vg.Length
}

// minLegendFont is the smallest legend font size, in points.
const minLegendFont = 6

// layoutLegend arranges the legend in as many columns as fit in width,
// filled column by column, within maxHeight: the font shrinks (down to
// minLegendFont) and, as a last resort, the last entries are replaced by
// "+N more".
func (fig *figure) layoutLegend(width, maxHeight vg.Length) legendLayout {
	st := fig.st
	if len(fig.legend) == 0 {
		return legendLayout{}
	}
	lg := legendLayout{text: st.legend, thumbW: st.pt(26), gap: st.pt(6)}
	lg.text.Font.Size = max(minLegendFont, lg.text.Font.Size)
	colGap := st.pt(18)
	for {
		lg.entries = fig.legend
		lg.rowH = lg.text.Height("Mg") * 1.3
		var widest vg.Length
		for _, e := range lg.entries {
			widest = max(widest, lg.text.Width(e.text))
		}
		lg.colW = lg.thumbW + lg.gap + widest + colGap
		n := len(lg.entries)
		lg.cols = max(1, min(n, int((width+colGap)/lg.colW)))
		lg.rows = (n + lg.cols - 1) / lg.cols
		if vg.Length(lg.rows)*lg.rowH <= maxHeight || lg.text.Font.Size <= minLegendFont {
			break
		}
		lg.text.Font.Size = max(minLegendFont, lg.text.Font.Size*0.85)
	}
	if maxRows := max(1, int(maxHeight/lg.rowH)); lg.rows > maxRows {
		lg.rows = maxRows
		keep := lg.rows*lg.cols - 1
		more := legendEntry{text: fmt.Sprintf("+%d more", len(lg.entries)-keep)}
		lg.entries = append(lg.entries[:keep:keep], more)
	}
	n := len(lg.entries)
	lg.cols = (n + lg.rows - 1) / lg.rows // balance the columns
	lg.height = vg.Length(lg.rows) * lg.rowH
	lg.width = vg.Length(lg.cols)*lg.colW - colGap
	return lg
}

// drawLegend draws the entries column by column, centred in r.
func (fig *figure) drawLegend(c draw.Canvas, lg legendLayout, r vg.Rectangle) {
	x0 := r.Min.X + max(0, (r.Size().X-lg.width)/2)
	for k, e := range lg.entries {
		col, row := k/lg.rows, k%lg.rows
		x := x0 + vg.Length(col)*lg.colW
		y := r.Max.Y - (vg.Length(row)+0.5)*lg.rowH
		if e.style.Color != nil {
			ls := e.style
			ls.Width = max(ls.Width, fig.st.pt(1.5))
			c.StrokeLine2(ls, x, y, x+lg.thumbW, y)
		}
		c.FillText(lg.text, vg.Point{X: x + lg.thumbW + lg.gap, Y: y}, e.text)
	}
}

// maxTagRows bounds the rows of run tags, and of phase tags, above the
// data area.
const maxTagRows = 3

// placeTags assigns each run and phase label a row above the data area so
// that labels of a row do not overlap: runs first (rows nearest the data),
// then phases above them, in at most budget rows (at least 2). When the
// rows are full, a label goes where it overlaps least. It returns the tags
// and the number of rows used.
func (fig *figure) placeTags(p *plot.Plot, data draw.Canvas, budget int) ([]tag, int) {
	trX, _ := p.Transforms(&data)
	st := fig.st
	pad := st.pt(4)
	place := func(bands []band, base, maxRows int) ([]tag, int) {
		maxRows = max(1, maxRows)
		var out []tag
		var rightEdge []vg.Length // per row, the right end of its last tag
		for _, b := range bands {
			a, e := math.Max(b.a, fig.xmin), math.Min(b.b, fig.xmax)
			if a > e || b.label == "" {
				continue
			}
			x := (a + e) / 2
			half := st.tag.Width(b.label)/2 + pad
			l := trX(x) - half
			row := -1
			for r, edge := range rightEdge {
				if l > edge+pad {
					row = r
					break
				}
			}
			if row < 0 {
				if len(rightEdge) < maxRows {
					row = len(rightEdge)
					rightEdge = append(rightEdge, 0)
				} else { // overlap where the overlap is the least
					row = 0
					for r, edge := range rightEdge {
						if edge < rightEdge[row] {
							row = r
						}
					}
				}
			}
			rightEdge[row] = trX(x) + half
			fill := b.fill
			fill.A = uint8(min(255, int(fill.A)*3))
			out = append(out, tag{text: b.label, x: x, row: base + row, fill: fill})
		}
		return out, len(rightEdge)
	}
	runMax := maxTagRows
	if len(fig.phases) > 0 {
		runMax = min(maxTagRows, budget/2)
	}
	runTags, runRows := place(fig.runs, 0, min(runMax, budget))
	phaseTags, phaseRows := place(fig.phases, runRows, min(maxTagRows, budget-runRows))
	return append(runTags, phaseTags...), runRows + phaseRows
}

// bandsPlotter shades the window, the runs and the phases.
type bandsPlotter struct{ fig *figure }

func (bp *bandsPlotter) Plot(c draw.Canvas, p *plot.Plot) {
	fig := bp.fig
	trX, _ := p.Transforms(&c)
	fill := func(b band, col color.Color) (x0, x1 vg.Length, ok bool) {
		x0 = max(trX(b.a), c.Min.X)
		x1 = min(trX(b.b), c.Max.X)
		if x0 > x1 {
			return 0, 0, false
		}
		x1 = max(x1, x0+fig.st.pt(0.75)) // a zero-length span stays visible
		c.FillPolygon(col, []vg.Point{{X: x0, Y: c.Min.Y}, {X: x1, Y: c.Min.Y}, {X: x1, Y: c.Max.Y}, {X: x0, Y: c.Max.Y}})
		return x0, x1, true
	}
	edges := func(x0, x1 vg.Length, ls draw.LineStyle) {
		c.StrokeLine2(ls, x0, c.Min.Y, x0, c.Max.Y)
		c.StrokeLine2(ls, x1, c.Min.Y, x1, c.Max.Y)
	}
	if w := fig.window; w != nil {
		if x0, x1, ok := fill(*w, windowFill); ok {
			edges(x0, x1, draw.LineStyle{Color: windowEdge, Width: fig.st.pt(0.9)})
		}
	}
	for _, b := range fig.phases {
		fill(b, b.fill)
	}
	// Runs are shaded only without phases (two tints over the phase
	// colours would be unreadable); their edges are always drawn.
	edge := draw.LineStyle{Color: runEdge, Width: fig.st.pt(0.8)}
	for _, b := range fig.runs {
		if len(fig.phases) == 0 {
			if x0, x1, ok := fill(b, b.fill); ok {
				edges(x0, x1, edge)
			}
			continue
		}
		x0, x1 := trX(b.a), trX(b.b)
		for _, x := range []vg.Length{x0, x1} {
			if x >= c.Min.X && x <= c.Max.X {
				c.StrokeLine2(edge, x, c.Min.Y, x, c.Max.Y)
			}
		}
	}
}

// gridPlotter draws light lines at the major ticks.
type gridPlotter struct {
	color color.Color
	width vg.Length
}

func (g *gridPlotter) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	ls := draw.LineStyle{Color: g.color, Width: g.width}
	for _, t := range p.X.Tick.Marker.Ticks(p.X.Min, p.X.Max) {
		if !t.IsMinor() && t.Value >= p.X.Min && t.Value <= p.X.Max {
			x := trX(t.Value)
			c.StrokeLine2(ls, x, c.Min.Y, x, c.Max.Y)
		}
	}
	for _, t := range p.Y.Tick.Marker.Ticks(p.Y.Min, p.Y.Max) {
		if !t.IsMinor() && t.Value >= p.Y.Min && t.Value <= p.Y.Max {
			y := trY(t.Value)
			c.StrokeLine2(ls, c.Min.X, y, c.Max.X, y)
		}
	}
}

// baselinesPlotter draws the baselines as dashed horizontal lines.
type baselinesPlotter struct{ fig *figure }

func (bp *baselinesPlotter) Plot(c draw.Canvas, p *plot.Plot) {
	_, trY := p.Transforms(&c)
	for _, b := range bp.fig.baselines {
		y := trY(b.watts)
		c.StrokeLine2(b.style, c.Min.X, y, c.Max.X, y)
	}
}

// strokeChunk is the number of segments stroked as one path in PNG.
const strokeChunk = 16

// seriesPlotter strokes one reduced line, one path per segment.
type seriesPlotter struct {
	s     series
	style draw.LineStyle
	chunk int // segments per stroked path
}

func (sp *seriesPlotter) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	c.SetLineStyle(sp.style)
	var pts []vg.Point
	for _, seg := range sp.s.segs {
		pts = pts[:0]
		for _, q := range seg {
			pts = append(pts, vg.Point{X: trX(q.x), Y: trY(q.y)})
		}
		if len(pts) == 1 { // an isolated sample: a short dash
			h := max(sp.style.Width, 1)
			pts = []vg.Point{{X: pts[0].X - h, Y: pts[0].Y}, {X: pts[0].X + h, Y: pts[0].Y}}
		}
		for _, l := range c.ClipLinesXY(pts) {
			// Stroke long lines in pieces sharing their end points: the
			// PNG rasteriser (freetype) slows down quadratically with the
			// number of cells one path covers on a row, and a dense line
			// covers many. Pieces of 16 segments draw 32 lines of 720k
			// samples in about 0.3 s instead of 5.5 s, and join
			// invisibly. SVG keeps one path per segment (smaller file).
			for lo := 0; lo < len(l)-1; lo += sp.chunk {
				hi := min(lo+sp.chunk, len(l)-1)
				path := make(vg.Path, 0, hi-lo+1)
				path.Move(l[lo])
				for _, q := range l[lo+1 : hi+1] {
					path.Line(q)
				}
				c.Stroke(path)
			}
		}
	}
}

// notesPlotter writes the global baseline labels, the "no data" note and
// the run and phase tags above the data area.
type notesPlotter struct {
	fig  *figure
	tags []tag
	rowH vg.Length
}

func (np *notesPlotter) Plot(c draw.Canvas, p *plot.Plot) {
	fig, st := np.fig, np.fig.st
	trX, trY := p.Transforms(&c)
	lbl := st.tag
	lbl.XAlign, lbl.YAlign = draw.XRight, draw.YBottom
	for _, b := range fig.baselines {
		if b.label != "" {
			lbl.Color = b.style.Color
			c.FillText(lbl, vg.Point{X: c.Max.X - st.pt(4), Y: trY(b.watts) + st.pt(2)}, b.label)
		}
	}
	if fig.noData {
		c.FillText(st.note, c.Center(), "no data")
	}
	pad := st.pt(4)
	for _, t := range np.tags {
		x := trX(t.x)
		half := st.tag.Width(t.text)/2 + pad
		x = min(max(x, c.Min.X+half), c.Max.X-half) // keep the tag over the plot
		y0 := c.Max.Y + st.pt(3) + vg.Length(t.row)*np.rowH
		y1 := y0 + np.rowH - st.pt(2)
		c.FillPolygon(t.fill, []vg.Point{{X: x - half, Y: y0}, {X: x + half, Y: y0}, {X: x + half, Y: y1}, {X: x - half, Y: y1}})
		c.FillText(st.tag, vg.Point{X: x, Y: (y0 + y1) / 2}, t.text)
	}
}
