package rapl

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/testkit"
	"github.com/alumet-go/alumet-agent/measure"
)

type zoneInfo struct {
	Dir, Name string
	Domain    string
	Socket    int
}

func TestPowercapZones(t *testing.T) {
	tests := []struct {
		name  string
		zones []fakeZone
		want  []zoneInfo
		err   string
	}{
		{
			name: "one socket, core, uncore, dram child, psys",
			zones: []fakeZone{
				{dir: "intel-rapl:0", name: "package-0"},
				{dir: "intel-rapl:0/intel-rapl:0:0", name: "core"},
				{dir: "intel-rapl:0/intel-rapl:0:1", name: "uncore"},
				{dir: "intel-rapl:0/intel-rapl:0:2", name: "dram"},
				{dir: "intel-rapl:1", name: "psys"},
			},
			want: []zoneInfo{
				{"intel-rapl:0", "package-0", "package", 0},
				{"intel-rapl:0/intel-rapl:0:0", "core", "pp0", 0},
				{"intel-rapl:0/intel-rapl:0:1", "uncore", "pp1", 0},
				{"intel-rapl:0/intel-rapl:0:2", "dram", "dram", 0},
				{"intel-rapl:1", "psys", "platform", 0},
			},
		},
		{
			name:  "two sockets: children inherit the socket",
			zones: twoSockets(),
			want: []zoneInfo{
				{"intel-rapl:0", "package-0", "package", 0},
				{"intel-rapl:0/intel-rapl:0:0", "core", "pp0", 0},
				{"intel-rapl:0/intel-rapl:0:1", "dram", "dram", 0},
				{"intel-rapl:1", "package-1", "package", 1},
				{"intel-rapl:1/intel-rapl:1:0", "core", "pp0", 1},
				{"intel-rapl:1/intel-rapl:1:1", "dram", "dram", 1},
			},
		},
		{
			// Alumet's mock layout: dram at the top level, on socket 0.
			name: "dram at top level",
			zones: []fakeZone{
				{dir: "intel-rapl:0", name: "package-0"},
				{dir: "intel-rapl:0/intel-rapl:0:0", name: "core"},
				{dir: "intel-rapl:0/intel-rapl:0:1", name: "uncore"},
				{dir: "intel-rapl:1", name: "psys"},
				{dir: "intel-rapl:2", name: "dram"},
			},
			want: []zoneInfo{
				{"intel-rapl:0", "package-0", "package", 0},
				{"intel-rapl:0/intel-rapl:0:0", "core", "pp0", 0},
				{"intel-rapl:0/intel-rapl:0:1", "uncore", "pp1", 0},
				{"intel-rapl:1", "psys", "platform", 0},
				{"intel-rapl:2", "dram", "dram", 0},
			},
		},
		{
			name:  "unknown name",
			zones: []fakeZone{{dir: "intel-rapl:0", name: "package-0"}, {dir: "intel-rapl:0/intel-rapl:0:0", name: "npu"}},
			err:   `intel-rapl:0/intel-rapl:0:0: unknown RAPL powercap zone "npu"`,
		},
		{
			name:  "bad package number",
			zones: []fakeZone{{dir: "intel-rapl:0", name: "package-A"}},
			err:   `powercap zone "package-A": cannot read the package number "A"`,
		},
		{name: "no zone", err: "no RAPL zone (intel-rapl:*) in "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := powercapTree(t, tt.zones...)
			fsys := newSysfs(root)
			zs, err := fsys.zones()
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			var got []zoneInfo
			for _, z := range zs {
				rel, err := filepath.Rel(fsys.powercapDir(), z.path)
				require.NoError(t, err)
				got = append(got, zoneInfo{rel, z.name, z.domain.String(), z.socket})
			}
			require.Empty(t, cmp.Diff(tt.want, got))
		})
	}
}

func TestPowercapMissingTree(t *testing.T) {
	_, err := newSysfs(t.TempDir()).zones()
	require.ErrorContains(t, err, "/devices/virtual/powercap/intel-rapl does not exist (no powercap RAPL driver")
}

func TestPowercapZoneWithoutName(t *testing.T) {
	root := powercapTree(t, fakeZone{dir: "intel-rapl:0", name: "package-0"})
	require.NoError(t, os.Remove(filepath.Join(root, "devices/virtual/powercap/intel-rapl/intel-rapl:0/name")))
	_, err := newSysfs(root).zones()
	require.ErrorContains(t, err, "intel-rapl:0/name: no such file or directory")
}

// Two sockets, a dram child each: one point per zone and poll, then the
// totals, in Alumet's order; the first poll gives nothing.
func TestPowercapPolls(t *testing.T) {
	root := powercapTree(t, twoSockets()...)
	src, reg := powercapSource(t, root)
	m, ok := reg.ByName("rapl_consumed_energy")
	require.True(t, ok)
	require.Equal(t, "J", m.Unit.DisplayName())
	require.Equal(t, measure.Delta, m.Semantics)
	require.Equal(t, measure.F64, m.Type)
	require.Empty(t, pollAt(t, src, 0), "the first poll only stores the counters")
	for i, dir := range []string{"intel-rapl:0", "intel-rapl:0/intel-rapl:0:0", "intel-rapl:0/intel-rapl:0:1",
		"intel-rapl:1", "intel-rapl:1/intel-rapl:1:0", "intel-rapl:1/intel-rapl:1:1"} {
		setEnergy(t, root, dir, uint64(i+1)*1_000_000+uint64(i+1)*500_000)
	}
	s := time.Second
	want := []point{
		{s, 0.5, "cpu_package/0", "package"}, {s, 1, "cpu_package/0", "pp0"}, {s, 1.5, "dram/0", "dram"},
		{s, 2, "cpu_package/1", "package"}, {s, 2.5, "cpu_package/1", "pp0"}, {s, 3, "dram/1", "dram"},
		{s, 2.5, "local_machine", "package_total"}, {s, 3.5, "local_machine", "pp0_total"}, {s, 4.5, "local_machine", "dram_total"},
	}
	require.Empty(t, cmp.Diff(want, pollAt(t, src, s), approx))
	// Nothing consumed: zeros, not nothing.
	got := pollAt(t, src, 2*s)
	require.Len(t, got, 9)
	for _, p := range got {
		require.Zero(t, p.J)
	}
}

// Alumet's wrap numbers through the source: prev 212143328850, new 908522,
// max 262143328850 → 50000.908523 J (over 20 s, 2.5 kW: plausible).
func TestPowercapWrap(t *testing.T) {
	root := powercapTree(t, fakeZone{dir: "intel-rapl:0", name: "package-0", energy: 212143328850})
	src, _ := powercapSource(t, root)
	require.Empty(t, pollAt(t, src, 0))
	setEnergy(t, root, "intel-rapl:0", 908522)
	want := []point{{20 * time.Second, 50000.908523, "cpu_package/0", "package"}, {20 * time.Second, 50000.908523, "local_machine", "package_total"}}
	require.Empty(t, cmp.Diff(want, pollAt(t, src, 20*time.Second), approx))
}

// A counter that goes back without a plausible wrap (a reset) gives no
// point for that interval, a warning, and the next interval from the new
// value; the other zones are not affected.
func TestPowercapReset(t *testing.T) {
	root := powercapTree(t,
		fakeZone{dir: "intel-rapl:0", name: "package-0", energy: 100_000_000_000},
		fakeZone{dir: "intel-rapl:0/intel-rapl:0:0", name: "dram", energy: 1_000_000})
	src, _ := powercapSource(t, root)
	var logs testkit.Logs
	src.log = logs.Logger()
	require.Empty(t, pollAt(t, src, 0))
	setEnergy(t, root, "intel-rapl:0", 3_000_000)
	setEnergy(t, root, "intel-rapl:0/intel-rapl:0:0", 2_000_000)
	s := time.Second
	require.Empty(t, cmp.Diff([]point{{s, 1, "dram/0", "dram"}, {s, 1, "local_machine", "dram_total"}}, pollAt(t, src, s), approx))
	require.Contains(t, logs.Text(""), "WARN RAPL powercap zone package-0 (")
	require.Contains(t, logs.Text(""), "): the counter went back from 100000000000 to 3000000: 162146 J in 1s would be 162146 W, above 5000 W, so it was reset rather than consumed; this interval is not counted")
	setEnergy(t, root, "intel-rapl:0", 13_000_000)
	setEnergy(t, root, "intel-rapl:0/intel-rapl:0:0", 2_000_000)
	want := []point{{2 * s, 10, "cpu_package/0", "package"}, {2 * s, 0, "dram/0", "dram"}, {2 * s, 10, "local_machine", "package_total"}, {2 * s, 0, "local_machine", "dram_total"}}
	require.Empty(t, cmp.Diff(want, pollAt(t, src, 2*s), approx))
}

// A zone that disappears mid-run (its file no longer reads a counter)
// stops with a warning; the totals leave it out; when every zone is gone
// the source says so.
func TestPowercapZoneDisappears(t *testing.T) {
	root := powercapTree(t, twoSockets()[:4]...)
	src, _ := powercapSource(t, root)
	var logs testkit.Logs
	src.log = logs.Logger()
	require.Empty(t, pollAt(t, src, 0))
	dir := filepath.Join(root, "devices/virtual/powercap/intel-rapl/intel-rapl:1")
	require.NoError(t, os.Truncate(filepath.Join(dir, "energy_uj"), 0))
	require.NoError(t, os.RemoveAll(dir))
	setEnergy(t, root, "intel-rapl:0", 2_000_000)
	s := time.Second
	want := []point{{s, 1, "cpu_package/0", "package"}, {s, 0, "cpu_package/0", "pp0"}, {s, 0, "dram/0", "dram"},
		{s, 1, "local_machine", "package_total"}, {s, 0, "local_machine", "pp0_total"}, {s, 0, "local_machine", "dram_total"}}
	require.Empty(t, cmp.Diff(want, pollAt(t, src, s), approx))
	require.Contains(t, logs.Text(""), "WARN RAPL powercap zone package-1 ("+dir+") cannot be read any more (")
	require.Contains(t, logs.Text(""), "its points stop here, and the package_total total leaves it out")
	require.Len(t, pollAt(t, src, 2*s), 6)

	for _, z := range []string{"intel-rapl:0", "intel-rapl:0/intel-rapl:0:0", "intel-rapl:0/intel-rapl:0:1"} {
		require.NoError(t, os.Truncate(filepath.Join(root, "devices/virtual/powercap/intel-rapl", z, "energy_uj"), 0))
	}
	require.ErrorIs(t, src.pollOnce(t0.Add(3*s)), ErrAllCountersLost)
}

func TestPowercapMissingEnergy(t *testing.T) {
	root := powercapTree(t, fakeZone{dir: "intel-rapl:0", name: "package-0"}, fakeZone{dir: "intel-rapl:0/intel-rapl:0:0", name: "dram", noEnergy: true})
	cfg := DefaultConfig()
	cfg.NoPerfEvents = true
	_, err := newSource(cfg, newSysfs(root), nil, discard())
	var ne *NeitherError
	require.ErrorAs(t, err, &ne)
	require.ErrorContains(t, err, "I can use neither perf_events nor powercap: impossible to measure RAPL counters.\n  perf_events: disabled by no_perf_events = true\n  powercap: powercap zone dram (")
	require.ErrorContains(t, err, "intel-rapl:0:0/energy_uj: no such file or directory")
}

func TestPowercapUnknownZoneIsAStartError(t *testing.T) {
	root := powercapTree(t, fakeZone{dir: "intel-rapl:0", name: "package-0"}, fakeZone{dir: "intel-rapl:1", name: "mystery"})
	cfg := DefaultConfig()
	cfg.NoPerfEvents = true
	_, err := newSource(cfg, newSysfs(root), nil, discard())
	require.ErrorContains(t, err, `powercap: `)
	require.ErrorContains(t, err, `intel-rapl:1: unknown RAPL powercap zone "mystery"`)
}

// Since Linux 5.10 energy_uj is root-only: the error says so and what to
// do on Grid'5000, never a bare EACCES. (Tests run as root here, whom
// chmod does not stop: the open is made to fail.)
func TestPowercapPermissionDenied(t *testing.T) {
	root := powercapTree(t, fakeZone{dir: "intel-rapl:0", name: "package-0"})
	fsys := newSysfs(root)
	fsys.open = func(name string) (*os.File, error) {
		if strings.HasSuffix(name, "energy_uj") {
			return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EACCES}
		}
		return os.Open(name)
	}
	cfg := DefaultConfig()
	cfg.NoPerfEvents = true
	_, err := newSource(cfg, fsys, nil, discard())
	require.Error(t, err)
	require.True(t, errors.Is(err, fs.ErrPermission))
	msg := err.Error()
	for _, s := range []string{
		"powercap: cannot read " + filepath.Join(fsys.powercapDir(), "intel-rapl:0", "energy_uj") + ": permission denied.",
		"Since Linux 5.10, the RAPL energy counters (energy_uj) are readable by root only (CVE-2020-8694)",
		"run the agent with sudo-g5k", "a deploy job", "sudo chmod a+r -R " + fsys.powercapDir(), "perf_event_paranoid",
	} {
		require.Contains(t, msg, s)
	}
}
