package energyreport

import (
	"cmp"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/testkit"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
)

// smallCompaction makes the compaction happen on short test series.
func smallCompaction(t *testing.T) {
	oldAt, oldKeep, oldPlot, oldMargin := compactAt, compactKeep, plotKeep, cutMargin
	compactAt, compactKeep, plotKeep, cutMargin = 300, 50, 64, 2*time.Second
	t.Cleanup(func() { compactAt, compactKeep, plotKeep, cutMargin = oldAt, oldKeep, oldPlot, oldMargin })
}

// eventOrder is when the report learns the window, relative to the samples.
type eventOrder int

const (
	// startFirst: the start event and the marks, then the samples, then
	// the end event (exec and watch: kwollect-input fetches on the end
	// event, before energy-report sees it).
	startFirst eventOrder = iota
	// windowFirst: the whole window and the marks before the samples.
	windowFirst
	// samplesFirst: the samples, then the window (no start known while
	// they come, as with fetch --job-id).
	samplesFirst
)

// TestStreamingEqualsKeepAll: in every mode's order of events, a long
// series integrated as it comes, in bounded memory, gives the report that
// keeping every sample until the end gives (the code before streaming):
// energy, samples, coverage, gaps, peak, uncertainty, and each phase's.
func TestStreamingEqualsKeepAll(t *testing.T) {
	smallCompaction(t)
	for _, tt := range []struct {
		name    string
		metric  string
		period  time.Duration
		order   eventOrder
		marks   bool
		shuffle bool // neighbours swapped: out of order within what is held
	}{
		{"exec 1 Hz means, phases", watt, time.Second, startFirst, true, false},
		{"exec 50 Hz readings, phases", "bmc_node_power_watt", 20 * time.Millisecond, startFirst, true, false},
		{"exec 50 Hz readings, swapped neighbours", "bmc_node_power_watt", 20 * time.Millisecond, startFirst, true, true},
		{"exec 1 Hz means, swapped neighbours", watt, time.Second, startFirst, false, true},
		{"fetch window known first, 50 Hz", "bmc_node_power_watt", 20 * time.Millisecond, windowFirst, true, false},
		{"fetch window known first, 1 Hz", watt, time.Second, windowFirst, false, false},
		{"window known at the end, 50 Hz", "bmc_node_power_watt", 20 * time.Millisecond, samplesFirst, false, false},
		{"window known at the end, 1 Hz", watt, time.Second, samplesFirst, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reg := measure.NewRegistry()
			ids := registerMetrics(t, reg)
			pts, start, end := longSeries(ids[tt.metric], tt.period, 6000, tt.shuffle)
			var events []pipeline.Event
			if tt.marks {
				for i, f := range []float64{0.2, 0.5, 0.8} {
					events = append(events, pipeline.Event{Kind: pipeline.PhaseMark, Phase: string(rune('A' + i)), Time: start.Add(time.Duration(f * float64(end.Sub(start))))})
				}
			}
			startEv := pipeline.Event{Kind: pipeline.StartConsumerMeasurement, Time: start}
			endEv := pipeline.Event{Kind: pipeline.EndConsumerMeasurement, Time: end}
			var before, after []pipeline.Event
			switch tt.order {
			case startFirst:
				before, after = append([]pipeline.Event{startEv}, events...), []pipeline.Event{endEv}
			case windowFirst:
				before = append(append([]pipeline.Event{startEv}, events...), endEv)
			case samplesFirst:
				after = append(append([]pipeline.Event{startEv}, events...), endEv)
			}
			whole, _ := streamSummary(t, reg, pts, before, after, true)
			pieces, log := streamSummary(t, reg, pts, before, after, false)
			require.NotContains(t, log, "WARN")
			requireSameSummary(t, whole, pieces)
			if tt.marks {
				require.Len(t, pieces["phases"], 4)
			}
		})
	}
}

// longSeries is n steps of two nodes' power, with gaps, and a window
// that starts after the first sample and ends before the last one.
func longSeries(id measure.MetricID, period time.Duration, n int, shuffle bool) (pts []measure.Point, start, end time.Time) {
	rng := rand.New(rand.NewPCG(7, 9))
	ts := t0
	for i := range n {
		step := period
		if rng.IntN(200) == 0 {
			step *= 7 // a gap
		}
		ts = ts.Add(step)
		for _, node := range []string{"a", "b"} {
			pts = append(pts, measure.Point{Metric: id, Timestamp: ts, Value: measure.Float(100 + 50*math.Sin(float64(i)/40) + 10*rng.Float64()),
				Resource: measure.Resource{Kind: "device_id", ID: node}})
		}
	}
	if shuffle {
		for i := 0; i+2 < len(pts); i += 10 {
			pts[i], pts[i+2] = pts[i+2], pts[i] // node a's sample after the next one
		}
	}
	return pts, t0.Add(period + period/3), ts.Add(-period * 25 / 2)
}

// streamSummary feeds pts (in buffers of 97 points) between the events
// before and after, and returns the JSON summary and the log.
func streamSummary(t *testing.T, reg *measure.Registry, pts []measure.Point, before, after []pipeline.Event, keepAll bool) (map[string]any, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := quietConfig()
	cfg.SummaryFile = filepath.Join(dir, "e.json")
	cfg.PlotFile = filepath.Join(dir, "p.svg")
	var logBuf testkit.LockedBuffer
	r, err := newReport(cfg, reg, slogTo(&logBuf), nil, t0)
	require.NoError(t, err)
	r.keepAll = keepAll
	tr := &Transform{r: r}
	src := tr
	for _, ev := range before {
		require.NoError(t, src.OnEvent(context.Background(), ev))
	}
	for i := 0; i < len(pts); i += 97 {
		require.NoError(t, tr.Apply(&measure.Buffer{Points: pts[i:min(i+97, len(pts))]}))
	}
	if !keepAll {
		for _, s := range r.series {
			require.NotNil(t, s.done, "compacted")
			require.LessOrEqual(t, s.samples.n, compactAt, "bounded memory")
			require.LessOrEqual(t, len(s.done.plot), plotKeep+plotKeep/2+2)
		}
	}
	for _, ev := range after {
		require.NoError(t, src.OnEvent(context.Background(), ev))
	}
	_, err = tr.Finish()
	require.NoError(t, err, logBuf.String())
	b, err := os.ReadFile(cfg.SummaryFile)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	st, err := os.Stat(cfg.PlotFile)
	require.NoError(t, err)
	require.Positive(t, st.Size())
	return m, logBuf.String()
}

// requireSameSummary compares two summaries to floating-point rounding.
func requireSameSummary(t *testing.T, whole, pieces map[string]any) {
	t.Helper()
	near := func(a, b any, what string) {
		x, y := a.(float64), b.(float64)
		require.InDelta(t, x, y, 1e-9*math.Abs(x)+1e-9, what)
	}
	ws, ps := whole["series"].([]any), pieces["series"].([]any)
	require.Len(t, ps, len(ws))
	for i := range ws {
		w, p := ws[i].(map[string]any), ps[i].(map[string]any)
		for _, k := range []string{"energy_j", "coverage", "mean_w", "uncertainty_j"} {
			near(w[k], p[k], k)
		}
		for _, k := range []string{"samples", "gaps", "peak_w", "method", "node", "metric", "duration_s"} {
			require.Equal(t, w[k], p[k], k)
		}
	}
	for m, e := range whole["total_energy_j"].(map[string]any) {
		near(e, pieces["total_energy_j"].(map[string]any)[m], "total "+m)
	}
	wph, _ := whole["phases"].([]any)
	pph, _ := pieces["phases"].([]any)
	require.Len(t, pph, len(wph))
	for i := range wph {
		w, p := wph[i].(map[string]any), pph[i].(map[string]any)
		require.Equal(t, w["name"], p["name"])
		require.Equal(t, w["start"], p["start"])
		require.Equal(t, w["end"], p["end"])
		for m, e := range w["total_energy_j"].(map[string]any) {
			near(e, p["total_energy_j"].(map[string]any)[m], "phase total "+m)
		}
		wss, pss := w["series"].([]any), p["series"].([]any)
		require.Len(t, pss, len(wss))
		for j := range wss {
			a, b := wss[j].(map[string]any), pss[j].(map[string]any)
			require.NotNil(t, b["energy_j"], "phase %d series %d", i, j)
			near(a["energy_j"], b["energy_j"], "phase energy")
			near(a["coverage"], b["coverage"], "phase coverage")
			require.Equal(t, a["samples"], b["samples"], "phase samples")
		}
	}
}

// TestStreamingOutOfOrder: a sample older than what a series integrated
// already is counted, left out and reported with a warning that the
// series' energy may be off; the other series is exact.
func TestStreamingOutOfOrder(t *testing.T) {
	smallCompaction(t)
	for _, tt := range []struct {
		name     string
		lateAt   int // index in the points of the late one (node a's sample moved to the end)
		wantWarn bool
	}{
		{"long integrated", 200, true},
		{"still held", 6000*2 - 2 - 20*2, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reg := measure.NewRegistry()
			ids := registerMetrics(t, reg)
			pts, start, end := longSeries(ids["bmc_node_power_watt"], 20*time.Millisecond, 6000, false)
			require.Equal(t, "a", pts[tt.lateAt].Resource.ID)
			late := pts[tt.lateAt]
			moved := append(append(append([]measure.Point(nil), pts[:tt.lateAt]...), pts[tt.lateAt+1:]...), late)
			before := []pipeline.Event{{Kind: pipeline.StartConsumerMeasurement, Time: start}}
			after := []pipeline.Event{{Kind: pipeline.EndConsumerMeasurement, Time: end}}
			whole, _ := streamSummary(t, reg, pts, before, after, true)
			pieces, log := streamSummary(t, reg, moved, before, after, false)
			ws, ps := whole["series"].([]any), pieces["series"].([]any)
			if !tt.wantWarn {
				require.NotContains(t, log, "WARN")
				requireSameSummary(t, whole, pieces)
				return
			}
			require.Contains(t, log, `level=WARN msg="a bmc_node_power_watt: 1 samples came after their time was integrated`)
			require.Contains(t, log, "which may be off")
			require.NotContains(t, log, "b bmc_node_power_watt: 1 samples")
			// b is exact; a misses one sample.
			wb, pb := ws[1].(map[string]any), ps[1].(map[string]any)
			require.InDelta(t, wb["energy_j"], pb["energy_j"], 1e-9*wb["energy_j"].(float64))
			require.Equal(t, wb["samples"], pb["samples"])
			wa, pa := ws[0].(map[string]any), ps[0].(map[string]any)
			require.Equal(t, wa["samples"].(float64)-1, pa["samples"])
			require.InDelta(t, wa["energy_j"], pa["energy_j"], 1) // one 20 ms sample of ~150 W: < 3 J, < 1 J off
		})
	}
}

// TestStreamingLateMark: in run mode a mark that comes after its instant
// was integrated leaves the series' phases unknown (null), with a warning,
// and the window's energy exact.
func TestStreamingLateMark(t *testing.T) {
	smallCompaction(t)
	reg := measure.NewRegistry()
	ids := registerMetrics(t, reg)
	pts, _, end := longSeries(ids[watt], time.Second, 3000, false)
	var logBuf testkit.LockedBuffer
	cfg := quietConfig()
	cfg.SummaryFile = filepath.Join(t.TempDir(), "e.json")
	r, err := newReport(cfg, reg, slogTo(&logBuf), nil, t0)
	require.NoError(t, err)
	r.compact = true // run mode
	tr := &Transform{r: r}
	src := tr
	require.NoError(t, tr.Apply(&measure.Buffer{Points: pts}))
	require.NoError(t, src.OnEvent(context.Background(), pipeline.Event{Kind: pipeline.PhaseMark, Phase: "x", Time: at(100)}))
	require.NoError(t, src.OnEvent(context.Background(), pipeline.Event{Kind: pipeline.EndConsumerMeasurement, Time: end}))
	_, err = tr.Finish()
	require.NoError(t, err)
	require.Contains(t, logBuf.String(), "a wattmetre_power_watt: a phase mark came after the samples of its instant were integrated")
	b, err := os.ReadFile(cfg.SummaryFile)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	ph := m["phases"].([]any)
	require.Len(t, ph, 2)
	require.Nil(t, ph[0].(map[string]any)["series"].([]any)[0].(map[string]any)["energy_j"])
	require.NotNil(t, m["series"].([]any)[0].(map[string]any)["energy_j"])
}

// TestStreamingPlotGaps: the line of a compacted series is bounded, keeps
// its extremes, joins its reduced points and breaks (NaN) at its gaps
// only.
func TestStreamingPlotGaps(t *testing.T) {
	smallCompaction(t)
	reg := measure.NewRegistry()
	ids := registerMetrics(t, reg)
	var pts []measure.Point
	ts := t0
	hole := [2]time.Time{}
	for i := range 20000 {
		step := 20 * time.Millisecond
		if i == 5000 {
			step = time.Minute // a hole in the compacted part
			hole[0] = ts
		}
		ts = ts.Add(step)
		if i == 5000 {
			hole[1] = ts
		}
		w := 100 + 50*math.Sin(float64(i)/400)
		if i == 12345 {
			w = 400 // a peak, in the compacted part
		}
		pts = append(pts, measure.Point{Metric: ids["bmc_node_power_watt"], Timestamp: ts, Value: measure.Float(w), Resource: measure.Resource{Kind: "device_id", ID: "a"}})
	}
	r, err := newReport(quietConfig(), reg, nil, nil, t0)
	require.NoError(t, err)
	tr := &Transform{r: r}
	src := tr
	ctx := context.Background()
	require.NoError(t, src.OnEvent(ctx, pipeline.Event{Kind: pipeline.StartConsumerMeasurement, Time: t0}))
	require.NoError(t, tr.Apply(&measure.Buffer{Points: pts}))
	require.NoError(t, src.OnEvent(ctx, pipeline.Event{Kind: pipeline.EndConsumerMeasurement, Time: ts}))
	runs := []runReport{{win: window{start: t0, end: ts}}}
	f := r.figure(runs, nil)
	require.Len(t, f.Lines, 1)
	l := f.Lines[0]
	require.Negative(t, l.MaxStep)
	require.Less(t, len(l.Times), plotKeep*2+compactAt)
	require.True(t, slices.IsSorted(l.Times))
	var nans []int
	for i, w := range l.Watts {
		if math.IsNaN(w) {
			nans = append(nans, i)
		}
	}
	require.Len(t, nans, 1, "one gap")
	i := nans[0]
	require.LessOrEqual(t, l.Times[i-1], hole[0].UnixNano())
	require.GreaterOrEqual(t, l.Times[i+1], hole[1].UnixNano())
	require.Equal(t, 400.0, slices.MaxFunc(l.Watts, func(a, b float64) int {
		if math.IsNaN(a) {
			return -1
		}
		if math.IsNaN(b) {
			return 1
		}
		return cmp.Compare(a, b)
	}))
}

// TestSampleStoreRefill: refill keeps the given samples, and push after it
// reuses the spare blocks without mixing old samples in.
func TestSampleStoreRefill(t *testing.T) {
	var st sampleStore
	var want []rawSample
	for i := range 3*sampleBlock + 5 {
		st.push(rawSample{t: int64(i), w: 1})
	}
	for i := range sampleBlock + 3 {
		want = append(want, rawSample{t: int64(1000 + i), w: 2})
	}
	st.refill(want)
	for i := range 2 * sampleBlock {
		x := rawSample{t: int64(5000 + i), w: 3}
		st.push(x)
		want = append(want, x)
	}
	var got []rawSample
	st.all(func(x rawSample) { got = append(got, x) })
	require.Equal(t, want, got)
	require.Equal(t, len(want), st.n)
}
