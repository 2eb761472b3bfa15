package cli

import (
	"cmp"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/alumet-go/alumet-agent/agent"
	"github.com/alumet-go/alumet-agent/config"
	"github.com/alumet-go/alumet-agent/plugin"
	"github.com/alumet-go/alumet-agent/plugins/csv"
)

// argv0 is how the agent was invoked (tests replace it).
var argv0 = func() string { return os.Args[0] }

// resumeFiles are the files a fetch would write with the loaded
// configuration: the CSV (Alumet's --output-file is csv's), and the files
// of plugins of their own (plugin.FilesConfig).
type resumeFiles struct {
	csv string
	own []ownFile
}

// ownFile is a file of a plugin's own: its section and key, and its path.
type ownFile struct {
	plugin, key, path string
}

func filesOf(loaded *config.Loaded) resumeFiles {
	var f resumeFiles
	for _, ep := range loaded.Enabled {
		if c, ok := ep.Config.(*csv.Config); ok {
			f.csv = c.OutputPath
		}
		if fc, ok := ep.Config.(plugin.FilesConfig); ok {
			for _, file := range fc.Files() {
				if file.Path != "" {
					f.own = append(f.own, ownFile{plugin: ep.Spec.Name, key: file.Key, path: file.Path})
				}
			}
		}
	}
	return f
}

// resumeCommand returns how to fetch a window later with the flags this
// agent was given: the same binary and configuration file (absolute, so
// that the command works from any directory), plugins and overrides, and
// files of their own next to the first ones (<name>-refetch, -refetch-runN
// with exec --repeat), so that nothing written now is overwritten.
func (g *globals) resumeCommand(configPath string, files resumeFiles) agent.ResumeFunc {
	bin := "alumet-agent"
	if a0 := argv0(); strings.Contains(a0, "/") {
		if abs, err := filepath.Abs(a0); err == nil {
			bin = abs // not on $PATH, e.g. ./bin/alumet-agent
		}
	}
	if configPath != "" {
		if abs, err := filepath.Abs(configPath); err == nil {
			configPath = abs
		}
	}
	return func(run int, from, to time.Time) string {
		suffix := "-refetch"
		if run > 0 {
			suffix += "-run" + strconv.Itoa(run)
		}
		args := []string{bin}
		if configPath != "" {
			args = append(args, "--config", configPath)
		}
		if len(g.plugins) > 0 {
			args = append(args, "--plugins", strings.Join(g.plugins, ","))
		}
		for _, o := range g.overrides {
			args = append(args, "--config-override", o)
		}
		for _, f := range files.own {
			args = append(args, "--config-override", "plugins."+f.plugin+"."+f.key+" = "+strconv.Quote(renamed(f.path, suffix)))
		}
		// --output-file would enable csv: only when it is enabled.
		if out := cmp.Or(g.outputFile, files.csv); out != "" {
			args = append(args, "--output-file", renamed(out, suffix))
		}
		args = append(args, "fetch", "--from", agent.EpochArg(from), "--to", agent.EpochArg(to))
		for i, a := range args {
			args[i] = shellQuote(a)
		}
		return strings.Join(args, " ")
	}
}

// renamed is path with suffix before its extension, made absolute: the
// new file is next to the first one, from wherever the command is run.
func renamed(path, suffix string) string {
	ext := filepath.Ext(path)
	path = strings.TrimSuffix(path, ext) + suffix + ext
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=,+-@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
