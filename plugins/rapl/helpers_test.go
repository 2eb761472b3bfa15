package rapl

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/testkit"
	"github.com/alumet-go/alumet-agent/measure"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// checkGolden compares got with testdata/<name>, or rewrites it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	testkit.Golden(t, name, got, *update)
}

// Alumet's max_energy_range_uj in its tests (and Kepler's).
const alumetMax = 262143328850

// fakeZone is a zone of a fake powercap tree: its directory under
// intel-rapl ("intel-rapl:0", "intel-rapl:0/intel-rapl:0:0"), its name and
// counter. noEnergy leaves energy_uj out.
type fakeZone struct {
	dir, name string
	energy    uint64
	noEnergy  bool
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

// powercapTree writes a sysfs root holding the zones (and no perf PMU).
func powercapTree(t testing.TB, zones ...fakeZone) string {
	t.Helper()
	root := t.TempDir()
	base := filepath.Join(root, "devices", "virtual", "powercap", "intel-rapl")
	writeFile(t, filepath.Join(base, "enabled"), "1\n")
	for _, z := range zones {
		dir := filepath.Join(base, z.dir)
		writeFile(t, filepath.Join(dir, "name"), z.name+"\n")
		writeFile(t, filepath.Join(dir, "max_energy_range_uj"), fmt.Sprintf("%d\n", alumetMax))
		if !z.noEnergy {
			setEnergy(t, root, z.dir, z.energy)
		}
	}
	return root
}

// setEnergy rewrites a zone's energy_uj in place, zero-padded to a fixed
// width and without truncating, so that a reader never sees an empty file.
func setEnergy(t testing.TB, root, dir string, v uint64) {
	t.Helper()
	path := filepath.Join(root, "devices", "virtual", "powercap", "intel-rapl", dir, "energy_uj")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte(fmt.Sprintf("%020d\n", v)), 0)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// twoSockets is a bi-socket server: package, core and dram per socket.
func twoSockets() []fakeZone {
	return []fakeZone{
		{dir: "intel-rapl:0", name: "package-0", energy: 1_000_000},
		{dir: "intel-rapl:0/intel-rapl:0:0", name: "core", energy: 2_000_000},
		{dir: "intel-rapl:0/intel-rapl:0:1", name: "dram", energy: 3_000_000},
		{dir: "intel-rapl:1", name: "package-1", energy: 4_000_000},
		{dir: "intel-rapl:1/intel-rapl:1:0", name: "core", energy: 5_000_000},
		{dir: "intel-rapl:1/intel-rapl:1:1", name: "dram", energy: 6_000_000},
	}
}

var t0 = time.Date(2026, 12, 2, 20, 0, 0, 0, time.UTC)

// point is a rapl point, for comparisons.
type point struct {
	At       time.Duration // since t0
	J        float64
	Resource string
	Domain   string
}

func pointsOf(ps []measure.Point) []point {
	var out []point
	for _, p := range ps {
		r := p.Resource.Kind
		if p.Resource.ID != "" {
			r += "/" + p.Resource.ID
		}
		d := ""
		for _, a := range p.Attributes {
			if a.Key == "domain" {
				d = a.Value.Str
			}
		}
		out = append(out, point{At: p.Timestamp.Sub(t0), J: p.Value.Float64(), Resource: r, Domain: d})
	}
	return out
}

// approx compares joules to the µJ.
var approx = cmp.Comparer(func(a, b float64) bool { d := a - b; return d < 1e-7 && d > -1e-7 })

// powercapSource opens a source on root, powercap only.
func powercapSource(t testing.TB, root string) (*Source, *measure.Registry) {
	t.Helper()
	reg := measure.NewRegistry()
	cfg := DefaultConfig()
	cfg.NoPerfEvents = true
	src, err := newSource(cfg, newSysfs(root), reg, discard())
	require.NoError(t, err)
	t.Cleanup(func() { closeAll(src.chans) })
	return src, reg
}

// pollAt polls at t0+at and returns the points of that poll.
func pollAt(t testing.TB, s *Source, at time.Duration) []point {
	t.Helper()
	require.NoError(t, s.pollOnce(t0.Add(at)))
	b := s.take()
	if b == nil {
		return nil
	}
	return pointsOf(b.Points)
}
