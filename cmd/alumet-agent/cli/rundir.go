package cli

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/spf13/pflag"

	"github.com/alumet-go/alumet-agent/agent"
	"github.com/alumet-go/alumet-agent/config"
	"github.com/alumet-go/alumet-agent/internal/logging"
	"github.com/alumet-go/alumet-agent/plugin"
	"github.com/alumet-go/alumet-agent/plugins/csv"
	"github.com/alumet-go/alumet-agent/plugins/energyreport"
	"github.com/alumet-go/alumet-agent/rundir"
)

// runDir is the run directory of an exec or fetch with --run-dir.
type runDir struct {
	rec   *rundir.Recorder
	log   *os.File
	mode  string
	roles map[string]string // file name -> role, of the outputs' files
	// stderrLog is the logger without the log file: the manifest hashes
	// the log, so nothing is written to it after.
	stderrLog *slog.Logger
}

// addRunDirFlag adds --run-dir to an exec, watch or fetch command.
// Without long, the flag has no long help: watch's -h stays Alumet's
// ("Print help", not "(see more with '--help')").
func addRunDirFlag(fs *pflag.FlagSet, dst *string, long bool) {
	fs.StringVar(dst, "run-dir", "", "keep the run as evidence in DIR: manifest, raw data, config, CSV, energy summary, plot, log ({start}, {name} expand)")
	annotate(fs, "run-dir", annValue, "<DIR>")
	annotate(fs, "run-dir", annHeading, oursOptions)
	if !long {
		return
	}
	annotate(fs, "run-dir", annLong, "keep the run as evidence in DIR: manifest, raw data, config, CSV, energy summary, plot, log ({start}, {name} expand).\n\n"+
		"DIR must be new or empty. {start} becomes the start time (UTC, 2026-12-02T21-46-14Z; fetch: the window's), {name} the program's name\n"+
		"(exec, watch) or \"fetch\". The outputs' files (csv, jsonl, parquet) and energy-report's summary and plot go there instead\n"+
		"of their configured paths. `alumet-agent report DIR` recomputes the energy report from it, offline.")
}

// expandRunDir replaces {start} and {name} in a --run-dir value.
func expandRunDir(pattern string, start time.Time, name string) string {
	name = strings.Map(func(r rune) rune {
		if r == '/' || r == os.PathSeparator || r < ' ' {
			return '_'
		}
		return r
	}, name)
	return strings.NewReplacer("{start}", start.UTC().Format("2006-01-02T15-04-05Z"), "{name}", name).Replace(pattern)
}

// openRunDir creates the run directory and its log: the log goes to stderr
// and to DIR/agent.log.
func (g *globals) openRunDir(pattern, mode, name string) error {
	start := g.runDirStart
	if start.IsZero() {
		start = time.Now()
	}
	path := expandRunDir(pattern, start, name)
	rec, err := rundir.Create(path)
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(rec.Path(rundir.LogName), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	g.runDir = &runDir{rec: rec, log: logf, mode: mode, roles: map[string]string{}, stderrLog: g.logger}
	// From now on the log goes to DIR/agent.log too (without colours).
	g.logger = slog.New(slog.NewMultiHandler(g.logger.Handler(), logging.NewHandler(logf, g.filter, false)))
	return nil
}

// openConfiguredRunDir opens the run directory of energy-report's run_dir
// key when --run-dir did not (the flag wins). Its agent.log starts here,
// at the configuration's load: the lines before it are on stderr only.
func (g *globals) openConfiguredRunDir(loaded *config.Loaded) error {
	if g.runDir != nil || g.runDirMode == "" {
		return nil
	}
	for _, p := range loaded.Enabled {
		if c, ok := p.Config.(*energyreport.Config); ok && c.RunDir != "" {
			if err := g.openRunDir(c.RunDir, g.runDirMode, g.runDirName); err != nil {
				return fmt.Errorf("%s: [plugins.energy-report] run_dir: %w", loaded.Path, err)
			}
			logging.Target(g.logger, agent.TargetAgent).Info("Keeping the run in " + g.runDir.rec.Path("") + " (energy-report's run_dir)")
		}
	}
	return nil
}

// runDirHook points the outputs' and energy-report's files into the run
// directory, writes the effective configuration there, and returns the
// hook that records the pipeline.
func (g *globals) runDirHook(loaded *config.Loaded) (agent.Hook, error) {
	rd := g.runDir
	addParquet(loaded)
	for _, ep := range loaded.Enabled {
		var files []plugin.File
		if c, ok := ep.Config.(*csv.Config); ok {
			files = append(files, plugin.File{Key: "output_path", Path: c.OutputPath})
		} else if fc, ok := ep.Config.(plugin.FilesConfig); ok {
			files = fc.Files()
		}
		for _, f := range files {
			if f.Path == "" {
				continue // off: stays off
			}
			name := runDirFileName(ep.Spec.Name, f.Key, f.Path)
			if err := setKey(ep.Config, f.Key, rd.rec.Path(name)); err != nil {
				return nil, fmt.Errorf("run directory: plugin %s, key %s: %w", ep.Spec.Name, f.Key, err)
			}
			rd.roles[name] = ep.Spec.Name + " " + f.Key
		}
	}
	text, err := config.Effective(loaded)
	if err != nil {
		return nil, fmt.Errorf("run directory: the effective configuration: %w", err)
	}
	header := "# The configuration this run used (" + loaded.Path + ", overrides and defaults applied), secrets redacted.\n" +
		"# The outputs' paths point into the run directory.\n\n"
	if err := rd.rec.WriteFile(rundir.ConfigName, []byte(header+text)); err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	logging.Target(g.logger, agent.TargetAgent).Info(fmt.Sprintf("Run directory: %s", rd.rec.Dir()))
	return rd.rec.Hook, nil
}

// addParquet turns the parquet output on, with its defaults, when the
// run does not use it: a run directory always has its measurements as a
// typed, compressed table (measurements.parquet) for pandas or DuckDB,
// next to the exact raw stream that report replays.
func addParquet(loaded *config.Loaded) {
	for _, ep := range loaded.Enabled {
		if ep.Spec.Name == parquetName {
			return
		}
	}
	for i, d := range loaded.Disabled {
		if d.Name == parquetName && d.DefaultConfig != nil {
			loaded.Enabled = append(loaded.Enabled, config.EnabledPlugin{Spec: d, Config: d.DefaultConfig()})
			loaded.Disabled = append(loaded.Disabled[:i:i], loaded.Disabled[i+1:]...)
			return
		}
	}
}

// parquetName is the Parquet output a run directory always writes.
const parquetName = "parquet"

// runDirFileName is the name a plugin's file gets in the run directory:
// the measurements, the energy summary and the plot by what they are,
// with the configured extension.
func runDirFileName(plugin, key, path string) string {
	ext := filepath.Ext(path)
	switch {
	case key == "output_path":
		if ext == "" {
			ext = "." + plugin
		}
		return "measurements" + ext
	case key == "summary_file":
		return "energy" + ext
	case key == "plot_file":
		return "power" + ext
	}
	return plugin + "-" + strings.TrimSuffix(key, "_file") + ext
}

// setKey sets one key of a decoded plugin configuration, as if the file had
// it, and validates the result.
func setKey(cfg plugin.Config, key, value string) error {
	if _, err := toml.Decode(key+" = "+strconv.Quote(value), cfg); err != nil {
		return err
	}
	return cfg.Validate()
}

// finishRunDir writes the manifest once the agent is done; code is the
// agent's exit code. A failure is said, and makes the exit code non-zero.
func (g *globals) finishRunDir(code int) int {
	rd := g.runDir
	if rd == nil {
		return code
	}
	g.runDir = nil
	version, _ := versionInfo()
	info := rundir.FinishInfo{
		Agent: rundir.AgentInfo{Name: "alumet-agent", Version: version, Commit: vcsRevision()},
		Argv:  os.Args, Mode: rd.mode, AgentExitCode: code, Roles: rd.roles,
	}
	for name, role := range rd.roles {
		if role != reportName+" summary_file" {
			continue
		}
		if _, err := os.Stat(rd.rec.Path(name)); err != nil {
			continue // no data: no summary
		}
		if err := rundir.WriteRunTable(rd.rec.Path(name), rd.rec.Path(rundir.RunTableName)); err != nil {
			logging.Target(g.logger, agent.TargetAgent).Error(fmt.Sprintf("Run directory: the run table: %v", err))
			code = max(code, 1)
		} else {
			rd.roles[rundir.RunTableName] = "run table: one row per run, phase, node and metric"
		}
	}
	logging.Target(g.logger, agent.TargetAgent).Info(fmt.Sprintf("Writing %s of %s (the log ends here).", rundir.ManifestName, rd.rec.Dir()))
	g.logger = rd.stderrLog
	logCloseErr := rd.log.Close()
	log := logging.Target(g.logger, agent.TargetAgent)
	if logCloseErr != nil {
		log.Error(fmt.Sprintf("Run directory %s: %v", rd.rec.Dir(), logCloseErr))
		code = max(code, 1)
	}
	if err := rd.rec.Finish(info); err != nil {
		log.Error(fmt.Sprintf("Run directory %s: %v", rd.rec.Dir(), err))
		if code == 0 {
			code = 1
		}
	} else {
		log.Info(fmt.Sprintf("Run directory %s complete: %s lists its files with their SHA-256; `alumet-agent report %s` re-opens it.", rd.rec.Dir(), rundir.ManifestName, rd.rec.Dir()))
	}
	return code
}
