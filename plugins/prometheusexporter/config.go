package prometheusexporter

import (
	_ "embed"
	"errors"
	"strings"

	"github.com/alumet-go/alumet-agent/config"
	"github.com/alumet-go/alumet-agent/plugin"
)

// DefaultMaxSeries bounds the series the exporter keeps when max_series is
// 0 (its default): about 35 MB for Kwollect-shaped series.
const DefaultMaxSeries = 100_000

// MaxFinalScrapeTimeout bounds final_scrape_timeout.
const MaxFinalScrapeTimeout = config.Duration(10 * 60 * 1e9)

// Config is the [plugins.prometheus-exporter] section: Alumet's five keys
// with Alumet's defaults, then the Go agent's keys, all omitted from
// generated files while they hold their zero value (Alumet's behaviour), so
// that a generated section stays loadable by Alumet.
type Config struct {
	// Host is the address to bind: an IP address or a host name.
	Host string `toml:"host"`
	// Port is the TCP port; 0 picks a free one (logged).
	Port int `toml:"port"`
	// Prefix and Suffix surround the metric name before sanitising.
	Prefix string `toml:"prefix"`
	Suffix string `toml:"suffix"`
	// AddAttributesToLabels exposes the points' attributes as labels.
	AddAttributesToLabels bool `toml:"add_attributes_to_labels"`

	// ExposeTimestamps (Go only) exposes each sample with its own timestamp
	// (the Kwollect time) instead of letting Prometheus stamp it with the
	// scrape time.
	ExposeTimestamps bool `toml:"expose_timestamps,omitempty"`
	// StaleAfter (Go only) removes a series that got no point for that
	// long; 0 keeps every series for good (Alumet).
	StaleAfter config.Duration `toml:"stale_after,omitzero"`
	// MaxSeries (Go only) bounds the series kept; 0 is DefaultMaxSeries.
	MaxSeries int `toml:"max_series,omitzero"`
	// FinalScrapeTimeout (Go only): at shutdown, wait up to that long for
	// a scrape that sees the last points; 0 does not wait (Alumet).
	FinalScrapeTimeout config.Duration `toml:"final_scrape_timeout,omitzero" duration:"max=10m"`
}

// DefaultConfig returns Alumet's defaults.
func DefaultConfig() *Config {
	return &Config{
		Host:                  "0.0.0.0",
		Port:                  9091,
		Prefix:                "",
		Suffix:                "_alumet",
		AddAttributesToLabels: true,
	}
}

// SampleConfig is the commented default section (sample.toml).
//
//go:embed sample.toml
var SampleConfig string

// Validate checks the decoded values; every problem is a plugin.FieldError.
func (c *Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.Host) == "" {
		errs = append(errs, plugin.FieldErrorf("host", "must not be empty (0.0.0.0 binds every interface, 127.0.0.1 the loopback only)"))
	} else if strings.ContainsAny(c.Host, "/ ") || strings.Count(c.Host, ":") == 1 {
		errs = append(errs, plugin.FieldErrorf("host", "%q is not an address or a host name (give the port in port)", c.Host))
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, plugin.FieldErrorf("port", "must be between 0 and 65535 (0 picks a free port), got %d", c.Port))
	}
	if c.StaleAfter < 0 {
		errs = append(errs, plugin.FieldErrorf("stale_after", "must not be negative"))
	}
	if c.MaxSeries < 0 {
		errs = append(errs, plugin.FieldErrorf("max_series", "must not be negative (0 is the default bound, %d series)", DefaultMaxSeries))
	}
	if c.FinalScrapeTimeout < 0 || c.FinalScrapeTimeout > MaxFinalScrapeTimeout {
		errs = append(errs, plugin.FieldErrorf("final_scrape_timeout", "must be between 0s and %s", config.FormatDuration(MaxFinalScrapeTimeout.D())))
	}
	return errors.Join(errs...)
}

// maxSeries is the bound in force.
func (c *Config) maxSeries() int {
	if c.MaxSeries == 0 {
		return DefaultMaxSeries
	}
	return c.MaxSeries
}
