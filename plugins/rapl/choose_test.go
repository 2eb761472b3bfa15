package rapl

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/testkit"
)

func TestChoose(t *testing.T) {
	pkg0 := zone{path: "z0", name: "package-0", domain: domainPackage}
	dram0 := zone{path: "z0/z1", name: "dram", domain: domainDRAM, socket: 0}
	psys := zone{path: "z2", name: "psys", domain: domainPlatform}
	evPkg := perfEvent{name: "pkg", domain: domainPackage}
	evRAM := perfEvent{name: "ram", domain: domainDRAM}
	missing := errors.New("/sys/devices/power does not exist")
	denied := errors.New("powercap denied")
	tests := []struct {
		name                 string
		d                    discovery
		noPerf               bool
		usePerf, usePowercap bool
		domains              string
		origin               string
		perf, zones          int
		logs                 []string
		err                  string
	}{
		{
			name: "both agree", d: discovery{perf: []perfEvent{evPkg, evRAM}, zones: []zone{pkg0, dram0}},
			usePerf: true, usePowercap: true, domains: "package, dram", perf: 2, zones: 2,
		},
		{
			name: "perf missing: powercap", d: discovery{perfDirMissing: true, perfErr: missing, zones: []zone{pkg0, dram0, psys}},
			usePowercap: true, domains: "package, dram, platform", origin: " (from powercap)", zones: 3,
			logs: []string{"ERROR /sys/devices/power does not exist", "WARN Because of the previous error, I will disable perf_events and fall back to powercap."},
		},
		{
			name: "perf missing, no_perf_events", noPerf: true, d: discovery{perfDirMissing: true, perfErr: missing, zones: []zone{pkg0}},
			usePowercap: true, domains: "package", origin: " (from powercap)", zones: 1,
		},
		{
			name: "domains differ: the intersection", d: discovery{perf: []perfEvent{evPkg, evRAM}, zones: []zone{pkg0, psys}},
			usePerf: true, usePowercap: true, domains: "package", origin: ` ("safe subset")`, perf: 1, zones: 1,
			logs: []string{
				"WARN Powercap and perf_events don't report the same RAPL domains. This may be caused by a bug in powercap or in perf_events. " +
					"Upgrading to a newer kernel could fix the problem. On AMD CPUs, only package (and sometimes core) is supported, and old kernels (before 5.17) list events that do not work.",
				"WARN Perf_events: package, dram",
				"WARN Powercap:    package, platform",
			},
		},
		{
			name: "domains differ, no_perf_events: still the intersection", noPerf: true, d: discovery{perf: []perfEvent{evPkg}, zones: []zone{pkg0, dram0}},
			usePowercap: true, domains: "package", origin: ` ("safe subset")`, perf: 1, zones: 1,
			logs: []string{"WARN", "WARN Perf_events: package", "WARN Powercap:    package, dram"},
		},
		{
			name: "perf listing fails: powercap", d: discovery{perfErr: errors.New("bad event"), zones: []zone{pkg0}},
			usePowercap: true, domains: "package", origin: " (from powercap)", zones: 1,
			logs: []string{"WARN Cannot read the list of RAPL domains available via the perf_events interface: bad event.", "WARN", "WARN Because of the previous error, I will disable perf_events and fall back to powercap."},
		},
		{
			name: "powercap fails: perf", d: discovery{perf: []perfEvent{evPkg}, zonesErr: denied},
			usePerf: true, domains: "package", origin: " (from perf_events)", perf: 1,
			logs: []string{"ERROR Cannot read the list of RAPL domains available via the powercap interface: powercap denied.", "WARN"},
		},
		{
			name: "powercap fails, no_perf_events", noPerf: true, d: discovery{perf: []perfEvent{evPkg}, zonesErr: denied},
			logs: []string{"ERROR", "WARN"},
			err:  "I can use neither perf_events nor powercap: impossible to measure RAPL counters.\n  perf_events: disabled by no_perf_events = true\n  powercap: powercap denied",
		},
		{
			name: "both fail", d: discovery{perfDirMissing: true, perfErr: missing, zonesErr: denied},
			logs: []string{"ERROR", "WARN"},
			err:  "I can use neither perf_events nor powercap: impossible to measure RAPL counters.\n  perf_events: /sys/devices/power does not exist\n  powercap: powercap denied",
		},
		{
			name: "no common domain", d: discovery{perf: []perfEvent{evRAM}, zones: []zone{pkg0}},
			logs: []string{"WARN", "WARN", "WARN"},
			err:  "I can use neither perf_events nor powercap: they agree on no RAPL domain (perf_events: dram; powercap: package)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs testkit.Logs
			p, err := choose(tt.d, tt.noPerf, logs.Logger())
			lines := logs.Lines()
			require.Len(t, lines, len(tt.logs), "%q", lines)
			for i, l := range tt.logs {
				require.Contains(t, lines[i], l)
			}
			if tt.err != "" {
				require.EqualError(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.usePerf, p.usePerf, "usePerf")
			require.Equal(t, tt.usePowercap, p.usePowercap, "usePowercap")
			require.Equal(t, tt.domains, p.domains.String())
			require.Equal(t, tt.origin, p.origin)
			require.Len(t, p.perf, tt.perf)
			require.Len(t, p.zones, tt.zones)
		})
	}
}
