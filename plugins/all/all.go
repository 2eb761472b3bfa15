// Package all is the explicit registry of the plugins built into the agent,
// in registration order (the order of `plugins list` and of generated configs).
package all

import (
	"github.com/alumet-go/alumet-agent/plugin"
	"github.com/alumet-go/alumet-agent/plugins/csv"
	"github.com/alumet-go/alumet-agent/plugins/energyreport"
	"github.com/alumet-go/alumet-agent/plugins/energytocarbon"
	"github.com/alumet-go/alumet-agent/plugins/influxdb"
	"github.com/alumet-go/alumet-agent/plugins/jsonl"
	"github.com/alumet-go/alumet-agent/plugins/kwollectinput"
	"github.com/alumet-go/alumet-agent/plugins/kwollectoutput"
	"github.com/alumet-go/alumet-agent/plugins/opentelemetry"
	"github.com/alumet-go/alumet-agent/plugins/parquet"
	"github.com/alumet-go/alumet-agent/plugins/prometheusexporter"
	"github.com/alumet-go/alumet-agent/plugins/promremotewrite"
	"github.com/alumet-go/alumet-agent/plugins/rapl"
)

// Factories returns every plugin of this binary.
func Factories() []plugin.Factory {
	return []plugin.Factory{
		csv.Factory(),
		kwollectinput.Factory(),
		energyreport.Factory(),
		// After energy-report: its sections come after in a generated file,
		// so the energy points the report adds at the end get carbon points.
		energytocarbon.Factory(),
		kwollectoutput.Factory(),
		jsonl.Factory(),
		prometheusexporter.Factory(),
		promremotewrite.Factory(),
		opentelemetry.Factory(),
		rapl.Factory(),
		influxdb.Factory(),
		parquet.Factory(),
	}
}
