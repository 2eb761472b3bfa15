package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/alumet-go/alumet-agent/agent"
	"github.com/alumet-go/alumet-agent/config"
	"github.com/alumet-go/alumet-agent/internal/logging"
	"github.com/alumet-go/alumet-agent/pipeline"
	"github.com/alumet-go/alumet-agent/plugin"
	"github.com/alumet-go/alumet-agent/plugins/kwollectinput"
	"github.com/alumet-go/alumet-agent/rundir"
)

// redactedSecret is what config.Effective writes for a secret.
const redactedSecret = "<redacted>"

// refetch repairs a run directory whose files are missing or damaged: the
// raw stream is fetched again from Kwollect over the manifest's windows
// (with the run's kwollect-input settings), then the damaged files that
// derive from it (the outputs', the summary, the plot, the run table) are
// rebuilt by a replay. The damaged stream is kept; the manifest records
// the refetch, and the files that nothing rebuilds (the log) as lost.
func (g *globals) refetch(cmd *cobra.Command, dir string) error {
	log := logging.Target(g.logger, "alumet::agent::report")
	run, err := rundir.Open(dir)
	if err != nil {
		return err
	}
	probs := run.Check()
	if len(probs) == 0 {
		log.Info(fmt.Sprintf("%s: every file is as the manifest says: nothing to refetch", run.Dir))
		return nil
	}
	var reasons []string
	for _, p := range probs {
		if p.Name == rundir.ConfigName {
			return fmt.Errorf("%v: the run's configuration cannot be trusted, so nothing is refetched", p.Err)
		}
		reasons = append(reasons, p.Err.Error())
		log.Warn(p.Err.Error())
	}
	if len(run.Manifest.Events) == 0 {
		return fmt.Errorf("%s: the manifest has no measured window: nothing to refetch", run.Dir)
	}
	kf, ok := g.factory(kwollectinput.Name)
	if !ok {
		return fmt.Errorf("this binary has no %s plugin", kwollectinput.Name)
	}
	cfg, err := runPluginConfig(run, kf)
	if err != nil {
		return err
	}
	kc, ok := cfg.(*kwollectinput.Config)
	if !ok {
		return fmt.Errorf("%s: configuration of type %T", kwollectinput.Name, cfg)
	}
	if kc.Password == redactedSecret {
		kc.Password = ""
		log.Info("The run's password was not kept (config.toml has it redacted): the credentials come from password_file or netrc.")
	}
	if err := kc.Validate(); err != nil {
		return fmt.Errorf("%s: [plugins.%s]: %w", filepath.Join(run.Dir, rundir.ConfigName), kwollectinput.Name, err)
	}

	// The windows again, into a fresh directory inside the run's.
	tmp, err := os.MkdirTemp(run.Dir, ".refetch-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	rec, err := rundir.Create(tmp)
	if err != nil {
		return err
	}
	var events []pipeline.Event
	for _, r := range run.Manifest.Events {
		ev, err := r.Event()
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(run.Dir, rundir.ManifestName), err)
		}
		events = append(events, ev)
	}
	loaded := &config.Loaded{Path: filepath.Join(run.Dir, rundir.ConfigName), General: config.DefaultGeneral(),
		Enabled: []config.EnabledPlugin{{Spec: config.SpecOf(kf), Config: kc}}}
	log.Info(fmt.Sprintf("Refetching the %d window(s) of %s from %s", len(run.Manifest.Windows), run.Dir, kc.APIURL))
	a, err := agent.Start(cmd.Context(), plugin.ModeFetch, loaded, g.factories(), g.logger, rec.Hook)
	if err != nil {
		return err
	}
	ints := agent.NotifyInterrupts()
	code := a.FinalFetch(cmd.Context(), ints, log, "Refetching failed", false, events...)
	version, _ := versionInfo()
	info := rundir.AgentInfo{Name: "alumet-agent", Version: version, Commit: vcsRevision()}
	if err := rec.Finish(rundir.FinishInfo{Agent: info, Argv: os.Args, Mode: string(plugin.ModeFetch), AgentExitCode: code}); err != nil {
		return err
	}
	switch {
	case code == 3:
		log.Warn("The refetch is incomplete (see above): the rebuilt files say so in their outcomes.")
	case code != 0:
		return exitError{code}
	}
	fresh, err := rundir.Open(tmp)
	if err != nil {
		return err
	}
	if err := run.AdoptStream(fresh, info, reasons); err != nil {
		return err
	}
	rebuilt := map[string]string{rundir.StreamName: "raw stream: the points the sources gave, for replay (refetched)"}

	// The damaged files the outputs and energy-report wrote, by a replay
	// of the new stream through those plugins, each writing only them.
	byPlugin := map[string]map[string]string{} // plugin -> key -> file name
	var order []string
	runTable := false
	for _, p := range probs {
		f, _ := run.File(p.Name)
		if p.Name == rundir.RunTableName {
			runTable = true
			continue
		}
		plug, key, ok := strings.Cut(f.Role, " ")
		if _, known := g.factory(plug); !ok || !known || strings.Contains(key, " ") {
			continue // the log, the stream: not an output's file
		}
		if byPlugin[plug] == nil {
			byPlugin[plug] = map[string]string{}
			order = append(order, plug)
		}
		byPlugin[plug][key] = p.Name
	}
	var elements []rundir.Element
	for _, plug := range order {
		f, _ := g.factory(plug)
		cfg, err := runPluginConfig(run, f)
		if err != nil {
			return err
		}
		if fc, ok := cfg.(plugin.FilesConfig); ok {
			for _, fl := range fc.Files() {
				if err := setKey(cfg, fl.Key, ""); err != nil { // only the damaged files are written
					return err
				}
			}
		}
		for key, name := range byPlugin[plug] {
			if err := setKey(cfg, key, filepath.Join(run.Dir, filepath.FromSlash(name))); err != nil {
				return err
			}
			rebuilt[name] = plug + " " + key
			if plug == reportName && key == "summary_file" {
				runTable = true // from the new summary
			}
		}
		elements = append(elements, rundir.Element{Factory: f, Config: cfg})
	}
	if len(elements) > 0 {
		log.Info(fmt.Sprintf("Rebuilding %d file(s) from the refetched data", len(rebuilt)-1))
		if err := run.Replay(cmd.Context(), elements, g.logger, rundir.ReplayOptions{Unverified: true}); err != nil {
			return err
		}
	}
	if summary, ok := summaryFile(run); ok && runTable {
		if err := rundir.WriteRunTable(summary, filepath.Join(run.Dir, rundir.RunTableName)); err != nil {
			return err
		}
		rebuilt[rundir.RunTableName] = "run table: one row per run, phase, node and metric"
	}
	if err := run.Rehash(rebuilt); err != nil {
		return err
	}
	log.Info(fmt.Sprintf("%s repaired: %s records the refetch", run.Dir, rundir.ManifestName))
	return nil
}

// summaryFile is the path of the run's energy summary, if it has one.
func summaryFile(run *rundir.Run) (string, bool) {
	for _, f := range run.Manifest.Files {
		if f.Role == reportName+" summary_file" {
			p := filepath.Join(run.Dir, filepath.FromSlash(f.Name))
			if _, err := os.Stat(p); err == nil {
				return p, true
			}
		}
	}
	return "", false
}

var errNoRefetch = errors.New("--refetch repairs one RUN_DIR")
