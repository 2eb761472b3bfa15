package rundir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/alumet-go/alumet-agent/internal/logging"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
	"github.com/alumet-go/alumet-agent/plugin"
)

// ReplaySourceName is the replay's source among the pipeline's sources.
const ReplaySourceName = "run-dir-replay"

// ReplayOptions change what the replay gives the plugins.
type ReplayOptions struct {
	// ExcludeRuns leaves these runs of exec --repeat out: their events,
	// and the points tagged with their run attribute.
	ExcludeRuns map[int]bool
	// TrimStart and TrimEnd shorten every run's window: its start event
	// comes TrimStart later, its end event TrimEnd earlier (without the
	// warm-up, without the tail).
	TrimStart, TrimEnd time.Duration
	// Unverified skips the check of the files against the manifest (a
	// repair replays a directory whose derived files are damaged).
	Unverified bool
}

// Measured says why the run has nothing to replay, if it has not.
func (r *Run) Measured() error {
	if len(r.Manifest.Events) == 0 {
		return fmt.Errorf("%s: the run measured nothing (the agent exited with %d before any window: see its %s)", r.Dir, r.Manifest.Command.AgentExitCode, LogName)
	}
	return nil
}

// check refuses options that leave a run without a window, or exclude a
// run the directory does not have, before anything is replayed.
func (o *ReplayOptions) check(windows []Window) error {
	runs := map[int]bool{}
	for _, w := range windows {
		runs[w.Run] = true
		if o.ExcludeRuns[w.Run] || w.StartNs == 0 || w.EndNs == 0 {
			continue
		}
		if d := time.Duration(w.EndNs - w.StartNs); o.TrimStart+o.TrimEnd >= d {
			return fmt.Errorf("trimming %v at the start and %v at the end leaves nothing of run %d (%v long)", o.TrimStart, o.TrimEnd, w.Run, d)
		}
	}
	for n := range o.ExcludeRuns {
		if !runs[n] {
			return fmt.Errorf("--exclude-runs: the run directory has no run %d", n)
		}
	}
	return nil
}

// runOf is the run attribute of a point's attributes (0 without one).
func runOf(attrs []measure.Attribute) int {
	for _, a := range attrs {
		if a.Key == "run" && a.Value.Type == measure.AttrU64 {
			return int(a.Value.U64)
		}
	}
	return 0
}

// keep filters buf in place to the points of runs not excluded.
func (o *ReplayOptions) keep(buf *measure.Buffer) {
	if len(o.ExcludeRuns) == 0 {
		return
	}
	pts := buf.Points[:0]
	for _, p := range buf.Points {
		if !o.ExcludeRuns[runOf(p.Attributes)] {
			pts = append(pts, p)
		}
	}
	buf.Points = pts
	cps := buf.Compact[:0]
	for _, p := range buf.Compact {
		if !o.ExcludeRuns[runOf(p.Series.Attributes)] {
			cps = append(cps, p)
		}
	}
	buf.Compact = cps
}

// Element is a plugin to start for a replay, with its configuration.
type Element struct {
	Factory plugin.Factory
	Config  plugin.Config
}

// Replay runs the recorded stream again through a new pipeline with the
// given plugins (energy-report, with the same or other options): the same
// metrics in the same order, the node sites, job spans, carbon intensity
// and the sources' outcomes as the live run had them, every buffer and
// event in the recorded order. It returns once the pipeline has stopped
// (the plugins have written their files). The files are verified first.
func (r *Run) Replay(ctx context.Context, elements []Element, logger *slog.Logger, opts ReplayOptions) error {
	if err := r.Measured(); err != nil {
		return err
	}
	if !opts.Unverified {
		if err := r.Verify(); err != nil {
			return err
		}
	}
	if err := opts.check(r.Manifest.Windows); err != nil {
		return err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &r.Manifest
	reg := measure.NewRegistry()
	for _, mi := range m.Metrics {
		mt, err := mi.Metric()
		if err != nil {
			return fmt.Errorf("%s: %w", r.path(ManifestName), err)
		}
		if _, err := reg.Register(mt); err != nil {
			return fmt.Errorf("%s: %w", r.path(ManifestName), err)
		}
	}
	b := pipeline.NewBuilder(reg, 0, logger)
	dir := &plugin.Directory{}
	for node, site := range m.Sites {
		dir.SetSite(node, site)
	}
	if m.DefaultSite != "" {
		dir.SetDefaultSite(m.DefaultSite)
	}
	for _, js := range m.JobSpans {
		dir.SetJobSpan(js.JobID, time.Unix(0, js.FirstNs), time.Unix(0, js.LastNs))
	}
	if c := m.Carbon; c != nil {
		dir.SetCarbonIntensity(plugin.CarbonIntensity{GramsPerKWh: c.GramsPerKWh, Mode: c.Mode, Source: c.Source})
	}
	for _, o := range m.Outcomes {
		b.Outcomes().Record(o.Outcome())
	}
	src := &replaySource{emitter: make(chan pipeline.Emitter, 1), finished: make(chan struct{})}
	if err := b.AddSource(ReplaySourceName, src); err != nil {
		return err
	}
	for _, e := range elements {
		env := plugin.Env{Pipeline: b, Logger: logging.Target(logger, e.Factory.LogTarget), Mode: plugin.Mode(m.Mode), StartTime: time.Unix(0, m.StartedNs),
			ConfigPath: r.path(ConfigName), Directory: dir}
		if err := e.Factory.Start(ctx, e.Config, env); err != nil {
			_ = b.Abort()
			return fmt.Errorf("plugin %s failed to start: %w", e.Factory.Name, err)
		}
	}
	p := b.Start(ctx)
	out := <-src.emitter
	playErr := r.play(ctx, p, reg, b.History(), out, opts)
	close(src.finished)
	stopErr := p.Stop(context.WithoutCancel(ctx))
	return errors.Join(playErr, stopErr)
}

func (r *Run) path(name string) string { return filepath.Join(r.Dir, filepath.FromSlash(name)) }

// play emits the stream's buffers and publishes its events, in order.
func (r *Run) play(ctx context.Context, p *pipeline.Pipeline, reg *measure.Registry, h *pipeline.History, out pipeline.Emitter, opts ReplayOptions) error {
	f, err := os.Open(r.path(StreamName))
	if err != nil {
		return err
	}
	defer f.Close()
	sr, err := newStreamReader(f, r.path(StreamName), reg)
	if err != nil {
		return err
	}
	defer sr.close()
	starts := map[int]time.Time{} // run -> its (trimmed) start
	compact := false
	if ce, ok := out.(pipeline.CompactEmitter); ok {
		compact = ce.AcceptsCompact()
	}
	for {
		it, err := sr.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case it.Event != nil:
			ev, err := it.Event.Event()
			if err != nil {
				return fmt.Errorf("%s: line %d: %w", sr.name, sr.line, err)
			}
			if opts.ExcludeRuns[ev.Run] && ev.Run > 0 {
				continue
			}
			switch ev.Kind {
			case pipeline.StartConsumerMeasurement:
				ev.Time = ev.Time.Add(opts.TrimStart)
				starts[ev.Run] = ev.Time
			case pipeline.EndConsumerMeasurement:
				ev.Time = ev.Time.Add(-opts.TrimEnd)
				if st, ok := starts[ev.Run]; ok && !ev.Time.After(st) {
					return fmt.Errorf("trimming %v at the start and %v at the end leaves nothing of run %d", opts.TrimStart, opts.TrimEnd, ev.Run)
				}
			}
			if err := p.Publish(ctx, ev); err != nil {
				return err
			}
		case it.After:
			h.DeliverAfter(it.Buffer, it.AfterFrom)
		case it.History:
			h.DeliverBefore(it.Buffer, it.HistoryEnd)
		default:
			opts.keep(it.Buffer)
			if !compact {
				it.Buffer.Expand()
			}
			if err := out.Emit(ctx, it.Buffer); err != nil {
				return err
			}
		}
	}
}

// replaySource hands its emitter to the replay, then waits for the end.
type replaySource struct {
	emitter  chan pipeline.Emitter
	finished chan struct{}
}

func (s *replaySource) Run(ctx context.Context, out pipeline.Emitter) error {
	s.emitter <- out
	<-s.finished
	return nil
}
