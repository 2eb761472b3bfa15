package config

// AlumetOnlyPlugins are names of plugins that Alumet (alumet-dev/alumet, agent
// 0.9.x and its plugins/ directory) has and this agent may lack. A section
// for one of them is not a typo: it is an error only when the plugin would be
// enabled ("plugin 'rapl' is not implemented by this agent"), and a WARN
// otherwise. Names that the binary registers are never treated as
// Alumet-only, so this list may safely contain plugins the agent implements.
//
// The list was written from memory of Alumet's agent registration list and
// plugin READMEs, including older names (cgroupv1/cgroupv2, nvidia) and
// spelling variants, since an extra name only changes an error message.
var AlumetOnlyPlugins = []string{
	"aggregation",
	"amd-gpu",
	"amdgpu",
	"cgroups",
	"cgroupv1",
	"cgroupv2",
	"elasticsearch",
	"energy-attribution",
	"energy-estimation-tdp",
	"energy-to-carbon",
	"filter",
	"grace-hopper",
	"influxdb",
	"jetson",
	"k8s",
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
