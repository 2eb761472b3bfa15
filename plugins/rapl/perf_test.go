package rapl

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/testkit"
	"github.com/alumet-go/alumet-agent/measure"
)

// perfScale is the power PMU's scale on Intel: 2^-32 J.
const perfScale = "2.3283064365386962890625e-10"

// addPerf writes a power PMU under root: type, cpumask and the events
// (name → code), each with its scale and unit.
func addPerf(t testing.TB, root, cpumask string, events map[string]int) {
	t.Helper()
	dir := filepath.Join(root, "devices", "power")
	writeFile(t, filepath.Join(dir, "type"), "24\n")
	writeFile(t, filepath.Join(dir, "cpumask"), cpumask+"\n")
	for name, code := range events {
		base := filepath.Join(dir, "events", "energy-"+name)
		writeFile(t, base, fmt.Sprintf("event=0x%02x\n", code))
		writeFile(t, base+".scale", perfScale+"\n")
		writeFile(t, base+".unit", "Joules\n")
	}
}

// fakePerf opens pipes instead of perf events: the test writes 8-byte
// native-endian counters into the write end of (config, cpu).
type fakePerf struct {
	mu      sync.Mutex
	writers map[string]*os.File
	opened  []string
	fail    error
}

func (p *fakePerf) open(t testing.TB) func(uint32, uint64, int) (*os.File, error) {
	return func(pmu uint32, config uint64, cpu int) (*os.File, error) {
		if pmu != 24 {
			return nil, fmt.Errorf("pmu type %d", pmu)
		}
		if p.fail != nil {
			return nil, p.fail
		}
		r, w, err := os.Pipe()
		require.NoError(t, err)
		t.Cleanup(func() { w.Close() })
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.writers == nil {
			p.writers = map[string]*os.File{}
		}
		k := fmt.Sprintf("%d/%d", config, cpu)
		p.writers[k] = w
		p.opened = append(p.opened, k)
		return r, nil
	}
}

func (p *fakePerf) set(t testing.TB, config uint64, cpu int, v uint64) {
	t.Helper()
	p.mu.Lock()
	w := p.writers[fmt.Sprintf("%d/%d", config, cpu)]
	p.mu.Unlock()
	require.NotNil(t, w)
	var b [8]byte
	binary.NativeEndian.PutUint64(b[:], v)
	_, err := w.Write(b[:])
	require.NoError(t, err)
}

func perfSysfs(t testing.TB, root string, p *fakePerf) *sysfs {
	fsys := newSysfs(root)
	fsys.perfOpen = p.open(t)
	fsys.paranoid = func() string { return "2" }
	return fsys
}

// Two sockets (cpumask 0,8), pkg and ram: one fd per event and socket,
// counters in units of 2^-32 J, wrapping at 2^64.
func TestPerfPolls(t *testing.T) {
	root := powercapTree(t, twoSockets()...)
	addPerf(t, root, "0,8", map[string]int{"pkg": 2, "ram": 3, "cores": 1})
	var p fakePerf
	var logs testkit.Logs
	src, err := newSource(DefaultConfig(), perfSysfs(t, root, &p), measure.NewRegistry(), logs.Logger())
	require.NoError(t, err)
	t.Cleanup(func() { closeAll(src.chans) })
	require.Equal(t, "perf_events", src.iface)
	require.Equal(t, []string{"2/0", "2/8", "1/0", "1/8", "3/0", "3/8"}, p.opened, "by domain, then socket")
	require.Equal(t, []string{"INFO Available RAPL domains: package, pp0, dram", "DEBUG reading 6 RAPL counters through perf_events every 1s"}, logs.Lines())

	j := uint64(1) << 32 // 1 J
	start := map[[2]int]uint64{{2, 0}: 10 * j, {2, 8}: math.MaxUint64 - j + 1, {1, 0}: 0, {1, 8}: 0, {3, 0}: 5 * j, {3, 8}: 7 * j}
	for k, v := range start {
		p.set(t, uint64(k[0]), k[1], v)
	}
	require.Empty(t, pollAt(t, src, 0))
	for k, v := range start {
		add := uint64(k[0]) * j / 2
		p.set(t, uint64(k[0]), k[1], v+add) // the socket-1 package counter wraps at 2^64
	}
	s := time.Second
	want := []point{
		{s, 1, "cpu_package/0", "package"}, {s, 1, "cpu_package/1", "package"},
		{s, 0.5, "cpu_package/0", "pp0"}, {s, 0.5, "cpu_package/1", "pp0"},
		{s, 1.5, "dram/0", "dram"}, {s, 1.5, "dram/1", "dram"},
		{s, 2, "local_machine", "package_total"}, {s, 1, "local_machine", "pp0_total"}, {s, 3, "local_machine", "dram_total"},
	}
	require.Empty(t, cmp.Diff(want, pollAt(t, src, s), approx))
}

// perf_events cannot be opened (paranoid 2, no CAP_PERFMON): Alumet's
// fallback to powercap, with the reason.
func TestPerfFallsBackToPowercap(t *testing.T) {
	root := powercapTree(t, twoSockets()...)
	addPerf(t, root, "0,8", map[string]int{"pkg": 2, "ram": 3, "cores": 1})
	p := fakePerf{fail: os.NewSyscallError("perf_event_open", syscall.EACCES)}
	var logs testkit.Logs
	src, err := newSource(DefaultConfig(), perfSysfs(t, root, &p), measure.NewRegistry(), logs.Logger())
	require.NoError(t, err)
	t.Cleanup(func() { closeAll(src.chans) })
	require.Equal(t, "powercap", src.iface)
	require.Len(t, src.chans, 6)
	text := logs.Text("WARN")
	require.Contains(t, text, "WARN I could not use perf_events to read RAPL energy counters: perf_event_open(power/energy-pkg/, cpu 0): perf_event_open: permission denied (kernel.perf_event_paranoid = 2): reading RAPL through perf_events needs CAP_PERFMON")
	require.Contains(t, text, "WARN I will fall back to the powercap sysfs")
}

// Neither works: one error with both reasons, the permission hints of each.
func TestPerfAndPowercapDenied(t *testing.T) {
	root := powercapTree(t, fakeZone{dir: "intel-rapl:0", name: "package-0"})
	addPerf(t, root, "0", map[string]int{"pkg": 2})
	p := fakePerf{fail: os.NewSyscallError("perf_event_open", syscall.EACCES)}
	fsys := perfSysfs(t, root, &p)
	fsys.open = func(name string) (*os.File, error) {
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.EACCES}
	}
	_, err := newSource(DefaultConfig(), fsys, measure.NewRegistry(), discard())
	require.ErrorContains(t, err, "I can use neither perf_events nor powercap: impossible to measure RAPL counters.\n"+
		"  perf_events: perf_event_open(power/energy-pkg/, cpu 0): perf_event_open: permission denied (kernel.perf_event_paranoid = 2): ")
	require.ErrorContains(t, err, "sudo sysctl -w kernel.perf_event_paranoid=-1")
	require.ErrorContains(t, err, "sudo setcap cap_perfmon=ep")
	require.ErrorContains(t, err, "\n  powercap: cannot read "+filepath.Join(fsys.powercapDir(), "intel-rapl:0", "energy_uj")+": permission denied. Since Linux 5.10")
}

func TestPerfEventsListing(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		err   string
	}{
		{"unknown event", map[string]string{"energy-foo": "event=0x09"}, "unknown RAPL perf event energy-foo"},
		{"bad code", map[string]string{"energy-pkg": "umask=0x02", "energy-pkg.scale": perfScale, "energy-pkg.unit": "Joules"}, `energy-pkg: want event=0xNN, got "umask=0x02"`},
		{"no scale", map[string]string{"energy-pkg": "event=0x02", "energy-pkg.unit": "Joules"}, "energy-pkg.scale: no such file"},
		{"bad unit", map[string]string{"energy-pkg": "event=0x02", "energy-pkg.scale": perfScale, "energy-pkg.unit": "Watts"}, `energy-pkg.unit: want Joules, got "Watts"`},
		{"no event", map[string]string{"cycles": "event=0x3c"}, "no RAPL event (energy-*) in "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for f, c := range tt.files {
				writeFile(t, filepath.Join(root, "devices/power/events", f), c)
			}
			_, err := newSysfs(root).perfEvents()
			require.ErrorContains(t, err, tt.err)
		})
	}
	_, err := newSysfs(t.TempDir()).perfEvents()
	require.ErrorContains(t, err, "/devices/power does not exist: the Intel RAPL PMU module may not be enabled")
}
