package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/testkit"
	"github.com/alumet-go/alumet-agent/kwollect/emulator"
	"github.com/alumet-go/alumet-agent/kwollect/emulator/emutest"
)

// siteNodes is a node and its site.
type siteNodes struct {
	site  string
	nodes []string
}

// expectedRows returns the CSV rows (no header) the emulator's data gives
// for these nodes and metrics in [start, end], sorted.
func expectedRows(t *testing.T, cfg emulator.Config, groups []siteNodes, metrics []string, start, end time.Time) []string {
	t.Helper()
	cfg.Seed = seed
	emu := emutest.New(t, cfg)
	var lines []string
	for _, g := range groups {
		rows, err := emu.Expected(g.site, g.nodes, metrics, start, end)
		require.NoError(t, err)
		for _, r := range rows {
			consumerKind, consumerID := "local_machine", ""
			if orig, ok := r.Labels["_device_orig"].([]string); ok {
				consumerKind, consumerID = "device_origin", strings.Join(orig, ",")
			}
			lines = append(lines, fmt.Sprintf("%s_W;%s;%s;device_id;%s;%s;%s;%s;",
				r.MetricID, r.Timestamp.UTC().Format(time.RFC3339Nano), strconv.FormatFloat(r.Value, 'f', -1, 64),
				r.DeviceID, consumerKind, consumerID, r.MetricID))
		}
	}
	slices.Sort(lines)
	return lines
}

// csvRows returns the data rows of a CSV file, sorted, after checking the header.
func csvRows(t *testing.T, path string) []string {
	t.Helper()
	lines := readLines(t, path)
	require.Equal(t, "metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;metric_id;__late_attributes", lines[0])
	rows := lines[1:]
	slices.Sort(rows)
	return rows
}

func writeConfig(t *testing.T, dir, text string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(text), 0o600))
}

// TestMultiSiteExec: 4 nodes on 2 sites, two metrics, in one exec.
func TestMultiSiteExec(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "2s")
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(`[plugins.kwollect-input]
site = "lyon"
nodes = ["taurus-7", "orion-3.lyon.grid5000.fr", "gros-41.nancy.grid5000.fr", "gros-42.nancy.grid5000.fr"]
metrics = ["wattmetre_power_watt", "bmc_node_power_watt"]
api_url = %q
`, api))
	// 6 s: every 5 s BMC series has a sample in the window (a shorter one
	// may hold none, and is then rightly empty, exit 3).
	res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "exec", "--", "sleep", "6")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stderr, "/sites/lyon/metrics?nodes=taurus-7,orion-3&metrics=wattmetre_power_watt,bmc_node_power_watt")
	require.Contains(t, res.stderr, "/sites/nancy/metrics?nodes=gros-41,gros-42&metrics=wattmetre_power_watt,bmc_node_power_watt")
	start, end := fetchWindow(t, res.stderr)
	want := expectedRows(t, emulator.Config{}, []siteNodes{{"lyon", []string{"taurus-7", "orion-3"}}, {"nancy", []string{"gros-41", "gros-42"}}},
		[]string{"wattmetre_power_watt", "bmc_node_power_watt"}, start, end)
	got := csvRows(t, filepath.Join(dir, "out.csv"))
	require.Empty(t, cmp.Diff(want, got))
	nodes := map[string]bool{}
	for _, r := range got {
		nodes[strings.Split(r, ";")[4]] = true
	}
	require.Len(t, nodes, 4, "every node has rows")
}

// TestOARJob: job_id (Kwollect resolves the nodes) and job_id = "auto" (nodes
// from $OAR_NODEFILE, id from $OAR_JOB_ID).
func TestOARJob(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s", "--job", "id=4242;site=lyon;nodes=taurus-3,taurus-4;start=-1h")
	nodefile := filepath.Join(t.TempDir(), "nodefile")
	require.NoError(t, os.WriteFile(nodefile, []byte(strings.Repeat("taurus-3.lyon.grid5000.fr\n", 4)+strings.Repeat("taurus-4.lyon.grid5000.fr\n", 4)), 0o644))
	tests := []struct {
		name string
		job  string
		env  []string
	}{
		{"explicit job", "job_id = 4242\nsite = \"lyon\"", nil},
		{"auto", `job_id = "auto"`, []string{"OAR_JOB_ID=4242", "OAR_NODEFILE=" + nodefile}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeConfig(t, dir, fmt.Sprintf("[plugins.kwollect-input]\n%s\napi_url = %q\n", tt.job, api))
			res := runAgent(t, dir, tt.env, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "exec", "--", "sleep", "2")
			require.Equal(t, 0, res.code, res.stderr)
			start, end := fetchWindow(t, res.stderr)
			want := expectedRows(t, emulator.Config{}, []siteNodes{{"lyon", []string{"taurus-3", "taurus-4"}}}, []string{"wattmetre_power_watt"}, start, end)
			require.Empty(t, cmp.Diff(want, csvRows(t, filepath.Join(dir, "out.csv"))))
		})
	}
}

// TestLongHighFrequencyWindow: 2 hours of 100 Hz wattmeter frames of a
// monitored node, fetched in chunks: the exact row count, no duplicates.
func TestLongHighFrequencyWindow(t *testing.T) {
	if testing.Short() {
		t.Skip("fetches 720,000 rows")
	}
	t.Parallel()
	api := startEmulator(t, "--lag", "0s", "--monitor", "gemini-1", "--row-limit", "150000")
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(`[plugins.kwollect-input]
site = "lyon"
hostname = "gemini-1"
metrics = "wattmetre_power_watt"
api_url = %q
row_budget = 100000
`, api))
	end := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	start := end.Add(-2 * time.Hour)
	res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input",
		"fetch", "--from", start.Format(time.RFC3339), "--to", end.Format(time.RFC3339))
	require.Equal(t, 0, res.code, res.stderr)
	queries := strings.Count(res.stderr, "API request should be triggered")
	require.GreaterOrEqual(t, queries, 8, "720k rows in chunks of at most 100k")

	emu := emutest.New(t, emulator.Config{Seed: seed, Monitored: []string{"gemini-1"}})
	// The emulator's rows, counted in 10-minute pieces: the whole window at
	// once would hold 720,000 rows in this (race-instrumented) process.
	wantRows := 0
	var first time.Time
	for a := start; !a.After(end); a = a.Add(10 * time.Minute) {
		b := a.Add(10*time.Minute - time.Microsecond)
		if b.After(end) {
			b = end
		}
		rows, err := emu.Expected("lyon", []string{"gemini-1"}, []string{"wattmetre_power_watt"}, a, b)
		require.NoError(t, err)
		if wantRows == 0 && len(rows) > 0 {
			first = rows[0].Timestamp
		}
		wantRows += len(rows)
	}
	require.Greater(t, wantRows, 700_000)
	firstStamp := first.UTC().Format(time.RFC3339Nano)

	f, err := os.Open(filepath.Join(dir, "out.csv"))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	n := 0
	var prev string
	for sc.Scan() {
		fields := strings.SplitN(sc.Text(), ";", 3)
		// Count and spot-check (the order is TestMonitoredWindowInOrder's).
		if n < wantRows && fields[1] == firstStamp {
			prev = fields[1]
		}
		n++
	}
	require.NoError(t, sc.Err())
	require.Equal(t, wantRows, n, "exact row count")
	require.NotEmpty(t, prev, "the first frame is there")
	assertNoDuplicateLines(t, filepath.Join(dir, "out.csv"))
}

// assertNoDuplicateLines fails on a line that the file holds twice. It keeps
// a 64-bit hash per line (a million lines of ~120 bytes would otherwise be
// held as strings), then compares the lines themselves for the hashes seen
// twice, so a hash collision cannot fail the test.
func assertNoDuplicateLines(t *testing.T, path string) {
	t.Helper()
	seed := maphash.MakeSeed()
	seen := make(map[uint64]struct{}, 1<<20)
	twice := map[uint64]bool{}
	scanLines(t, path, func(line []byte) {
		h := maphash.Bytes(seed, line)
		if _, ok := seen[h]; ok {
			twice[h] = true
		}
		seen[h] = struct{}{}
	})
	if len(twice) == 0 {
		return
	}
	lines := map[string]bool{}
	scanLines(t, path, func(line []byte) {
		if twice[maphash.Bytes(seed, line)] {
			require.False(t, lines[string(line)], "duplicate row %q", line)
			lines[string(line)] = true
		}
	})
}

func scanLines(t *testing.T, path string, f func([]byte)) {
	t.Helper()
	file, err := os.Open(path)
	require.NoError(t, err)
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		f(sc.Bytes())
	}
	require.NoError(t, sc.Err())
}

// TestFaultsLoseNothing: 20 % of the requests fail (5xx, 429, resets,
// truncated bodies); every row arrives exactly once.
func TestFaultsLoseNothing(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "0s", "--fault-seed", "7",
		"--fault", "kind=503;p=0.05", "--fault", "kind=429;p=0.05;retry-after=0",
		"--fault", "kind=reset;p=0.05", "--fault", "kind=truncate;p=0.05")
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(`[plugins.kwollect-input]
site = "lyon"
nodes = ["taurus-1", "taurus-2", "orion-1", "nova-1"]
metrics = ["wattmetre_power_watt", "bmc_node_power_watt"]
api_url = %q
row_budget = 1000
`, api))
	end := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	start := end.Add(-30 * time.Minute)
	res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input",
		"fetch", "--from", start.Format(time.RFC3339), "--to", end.Format(time.RFC3339))
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stderr, "retrying", "faults were injected and retried")
	want := expectedRows(t, emulator.Config{}, []siteNodes{{"lyon", []string{"taurus-1", "taurus-2", "orion-1", "nova-1"}}},
		[]string{"wattmetre_power_watt", "bmc_node_power_watt"}, start, end)
	require.Empty(t, cmp.Diff(want, csvRows(t, filepath.Join(dir, "out.csv"))))
}

// TestLagFiveSeconds: with a 5 s ingestion lag the tail is still complete.
func TestLagFiveSeconds(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "5s")
	dir := t.TempDir()
	writeConfig(t, dir, seedConfig("", "", api))
	res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "exec", "--", "sleep", "1")
	require.Equal(t, 0, res.code, res.stderr)
	require.NotContains(t, res.stderr, "ends short")
	checkCSV(t, filepath.Join(dir, "out.csv"), res.stderr, 2)
}

// TestRunModeOutage: run mode polls every second; the API is down for 30 s;
// after SIGTERM the CSV holds the whole run, no gap, no duplicate.
func TestRunModeOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("lasts 40 s")
	}
	t.Parallel()
	emuStart := time.Now()
	api := startEmulator(t, "--lag", "1s", "--fault", "kind=503;from=4s;to=34s")
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(`[plugins.kwollect-input]
site = "lyon"
hostname = "taurus-7"
metrics = "wattmetre_power_watt"
api_url = %q
poll_interval = "1s"
`, api))
	cmd := agentCmd(dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "run")
	var stderr testkit.LockedBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(stderr.String())
		}
	})
	// The outage ends 34 s after the emulator started; give the agent time to catch up.
	time.Sleep(time.Until(emuStart.Add(40 * time.Second)))
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "Kwollect is back after") }, 30*time.Second, 100*time.Millisecond)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), stderr.String())
	log := stderr.String()
	require.Contains(t, log, "Kwollect poll failed")
	start, _ := fetchWindow(t, log)
	rows := csvRows(t, filepath.Join(dir, "out.csv"))
	last := rows[len(rows)-1]
	end, err := time.Parse(time.RFC3339Nano, strings.Split(last, ";")[1])
	require.NoError(t, err)
	want := expectedRows(t, emulator.Config{}, []siteNodes{{"lyon", []string{"taurus-7"}}}, []string{"wattmetre_power_watt"}, start, end)
	require.Empty(t, cmp.Diff(want, rows), "no gap, no duplicate")
	require.Greater(t, len(rows), 35)
}

// TestPreflightNoMeter: gros-1 has no wattmeter; exec fails fast without
// running the command.
func TestPreflightNoMeter(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "0s")
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf("[plugins.kwollect-input]\nsite = \"nancy\"\nhostname = \"gros-1\"\nmetrics = \"wattmetre_power_watt\"\napi_url = %q\n", api))
	res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "exec", "--", "touch", "ran")
	require.Equal(t, 1, res.code, res.stderr)
	require.Contains(t, res.stderr, "gros-1/wattmetre_power_watt")
	require.Contains(t, res.stderr, "only gros-41")
	_, err := os.Stat(filepath.Join(dir, "ran"))
	require.True(t, os.IsNotExist(err), "the command must not run")

	// preflight = "warn" runs it anyway.
	writeConfig(t, dir, fmt.Sprintf("[plugins.kwollect-input]\nsite = \"nancy\"\nhostname = \"gros-1\"\npreflight = \"warn\"\nfetch_timeout = \"1s\"\napi_url = %q\n", api))
	res = runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "exec", "--", "touch", "ran")
	require.Equal(t, 3, res.code, res.stderr)
	require.Contains(t, res.stderr, "gros-1/wattmetre_power_watt: EMPTY, no sample: gros-1 has no wattmetre_power_watt meter (only gros-41")
	_, err = os.Stat(filepath.Join(dir, "ran"))
	require.NoError(t, err)
}

// TestCredentials: from ~/.netrc and from the environment; the password
// never appears in any output, file or generated config.
func TestCredentials(t *testing.T) {
	t.Parallel()
	const secret = "N3trc-Secr3t-xyz"
	api := startEmulator(t, "--lag", "1s", "--user", "jdoe:"+secret)
	home := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(home, ".netrc"), []byte("machine 127.0.0.1 login jdoe password "+secret+"\n"), 0o600))
	tests := []struct {
		name string
		cfg  string
		env  []string
	}{
		{"netrc", seedConfig("", "", api), []string{"HOME=" + home}},
		{"env", seedConfig("jdoe", "${G5K_PASSWORD}", api), []string{"G5K_PASSWORD=" + secret, "HOME=" + t.TempDir()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeConfig(t, dir, tt.cfg)
			res := runAgent(t, dir, append(tt.env, "RUST_LOG=trace"), "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "exec", "--", "sleep", "1")
			require.Equal(t, 0, res.code, res.stderr)
			checkCSV(t, filepath.Join(dir, "out.csv"), res.stderr, 1)
			res2 := runAgent(t, dir, tt.env, "--config", "regen.toml", "config", "regen")
			require.Equal(t, 0, res2.code)
			for _, out := range []string{res.stdout, res.stderr, res2.stdout, res2.stderr} {
				require.NotContains(t, out, secret)
			}
			for _, f := range []string{"out.csv", "regen.toml"} {
				b, err := os.ReadFile(filepath.Join(dir, f))
				require.NoError(t, err)
				require.NotContains(t, string(b), secret)
			}
		})
	}
	// A netrc readable by others gets a warning.
	require.NoError(t, os.Chmod(filepath.Join(home, ".netrc"), 0o644))
	dir := t.TempDir()
	writeConfig(t, dir, seedConfig("", "", api))
	res := runAgent(t, dir, []string{"HOME=" + home}, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "exec", "true")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stderr, "can be read by other users")
	require.NotContains(t, res.stderr, secret)
}

// TestFetchJob: fetch --job-id takes the window of a finished OAR job from Kwollect.
func TestFetchJob(t *testing.T) {
	t.Parallel()
	stop := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	start := stop.Add(-20 * time.Minute)
	spec := fmt.Sprintf("id=777;site=lyon;nodes=taurus-5,taurus-6;start=%d;stop=%d", start.Unix(), stop.Unix())
	api := startEmulator(t, "--lag", "1s", "--job", spec)
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf("[plugins.kwollect-input]\nsite = \"lyon\"\njob_id = 777\napi_url = %q\n", api))
	res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "fetch", "--job-id", "777")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stderr, "/sites/lyon/metrics?metrics=wattmetre_power_watt&job_id=777")
	emu := emutest.New(t, emulator.Config{Seed: seed, Jobs: []emulator.Job{{ID: 777, Site: "lyon", Nodes: []string{"taurus-5", "taurus-6"}, Start: start, Stop: stop}}})
	rows, err := emu.ExpectedQuery("lyon", url.Values{"job_id": {"777"}, "metrics": {"wattmetre_power_watt"}})
	require.NoError(t, err)
	require.Len(t, rows, 2*(20*60+1), "two nodes, both bounds inclusive")
	got := csvRows(t, filepath.Join(dir, "out.csv"))
	require.Len(t, got, len(rows))
	require.Contains(t, got[0], ";device_id;taurus-5;")

	// With the nodes named, the verdict counts their samples (it said
	// "no sample was fetched", 0 samples, while the CSV had them).
	ndir := t.TempDir()
	writeConfig(t, ndir, fmt.Sprintf("[plugins.kwollect-input]\nsite = \"lyon\"\nhostname = \"taurus-5,taurus-6\"\napi_url = %q\n", api))
	res = runAgent(t, ndir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "fetch", "--job-id", "777")
	require.Equal(t, 0, res.code, res.stderr)
	require.NotContains(t, res.stderr, "no sample was fetched")
	require.Contains(t, res.stderr, "All plugins stopped, all data written.")
	require.Contains(t, res.stderr, "Measurement complete: 2 series, every one covers its whole window.", res.stderr)
	require.Len(t, csvRows(t, filepath.Join(ndir, "out.csv")), len(rows))

	// A body cut after 700 rows, then a 503: retried, resumed, every row once.
	faulty := startEmulator(t, "--lag", "1s", "--job", spec, "--fault", "kind=truncate;next=1;rows=700", "--fault", "kind=503;next=1")
	fdir := t.TempDir()
	writeConfig(t, fdir, fmt.Sprintf("[plugins.kwollect-input]\nsite = \"lyon\"\njob_id = 777\napi_url = %q\n", faulty))
	res = runAgent(t, fdir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "fetch", "--job-id", "777")
	require.Equal(t, 0, res.code, res.stderr)
	require.Equal(t, 2, strings.Count(res.stderr, "retrying in"), res.stderr)
	require.Contains(t, res.stderr, "resuming after the rows already fetched")
	require.Equal(t, got, csvRows(t, filepath.Join(fdir, "out.csv")), "the same rows as without faults, once each")

	// With energy-report: the window is the job's first to last row.
	res = runAgent(t, dir, nil, "--output-file", "out2.csv", "--plugins", "csv,kwollect-input,energy-report", "fetch", "--job-id", "777")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stderr, "OAR job 777: from its first row to its last")
	b, err := os.ReadFile(filepath.Join(dir, "alumet-energy.json"))
	require.NoError(t, err)
	var sum struct {
		Start, End string
		Series     []struct{ Node string }
	}
	require.NoError(t, json.Unmarshal(b, &sum))
	require.Equal(t, start.UTC().Format("2006-01-02T15:04:05.000000000Z"), sum.Start)
	require.Equal(t, stop.UTC().Format("2006-01-02T15:04:05.000000000Z"), sum.End)
	require.Len(t, sum.Series, 2)

	res = runAgent(t, dir, nil, "--plugins", "csv,kwollect-input", "fetch", "--job-id", "777", "--from", "now")
	require.Equal(t, 2, res.code)
	res = runAgent(t, dir, nil, "--plugins", "csv,kwollect-input", "fetch", "--from", "yesterday", "--to", "now")
	require.Equal(t, 2, res.code)
	require.Contains(t, res.stderr, "invalid time")
}

// TestKwollectMetrics lists what a node offers, from its cluster's catalogue.
func TestKwollectMetrics(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "0s")
	res := runAgent(t, t.TempDir(), nil, "kwollect", "metrics", "--site", "lyon", "--node", "taurus-7", "--api-url", api)
	require.Equal(t, 0, res.code, res.stderr)
	require.Regexp(t, `(?m)^wattmetre_power_watt\s+1s\s+20ms\s+Power consumption of node reported by wattmetre`, res.stdout)
	require.Regexp(t, `(?m)^bmc_node_power_watthour_total\s+on demand\s+5s\s`, res.stdout)
	res = runAgent(t, t.TempDir(), nil, "kwollect", "metrics", "--site", "nancy", "--node", "gros-1", "--api-url", api)
	require.Equal(t, 0, res.code, res.stderr)
	require.NotContains(t, res.stdout, "wattmetre_power_watt", "only gros-41…76 have a wattmeter")
	res = runAgent(t, t.TempDir(), nil, "kwollect", "metrics", "--site", "nowhere", "--node", "x-1", "--api-url", api)
	require.Equal(t, 1, res.code)
	require.Contains(t, res.stderr, "404")
}
