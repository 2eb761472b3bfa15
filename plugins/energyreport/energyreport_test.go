package energyreport

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/testkit"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
	"github.com/alumet-go/alumet-agent/pipeline/pipelinetest"
	"github.com/alumet-go/alumet-agent/plugin"
)

var t0 = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(math.Round(s * 1e9))) }

const watt = "wattmetre_power_watt"

// sample is one synthetic reading of a series.
type sample struct {
	node   string
	metric string
	t      float64 // s after t0
	w      float64
}

// constant100 is node a: 100 W, 1 Hz rows from t0 to t0+11 s.
func constant100(node string) []sample {
	var out []sample
	for k := range 12 {
		out = append(out, sample{node, watt, float64(k), 100})
	}
	return out
}

// ramp is node b: the 1 Hz means 100 + 10k W of the second [k, k+1).
func ramp(node string) []sample {
	var out []sample
	for k := range 12 {
		out = append(out, sample{node, watt, float64(k), 100 + 10*float64(k)})
	}
	return out
}

// feeder is a tiny source: at the end event it emits its points (as
// kwollect-input does), in two buffers, the second one first (out of order).
type feeder struct {
	samples []sample
	ids     map[string]measure.MetricID
}

func (f *feeder) Run(ctx context.Context, _ pipeline.Emitter) error {
	<-ctx.Done()
	return nil
}

func (f *feeder) HandleEvent(ctx context.Context, ev pipeline.Event, out pipeline.Emitter) error {
	if ev.Kind != pipeline.EndConsumerMeasurement {
		return nil
	}
	var pts []measure.Point
	for _, s := range f.samples {
		pts = append(pts, measure.Point{
			Metric:     f.ids[s.metric],
			Timestamp:  at(s.t),
			Value:      measure.Float(s.w),
			Resource:   measure.Resource{Kind: "device_id", ID: s.node},
			Consumer:   measure.Consumer{Kind: "device_origin", ID: "wattmetre1-port-" + s.node},
			Attributes: []measure.Attribute{{Key: "metric_id", Value: measure.String(s.metric)}},
		})
	}
	half := len(pts) / 2
	if err := out.Emit(ctx, &measure.Buffer{Points: slices.Clone(pts[half:])}); err != nil {
		return err
	}
	return out.Emit(ctx, &measure.Buffer{Points: slices.Clone(pts[:half])})
}

// run is one pipeline run: the feeder, the report and a pipelinetest.Recorder.
type run struct {
	reg    *measure.Registry
	out    *pipelinetest.Recorder
	table  string
	log    string
	stopEr error
}

// registerMetrics registers the metrics of the synthetic series.
func registerMetrics(t *testing.T, reg *measure.Registry) map[string]measure.MetricID {
	t.Helper()
	ids := map[string]measure.MetricID{}
	for _, m := range []measure.Metric{
		{Name: watt, Unit: measure.Plain(measure.Watt), Type: measure.F64, Semantics: measure.Gauge},
		{Name: "bmc_node_power_watt", Unit: measure.Plain(measure.Watt), Type: measure.F64, Semantics: measure.Gauge},
		{Name: "bmc_cpu_temp_celsius", Unit: measure.Plain(measure.Celsius), Type: measure.F64, Semantics: measure.Gauge},
		{Name: "bmc_node_power_watthour_total", Unit: measure.Plain(measure.WattHour), Type: measure.F64, Semantics: measure.Counter},
	} {
		id, err := reg.Register(m)
		require.NoError(t, err)
		ids[m.Name] = id
	}
	return ids
}

// runPipeline feeds samples through a real pipeline with the report, and
// publishes events.
func runPipeline(t *testing.T, cfg *Config, agentStart time.Time, samples []sample, events ...pipeline.Event) run {
	t.Helper()
	reg := measure.NewRegistry()
	ids := registerMetrics(t, reg)
	var logBuf testkit.LockedBuffer
	var tableBuf testkit.LockedBuffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	b := pipeline.NewBuilder(reg, 4, log)
	require.NoError(t, b.AddSource("feeder", &feeder{samples: samples, ids: ids}))
	r, err := newReport(cfg, reg, log, &tableBuf, agentStart)
	require.NoError(t, err)
	require.NoError(t, install(b, nil, r))
	out := &pipelinetest.Recorder{}
	require.NoError(t, b.AddOutput("rec", out))
	p := b.Start(context.Background())
	for _, ev := range events {
		require.NoError(t, p.Publish(context.Background(), ev))
	}
	// The deadline only guards against a hang; nothing depends on timing.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stopErr := p.Stop(ctx)
	return run{reg: reg, out: out, table: tableBuf.String(), log: logBuf.String(), stopEr: stopErr}
}

func execEvents(start, end time.Time, code int) []pipeline.Event {
	cmd := []string{"./bench", "--size", "big one"}
	return []pipeline.Event{
		{Kind: pipeline.StartConsumerMeasurement, Time: start, Command: cmd},
		{Kind: pipeline.EndConsumerMeasurement, Time: end, Command: cmd, ExitCode: &code},
	}
}

// split separates the recorded points into the power points and the energy points.
func split(t *testing.T, r run) (power, energy []measure.Point, lastPower, firstEnergy int) {
	t.Helper()
	lastPower, firstEnergy = -1, -1
	for i, p := range r.out.Points() {
		m, ok := r.reg.Metric(p.Metric)
		require.True(t, ok)
		if strings.HasSuffix(m.Name, "_energy") {
			energy = append(energy, p)
			if firstEnergy < 0 {
				firstEnergy = i
			}
		} else {
			power = append(power, p)
			lastPower = i
		}
	}
	return power, energy, lastPower, firstEnergy
}

var summaryKeys = []string{"start", "end", "command", "exit_code", "total_energy_j", "series"}
var seriesKeys = []string{"node", "site", "metric", "samples", "coverage", "duration_s", "mean_w", "peak_w",
	"energy_j", "baseline_w", "dynamic_energy_j", "gaps", "method", "uncertainty_j", "outcome", "outcome_reason", "lag_s"}

func readSummary(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), string(b))
	keys := slices.DeleteFunc(slices.Collect(maps.Keys(m)), func(k string) bool { return k == "comparison" || k == "carbon" || k == "warnings" }) // there when they apply
	require.ElementsMatch(t, summaryKeys, keys)
	for _, s := range m["series"].([]any) {
		require.ElementsMatch(t, seriesKeys, slices.Collect(maps.Keys(s.(map[string]any))))
	}
	return m
}

func TestReportThroughPipeline(t *testing.T) {
	// Node a: 100 W; node b: the ramp. Window [0.3 s, 10.7 s]:
	// a: 100 W × 10.4 s = 1040 J (0.7 s of the first sample, 9 whole, 0.7 s of the last);
	// b: 0.7×100 + Σ_{k=1..9}(100+10k) + 0.7×200 = 70 + 1350 + 140 = 1560 J.
	const wantA, wantB = 1040.0, 1560.0
	tests := []struct {
		name     string
		baseline string
		wantDynA any // float64 or nil
	}{
		{"no baseline", "none", nil},
		{"baseline 95W", "95W", wantA - 95*10.4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := quietConfig()
			cfg.Baseline = tt.baseline
			cfg.SummaryFile = filepath.Join(dir, "energy.json")
			samples := append(append(ramp("b"), constant100("a")...),
				sample{"a", "bmc_cpu_temp_celsius", 1, 45}) // not a power: ignored
			r := runPipeline(t, cfg, t0, samples, execEvents(at(0.3), at(10.7), 0)...)
			require.NoError(t, r.stopEr)

			// The energy points come after every power point, one per series.
			power, en, lastPower, firstEnergy := split(t, r)
			require.Len(t, power, len(samples), "the points pass through unchanged")
			require.Greater(t, firstEnergy, lastPower)
			require.Len(t, en, 2)
			m, ok := r.reg.ByName("wattmetre_power_watt_energy")
			require.True(t, ok)
			require.Equal(t, measure.Plain(measure.Joule), m.Unit)
			require.Equal(t, measure.F64, m.Type)
			require.Equal(t, measure.Delta, m.Semantics)
			require.Equal(t, "Energy of wattmetre_power_watt over the measured window", m.Description)
			for i, want := range []struct {
				node string
				e    float64
			}{{"a", wantA}, {"b", wantB}} {
				p := en[i]
				require.Equal(t, m.ID, p.Metric)
				require.InDelta(t, want.e, p.Value.Float64(), 1e-9)
				require.True(t, p.Timestamp.Equal(at(10.7)))
				require.Equal(t, measure.Resource{Kind: "device_id", ID: want.node}, p.Resource)
				require.Equal(t, measure.Consumer{Kind: "device_origin", ID: "wattmetre1-port-" + want.node}, p.Consumer)
				require.Equal(t, []measure.Attribute{{Key: "metric_id", Value: measure.String("wattmetre_power_watt_energy")}}, p.Attributes)
			}

			// The JSON summary: exactly the keys, the values.
			s := readSummary(t, cfg.SummaryFile)
			require.Equal(t, "2026-03-14T09:26:53.300000000Z", s["start"])
			require.Equal(t, "2026-03-14T09:27:03.700000000Z", s["end"])
			require.Equal(t, []any{"./bench", "--size", "big one"}, s["command"])
			require.Equal(t, 0.0, s["exit_code"])
			require.InDelta(t, wantA+wantB, s["total_energy_j"].(map[string]any)[watt], 1e-9)
			series := s["series"].([]any)
			require.Len(t, series, 2)
			a, b := series[0].(map[string]any), series[1].(map[string]any)
			require.Equal(t, "a", a["node"])
			require.Equal(t, "b", b["node"])
			require.Nil(t, a["site"])
			require.Equal(t, watt, a["metric"])
			require.Equal(t, 11.0, a["samples"])
			require.Equal(t, 1.0, a["coverage"])
			require.InDelta(t, 10.4, a["duration_s"], 1e-12)
			require.InDelta(t, 100, a["mean_w"], 1e-9)
			require.Equal(t, 100.0, a["peak_w"])
			require.InDelta(t, wantA, a["energy_j"], 1e-9)
			require.InDelta(t, wantB, b["energy_j"], 1e-9)
			require.Equal(t, 200.0, b["peak_w"])
			require.Equal(t, []any{}, a["gaps"])
			require.Equal(t, "step integration of 1 s averages (each sample covers [t, t+1s))", a["method"])
			require.InDelta(t, 0.1*10.4, a["uncertainty_j"], 1e-9)
			if tt.wantDynA == nil {
				require.Nil(t, a["baseline_w"])
				require.Nil(t, a["dynamic_energy_j"])
			} else {
				require.Equal(t, 95.0, a["baseline_w"])
				require.InDelta(t, tt.wantDynA, a["dynamic_energy_j"], 1e-9)
			}
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Len(t, entries, 1, "no temporary file left")

			// The table.
			lines := strings.Split(r.table, "\n")
			require.Contains(t, r.table, "Energy report: [2026-03-14T09:26:53.300000000Z, 2026-03-14T09:27:03.700000000Z] (10.400 s), command: ./bench --size \"big one\", exit code 0\n")
			require.Regexp(t, `^node\s+site\s+metric\s+samples\s+coverage %\s+duration s\s+mean W\s+peak W\s+energy J\s+dynamic J$`, lines[1])
			dyn, dynTotal := "-", "-"
			if tt.wantDynA != nil {
				dyn = "52\\.00"       // 1040 − 95 × 10.4
				dynTotal = "624\\.00" // 2600 − 95 × 10.4 × 2
			}
			require.Regexp(t, `^a\s+-\s+wattmetre_power_watt\s+11\s+100\.0\s+10\.400\s+100\.00\s+100\.00\s+1040\.00\s+`+dyn+`$`, lines[2])
			require.Regexp(t, `^b\s+-\s+wattmetre_power_watt\s+11\s+100\.0\s+10\.400\s+150\.00\s+200\.00\s+1560\.00\s+`, lines[3])
			require.Regexp(t, `^total\s+-\s+wattmetre_power_watt\s+22\s+-\s+10\.400\s+250\.00\s+-\s+2600\.00\s+`+dynTotal+`$`, lines[4])
			require.Equal(t, len(lines[1]), len(lines[2]), "aligned columns")
			require.Contains(t, r.table, "method (wattmetre_power_watt): step integration of 1 s averages")
		})
	}
}

func TestReportNoWindow(t *testing.T) {
	tests := []struct {
		name    string
		events  []pipeline.Event
		wantLog string
	}{
		{"no event", nil, "No measurement window"},
		{"start only", execEvents(at(0.3), at(10.7), 0)[:1], "No measurement window"},
		{"fetch --job-id, no row", []pipeline.Event{{Kind: pipeline.EndConsumerMeasurement, Time: at(20), JobID: 777}}, "OAR job 777: no row, so no window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := quietConfig()
			cfg.SummaryFile = filepath.Join(t.TempDir(), "energy.json")
			r := runPipeline(t, cfg, t0, constant100("a"), tt.events...)
			require.NoError(t, r.stopEr)
			_, en, _, _ := split(t, r)
			require.Empty(t, en, "no energy point")
			require.Contains(t, r.log, "level=WARN")
			require.Contains(t, r.log, tt.wantLog)
			require.Empty(t, r.table)
			_, err := os.Stat(cfg.SummaryFile)
			require.ErrorIs(t, err, os.ErrNotExist)
		})
	}
}

// In run mode the only event is the end: the window starts at the agent's start.
func TestReportRunModeStartsAtAgentStart(t *testing.T) {
	cfg := quietConfig()
	r := runPipeline(t, cfg, at(0.3), constant100("a"), pipeline.Event{Kind: pipeline.EndConsumerMeasurement, Time: at(10.7)})
	require.NoError(t, r.stopEr)
	_, en, _, _ := split(t, r)
	require.Len(t, en, 1)
	require.InDelta(t, 1040, en[0].Value.Float64(), 1e-9)
	require.Contains(t, r.table, "(10.400 s, from the agent's start)\n")
}

func TestReportSeriesWithoutSamplesInWindow(t *testing.T) {
	dir := t.TempDir()
	cfg := quietConfig()
	cfg.SummaryFile = filepath.Join(dir, "energy.json")
	cfg.Baseline = "50W"
	samples := constant100("a")
	// c: rows long after the window; d: only NaN readings.
	for k := range 5 {
		samples = append(samples, sample{"c", watt, 100 + float64(k), 120}, sample{"d", watt, float64(k), math.NaN()})
	}
	r := runPipeline(t, cfg, t0, samples, execEvents(at(0.3), at(10.7), 3)...)
	require.NoError(t, r.stopEr)
	_, en, _, _ := split(t, r)
	require.Len(t, en, 1, "only the series with data get an energy point")
	require.Equal(t, "a", en[0].Resource.ID)

	s := readSummary(t, cfg.SummaryFile)
	require.Equal(t, 3.0, s["exit_code"])
	require.InDelta(t, 1040, s["total_energy_j"].(map[string]any)[watt], 1e-9)
	series := s["series"].([]any)
	require.Len(t, series, 3)
	for _, x := range series[1:] {
		c := x.(map[string]any)
		require.Contains(t, []string{"c", "d"}, c["node"])
		require.Equal(t, 0.0, c["samples"])
		require.Equal(t, 0.0, c["coverage"])
		require.InDelta(t, 10.4, c["duration_s"], 1e-12)
		for _, k := range []string{"mean_w", "peak_w", "energy_j", "dynamic_energy_j", "uncertainty_j"} {
			require.Nil(t, c[k], k)
		}
		require.Equal(t, 50.0, c["baseline_w"])
		require.Equal(t, []any{map[string]any{"from": "2026-03-14T09:26:53.300000000Z", "to": "2026-03-14T09:27:03.700000000Z"}}, c["gaps"])
		require.Equal(t, noDataMethod, c["method"])
	}
	require.Regexp(t, `(?m)^c\s+-\s+wattmetre_power_watt\s+0\s+0\.0\s+10\.400\s+-\s+-\s+-\s+-$`, r.table)
	require.Regexp(t, `(?m)^d\s+-\s+wattmetre_power_watt\s+0\s+0\.0\s+10\.400\s+-\s+-\s+-\s+-$`, r.table)
	require.Regexp(t, `(?m)^total\s+-\s+wattmetre_power_watt\s+11\s+-\s+10\.400\s+100\.00\s+-\s+1040\.00\s+520\.00$`, r.table)
	require.Contains(t, r.table, "no sample in the window: c wattmetre_power_watt\n")
}

func TestReportGapsAndMethods(t *testing.T) {
	cfg := quietConfig()
	cfg.SummaryFile = filepath.Join(t.TempDir(), "energy.json")
	cfg.Table = false
	var samples []sample
	// a: 1 Hz rows 0..59 without 20..29 (a 10 s gap); BMC readings every 5 s, with a site label.
	for k := range 60 {
		if k < 20 || k >= 30 {
			samples = append(samples, sample{"a", watt, float64(k), 100})
		}
		if k%5 == 0 {
			samples = append(samples, sample{"a", "bmc_node_power_watt", float64(k), 90})
		}
	}
	r := runPipeline(t, cfg, t0, samples, execEvents(at(0), at(60), 0)...)
	require.NoError(t, r.stopEr)
	require.Empty(t, r.table, "table = false")
	s := readSummary(t, cfg.SummaryFile)
	series := s["series"].([]any)
	require.Len(t, series, 2)
	bmc, w := series[0].(map[string]any), series[1].(map[string]any)
	require.Equal(t, "bmc_node_power_watt", bmc["metric"], "sorted by node, then metric")
	require.Equal(t, "trapezoidal integration of instantaneous samples", bmc["method"])
	require.InDelta(t, 90*60, bmc["energy_j"], 1e-9)
	require.Equal(t, []any{map[string]any{"from": "2026-03-14T09:27:13.000000000Z", "to": "2026-03-14T09:27:23.000000000Z"}}, w["gaps"])
	require.InDelta(t, 50.0/60, w["coverage"], 1e-12)
	require.InDelta(t, 6000, w["energy_j"], 1e-9)
	tot := s["total_energy_j"].(map[string]any)
	require.Len(t, tot, 2)
}

func TestReportMetricsOption(t *testing.T) {
	cfg := quietConfig()
	cfg.Metrics = MetricList{"bmc_node_power_watt", "bmc_cpu_temp_celsius", "pdu_outlet_power_watt"}
	samples := append(constant100("a"), sample{"a", "bmc_node_power_watt", 0, 90}, sample{"a", "bmc_node_power_watt", 20, 90},
		sample{"a", "bmc_cpu_temp_celsius", 1, 45})
	r := runPipeline(t, cfg, t0, samples, execEvents(at(0.3), at(10.7), 0)...)
	require.NoError(t, r.stopEr)
	_, en, _, _ := split(t, r)
	require.Len(t, en, 1)
	m, _ := r.reg.Metric(en[0].Metric)
	require.Equal(t, "bmc_node_power_watt_energy", m.Name)
	require.InDelta(t, 90*10.4, en[0].Value.Float64(), 1e-9)
	require.Contains(t, r.log, "bmc_cpu_temp_celsius is in °C, neither a power in W nor an energy")
	require.Contains(t, r.log, "no point of pdu_outlet_power_watt reached energy-report")
	require.NotContains(t, r.table, watt+" ")
}

func TestReportSiteAttributeAndOtherResources(t *testing.T) {
	reg := measure.NewRegistry()
	ids := registerMetrics(t, reg)
	var tbl testkit.LockedBuffer
	r, err := newReport(quietConfig(), reg, nil, &tbl, t0)
	require.NoError(t, err)
	var buf measure.Buffer
	for k := range 3 {
		buf.Push(measure.Point{Metric: ids[watt], Timestamp: at(float64(k)), Value: measure.Float(10),
			Resource:   measure.Resource{Kind: "device_id", ID: "taurus-7"},
			Attributes: []measure.Attribute{{Key: "metric_id", Value: measure.String(watt)}, {Key: "site", Value: measure.String("lyon")}}})
		buf.Push(measure.Point{Metric: ids["bmc_node_power_watt"], Timestamp: at(float64(k)), Value: measure.Uint(20), Resource: measure.LocalMachine})
	}
	tr := &Transform{r: r}
	src := tr
	require.NoError(t, tr.Apply(&buf))
	for _, ev := range execEvents(at(0), at(2), 0) {
		require.NoError(t, src.OnEvent(context.Background(), ev))
	}
	out, err := tr.Finish()
	require.NoError(t, err)
	require.Len(t, out.Points, 2)
	require.Regexp(t, `(?m)^local_machine\s+-\s+bmc_node_power_watt\s+`, tbl.String())
	require.Regexp(t, `(?m)^taurus-7\s+lyon\s+wattmetre_power_watt\s+2\s+100\.0\s+2\.000\s+10\.00\s+10\.00\s+20\.00\s+-$`, tbl.String())
	again, err := tr.Finish()
	require.NoError(t, err)
	require.Nil(t, again, "Finish reports once")
}

func TestStartThroughFactory(t *testing.T) {
	f := Factory()
	require.Equal(t, "energy-report", f.Name)
	require.Equal(t, "0.1.0", f.Version)
	require.Equal(t, "plugin_energy_report", f.LogTarget)
	b := pipeline.NewBuilder(measure.NewRegistry(), 4, nil)
	env := plugin.Env{Pipeline: b, Logger: slog.New(slog.DiscardHandler), Mode: plugin.ModeExec, StartTime: t0}
	cfg := quietConfig()
	cfg.SummaryFile = filepath.Join(t.TempDir(), "missing-dir", "e.json")
	require.ErrorContains(t, f.Start(context.Background(), cfg, env), "summary_file")
	cfg.SummaryFile = t.TempDir()
	require.ErrorContains(t, f.Start(context.Background(), cfg, env), "is a directory")
	cfg.SummaryFile = filepath.Join(t.TempDir(), "e.json")
	cfg.Table = false
	require.NoError(t, f.Start(context.Background(), cfg, env))
	s, tr, _ := b.Counts()
	require.Equal(t, 0, s, "no source faked to hear the events: the transform listens")
	require.Equal(t, 1, tr)
	require.True(t, b.WritesFiles())
	// A configuration of another type is refused, not cast blindly.
	require.ErrorContains(t, f.Start(context.Background(), &struct{ plugin.Config }{}, env), "energy-report: configuration of type")
}

func TestNum(t *testing.T) {
	require.Nil(t, num(math.NaN()))
	require.Nil(t, num(math.Inf(1)))
	require.Nil(t, num(math.Inf(-1)))
	require.Equal(t, 2.5, *num(2.5))
	b, err := json.Marshal(SeriesSummary{Coverage: 0, Gaps: []GapSummary{}})
	require.NoError(t, err)
	require.NotContains(t, string(b), "NaN")
}

// TestReportNoDataKeepsFiles: a window without any sample (an unreachable
// API, a node without a meter) writes neither the summary nor the plot: the
// previous run's files stay byte for byte, and the log says so.
func TestReportNoDataKeepsFiles(t *testing.T) {
	tests := []struct {
		name     string
		samples  []sample
		previous bool
		wantLog  string
	}{
		{"no series, previous files", nil, true, "no data: no power sample in the measured window: %[1]s and %[2]s not written, the previous files are kept"},
		{"no series, no file", nil, false, "no data: no power sample in the measured window: %[1]s and %[2]s not written\""},
		{"samples outside the window", []sample{{"c", watt, 100, 120}, {"c", watt, 101, 120}}, true, "the previous files are kept"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := quietConfig()
			cfg.SummaryFile, cfg.PlotFile = filepath.Join(dir, "energy.json"), filepath.Join(dir, "power.png")
			if tt.previous {
				require.NoError(t, os.WriteFile(cfg.SummaryFile, []byte(`{"old": true}`), 0o644))
				require.NoError(t, os.WriteFile(cfg.PlotFile, []byte("old png"), 0o644))
			}
			r := runPipeline(t, cfg, t0, tt.samples, execEvents(at(0.3), at(10.7), 0)...)
			require.NoError(t, r.stopEr)
			require.Contains(t, r.log, "level=WARN")
			want := tt.wantLog
			if strings.Contains(want, "%") {
				want = fmt.Sprintf(want, cfg.SummaryFile, cfg.PlotFile)
			}
			require.Contains(t, r.log, want)
			for path, old := range map[string]string{cfg.SummaryFile: `{"old": true}`, cfg.PlotFile: "old png"} {
				b, err := os.ReadFile(path)
				if !tt.previous {
					require.ErrorIs(t, err, os.ErrNotExist)
					continue
				}
				require.NoError(t, err)
				require.Equal(t, old, string(b))
			}
		})
	}
}

// TestReportWarnings: the warnings of the end event (marks in a burst at
// the exit) are in the run's JSON object and under its table.
func TestReportWarnings(t *testing.T) {
	const warn = "2 phase marks arrived together when the command exited: …"
	t.Run("single run", func(t *testing.T) {
		dir := t.TempDir()
		cfg := quietConfig()
		cfg.SummaryFile = filepath.Join(dir, "energy.json")
		evs := execEvents(at(0.3), at(10.7), 0)
		evs = append(evs[:1], pipeline.Event{Kind: pipeline.PhaseMark, Time: at(10.8), Phase: "load"}, pipeline.Event{Kind: pipeline.PhaseMark, Time: at(10.8), Phase: "store"}, evs[1])
		evs[3].Warnings = []string{warn}
		r := runPipeline(t, cfg, t0, constant100("a"), evs...)
		require.NoError(t, r.stopEr)
		b, err := os.ReadFile(cfg.SummaryFile)
		require.NoError(t, err)
		var s struct {
			Warnings []string `json:"warnings"`
			Phases   []struct {
				Name string `json:"name"`
			} `json:"phases"`
		}
		require.NoError(t, json.Unmarshal(b, &s))
		require.Equal(t, []string{warn}, s.Warnings)
		require.Contains(t, r.table, "\nwarning: "+warn+"\n")
	})
	t.Run("repeat: the run's own", func(t *testing.T) {
		dir := t.TempDir()
		cfg := quietConfig()
		cfg.SummaryFile = filepath.Join(dir, "energy.json")
		code := 0
		r := runPipeline(t, cfg, t0, nil,
			pipeline.Event{Kind: pipeline.StartConsumerMeasurement, Time: at(0.3), Run: 1},
			pipeline.Event{Kind: pipeline.EndConsumerMeasurement, Time: at(5), Run: 1, ExitCode: &code},
			pipeline.Event{Kind: pipeline.StartConsumerMeasurement, Time: at(6), Run: 2},
			pipeline.Event{Kind: pipeline.EndConsumerMeasurement, Time: at(10.7), Run: 2, ExitCode: &code, Warnings: []string{warn}},
		)
		require.NoError(t, r.stopEr)
		require.Contains(t, r.table, "warning: "+warn)
		_, err := os.Stat(cfg.SummaryFile)
		require.ErrorIs(t, err, os.ErrNotExist, "no sample: no summary")
	})
	t.Run("none: no key", func(t *testing.T) {
		dir := t.TempDir()
		cfg := quietConfig()
		cfg.SummaryFile = filepath.Join(dir, "energy.json")
		r := runPipeline(t, cfg, t0, constant100("a"), execEvents(at(0.3), at(10.7), 0)...)
		require.NoError(t, r.stopEr)
		readSummary(t, cfg.SummaryFile) // exactly the documented keys
		require.NotContains(t, r.table, "warning")
	})
}

func TestWantsPhaseLines(t *testing.T) {
	for _, on := range []bool{false, true} {
		cfg := quietConfig()
		cfg.Phases = on
		b := pipeline.NewBuilder(measure.NewRegistry(), 0, slog.New(slog.DiscardHandler))
		r, err := newReport(cfg, b.Registry(), nil, nil, t0)
		require.NoError(t, err)
		require.NoError(t, install(b, nil, r))
		p := b.Start(context.Background())
		require.Equal(t, on, p.WantsPhaseLines())
		require.NoError(t, p.Stop(context.Background()))
	}
}
