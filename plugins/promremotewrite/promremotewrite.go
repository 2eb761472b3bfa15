// Package promremotewrite is the prometheus-remote-write output plugin (Go
// agent only): every point is sent as a sample with its own timestamp to a
// Prometheus remote-write receiver (Prometheus, VictoriaMetrics, Mimir,
// Thanos, vmagent). See README.md.
package promremotewrite

// Plugin identity.
const (
	Name      = "prometheus-remote-write"
	Version   = "0.1.0"
	LogTarget = "plugin_prometheus_remote_write"
)
