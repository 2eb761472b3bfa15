package powerplot

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alumet-go/alumet-agent/internal/racetest"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// wave returns a line of n samples every step from start: a slow sine
// around base with a spike every 1000 samples.
func wave(node, metric string, start time.Time, step time.Duration, n int, base float64) Line {
	l := Line{Node: node, Metric: metric, Times: make([]int64, n), Watts: make([]float64, n)}
	for i := range n {
		l.Times[i] = start.Add(time.Duration(i) * step).UnixNano()
		l.Watts[i] = base + 30*math.Sin(float64(i)/200) + float64(i%7)
		if i%1000 == 500 {
			l.Watts[i] += 80
		}
	}
	return l
}

func lines(n, samples int) []Line {
	out := make([]Line, n)
	for i := range out {
		out[i] = wave(fmt.Sprintf("taurus-%d", i+1), "wattmetre_power_watt", t0, 100*time.Millisecond, samples, 100+5*float64(i))
	}
	return out
}

// figures are the shapes every format must render.
func figures() map[string]Figure {
	runs := Figure{
		Title:  "taurus-7 — 41.3 kJ (wattmetre_power_watt)",
		Lines:  lines(2, 3000),
		Window: Span{Start: t0.Add(10 * time.Second), End: t0.Add(290 * time.Second)},
		Baselines: []Level{
			{Node: "taurus-1", Watts: 95},
			{Node: "taurus-2", Metric: "wattmetre_power_watt", Watts: 101.5},
			{Watts: 60},                           // global
			{Node: "nowhere", Watts: 20},          // matches no line: drawn as global
			{Node: "taurus-1", Watts: math.NaN()}, // ignored
		},
	}
	for i := range 3 {
		s := t0.Add(time.Duration(20+90*i) * time.Second)
		runs.Runs = append(runs.Runs, Span{Start: s, End: s.Add(80 * time.Second)})
		runs.Phases = append(runs.Phases,
			Span{Label: "warmup", Start: s, End: s.Add(10 * time.Second)},
			Span{Label: "stress-ng --cpu 16", Start: s.Add(10 * time.Second), End: s.Add(70 * time.Second)},
			Span{Label: "cooldown", Start: s.Add(70 * time.Second), End: s.Add(80 * time.Second)},
		)
	}
	runsOnly := runs
	runsOnly.Phases = nil
	tiny := runs
	tiny.Width, tiny.Height = MinWidth, MinHeight
	mixed := Figure{Lines: lines(3, 500)}
	mixed.Lines[1].Metric = "bmc_node_power_watt"
	mixed.Lines[2].Node = ""
	// Rendering under -race is slow: most shapes use a small picture, a
	// few keep the default size.
	small := func(f Figure) Figure {
		f.Width, f.Height = 640, 360
		return f
	}
	return map[string]Figure{
		"empty":          {},
		"empty-titled":   small(Figure{Title: "taurus-7 — 0 J", Window: Span{Start: t0, End: t0.Add(time.Minute)}}),
		"nil-slices":     small(Figure{Lines: []Line{{Node: "a"}, {Node: "b", Times: []int64{}, Watts: nil}}}),
		"all-nan":        small(Figure{Lines: []Line{{Node: "a", Times: []int64{1, 2}, Watts: []float64{math.NaN(), math.Inf(1)}}}}),
		"one-sample":     small(Figure{Lines: []Line{{Node: "a", Times: []int64{t0.UnixNano()}, Watts: []float64{42}}}}),
		"1-line":         {Title: "one", Lines: lines(1, 2000)},
		"2-lines":        small(Figure{Title: "two", Lines: lines(2, 2000)}),
		"32-lines":       {Title: "thirty-two", Lines: lines(32, 1000)},
		"mixed-metrics":  small(mixed),
		"runs-phases":    runs,
		"runs-only":      small(runsOnly),
		"tiny":           tiny,
		"negative-watts": small(Figure{Lines: []Line{{Node: "a", Times: []int64{1e9, 2e9, 3e9}, Watts: []float64{-5, 10, 3}}}}),
		"spans-only":     small(Figure{Phases: []Span{{Label: "p", Start: t0, End: t0.Add(time.Second)}, {Label: "zero-ignored"}}}),
		// One panel per node, 560 px each: the comparison's figure.
		"panels": {Title: "two nodes", Panels: []Figure{
			{Title: "a", Lines: []Line{{Metric: "m1", Times: []int64{1e9, 2e9}, Watts: []float64{1, 2}}, {Metric: "m2", Times: []int64{1e9, 2e9}, Watts: []float64{2, 1}}}},
			{Title: "b", Lines: []Line{{Metric: "m1", Times: []int64{1e9, 2e9}, Watts: []float64{3, 2}}}, Window: Span{Start: t0, End: t0.Add(time.Second)}},
		}},
		"panel-empty": {Panels: []Figure{{}}},
	}
}

func TestRenderPNG(t *testing.T) {
	racetest.WithoutRace(t) // one goroutine; TestRenderConcurrent and TestWrite render PNG under -race
	for name, f := range figures() {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			require.NoError(t, Render(&buf, "png", f))
			img, err := png.Decode(&buf)
			require.NoError(t, err)
			w, h := f.size()
			if diff := cmp.Diff([2]int{w, h}, [2]int{img.Bounds().Dx(), img.Bounds().Dy()}); diff != "" {
				t.Errorf("PNG size (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRenderSVG(t *testing.T) {
	for name, f := range figures() {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			require.NoError(t, Render(&buf, ".SVG", f))
			root := svgRoot(t, buf.Bytes())
			w, h := f.size()
			want := map[string]string{
				"width":  fmt.Sprintf("%gpt", float64(w)*0.75),
				"height": fmt.Sprintf("%gpt", float64(h)*0.75),
			}
			if diff := cmp.Diff(want, map[string]string{"width": root["width"], "height": root["height"]}); diff != "" {
				t.Errorf("SVG size (-want +got):\n%s", diff)
			}
			if f.Title != "" {
				require.Contains(t, buf.String(), xmlEscape(f.Title))
			}
		})
	}
}

// svgRoot parses doc as XML, checks that its root element is <svg> and
// that the document is well formed to its end, and returns the root's
// attributes.
func svgRoot(t *testing.T, doc []byte) map[string]string {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(doc))
	attrs := map[string]string{}
	seenRoot := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if se, ok := tok.(xml.StartElement); ok && !seenRoot {
			seenRoot = true
			require.Equal(t, "svg", se.Name.Local)
			for _, a := range se.Attr {
				attrs[a.Name.Local] = a.Value
			}
		}
	}
	require.True(t, seenRoot, "no root element")
	return attrs
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func TestRenderNotes(t *testing.T) {
	tests := []struct {
		name string
		f    Figure
		want []string // whole texts the SVG must draw
		not  []string // substrings it must not hold
	}{
		{"no data", Figure{Title: "t"}, []string{"no data", "time (s)", "power (W)"}, nil},
		{"labels", figures()["runs-phases"],
			[]string{"run 1", "run 3", "warmup", "stress-ng --cpu 16", "cooldown",
				"taurus-1, baseline 95.0 W", "taurus-2, baseline 101.5 W", "baseline 60.0 W", "nowhere baseline 20.0 W",
				"time since 2026-11-24T10:00:10Z (s)", "power (W) — wattmetre_power_watt"},
			[]string{"no data", "taurus-1 wattmetre_power_watt"}},
		{"mixed metrics name both", figures()["mixed-metrics"],
			[]string{"taurus-1 wattmetre_power_watt", "taurus-2 bmc_node_power_watt", "wattmetre_power_watt"},
			[]string{"power (W) —"}},
		{"origin is the first sample without window", Figure{Lines: lines(1, 10)},
			[]string{"time since 2026-11-24T10:00:00Z (s)", "taurus-1"}, nil},
		{"default labels", Figure{Lines: []Line{{Times: []int64{t0.UnixNano()}, Watts: []float64{1}}}, Phases: []Span{{Start: t0, End: t0.Add(time.Second)}}},
			[]string{"line 1", "phase 1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			require.NoError(t, Render(&buf, "svg", tt.f))
			for _, s := range tt.want {
				require.Contains(t, buf.String(), ">"+xmlEscape(s)+"</text>")
			}
			for _, s := range tt.not {
				require.NotContains(t, buf.String(), xmlEscape(s))
			}
		})
	}
}

func TestCheckPath(t *testing.T) {
	tests := []struct {
		path string
		ok   bool
	}{
		{"plot.png", true},
		{"/tmp/out/plot.PNG", true},
		{"plot.Svg", true},
		{"plot.svg.png", true},
		{"plot.jpg", false},
		{"plot.pdf", false},
		{"plot", false},
		{"plot.png.bak", false},
		{"", false},
		{".png/x", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			err := CheckPath(tt.path)
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrFormat)
			require.ErrorContains(t, err, ".png or .svg")
			require.ErrorContains(t, err, fmt.Sprintf("%q", tt.path))
		})
	}
	if diff := cmp.Diff([]string{".png", ".svg"}, Formats()); diff != "" {
		t.Errorf("Formats (-want +got):\n%s", diff)
	}
}

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name   string
		format string
		f      Figure
		want   error
	}{
		{"format", "jpeg", Figure{}, ErrFormat},
		{"empty format", "", Figure{}, ErrFormat},
		{"mismatch", "png", Figure{Lines: []Line{{Node: "a", Times: []int64{1, 2}, Watts: []float64{1}}}}, ErrLengthMismatch},
		{"mismatch nil watts", "svg", Figure{Lines: []Line{lines(1, 10)[0], {Node: "b", Times: []int64{1}}}}, ErrLengthMismatch},
		{"too small", "png", Figure{Width: 100, Height: 100}, ErrSize},
		{"negative", "svg", Figure{Width: -1}, ErrSize},
		{"too large", "png", Figure{Width: MaxSide + 1}, ErrSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Render(&buf, tt.format, tt.f)
			require.ErrorIs(t, err, tt.want)
			require.Zero(t, buf.Len(), "nothing is written on error")
		})
	}
}

func TestRenderDoesNotModifyInput(t *testing.T) {
	l := Line{Node: "a", Times: []int64{3e9, 1e9, 2e9, 2e9}, Watts: []float64{30, 10, 20, 21}}
	before := Line{Node: "a", Times: append([]int64(nil), l.Times...), Watts: append([]float64(nil), l.Watts...)}
	require.NoError(t, Render(io.Discard, "png", Figure{Lines: []Line{l}, Width: 640, Height: 360}))
	if diff := cmp.Diff(before, l); diff != "" {
		t.Errorf("input changed (-before +after):\n%s", diff)
	}
}

func TestRenderConcurrent(t *testing.T) {
	f := figures()["runs-only"]
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			format := []string{"png", "svg"}[i%2]
			errs[i] = Render(io.Discard, format, f)
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
}

func TestWrite(t *testing.T) {
	for _, name := range []string{"plot.png", "plot.SVG"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, name)
			require.NoError(t, os.WriteFile(path, []byte("old"), 0o600))
			require.NoError(t, Write(path, figures()["runs-phases"]))
			require.Equal(t, []string{name}, dirNames(t, dir), "no temporary file left")
			fi, err := os.Stat(path)
			require.NoError(t, err)
			require.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			if strings.HasSuffix(name, "png") {
				_, err = png.Decode(bytes.NewReader(data))
				require.NoError(t, err)
			} else {
				svgRoot(t, data)
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	bad := Figure{Lines: []Line{{Node: "a", Times: []int64{1}, Watts: nil}}}
	tests := []struct {
		name string
		file string // relative to a fresh directory holding "plot.png" = "old"
		f    Figure
		want error
	}{
		{"mismatch keeps the old file", "plot.png", bad, ErrLengthMismatch},
		{"size", "plot.png", Figure{Width: 1}, ErrSize},
		{"extension", "plot.gif", Figure{}, ErrFormat},
		{"missing directory", "nodir/plot.svg", Figure{}, os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			old := filepath.Join(dir, "plot.png")
			require.NoError(t, os.WriteFile(old, []byte("old"), 0o600))
			path := filepath.Join(dir, tt.file)
			err := Write(path, tt.f)
			require.ErrorIs(t, err, tt.want)
			require.ErrorContains(t, err, path)
			require.Equal(t, []string{"plot.png"}, dirNames(t, dir), "no temporary file left")
			data, err := os.ReadFile(old)
			require.NoError(t, err)
			require.Equal(t, "old", string(data))
		})
	}
}

func TestWriteRenameError(t *testing.T) {
	// The target is a non-empty directory: rendering succeeds, the rename
	// fails, and the temporary file must go.
	dir := t.TempDir()
	target := filepath.Join(dir, "plot.png")
	require.NoError(t, os.MkdirAll(filepath.Join(target, "x"), 0o755))
	err := Write(target, Figure{})
	require.Error(t, err)
	require.ErrorContains(t, err, target)
	require.Equal(t, []string{"plot.png"}, dirNames(t, dir))
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestPrepareRanges(t *testing.T) {
	type ranges struct{ XMin, XMax, YMin, YMax float64 }
	sec := func(s float64) int64 { return t0.UnixNano() + int64(s*1e9) }
	tests := []struct {
		name   string
		f      Figure
		want   ranges
		origin time.Time
	}{
		{"no data", Figure{}, ranges{0, 1, 0, 1.06}, time.Time{}},
		{"from zero to a bit above the peak", Figure{Lines: []Line{{Times: []int64{sec(0), sec(10)}, Watts: []float64{100, 200}}}},
			ranges{0, 10, 0, 212}, t0},
		{"baseline above the peak", Figure{Lines: []Line{{Node: "a", Times: []int64{sec(0), sec(10)}, Watts: []float64{100, 200}}},
			Baselines: []Level{{Node: "a", Watts: 250}}},
			ranges{0, 10, 0, 265}, t0},
		{"a bit below a negative minimum", Figure{Lines: []Line{{Times: []int64{sec(0), sec(10)}, Watts: []float64{-100, 100}}}},
			ranges{0, 10, -110, 112.6}, t0},
		{"window is the origin, spans widen x", Figure{
			Lines:  []Line{{Times: []int64{sec(5), sec(10)}, Watts: []float64{1, 2}}},
			Window: Span{Start: t0.Add(4 * time.Second), End: t0.Add(8 * time.Second)},
			Phases: []Span{{Start: t0.Add(9 * time.Second), End: t0.Add(20 * time.Second)}},
		}, ranges{0, 16, 0, 2.12}, t0.Add(4 * time.Second)},
		{"one sample", Figure{Lines: []Line{{Times: []int64{sec(3)}, Watts: []float64{50}}}},
			ranges{-0.5, 0.5, 0, 53}, t0.Add(3 * time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fig := prepare(tt.f)
			got := ranges{fig.xmin, fig.xmax, fig.ymin, fig.ymax}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
				t.Errorf("ranges (-want +got):\n%s", diff)
			}
			require.True(t, tt.origin.Equal(fig.origin), "origin %v, want %v", fig.origin, tt.origin)
		})
	}
}

func TestLegendTruncatedWhenTooTall(t *testing.T) {
	f := Figure{Lines: lines(32, 10), Width: MinWidth, Height: MinHeight}
	for i := range f.Lines {
		f.Lines[i].Node = fmt.Sprintf("grisou-%d.nancy.grid5000.fr", i+1)
		f.Lines[i].Metric = fmt.Sprintf("bmc_node_power_watt_from_the_redfish_api_%d", i%2)
	}
	var buf bytes.Buffer
	require.NoError(t, Render(&buf, "svg", f))
	require.Regexp(t, `>\+[0-9]+ more</text>`, buf.String())
	require.Contains(t, buf.String(), ">grisou-1.nancy.grid5000.fr bmc_node_power_watt_from_the_redfish_api_0</text>")

	// At the default size all 32 fit.
	f.Width, f.Height = 0, 0
	buf.Reset()
	require.NoError(t, Render(&buf, "svg", f))
	require.NotContains(t, buf.String(), " more</text>")
	require.Contains(t, buf.String(), ">grisou-32.nancy.grid5000.fr bmc_node_power_watt_from_the_redfish_api_1</text>")
}

func TestErrorMessages(t *testing.T) {
	bad := Figure{Lines: []Line{{Node: "taurus-1", Metric: "m", Times: []int64{1}}}}
	err := Write("/nonexistent/plot.png", bad)
	require.EqualError(t, err, `powerplot: writing /nonexistent/plot.png: line 0 ("taurus-1" "m"): 1 times, 0 watts: times and watts have different lengths`)
	err = Render(io.Discard, "png", bad)
	require.EqualError(t, err, `powerplot: line 0 ("taurus-1" "m"): 1 times, 0 watts: times and watts have different lengths`)
	require.EqualError(t, CheckPath("out/plot.jpg"), `powerplot: "out/plot.jpg": extension ".jpg": unsupported plot format (use .png or .svg)`)
}

// TestMaxStep: a line's MaxStep overrides the gap threshold (twice the
// median step): negative joins every step (only NaN breaks the line), a
// duration breaks at longer steps.
func TestMaxStep(t *testing.T) {
	sec := func(s float64) int64 { return t0.UnixNano() + int64(s*1e9) }
	// Reduced points 10 s apart, then 1 s samples: the median step is 1 s.
	ts := []int64{sec(0), sec(10), sec(20), sec(30), sec(31), sec(32), sec(33), sec(34), sec(35), sec(36)}
	ws := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	withNaN := slices.Clone(ws)
	withNaN[1] = math.NaN()
	for _, tt := range []struct {
		name    string
		ws      []float64
		maxStep time.Duration
		segs    int
	}{
		{"default: the 10 s steps break", ws, 0, 4},
		{"negative: joined", ws, -1, 1},
		{"negative: NaN still breaks", withNaN, -1, 2},
		{"15 s", ws, 15 * time.Second, 1},
		{"5 s", ws, 5 * time.Second, 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fig := prepare(Figure{Lines: []Line{{Times: ts, Watts: tt.ws, MaxStep: tt.maxStep}}})
			require.Len(t, fig.series[0].segs, tt.segs)
		})
	}
}
