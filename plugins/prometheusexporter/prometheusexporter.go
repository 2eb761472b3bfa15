// Package prometheusexporter is the prometheus-exporter output plugin: it
// keeps the last value of every series in memory and serves it on
// GET /metrics for Prometheus (or any OpenMetrics scraper) to pull,
// compatible with Alumet's plugin-prometheus-exporter: the same config keys
// and defaults, metric names (sanitize(prefix+name+suffix)_<unit word>),
// labels, HELP/TYPE/UNIT lines and OpenMetrics text.
//
// Beyond Alumet: the text format 0.0.4 when the scraper prefers it, gzip,
// label values escaped and made valid UTF-8, attribute labels that cannot
// clash with the fixed ones or Prometheus' reserved names, a point never
// replaced by an older one, a bound on the series kept (max_series), stale
// series removed (stale_after), optional sample timestamps
// (expose_timestamps), a wait at shutdown for a last scrape
// (final_scrape_timeout), and a Close that stops the server with a
// deadline. See README.md.
//
// Write never waits on a scrape: it records points in chunks under a short
// lock, and a scrape copies the values out under that lock and formats
// them outside it.
package prometheusexporter

import (
	"context"
	"fmt"

	"github.com/alumet-go/alumet-agent/plugin"
)

// Plugin identity.
const (
	Name      = "prometheus-exporter"
	Version   = "0.1.0"
	LogTarget = "plugin_prometheus_exporter"
)

// Factory returns the prometheus-exporter plugin.
func Factory() plugin.Factory {
	return plugin.Typed[Config, *Config]{
		Name:          Name,
		Version:       Version,
		LogTarget:     LogTarget,
		DefaultConfig: DefaultConfig,
		Sample:        SampleConfig,
		// An exporter opens a port (on every interface by default): it
		// must be asked for.
		GeneratedOff: true,
		Start:        start,
	}.Factory()
}

func start(_ context.Context, c *Config, env plugin.Env) error {
	if env.Pipeline == nil {
		return fmt.Errorf("prometheus-exporter: no pipeline to add the output to")
	}
	x, err := New(c, env.Pipeline.Registry(), env.Logger)
	if err != nil {
		return err
	}
	if err := env.Pipeline.AddOutput(Name, x); err != nil {
		_ = x.Close()
		return err
	}
	return nil
}
