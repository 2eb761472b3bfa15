package rapl

import (
	_ "embed"
	"errors"
	"time"

	"github.com/alumet-go/alumet-agent/config"
	"github.com/alumet-go/alumet-agent/plugin"
)

// DefaultSysfsRoot is where sysfs is mounted.
const DefaultSysfsRoot = "/sys"

// MinPollInterval is the shortest poll_interval accepted. Alumet gives
// SCHED_FIFO to intervals of 3 ms and less; this agent does not, and RAPL
// counters are updated about every millisecond.
const MinPollInterval = time.Millisecond

// Config is the [plugins.rapl] section: Alumet's keys, and sysfs_root.
type Config struct {
	// PollInterval is the time between two readings of the counters.
	PollInterval config.Duration `toml:"poll_interval" duration:"min=1ms,max=1h"`
	// FlushInterval is how often the points read are sent to the outputs.
	FlushInterval config.Duration `toml:"flush_interval" duration:"min=1ms,max=1h"`
	// NoPerfEvents uses powercap only.
	NoPerfEvents bool `toml:"no_perf_events"`
	// SysfsRoot (Go only) is where the sysfs tree is read, "" for /sys:
	// tests and containers point it at another tree. omitempty keeps it out
	// of generated configs, so that they stay loadable by Alumet (whose
	// rapl section denies unknown keys).
	SysfsRoot string `toml:"sysfs_root,omitempty"`
}

// DefaultConfig returns Alumet's defaults.
func DefaultConfig() *Config {
	return &Config{
		PollInterval:  config.Duration(time.Second),
		FlushInterval: config.Duration(5 * time.Second),
		NoPerfEvents:  false,
	}
}

// SampleConfig is the commented default section (sample.toml).
//
//go:embed sample.toml
var SampleConfig string

// Validate checks the decoded values.
func (c *Config) Validate() error {
	var errs []error
	if c.PollInterval.D() < MinPollInterval {
		errs = append(errs, plugin.FieldErrorf("poll_interval", "must be at least %s", config.FormatDuration(MinPollInterval)))
	}
	if c.FlushInterval.D() < MinPollInterval {
		errs = append(errs, plugin.FieldErrorf("flush_interval", "must be at least %s", config.FormatDuration(MinPollInterval)))
	}
	return errors.Join(errs...)
}

// root is the sysfs tree to read.
func (c *Config) root() string {
	if c.SysfsRoot == "" {
		return DefaultSysfsRoot
	}
	return c.SysfsRoot
}
