package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/testkit"
)

// raplMax is max_energy_range_uj in the fake trees (Alumet's and Kepler's).
const raplMax = 262143328850

// raplZones is a fake bi-socket powercap tree: a package, core and dram
// per socket, and psys. Values in µJ.
var raplZones = []struct{ dir, name string }{
	{"intel-rapl:0", "package-0"},
	{"intel-rapl:0/intel-rapl:0:0", "core"},
	{"intel-rapl:0/intel-rapl:0:1", "dram"},
	{"intel-rapl:1", "package-1"},
	{"intel-rapl:1/intel-rapl:1:0", "core"},
	{"intel-rapl:1/intel-rapl:1:1", "dram"},
	{"intel-rapl:2", "psys"},
}

// raplSeries is the resource and domain of each zone, then the totals.
var raplSeries = []string{
	"cpu_package/0 package", "cpu_package/0 pp0", "dram/0 dram",
	"cpu_package/1 package", "cpu_package/1 pp0", "dram/1 dram",
	"local_machine/ platform",
	"local_machine/ package_total", "local_machine/ pp0_total", "local_machine/ dram_total", "local_machine/ platform_total",
}

func raplZoneDir(root, dir string) string {
	return filepath.Join(root, "devices", "virtual", "powercap", "intel-rapl", dir)
}

// raplTree writes the tree with the counters given (one per zone).
func raplTree(t *testing.T, energy []uint64) string {
	t.Helper()
	root := t.TempDir()
	for i, z := range raplZones {
		dir := raplZoneDir(root, z.dir)
		require.NoError(t, os.MkdirAll(dir, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "name"), []byte(z.name+"\n"), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "max_energy_range_uj"), []byte(fmt.Sprintf("%d\n", raplMax)), 0o644))
		raplSet(t, root, i, energy[i])
	}
	return root
}

// raplSet rewrites a counter in place (fixed width, never truncated, so
// the agent never reads an empty file).
func raplSet(t *testing.T, root string, zone int, v uint64) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(raplZoneDir(root, raplZones[zone].dir), "energy_uj"), os.O_WRONLY|os.O_CREATE, 0o644)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte(fmt.Sprintf("%020d\n", v)), 0)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func raplConfig(root string) string {
	return fmt.Sprintf(`[plugins.csv]
output_path = "out.csv"

[plugins.rapl]
poll_interval = "100ms"
flush_interval = "300ms"
no_perf_events = true
sysfs_root = %q
`, root)
}

type raplRow struct {
	at     time.Time
	j      float64
	series string
}

// raplRows reads the CSV: every row a rapl row with Alumet's columns.
func raplRows(t *testing.T, path string) []raplRow {
	t.Helper()
	lines := readLines(t, path)
	require.Equal(t, "metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;domain;__late_attributes", lines[0])
	var rows []raplRow
	for _, l := range lines[1:] {
		c := strings.Split(l, ";")
		require.Len(t, c, 9, l)
		require.Equal(t, "rapl_consumed_energy_J", c[0], l)
		require.Equal(t, []string{"local_machine", ""}, c[5:7], l)
		at, err := time.Parse(time.RFC3339Nano, c[1])
		require.NoError(t, err, l)
		j, err := strconv.ParseFloat(c[2], 64)
		require.NoError(t, err, l)
		require.GreaterOrEqual(t, j, 0.0, "never a negative energy: %s", l)
		require.Less(t, j, 100.0, "never a huge jump: %s", l)
		rows = append(rows, raplRow{at, j, c[3] + "/" + c[4] + " " + c[7]})
	}
	return rows
}

// checkRaplRows: polls of the series in Alumet's order (all 11 when
// whole), one timestamp each, totals that are the sums of their sockets,
// and per series the energy written into the counters (the last poll comes
// at the stop, after the last write).
func checkRaplRows(t *testing.T, rows []raplRow, want []float64, whole bool) {
	t.Helper()
	require.NotEmpty(t, rows)
	sums := map[string]float64{}
	for i := 0; i < len(rows); {
		n := 0
		for i+n < len(rows) && rows[i+n].at.Equal(rows[i].at) {
			n++
		}
		poll := rows[i : i+n]
		if i > 0 {
			require.True(t, poll[0].at.After(rows[i-1].at), "increasing timestamps")
		}
		if whole {
			require.Len(t, poll, len(raplSeries))
		}
		last := -1
		perDomain, totals := map[string]float64{}, map[string]float64{}
		for _, r := range poll {
			k := slices.Index(raplSeries, r.series)
			require.Greater(t, k, last, "series %q in Alumet's order", r.series)
			last = k
			sums[r.series] += r.j
			d := r.series[strings.IndexByte(r.series, ' ')+1:]
			if name, ok := strings.CutSuffix(d, "_total"); ok {
				totals[name] = r.j
			} else {
				perDomain[d] += r.j
			}
		}
		require.Equal(t, len(perDomain), len(totals), "one total per domain present")
		for d, v := range perDomain {
			require.InDelta(t, v, totals[d], 1e-9, "%s_total", d)
		}
		i += n
	}
	for k, w := range want {
		require.InDelta(t, w, sums[raplSeries[k]], 1e-6, raplSeries[k])
	}
	require.InDelta(t, want[0]+want[3], sums["local_machine/ package_total"], 1e-6)
	require.InDelta(t, want[1]+want[4], sums["local_machine/ pp0_total"], 1e-6)
	require.InDelta(t, want[2]+want[5], sums["local_machine/ dram_total"], 1e-6)
	require.InDelta(t, want[6], sums["local_machine/ platform_total"], 1e-6)
}

// TestRaplExec: `--plugins csv,rapl exec` on a fake powercap tree, the
// measured command itself rewriting the counters (in place, with sh's <>).
func TestRaplExec(t *testing.T) {
	t.Parallel()
	start := []uint64{1_000_000, 2_000_000, 3_000_000, 4_000_000, 5_000_000, 6_000_000, 7_000_000}
	root := raplTree(t, start)
	dir := t.TempDir()
	writeConfig(t, dir, raplConfig(root))
	var script strings.Builder
	script.WriteString("sleep 0.4\n")
	final := slices.Clone(start)
	for step := 1; step <= 3; step++ {
		for i := range raplZones {
			final[i] += uint64(i+1) * 250_000 * uint64(step)
			fmt.Fprintf(&script, "printf '%%020d\\n' %d 1<> %s\n", final[i], filepath.Join(raplZoneDir(root, raplZones[i].dir), "energy_uj"))
		}
		script.WriteString("sleep 0.35\n")
	}
	res := runAgent(t, dir, nil, "--plugins", "csv,rapl", "exec", "--", "sh", "-c", script.String())
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stderr, "Available RAPL domains (from powercap): package, pp0, dram, platform")
	require.NotContains(t, res.stderr, "WARN  plugin_rapl", "no reset, no zone lost")
	want := make([]float64, len(raplZones))
	for i := range want {
		want[i] = float64(final[i]-start[i]) * 1e-6
	}
	checkRaplRows(t, raplRows(t, filepath.Join(dir, "out.csv")), want, true)
}

// TestRaplRunWrapAndReset: run mode until SIGTERM, the test rewriting the
// counters: package-0 wraps at max_energy_range_uj (corrected), core of
// socket 1 is reset to 0 (that interval not counted, a warning).
func TestRaplRunWrapAndReset(t *testing.T) {
	t.Parallel()
	start := []uint64{raplMax - 1_000_000, 2_000_000, 3_000_000, 4_000_000, 100_000_000_000, 6_000_000, 7_000_000}
	root := raplTree(t, start)
	dir := t.TempDir()
	writeConfig(t, dir, raplConfig(root))
	cmd := agentCmd(dir, nil, "--plugins", "csv,rapl")
	var stderr testkit.LockedBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "🔥 ALUMET agent is ready.") }, 20*time.Second, 20*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	raplSet(t, root, 0, 500_000) // wrapped: 1 J to the max, 0.5 J after, +1 µJ
	raplSet(t, root, 4, 0)       // reset
	time.Sleep(300 * time.Millisecond)
	raplSet(t, root, 0, 2_500_000)
	raplSet(t, root, 4, 3_000_000)
	raplSet(t, root, 6, 9_000_000)
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), stderr.String())
	log := stderr.String()
	require.Contains(t, log, "WARN  plugin_rapl] RAPL powercap zone core ("+raplZoneDir(root, raplZones[4].dir)+"): the counter went back from 100000000000 to 0:")
	require.Contains(t, log, "so it was reset rather than consumed; this interval is not counted")
	require.Equal(t, 1, strings.Count(log, "WARN  plugin_rapl]"), log)
	want := []float64{3.500001, 0, 0, 0, 3, 0, 2}
	checkRaplRows(t, raplRows(t, filepath.Join(dir, "out.csv")), want, false)
}

// TestRaplAlumetSection: Alumet's [plugins.rapl] section, verbatim, is
// decoded and used (sysfs_root from an override, the file unchanged); on
// a machine without RAPL the error says why, for both interfaces.
func TestRaplAlumetSection(t *testing.T) {
	t.Parallel()
	root := raplTree(t, []uint64{1, 2, 3, 4, 5, 6, 7})
	dir := t.TempDir()
	section := "[plugins.csv]\noutput_path = \"out.csv\"\n\n[plugins.rapl]\npoll_interval = \"1s\"\nflush_interval = \"5s\"\nno_perf_events = false\n"
	writeConfig(t, dir, section)
	res := runAgent(t, dir, nil, "--config-override", "plugins.rapl.sysfs_root='"+root+"'", "exec", "--", "sleep", "1.5")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stderr, "/devices/power does not exist: the Intel RAPL PMU module may not be enabled")
	require.Contains(t, res.stderr, "I will disable perf_events and fall back to powercap.")
	rows := raplRows(t, filepath.Join(dir, "out.csv"))
	require.Len(t, rows, 2*len(raplSeries), "the poll at 1 s and the one at the stop")
	b, err := os.ReadFile(filepath.Join(dir, "alumet-config.toml"))
	require.NoError(t, err)
	require.Equal(t, section, string(b))

	empty := t.TempDir()
	res = runAgent(t, dir, nil, "--config-override", "plugins.rapl.sysfs_root='"+empty+"'", "exec", "--", "true")
	require.Equal(t, 1, res.code, res.stderr)
	require.Contains(t, res.stderr, "ERROR alumet_agent] Error: plugin rapl failed to start: I can use neither perf_events nor powercap: impossible to measure RAPL counters.\n"+
		"  perf_events: "+empty+"/devices/power does not exist")
	require.Contains(t, res.stderr, "\n  powercap: "+empty+"/devices/virtual/powercap/intel-rapl does not exist")
}

// TestRaplGeneratedConfig: a generated configuration has the rapl section
// off (the default config must start where RAPL is root-only or absent);
// --plugins turns it on.
func TestRaplGeneratedConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	res := runAgent(t, dir, nil, "config", "regen")
	require.Equal(t, 0, res.code, res.stderr)
	b, err := os.ReadFile(filepath.Join(dir, "alumet-config.toml"))
	require.NoError(t, err)
	require.Contains(t, string(b), "\n[plugins.rapl]\n# Off in a generated configuration: on Grid'5000 the RAPL counters are\n")
	require.Contains(t, string(b), "--plugins, to measure them.\nenabled = false\n# Time between two readings")

	root := raplTree(t, []uint64{1, 2, 3, 4, 5, 6, 7})
	res = runAgent(t, dir, nil, "--plugins", "csv,rapl", "--output-file", "out.csv",
		"--config-override", "plugins.rapl.sysfs_root='"+root+"'", "--config-override", "plugins.rapl.poll_interval='100ms'",
		"exec", "--", "sleep", "0.5")
	require.Equal(t, 0, res.code, res.stderr)
	require.GreaterOrEqual(t, len(raplRows(t, filepath.Join(dir, "out.csv"))), 2*len(raplSeries))
}
