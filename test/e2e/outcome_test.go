package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/testkit"
)

// outcomeConfig is a kwollect-input section for nodes on lyon.
func outcomeConfig(api, nodes, extra string) string {
	return fmt.Sprintf("[plugins.kwollect-input]\nsite = \"lyon\"\nhostname = %q\nmetrics = \"wattmetre_power_watt\"\napi_url = %q\n%s", nodes, api, extra)
}

var resumeLine = regexp.MustCompile(`(?m)^  (\S*alumet-agent .* fetch --from \S+ --to \S+)$`)

// TestOutcomes: every requested series ends complete, partial or empty,
// said in the last lines of the log; exit code 3 when one is not complete,
// with the command that fetches the window later.
func TestOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		emulator []string
		nodes    string
		extra    string
		command  []string
		code     int
		want     []string // in the log
		rows     map[string]bool
	}{
		{
			name:     "a node without data, pre-flight off",
			emulator: []string{"--lag", "1s", "--gap", "nodes=taurus-8;start=-1h"},
			nodes:    "taurus-7,taurus-8", extra: "preflight = false\nfetch_timeout = \"60s\"\n",
			command: []string{"sleep", "2"}, code: 3,
			want: []string{"Measurement INCOMPLETE: 1 of 2 series are not complete (1 empty, 1 complete)",
				"taurus-8/wattmetre_power_watt: EMPTY, no sample: the meter is down: no sample in the window nor in the 10m0s before it, and none came in",
				"of waiting while taurus-7, on the same site, is up to date",
				"(it helps only once the cause above is fixed)", "Exit code 3"},
			rows: map[string]bool{"taurus-7": true},
		},
		{
			name:     "a meter that stops during the run",
			emulator: []string{"--lag", "1s", "--gap", "nodes=taurus-8;start=+4s"},
			nodes:    "taurus-7,taurus-8", extra: "preflight = false\nfetch_timeout = \"4s\"\n",
			command: []string{"sleep", "7"}, code: 3,
			want: []string{"1 partial, 1 complete", "taurus-8/wattmetre_power_watt: PARTIAL", "% covered", "missing [",
				"Kwollect is behind by more than fetch_timeout (4s), or the meter stopped"},
			rows: map[string]bool{"taurus-7": true, "taurus-8": true},
		},
		{
			name:     "the command's failure wins",
			emulator: []string{"--lag", "1s", "--gap", "nodes=taurus-8;start=-1h"},
			nodes:    "taurus-7,taurus-8", extra: "preflight = false\nfetch_timeout = \"2s\"\n",
			command: []string{"sh", "-c", "sleep 1; exit 5"}, code: 5,
			want: []string{"Measurement INCOMPLETE"},
			rows: map[string]bool{"taurus-7": true},
		},
		{
			name:     "complete",
			emulator: []string{"--lag", "1s"},
			nodes:    "taurus-7,taurus-8", extra: "",
			command: []string{"sleep", "1"}, code: 0,
			want: []string{"All plugins stopped, all data written.", "Measurement complete: 2 series, every one covers its whole window."},
			rows: map[string]bool{"taurus-7": true, "taurus-8": true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api := startEmulator(t, tt.emulator...)
			dir := t.TempDir()
			writeConfig(t, dir, outcomeConfig(api, tt.nodes, tt.extra))
			args := append([]string{"--output-file", "out.csv", "--plugins", "csv,kwollect-input", "exec", "--"}, tt.command...)
			res := runAgent(t, dir, nil, args...)
			require.Equal(t, tt.code, res.code, res.stderr)
			for _, w := range tt.want {
				require.Contains(t, res.stderr, w)
			}
			got := map[string]bool{}
			for _, l := range readLines(t, filepath.Join(dir, "out.csv"))[1:] {
				got[strings.Split(l, ";")[4]] = true
			}
			require.Equal(t, tt.rows, got)
			if tt.code != 0 {
				require.Regexp(t, resumeLine, res.stderr, "the command that fetches the window later")
				require.NotContains(t, res.stderr, "all data written")
			} else {
				require.NotRegexp(t, resumeLine, res.stderr)
			}
		})
	}
}

// TestLagOfMinutesIsWaitedFor: with Kwollect 20 s behind (beyond the old
// hidden 15 s rule), the agent waits, says how far behind Kwollect is,
// gets every row and exits 0.
func TestLagIsWaitedFor(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "20s")
	dir := t.TempDir()
	writeConfig(t, dir, outcomeConfig(api, "taurus-7", ""))
	res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "exec", "--", "sleep", "2")
	require.Equal(t, 0, res.code, res.stderr)
	require.Regexp(t, `taurus-7: Kwollect is \d+ s behind, waiting \(at most .* more, fetch_timeout\)`, res.stderr)
	require.Regexp(t, `Measurement complete: taurus-7/wattmetre_power_watt covers the whole window \(\d+ samples\)\. Kwollect was behind by at most: taurus-7 (19|2\d) s\.`, res.stderr)
	checkCSV(t, filepath.Join(dir, "out.csv"), res.stderr, 3)
}

// TestResumeCommandFetchesTheRest: the printed command, run once Kwollect
// has caught up, fetches the whole window into a file of its own.
func TestResumeCommandFetchesTheRest(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "8s")
	dir := t.TempDir()
	writeConfig(t, dir, outcomeConfig(api, "taurus-7", "fetch_timeout = \"1s\"\n"))
	res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "exec", "--", "sleep", "2")
	require.Equal(t, 3, res.code, res.stderr)
	require.Contains(t, res.stderr, "taurus-7/wattmetre_power_watt: EMPTY, no sample: Kwollect is")
	m := resumeLine.FindStringSubmatch(res.stderr)
	require.NotNil(t, m, res.stderr)
	args := shellSplit(t, m[1])
	require.Equal(t, filepath.Join(binDir, "alumet-agent"), args[0], "the binary that ran, not on $PATH")
	require.Contains(t, args, filepath.Join(dir, "out-refetch.csv"))
	time.Sleep(10 * time.Second) // Kwollect catches up
	again := runAgent(t, t.TempDir(), nil, args[1:]...)
	require.Equal(t, 0, again.code, again.stderr)
	checkCSV(t, filepath.Join(dir, "out-refetch.csv"), res.stderr, 3)
}

// TestPeriodWithoutCatalogue: a 5 s BMC series whose cluster catalogue
// cannot be read is complete as soon as its last sample is within 5 s of
// the end (its period is learnt from the rows before the window), not
// waited for until fetch_timeout.
func TestPeriodWithoutCatalogue(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s")
	target, err := url.Parse(api)
	require.NoError(t, err)
	// A stand-in that serves Kwollect's data but no reference documents.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/metrics") {
			http.Error(w, "404 Cannot find resource "+r.URL.Path, http.StatusNotFound)
			return
		}
		resp, err := http.Get(target.Scheme + "://" + target.Host + r.URL.RequestURI())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(proxy.Close)
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf("[plugins.kwollect-input]\nsite = \"lyon\"\nhostname = \"taurus-7\"\nmetrics = \"bmc_node_power_watt\"\npreflight = false\nfetch_timeout = \"40s\"\napi_url = %q\n", proxy.URL+"/stable"))
	// A 6 s window holds at least one 5 s sample: complete.
	start := time.Now()
	res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "exec", "--", "sleep", "6")
	require.Equal(t, 0, res.code, res.stderr)
	require.Less(t, time.Since(start), 30*time.Second, "not waited for until fetch_timeout:\n%s", res.stderr)
	require.Contains(t, res.stderr, "Measurement complete")
	require.NotEmpty(t, csvRows(t, filepath.Join(dir, "out.csv")))

	// A 1 s window usually holds none: empty as soon as the next sample
	// shows, never "complete" with no sample.
	for range 3 {
		start := time.Now()
		res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "exec", "--", "sleep", "1")
		require.Less(t, time.Since(start), 30*time.Second, "not waited for until fetch_timeout:\n%s", res.stderr)
		if res.code == 0 {
			require.Contains(t, res.stderr, "covers the whole window (1 samples)")
			continue
		}
		require.Equal(t, 3, res.code, res.stderr)
		require.Contains(t, res.stderr, "taurus-7/bmc_node_power_watt: EMPTY, no sample: no sample falls in the window: the series samples every 5.0 s")
		require.NotContains(t, res.stderr, "Measurement complete")
	}
}

// shellSplit splits a POSIX shell command line with single quotes (as the
// agent quotes it).
func shellSplit(t *testing.T, line string) []string {
	t.Helper()
	var out []string
	var cur strings.Builder
	inWord, quoted := false, false
	for _, r := range line {
		switch {
		case quoted && r == '\'':
			quoted = false
		case quoted:
			cur.WriteRune(r)
		case r == '\'':
			quoted, inWord = true, true
		case r == ' ':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		case r == '\\' || r == '"':
			t.Fatalf("unexpected %q in %s", r, line)
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	require.False(t, quoted, "unterminated quote in %s", line)
	if inWord {
		out = append(out, cur.String())
	}
	return out
}

// TestOutcomesInEveryMode: fetch of a past window, run mode and the
// energy summary say the same outcomes, with exit code 3.
func TestOutcomesInEveryMode(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s", "--gap", "nodes=taurus-8;start=-2h")
	dir := t.TempDir()
	writeConfig(t, dir, outcomeConfig(api, "taurus-7,taurus-8", "preflight = false\nfetch_timeout = \"3s\"\npoll_interval = \"1s\"\n")+
		"\n[plugins.energy-report]\nsummary_file = \"energy.json\"\nplot_file = \"\"\n")

	t.Run("fetch", func(t *testing.T) {
		res := runAgent(t, dir, nil, "--output-file", "fetch.csv", "--plugins", "csv,kwollect-input,energy-report",
			"fetch", "--from", "now-10m", "--to", "now-9m")
		require.Equal(t, 3, res.code, res.stderr)
		require.Contains(t, res.stderr, "taurus-8/wattmetre_power_watt: EMPTY, no sample")
		require.Regexp(t, resumeLine, res.stderr)
		s := readEnergySummary(t, filepath.Join(dir, "energy.json"))
		require.Len(t, s.Series, 2, "the empty series has its row")
		byNode := map[string]int{}
		for i, sr := range s.Series {
			byNode[sr.Node] = i
		}
		dead, live := s.Series[byNode["taurus-8"]], s.Series[byNode["taurus-7"]]
		require.Equal(t, "empty", *dead.Outcome)
		require.NotNil(t, dead.OutcomeReason)
		require.Nil(t, dead.EnergyJ)
		require.Equal(t, "complete", *live.Outcome)
		require.Nil(t, live.OutcomeReason)
		require.Len(t, s.Warnings, 1)
		require.Contains(t, s.Warnings[0], "1 of 2 series are not complete (taurus-8/wattmetre_power_watt EMPTY)")
	})

	t.Run("run", func(t *testing.T) {
		cmd := agentCmd(dir, nil, "--output-file", "run.csv", "--plugins", "csv,kwollect-input")
		var stderr testkit.LockedBuffer
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Start())
		require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "Plugin startup complete.") }, 20*time.Second, 20*time.Millisecond)
		time.Sleep(3 * time.Second)
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		err := cmd.Wait()
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee, stderr.String())
		require.Equal(t, 3, ee.ExitCode(), stderr.String())
		require.Contains(t, stderr.String(), "taurus-8/wattmetre_power_watt: EMPTY, no sample")
		require.Contains(t, stderr.String(), "Exit code 3")
	})
}

// TestAPIDownIsShortAndTrue: with every query failing and no pre-flight,
// each failed attempt is one short line, nothing claims that anything was
// written, and the outcome says the queries failed.
func TestAPIDownIsShortAndTrue(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s", "--fault", "kind=503;p=1")
	dir := t.TempDir()
	writeConfig(t, dir, outcomeConfig(api, "taurus-7,taurus-8", "preflight = false\nfetch_timeout = \"2s\"\n"))
	res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "exec", "--", "true")
	require.Equal(t, 3, res.code, res.stderr)
	retries := 0
	for _, l := range strings.Split(res.stderr, "\n") {
		if strings.Contains(l, "WARN") {
			require.Less(t, len(l), 200, "a short line: %s", l)
		}
		if strings.Contains(l, "Kwollect query failed (attempt") {
			retries++
			require.Contains(t, l, "HTTP 503 Service Unavailable")
		}
	}
	// Retried until the fetch's budget (fetch_timeout 2 s) ran out.
	require.GreaterOrEqual(t, retries, 3)
	require.Equal(t, 1, strings.Count(res.stderr, "API request should be triggered with URL: "), "the URL line once for the window")
	require.NotContains(t, res.stderr, "everything else was written")
	require.NotContains(t, res.stderr, "all data written")
	require.Contains(t, res.stderr, "nothing was fetched")
	require.Contains(t, res.stderr, "Measurement INCOMPLETE: 2 of 2 series are not complete (2 failed)")
	require.Contains(t, res.stderr, "taurus-7/wattmetre_power_watt: FAILED: its queries failed (HTTP 503 Service Unavailable) until the time budget of 2.0 s ran out (fetch_timeout)")
	_, err := os.Stat(filepath.Join(dir, "out.csv"))
	require.True(t, os.IsNotExist(err), "no empty CSV")
}

// TestStoppedMeterNotWaitedFor: a meter that stopped long before the end
// of a recent window, while another node of its site is up to date, is
// judged stopped without waiting for fetch_timeout.
func TestStoppedMeterNotWaitedFor(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s", "--gap", "nodes=taurus-8;start=-40s")
	dir := t.TempDir()
	writeConfig(t, dir, outcomeConfig(api, "taurus-7,taurus-8", "fetch_timeout = \"90s\"\n"))
	start := time.Now()
	res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "fetch", "--from", "now-60s", "--to", "now-5s")
	require.Equal(t, 3, res.code, res.stderr)
	require.Regexp(t, `taurus-8/wattmetre_power_watt: PARTIAL, \d+\.\d % covered, \d+ samples, missing \[.*\]: the meter stopped: no sample after \S+, and none came in \d+ s of waiting while taurus-7, on the same site, is up to date`, res.stderr)
	require.Less(t, time.Since(start), 60*time.Second, "not waited for until fetch_timeout")
}

// TestLogFilterKeepsTheVerdict: a RUST_LOG that hides the agent's lines
// hides its verdict too, as env_logger would, but the exit code and the CSV
// still tell an incomplete measurement.
func TestLogFilterKeepsTheVerdict(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s", "--gap", "nodes=taurus-8;start=-1h")
	tests := []struct {
		rustLog string
		target  string // the only target printed ("" none)
	}{
		{"plugin_kwollect_input=debug", "plugin_kwollect_input"},
		{"off", ""},
	}
	for _, tt := range tests {
		t.Run(tt.rustLog, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeConfig(t, dir, outcomeConfig(api, "taurus-7,taurus-8", "preflight = false\nfetch_timeout = \"2s\"\n"))
			res := runAgent(t, dir, []string{"RUST_LOG=" + tt.rustLog},
				"--output-file", "out.csv", "--plugins", "csv,kwollect-input", "exec", "--", "sleep", "1")
			require.Equal(t, 3, res.code, res.stderr)
			targets := regexp.MustCompile(`(?m)^\[\S+ [A-Z]+ +(\S+)\] `).FindAllStringSubmatch(res.stderr, -1)
			for _, m := range targets {
				require.Equal(t, tt.target, m[1], res.stderr)
			}
			if tt.target == "" {
				require.Empty(t, targets, res.stderr)
			} else {
				require.Contains(t, res.stderr, "DEBUG plugin_kwollect_input]")
			}
			require.NotContains(t, res.stderr, "Measurement INCOMPLETE")
			lines := readLines(t, filepath.Join(dir, "out.csv"))
			require.Greater(t, len(lines), 1, "the rows fetched are written")
		})
	}
}

// TestFetchSettledWindowEmpty: an on-demand metric of a node outside any
// monitor job has no row in a window that ended long ago: fetch says
// EMPTY without waiting for it until fetch_timeout (Kwollect has long
// ingested such a window).
func TestFetchSettledWindowEmpty(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s")
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf("[plugins.kwollect-input]\nsite = \"lyon\"\nhostname = \"orion-4\"\nmetrics = [\"wattmetre_power_watt\", \"bmc_node_power_watthour_total\"]\napi_url = %q\n", api))
	start := time.Now()
	res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "fetch", "--from", "now-15m", "--to", "now-14m")
	require.Less(t, time.Since(start), 30*time.Second, "not waited for until fetch_timeout:\n%s", res.stderr)
	require.Equal(t, 3, res.code, res.stderr)
	require.Contains(t, res.stderr, "orion-4/bmc_node_power_watthour_total: EMPTY, no sample: no data from Kwollect in the window: on-demand metric")
	require.NotEmpty(t, csvRows(t, filepath.Join(dir, "out.csv")), "the wattmetre's rows are written")
}

// TestEdgeReadingsOff: edge_readings = false reads nothing around the
// window: no history, no wait after the command.
func TestEdgeReadingsOff(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s")
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf("[plugins.kwollect-input]\nsite = \"lyon\"\nhostname = \"taurus-7\"\nmetrics = [\"wattmetre_power_watt\", \"bmc_node_power_watt\"]\napi_url = %q\n", api))
	// A 1 s window may hold no 5 s BMC sample: EMPTY (exit 3) is fine here.
	res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "exec", "--", "sleep", "1")
	require.Contains(t, []int{0, 3}, res.code, res.stderr)
	require.Contains(t, res.stderr, "rows of history fetched for the readings just before the run")
	require.Contains(t, res.stderr, "for the readings just after the window")

	res = runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "--config-override", "plugins.kwollect-input.edge_readings=false", "exec", "--", "sleep", "1")
	require.Contains(t, []int{0, 3}, res.code, res.stderr)
	require.NotContains(t, res.stderr, "readings just")
	require.NotContains(t, res.stderr, "Waiting")
}

// TestCounterWithoutEnergyDoubtful: without the readings around the
// window, an 8 s window holds at most two readings of a BMC's watt-hour
// counter (every 5 s, integer Wh: no two steps): kwollect-input fetched
// all of them (complete), energy-report has no energy for it, and the
// last line says so (a WARN, not "Measurement complete" alone).
func TestCounterWithoutEnergyDoubtful(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s", "--monitor", "taurus-7")
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf("[plugins.kwollect-input]\nsite = \"lyon\"\nhostname = \"taurus-7\"\nmetrics = [\"wattmetre_power_watt\", \"bmc_node_power_watthour_total\"]\napi_url = %q\nedge_readings = false\n\n[plugins.energy-report]\nsummary_file = \"energy.json\"\n", api))
	res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input,energy-report", "fetch", "--from", "now-3m", "--to", "now-172s")
	require.Equal(t, 0, res.code, res.stderr)
	lines := strings.Split(strings.TrimRight(res.stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	require.Contains(t, last, "WARN  alumet_agent] Measurement complete: 2 series")
	require.Contains(t, last, "But a result is doubtful: energy-report: taurus-7/bmc_node_power_watthour_total has no energy although")
	require.Contains(t, last, "between two of its steps")
	var sum struct {
		Warnings []string `json:"warnings"`
		Series   []struct {
			Metric string   `json:"metric"`
			Energy *float64 `json:"energy_j"`
		} `json:"series"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "energy.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &sum))
	require.Len(t, sum.Series, 2)
	for _, s := range sum.Series {
		require.Equal(t, s.Metric == "wattmetre_power_watt", s.Energy != nil, s.Metric)
	}
	require.Len(t, sum.Warnings, 1)
	require.Contains(t, sum.Warnings[0], "bmc_node_power_watthour_total has no energy")
}
