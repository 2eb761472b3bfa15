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
	"os"
	"path/filepath"
	"sync"
	"time"

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
	return plugin.Factory{
		Name:          Name,
		Version:       Version,
		LogTarget:     LogTarget,
		DefaultConfig: func() plugin.Config { return DefaultConfig() },
		Start:         start,
	}
}

func start(_ context.Context, c plugin.Config, env plugin.Env) error {
	cfg, ok := c.(*Config)
	if !ok {
		return fmt.Errorf("energy-report: unexpected configuration type %T", c)
	}
	if env.Pipeline == nil {
		return fmt.Errorf("energy-report: no pipeline to add the report to")
	}
	if err := checkSummaryDir(cfg.SummaryFile); err != nil {
		return err
	}
	r, err := newReport(cfg, env.Pipeline.Registry(), env.Logger, os.Stderr, env.StartTime)
	if err != nil {
		return err
	}
	return install(env.Pipeline, r)
}

// install adds the report's source and transform to the pipeline.
func install(b *pipeline.Builder, r *report) error {
	if err := b.AddSource(Name, &Source{r: r}); err != nil {
		return err
	}
	return b.AddTransform(Name, &Transform{r: r})
}

// checkSummaryDir fails at start, before anything is measured, when the
// summary file could not be written at the end.
func checkSummaryDir(path string) error {
	if path == "" {
		return nil
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("summary_file: %s is a directory", path)
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("summary_file: the directory of %s: %w", path, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("summary_file: %s is not a directory", dir)
	}
	return nil
}

// window is what the events told about the measurement.
type window struct {
	start, end         time.Time
	hasStart, hasEnd   bool
	jobID              int64
	command            []string
	exitCode           *int
	agentStart         time.Time
	startFromAgentTime bool
}

// report is the state shared by the source (events, from the agent's
// goroutine) and the transform (points and Finish, from the pipeline's
// transform goroutine).
type report struct {
	cfg      *Config
	baseline float64
	hasBase  bool
	reg      *measure.Registry
	log      *slog.Logger
	out      io.Writer // the table's destination (stderr)

	mu  sync.Mutex
	win window

	// Transform goroutine only.
	metrics  map[measure.MetricID]metricInfo
	wanted   map[string]bool // the configured metrics, nil for every power metric
	seenName map[string]bool
	series   map[seriesKey]*series
	finished bool
}

// metricInfo caches what the transform needs to know about a metric id.
type metricInfo struct {
	name     string
	selected bool
}

func newReport(cfg *Config, reg *measure.Registry, log *slog.Logger, out io.Writer, agentStart time.Time) (*report, error) {
	w, set, err := ParseBaseline(cfg.Baseline)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if out == nil {
		out = io.Discard
	}
	r := &report{
		cfg: cfg, baseline: w, hasBase: set, reg: reg, log: log, out: out,
		win:      window{agentStart: wall(agentStart)},
		metrics:  map[measure.MetricID]metricInfo{},
		seenName: map[string]bool{},
		series:   map[seriesKey]*series{},
	}
	if len(cfg.Metrics) > 0 {
		r.wanted = map[string]bool{}
		for _, m := range cfg.Metrics {
			r.wanted[m] = true
		}
	}
	return r, nil
}

// Source records the measured window from the events; it emits no point.
type Source struct{ r *report }

// Run waits for the stop request.
func (s *Source) Run(ctx context.Context, _ pipeline.Emitter) error {
	<-ctx.Done()
	return nil
}

// HandleEvent records the first start event and the first end event. An
// end event without a start (run mode) starts the window at the agent's
// start, unless it names an OAR job (fetch --job-id), whose window is not
// known here.
func (s *Source) HandleEvent(_ context.Context, ev pipeline.Event, _ pipeline.Emitter) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	w := &s.r.win
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
		if !w.hasStart {
			if ev.JobID != 0 {
				w.jobID = ev.JobID
			} else if !w.agentStart.IsZero() {
				w.start, w.hasStart, w.startFromAgentTime = w.agentStart, true, true
			}
		}
	}
	return nil
}

// wall drops the monotonic clock reading of t: the window is integrated on
// the wall clock (Unix ns), and its duration must be too.
func wall(t time.Time) time.Time { return t.Round(0) }

// Transform keeps the samples of the power series and passes every buffer
// through unchanged; Finish computes the report.
type Transform struct{ r *report }

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

var (
	_ pipeline.Source       = (*Source)(nil)
	_ pipeline.EventHandler = (*Source)(nil)
	_ pipeline.Transform    = (*Transform)(nil)
	_ pipeline.Finisher     = (*Transform)(nil)
)
