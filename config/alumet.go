package config

import (
	"fmt"
	"strings"
)

// AlumetOnlyPlugins are names of plugins that Alumet has and this agent may
// lack. A section for one of them is not a typo: it is an error only when the
// plugin would be enabled ("plugin 'rapl' is not implemented by this agent"),
// and a WARN otherwise; in --plugins it gets Alumet's "not available in this
// binary" ERROR line and the agent goes on. Names that the binary registers
// are never treated as Alumet-only, so this list may safely contain plugins
// the agent implements.
//
// The list holds every name registered by alumet-dev/alumet's agent
// (agent/src/bin/main.rs and the plugins' name() at commit afb0aa1, August
// 2026), plus older names and spelling variants (cgroupv1/cgroupv2, nvidia,
// amdgpu, raw-cgroups…): an extra name only turns what would be a usage
// error into an ERROR line, a missing one rejects a valid Alumet command line.
var AlumetOnlyPlugins = []string{
	"aggregation",
	"amd-gpu",
	"amdgpu",
	"cgroups",
	"cgroupv1",
	"cgroupv2",
	"csv",
	"elasticsearch",
	"energy-attribution",
	"energy-estimation-tdp",
	"energy-to-carbon",
	"filter",
	"grace-hopper",
	"influxdb",
	"jetson",
	"k8s",
	"kwollect-input",
	"kwollect-output",
	"lm-sensors",
	"mongodb",
	"nvidia",
	"nvml",
	"oar",
	"oar2",
	"opentelemetry",
	"perf",
	"process-to-cgroup-bridge",
	"procfs",
	"prometheus-exporter",
	"quarch",
	"rapl",
	"raw-cgroups",
	"relay-client",
	"relay-server",
	"sgx",
	"slurm",
	"socket-control",
	"tui",
}

func isAlumetOnly(name string) bool {
	for _, n := range AlumetOnlyPlugins {
		if n == name {
			return true
		}
	}
	return false
}

// UnknownPlugin is a --plugins entry that names neither a plugin of this
// binary nor one of Alumet's.
type UnknownPlugin struct {
	Name string
	// Suggestions are the nearby names: this binary's plugins, or, when none
	// is near, Alumet's.
	Suggestions []string
	// AlumetSuggestions is set when Suggestions are Alumet plugins that this
	// binary lacks.
	AlumetSuggestions bool
}

// UnknownPluginsError lists the unknown entries of a --plugins list, in
// flag order. Its text is one line, e.g.
//
//	unknown plugin "kwolect-input" (did you mean kwollect-input?)
type UnknownPluginsError struct {
	Unknown []UnknownPlugin
	// Available are the plugins of this binary, for the message when no
	// name is near.
	Available []string
}

func (e *UnknownPluginsError) Error() string {
	parts := make([]string, len(e.Unknown))
	for i, u := range e.Unknown {
		switch {
		case len(u.Suggestions) > 0 && u.AlumetSuggestions:
			parts[i] = fmt.Sprintf("unknown plugin %q (did you mean %s? Alumet has it, this agent does not)", u.Name, plainOrList(u.Suggestions))
		case len(u.Suggestions) > 0:
			parts[i] = fmt.Sprintf("unknown plugin %q (did you mean %s?)", u.Name, plainOrList(u.Suggestions))
		default:
			parts[i] = fmt.Sprintf("unknown plugin %q (the plugins of this agent: %s; see alumet-agent plugins list)", u.Name, strings.Join(e.Available, ", "))
		}
	}
	return strings.Join(parts, "; ")
}

// CheckPluginNames returns an *UnknownPluginsError for the names (a split
// --plugins list) that are neither plugins of specs nor Alumet plugins, and
// nil if there are none. An Alumet plugin this binary lacks is not an error
// here: it keeps Alumet's behaviour (an ERROR line, and the agent goes on).
func CheckPluginNames(names []string, specs []PluginSpec) error {
	idx := specIndex(specs)
	ours := specNames(specs)
	var alumet []string
	for _, n := range AlumetOnlyPlugins {
		if _, registered := idx[n]; !registered {
			alumet = append(alumet, n)
		}
	}
	var unknown []UnknownPlugin
	for _, n := range names {
		if _, registered := idx[n]; registered || isAlumetOnly(n) {
			continue
		}
		u := UnknownPlugin{Name: n, Suggestions: nearPlugins(n, ours)}
		if len(u.Suggestions) == 0 {
			u.Suggestions, u.AlumetSuggestions = nearPlugins(n, alumet), true
		}
		u.AlumetSuggestions = u.AlumetSuggestions && len(u.Suggestions) > 0
		unknown = append(unknown, u)
	}
	if len(unknown) == 0 {
		return nil
	}
	return &UnknownPluginsError{Unknown: unknown, Available: ours}
}

// nearPlugins returns the candidates that differ from name only in case
// ("CSV"), else those suggest finds.
func nearPlugins(name string, candidates []string) []string {
	var folded []string
	for _, c := range candidates {
		if strings.EqualFold(c, name) {
			folded = append(folded, c)
		}
	}
	if len(folded) > 0 {
		return folded
	}
	return suggest(name, candidates)
}

// plainOrList writes "a", "a or b", "a, b or c" (no quotes, for names that
// are typed as they are on the command line).
func plainOrList(items []string) string {
	if len(items) <= 1 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}
