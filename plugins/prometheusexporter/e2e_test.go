package prometheusexporter

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
	"github.com/alumet-go/alumet-agent/measure"
)

// binaries builds alumet-agent and kwollect-emulator once per test binary.
func binaries(t *testing.T) string { return testkit.Binaries(t) }

func TestMain(m *testing.M) {
	code := m.Run()
	testkit.RemoveBinaries()
	os.Exit(code)
}

// startEmulator runs kwollect-emulator on 127.0.0.1 with a free port and
// returns its API base URL (…/stable).
func startEmulator(t *testing.T, bin string, args ...string) string {
	t.Helper()
	return emutest.StartBinary(t, filepath.Join(bin, "kwollect-emulator"), append([]string{"--seed", "42"}, args...)...).URL
}

// startPrometheus runs a real Prometheus (Debian package prometheus) on
// 127.0.0.1, scraping scrapeTarget (host:port) every second as job
// "alumet", and returns its base URL once it is ready.
func startPrometheus(t *testing.T, scrapeTarget string) (url string) {
	t.Helper()
	return servertest.Prometheus(t, servertest.PrometheusOptions{ScrapeConfigs: fmt.Sprintf(
		"\n  - job_name: alumet\n    scrape_timeout: 1s\n    static_configs:\n      - targets: [%q]", scrapeTarget)}).URL
}

// csvSeries is a series of the CSV and its last point (by time, then by row).
type csvSeries struct {
	labels map[string]string
	ts     time.Time
	value  float64
}

// lastPoints reads the agent's CSV and returns the last point of each
// series, keyed by its Prometheus labels (empty ones left out, as
// Prometheus drops them), __name__ included.
func lastPoints(t *testing.T, path, instance string) map[string]csvSeries {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma = ';'
	rows, err := r.ReadAll()
	require.NoError(t, err)
	require.Equal(t, []string{"metric", "timestamp", "value", "resource_kind", "resource_id", "consumer_kind", "consumer_id", "metric_id", "__late_attributes"}, rows[0])
	out := map[string]csvSeries{}
	for _, row := range rows[1:] {
		name := MetricName("", row[7], "_alumet", measure.UnitFromKwollectMetric(row[7]))
		labels := map[string]string{"__name__": name, "job": "alumet", "instance": instance,
			"resource_kind": row[3], "resource_id": row[4], "resource_consumer_kind": row[5], "resource_consumer_id": row[6], "metric_id": row[7]}
		for k, v := range labels {
			if v == "" {
				delete(labels, k)
			}
		}
		ts, err := time.Parse(time.RFC3339Nano, row[1])
		require.NoError(t, err)
		v, err := strconv.ParseFloat(row[2], 64)
		require.NoError(t, err)
		key := labelKey(labels)
		if old, ok := out[key]; ok && ts.Before(old.ts) {
			continue
		}
		out[key] = csvSeries{labels: labels, ts: ts, value: v}
	}
	return out
}

func labelKey(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q,", k, m[k])
	}
	return b.String()
}

// promSample is the last sample Prometheus holds for a series.
type promSample struct {
	ms       int64
	value    float64
	distinct int // distinct values scraped over the range
}

// queryLast returns the last sample of every series of job alumet but
// Prometheus' own (up, scrape_*), over the last 10 minutes. A range
// selector skips the staleness markers written once the agent is gone.
func queryLast(t *testing.T, prom string) map[string]promSample {
	t.Helper()
	q := `{job="alumet",__name__=~".+_alumet(_.+)?"}[10m]`
	resp, err := http.Get(prom + "/api/v1/query?query=" + url.QueryEscape(q))
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string    `json:"metric"`
				Values [][2]json.RawMessage `json:"values"`
			} `json:"result"`
		} `json:"data"`
		Error string `json:"error"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Equal(t, "success", body.Status, body.Error)
	out := map[string]promSample{}
	for _, r := range body.Data.Result {
		last := r.Values[len(r.Values)-1]
		var ts float64
		var vs string
		require.NoError(t, json.Unmarshal(last[0], &ts))
		require.NoError(t, json.Unmarshal(last[1], &vs))
		v, err := strconv.ParseFloat(vs, 64)
		require.NoError(t, err)
		seen := map[string]bool{}
		for _, sv := range r.Values {
			seen[string(sv[1])] = true
		}
		out[labelKey(r.Metric)] = promSample{ms: int64(math.Round(ts * 1000)), value: v, distinct: len(seen)}
	}
	return out
}

// TestE2EPrometheusScrapes runs the real agent (exec, or run until
// SIGTERM; kwollect-input from the emulator, csv and prometheus-exporter) while a real Prometheus
// scrapes it every second, and checks through Prometheus' query API that
// it holds every series of the CSV with its last value (and, with
// expose_timestamps, its Kwollect time), and the OpenMetrics metadata.
func TestE2EPrometheusScrapes(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: builds the binaries and runs Prometheus")
	}
	servertest.Binary(t, "prometheus", "prometheus")
	bin := binaries(t)
	api := startEmulator(t, bin, "--lag", "0s")
	tests := []struct {
		name       string
		args       []string // after the global flags
		timestamps bool
		extra      string // more [plugins.kwollect-input] keys
		runFor     time.Duration
	}{
		{name: "exec", args: []string{"exec", "--", "sleep", "6"}}, // bmc_node_power_watt samples every 5 s
		{name: "exec with expose_timestamps", args: []string{"exec", "--", "sleep", "6"}, timestamps: true},
		// run mode: the series update every poll while Prometheus scrapes,
		// until SIGTERM.
		{name: "run", args: []string{"run"}, extra: "poll_interval = \"1s\"\n", runFor: 7 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			timestamps := tt.timestamps
			dir := t.TempDir()
			cfg := fmt.Sprintf(`[plugins.kwollect-input]
site = "lyon"
hostname = ["taurus-7", "taurus-8"]
metrics = ["wattmetre_power_watt", "bmc_node_power_watt"]
login = "alice"
password = "secret"
api_url = %q
%s
[plugins.csv]
output_path = "out.csv"

[plugins.prometheus-exporter]
host = "127.0.0.1"
port = 0
expose_timestamps = %v
final_scrape_timeout = "20s"
`, api, tt.extra, timestamps)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(cfg), 0o600))
			cmd := exec.Command(filepath.Join(bin, "alumet-agent"), tt.args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "NO_COLOR=1")
			var stderr testkit.LockedBuffer
			cmd.Stdout, cmd.Stderr = &stderr, &stderr
			require.NoError(t, cmd.Start())
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-exited
			})
			addrRE := regexp.MustCompile(`INFO  plugin_prometheus_exporter\] Prometheus metrics exporter available on http://(127\.0\.0\.1:\d+)/metrics\n`)
			var target string
			for deadline := time.Now().Add(30 * time.Second); target == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if m := addrRE.FindStringSubmatch(stderr.String()); m != nil {
					target = m[1]
				}
			}
			require.NotEmpty(t, target, "the exporter's address is logged:\n%s", stderr.String())
			prom := startPrometheus(t, target)
			if tt.runFor > 0 {
				time.Sleep(tt.runFor)
				require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
			}

			select {
			case err := <-exited:
				exited <- err
				require.NoError(t, err, stderr.String())
			case <-time.After(60 * time.Second):
				t.Fatalf("the agent did not stop:\n%s", stderr.String())
			}
			require.NotContains(t, stderr.String(), "no scrape came for the last points", "the final scrape happened")
			want := lastPoints(t, filepath.Join(dir, "out.csv"), target)
			require.Len(t, want, 4, "2 nodes × 2 metrics")

			var got map[string]promSample
			deadline := time.Now().Add(20 * time.Second)
			for {
				got = queryLast(t, prom)
				if len(got) == len(want) || time.Now().After(deadline) {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			gotKeys, wantKeys := sortedKeys(got), sortedKeys(want)
			require.Empty(t, cmp.Diff(wantKeys, gotKeys), "series in Prometheus (-CSV +Prometheus)")
			for k, w := range want {
				g := got[k]
				require.Equal(t, w.value, g.value, "last value of %s", k)
				if tt.runFor > 0 && strings.Contains(k, "wattmetre") {
					require.GreaterOrEqual(t, g.distinct, 2, "the series is updated while it is scraped: %s", k)
				}
				if timestamps {
					require.InDelta(t, w.ts.UnixMilli(), g.ms, 1, "the sample's time is the Kwollect time: %s", k)
				} else {
					require.Greater(t, g.ms, w.ts.UnixMilli(), "stamped with the scrape time, after the Kwollect time: %s", k)
				}
			}
			checkMetadata(t, prom)
		})
	}
}

// Prometheus got the families' metadata from the OpenMetrics text: the
// type, the help and the unit (which the text format 0.0.4 cannot carry).
func checkMetadata(t *testing.T, prom string) {
	t.Helper()
	resp, err := http.Get(prom + "/api/v1/metadata?metric=wattmetre_power_watt_alumet_watts")
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Data   map[string][]struct {
			Type, Help, Unit string
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Equal(t, "success", body.Status)
	md := body.Data["wattmetre_power_watt_alumet_watts"]
	require.NotEmpty(t, md, "metadata: %+v", body)
	require.Equal(t, "gauge", md[0].Type)
	require.Equal(t, "watts", md[0].Unit)
	require.NotEmpty(t, md[0].Help)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
