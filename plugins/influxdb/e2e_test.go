package influxdb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/servertest"
	"github.com/alumet-go/alumet-agent/internal/testkit"
	"github.com/alumet-go/alumet-agent/kwollect/emulator/emutest"
	"github.com/alumet-go/alumet-agent/pipeline"
)

// The end-to-end tests run the real binaries: kwollect-emulator on
// 127.0.0.1 port 0, and alumet-agent fetching a past window with the csv
// and influxdb outputs, against VictoriaMetrics (/api/v2/write) and
// InfluxDB 1.x (api = "v1"); what the server holds is read back and
// compared with the CSV, point for point.

func binaries(t *testing.T) string { return testkit.Binaries(t) }

func TestMain(m *testing.M) {
	code := m.Run()
	testkit.RemoveBinaries()
	os.Exit(code)
}

// startEmulator runs kwollect-emulator and returns its API base URL.
func startEmulator(t *testing.T, bin string) string {
	t.Helper()
	return emutest.StartBinary(t, filepath.Join(bin, "kwollect-emulator"), "--seed", "42", "--lag", "1s", "--monitor", "taurus-7").URL
}

// row is a point as the CSV has it.
type row struct {
	NS                 int64
	Value              string
	ResourceID, Origin string
}

// fetch runs the agent over a 10 s window of taurus-7 (500 rows at
// 50 Hz) with the csv output and the given influxdb section, and returns
// the CSV's rows.
func fetch(t *testing.T, influxSection string, env ...string) ([]row, string) {
	t.Helper()
	rows, stderr, code := fetchCode(t, influxSection, env...)
	require.Zero(t, code, stderr)
	return rows, stderr
}

func fetchCode(t *testing.T, influxSection string, env ...string) ([]row, string, int) {
	t.Helper()
	bin := binaries(t)
	api := startEmulator(t, bin)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`[plugins.kwollect-input]
site = "lyon"
hostname = "taurus-7"
metrics = "wattmetre_power_watt"
api_url = %q

%s`, api, influxSection)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(cfg), 0o600))
	from := time.Now().Add(-15 * time.Minute).Truncate(time.Second)
	to := from.Add(10 * time.Second)
	cmd := exec.Command(filepath.Join(bin, "alumet-agent"), "--config", "alumet-config.toml", "--output-file", "out.csv",
		"--plugins", "csv,kwollect-input,influxdb",
		"fetch", "--from", from.Format(time.RFC3339Nano), "--to", to.Format(time.RFC3339Nano))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ALUMET_CONFIG=", "RUST_LOG=debug", "ALUMET_LOG=")
	cmd.Env = append(cmd.Env, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	code := 0
	if err := cmd.Run(); err != nil {
		ee, ok := err.(*exec.ExitError)
		require.True(t, ok, "%v: %s", err, stderr.String())
		code = ee.ExitCode()
	}
	rows := readCSV(t, filepath.Join(dir, "out.csv"))
	require.GreaterOrEqual(t, len(rows), 400, "the window holds 500 rows at 50 Hz")
	return rows, stderr.String(), code
}

// readCSV returns the rows of the agent's CSV.
func readCSV(t *testing.T, path string) []row {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	require.Equal(t, "metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;metric_id;__late_attributes", lines[0])
	var rows []row
	for _, l := range lines[1:] {
		c := strings.Split(l, ";")
		require.Len(t, c, 9, l)
		require.Equal(t, []string{"wattmetre_power_watt_W", "device_id", "device_origin", "wattmetre_power_watt"}, []string{c[0], c[3], c[5], c[7]})
		ts, err := time.Parse(time.RFC3339Nano, c[1])
		require.NoError(t, err)
		rows = append(rows, row{NS: ts.UnixNano(), Value: c[2], ResourceID: c[4], Origin: c[6]})
	}
	return rows
}

func sortRows(rs []row) {
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].NS != rs[j].NS {
			return rs[i].NS < rs[j].NS
		}
		return rs[i].Origin < rs[j].Origin
	})
}

func floatText(t *testing.T, v float64) string {
	t.Helper()
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// VictoriaMetrics through /api/v2/write (gzip, token, attributes as tags
// as the spec advises): every CSV row is there, with its labels, at its
// millisecond (VictoriaMetrics' precision), with its value.
func TestE2EVictoriaMetrics(t *testing.T) {
	vm := servertest.VictoriaMetrics(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("vm-token-0123456789\n"), 0o600))
	rows, stderr := fetch(t, fmt.Sprintf(`[plugins.influxdb]
host = %q
token_file = %q
org = "grid5000"
bucket = "alumet"
attributes_as = "tag"
batch_size = 128
`, vm.URL, tokenFile))
	require.NotContains(t, stderr, "vm-token-0123456789")
	got := vmRows(t, vm)
	want := msRows(rows)
	sortRows(want)
	sortRows(got)
	require.Empty(t, cmp.Diff(want, got), "VictoriaMetrics holds other points than the CSV")
	t.Logf("%d points read back from VictoriaMetrics", len(got))
}

// vmRows reads every wattmetre point back from VictoriaMetrics, checking
// its labels.
func vmRows(t *testing.T, vm *servertest.Server) []row {
	t.Helper()
	out := vm.VMExport(t, `{__name__=~"wattmetre_power_watt.*"}`)
	var got []row
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var s struct {
			Metric     map[string]string `json:"metric"`
			Values     []float64         `json:"values"`
			Timestamps []int64           `json:"timestamps"`
		}
		require.NoError(t, json.Unmarshal([]byte(l), &s), l)
		require.Equal(t, map[string]string{"__name__": "wattmetre_power_watt_value", "resource_kind": "device_id",
			"resource_id": s.Metric["resource_id"], "resource_consumer_kind": "device_origin",
			"resource_consumer_id": s.Metric["resource_consumer_id"], "metric_id": "wattmetre_power_watt"}, s.Metric)
		for i := range s.Values {
			got = append(got, row{NS: s.Timestamps[i] * 1e6, Value: floatText(t, s.Values[i]),
				ResourceID: s.Metric["resource_id"], Origin: s.Metric["resource_consumer_id"]})
		}
	}
	return got
}

// msRows is rows at VictoriaMetrics' millisecond precision.
func msRows(rows []row) []row {
	want := make([]row, len(rows))
	for i, r := range rows {
		r.NS = r.NS / 1e6 * 1e6
		want[i] = r
	}
	return want
}

// InfluxDB 1.x in v1 mode (basic auth off, gzip): every CSV row, at its
// nanosecond, with its value and its metric_id field.
func TestE2EInfluxDB1(t *testing.T) {
	db := servertest.InfluxDB1(t)
	db.InfluxCreateDatabase(t, "alumet")
	rows, _ := fetch(t, fmt.Sprintf(`[plugins.influxdb]
host = %q
api = "v1"
database = "alumet"
`, db.URL))
	out := db.InfluxQuery(t, "alumet", `SELECT "value", "metric_id", "resource_kind", "resource_id", "resource_consumer_kind", "resource_consumer_id" FROM "wattmetre_power_watt"`)
	var res struct {
		Results []struct {
			Series []struct {
				Columns []string        `json:"columns"`
				Values  [][]interface{} `json:"values"`
			} `json:"series"`
			Error string `json:"error"`
		} `json:"results"`
	}
	d := json.NewDecoder(bytes.NewReader(out))
	d.UseNumber()
	require.NoError(t, d.Decode(&res), string(out))
	require.Len(t, res.Results, 1, string(out))
	require.Empty(t, res.Results[0].Error)
	require.Len(t, res.Results[0].Series, 1, string(out))
	s := res.Results[0].Series[0]
	require.Equal(t, []string{"time", "value", "metric_id", "resource_kind", "resource_id", "resource_consumer_kind", "resource_consumer_id"}, s.Columns)
	var got []row
	for _, v := range s.Values {
		ns, err := v[0].(json.Number).Int64()
		require.NoError(t, err)
		f, err := v[1].(json.Number).Float64()
		require.NoError(t, err)
		require.Equal(t, []interface{}{"wattmetre_power_watt", "device_id", "device_origin"}, []interface{}{v[2], v[3], v[5]})
		got = append(got, row{NS: ns, Value: floatText(t, f), ResourceID: v[4].(string), Origin: v[6].(string)})
	}
	sortRows(rows)
	sortRows(got)
	require.Empty(t, cmp.Diff(rows, got), "InfluxDB holds other points than the CSV")
	t.Logf("%d points read back from InfluxDB 1.x", len(got))
}

// A server that never answers: the CSV is whole, the agent gives up at
// close_timeout, says how many points did not reach InfluxDB, and exits
// non-zero; the token never appears.
func TestE2EServerDown(t *testing.T) {
	addr := servertest.FreeAddr(t) // nothing listens there
	rows, stderr, code := fetchCode(t, fmt.Sprintf(`[plugins.influxdb]
host = "http://%s"
token = "${INFLUX_TOKEN}"
org = "o"
bucket = "b"
close_timeout = "1s"
`, addr), "INFLUX_TOKEN=env-token-13579")
	require.NotZero(t, code, stderr)
	require.Contains(t, stderr, "does not answer yet")
	require.Contains(t, stderr, fmt.Sprintf("output influxdb failed: influxdb: %s points not delivered to http://%s/api/v2/write?bucket=b&org=o&precision=ns (%s not delivered)",
		pipeline.GroupDigits(int64(len(rows))), addr, pipeline.GroupDigits(int64(len(rows)))))
	require.NotContains(t, stderr, "env-token-13579")
}

// Run mode with a 3 s outage of VictoriaMetrics in the middle: the batches
// are retried until it is back (Alumet drops them), and after SIGTERM it
// holds exactly the CSV's points.
func TestE2ERunModeOutage(t *testing.T) {
	bin := binaries(t)
	vm := servertest.VictoriaMetrics(t)
	api := startEmulator(t, bin)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`[plugins.kwollect-input]
site = "lyon"
hostname = "taurus-7"
metrics = "wattmetre_power_watt"
api_url = %q
poll_interval = "1s"

[plugins.influxdb]
host = %q
token = "t"
org = "o"
bucket = "b"
attributes_as = "tag"
flush_interval = "200ms"
close_timeout = "30s"
`, api, vm.URL)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(cfg), 0o600))
	cmd := exec.Command(filepath.Join(bin, "alumet-agent"), "--config", "alumet-config.toml", "--output-file", "out.csv",
		"--plugins", "csv,kwollect-input,influxdb")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ALUMET_CONFIG=", "RUST_LOG=", "ALUMET_LOG=")
	var stderr testkit.LockedBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "ALUMET agent is ready.") },
		30*time.Second, 20*time.Millisecond)
	time.Sleep(3 * time.Second)
	vm.Stop()
	time.Sleep(3 * time.Second)
	vm.Start(t)
	time.Sleep(3 * time.Second)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), stderr.String())
	require.Contains(t, stderr.String(), "retrying in", "the outage was not seen")
	rows := readCSV(t, filepath.Join(dir, "out.csv"))
	require.Greater(t, len(rows), 100, stderr.String())
	want := msRows(rows)
	got := vmRows(t, vm)
	sortRows(want)
	sortRows(got)
	require.Empty(t, cmp.Diff(want, got), "VictoriaMetrics holds other points than the CSV after the outage")
	t.Logf("%d points in the CSV and VictoriaMetrics, across a 3 s outage", len(got))
}
