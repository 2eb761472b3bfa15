package energyreport

import (
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/powerplot"
	"github.com/alumet-go/alumet-agent/internal/testkit"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
	"github.com/alumet-go/alumet-agent/pipeline/pipelinetest"
)

// pointFeeder emits its points, in order, on the end event.
type pointFeeder struct{ points []measure.Point }

func (f *pointFeeder) Run(ctx context.Context, _ pipeline.Emitter) error {
	<-ctx.Done()
	return nil
}

func (f *pointFeeder) HandleEvent(ctx context.Context, ev pipeline.Event, out pipeline.Emitter) error {
	if ev.Kind != pipeline.EndConsumerMeasurement {
		return nil
	}
	return out.Emit(ctx, &measure.Buffer{Points: f.points})
}

// The metrics as the sources register them: kwollect-input registers
// every Kwollect metric as a gauge with the unit its name gives.
var energyMetrics = []measure.Metric{
	{Name: "prom_node_rapl_package_joules_total", Unit: measure.UnitFromKwollectMetric("prom_node_rapl_package_joules_total"), Type: measure.F64, Semantics: measure.Gauge},
	{Name: "bmc_node_power_watthour_total", Unit: measure.UnitFromKwollectMetric("bmc_node_power_watthour_total"), Type: measure.F64, Semantics: measure.Gauge},
	{Name: raplMetric, Unit: measure.Plain(measure.Joule), Type: measure.F64, Semantics: measure.Delta},
	{Name: watt, Unit: measure.Plain(measure.Watt), Type: measure.F64, Semantics: measure.Gauge},
	{Name: "bmc_node_power_watt", Unit: measure.Plain(measure.Watt), Type: measure.F64, Semantics: measure.Gauge},
}

type energyRun struct {
	summary map[string]any
	energy  []measure.Point
	log     string
	table   string
	doubts  []string
}

func runEnergyPipeline(t *testing.T, cfg *Config, mk func(ids map[string]measure.MetricID) []measure.Point, start, end time.Time) energyRun {
	t.Helper()
	reg := measure.NewRegistry()
	ids := map[string]measure.MetricID{}
	for _, m := range energyMetrics {
		id, err := reg.Register(m)
		require.NoError(t, err)
		ids[m.Name] = id
	}
	var logBuf, tableBuf testkit.LockedBuffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	b := pipeline.NewBuilder(reg, 4, log)
	require.NoError(t, b.AddSource("feeder", &pointFeeder{points: mk(ids)}))
	r, err := newReport(cfg, reg, log, &tableBuf, start)
	require.NoError(t, err)
	require.NoError(t, install(b, nil, r))
	out := &pipelinetest.Recorder{}
	require.NoError(t, b.AddOutput("rec", out))
	p := b.Start(context.Background())
	for _, ev := range execEvents(start, end, 0) {
		require.NoError(t, p.Publish(context.Background(), ev))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, p.Stop(ctx))
	var en []measure.Point
	for _, pt := range out.Points() {
		if m, _ := reg.Metric(pt.Metric); isReportEnergy(m) {
			en = append(en, pt)
		}
	}
	return energyRun{summary: readSummary(t, cfg.SummaryFile), energy: en, log: logBuf.String(), table: tableBuf.String(), doubts: (&Transform{r: r}).Doubts()}
}

func seriesOfSummary(t *testing.T, s map[string]any, node, metric string) map[string]any {
	t.Helper()
	for _, x := range s["series"].([]any) {
		m := x.(map[string]any)
		if m["node"] == node && m["metric"] == metric {
			return m
		}
	}
	t.Fatalf("no series %s %s in %v", node, metric, s["series"])
	return nil
}

func kwPoint(id measure.MetricID, node string, sec, v float64, labels ...string) measure.Point {
	attrs := []measure.Attribute{{Key: "metric_id", Value: measure.String("x")}}
	for i := 0; i+1 < len(labels); i += 2 {
		attrs = append(attrs, measure.Attribute{Key: labels[i], Value: measure.String(labels[i+1])})
	}
	return measure.Point{Metric: id, Timestamp: at(sec), Value: measure.Float(v),
		Resource: measure.Resource{Kind: "device_id", ID: node}, Consumer: measure.Consumer{Kind: measure.KindLocalMachine}, Attributes: attrs}
}

func TestEnergyCounters(t *testing.T) {
	const wrap = 262143.328850
	for _, tc := range []struct {
		name     string
		cfg      func(*Config)
		points   func(ids map[string]measure.MetricID) []measure.Point
		node     string
		metric   string
		energy   float64
		coverage float64
		method   []string
		uncMin   float64
	}{
		{
			name: "prometheus joules counters, one per socket, one wrapping: summed, the wrap estimated",
			points: func(ids map[string]measure.MetricID) []measure.Point {
				var out []measure.Point
				id := ids["prom_node_rapl_package_joules_total"]
				for s := -15.0; s <= 75; s += 15 {
					out = append(out, kwPoint(id, "a", s, 1000+60*s, "index", "0"),
						kwPoint(id, "a", s+0.2, math.Mod(wrap-2000+40*(s+0.2), wrap), "index", "1"))
				}
				return out
			},
			node: "a", metric: "prom_node_rapl_package_joules_total",
			energy: 100 * 60, coverage: 1,
			method: []string{"mean power between energy counter readings every 15 s", "the sum of 2 counters (index=0; index=1)", "1 decrease(s) of the counter"},
		},
		{
			name: "a BMC's watt-hour counter: integer readings, one step of uncertainty",
			points: func(ids map[string]measure.MetricID) []measure.Point {
				var out []measure.Point
				for s := -5.0; s <= 65; s += 5 {
					out = append(out, kwPoint(ids["bmc_node_power_watthour_total"], "a", s, math.Floor(30000+360*s/3600)))
				}
				return out
			},
			node: "a", metric: "bmc_node_power_watthour_total",
			energy: 360 * 60, coverage: 1, uncMin: 3600,
			method: []string{"from counter readings"},
		},
		{
			name: "the rapl source's per-domain totals, on the local node; the per-socket points left out",
			cfg:  func(c *Config) { c.LocalNode = "a" },
			points: func(ids map[string]measure.MetricID) []measure.Point {
				var out []measure.Point
				id := ids[raplMetric]
				for s := 1.0; s <= 12; s++ {
					for _, d := range []struct {
						res    measure.Resource
						domain string
						j      float64
					}{
						{measure.Resource{Kind: "cpu_package", ID: "0"}, "package", 30},
						{measure.Resource{Kind: "cpu_package", ID: "1"}, "package", 20},
						{measure.LocalMachine, "package_total", 50},
						{measure.LocalMachine, "dram_total", 10},
					} {
						out = append(out, measure.Point{Metric: id, Timestamp: at(s), Value: measure.Float(d.j), Resource: d.res,
							Consumer: measure.Consumer{Kind: measure.KindLocalMachine}, Attributes: []measure.Attribute{{Key: "domain", Value: measure.String(d.domain)}}})
					}
				}
				return out
			},
			node: "a", metric: "rapl_consumed_energy.package_total",
			energy: 50 * 10, coverage: 1,
			method: []string{"every 1 s", "from per-interval energy"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := quietConfig()
			cfg.SummaryFile = filepath.Join(t.TempDir(), "energy.json")
			if tc.cfg != nil {
				tc.cfg(cfg)
			}
			start, end := at(0), at(60)
			if strings.HasPrefix(tc.metric, raplMetric) {
				start, end = at(0.5), at(10.5)
			}
			res := runEnergyPipeline(t, cfg, tc.points, start, end)
			s := seriesOfSummary(t, res.summary, tc.node, tc.metric)
			require.InDelta(t, tc.energy, s["energy_j"], 1e-6*tc.energy, s["method"])
			require.InDelta(t, tc.coverage, s["coverage"], 1e-9)
			for _, m := range tc.method {
				require.Contains(t, s["method"], m)
			}
			require.GreaterOrEqual(t, s["uncertainty_j"], tc.uncMin)
			require.Empty(t, res.energy, "no <metric>_energy point for energy metrics")
			for _, x := range res.summary["series"].([]any) {
				require.NotEqual(t, raplMetric+".package", x.(map[string]any)["metric"])
				require.NotEqual(t, "cpu_package/0", x.(map[string]any)["node"])
			}
		})
	}
}

// A counter with one reading in and around the window gives no energy:
// the report and the final outcome (pipeline.Doubter) say it, rather than
// a null energy the sources' "complete" hides.
func TestCounterWithoutEnergyIsDoubtful(t *testing.T) {
	for _, tc := range []struct {
		name   string
		points func(ids map[string]measure.MetricID) []measure.Point
		doubt  string
	}{
		{
			name: "one reading of a counter",
			points: func(ids map[string]measure.MetricID) []measure.Point {
				return []measure.Point{kwPoint(ids["prom_node_rapl_package_joules_total"], "a", 30, 1000.5, "index", "0"),
					kwPoint(ids[watt], "a", 10, 100), kwPoint(ids[watt], "a", 50, 100)}
			},
			doubt: "a/prom_node_rapl_package_joules_total has no energy although 1 value of it came: an energy counter gives energy between two readings",
		},
		{
			name: "readings every 15 s: an energy, no doubt",
			points: func(ids map[string]measure.MetricID) []measure.Point {
				var out []measure.Point
				for s := -15.0; s <= 75; s += 15 {
					out = append(out, kwPoint(ids["prom_node_rapl_package_joules_total"], "a", s, 1000+60*s, "index", "0"))
				}
				return out
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := quietConfig()
			cfg.SummaryFile = filepath.Join(t.TempDir(), "energy.json")
			res := runEnergyPipeline(t, cfg, tc.points, at(0), at(60))
			s := seriesOfSummary(t, res.summary, "a", "prom_node_rapl_package_joules_total")
			if tc.doubt == "" {
				require.Empty(t, res.doubts)
				require.NotNil(t, s["energy_j"])
				return
			}
			require.Nil(t, s["energy_j"])
			require.Len(t, res.doubts, 1)
			require.Contains(t, res.doubts[0], tc.doubt)
			require.Contains(t, fmt.Sprint(res.summary["runs"], res.summary["warnings"]), tc.doubt, "the summary's warnings say it too")
		})
	}
}

// wallPower is a node's power: 100 W, 200 W from 10 s to 20 s and from 40 s to
// 45 s of every minute, so that the clocks can be aligned on the steps.
func wallPower(sec float64) float64 {
	m := math.Mod(sec, 60)
	if m >= 10 && m < 20 || m >= 40 && m < 45 {
		return 200
	}
	return 100
}

// wallEnergy is ∫ wallPower over [a, b], by 1 ms steps.
func wallEnergy(a, b float64) float64 {
	e := 0.0
	for t := a; t < b; t += 0.001 {
		e += wallPower(t+0.0005) * 0.001
	}
	return e
}

func TestComparison(t *testing.T) {
	const skew = 0.4 // the node's clock is 0.4 s ahead
	cfg := quietConfig()
	cfg.SummaryFile = filepath.Join(t.TempDir(), "energy.json")
	cfg.LocalNode = "a"
	cfg.Table = true
	cfg.PlotFile = filepath.Join(t.TempDir(), "power.png")
	points := func(ids map[string]measure.MetricID) []measure.Point {
		var out []measure.Point
		for s := -2.0; s < 125; s++ { // Kwollect's 1 s means, stamped at the start of their second
			out = append(out, kwPoint(ids[watt], "a", s, wallEnergy(s, s+1)))
		}
		for s := -5.0; s < 125; s += 5 { // the BMC reads 4 % high
			out = append(out, kwPoint(ids["bmc_node_power_watt"], "a", s, 1.04*wallPower(s)))
		}
		for s := -2.0; s < 125; s++ { // RAPL: 55 % of the wall power in the package, 5 % in dram
			for _, d := range []struct {
				domain string
				share  float64
			}{{"package_total", 0.55}, {"dram_total", 0.05}} {
				out = append(out, measure.Point{Metric: ids[raplMetric], Timestamp: at(s + skew), Value: measure.Float(d.share * wallEnergy(s-1, s)),
					Resource: measure.LocalMachine, Consumer: measure.Consumer{Kind: measure.KindLocalMachine},
					Attributes: []measure.Attribute{{Key: "domain", Value: measure.String(d.domain)}}})
			}
		}
		slices.SortStableFunc(out, func(a, b measure.Point) int { return a.Timestamp.Compare(b.Timestamp) })
		return out
	}
	res := runEnergyPipeline(t, cfg, points, at(0), at(120))
	cs, ok := res.summary["comparison"].([]any)
	require.True(t, ok, "a comparison: %v", res.summary)
	require.Len(t, cs, 1)
	c := cs[0].(map[string]any)
	require.Equal(t, "a", c["node"])
	require.Equal(t, watt, c["reference"])
	ratios := map[string]float64{}
	for _, x := range c["sources"].([]any) {
		s := x.(map[string]any)
		ratios[s["metric"].(string)] = s["ratio_to_reference"].(float64)
	}
	require.InDelta(t, 1, ratios[watt], 1e-12)
	require.InDelta(t, 1.04, ratios["bmc_node_power_watt"], 0.02)
	require.InDelta(t, 0.55, ratios[raplMetric+".package_total"], 0.01)
	require.InDelta(t, 0.05, ratios[raplMetric+".dram_total"], 0.005)
	rapl := c["rapl"].([]any)
	require.Len(t, rapl, 1)
	r0 := rapl[0].(map[string]any)
	require.Equal(t, "on-node", r0["origin"])
	require.InDelta(t, 0.60, r0["share_of_reference"], 0.01)
	require.InDelta(t, 0.40, r0["unseen_share"], 0.01)
	clock := c["clock"].(map[string]any)
	require.NotNil(t, clock["offset_s"], clock)
	require.InDelta(t, skew, clock["offset_s"], 0.15)
	require.Contains(t, res.table, "comparison, a (ratios to the wattmeter, wattmetre_power_watt)")
	require.Contains(t, res.table, "RAPL package+dram (on-node)")
	require.Contains(t, res.table, "s ahead of Kwollect's timestamps")

	// The plot: one panel per node (one here, 560 px high).
	f, err := os.Open(cfg.PlotFile)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	require.Equal(t, [2]int{powerplot.DefaultWidth, powerplot.PanelHeight}, [2]int{img.Bounds().Dx(), img.Bounds().Dy()})
	if dst := os.Getenv("ALUMET_KEEP_PLOT"); dst != "" {
		b, _ := os.ReadFile(cfg.PlotFile)
		require.NoError(t, os.WriteFile(dst, b, 0o644))
	}
}

func TestConverter(t *testing.T) {
	type out struct {
		t int64
		w float64
	}
	for _, tc := range []struct {
		name   string
		kind   seriesKind
		scale  float64
		in     [][2]float64 // (s, value)
		want   []out        // (s as ns, W)
		resets int
		disord int
	}{
		{
			name: "a counter: the mean power of each interval at its end",
			kind: counterKind, scale: 1,
			in:   [][2]float64{{0, 1000.5}, {15, 2500.5}, {30, 4000.5}},
			want: []out{{15e9, 100}, {30e9, 100}},
		},
		{
			name: "a decrease: no power for its interval (the next covers it)",
			kind: counterKind, scale: 1,
			in:   [][2]float64{{0, 1000.5}, {15, 2500.5}, {30, 40.5}, {45, 1540.5}},
			want: []out{{15e9, 100}, {45e9, 100}}, resets: 1,
		},
		{
			name: "NaN, older and repeated readings are skipped",
			kind: counterKind, scale: 1,
			in:   [][2]float64{{0, 0.5}, {10, math.NaN()}, {15, 1500.5}, {5, 100.5}, {15, 1500.5}, {30, 3000.5}},
			want: []out{{15e9, 100}, {30e9, 100}}, disord: 2,
		},
		{
			name: "watt-hours: 3600 J a unit; a coarse counter starts at its first step and joins the unchanged readings",
			kind: counterKind, scale: 3600,
			in:   [][2]float64{{0, 10}, {5, 10}, {10, 11}, {15, 11}, {20, 11}, {25, 11}, {30, 12}},
			want: []out{{30e9, 180}},
		},
		{
			name: "increments: the first one waits for the period the second gives",
			kind: incrementKind, scale: 1,
			in:   [][2]float64{{1, 50}, {2, 50}, {4, 100}},
			want: []out{{1e9, 50}, {2e9, 50}, {4e9, 50}},
		},
		{
			name: "increments in mJ",
			kind: incrementKind, scale: 1e-3,
			in:   [][2]float64{{1, 5000}, {2, 5000}},
			want: []out{{1e9, 5}, {2e9, 5}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newConverter(tc.kind, tc.scale)
			var got []out
			for _, x := range tc.in {
				c.add(int64(x[0]*1e9), x[1], func(t int64, w float64) { got = append(got, out{t, w}) })
			}
			require.Len(t, got, len(tc.want), "%v", got)
			for i := range got {
				require.Equal(t, tc.want[i].t, got[i].t)
				require.InDelta(t, tc.want[i].w, got[i].w, 1e-9)
			}
			require.Equal(t, tc.resets, c.resets)
			require.Equal(t, tc.disord, c.disorder)
		})
	}
}

func TestEstimateOffsetNeedsVariation(t *testing.T) {
	var flat, dev []rawSample
	for s := int64(0); s < 120; s++ {
		flat = append(flat, rawSample{t: s * 1e9, w: 100 + 0.1*float64(s%2)})
		dev = append(dev, rawSample{t: s * 1e9, w: 50})
	}
	c := estimateOffset(flat, dev, 0, 120e9)
	require.False(t, c.ok)
	require.Contains(t, c.note, "the wall power hardly varied")
	c = estimateOffset(flat[:5], dev[:5], 0, 5e9)
	require.False(t, c.ok)
	require.Contains(t, c.note, "too few samples")
}

// The method key forces the integration of the power series.
func TestMethodKey(t *testing.T) {
	for _, tc := range []struct {
		method, text string
	}{
		{"", "step integration of 1 s averages"},
		{"auto", "step integration of 1 s averages"},
		{"trapezoid", "trapezoidal integration of instantaneous samples"},
		{"step-average", "step integration of 1 s averages"},
	} {
		t.Run(tc.method, func(t *testing.T) {
			cfg := quietConfig()
			cfg.Method = tc.method
			cfg.SummaryFile = filepath.Join(t.TempDir(), "energy.json")
			r := runPipeline(t, cfg, t0, ramp("b"), execEvents(at(0.3), at(10.7), 0)...)
			require.NoError(t, r.stopEr)
			s := readSummary(t, cfg.SummaryFile)
			require.Contains(t, s["series"].([]any)[0].(map[string]any)["method"], tc.text)
		})
	}
	cfg := DefaultConfig()
	cfg.Method = "simpson"
	require.ErrorContains(t, cfg.Validate(), `expected "auto", "step-average" or "trapezoid", got "simpson"`)
}

// runPointFeeder emits, at each run's end event, that run's points.
// With before, the first run's end delivers it as the history before the
// window; with after, each run's end delivers it as the span after its
// window (as kwollect-input does).
type runPointFeeder struct {
	byRun         map[int][]measure.Point
	before, after map[int][]measure.Point
	h             *pipeline.History
}

func (f *runPointFeeder) Run(ctx context.Context, _ pipeline.Emitter) error {
	<-ctx.Done()
	return nil
}

func (f *runPointFeeder) HandleEvent(ctx context.Context, ev pipeline.Event, out pipeline.Emitter) error {
	if ev.Kind != pipeline.EndConsumerMeasurement || len(f.byRun[ev.Run]) == 0 {
		return nil
	}
	if pts := f.before[ev.Run]; len(pts) > 0 {
		f.h.DeliverBefore(&measure.Buffer{Points: slices.Clone(pts)}, pts[len(pts)-1].Timestamp.Add(time.Nanosecond))
	}
	if err := out.Emit(ctx, &measure.Buffer{Points: f.byRun[ev.Run]}); err != nil {
		return err
	}
	if pts := f.after[ev.Run]; len(pts) > 0 {
		f.h.DeliverAfter(&measure.Buffer{Points: slices.Clone(pts)}, ev.Time)
	}
	return nil
}

// exec --repeat with a 15 s counter: every run gets the intervals that
// overlap its window, from the counter's readings of the runs around it
// (each run's points carry its run attribute and come at its end).
func TestEnergyCountersRepeat(t *testing.T) {
	reg := measure.NewRegistry()
	id, err := reg.Register(energyMetrics[0]) // prom_node_rapl_package_joules_total, 100 W
	require.NoError(t, err)
	windows := [][2]float64{{0.5, 20.5}, {25.5, 45.5}}
	byRun := map[int][]measure.Point{}
	for s := 0.0; s <= 60; s += 15 {
		for run, w := range windows {
			if s >= w[0]-0.001 && s <= w[1] { // Kwollect's rows in the window, as kwollect-input fetches them
				p := kwPoint(id, "a", s, 100*s+1e5+0.5)
				p.Attributes = append(p.Attributes, measure.Attribute{Key: "run", Value: measure.AttrValue{Type: measure.AttrU64, U64: uint64(run + 1)}})
				byRun[run+1] = append(byRun[run+1], p)
			}
		}
	}
	// The minute before the first run (kwollect-input's lead for
	// counters) and the span after the last one (fetch's tail).
	before := map[int][]measure.Point{1: {kwPoint(id, "a", 0, 1e5+0.5)}}
	after := map[int][]measure.Point{2: {kwPoint(id, "a", 60, 100*60+1e5+0.5)}}
	var logBuf, tableBuf testkit.LockedBuffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	b := pipeline.NewBuilder(reg, 4, log)
	require.NoError(t, b.AddSource("feeder", &runPointFeeder{byRun: byRun, before: before, after: after, h: b.History()}))
	cfg := quietConfig()
	cfg.SummaryFile = filepath.Join(t.TempDir(), "energy.json")
	r, err := newReport(cfg, reg, log, &tableBuf, at(0))
	require.NoError(t, err)
	require.NoError(t, install(b, nil, r))
	require.NoError(t, b.AddOutput("rec", &pipelinetest.Recorder{}))
	p := b.Start(context.Background())
	for _, ev := range repeatEvents(windows, nil) {
		require.NoError(t, p.Publish(context.Background(), ev))
	}
	require.NoError(t, p.Stop(context.Background()))
	var s RepeatSummary
	b2, err := os.ReadFile(cfg.SummaryFile)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b2, &s))
	require.Len(t, s.Runs, 2)
	for i, run := range s.Runs {
		sr := run.Series[0]
		require.NotNil(t, sr.EnergyJ, "run %d: %+v", i+1, sr)
		require.InDelta(t, 2000, *sr.EnergyJ, 1e-6, "run %d: 100 W over 20 s", i+1)
		require.InDelta(t, 1, sr.Coverage, 1e-9, "run %d", i+1)
	}
}

func TestIntervalSteps(t *testing.T) {
	l := powerplot.Line{Node: "a", Metric: "m", Times: []int64{20, 10, 30}, Watts: []float64{2, 1, 3}}
	got := intervalSteps(l)
	require.Equal(t, []int64{0, 10, 10, 20, 20, 30}, got.Times)
	require.Equal(t, []float64{1, 1, 2, 2, 3, 3}, got.Watts)
	require.Equal(t, time.Duration(-1), got.MaxStep, "breaks at NaN only")
	one := powerplot.Line{Times: []int64{5}, Watts: []float64{1}}
	require.Equal(t, one, intervalSteps(one))
}

// local_node naming a node kwollect-input does not measure is a warning
// (the rapl series would stand alone); the measured one, or no key, is not.
func TestLocalNodeNotMeasured(t *testing.T) {
	for _, tc := range []struct {
		name, key string
		warn      bool
	}{
		{"a measured node", "taurus-1", false},
		{"a typo", "taurus-l", true},
		{"no key", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logBuf testkit.LockedBuffer
			cfg := quietConfig()
			cfg.LocalNode = tc.key
			r, err := newReport(cfg, measure.NewRegistry(), slog.New(slog.NewTextHandler(&logBuf, nil)), io.Discard, at(0))
			require.NoError(t, err)
			r.directory.SetSite("taurus-1", "lyon")
			r.directory.SetSite("taurus-2", "lyon")
			r.localNode() // an on-node point came
			r.warnLocalNode()
			if !tc.warn {
				require.Empty(t, logBuf.String())
				return
			}
			require.Contains(t, logBuf.String(), `local_node = \"taurus-l\": kwollect-input does not measure this node (it measures taurus-1, taurus-2)`)
		})
	}
}
