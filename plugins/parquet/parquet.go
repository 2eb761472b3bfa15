// Package parquet is the parquet output plugin (Go agent only): it writes
// every measurement point as one row of an Apache Parquet file, with the
// CSV output's columns and names (shared/spec/alumet-compat.md §6) and
// proper types, for pandas, Polars, DuckDB and Spark users.
//
// Schema (in this order):
//
//	metric            BYTE_ARRAY STRING, dictionary   name_unit, as the CSV's metric cell
//	timestamp         INT64 TIMESTAMP(NANOS, UTC)
//	value             DOUBLE                          u64 values converted (exact up to 2^53)
//	resource_kind     BYTE_ARRAY STRING, dictionary
//	resource_id       BYTE_ARRAY STRING, dictionary
//	consumer_kind     BYTE_ARRAY STRING, dictionary
//	consumer_id       BYTE_ARRAY STRING, dictionary
//	<attribute_columns…>  OPTIONAL: STRING (dictionary; the attribute's
//	                  text form, the CSV cell), or INT64 for run
//	__late_attributes OPTIONAL BYTE_ARRAY JSON, dictionary: the other
//	                  attributes as a JSON object (keys sorted, the last
//	                  of a repeated key winning), null when there are none
//
// The rows are not built one by one: the encoder (encoder.go) keeps per
// row a timestamp, a value and its series' number in the row group, and
// writes the column chunks itself with parquet-go's format, encoding and
// compression packages. Every column is compressed with the configured
// codec (zstd by default).
// The schema is fixed by the configuration, not by the first buffer, so
// that every file of a run, and of every run, has the same columns.
//
// Files are written under a hidden temporary name and renamed once whole
// (see FileOutput); memory is bounded by row_group_rows, whatever the
// window.
package parquet

import (
	"context"
	"fmt"

	"github.com/alumet-go/alumet-agent/plugin"
)

// Plugin identity.
const (
	Name      = "parquet"
	Version   = "0.1.0"
	LogTarget = "plugin_parquet"
)

// Factory returns the parquet plugin.
func Factory() plugin.Factory {
	return plugin.Typed[Config, *Config]{
		Name:          Name,
		Version:       Version,
		LogTarget:     LogTarget,
		DefaultConfig: DefaultConfig,
		Sample:        SampleConfig,
		// A generated configuration (every plugin's section) must not start
		// writing Parquet files next to the CSV until the user asks.
		GeneratedOff: true,
		Start:        start,
	}.Factory()
}

func start(_ context.Context, c *Config, env plugin.Env) error {
	if env.Pipeline == nil {
		return fmt.Errorf("parquet: no pipeline to add the output to")
	}
	out, err := Open(c, env.Pipeline.Registry(), env.Logger, env.Mode == plugin.ModeRun)
	if err != nil {
		return err
	}
	if err := env.Pipeline.AddOutput(Name, out); err != nil {
		out.Close()
		return err
	}
	return nil
}
