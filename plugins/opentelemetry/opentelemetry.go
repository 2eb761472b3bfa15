// Package opentelemetry is the opentelemetry output plugin: it exports
// every point as an OTLP gauge data point with its own timestamp, over
// OTLP/gRPC (Alumet's protocol) or OTLP/HTTP with protobuf. See README.md.
package opentelemetry

// Plugin identity.
const (
	Name      = "opentelemetry"
	Version   = "0.1.0"
	LogTarget = "plugin_opentelemetry"
)
