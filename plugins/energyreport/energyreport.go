// Package energyreport is the energy-report plugin: it integrates the power
// series that pass through the pipeline (wattmeters, BMC, PDU, any gauge in
// W) over exactly the measured window, with the energy package, and reports
// the energy of each (node, metric) at the end: a table on stderr, a JSON
// summary file, and one <metric>_energy point per series for the outputs.
//
// It adds two elements to the pipeline:
//
//   - a source that emits nothing but handles the measurement events: it
//     records the window (start event, or the agent's start when an end event
//     comes alone, as in run mode; end event), the command and its exit code;
//   - a transform that passes every buffer through unchanged while keeping the
//     samples of the selected metrics, and, as a pipeline.Finisher, computes
//     the report once every point has passed (before the outputs close).
package energyreport

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/alumet-go/alumet-agent/energy"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
	"github.com/alumet-go/alumet-agent/plugin"
)

// Plugin identity.
const (
	Name      = "energy-report"
	Version   = "0.1.0"
	LogTarget = "plugin_energy_report"
)

// Factory describes the plugin.
func Factory() plugin.Factory {
	return plugin.Typed[Config, *Config]{
		Name:          Name,
		Version:       Version,
		LogTarget:     LogTarget,
		DefaultConfig: DefaultConfig,
		Sample:        SampleConfig,
		Start:         start,
	}.Factory()
}

func start(_ context.Context, cfg *Config, env plugin.Env) error {
	if env.Pipeline == nil {
		return fmt.Errorf("energy-report: no pipeline to add the report to")
	}
	if err := checkOutputPath("summary_file", cfg.SummaryFile); err != nil {
		return err
	}
	if err := checkOutputPath("plot_file", cfg.PlotFile); err != nil {
		return err
	}
	r, err := newReport(cfg, env.Pipeline.Registry(), env.Logger, os.Stderr, env.StartTime)
	if err != nil {
		return err
	}
	r.compact = env.Mode == plugin.ModeRun
	return install(env.Pipeline, env.Directory, r)
}

// install adds the report's transform to the pipeline, and asks the
// sources for the history its baseline needs.
func install(b *pipeline.Builder, dir *plugin.Directory, r *report) error {
	r.history = b.History()
	if dir != nil {
		r.directory = dir
	}
	r.outcomes = b.Outcomes()
	switch r.base.Kind {
	case HistoryBaseline:
		r.history.Want(r.base.Before)
		r.history.SubscribeSpan(r.base.Before, r.addHistory)
	case AfterBaseline:
		r.history.WantAfter(r.base.After)
		r.history.SubscribeAfter(r.addAfter)
	}
	// The readings just after each window, when a source
	// fetched them (kwollect-input does in fetch).
	r.history.SubscribeAfter(r.addTail)
	// The readings just before the first run, when a source
	// fetched them (kwollect-input does for its counters).
	r.history.SubscribeSpan(leadSpan, r.addLeadIn)
	return b.AddTransform(Name, &Transform{r: r})
}

// checkOutputPath fails at start, before anything is measured, when the
// file of key (summary_file, plot_file) could not be written at the end.
func checkOutputPath(key, path string) error {
	if path == "" {
		return nil
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("%s: %s is a directory", key, path)
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%s: the directory of %s: %w", key, path, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s: %s is not a directory", key, dir)
	}
	return nil
}

// window is what the events told about one run of the measurement.
type window struct {
	run                int // exec --repeat index, 0 otherwise
	start, end         time.Time
	hasStart, hasEnd   bool
	command            []string
	exitCode           *int
	startFromAgentTime bool
	jobSpan            int64  // fetch --job-id: the window is this job's first to last row
	marks              []mark // phase marks, in arrival order
	// warnings are what the agent found wrong with the run (marks in a
	// burst at the exit), from the end event: they go in the report.
	warnings []string
}

// mark is the beginning of a phase.
type mark struct {
	name string
	at   time.Time
}

// nodeMetric identifies a series across runs (baselines, plot lines).
type nodeMetric struct{ node, metric string }

// report is the state shared by the source (events, from the agent's
// goroutine), the history (from a source's goroutine), the cooldown (the
// agent's goroutine) and the transform (points and Finish, from the
// pipeline's transform goroutine).
type report struct {
	cfg     *Config
	base    Baseline
	reg     *measure.Registry
	log     *slog.Logger
	out     io.Writer // the table's destination (stderr)
	history *pipeline.History
	// directory gives the site of a node whose points carry none.
	directory *plugin.Directory
	// outcomes says what the sources obtained for each requested series.
	outcomes *pipeline.Outcomes

	mu         sync.Mutex
	doubts     []string        // results without an energy although data came (Transform.Doubts)
	wins       map[int]*window // by run index
	jobID      int64           // an end event named an OAR job (fetch --job-id)
	agentStart time.Time
	hist       map[nodeMetric][]rawSample // the history's power samples, for the baselines and the plot
	histConv   map[nodeMetric]*converter  // the history's energy series, by lineKey
	leadIn     map[seriesKey][]rawSample  // each counter's readings before the first run (run 0), see addLeadIn
	tailIn     map[tailKey][]rawSample    // each counter's readings after a window, see addTail
	after      map[nodeMetric][]rawSample // the power samples after the last run (baseline = after:D), by lineKey
	afterConv  map[nodeMetric]*converter
	afterFrom  int64 // the end of the window after which r.after was measured

	// Transform goroutine only.
	metrics  map[measure.MetricID]metricInfo
	wanted   map[string]bool // the configured metrics, nil for every power metric
	seenName map[string]bool
	series   map[seriesKey]*series
	byNMR    map[seriesKey][]*series // the series of each (node, metric, run), by part
	compact  bool                    // run mode: the window starts at the agent's start (see compact.go)
	keepAll  bool                    // tests: keep every sample until the end, as before compaction
	forced   *energy.Method          // the method key, when it is not "auto"
	localMu  sync.Mutex
	local    string // the node of on-node sources' points, see localNode
	hostname string
	// scratch space of the compaction, reused from one to the next
	scratch   []rawSample
	scratchIn *energy.Integrator
	finished  bool
}

// metricInfo caches what the transform needs to know about a metric id.
type metricInfo struct {
	name     string
	selected bool
	kind     seriesKind
	scale    float64 // J per unit, for energy metrics
}

func newReport(cfg *Config, reg *measure.Registry, log *slog.Logger, out io.Writer, agentStart time.Time) (*report, error) {
	base, err := ParseBaseline(cfg.Baseline)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if out == nil {
		out = io.Discard
	}
	forced, isForced, err := methodOf(cfg.Method)
	if err != nil {
		return nil, fmt.Errorf("method: %w", err)
	}
	r := &report{
		cfg: cfg, base: base, reg: reg, log: log, out: out,
		history:    &pipeline.History{},
		directory:  &plugin.Directory{},
		wins:       map[int]*window{},
		agentStart: wall(agentStart),
		hist:       map[nodeMetric][]rawSample{},
		histConv:   map[nodeMetric]*converter{},
		leadIn:     map[seriesKey][]rawSample{},
		tailIn:     map[tailKey][]rawSample{},
		after:      map[nodeMetric][]rawSample{},
		afterConv:  map[nodeMetric]*converter{},
		metrics:    map[measure.MetricID]metricInfo{},
		seenName:   map[string]bool{},
		series:     map[seriesKey]*series{},
		byNMR:      map[seriesKey][]*series{},
		hostname:   hostname(),
	}
	if isForced {
		r.forced = &forced
	}
	if len(cfg.Metrics) > 0 {
		r.wanted = map[string]bool{}
		for _, m := range cfg.Metrics {
			r.wanted[m] = true
		}
	}
	return r, nil
}

// WantsPhaseLines is the phases key: whether exec reads the command's
// stdout for phase marks (pipeline.PhaseLinesWanter).
func (t *Transform) WantsPhaseLines() bool { return t.r.cfg.Phases }

// ReadsPhases says the report uses phase marks (pipeline.PhaseReader).
func (t *Transform) ReadsPhases() bool { return true }

// WritesFiles says the report writes files of its own, the summary and
// the plot, without being an output (pipeline.FileWriter).
func (t *Transform) WritesFiles() bool { return true }

// Doubts returns the series without an energy although data of them came
// (pipeline.Doubter): the sources may call them complete.
func (t *Transform) Doubts() []string {
	t.r.mu.Lock()
	defer t.r.mu.Unlock()
	return slices.Clone(t.r.doubts)
}

// OnEvent records the first start and end events of each run, and the
// phase marks (pipeline.EventListener). An end event without a start (run
// mode) starts the window at the agent's start, unless it names an OAR job
// (fetch --job-id), whose window is not known here.
func (t *Transform) OnEvent(_ context.Context, ev pipeline.Event) error {
	r := t.r
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.wins[ev.Run]
	if w == nil {
		// A mark may come before its run's start event (the command's
		// first line, read while the event is published): it is kept, and
		// counts from the start.
		w = &window{run: ev.Run}
		r.wins[ev.Run] = w
	}
	switch ev.Kind {
	case pipeline.StartConsumerMeasurement:
		if w.hasStart || w.hasEnd {
			return nil
		}
		w.start, w.hasStart = wall(ev.Time), true
		if ev.Command != nil {
			w.command = append([]string(nil), ev.Command...)
		}
	case pipeline.EndConsumerMeasurement:
		if w.hasEnd {
			return nil
		}
		w.end, w.hasEnd = wall(ev.Time), true
		if ev.Command != nil {
			w.command = append([]string(nil), ev.Command...)
		}
		if ev.ExitCode != nil {
			c := *ev.ExitCode
			w.exitCode = &c
		}
		w.warnings = append(w.warnings, ev.Warnings...)
		if !w.hasStart {
			if ev.JobID != 0 {
				r.jobID = ev.JobID
				delete(r.wins, ev.Run)
			} else if !r.agentStart.IsZero() {
				w.start, w.hasStart, w.startFromAgentTime = r.agentStart, true, true
			}
		}
	case pipeline.PhaseMark:
		if !w.hasEnd {
			w.marks = append(w.marks, mark{name: ev.Phase, at: wall(ev.Time)})
		}
	}
	return nil
}

// addHistory keeps the power values of the history (baseline = before:D);
// an energy series' values are converted to power, each of its counters
// on its own.
func (r *report) addHistory(buf *measure.Buffer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addPowerTo(buf, r.hist, r.histConv, math.MinInt64, math.MaxInt64)
}

// addAfter keeps the power values of the span after the last run
// (baseline = after:D): each run's replaces the one before.
func (r *report) addAfter(buf *measure.Buffer, from time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := from.UnixNano()
	if f < r.afterFrom {
		return
	}
	if f > r.afterFrom {
		clear(r.after)
		clear(r.afterConv)
		r.afterFrom = f
	}
	r.addPowerTo(buf, r.after, r.afterConv, f, f+r.base.After.Nanoseconds())
}

// addPowerTo adds the points of buf in (lo, hi] to the power samples of
// dst, by lineKey, converting energy series with the converters of conv.
// r.mu must be held.
func (r *report) addPowerTo(buf *measure.Buffer, dst map[nodeMetric][]rawSample, conv map[nodeMetric]*converter, lo, hi int64) {
	for i := range buf.Points {
		p := &buf.Points[i]
		if t := p.Timestamp.UnixNano(); t <= lo || t > hi {
			continue
		}
		m, ok := r.reg.Metric(p.Metric)
		if !ok || !r.selects(m) {
			continue
		}
		kind, scale, _ := classify(m)
		k, ok := r.keyOf(m.Name, kind, p.Resource, p.Consumer, p.Attributes)
		if !ok {
			continue
		}
		lk := k.lineKey()
		if kind == powerKind {
			dst[lk] = append(dst[lk], rawSample{t: p.Timestamp.UnixNano(), w: p.Value.Float64()})
			continue
		}
		c := conv[lk]
		if c == nil {
			c = newConverter(kind, scale)
			conv[lk] = c
		}
		c.add(p.Timestamp.UnixNano(), p.Value.Float64(), func(t int64, w float64) {
			dst[lk] = append(dst[lk], rawSample{t: t, w: w})
		})
	}
}

// wall drops the monotonic clock reading of t: the window is integrated on
// the wall clock (Unix ns), and its duration must be too.
func wall(t time.Time) time.Time { return t.Round(0) }

// Transform keeps the samples of the power series and passes every buffer
// through unchanged; Finish computes the report.
type Transform struct{ r *report }

// ReadsCompact says Apply reads compact points too, and changes nothing
// (pipeline.CompactReader).
func (t *Transform) ReadsCompact() {}

// Apply records the points of the selected metrics.
func (t *Transform) Apply(buf *measure.Buffer) error {
	t.r.add(buf)
	return nil
}

// Finish computes the energy of every series over the window, prints the
// table, writes the summary file and returns the energy points.
func (t *Transform) Finish() (*measure.Buffer, error) {
	return t.r.finish()
}

// WaitIdle waits, between repeated runs, until the power is back to the
// baseline; see report.waitIdle.
func (t *Transform) WaitIdle(ctx context.Context, tolerance float64, limit time.Duration) (bool, error) {
	return t.r.waitIdle(ctx, tolerance, limit)
}

var (
	_ pipeline.IdleWaiter       = (*Transform)(nil)
	_ pipeline.EventListener    = (*Transform)(nil)
	_ pipeline.PhaseLinesWanter = (*Transform)(nil)
	_ pipeline.PhaseReader      = (*Transform)(nil)
	_ pipeline.FileWriter       = (*Transform)(nil)
	_ pipeline.Transform        = (*Transform)(nil)
	_ pipeline.CompactReader    = (*Transform)(nil)
	_ pipeline.Finisher         = (*Transform)(nil)
)
