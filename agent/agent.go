// Package agent runs the measurement lifecycle: it starts the plugins and
// their pipeline, runs a command (exec), follows a process (watch) or runs
// until a signal (run), then fetches, flushes and shuts down in order.
package agent

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/alumet-go/alumet-agent/config"
	"github.com/alumet-go/alumet-agent/internal/logging"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
	"github.com/alumet-go/alumet-agent/plugin"
)

// Log targets, as Alumet names them.
const (
	TargetAgent   = "alumet_agent"
	TargetBuilder = "alumet::agent::builder"
	TargetExec    = "alumet::agent::exec"
)

// Agent is a started pipeline with its plugins.
type Agent struct {
	log             *slog.Logger
	pipeline        *pipeline.Pipeline
	shutdownTimeout time.Duration
	outputs         int // the outputs started
	resume          ResumeFunc
	lateWarnings    []string // said again at the end (buffered phase marks)
	started         []string // "name vX.Y.Z", in start order
	startupSummary  string   // "Plugin startup complete." and what started
}

// ReadsPhases reports whether a started element uses phase marks (exec
// then opens the socket of alumet-agent mark).
func (a *Agent) ReadsPhases() bool { return a.pipeline.ReadsPhases() }

// WantsPhaseLines reports whether a started element asks for the measured
// command's stdout to be read for ALUMET_PHASE lines (energy-report's
// phases = true), as exec --phases does.
func (a *Agent) WantsPhaseLines() bool { return a.pipeline.WantsPhaseLines() }

// Hook adds elements of the agent's own to the pipeline before any plugin
// starts (the run directory's recorder, which must see the sources' points
// before any transform).
type Hook func(b *pipeline.Builder, dir *plugin.Directory) error

// Start starts the enabled plugins, in config order, then the pipeline.
func Start(ctx context.Context, mode plugin.Mode, loaded *config.Loaded, factories []plugin.Factory, logger *slog.Logger, hooks ...Hook) (*Agent, error) {
	byName := map[string]plugin.Factory{}
	for _, f := range factories {
		byName[f.Name] = f
	}
	reg := measure.NewRegistry()
	builderLog := logging.Target(logger, TargetBuilder)
	b := pipeline.NewBuilder(reg, loaded.General.SourceChannelSize, builderLog)
	startTime := time.Now()
	dir := &plugin.Directory{} // shared by every plugin
	for _, h := range hooks {
		if err := h(b, dir); err != nil {
			_ = b.Abort()
			return nil, err
		}
	}
	var started []string
	for _, ep := range loaded.Enabled {
		f, ok := byName[ep.Spec.Name]
		if !ok {
			_ = b.Abort()
			return nil, fmt.Errorf("plugin %q has no implementation in this binary", ep.Spec.Name)
		}
		plog := logging.Target(logger, f.LogTarget)
		plog.Debug(fmt.Sprintf("Starting plugin %s v%s", f.Name, f.Version))
		env := plugin.Env{Pipeline: b, Logger: plog, Mode: mode, StartTime: startTime, ConfigPath: loaded.Path, Directory: dir}
		if err := f.Start(ctx, ep.Config, env); err != nil {
			_ = b.Abort()
			return nil, fmt.Errorf("plugin %s failed to start: %w", f.Name, err)
		}
		started = append(started, fmt.Sprintf("%s v%s", f.Name, f.Version))
	}
	sources, transforms, outputs := b.Counts()
	switch {
	case outputs == 0 && b.WritesFiles():
		builderLog.Warn("No output is enabled: only energy-report's summary and plot are written, not the measurements. Add one, e.g. --plugins csv,kwollect-input,energy-report")
	case outputs == 0:
		builderLog.Warn("No output is enabled: the measurements will not be written anywhere. Enable one, e.g. --plugins csv,kwollect-input")
	}
	var disabled []string
	for _, d := range loaded.Disabled {
		disabled = append(disabled, fmt.Sprintf("%s v%s", d.Name, d.Version))
	}
	summary := startupSummary(started, disabled, reg.All(), sources, transforms, outputs)
	timeout := loaded.General.ShutdownTimeout.D()
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return &Agent{
		log:             logger,
		pipeline:        b.Start(context.WithoutCancel(ctx)), // ctx bounds the start only
		shutdownTimeout: timeout,
		outputs:         outputs,
		started:         started,
		startupSummary:  summary,
	}, nil
}

// pluralize is Alumet's: the plural for more than one, so "0 plugin".
func pluralize(n int, word string) string {
	if n > 1 {
		return fmt.Sprintf("%d %ss", n, word)
	}
	return fmt.Sprintf("%d %s", n, word)
}

// startupSummary is Alumet's "Plugin startup complete." message, line for
// line (alumet::agent::builder's print_stats), ending with an empty line.
// This agent has no metric listeners.
func startupSummary(started, disabled []string, metrics []measure.Metric, sources, transforms, outputs int) string {
	list := func(items []string) string {
		var b strings.Builder
		for i, it := range items {
			if i > 0 {
				b.WriteByte('\n')
			}
			b.WriteString("    - " + it)
		}
		return b.String()
	}
	var ms []string
	for _, m := range metrics {
		ms = append(ms, fmt.Sprintf("%s: %s (%s)", m.Name, m.Type, m.Unit.DisplayName()))
	}
	metricList := list(ms)
	if len(ms) == 0 {
		metricList = "    ∅"
	}
	return "Plugin startup complete.\n" +
		"🧩 " + pluralize(len(started), "plugin") + " started:\n" + list(started) + "\n\n" +
		"⭕ " + pluralize(len(disabled), "plugin") + " disabled:\n" + list(disabled) + "\n\n" +
		"📏 " + pluralize(len(metrics), "metric") + " registered:\n" + metricList + "\n\n" +
		"📥 " + pluralize(sources, "source") + ", 🔀 " + pluralize(transforms, "transform") +
		" and 📝 " + pluralize(outputs, "output") + " registered.\n\n" +
		"🔔 " + pluralize(0, "metric listener") + " registered.\n"
}

// LogReady logs "Plugin startup complete." with the plugins and metrics,
// then Alumet's "🔥 ALUMET agent is ready.". The caller logs them once the
// agent is really measuring (signals are then the command's to handle):
// scripts wait for these lines before they signal.
func (a *Agent) LogReady() {
	log := logging.Target(a.log, TargetBuilder)
	log.Info(a.startupSummary)
	log.Info(ReadyLine)
}

// ReadyLine is the line scripts wait for before they signal the agent.
const ReadyLine = "🔥 ALUMET agent is ready."

// StoppedLine is Alumet's last line of a shutdown, said whatever happened.
const StoppedLine = "All plugins have stopped."

// Publish sends a measurement event to the sources and waits for them.
func (a *Agent) Publish(ctx context.Context, ev pipeline.Event) error {
	return a.pipeline.Publish(ctx, ev)
}

// Stop stops the sources, drains the pipeline and flushes every output,
// within the shutdown timeout. An error means data may be lost.
func (a *Agent) Stop() error {
	log := logging.Target(a.log, TargetBuilder)
	log.Info("Stopping the plugins...")
	ctx, cancel := context.WithTimeout(context.Background(), a.shutdownTimeout)
	defer cancel()
	err := a.pipeline.Stop(ctx)
	// Alumet's lines, once the pipeline is down (every plugin's elements
	// have stopped with it), then what the stop leaves.
	for _, p := range a.started {
		log.Info("Stopping plugin " + p)
	}
	log.Info(StoppedLine)
	if err != nil {
		log.Error(fmt.Sprintf("Shutdown finished with errors, some data may be lost:\n%v", err))
	} else if text := a.stoppedText(); text != "" {
		log.Info(text)
	}
	return err
}

// stoppedText says what a clean stop leaves, after StoppedLine (nothing
// when nothing was measured): "all data written" only when it is true (something was measured, every series is complete, and an
// output wrote it).
func (a *Agent) stoppedText() string {
	all := a.pipeline.Outcomes().All()
	switch {
	case len(all) == 0:
		return "" // StoppedLine says it all
	case !a.writes():
		return "All plugins stopped; no output is enabled, so nothing is written."
	case samples(all) == 0:
		return "All plugins stopped; no sample was fetched (below)."
	case len(a.pipeline.Outcomes().Bad()) > 0:
		return "All plugins stopped; everything fetched is written, but some series are incomplete (below)."
	}
	return "All plugins stopped, all data written."
}

// writes reports whether something writes what was measured: an output,
// or an element with files of its own (energy-report's summary and plot).
func (a *Agent) writes() bool { return a.outputs > 0 || a.pipeline.WritesFiles() }
