package cli

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"

	"github.com/alumet-go/alumet-agent/config"
	"github.com/alumet-go/alumet-agent/internal/logging"
	"github.com/alumet-go/alumet-agent/plugin"
	"github.com/alumet-go/alumet-agent/rundir"
)

// reportName is the energy report plugin, which `report` replays.
const reportName = "energy-report"

// reportOptions are report's flags.
type reportOptions struct {
	jsonFile, plotFile, csvFile, baseline string
	method                                string
	metrics                               []string
	force, noTable, noPlot, runs, refetch bool
	excludeRuns                           []int
	trimStart, trimEnd, phase             string
	replay                                rundir.ReplayOptions
	changed                               func(string) bool
}

// recomputes says whether the options change the energy report.
func (o *reportOptions) recomputes() bool {
	for _, f := range []string{"baseline", "method", "metrics", "exclude-runs", "trim-start", "trim-end"} {
		if o.changed(f) {
			return true
		}
	}
	return false
}

// parse checks the replay's options.
func (o *reportOptions) parse() error {
	for _, n := range o.excludeRuns {
		if n < 1 {
			return usageError{fmt.Errorf("--exclude-runs: runs are numbered from 1, got %d", n)}
		}
		if o.replay.ExcludeRuns == nil {
			o.replay.ExcludeRuns = map[int]bool{}
		}
		o.replay.ExcludeRuns[n] = true
	}
	for _, d := range []struct {
		flag, val string
		dst       *time.Duration
	}{{"--trim-start", o.trimStart, &o.replay.TrimStart}, {"--trim-end", o.trimEnd, &o.replay.TrimEnd}} {
		if d.val == "" {
			continue
		}
		v, err := config.ParseDuration(d.val)
		if err != nil || v < 0 {
			return usageError{fmt.Errorf("%s: want a duration such as 5s, got %q", d.flag, d.val)}
		}
		*d.dst = v
	}
	return nil
}

func (g *globals) reportCmd() *cobra.Command {
	o := &reportOptions{}
	c := &cobra.Command{
		Use:   "report [OPTIONS] <RUN_DIR>...",
		Short: "Recompute, compare or tabulate run directories, offline",
		Long: "Recompute the energy report of a run directory (exec or fetch --run-dir), offline: no Kwollect, no\n" +
			"configuration file. The directory's files are checked against the SHA-256 of its manifest, then the\n" +
			"points the sources gave are replayed, in their order, through the same energy-report code as the live\n" +
			"run, with the run's energy-report settings unless options change them: with none, the summary is the\n" +
			"live run's energy.json, byte for byte.\n\n" +
			"The summary goes to --json (default: RUN_DIR/energy.report-<time>.json), the plot to --plot (default:\n" +
			"RUN_DIR/power.report-<time>.png) and the run table to --csv (default: RUN_DIR/runs.report-<time>.csv);\n" +
			"an existing file is never overwritten without --force.\n\n" +
			"With several RUN_DIRs, compare them: each against the first, per node and metric, the mean energy per run,\n" +
			"the difference with its 95 % confidence interval and Welch's t-test (runs whose command failed are left out),\n" +
			"on stdout, and in --json/--csv when given. With --baseline, --method or --metrics each is recomputed first.\n\n" +
			"With --refetch, a directory whose files are missing or damaged is repaired first: the raw stream is fetched\n" +
			"again from Kwollect over the manifest's windows (the password is not kept: password_file or netrc), the\n" +
			"damaged outputs, summary, plot and run table are rebuilt from it, and the manifest records the refetch.\n\n" +
			"With --runs, concatenate the run tables (runs.csv) of the RUN_DIRs, a run_dir column first, on stdout or\n" +
			"in --csv.\n\n" +
			"Examples:\n" +
			"  alumet-agent report runs/2026-12-02T21-46-14Z-bench\n" +
			"  alumet-agent report --baseline before:60s --json energy-idle60.json runs/2026-12-02T21-46-14Z-bench\n" +
			"  alumet-agent report runs/baseline runs/optimised\n" +
			"  alumet-agent report --runs runs/* > all-runs.csv",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("report needs a RUN_DIR")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.changed = cmd.Flags().Changed
			if err := o.parse(); err != nil {
				return err
			}
			if o.phase != "" && (o.runs || len(args) < 2) {
				return usageError{errors.New("--phase goes with several RUN_DIRs (a comparison); the run table has every phase")}
			}
			if o.refetch {
				if len(args) != 1 || o.runs {
					return usageError{errNoRefetch}
				}
				if err := g.refetch(cmd, args[0]); err != nil {
					return err
				}
			}
			switch {
			case o.runs:
				return g.reportRuns(o, args)
			case len(args) > 1:
				return g.reportCompare(cmd, o, args)
			}
			return g.reportOne(cmd, o, args[0])
		},
	}
	fs := c.Flags()
	fs.StringVar(&o.jsonFile, "json", "", "write the summary (or the comparison) there (default: RUN_DIR/energy.report-<time>.json)")
	fs.StringVar(&o.plotFile, "plot", "", "write the plot there, .png or .svg (default: RUN_DIR/power.report-<time>.png)")
	fs.BoolVar(&o.noPlot, "no-plot", false, "draw no plot")
	fs.StringVar(&o.csvFile, "csv", "", "write the run table (or the comparison) there (default: RUN_DIR/runs.report-<time>.csv)")
	fs.StringVar(&o.baseline, "baseline", "", `idle power: "none", a constant ("95W"), "before:D" or "after:D" (at most the span the run kept)`)
	fs.StringVar(&o.method, "method", "", `integrate every power series with "step-average" or "trapezoid" ("auto": from each series' metric and period, the default)`)
	fs.StringSliceVar(&o.metrics, "metrics", nil, "the metrics to integrate (default: the run's setting)")
	fs.BoolVar(&o.noTable, "no-table", false, "do not print the energy table")
	fs.IntSliceVar(&o.excludeRuns, "exclude-runs", nil, "leave these runs of exec --repeat out (e.g. 1 for the warm-up run)")
	fs.StringVar(&o.trimStart, "trim-start", "", "start every run's window this much later (without its warm-up)")
	fs.StringVar(&o.trimEnd, "trim-end", "", "end every run's window this much earlier")
	fs.BoolVar(&o.runs, "runs", false, "concatenate the run tables of the RUN_DIRs")
	fs.StringVar(&o.phase, "phase", "", "compare the energy of this phase of each run, not of the whole runs")
	fs.BoolVar(&o.refetch, "refetch", false, "rebuild a damaged or missing raw stream from Kwollect (the manifest's windows), and the files derived from it, then report")
	fs.BoolVar(&o.force, "force", false, "overwrite the --json, --plot and --csv files if they exist")
	for _, n := range []string{"json", "plot", "csv"} {
		annotate(fs, n, annValue, "<FILE>")
	}
	annotate(fs, "baseline", annValue, "<BASELINE>")
	annotate(fs, "method", annValue, "<METHOD>")
	annotate(fs, "metrics", annValue, "<METRIC,...>")
	annotate(fs, "exclude-runs", annValue, "<N,...>")
	annotate(fs, "phase", annValue, "<NAME>")
	annotate(fs, "trim-start", annValue, "<DURATION>")
	annotate(fs, "trim-end", annValue, "<DURATION>")
	return c
}

// reportConfig is energy-report's configuration for a replay of run: the
// run's, with the options' changes, writing the summary to jsonFile (the
// caller sets plot_file).
func (g *globals) reportConfig(run *rundir.Run, o *reportOptions, jsonFile string, table bool) (plugin.Factory, plugin.Config, error) {
	f, ok := g.factory(reportName)
	if !ok {
		return f, nil, fmt.Errorf("this binary has no %s plugin", reportName)
	}
	cfg, err := runPluginConfig(run, f)
	if err != nil {
		return f, nil, err
	}
	set := [][2]string{{"summary_file", jsonFile}}
	if o.changed("baseline") {
		set = append(set, [2]string{"baseline", o.baseline})
	}
	if o.changed("method") {
		set = append(set, [2]string{"method", o.method})
	}
	for _, kv := range set {
		if err := setKey(cfg, kv[0], kv[1]); err != nil {
			return f, nil, usageError{fmt.Errorf("--%s: %w", flagOf(kv[0]), err)}
		}
	}
	if o.changed("metrics") {
		if _, err := toml.Decode("metrics = "+tomlList(o.metrics), cfg); err != nil {
			return f, nil, usageError{fmt.Errorf("--metrics: %w", err)}
		}
	}
	if _, err := toml.Decode("table = "+strconv.FormatBool(table), cfg); err != nil {
		return f, nil, err
	}
	if err := cfg.Validate(); err != nil {
		return f, nil, usageError{err}
	}
	return f, cfg, nil
}

// plotExt is the extension of the run's plot (.png unless it drew SVG).
func plotExt(cfg plugin.Config) string {
	if fc, ok := cfg.(plugin.FilesConfig); ok {
		for _, fl := range fc.Files() {
			if fl.Key == "plot_file" && filepath.Ext(fl.Path) != "" {
				return filepath.Ext(fl.Path)
			}
		}
	}
	return ".png"
}

// refuseExisting refuses to overwrite files without --force.
func (o *reportOptions) refuseExisting(paths ...string) error {
	for _, p := range paths {
		if p == "" || o.force {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return usageError{fmt.Errorf("%s exists: not overwritten (--force overwrites it)", p)}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// reportOne recomputes the report of one run directory.
func (g *globals) reportOne(cmd *cobra.Command, o *reportOptions, dir string) error {
	run, err := rundir.Open(dir)
	if err != nil {
		return err
	}
	if err := run.Measured(); err != nil {
		return err
	}
	stamp := time.Now().UTC().Format("20060102T150405Z")
	jsonFile, plotFile, csvFile := o.jsonFile, o.plotFile, o.csvFile
	if jsonFile == "" {
		jsonFile = freeName(filepath.Join(run.Dir, "energy.report-"+stamp), ".json")
	}
	if csvFile == "" {
		csvFile = freeName(filepath.Join(run.Dir, "runs.report-"+stamp), ".csv")
	}
	f, cfg, err := g.reportConfig(run, o, jsonFile, !o.noTable)
	if err != nil {
		return err
	}
	if plotFile == "" {
		plotFile = freeName(filepath.Join(run.Dir, "power.report-"+stamp), plotExt(cfg))
	}
	if o.noPlot {
		plotFile = ""
	}
	if err := setKey(cfg, "plot_file", plotFile); err != nil {
		return usageError{fmt.Errorf("--plot: %w", err)}
	}
	if err := o.refuseExisting(jsonFile, plotFile, csvFile); err != nil {
		return err
	}
	log := logging.Target(g.logger, "alumet::agent::report")
	log.Info(fmt.Sprintf("Replaying %s (%s %s, %s): %d points, %d of history", run.Dir, run.Manifest.Agent.Name, run.Manifest.Agent.Version,
		run.Manifest.Started, run.Manifest.Stream.Points, run.Manifest.Stream.History))
	if err := run.Replay(cmd.Context(), []rundir.Element{{Factory: f, Config: cfg}}, g.logger, o.replay); err != nil {
		return err
	}
	if _, err := os.Stat(jsonFile); err != nil {
		return nil // no data in the window: energy-report said so
	}
	if err := rundir.WriteRunTable(jsonFile, csvFile); err != nil {
		return err
	}
	log.Info("Run table written to " + csvFile)
	return nil
}

// summaryOf is the energy summary of a run directory: its own (verified),
// or recomputed with the options when they change it.
func (g *globals) summaryOf(cmd *cobra.Command, o *reportOptions, dir string) ([]byte, error) {
	run, err := rundir.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := run.Measured(); err != nil {
		return nil, err
	}
	if err := run.Verify(); err != nil {
		return nil, err
	}
	if !o.recomputes() {
		for _, file := range run.Manifest.Files {
			if file.Role == reportName+" summary_file" {
				return os.ReadFile(filepath.Join(run.Dir, filepath.FromSlash(file.Name)))
			}
		}
		// energy-report was not on during the run: compute it now.
	}
	tmp, err := os.MkdirTemp("", "alumet-report-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	path := filepath.Join(tmp, "energy.json")
	f, cfg, err := g.reportConfig(run, o, path, false)
	if err != nil {
		return nil, err
	}
	if err := setKey(cfg, "plot_file", ""); err != nil {
		return nil, err
	}
	quiet := logging.Target(g.logger, "alumet::agent::report")
	if err := run.Replay(cmd.Context(), []rundir.Element{{Factory: f, Config: cfg}}, quiet, o.replay); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: no power sample in the measured window: nothing to compare", dir)
	}
	return b, err
}

// reportCompare compares each run directory with the first.
func (g *globals) reportCompare(cmd *cobra.Command, o *reportOptions, dirs []string) error {
	if err := o.refuseExisting(o.jsonFile, o.csvFile); err != nil {
		return err
	}
	energies := make([]rundir.Energies, len(dirs))
	for i, d := range dirs {
		b, err := g.summaryOf(cmd, o, d)
		if err != nil {
			return err
		}
		if energies[i], err = rundir.EnergiesOf(b, o.phase); err != nil {
			return fmt.Errorf("%s: the energy summary: %w", d, err)
		}
		if len(energies[i]) == 0 && o.phase != "" {
			return fmt.Errorf("%s: no run has a phase %q with data", d, o.phase)
		}
	}
	type versus struct {
		A      string              `json:"a"`
		B      string              `json:"b"`
		Series []rundir.Comparison `json:"series"`
	}
	var all []versus
	var text strings.Builder
	for i := 1; i < len(dirs); i++ {
		cs := rundir.Compare(energies[0], energies[i])
		all = append(all, versus{A: dirs[0], B: dirs[i], Series: cs})
		if i > 1 {
			text.WriteString("\n")
		}
		a, b := dirs[0], dirs[i]
		if o.phase != "" {
			a, b = a+" (phase "+o.phase+")", b+" (phase "+o.phase+")"
		}
		text.WriteString(rundir.FormatComparisons(a, b, cs))
	}
	if _, err := io.WriteString(g.stdout, text.String()); err != nil {
		return err
	}
	if o.jsonFile != "" {
		b, err := json.MarshalIndent(map[string]any{"schema": "alumet-agent/comparison", "version": 1, "comparisons": all}, "", "  ")
		if err != nil {
			return err
		}
		if err := writeAtomic(o.jsonFile, append(b, '\n')); err != nil {
			return err
		}
	}
	if o.csvFile != "" {
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		_ = w.Write([]string{"a", "b", "node", "metric", "runs_a", "mean_a_j", "sd_a_j", "runs_b", "mean_b_j", "sd_b_j", "diff_j", "diff_pct", "ci95_low", "ci95_high", "welch_t", "df", "p", "note"})
		for _, v := range all {
			for _, c := range v.Series {
				lo, hi := "", ""
				if len(c.CI95) == 2 {
					lo, hi = fnum(c.CI95[0]), fnum(c.CI95[1])
				}
				_ = w.Write([]string{v.A, v.B, c.Node, c.Metric, strconv.Itoa(c.A.Runs), fnum(&c.A.MeanJ), fnum(c.A.SDJ), strconv.Itoa(c.B.Runs),
					fnum(&c.B.MeanJ), fnum(c.B.SDJ), fnum(&c.DiffJ), fnum(c.DiffPct), lo, hi, fnum(c.T), fnum(c.DF), fnum(c.P), c.Note})
			}
		}
		w.Flush()
		if err := writeAtomic(o.csvFile, buf.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// reportRuns concatenates the run tables of the run directories.
func (g *globals) reportRuns(o *reportOptions, dirs []string) error {
	if err := o.refuseExisting(o.csvFile); err != nil {
		return err
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write(append([]string{"run_dir"}, rundir.RunTableHeader...))
	for _, d := range dirs {
		run, err := rundir.Open(d)
		if err != nil {
			return err
		}
		if err := run.Verify(); err != nil {
			return err
		}
		if _, ok := run.File(rundir.RunTableName); !ok {
			return fmt.Errorf("%s: no %s (energy-report was off during the run: `alumet-agent report %s` computes one)", d, rundir.RunTableName, d)
		}
		path := filepath.Join(run.Dir, rundir.RunTableName)
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		rows, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if len(rows) == 0 || strings.Join(rows[0], ",") != strings.Join(rundir.RunTableHeader, ",") {
			return fmt.Errorf("%s: not a run table of this version (header %v)", path, rows)
		}
		for _, r := range rows[1:] {
			_ = w.Write(append([]string{d}, r...))
		}
	}
	w.Flush()
	if o.csvFile != "" {
		return writeAtomic(o.csvFile, buf.Bytes())
	}
	_, err := g.stdout.Write(buf.Bytes())
	return err
}

func fnum(f *float64) string {
	if f == nil {
		return ""
	}
	return strconv.FormatFloat(*f, 'g', -1, 64)
}

// writeAtomic writes path through a temporary file in its directory.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// freeName is base+ext, or base-2+ext, base-3+ext... when it exists: a
// default name never overwrites a file.
func freeName(base, ext string) string {
	name := base + ext
	for i := 2; ; i++ {
		if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			return name
		}
		name = fmt.Sprintf("%s-%d%s", base, i, ext)
	}
}

func flagOf(key string) string {
	switch key {
	case "summary_file":
		return "json"
	case "plot_file":
		return "plot"
	}
	return key
}

func tomlList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func (g *globals) factory(name string) (plugin.Factory, bool) {
	for _, f := range g.factories() {
		if f.Name == name {
			return f, true
		}
	}
	return plugin.Factory{}, false
}

// runPluginConfig is the configuration plugin f had in the run: its
// section of the run's config.toml decoded over its defaults, or the
// defaults when the run did not enable it.
func runPluginConfig(run *rundir.Run, f plugin.Factory) (plugin.Config, error) {
	path := filepath.Join(run.Dir, rundir.ConfigName)
	var doc struct {
		Plugins map[string]toml.Primitive `toml:"plugins"`
	}
	md, err := toml.DecodeFile(path, &doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	cfg := f.DefaultConfig()
	if prim, ok := doc.Plugins[f.Name]; ok {
		if err := md.PrimitiveDecode(prim, cfg); err != nil {
			return nil, fmt.Errorf("%s: [plugins.%s]: %w", path, f.Name, err)
		}
	}
	return cfg, nil
}
