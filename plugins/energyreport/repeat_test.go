package energyreport

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/energy"
	"github.com/alumet-go/alumet-agent/internal/testkit"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
	"github.com/alumet-go/alumet-agent/pipeline/pipelinetest"
	"github.com/alumet-go/alumet-agent/plugin"
)

// runFeeder is a source like kwollect-input with exec --repeat: at the end
// of run i it emits the 1 Hz samples of watts(i, s) over the run's seconds,
// tagged run=i, and at the end of the first run it delivers the history
// the pipeline asks for.
type runFeeder struct {
	history *pipeline.History
	id      measure.MetricID
	nodes   []string
	watts   func(node string, run int, s float64) float64 // s: seconds after t0
	hist    func(node string) []float64                   // history values
	mu      sync.Mutex
	starts  map[int]time.Time
	histed  bool
	only    map[int]string // run → the only node with points in it
}

func (f *runFeeder) Run(ctx context.Context, _ pipeline.Emitter) error {
	<-ctx.Done()
	return nil
}

func (f *runFeeder) point(node string, ts time.Time, w float64, run int) measure.Point {
	attrs := []measure.Attribute{{Key: "metric_id", Value: measure.String(watt)}}
	if run > 0 {
		attrs = append(attrs, measure.Attribute{Key: "run", Value: measure.AttrValue{Type: measure.AttrU64, U64: uint64(run)}})
	}
	return measure.Point{Metric: f.id, Timestamp: ts, Value: measure.Float(w),
		Resource: measure.Resource{Kind: "device_id", ID: node}, Consumer: measure.Consumer{Kind: "device_origin", ID: "port-" + node}, Attributes: attrs}
}

func (f *runFeeder) HandleEvent(ctx context.Context, ev pipeline.Event, out pipeline.Emitter) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch ev.Kind {
	case pipeline.StartConsumerMeasurement:
		f.starts[ev.Run] = ev.Time
	case pipeline.EndConsumerMeasurement:
		start := f.starts[ev.Run].Truncate(time.Second)
		if d := f.history.Wanted(); d > 0 && !f.histed && f.hist != nil {
			f.histed = true
			buf := &measure.Buffer{}
			for _, n := range f.nodes {
				for i, w := range f.hist(n) {
					buf.Push(f.point(n, start.Add(-d+time.Duration(i)*time.Second), w, 0))
				}
			}
			f.history.Deliver(buf)
		}
		buf := &measure.Buffer{}
		for ts := start; ts.Before(ev.Time); ts = ts.Add(time.Second) {
			for _, n := range f.nodes {
				if o, ok := f.only[ev.Run]; ok && o != n {
					continue
				}
				buf.Push(f.point(n, ts, f.watts(n, ev.Run, ts.Sub(t0).Seconds()), ev.Run))
			}
		}
		return out.Emit(ctx, buf)
	}
	return nil
}

type repeatRun struct {
	reg   *measure.Registry
	out   *pipelinetest.Recorder
	table string
	log   string
	err   error
}

func runRepeat(t *testing.T, cfg *Config, f *runFeeder, events []pipeline.Event) repeatRun {
	t.Helper()
	reg := measure.NewRegistry()
	ids := registerMetrics(t, reg)
	f.id, f.starts = ids[watt], map[int]time.Time{}
	var logBuf, tableBuf testkit.LockedBuffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	b := pipeline.NewBuilder(reg, 4, log)
	f.history = b.History()
	require.NoError(t, b.AddSource("feeder", f))
	r, err := newReport(cfg, reg, log, &tableBuf, t0)
	require.NoError(t, err)
	require.NoError(t, install(b, nil, r))
	out := &pipelinetest.Recorder{}
	require.NoError(t, b.AddOutput("rec", out))
	p := b.Start(context.Background())
	for _, ev := range events {
		require.NoError(t, p.Publish(context.Background(), ev))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = p.Stop(ctx)
	return repeatRun{reg: reg, out: out, table: tableBuf.String(), log: logBuf.String(), err: err}
}

// repeatEvents: run i spans [starts[i], ends[i]], with its marks.
func repeatEvents(windows [][2]float64, marks map[int][]mark) []pipeline.Event {
	var evs []pipeline.Event
	cmd := []string{"./bench"}
	for i, w := range windows {
		run := i + 1
		code := 0
		evs = append(evs, pipeline.Event{Kind: pipeline.StartConsumerMeasurement, Time: at(w[0]), Command: cmd, Run: run})
		for _, m := range marks[run] {
			evs = append(evs, pipeline.Event{Kind: pipeline.PhaseMark, Time: m.at, Phase: m.name, Run: run})
		}
		evs = append(evs, pipeline.Event{Kind: pipeline.EndConsumerMeasurement, Time: at(w[1]), Command: cmd, ExitCode: &code, Run: run})
	}
	return evs
}

type repeatFile struct {
	Start, End string
	Command    []string
	Runs       []struct {
		Run          int                 `json:"run"`
		Start        string              `json:"start"`
		End          string              `json:"end"`
		TotalEnergyJ map[string]*float64 `json:"total_energy_j"`
		Series       []struct {
			Node           string   `json:"node"`
			EnergyJ        *float64 `json:"energy_j"`
			BaselineW      *float64 `json:"baseline_w"`
			DynamicEnergyJ *float64 `json:"dynamic_energy_j"`
			DurationS      float64  `json:"duration_s"`
		} `json:"series"`
		Phases []struct {
			Name         string              `json:"name"`
			Start        string              `json:"start"`
			End          string              `json:"end"`
			DurationS    float64             `json:"duration_s"`
			TotalEnergyJ map[string]*float64 `json:"total_energy_j"`
			Series       []struct {
				Node    string   `json:"node"`
				EnergyJ *float64 `json:"energy_j"`
				MeanW   *float64 `json:"mean_w"`
			} `json:"series"`
		} `json:"phases"`
	} `json:"runs"`
	StatsRuns []int `json:"stats_runs"`
	Stats     []struct {
		Node, Metric       string
		Runs               int
		Mean, SD, Min, Max *float64
		CI95               []*float64 `json:"ci95"`
	} `json:"stats"`
	Warnings []string `json:"warnings"`
}

// TestRepeatRunsPhasesAndStats: three runs of 10.5 s at 100, 110 and 120 W
// on node a (and twice that on node b); run 2 has phases. Every energy is
// exact (constant power), the statistics are those of {1050, 1155, 1260},
// the phases of run 2 add up to its energy, and every energy point carries
// its run.
func TestRepeatRunsPhasesAndStats(t *testing.T) {
	dir := t.TempDir()
	cfg := quietConfig()
	cfg.SummaryFile = filepath.Join(dir, "energy.json")
	cfg.PlotFile = filepath.Join(dir, "power.svg")
	f := &runFeeder{nodes: []string{"a", "b"}, watts: func(node string, run int, _ float64) float64 {
		w := 90 + 10*float64(run)
		if node == "b" {
			w *= 2
		}
		return w
	}}
	windows := [][2]float64{{0.25, 10.75}, {20.5, 31}, {40, 50.5}}
	marks := map[int][]mark{2: {{"load", at(22.5)}, {"store", at(27.25)}, {"late", at(40)}}}
	r := runRepeat(t, cfg, f, repeatEvents(windows, marks))
	require.NoError(t, r.err, r.log)

	b, err := os.ReadFile(cfg.SummaryFile)
	require.NoError(t, err)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(b, &raw))
	require.ElementsMatch(t, []string{"start", "end", "command", "runs", "stats_runs", "stats"}, keys(raw), "no warnings when every run is in")
	var s repeatFile
	require.NoError(t, json.Unmarshal(b, &s))
	require.Equal(t, "2026-03-14T09:26:53.250000000Z", s.Start)
	require.Equal(t, "2026-03-14T09:27:43.500000000Z", s.End)
	require.Len(t, s.Runs, 3)
	want := []float64{1050, 1155, 1260}
	for i, run := range s.Runs {
		require.Equal(t, i+1, run.Run)
		require.Len(t, run.Series, 2)
		require.InDelta(t, want[i], *run.Series[0].EnergyJ, 1e-9)
		require.InDelta(t, 2*want[i], *run.Series[1].EnergyJ, 1e-9)
		require.InDelta(t, 3*want[i], *run.TotalEnergyJ[watt], 1e-9)
	}
	// Phases of run 2: before the first mark [20.5, 22.5), load [22.5,
	// 27.25), store [27.25, 31]; the mark at 40 is after the run: ignored.
	ph := s.Runs[1].Phases
	require.Len(t, ph, 3)
	require.Empty(t, s.Runs[0].Phases)
	var sum float64
	for i, w := range []struct {
		name string
		dur  float64
	}{{unmarkedPhase, 2}, {"load", 4.75}, {"store", 3.75}} {
		require.Equal(t, w.name, ph[i].Name)
		require.InDelta(t, w.dur, ph[i].DurationS, 1e-9)
		require.InDelta(t, 3*110*w.dur, *ph[i].TotalEnergyJ[watt], 1e-9)
		require.InDelta(t, 110*w.dur, *ph[i].Series[0].EnergyJ, 1e-9)
		require.InDelta(t, 110, *ph[i].Series[0].MeanW, 1e-9)
		sum += *ph[i].TotalEnergyJ[watt]
	}
	require.InDelta(t, *s.Runs[1].TotalEnergyJ[watt], sum, 1e-9, "the phases add up to the run")

	// Statistics: mean 1155, sd 105, 95 % CI 1155 ± 4.303 × 105 / √3.
	require.Equal(t, []int{1, 2, 3}, s.StatsRuns)
	require.Len(t, s.Stats, 2)
	st := s.Stats[0]
	require.Equal(t, "a", st.Node)
	require.Equal(t, 3, st.Runs)
	require.InDelta(t, 1155, *st.Mean, 1e-9)
	require.InDelta(t, 105, *st.SD, 1e-9)
	require.InDelta(t, 1050, *st.Min, 1e-9)
	require.InDelta(t, 1260, *st.Max, 1e-9)
	half := 4.303 * 105 / math.Sqrt(3)
	require.InDelta(t, 1155-half, *st.CI95[0], 1e-9)
	require.InDelta(t, 1155+half, *st.CI95[1], 1e-9)
	require.InDelta(t, 2*105, *s.Stats[1].SD, 1e-9)

	// Energy points: one per series and run, tagged with the run.
	_, en, _, _ := split(t, run{reg: r.reg, out: r.out})
	require.Len(t, en, 6)
	for _, p := range en {
		require.Equal(t, "run", p.Attributes[len(p.Attributes)-1].Key)
	}
	require.Equal(t, uint64(2), en[2].Attributes[1].Value.U64)
	require.True(t, en[2].Timestamp.Equal(at(31)))

	// The table: one block per run, the phases, the statistics.
	require.Contains(t, r.table, "Energy report, run 1: [2026-03-14T09:26:53.250000000Z, 2026-03-14T09:27:03.750000000Z] (10.500 s)")
	require.Contains(t, r.table, "Energy report, run 3:")
	require.Regexp(t, `(?m)^load\s+wattmetre_power_watt\s+2\.000\s+4\.750\s+330\.00\s+1567\.50\s+45\.2$`, r.table)
	require.Contains(t, r.table, "Energy over the runs (95 % confidence interval of the mean, Student's t):")
	require.Regexp(t, `(?m)^a\s+-\s+wattmetre_power_watt\s+3\s+1155\.00\s+105\.00\s+1050\.00\s+1260\.00\s+\[894\.14, 1415\.86\]$`, r.table)
	require.NotContains(t, r.table, "note:", "every run is in the statistics")

	svg, err := os.ReadFile(cfg.PlotFile)
	require.NoError(t, err)
	require.Contains(t, string(svg), "<svg")
	require.Contains(t, string(svg), "run 3")
}

// withExitCodes sets the exit code of the end event of the given runs.
func withExitCodes(evs []pipeline.Event, codes map[int]int) []pipeline.Event {
	for i, ev := range evs {
		if c, ok := codes[ev.Run]; ok && ev.Kind == pipeline.EndConsumerMeasurement {
			evs[i].ExitCode = &c
		}
	}
	return evs
}

// TestRepeatFailedRunLeftOut: exec --repeat 3 where run 2 exits with 4, so
// run 3 never starts: run 2 keeps its own report but is left out of the
// statistics, which say they are over run 1 only, and the JSON's warnings
// say which run failed and that none started after it.
func TestRepeatFailedRunLeftOut(t *testing.T) {
	dir := t.TempDir()
	cfg := quietConfig()
	cfg.SummaryFile = filepath.Join(dir, "energy.json")
	f := &runFeeder{nodes: []string{"a"}, watts: func(_ string, run int, _ float64) float64 { return 90 + 10*float64(run) }}
	evs := withExitCodes(repeatEvents([][2]float64{{0, 10}, {20, 30}}, nil), map[int]int{2: 4})
	r := runRepeat(t, cfg, f, evs)
	require.NoError(t, r.err, r.log)

	b, err := os.ReadFile(cfg.SummaryFile)
	require.NoError(t, err)
	var s repeatFile
	require.NoError(t, json.Unmarshal(b, &s))
	require.Len(t, s.Runs, 2, "the failed run keeps its own report")
	require.Equal(t, []int{1}, s.StatsRuns)
	wantWarn := "run 2 failed (exit code 4): left out of the statistics; no run was started after it " +
		"(exec stops at a failed run unless --ignore-exit-code), so any run that --repeat asked for after run 2 is missing"
	require.Empty(t, cmp.Diff([]string{wantWarn}, s.Warnings))
	require.Len(t, s.Stats, 1)
	require.Equal(t, 1, s.Stats[0].Runs, "runs counts the runs used")
	require.InDelta(t, 1000, *s.Stats[0].Mean, 1e-9, "the mean is run 1's alone")
	require.Nil(t, s.Stats[0].SD)
	require.Nil(t, s.Stats[0].CI95)

	require.Regexp(t, `(?m)^a\s+-\s+wattmetre_power_watt\s+1\s+1000\.00\s+-\s+1000\.00\s+1000\.00\s+-$`, r.table)
	require.Contains(t, r.table, "Energy report, run 2: ")
	require.Contains(t, r.table, ", exit code 4\n")
	require.Contains(t, r.table, "\nnote: the statistics are over run 1\nnote: "+wantWarn+"\n")
}

// TestSelectRuns: which runs the statistics are over, and the notes that
// say why the others are not.
func TestSelectRuns(t *testing.T) {
	const stopped = "; no run was started after it (exec stops at a failed run unless --ignore-exit-code), so any run that --repeat asked for after run %d is missing"
	const ignored = " (--ignore-exit-code kept the series going, but a failed run did not do the measured work)"
	tests := []struct {
		name      string
		runs      []int       // indexes of the runs with a window
		codes     map[int]int // exit codes other than 0; -1: unknown (no code)
		wantUsed  []int
		wantNotes []string
		wantOver  string
		wantN     int // runs in the statistics of the one series
	}{
		{name: "all succeed", runs: []int{1, 2, 3}, wantUsed: []int{1, 2, 3}, wantOver: "the statistics are over runs 1 to 3", wantN: 3},
		{name: "last fails", runs: []int{1, 2}, codes: map[int]int{2: 4}, wantUsed: []int{1}, wantN: 1,
			wantNotes: []string{"run 2 failed (exit code 4): left out of the statistics" + fmt.Sprintf(stopped, 2)},
			wantOver:  "the statistics are over run 1"},
		{name: "killed by a signal", runs: []int{1, 2, 3}, codes: map[int]int{3: 143}, wantUsed: []int{1, 2}, wantN: 2,
			wantNotes: []string{"run 3 failed (exit code 143): left out of the statistics" + fmt.Sprintf(stopped, 3)},
			wantOver:  "the statistics are over runs 1 and 2"},
		{name: "a failure with --ignore-exit-code", runs: []int{1, 2, 3, 4}, codes: map[int]int{2: 1}, wantUsed: []int{1, 3, 4}, wantN: 3,
			wantNotes: []string{"run 2 failed (exit code 1): left out of the statistics" + ignored},
			wantOver:  "the statistics are over runs 1, 3 and 4"},
		{name: "unknown exit code counts", runs: []int{1, 2}, codes: map[int]int{1: -1}, wantUsed: []int{1, 2}, wantN: 2,
			wantOver: "the statistics are over runs 1 and 2"},
		{name: "runs without a window", runs: []int{1, 4, 5}, wantUsed: []int{1, 4, 5}, wantN: 3,
			wantNotes: []string{"runs 2 and 3 have no complete measurement window: left out of the statistics"},
			wantOver:  "the statistics are over runs 1, 4 and 5"},
		{name: "every run fails", runs: []int{1}, codes: map[int]int{1: 2},
			wantNotes: []string{"run 1 failed (exit code 2): left out of the statistics" + fmt.Sprintf(stopped, 1)},
			wantOver:  "no run exited with code 0: no statistics"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rr []runReport
			for _, i := range tt.runs {
				w := window{run: i}
				switch c, ok := tt.codes[i]; {
				case !ok:
					zero := 0
					w.exitCode = &zero
				case c >= 0:
					w.exitCode = &c
				}
				rr = append(rr, runReport{win: w, rows: []row{{key: seriesKey{node: "n", metric: watt, run: i}, hasData: true, res: resultOf(float64(i))}}})
			}
			sel := selectRuns(rr)
			require.Empty(t, cmp.Diff(tt.wantUsed, sel.used))
			require.Empty(t, cmp.Diff(tt.wantNotes, sel.notes))
			require.Equal(t, tt.wantOver, sel.overText())
			if tt.wantN == 0 {
				require.Empty(t, sel.stats)
				return
			}
			require.Len(t, sel.stats, 1)
			require.Equal(t, tt.wantN, sel.stats[0].n)
		})
	}
}

func TestRunList(t *testing.T) {
	for in, want := range map[string]string{"3": "3", "1 3": "1 and 3", "1 2": "1 and 2", "1 2 3": "1 to 3", "1 2 3 5": "1 to 3 and 5",
		"1 3 5": "1, 3 and 5", "1 2 4 5 6": "1, 2 and 4 to 6"} {
		var runs []int
		for _, f := range strings.Fields(in) {
			n, err := strconv.Atoi(f)
			require.NoError(t, err)
			runs = append(runs, n)
		}
		require.Equal(t, want, runList(runs), in)
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestHistoryBaseline: baseline = "before:30s" takes the median of each
// node's history; a node without history gets no baseline (null) and a
// warning.
func TestHistoryBaseline(t *testing.T) {
	dir := t.TempDir()
	cfg := quietConfig()
	cfg.SummaryFile = filepath.Join(dir, "energy.json")
	cfg.Baseline = "before:30s"
	f := &runFeeder{
		nodes: []string{"a", "b"},
		watts: func(string, int, float64) float64 { return 150 },
		hist: func(node string) []float64 {
			if node == "b" {
				return nil
			}
			h := make([]float64, 30)
			for i := range h {
				h[i] = 95 + float64(i%3) - 1 // 94, 95, 96...: median 95
			}
			h[3], h[7] = 400, math.NaN() // a spike and a missing value do not move the median much
			return h
		},
	}
	evs := []pipeline.Event{
		{Kind: pipeline.StartConsumerMeasurement, Time: at(0.5)},
		{Kind: pipeline.EndConsumerMeasurement, Time: at(10.5)},
	}
	r := runRepeat(t, cfg, f, evs)
	require.NoError(t, r.err, r.log)
	s := readSummary(t, cfg.SummaryFile)
	series := s["series"].([]any)
	a, b := series[0].(map[string]any), series[1].(map[string]any)
	require.Equal(t, 95.0, a["baseline_w"])
	require.InDelta(t, 1500-95*10, a["dynamic_energy_j"], 1e-9)
	require.Nil(t, b["baseline_w"])
	require.Nil(t, b["dynamic_energy_j"])
	require.Contains(t, r.log, "baseline: no sample of b wattmetre_power_watt in the 30s before the run")
	require.Contains(t, r.table, "baseline: median power over the 30s before the first run (a wattmetre_power_watt 95.00 W, b wattmetre_power_watt - W)")
}

func TestPhasesOf(t *testing.T) {
	w := window{start: at(10), end: at(20)}
	tests := []struct {
		name  string
		marks []mark
		want  []phase
	}{
		{"no mark", nil, nil},
		{"mark at the start", []mark{{"a", at(10)}}, []phase{{"a", at(10), at(20)}}},
		{"mark before the start", []mark{{"a", at(5)}, {"b", at(12)}}, []phase{{"a", at(10), at(12)}, {"b", at(12), at(20)}}},
		{"unmarked beginning", []mark{{"a", at(11)}}, []phase{{unmarkedPhase, at(10), at(11)}, {"a", at(11), at(20)}}},
		{"out of order, one after the end", []mark{{"c", at(25)}, {"b", at(15)}, {"a", at(12)}}, []phase{{unmarkedPhase, at(10), at(12)}, {"a", at(12), at(15)}, {"b", at(15), at(20)}}},
		{"same instant: the last wins", []mark{{"a", at(12)}, {"b", at(12)}}, []phase{{unmarkedPhase, at(10), at(12)}, {"b", at(12), at(20)}}},
		{"mark at the end", []mark{{"a", at(20)}}, []phase{{unmarkedPhase, at(10), at(20)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w.marks = tt.marks
			got := phasesOf(w)
			require.Empty(t, cmp.Diff(tt.want, got, cmp.AllowUnexported(phase{})))
			if len(got) > 0 {
				require.True(t, got[0].start.Equal(w.start))
				require.True(t, got[len(got)-1].end.Equal(w.end))
			}
		})
	}
}

func TestStatistics(t *testing.T) {
	tests := []struct {
		vals          []float64
		mean, sd      float64
		ciLow, ciHigh float64
		wantNaNSD     bool
	}{
		{vals: []float64{5}, mean: 5, wantNaNSD: true},
		{vals: []float64{1, 3}, mean: 2, sd: math.Sqrt2, ciLow: 2 - 12.706, ciHigh: 2 + 12.706},
		{vals: []float64{10, 10, 10, 10}, mean: 10, sd: 0, ciLow: 10, ciHigh: 10},
		{vals: []float64{2, 4, 4, 4, 5, 5, 7, 9}, mean: 5, sd: math.Sqrt(32.0 / 7), ciLow: 5 - 2.365*math.Sqrt(32.0/7)/math.Sqrt(8), ciHigh: 5 + 2.365*math.Sqrt(32.0/7)/math.Sqrt(8)},
	}
	for _, tt := range tests {
		var rr []runReport
		for i, v := range tt.vals {
			rr = append(rr, runReport{win: window{run: i + 1}, rows: []row{{key: seriesKey{node: "n", metric: watt, run: i + 1}, hasData: true, res: resultOf(v)}}})
		}
		st := statsOf(rr)
		require.Len(t, st, 1)
		s := st[0]
		require.Equal(t, len(tt.vals), s.n)
		require.InDelta(t, tt.mean, s.mean, 1e-12)
		if tt.wantNaNSD {
			require.True(t, math.IsNaN(s.sd))
			continue
		}
		require.InDelta(t, tt.sd, s.sd, 1e-12)
		require.InDelta(t, tt.ciLow, s.ciLow, 1e-9)
		require.InDelta(t, tt.ciHigh, s.ciHigh, 1e-9)
	}
	for df, want := range map[int]float64{1: 12.706, 2: 4.303, 10: 2.228, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980, 1 << 30: 1.960} {
		require.InDelta(t, want, tQuantile975(df), 1e-6, "df %d", df)
	}
	require.InDelta(t, 2.0105, tQuantile975(48), 2e-3)
	require.True(t, math.IsNaN(tQuantile975(0)))
}

// TestWaitIdle: the cooldown polls the recent power until it is within the
// tolerance of the baseline, warns at the limit, and says when it cannot
// judge.
func TestWaitIdle(t *testing.T) {
	oldPoll := idlePoll
	idlePoll = time.Millisecond
	defer func() { idlePoll = oldPoll }()
	reg := measure.NewRegistry()
	ids := registerMetrics(t, reg)
	recentOf := func(ws ...float64) func(ctx context.Context, from, to time.Time) (*measure.Buffer, error) {
		calls := 0
		return func(ctx context.Context, from, to time.Time) (*measure.Buffer, error) {
			w := ws[min(calls, len(ws)-1)]
			calls++
			buf := &measure.Buffer{}
			for i := range 5 {
				buf.Push(measure.Point{Metric: ids[watt], Timestamp: to.Add(-time.Duration(i) * time.Second), Value: measure.Float(w),
					Resource: measure.Resource{Kind: "device_id", ID: "a"}})
			}
			return buf, nil
		}
	}
	tests := []struct {
		name        string
		baseline    string
		recent      func(ctx context.Context, from, to time.Time) (*measure.Buffer, error)
		limit       time.Duration
		wantHandled bool
		wantLog     string
	}{
		{"no baseline", "none", recentOf(100), time.Second, false, ""},
		{"back to idle", "100W", recentOf(150, 140, 104), time.Minute, true, "the power is back to idle (at most 5 % above the idle level)"},
		{"below the idle level is idle", "100W", recentOf(80), time.Minute, true, "the power is back to idle (at most 5 % above the idle level)"},
		{"near a 0 W baseline", "0W", recentOf(0.8), time.Minute, true, "the power is back"},
		{"never idle", "100W", recentOf(150), 20 * time.Millisecond, true, "still more than 5 % above the idle level after 20ms (a wattmetre_power_watt at 150.0 W, idle 100.0 W)"},
		{"no source of recent data", "100W", nil, time.Second, false, ""},
		{"no history", "before:30s", recentOf(100), time.Second, false, "no idle level known"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logBuf testkit.LockedBuffer
			cfg := quietConfig()
			cfg.Baseline = tt.baseline
			r, err := newReport(cfg, reg, slog.New(slog.NewTextHandler(&logBuf, nil)), nil, t0)
			require.NoError(t, err)
			if tt.recent != nil {
				r.history.ProvideRecent(tt.recent)
			}
			handled, err := (&Transform{r: r}).WaitIdle(context.Background(), 0.05, tt.limit)
			require.NoError(t, err)
			require.Equal(t, tt.wantHandled, handled)
			if tt.wantLog != "" {
				require.Contains(t, logBuf.String(), tt.wantLog)
			}
		})
	}
	// A cancelled context ends the wait.
	cfg := quietConfig()
	cfg.Baseline = "100W"
	r, err := newReport(cfg, reg, nil, nil, t0)
	require.NoError(t, err)
	r.history.ProvideRecent(recentOf(300))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = r.waitIdle(ctx, 0.05, time.Hour)
	require.ErrorIs(t, err, context.Canceled)
}

func resultOf(e float64) energy.Result {
	return energy.Result{Energy: energy.Joules(e), Duration: 10 * time.Second, Samples: 10}
}

// quietConfig is the default config writing no file (the defaults write
// alumet-energy.json and alumet-power.png in the working directory).
func quietConfig() *Config {
	c := DefaultConfig()
	c.SummaryFile, c.PlotFile = "", ""
	return c
}

// TestSiteFromDirectory: a node's site comes from the pipeline's directory
// (what kwollect-input knows) when its points carry none.
func TestSiteFromDirectory(t *testing.T) {
	reg := measure.NewRegistry()
	ids := registerMetrics(t, reg)
	b := pipeline.NewBuilder(reg, 4, nil)
	dir := &plugin.Directory{}
	dir.SetSite("a.nancy.grid5000.fr", "nancy")
	r, err := newReport(quietConfig(), reg, nil, nil, t0)
	require.NoError(t, err)
	require.NoError(t, install(b, dir, r))
	r.add(&measure.Buffer{Points: []measure.Point{
		{Metric: ids[watt], Timestamp: at(0), Value: measure.Float(100), Resource: measure.Resource{Kind: "device_id", ID: "a"}},
		{Metric: ids[watt], Timestamp: at(0), Value: measure.Float(100), Resource: measure.Resource{Kind: "device_id", ID: "b"}},
	}})
	rr := &runReport{win: window{start: at(0), end: at(1)}}
	ra, err := r.integrateRow(r.series[seriesKey{node: "a", metric: watt, run: 0}], rr, nil)
	require.NoError(t, err)
	require.Equal(t, "nancy", ra.site)
	rb, err := r.integrateRow(r.series[seriesKey{node: "b", metric: watt, run: 0}], rr, nil)
	require.NoError(t, err)
	require.Equal(t, "", rb.site, "unknown")
}

func TestSampleStore(t *testing.T) {
	var st sampleStore
	n := 2*sampleBlock + 3
	for i := range n {
		st.push(rawSample{t: int64(i), w: float64(i)})
	}
	require.Equal(t, n, st.n)
	require.Len(t, st.blocks, 3)
	i := 0
	st.all(func(x rawSample) {
		require.Equal(t, int64(i), x.t)
		i++
	})
	require.Equal(t, n, i)
}

// TestMarkBeforeStartAndMissingSeries: a mark that arrives before its
// run's start event is kept (counted from the start); a node with no data
// in one run still has a row in it, without data.
func TestMarkBeforeStartAndMissingSeries(t *testing.T) {
	dir := t.TempDir()
	cfg := quietConfig()
	cfg.SummaryFile = filepath.Join(dir, "energy.json")
	f := &runFeeder{nodes: []string{"a", "b"}, watts: func(string, int, float64) float64 { return 100 }}
	code := 0
	evs := []pipeline.Event{
		{Kind: pipeline.PhaseMark, Time: at(0.1), Phase: "init", Run: 1},
		{Kind: pipeline.StartConsumerMeasurement, Time: at(0.2), Run: 1},
		{Kind: pipeline.EndConsumerMeasurement, Time: at(5.2), ExitCode: &code, Run: 1},
		{Kind: pipeline.StartConsumerMeasurement, Time: at(10), Run: 2},
	}
	f.only = map[int]string{2: "a"}
	r := runRepeat(t, cfg, f, append(evs,
		pipeline.Event{Kind: pipeline.EndConsumerMeasurement, Time: at(15), ExitCode: &code, Run: 2}))
	require.NoError(t, r.err, r.log)
	var s repeatFile
	b, err := os.ReadFile(cfg.SummaryFile)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &s))
	require.Len(t, s.Runs, 2)
	require.Len(t, s.Runs[0].Phases, 1)
	require.Equal(t, "init", s.Runs[0].Phases[0].Name)
	require.Equal(t, "2026-03-14T09:26:53.200000000Z", s.Runs[0].Phases[0].Start, "from the run's start")
	require.Len(t, s.Runs[1].Series, 2, "b has a row in run 2, without data")
	require.Equal(t, "b", s.Runs[1].Series[1].Node)
	require.Nil(t, s.Runs[1].Series[1].EnergyJ)
	require.Contains(t, r.table, "no sample in the window: b wattmetre_power_watt")
}

// TestJobSpanWindow: fetch --job-id reports over the span of the job's rows
// that the source recorded in the directory.
func TestJobSpanWindow(t *testing.T) {
	reg := measure.NewRegistry()
	ids := registerMetrics(t, reg)
	b := pipeline.NewBuilder(reg, 4, nil)
	dir := &plugin.Directory{}
	dir.SetJobSpan(777, at(0), at(11))
	var tbl testkit.LockedBuffer
	r, err := newReport(quietConfig(), reg, nil, &tbl, t0)
	require.NoError(t, err)
	require.NoError(t, install(b, dir, r))
	require.NoError(t, (&Transform{r: r}).OnEvent(context.Background(), pipeline.Event{Kind: pipeline.EndConsumerMeasurement, Time: at(30), JobID: 777}))
	for _, s := range constant100("a") {
		r.add(&measure.Buffer{Points: []measure.Point{{Metric: ids[watt], Timestamp: at(s.t), Value: measure.Float(s.w), Resource: measure.Resource{Kind: "device_id", ID: "a"}}}})
	}
	buf, err := r.finish()
	require.NoError(t, err)
	require.Len(t, buf.Points, 1)
	require.InDelta(t, 1100, buf.Points[0].Value.Float64(), 1e-9, "100 W over [t0, t0+11 s]")
	require.Contains(t, tbl.String(), "OAR job 777: from its first row to its last")
}
