package energyreport

import (
	_ "embed"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/alumet-go/alumet-agent/config"
	"github.com/alumet-go/alumet-agent/plugin"
)

// Config is the [plugins.energy-report] table.
type Config struct {
	// SummaryFile is where the JSON summary is written (atomically), relative
	// to the working directory; "" writes none.
	SummaryFile string `toml:"summary_file"`
	// Baseline is the idle power subtracted to give the dynamic energy:
	// "none", or a constant power per series such as "95W" or "95.5 W".
	// "before:D" (the median power of the D before the run, from Kwollect)
	// is not implemented yet.
	Baseline string `toml:"baseline"`
	// Metrics are the metrics to integrate; empty means every gauge metric
	// whose unit is W.
	Metrics MetricList `toml:"metrics"`
	// Table prints the table on stderr at the end.
	Table bool `toml:"table"`
}

// DefaultConfig returns the defaults: no summary file, no baseline, every
// power metric, the table on stderr.
func DefaultConfig() *Config {
	return &Config{Baseline: "none", Metrics: MetricList{}, Table: true}
}

// SampleConfig is the commented default section (sample.toml).
//
//go:embed sample.toml
var SampleConfig string

// Validate checks the decoded values; every problem is a plugin.FieldError.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := ParseBaseline(c.Baseline); err != nil {
		errs = append(errs, &plugin.FieldError{Key: "baseline", Err: err})
	}
	seen := map[string]bool{}
	for _, m := range c.Metrics {
		switch {
		case strings.TrimSpace(m) == "":
			errs = append(errs, plugin.FieldErrorf("metrics", "empty metric name"))
		case seen[m]:
			errs = append(errs, plugin.FieldErrorf("metrics", "%q is listed twice", m))
		}
		seen[m] = true
	}
	if strings.HasSuffix(c.SummaryFile, "/") {
		errs = append(errs, plugin.FieldErrorf("summary_file", "%q is a directory, expected a file name such as \"energy.json\"", c.SummaryFile))
	}
	return errors.Join(errs...)
}

var baselineWatts = regexp.MustCompile(`^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*W$`)

// ParseBaseline reads the baseline key: "none" (or empty) is no baseline;
// "<number>W" or "<number> W" a constant idle power in watts.
func ParseBaseline(s string) (watts float64, set bool, err error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" || s == "none":
		return 0, false, nil
	case strings.HasPrefix(s, "before:"):
		return 0, false, fmt.Errorf("%q: before:D (the idle level measured before the run) is not implemented yet; use \"none\" or a constant power such as \"95W\"", s)
	}
	m := baselineWatts.FindStringSubmatch(s)
	if m == nil {
		return 0, false, fmt.Errorf("expected \"none\" or a constant power such as \"95W\" or \"95.5 W\", got %q", s)
	}
	w, perr := strconv.ParseFloat(m[1], 64)
	if perr != nil || math.IsInf(w, 0) {
		return 0, false, fmt.Errorf("%q is not a usable power in watts", s)
	}
	return w, true, nil
}

// MetricList is a TOML list of metric names, or one string (possibly
// comma-separated), as kwollect-input's metrics key accepts.
type MetricList []string

// UnmarshalTOML accepts a string or an array of strings.
func (l *MetricList) UnmarshalTOML(v any) error {
	items, err := config.ParseStringList(v)
	if err != nil {
		return err
	}
	*l = items
	return nil
}

// MarshalTOML writes a list (an empty one too, so generated configs show the key).
func (l MetricList) MarshalTOML() ([]byte, error) {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = strconv.Quote(s)
	}
	return []byte("[" + strings.Join(q, ", ") + "]"), nil
}
