// Package opentelemetry is the opentelemetry output plugin: it exports
// every point as an OTLP gauge data point with its own timestamp, over
// OTLP/gRPC (Alumet's protocol) or OTLP/HTTP with protobuf. See README.md.
package opentelemetry

import (
	"context"
	"fmt"

	"github.com/alumet-go/alumet-agent/plugin"
)

// Plugin identity.
const (
	Name      = "opentelemetry"
	Version   = "0.1.0"
	LogTarget = "plugin_opentelemetry"
)

// Factory returns the opentelemetry plugin.
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
		return fmt.Errorf("opentelemetry: no pipeline to add the output to")
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
