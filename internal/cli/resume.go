package cli

import (
	"path/filepath"
	"strings"
	"time"

	"github.com/alumet-go/alumet-agent/agent"
)

// resumeCommand returns how to fetch [from, to] later with the flags this
// agent was given: the same configuration file (absolute, so the command
// works from any directory), plugins and overrides, and a CSV of its own
// next to the first one, so that the file written now is not overwritten.
func (g *globals) resumeCommand(configPath string) agent.ResumeFunc {
	return func(from, to time.Time) string {
		args := []string{"alumet-agent"}
		if configPath != "" {
			if abs, err := filepath.Abs(configPath); err == nil {
				configPath = abs
			}
			args = append(args, "--config", configPath)
		}
		if len(g.plugins) > 0 {
			args = append(args, "--plugins", strings.Join(g.plugins, ","))
		}
		for _, o := range g.overrides {
			args = append(args, "--config-override", o)
		}
		out := g.outputFile
		if out == "" {
			out = "alumet-output.csv"
		}
		ext := filepath.Ext(out)
		out = strings.TrimSuffix(out, ext) + "-refetch" + ext
		if abs, err := filepath.Abs(out); err == nil {
			out = abs // next to the first one, from wherever it is run
		}
		args = append(args, "--output-file", out)
		args = append(args, "fetch", "--from", agent.EpochArg(from), "--to", agent.EpochArg(to))
		for i, a := range args {
			args[i] = shellQuote(a)
		}
		return strings.Join(args, " ")
	}
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=,+-@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
