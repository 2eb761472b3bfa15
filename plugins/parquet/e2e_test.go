package parquet

import (
	stdcsv "encoding/csv"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alumet-go/alumet-agent/internal/testkit"
	"github.com/alumet-go/alumet-agent/kwollect/emulator/emutest"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// record is a row as both files hold it, in the CSV's terms.
type record struct {
	Metric                                             string
	Timestamp                                          int64 // Unix ns
	Value                                              float64
	ResourceKind, ResourceID, ConsumerKind, ConsumerID string
	Attributes                                         map[string]string // text forms
}

// csvRecords parses an Alumet CSV (';' and ',' delimiters).
func csvRecords(t *testing.T, path string) []record {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	r := stdcsv.NewReader(f)
	r.Comma = ';'
	r.FieldsPerRecord = -1
	all, err := r.ReadAll()
	require.NoError(t, err)
	require.NotEmpty(t, all)
	head := all[0]
	require.Equal(t, FixedColumns[:], head[:nFixed])
	require.Equal(t, LateColumn, head[len(head)-1])
	var out []record
	for _, c := range all[1:] {
		require.Len(t, c, len(head))
		ts, err := time.Parse(time.RFC3339Nano, c[1])
		require.NoError(t, err)
		v, err := strconv.ParseFloat(c[2], 64)
		require.NoError(t, err)
		rec := record{Metric: c[0], Timestamp: ts.UnixNano(), Value: v, ResourceKind: c[3], ResourceID: c[4],
			ConsumerKind: c[5], ConsumerID: c[6], Attributes: map[string]string{}}
		for i := nFixed; i < len(head)-1; i++ {
			if c[i] != "" {
				rec.Attributes[head[i]] = c[i]
			}
		}
		if late := c[len(c)-1]; late != "" {
			for _, kv := range splitLate(late) {
				k, v, ok := strings.Cut(kv, "=")
				require.True(t, ok, "late pair %q", kv)
				rec.Attributes[k] = v
			}
		}
		out = append(out, rec)
	}
	return out
}

// splitLate splits a late cell on ',' not preceded by '\', unescaping.
func splitLate(s string) []string {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == ',':
			cur.WriteByte(',')
			i++
		case s[i] == ',':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	return append(parts, cur.String())
}

// jsRecords turns hyparquet's rows into records.
func jsRecords(t *testing.T, f jsFile, attrCols []string) []record {
	t.Helper()
	var out []record
	for _, r := range f.Rows {
		rec := record{Metric: *r["metric"], Timestamp: parseInt(t, *r["timestamp"]), Value: parseFloat(t, *r["value"]),
			ResourceKind: *r["resource_kind"], ResourceID: *r["resource_id"], ConsumerKind: *r["consumer_kind"],
			ConsumerID: *r["consumer_id"], Attributes: map[string]string{}}
		for _, a := range attrCols {
			if v := r[a]; v != nil {
				rec.Attributes[a] = *v
			}
		}
		if l := r[LateColumn]; l != nil {
			for k, v := range lateText(t, *l) {
				rec.Attributes[k] = v
			}
		}
		out = append(out, rec)
	}
	return out
}

// buildBinaries builds alumet-agent and kwollect-emulator, once per test
// binary (removed by TestMain).
func buildBinaries(t *testing.T) string { return testkit.Binaries(t) }

func TestMain(m *testing.M) {
	code := m.Run()
	testkit.RemoveBinaries()
	os.Exit(code)
}

// startEmulator runs kwollect-emulator on 127.0.0.1, port 0, and returns
// its API base URL.
func startEmulator(t *testing.T, bin string, args ...string) string {
	t.Helper()
	return emutest.StartBinary(t, filepath.Join(bin, "kwollect-emulator"), append([]string{"--seed", "42"}, args...)...).URL
}

// The real binary, fetching from the emulator with the csv and parquet
// outputs (and energy-report, whose points are not compact): hyparquet
// reads back from the Parquet file exactly the CSV's rows, in order.
func TestEndToEndSameRowsAsCSV(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the binaries")
	}
	needHyparquet(t)
	bin := buildBinaries(t)
	// A monitored two-PSU node (100 Hz frames, _device_orig of two ports)
	// and its BMC with NaN readings (label value_str: a late attribute).
	api := startEmulator(t, bin, "--lag", "0s", "--monitor", "gemini-1", "--bmc-nan-rate", "0.3")
	dir := t.TempDir()
	from := time.Now().Add(-20 * time.Minute).Truncate(time.Second)
	to := from.Add(60 * time.Second)
	cfg := fmt.Sprintf(`[plugins.kwollect-input]
site = "lyon"
hostname = "gemini-1"
metrics = ["wattmetre_power_watt", "bmc_node_power_watt", "bmc_cpu_temp_celsius"]
api_url = %q

[plugins.csv]
output_path = "out.csv"

[plugins.parquet]
output_path = "out.parquet"
row_group_rows = 1000

[plugins.energy-report]
summary_file = "energy.json"
`, api)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(cfg), 0o600))
	cmd := exec.Command(filepath.Join(bin, "alumet-agent"), "--plugins", "csv,parquet,kwollect-input,energy-report",
		"fetch", "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ALUMET_CONFIG=", "RUST_LOG=", "ALUMET_LOG=")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)

	want := csvRecords(t, filepath.Join(dir, "out.csv"))
	require.Greater(t, len(want), 5000, "60 s at 100 Hz")
	f := readWithHyparquet(t, filepath.Join(dir, "out.parquet"))
	require.Equal(t, []string{"ZSTD"}, f.Meta.Codecs)
	require.Greater(t, f.Meta.RowGroups, 4)
	require.Equal(t, strconv.Itoa(len(want)), f.Meta.Rows)
	got := jsRecords(t, f, DefaultConfig().AttributeColumns)
	nanEq := cmp.Comparer(func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) })
	if diff := cmp.Diff(want, got, nanEq); diff != "" {
		t.Fatalf("the Parquet rows differ from the CSV's (-csv +parquet):\n%s", diff)
	}
	var energy, late, nan int
	for i, r := range want {
		if strings.Contains(r.Metric, "energy") {
			energy++
		}
		if f.Rows[i][LateColumn] != nil {
			late++
		}
		if math.IsNaN(r.Value) {
			nan++
		}
	}
	t.Logf("%d rows compared (%d from energy-report, %d with late attributes, %d NaN), %d row groups", len(want), energy, late, nan, f.Meta.RowGroups)
	require.Positive(t, energy)
	require.Positive(t, late, "cpu and value_str labels")
	require.Positive(t, nan)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		require.False(t, strings.HasSuffix(e.Name(), ".tmp"), "temporary file left: %s", e.Name())
	}
}

// Run mode: rotated files, each published whole by rename; together they
// hold exactly the CSV's rows, the last one published at SIGTERM.
func TestEndToEndRunModeRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the binaries")
	}
	needHyparquet(t)
	bin := buildBinaries(t)
	api := startEmulator(t, bin, "--lag", "1s", "--monitor", "gemini-1")
	dir := t.TempDir()
	cfg := fmt.Sprintf(`[plugins.kwollect-input]
site = "lyon"
hostname = "gemini-1"
metrics = "wattmetre_power_watt"
api_url = %q
poll_interval = "1s"

[plugins.csv]
output_path = "out.csv"

[plugins.parquet]
output_path = "out.parquet"
rotate_rows = 150
`, api)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(cfg), 0o600))
	cmd := exec.Command(filepath.Join(bin, "alumet-agent"), "--plugins", "csv,parquet,kwollect-input")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ALUMET_CONFIG=", "RUST_LOG=", "ALUMET_LOG=")
	var stderr testkit.LockedBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	published := func() []string {
		m, _ := filepath.Glob(filepath.Join(dir, "out-*.parquet"))
		return m
	}
	require.Eventually(t, func() bool { return len(published()) >= 2 }, 30*time.Second, 50*time.Millisecond, "no rotated file: %s", stderr.String())
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), stderr.String())

	want := csvRecords(t, filepath.Join(dir, "out.csv"))
	files := published()
	var got []record
	for i, f := range files {
		require.Equal(t, numbered(filepath.Join(dir, "out.parquet"), i+1), f, "numbered from 1, no gap")
		js := readWithHyparquet(t, f)
		if i < len(files)-1 {
			require.Len(t, js.Rows, 150, f)
		}
		got = append(got, jsRecords(t, js, DefaultConfig().AttributeColumns)...)
	}
	require.Equal(t, len(want), len(got), "%d files", len(files))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("the rotated files differ from the CSV (-csv +parquet):\n%s", diff)
	}
	t.Logf("%d rows in %d files", len(got), len(files))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		require.False(t, strings.HasSuffix(e.Name(), ".tmp"), "temporary file left: %s", e.Name())
	}
}
