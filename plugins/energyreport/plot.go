package energyreport

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/alumet-go/alumet-agent/energy"
	"github.com/alumet-go/alumet-agent/internal/powerplot"
)

// plot draws the power of every series over the runs to plot_file: one
// line per (node, metric) across the runs, the window (all the runs)
// shaded, each run and phase shaded, the baselines dashed, and the total
// energy in the title.
//
// When a node's sources are compared, the plot has one panel per node
// instead, its sources as lines (see panels).
func (r *report) plot(runs []runReport, baselines map[nodeMetric]float64) error {
	return powerplot.Write(r.cfg.PlotFile, panels(runs, r.figure(runs, baselines)))
}

// maxPanels bounds the panels of a plot (560 px each, 10,000 px at most).
const maxPanels = 16

// panels splits f into one panel per node when some node of the runs has
// a comparison (and there are at most maxPanels nodes): each panel has
// the node's lines, labelled by source, under the node's name; the spans
// are the figure's. Otherwise f is returned as it is.
func panels(runs []runReport, f powerplot.Figure) powerplot.Figure {
	compared := false
	for _, rr := range runs {
		compared = compared || len(rr.compared) > 0
	}
	var nodes []string
	for _, l := range f.Lines {
		if !slices.Contains(nodes, l.Node) {
			nodes = append(nodes, l.Node)
		}
	}
	if !compared || len(nodes) > maxPanels {
		return f
	}
	out := powerplot.Figure{Title: f.Title, Width: f.Width}
	for _, n := range nodes {
		p := powerplot.Figure{Title: n, Window: f.Window, Runs: f.Runs, Phases: f.Phases}
		for _, l := range f.Lines {
			if l.Node == n {
				l.Node, l.Metric = "", sourceLabel(l.Metric)
				p.Lines = append(p.Lines, l)
			}
		}
		for _, b := range f.Baselines {
			if b.Node == n {
				b.Node, b.Metric = "", sourceLabel(b.Metric)
				p.Baselines = append(p.Baselines, b)
			}
		}
		out.Panels = append(out.Panels, p)
	}
	return out
}

// figure is the plot of plot_file; see plot.
func (r *report) figure(runs []runReport, baselines map[nodeMetric]float64) powerplot.Figure {
	f := powerplot.Figure{
		Window: powerplot.Span{Start: runs[0].win.start, End: runs[len(runs)-1].win.end},
	}
	lines := map[nodeMetric]*powerplot.Line{}
	line := func(k nodeMetric) *powerplot.Line {
		l := lines[k]
		if l == nil {
			l = &powerplot.Line{Node: k.node, Metric: k.metric}
			lines[k] = l
		}
		return l
	}
	keys := slices.SortedFunc(maps.Keys(r.series), func(a, b seriesKey) int {
		return cmp.Or(strings.Compare(a.node, b.node), strings.Compare(a.metric, b.metric), cmp.Compare(a.run, b.run))
	})
	// A line with a compacted series mixes its reduced part (points far
	// apart) with raw samples: its gaps are marked with NaN (at the
	// series' gap threshold), not inferred from its steps.
	marked := map[nodeMetric]int64{}
	for _, k := range keys {
		if c := r.series[k].done; c != nil {
			nm := k.lineKey()
			if g, ok := marked[nm]; !ok || c.plotGap() < g {
				marked[nm] = c.plotGap()
			}
		}
	}
	last := map[nodeMetric]*int64{}
	add := func(k nodeMetric, xs []rawSample) {
		l := line(k)
		gap, ok := marked[k]
		if !ok {
			l.Times = slices.Grow(l.Times, len(xs))
			l.Watts = slices.Grow(l.Watts, len(xs))
			for _, x := range xs {
				l.Times = append(l.Times, x.t)
				l.Watts = append(l.Watts, x.w)
			}
			return
		}
		l.MaxStep = -1
		if last[k] == nil {
			last[k] = new(int64)
		}
		sorted := slices.IsSortedFunc(xs, func(a, b rawSample) int { return cmp.Compare(a.t, b.t) })
		if !sorted {
			xs = slices.Clone(xs)
			slices.SortStableFunc(xs, func(a, b rawSample) int { return cmp.Compare(a.t, b.t) })
		}
		for _, x := range appendMarked(nil, xs, last[k], gap) {
			l.Times = append(l.Times, x.t)
			l.Watts = append(l.Watts, x.w)
		}
	}
	// The history (baseline = before:D) first, the evidence of the idle
	// level, then the runs in order: each line is built in time order.
	r.mu.Lock()
	for k, samples := range r.hist {
		add(k, samples)
	}
	r.mu.Unlock()
	// An energy series' samples are the mean power of the interval that
	// ends at each: drawn as steps over those intervals.
	intervalLines := map[nodeMetric]bool{}
	for _, k := range keys {
		s := r.series[k]
		nm := k.lineKey()
		if s.kind != powerKind {
			intervalLines[nm] = true
		}
		if c := s.done; c != nil {
			if lp := last[nm]; lp != nil && len(c.plot) > 0 && c.plot[0].t-*lp > marked[nm] {
				l := line(nm)
				l.Times = append(l.Times, *lp+(c.plot[0].t-*lp)/2)
				l.Watts = append(l.Watts, math.NaN())
			}
			l := line(nm)
			l.MaxStep = -1
			for _, x := range c.plot {
				l.Times = append(l.Times, x.t)
				l.Watts = append(l.Watts, x.w)
			}
			if last[nm] == nil {
				last[nm] = new(int64)
			}
			if c.plotLast != 0 {
				*last[nm] = c.plotLast
			}
		}
		var xs []rawSample
		if s.done != nil || marked[nm] != 0 {
			xs = make([]rawSample, 0, s.samples.n)
		}
		if xs != nil {
			s.samples.all(func(x rawSample) { xs = append(xs, x) })
			add(nm, xs)
		} else {
			l := line(nm)
			l.Times = slices.Grow(l.Times, s.samples.n)
			l.Watts = slices.Grow(l.Watts, s.samples.n)
			s.samples.all(func(x rawSample) {
				l.Times = append(l.Times, x.t)
				l.Watts = append(l.Watts, x.w)
			})
		}
		s.samples = sampleStore{} // integrated already: only the line needs them now
	}
	for _, k := range slices.SortedFunc(maps.Keys(lines), func(a, b nodeMetric) int {
		return cmp.Or(strings.Compare(a.node, b.node), strings.Compare(a.metric, b.metric))
	}) {
		if intervalLines[k] {
			f.Lines = append(f.Lines, intervalSteps(*lines[k]))
		} else {
			f.Lines = append(f.Lines, *lines[k])
		}
		if b, ok := r.baselineOf(k, baselines); ok {
			f.Baselines = append(f.Baselines, powerplot.Level{Node: k.node, Metric: k.metric, Watts: b})
		}
	}
	rep := repeated(runs)
	totalBy := map[string]float64{}
	nodes := map[string]bool{}
	for _, rr := range runs {
		if rep {
			f.Runs = append(f.Runs, powerplot.Span{Label: fmt.Sprintf("run %d", rr.win.run), Start: rr.win.start, End: rr.win.end})
		}
		for _, ph := range rr.phases {
			if ph.name == unmarkedPhase && ph.end.Sub(ph.start) < rr.win.end.Sub(rr.win.start)/50 {
				continue // the instant before the command's first mark: only clutter on a plot
			}
			f.Phases = append(f.Phases, powerplot.Span{Label: ph.name, Start: ph.start, End: ph.end})
		}
		for _, t := range totals(rr.rows) {
			if t.hasData {
				totalBy[t.metric] += t.energy
			}
		}
		for _, rw := range rr.rows {
			nodes[rw.key.node] = true
		}
	}
	var parts []string
	for _, m := range slices.Sorted(maps.Keys(totalBy)) {
		parts = append(parts, fmt.Sprintf("%v (%s)", energy.Joules(totalBy[m]), m))
	}
	title := fmt.Sprintf("%d node", len(nodes))
	if len(nodes) != 1 {
		title += "s"
	}
	if len(nodes) == 1 {
		for n := range nodes {
			title = n
		}
	}
	if rep {
		title += fmt.Sprintf(", %d runs", len(runs))
	}
	if len(parts) > 0 {
		title += " — " + strings.Join(parts, ", ")
	}
	f.Title = title
	return f
}

// sourceLabel names a line of a panel: the source, then the metric (a
// line key: the metric and maybe a counter's part).
func sourceLabel(metric string) string {
	name, _, _ := strings.Cut(metric, " ")
	if src, ok := sourceOf(name); ok {
		return src.label + " — " + metric
	}
	return metric
}

// intervalSteps draws l, whose samples are each the mean power of the
// interval since the one before (the first one's: one median interval), as
// steps: each value held over its interval, a vertical line between.
func intervalSteps(l powerplot.Line) powerplot.Line {
	n := len(l.Times)
	if n < 2 {
		return l
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(l.Times[a], l.Times[b]) })
	var steps []int64
	for j := 1; j < n; j++ {
		if d := l.Times[idx[j]] - l.Times[idx[j-1]]; d > 0 {
			steps = append(steps, d)
		}
	}
	if len(steps) == 0 {
		return l
	}
	slices.Sort(steps)
	med := steps[len(steps)/2]
	out := powerplot.Line{Node: l.Node, Metric: l.Metric, MaxStep: -1, Times: make([]int64, 0, 2*n), Watts: make([]float64, 0, 2*n)}
	for j, i := range idx {
		start := l.Times[i] - med
		if j > 0 {
			start = l.Times[idx[j-1]]
		}
		out.Times = append(out.Times, start, l.Times[i])
		out.Watts = append(out.Watts, l.Watts[i], l.Watts[i])
	}
	return out
}
