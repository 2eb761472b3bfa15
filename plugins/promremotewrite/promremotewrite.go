// Package promremotewrite is the prometheus-remote-write output plugin (Go
// agent only): every point is sent as a sample with its own timestamp to a
// Prometheus remote-write receiver (Prometheus, VictoriaMetrics, Mimir,
// Thanos, vmagent). See README.md.
package promremotewrite

import (
	"context"
	"fmt"

	"github.com/alumet-go/alumet-agent/plugin"
)

// Plugin identity.
const (
	Name      = "prometheus-remote-write"
	Version   = "0.1.0"
	LogTarget = "plugin_prometheus_remote_write"
)

// Factory returns the prometheus-remote-write plugin.
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

func start(_ context.Context, c *Config, env plugin.Env) error {
	if env.Pipeline == nil {
		return fmt.Errorf("prometheus-remote-write: no pipeline to add the output to")
	}
	out, err := newOutput(c, env.Pipeline.Registry(), env.Logger, c.Delivery.Options(env.Mode))
	if err != nil {
		return err
	}
	if err := env.Pipeline.AddOutput(Name, out); err != nil {
		_ = out.Close()
		return err
	}
	return nil
}
