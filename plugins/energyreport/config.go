package energyreport

import (
	_ "embed"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/alumet-go/alumet-agent/config"
	"github.com/alumet-go/alumet-agent/energy"
	"github.com/alumet-go/alumet-agent/internal/powerplot"
	"github.com/alumet-go/alumet-agent/plugin"
)

// Config is the [plugins.energy-report] table.
type Config struct {
	// SummaryFile is where the JSON summary is written (atomically), relative
	// to the working directory; "" writes none.
	SummaryFile string `toml:"summary_file"`
	// Baseline is the idle power subtracted to give the dynamic energy:
	// "none"; a constant power per series such as "95W" or "95.5 W"; or
	// "before:D", the median power of each series over the D before the
	// (first) run, which the sources fetch from the node's history.
	Baseline string `toml:"baseline"`
	// PlotFile is where the power plot is written (.png or .svg); "" draws
	// none.
	PlotFile string `toml:"plot_file"`
	// Metrics are the metrics to integrate; empty means every gauge metric
	// whose unit is W.
	Metrics MetricList `toml:"metrics"`
	// Table prints the table on stderr at the end.
	Table bool `toml:"table"`
	// Phases has exec read the ALUMET_PHASE lines of the command's stdout
	// (as exec --phases): off by default, because the command's stdout is
	// then a pipe the agent copies, not the user's (isatty, buffering).
	// alumet-agent mark works either way.
	Phases bool `toml:"phases"`
	// LocalNode names the node the agent runs on, for the points of
	// on-node sources (rapl), so that they are compared with the node's
	// Kwollect series; "" guesses (see report.localNode). Left out of
	// generated configurations while unset.
	LocalNode string `toml:"local_node,omitempty"`
	// RunDir keeps every exec, watch and fetch as a run directory there
	// ({start} and {name} expand), as their --run-dir option does (which
	// wins); the run mode keeps none. Left out of generated
	// configurations while unset.
	RunDir string `toml:"run_dir,omitempty"`
	// Method forces the integration of the power series: "auto" (or
	// unset) picks it from the metric and its period (step integration
	// of Kwollect's 1 s wattmetre means, trapezoids for instantaneous
	// readings); "step-average" or "trapezoid" use that one for every
	// power series (energy counters are always differences). Go only,
	// left out of generated configurations while unset.
	Method string `toml:"method,omitempty"`
}

// methodOf is the method key's forced method; ok is false for "auto".
func methodOf(s string) (m energy.Method, ok bool, err error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return 0, false, nil
	case "step-average", "step":
		return energy.StepAverage, true, nil
	case "trapezoid", "trapezoidal":
		return energy.Trapezoid, true, nil
	}
	return 0, false, fmt.Errorf(`expected "auto", "step-average" or "trapezoid", got %q`, s)
}

// DefaultConfig returns the defaults: the summary in alumet-energy.json,
// the plot in alumet-power.png, no baseline, every power metric, the table
// on stderr.
func DefaultConfig() *Config {
	return &Config{SummaryFile: DefaultSummaryFile, PlotFile: DefaultPlotFile, Baseline: "none", Metrics: MetricList{}, Table: true}
}

// The default files, next to the CSV's alumet-output.csv: the evidence of
// a measurement without any setting.
const (
	DefaultSummaryFile = "alumet-energy.json"
	DefaultPlotFile    = "alumet-power.png"
)

// SampleConfig is the commented default section (sample.toml).
//
//go:embed sample.toml
var SampleConfig string

// Validate checks the decoded values; every problem is a plugin.FieldError.
// Files are the summary and the plot (plugin.FilesConfig).
func (c *Config) Files() []plugin.File {
	return []plugin.File{{Key: "summary_file", Path: c.SummaryFile}, {Key: "plot_file", Path: c.PlotFile}}
}

func (c *Config) Validate() error {
	var errs []error
	if _, err := ParseBaseline(c.Baseline); err != nil {
		errs = append(errs, &plugin.FieldError{Key: "baseline", Err: err})
	}
	if _, _, err := methodOf(c.Method); err != nil {
		errs = append(errs, &plugin.FieldError{Key: "method", Err: err})
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
	if c.PlotFile != "" {
		if err := powerplot.CheckPath(c.PlotFile); err != nil {
			errs = append(errs, &plugin.FieldError{Key: "plot_file", Err: err})
		}
	}
	if strings.HasSuffix(c.SummaryFile, "/") {
		errs = append(errs, plugin.FieldErrorf("summary_file", "%q is a directory, expected a file name such as \"energy.json\"", c.SummaryFile))
	}
	return errors.Join(errs...)
}

var baselineWatts = regexp.MustCompile(`^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*W$`)

// BaselineKind says where the idle level comes from.
type BaselineKind int

const (
	// NoBaseline: no dynamic energy.
	NoBaseline BaselineKind = iota
	// ConstantBaseline: the same power for every series.
	ConstantBaseline
	// HistoryBaseline: the median power of each series before the run.
	HistoryBaseline
	// AfterBaseline: the median power of each series after the (last)
	// run, which the agent waits for.
	AfterBaseline
)

// Baseline is the parsed baseline key.
type Baseline struct {
	Kind   BaselineKind
	Watts  float64       // ConstantBaseline
	Before time.Duration // HistoryBaseline
	After  time.Duration // AfterBaseline
}

// fromData says whether the baseline is measured (before or after the
// run), one per series, rather than given.
func (b Baseline) fromData() bool { return b.Kind == HistoryBaseline || b.Kind == AfterBaseline }

// span is the data a measured baseline is the median of, for messages:
// "the 30s before the run", "the 1m0s after the run".
func (b Baseline) span() string {
	if b.Kind == AfterBaseline {
		return fmt.Sprintf("the %v after the run", b.After)
	}
	return fmt.Sprintf("the %v before the run", b.Before)
}

// maxBefore bounds before:D: the history is kept in memory and fetched in
// one go (an hour of 100 Hz frames is 360,000 rows a node).
const maxBefore = time.Hour

// maxAfter bounds after:D: the agent waits that long after the command.
const maxAfter = 10 * time.Minute

// ParseBaseline reads the baseline key: "none" (or empty) is no baseline;
// "<number>W" or "<number> W" a constant idle power in watts; "before:D"
// (D a duration such as 30s or 5m) the median power over the D before the
// run; "after:D" the median power over the D after the (last) run.
func ParseBaseline(s string) (Baseline, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" || s == "none":
		return Baseline{}, nil
	case strings.HasPrefix(s, "before:"):
		ds := strings.TrimSpace(strings.TrimPrefix(s, "before:"))
		if ds == "" {
			return Baseline{}, fmt.Errorf("%q: say how long before the run, such as \"before:30s\"", s)
		}
		d, err := config.ParseDuration(ds)
		if err != nil {
			return Baseline{}, fmt.Errorf("%q: %w", s, err)
		}
		switch {
		case d < time.Second:
			return Baseline{}, fmt.Errorf("%q: at least 1s of history is needed for an idle level", s)
		case d > maxBefore:
			return Baseline{}, fmt.Errorf("%q: at most %v of history", s, maxBefore)
		}
		return Baseline{Kind: HistoryBaseline, Before: d}, nil
	case strings.HasPrefix(s, "after:"):
		ds := strings.TrimSpace(strings.TrimPrefix(s, "after:"))
		if ds == "" {
			return Baseline{}, fmt.Errorf("%q: say how long after the run, such as \"after:60s\"", s)
		}
		d, err := config.ParseDuration(ds)
		if err != nil {
			return Baseline{}, fmt.Errorf("%q: %w", s, err)
		}
		switch {
		case d < time.Second:
			return Baseline{}, fmt.Errorf("%q: at least 1s after the run is needed for an idle level", s)
		case d > maxAfter:
			return Baseline{}, fmt.Errorf("%q: at most %v after the run (the agent waits for it)", s, maxAfter)
		}
		return Baseline{Kind: AfterBaseline, After: d}, nil
	}
	m := baselineWatts.FindStringSubmatch(s)
	if m == nil {
		return Baseline{}, fmt.Errorf("expected \"none\", a constant power such as \"95W\" or \"95.5 W\", \"before:30s\" or \"after:60s\", got %q", s)
	}
	w, perr := strconv.ParseFloat(m[1], 64)
	if perr != nil || math.IsInf(w, 0) {
		return Baseline{}, fmt.Errorf("%q is not a usable power in watts", s)
	}
	return Baseline{Kind: ConstantBaseline, Watts: w}, nil
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
