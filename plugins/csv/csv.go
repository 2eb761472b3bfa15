// Package csv is the csv output plugin: it writes every measurement point
// as one row of a CSV file, byte-compatible with Alumet's plugin-csv
// (spec §6), with the Go agent's fixes (header from the first non-empty
// buffer, escaped header cells, sorted late attributes) and append mode.
//
// Format. The header is written once, from the first non-empty buffer:
//
//	metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;<keys…;>__late_attributes
//
// where <keys> are that buffer's attribute keys sorted bytewise, each
// followed by the delimiter. Each row holds every header cell followed by
// the delimiter, then the late cell (the attributes without a column, as
// key=value pairs sorted by key and joined by the late delimiter, a late
// delimiter inside a value written as a backslash and the delimiter), then
// '\n'. Attributes named like a fixed column or __late_attributes always go
// to the late cell. Cells holding the delimiter, '"', CR or LF are quoted
// the RFC 4180 way.
//
// Creation. Without append, the file is created (or truncated) by the
// first write of rows, not at start: a run that ends without any data (a
// refused pre-flight, an unreachable API) leaves an earlier run's file
// byte for byte as it was, and logs "no data: <path> not written, the
// previous file is kept". Whether it could be created is checked at start
// (the directory exists and is writable, the file is not a directory and is
// writable), so that the error still comes before anything is measured. A
// path that is not a regular file (a pipe, a device, /dev/stdout) is opened
// at start, as it holds no earlier result.
//
// Append mode (append = true). A missing or empty file is treated as new. A
// non-empty file must start with a header parsed with csv_delimiter whose
// first seven columns are the fixed ones and whose last column is
// __late_attributes, otherwise opening fails naming the file; its attribute
// columns are reused as they are and keys not in it go to the late cell. If
// the file does not end with '\n' (an interrupted write), a '\n' is added
// first, preceded by a '"' when the file holds an odd number of quotes (the
// write stopped inside a quoted cell), and a warning is logged: the broken
// row stays, but the new rows are well-formed and none is lost.
//
// Flushing. Rows go through a 64 KiB buffer of whole rows, each write to
// the file being whole rows. With force_flush = true it is flushed after
// every pipeline buffer; otherwise a background goroutine flushes it every
// second (and Write flushes when the last flush is a second old). Close
// flushes, fsyncs (ignoring files that cannot be synced, such as pipes) and
// closes the file, returning every error.
//
// Write errors. A write error fails the output for good: a regular file is
// truncated back to its last whole row, nothing more is written, and every
// point not written is counted (OutputError); a failure of the background
// flush is reported to the pipeline at once (pipeline.FailureReporter).
package csv

import (
	"context"
	"fmt"

	"github.com/alumet-go/alumet-agent/plugin"
)

// Plugin identity.
const (
	Name      = "csv"
	Version   = "0.2.0"
	LogTarget = "plugin_csv"
)

// Factory returns the csv plugin.
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
		return fmt.Errorf("csv: no pipeline to add the output to")
	}
	out, err := OpenFile(c, env.Pipeline.Registry(), env.Logger)
	if err != nil {
		return err
	}
	if err := env.Pipeline.AddOutput(Name, out); err != nil {
		out.Close()
		return err
	}
	if env.Logger != nil {
		env.Logger.Debug(fmt.Sprintf("writing measurements to %s", c.OutputPath))
	}
	return nil
}
