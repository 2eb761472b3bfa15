package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"

	"github.com/alumet-go/alumet-agent/internal/logging"
	"github.com/alumet-go/alumet-agent/plugin"
	"github.com/alumet-go/alumet-agent/rundir"
)

// reportName is the energy report plugin, which `report` replays.
const reportName = "energy-report"

func (g *globals) reportCmd() *cobra.Command {
	var jsonFile, plotFile, csvFile, baseline string
	var metrics []string
	var force, noTable, noPlot bool
	c := &cobra.Command{
		Use:   "report [OPTIONS] <RUN_DIR>",
		Short: "Recompute the energy report of a run directory, offline",
		Long: "Recompute the energy report of a run directory (exec or fetch --run-dir), offline: no Kwollect, no\n" +
			"configuration file. The directory's files are checked against the SHA-256 of its manifest, then the\n" +
			"points the sources gave are replayed, in their order, through the same energy-report code as the live\n" +
			"run, with the run's energy-report settings unless options change them: with none, the summary is the\n" +
			"live run's energy.json, byte for byte.\n\n" +
			"The summary goes to --json (default: RUN_DIR/energy.report-<time>.json), the plot to --plot (default:\n" +
			"RUN_DIR/power.report-<time>.png) and the run table to --csv (default: RUN_DIR/runs.report-<time>.csv);\n" +
			"an existing file is never overwritten without --force.\n\n" +
			"Examples:\n" +
			"  alumet-agent report runs/2026-12-02T21-46-14Z-bench\n" +
			"  alumet-agent report --baseline before:60s --json energy-idle60.json runs/2026-12-02T21-46-14Z-bench",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("report takes one RUN_DIR, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			run, err := rundir.Open(args[0])
			if err != nil {
				return err
			}
			f, ok := g.factory(reportName)
			if !ok {
				return fmt.Errorf("this binary has no %s plugin", reportName)
			}
			cfg, err := runPluginConfig(run, f)
			if err != nil {
				return err
			}
			stamp := time.Now().UTC().Format("20060102T150405Z")
			if jsonFile == "" {
				jsonFile = freeName(filepath.Join(run.Dir, "energy.report-"+stamp), ".json")
			}
			if plotFile == "" {
				ext := ".png"
				if fc, ok := cfg.(plugin.FilesConfig); ok {
					for _, fl := range fc.Files() {
						if fl.Key == "plot_file" && filepath.Ext(fl.Path) != "" {
							ext = filepath.Ext(fl.Path)
						}
					}
				}
				plotFile = freeName(filepath.Join(run.Dir, "power.report-"+stamp), ext)
			}
			if noPlot {
				plotFile = ""
			}
			if csvFile == "" {
				csvFile = freeName(filepath.Join(run.Dir, "runs.report-"+stamp), ".csv")
			}
			set := map[string]string{"summary_file": jsonFile, "plot_file": plotFile}
			if cmd.Flags().Changed("baseline") {
				set["baseline"] = baseline
			}
			for _, key := range []string{"summary_file", "plot_file", "baseline"} {
				v, ok := set[key]
				if !ok {
					continue
				}
				if err := setKey(cfg, key, v); err != nil {
					return usageError{fmt.Errorf("--%s: %w", flagOf(key), err)}
				}
			}
			if cmd.Flags().Changed("metrics") {
				if _, err := toml.Decode("metrics = "+tomlList(metrics), cfg); err != nil {
					return usageError{fmt.Errorf("--metrics: %w", err)}
				}
			}
			if noTable {
				if _, err := toml.Decode("table = false", cfg); err != nil {
					return err
				}
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			for _, p := range []string{jsonFile, plotFile, csvFile} {
				if p == "" || force {
					continue
				}
				if _, err := os.Stat(p); err == nil {
					return usageError{fmt.Errorf("%s exists: not overwritten (--force overwrites it)", p)}
				} else if !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
			log := logging.Target(g.logger, "alumet::agent::report")
			log.Info(fmt.Sprintf("Replaying %s (%s %s, %s): %d points, %d of history", run.Dir, run.Manifest.Agent.Name, run.Manifest.Agent.Version,
				run.Manifest.Started, run.Manifest.Stream.Points, run.Manifest.Stream.History))
			if err := run.Replay(cmd.Context(), []rundir.Element{{Factory: f, Config: cfg}}, g.logger); err != nil {
				return err
			}
			if _, err := os.Stat(jsonFile); err != nil {
				return nil // no data in the window: said by energy-report
			}
			if err := rundir.WriteRunTable(jsonFile, csvFile); err != nil {
				return err
			}
			log.Info("Run table written to " + csvFile)
			return nil
		},
	}
	fs := c.Flags()
	fs.StringVar(&jsonFile, "json", "", "write the summary there (default: RUN_DIR/energy.report-<time>.json)")
	fs.StringVar(&plotFile, "plot", "", "write the plot there, .png or .svg (default: RUN_DIR/power.report-<time>.png)")
	fs.BoolVar(&noPlot, "no-plot", false, "draw no plot")
	fs.StringVar(&csvFile, "csv", "", "write the run table there: one row per run, phase, node and metric (default: RUN_DIR/runs.report-<time>.csv)")
	fs.StringVar(&baseline, "baseline", "", `idle power: "none", a constant ("95W"), or "before:D" (at most the history the run kept)`)
	fs.StringSliceVar(&metrics, "metrics", nil, "the metrics to integrate (default: the run's setting)")
	fs.BoolVar(&noTable, "no-table", false, "do not print the table")
	fs.BoolVar(&force, "force", false, "overwrite the --json and --plot files if they exist")
	for _, n := range []string{"json", "plot", "csv"} {
		annotate(fs, n, annValue, "<FILE>")
	}
	annotate(fs, "baseline", annValue, "<BASELINE>")
	annotate(fs, "metrics", annValue, "<METRIC,...>")
	return c
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
		q[i] = fmt.Sprintf("%q", s)
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
