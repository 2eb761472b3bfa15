// Package plugin defines what a plugin is: a name, a version, a default
// configuration and a start function that adds sources, transforms and
// outputs to the pipeline.
package plugin

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/alumet-go/alumet-agent/pipeline"
)

// Config is a plugin's configuration: a pointer to a struct with toml tags,
// filled with the defaults by Factory.DefaultConfig and then decoded from the
// plugin's TOML table.
type Config interface {
	// Validate checks the decoded values. Errors about one key should be
	// FieldErrors so the loader can point at the key's line.
	Validate() error
}

// FieldError is a validation error about one key of a plugin's table.
type FieldError struct {
	Key string // the key inside the plugin's table, e.g. "csv_delimiter"
	Err error
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %v", e.Key, e.Err) }
func (e *FieldError) Unwrap() error { return e.Err }

// FieldErrorf returns a FieldError for key.
func FieldErrorf(key, format string, args ...any) error {
	return &FieldError{Key: key, Err: fmt.Errorf(format, args...)}
}

// FilesConfig is implemented by the configurations of plugins that write
// files of their own besides outputs (energy-report's summary and plot):
// a later command that measures the same window again (the resume command
// the agent prints) writes next to them, under other names, through these
// keys.
type FilesConfig interface {
	Files() []File
}

// File is a file a plugin writes: the key of its path, and the path ("" when
// it is not written).
type File struct {
	Key, Path string
}

// Mode is what the agent was asked to do.
type Mode string

// Agent modes.
const (
	ModeRun   Mode = "run"
	ModeExec  Mode = "exec"
	ModeWatch Mode = "watch"
	ModeFetch Mode = "fetch"
)

// Env is what a plugin gets when it starts.
type Env struct {
	Pipeline *pipeline.Builder
	Logger   *slog.Logger // logs under the plugin's target
	Mode     Mode
	// StartTime is when the agent started its pipeline, the start of the
	// measured window in run mode.
	StartTime time.Time
	// ConfigPath is the configuration file the plugin's table came from.
	ConfigPath string
	// Directory is what the plugins know about the measured nodes that
	// points do not carry (a node's site, an OAR job's span), shared by
	// every plugin of the agent.
	Directory *Directory
}

// Factory describes a plugin.
type Factory struct {
	Name    string
	Version string
	// LogTarget is the env_logger target of the plugin's messages (Alumet's
	// crate name, e.g. plugin_kwollect_input).
	LogTarget string
	// DefaultConfig returns a new default configuration.
	DefaultConfig func() Config
	// GeneratedConfig, optional, is what `config regen` and a missing config
	// file get instead of DefaultConfig (host-specific values).
	GeneratedConfig func() Config
	// Sample, optional, is the plugin's commented section (its sample.toml):
	// a generated file carries its comments next to the generated values.
	Sample string
	// GeneratedOff writes `enabled = false` in the generated section: for
	// plugins that must be asked for (one that opens a port, one that needs
	// root), since a missing config file enables every generated section.
	GeneratedOff bool
	// Measures says the plugin is a measurement source: exec, watch, run and
	// fetch refuse to start without one (nothing would be measured).
	Measures bool
	// Start validates nothing (the loader did), creates the plugin's elements
	// and adds them to env.Pipeline.
	Start func(ctx context.Context, cfg Config, env Env) error
}

// Typed describes a plugin whose configuration is a *C: Factory gives the
// untyped Factory the registry lists, with the configuration checked and
// cast once, so that Start gets a *C.
type Typed[C any, PC interface {
	*C
	Config
}] struct {
	Name, Version, LogTarget string
	// DefaultConfig returns a new default configuration.
	DefaultConfig func() PC
	// GeneratedConfig, optional: see Factory.GeneratedConfig.
	GeneratedConfig func() PC
	// Sample, optional: see Factory.Sample.
	Sample string
	// GeneratedOff and Measures: see Factory.
	GeneratedOff, Measures bool
	// Start creates the plugin's elements and adds them to env.Pipeline.
	Start func(ctx context.Context, cfg PC, env Env) error
}

// Factory returns the plugin's Factory.
func (t Typed[C, PC]) Factory() Factory {
	f := Factory{
		Name: t.Name, Version: t.Version, LogTarget: t.LogTarget, Sample: t.Sample, GeneratedOff: t.GeneratedOff, Measures: t.Measures,
		DefaultConfig: func() Config { return t.DefaultConfig() },
		Start: func(ctx context.Context, c Config, env Env) error {
			cfg, ok := c.(PC)
			if !ok || cfg == nil {
				return fmt.Errorf("plugin %s: configuration of type %T, want %T", t.Name, c, PC(nil))
			}
			return t.Start(ctx, cfg, env)
		},
	}
	if t.GeneratedConfig != nil {
		f.GeneratedConfig = func() Config { return t.GeneratedConfig() }
	}
	return f
}
