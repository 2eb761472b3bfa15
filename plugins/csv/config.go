package csv

import (
	_ "embed"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/alumet-go/alumet-agent/plugin"
)

// Config is the [plugins.csv] section.
//
// The loader decodes the TOML table into DefaultConfig() and then calls
// Validate, so missing keys keep their defaults.
type Config struct {
	// OutputPath is the CSV file, relative to the working directory.
	OutputPath string `toml:"output_path"`
	// ForceFlush flushes to the OS after every buffer; when false the data
	// is flushed at least every second and at shutdown.
	ForceFlush bool `toml:"force_flush"`
	// AppendUnitToMetricName writes the metric cell as name_unit.
	AppendUnitToMetricName bool `toml:"append_unit_to_metric_name"`
	// UseUnitDisplayName picks the unit's display name (B) rather than its
	// unique name (By) for the metric cell.
	UseUnitDisplayName bool `toml:"use_unit_display_name"`
	// CSVDelimiter separates the cells: exactly one character.
	CSVDelimiter string `toml:"csv_delimiter"`
	// CSVLateDelimiter separates the key=value pairs of the late cell.
	CSVLateDelimiter string `toml:"csv_late_delimiter"`
	// Append (Go-only) keeps an existing file and appends to it, reusing its
	// header. omitempty keeps the key out of generated configs while it is
	// false, so that a generated file stays loadable by Alumet.
	Append bool `toml:"append,omitempty"`
}

// DefaultConfig returns the default [plugins.csv] section.
func DefaultConfig() *Config {
	return &Config{
		OutputPath:             "alumet-output.csv",
		ForceFlush:             true,
		AppendUnitToMetricName: true,
		UseUnitDisplayName:     true,
		CSVDelimiter:           ";",
		CSVLateDelimiter:       ",",
		Append:                 false,
	}
}

// SampleConfig is the commented default section (sample.toml).
//
//go:embed sample.toml
var SampleConfig string

// Validate checks the decoded values. Every problem is a plugin.FieldError;
// several problems are joined with errors.Join.
func (c *Config) Validate() error {
	var errs []error
	if c.OutputPath == "" {
		errs = append(errs, plugin.FieldErrorf("output_path", "must not be empty"))
	}
	dErr := checkDelimiter(c.CSVDelimiter)
	if dErr != nil {
		errs = append(errs, &plugin.FieldError{Key: "csv_delimiter", Err: dErr})
	}
	lErr := checkDelimiter(c.CSVLateDelimiter)
	if lErr != nil {
		errs = append(errs, &plugin.FieldError{Key: "csv_late_delimiter", Err: lErr})
	}
	if dErr == nil && lErr == nil && c.CSVDelimiter == c.CSVLateDelimiter {
		errs = append(errs, plugin.FieldErrorf("csv_late_delimiter",
			"must differ from csv_delimiter (both are %q)", c.CSVDelimiter))
	}
	return errors.Join(errs...)
}

// checkDelimiter accepts exactly one valid UTF-8 character other than the
// quote, CR and LF, which RFC 4180 reserves.
func checkDelimiter(s string) error {
	r, size := utf8.DecodeRuneInString(s)
	if s == "" || size != len(s) || r == utf8.RuneError {
		return fmt.Errorf("must be exactly one character, got %q", s)
	}
	if err := checkDelimiterRune(r); err != nil {
		return err
	}
	return nil
}

func checkDelimiterRune(r rune) error {
	switch r {
	case '"', '\r', '\n':
		return fmt.Errorf("%q cannot be used as a delimiter", r)
	}
	if r == utf8.RuneError || !utf8.ValidRune(r) {
		return fmt.Errorf("%q is not a valid character", r)
	}
	return nil
}

// Options returns the writer options of this configuration. The delimiters
// must have been validated.
func (c *Config) Options() Options {
	d, _ := utf8.DecodeRuneInString(c.CSVDelimiter)
	l, _ := utf8.DecodeRuneInString(c.CSVLateDelimiter)
	return Options{
		Delimiter:              d,
		LateDelimiter:          l,
		AppendUnitToMetricName: c.AppendUnitToMetricName,
		UseUnitDisplayName:     c.UseUnitDisplayName,
	}
}
