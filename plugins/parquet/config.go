package parquet

import (
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/alumet-go/alumet-agent/config"
	"github.com/alumet-go/alumet-agent/plugin"
)

// Config is the [plugins.parquet] section. The loader decodes the TOML
// table into DefaultConfig() and then calls Validate, so missing keys keep
// their defaults.
type Config struct {
	// OutputPath is the Parquet file (exec, watch, fetch), or the pattern
	// of the rotated files in run mode: a.parquet gives a-000001.parquet,
	// a-000002.parquet, …
	OutputPath string `toml:"output_path"`
	// AppendUnitToMetricName and UseUnitDisplayName shape the metric
	// column as the CSV's metric cell.
	AppendUnitToMetricName bool `toml:"append_unit_to_metric_name"`
	UseUnitDisplayName     bool `toml:"use_unit_display_name"`
	// AttributeColumns are the attributes that get an optional column of
	// their own, in this order after consumer_id; the others go, as JSON,
	// to __late_attributes.
	AttributeColumns []string `toml:"attribute_columns"`
	// Compression is the codec of every column: zstd, snappy, gzip, lz4 or none.
	Compression string `toml:"compression"`
	// RowGroupRows is the number of rows of a row group: what the output
	// holds in memory at most, whatever the window.
	RowGroupRows int64 `toml:"row_group_rows"`
	// RotateInterval (run mode) publishes the current file and starts a
	// new one when it is this old; 0 turns it off.
	RotateInterval config.Duration `toml:"rotate_interval" duration:"max=720h"`
	// RotateRows (run mode) publishes the current file and starts a new
	// one when it holds this many rows; 0 turns it off.
	RotateRows int64 `toml:"rotate_rows"`
}

// Defaults.
const (
	DefaultOutputPath     = "alumet-output.parquet"
	DefaultRowGroupRows   = 128 * 1024
	DefaultRotateInterval = time.Hour
	// MaxRowGroupRows bounds row_group_rows: a row group is held in
	// memory (20 bytes a row, and its series' dictionary indices).
	MaxRowGroupRows = 16 << 20
)

// DefaultConfig returns the default [plugins.parquet] section.
func DefaultConfig() *Config {
	return &Config{
		OutputPath:             DefaultOutputPath,
		AppendUnitToMetricName: true,
		UseUnitDisplayName:     true,
		AttributeColumns:       []string{"metric_id", "run"},
		Compression:            "zstd",
		RowGroupRows:           DefaultRowGroupRows,
		RotateInterval:         config.Duration(DefaultRotateInterval),
		RotateRows:             0,
	}
}

// SampleConfig is the commented default section (sample.toml).
//
//go:embed sample.toml
var SampleConfig string

// Files implements plugin.FilesConfig: the resume command the agent
// prints writes its own file next to this one.
func (c *Config) Files() []plugin.File {
	return []plugin.File{{Key: "output_path", Path: c.OutputPath}}
}

// codecs are the accepted values of compression.
var codecs = []string{"zstd", "snappy", "gzip", "lz4", "none"}

// Validate checks the decoded values. Every problem is a plugin.FieldError;
// several problems are joined with errors.Join.
func (c *Config) Validate() error {
	var errs []error
	if c.OutputPath == "" {
		errs = append(errs, plugin.FieldErrorf("output_path", "must not be empty"))
	} else if strings.HasSuffix(c.OutputPath, "/") {
		errs = append(errs, plugin.FieldErrorf("output_path", "must name a file, not a directory (%q)", c.OutputPath))
	}
	seen := map[string]bool{}
	for i, k := range c.AttributeColumns {
		key := fmt.Sprintf("attribute_columns[%d]", i)
		switch {
		case k == "" || !utf8.ValidString(k):
			errs = append(errs, plugin.FieldErrorf(key, "must be a non-empty UTF-8 name, got %q", k))
		case reservedColumn(k):
			errs = append(errs, plugin.FieldErrorf(key, "%q is already a column of its own", k))
		case seen[k]:
			errs = append(errs, plugin.FieldErrorf(key, "%q is listed twice", k))
		}
		seen[k] = true
	}
	if !slices.Contains(codecs, c.Compression) {
		errs = append(errs, plugin.FieldErrorf("compression", "must be one of %s, got %q", strings.Join(codecs, ", "), c.Compression))
	}
	if c.RowGroupRows < 1 || c.RowGroupRows > MaxRowGroupRows {
		errs = append(errs, plugin.FieldErrorf("row_group_rows", "must be between 1 and %d, got %d", MaxRowGroupRows, c.RowGroupRows))
	}
	if c.RotateInterval < 0 {
		errs = append(errs, plugin.FieldErrorf("rotate_interval", "must not be negative"))
	} else if d := c.RotateInterval.D(); d > 0 && d < time.Second {
		errs = append(errs, plugin.FieldErrorf("rotate_interval", "must be 0 (off) or at least 1s, got %s", c.RotateInterval))
	}
	if c.RotateRows < 0 {
		errs = append(errs, plugin.FieldErrorf("rotate_rows", "must be 0 (off) or positive, got %d", c.RotateRows))
	}
	return errors.Join(errs...)
}
