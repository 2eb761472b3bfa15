package e2e

// The chaos suite (issue 10, item 8): the emulator black-holed, stalled in
// the middle of a body or failing a quarter of its requests, and every
// signal at every phase of every command. Each case asserts that the agent
// ends within a generous limit (far above its documented bound: it proves
// that it ends), its exit code, whole CSV lines, that no row is lost or
// duplicated of what was fetched (against the emulator's ground truth), the
// resume command when the data is incomplete, and that no process is left.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
)

// chaosEmu is a kwollect-emulator started with its control endpoint.
type chaosEmu struct {
	api   string // the API base, …/stable
	base  string // http://127.0.0.1:PORT
	token string // the control endpoint's bearer token
}

// startControlledEmulator is startEmulator with --control: it also keeps
// the control token printed on the start line.
func startControlledEmulator(t *testing.T, args ...string) chaosEmu {
	t.Helper()
	p := startEmulatorProcess(t, append([]string{"--control", "--quiet"}, args...)...)
	e := chaosEmu{api: p.URL, base: p.Base, token: p.Token}
	require.NotEmpty(t, e.token, "no control token on the emulator's start line")
	return e
}

// control sends a request to the control endpoint and returns the body.
func (e chaosEmu) control(t *testing.T, method, path, body string) []byte {
	t.Helper()
	req, err := http.NewRequest(method, e.base+"/_emulator/"+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Less(t, resp.StatusCode, 300, "%s %s: %s", method, path, b)
	return b
}

// blackhole turns the whole API into a black hole, or back.
func (e chaosEmu) blackhole(t *testing.T, on bool) {
	t.Helper()
	e.control(t, http.MethodPut, "blackhole", fmt.Sprintf(`{"blackhole": %t}`, on))
}

// heal lifts the black hole and every fault rule.
func (e chaosEmu) heal(t *testing.T) {
	t.Helper()
	e.blackhole(t, false)
	e.control(t, http.MethodDelete, "faults", "")
}

// waitHeld waits until the emulator holds a request unanswered (black
// hole, stall): the agent is then waiting on it.
func (e chaosEmu) waitHeld(t *testing.T, within time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool {
		var s struct {
			Held int `json:"held"`
		}
		require.NoError(t, json.Unmarshal(e.control(t, http.MethodGet, "stats", ""), &s))
		return s.Held > 0
	}, within, 20*time.Millisecond, "the emulator never held a request")
}

// faults returns how many faults the emulator injected, by kind.
func (e chaosEmu) faults(t *testing.T) (int, map[string]int) {
	t.Helper()
	var s struct {
		Faults int            `json:"faults"`
		ByKind map[string]int `json:"faults_by_kind"`
	}
	require.NoError(t, json.Unmarshal(e.control(t, http.MethodGet, "stats", ""), &s))
	return s.Faults, s.ByKind
}

// faultsPerQuarter is a mix of faults on 25 % of the metrics requests
// (1 − 0.952⁶ ≈ 0.255): 5xx, 429, resets, truncated bodies, a stall that
// resumes after a pause, a slow first byte.
var faultsPerQuarter = []string{
	"--fault", "kind=503;p=0.048",
	"--fault", "kind=429;p=0.048;retry-after=0",
	"--fault", "kind=reset;p=0.048",
	"--fault", "kind=truncate;p=0.048;rows=3",
	"--fault", "kind=stall;p=0.048;rows=2;pause=1500ms",
	"--fault", "kind=slow-first-byte;p=0.048;delay=700ms",
}

// processesIn lists the live processes whose working directory is dir:
// the agent and whatever it started run there.
func processesIn(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var pids []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd")); err == nil && cwd == dir {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// waitCSVRows waits until the CSV at path holds at least n whole data rows.
func waitCSVRows(t *testing.T, path string, n int, within time.Duration, log *testkit.LockedBuffer) {
	t.Helper()
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(path)
		return err == nil && strings.Count(string(b), "\n") > n
	}, within, 10*time.Millisecond, "waiting for %d rows in %s:\n%s", n, path, log)
}

var resumeBounds = regexp.MustCompile(`fetch --from (\S+) --to (\S+)$`)

// resume returns the resume command the log prints (its arguments, the
// binary first) and its window.
func resume(t *testing.T, log string) (args []string, from, to time.Time) {
	t.Helper()
	m := resumeLine.FindStringSubmatch(log)
	require.NotNil(t, m, "no resume command in the log:\n%s", log)
	b := resumeBounds.FindStringSubmatch(m[1])
	require.NotNil(t, b, m[1])
	return shellSplit(t, m[1]), epoch(t, b[1]), epoch(t, b[2])
}

// runResume heals the API, runs the resume command the log prints and
// checks that what the agent wrote, with what the command fetches, is the
// emulator's data from start to the end of the resumed window: nothing
// lost, and nothing the first run wrote is outside of it.
func runResume(t *testing.T, emu chaosEmu, log, out string, groups []siteNodes, metrics []string, start time.Time) {
	t.Helper()
	args, from, to := resume(t, log)
	require.Equal(t, filepath.Join(binDir, "alumet-agent"), args[0])
	require.False(t, from.After(to), "resume window [%v, %v]", from, to)
	t.Logf("resume window: from %+.3fs to %+.3fs of the first query's start", from.Sub(start).Seconds(), to.Sub(start).Seconds())
	emu.heal(t)
	res := runAgent(t, t.TempDir(), nil, args[1:]...)
	require.Equal(t, 0, res.code, "the resume command:\n%s", res.stderr)
	refetch := strings.TrimSuffix(out, ".csv") + "-refetch.csv"
	require.Contains(t, args, refetch, "the resume command writes a file of its own")
	union := map[string]bool{}
	for _, r := range csvRows(t, refetch) {
		union[r] = true
	}
	if _, err := os.Stat(out); err == nil {
		requireWholeLines(t, out)
		for _, r := range csvRows(t, out) {
			union[r] = true
		}
	}
	if from.Before(start) {
		start = from
	}
	want := expectedRows(t, emulator.Config{}, groups, metrics, start, to)
	got := make([]string, 0, len(union))
	for r := range union {
		got = append(got, r)
	}
	slices.Sort(got)
	require.Empty(t, cmp.Diff(want, got), "the first run and its resume command together hold [%v, %v]", start, to)
}

// rowTime is the timestamp of a CSV row.
func rowTime(t *testing.T, row string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, strings.Split(row, ";")[1])
	require.NoError(t, err, row)
	return ts
}

// requireRows checks the CSV at path against the emulator's data from
// start: up to end when end is set (the whole window), else up to its last
// row (what was fetched: no hole inside it). It checks the whole lines and
// that no row is duplicated. A missing CSV holds no row.
func requireRows(t *testing.T, path string, groups []siteNodes, start, end time.Time) {
	t.Helper()
	if _, err := os.Stat(path); os.IsNotExist(err) && end.IsZero() {
		return
	}
	requireWholeLines(t, path)
	rows := csvRows(t, path)
	if end.IsZero() {
		require.NotEmpty(t, rows)
		end = rowTime(t, rows[len(rows)-1])
		for _, r := range rows {
			if ts := rowTime(t, r); ts.After(end) {
				end = ts
			}
		}
	}
	want := expectedRows(t, emulator.Config{}, groups, []string{"wattmetre_power_watt"}, start, end)
	require.Empty(t, cmp.Diff(want, rows), "rows of [%v, %v]: none lost, none duplicated", start, end)
}

// chaosCase is one (command, phase, signal) of TestChaosSignals.
type chaosCase struct {
	name  string
	sig   syscall.Signal
	dup   bool     // the signal is delivered twice within a few ms (GNU timeout): it counts once
	emu   []string // emulator flags
	extra string   // config lines
	args  []string // after the global flags; "PID" is the watched process
	// phase brings the agent to the phase under test; the signal follows.
	phase func(t *testing.T, r *chaosRun)
	code  int
	limit time.Duration // it ends within this after the signal
	logs  []string
	// data: "none" (no CSV), "complete" (the whole window), "fetched" (what
	// was fetched, in whole lines, no hole, no duplicate).
	data    string
	resume  bool   // the log prints the resume command
	refetch bool   // run it, once the API is healed: the union is the ground truth
	marker  string // a file the command would create: it must not exist
	sleeper string // the `sleep` argument of the command's process: none is left
	bug     string // a known agent bug this case shows: skipped, with it as the reason
}

// chaosRun is a running case.
type chaosRun struct {
	emu    chaosEmu
	dir    string
	cmd    *exec.Cmd
	stderr *testkit.LockedBuffer
}

func (r *chaosRun) signal(t *testing.T, sig syscall.Signal, dup bool) {
	t.Helper()
	require.NoError(t, r.cmd.Process.Signal(sig))
	if dup {
		require.NoError(t, r.cmd.Process.Signal(sig))
	}
}

// Phases.

// held: the emulator holds the agent's request (black hole).
func held(t *testing.T, r *chaosRun) { r.emu.waitHeld(t, 30*time.Second) }

// logThenBlackhole: once the log says s, the API becomes a black hole and
// the agent waits on it.
func logThenBlackhole(s string) func(t *testing.T, r *chaosRun) {
	return func(t *testing.T, r *chaosRun) {
		waitLog(t, r.stderr, s, 60*time.Second)
		r.emu.blackhole(t, true)
		r.emu.waitHeld(t, 30*time.Second)
	}
}

// polled: run mode has written n rows (a few polls).
func polled(n int) func(t *testing.T, r *chaosRun) {
	return func(t *testing.T, r *chaosRun) {
		waitCSVRows(t, filepath.Join(r.dir, "out.csv"), n, 60*time.Second, r.stderr)
	}
}

// firstSignalThenBlackhole: the first signal (sig) ends the measurement of
// watch or run; the API then becomes a black hole and the final fetch waits
// on it.
func firstSignalThenBlackhole(sig syscall.Signal, after string) func(t *testing.T, r *chaosRun) {
	return func(t *testing.T, r *chaosRun) {
		waitLog(t, r.stderr, after, 60*time.Second)
		r.emu.blackhole(t, true)
		r.signal(t, sig, false)
		r.emu.waitHeld(t, 30*time.Second)
	}
}

func logged(s string) func(t *testing.T, r *chaosRun) {
	return func(t *testing.T, r *chaosRun) { waitLog(t, r.stderr, s, 60*time.Second) }
}

func sleeping(arg string) func(t *testing.T, r *chaosRun) {
	return func(t *testing.T, r *chaosRun) {
		require.Eventually(t, func() bool { return len(processesWith(t, "sleep", arg)) == 1 }, 60*time.Second, 10*time.Millisecond, r.stderr)
	}
}

// rowsWritten: the first query's rows are in the CSV (the tail is awaited).
func rowsWritten(n int) func(t *testing.T, r *chaosRun) {
	return func(t *testing.T, r *chaosRun) {
		waitCSVRows(t, filepath.Join(r.dir, "out.csv"), n, 60*time.Second, r.stderr)
	}
}

const (
	cutNote     = " received: no more waiting nor retrying"
	startNote   = " received while starting: stopping."
	preNote     = " received before the command started: not starting it."
	forwardNote = " received: forwarding it to the command's process group"
)

// TestChaosSignals: SIGINT, SIGTERM and SIGHUP at every phase of every
// command, with the API black-holed, stalled or lagging.
func TestChaosSignals(t *testing.T) {
	t.Parallel()
	tests := []chaosCase{
		// exec
		{
			name: "exec/start-up/SIGINT", sig: syscall.SIGINT, emu: []string{"--lag", "1s", "--blackhole"},
			args:  []string{"exec", "--", "sh", "-c", "touch ran"},
			phase: held, code: 130, limit: 15 * time.Second, logs: []string{"SIGINT" + startNote},
			data: "none", marker: "ran",
		},
		{
			name: "exec/pre-flight/SIGTERM", sig: syscall.SIGTERM, emu: []string{"--lag", "1s", "--fault", "kind=blackhole"},
			args:  []string{"exec", "--", "sh", "-c", "touch ran"},
			phase: held, code: 143, limit: 15 * time.Second, logs: []string{"SIGTERM" + preNote},
			data: "none", marker: "ran",
		},
		{
			name: "exec/command/SIGINT", sig: syscall.SIGINT, emu: []string{"--lag", "1s"},
			args:  []string{"exec", "--", "sh", "-c", "sleep 3010; touch ran"},
			phase: sleeping("3010"), code: 130, limit: 60 * time.Second,
			logs: []string{"SIGINT" + forwardNote, "Child process exited with signal: 2 (SIGINT)", "Measurement complete"},
			data: "complete", marker: "ran", sleeper: "3010",
		},
		{
			name: "exec/command/SIGTERM twice", sig: syscall.SIGTERM, dup: true, emu: []string{"--lag", "1s"},
			args:  []string{"exec", "--", "sh", "-c", "sleep 3011; touch ran"},
			phase: sleeping("3011"), code: 143, limit: 60 * time.Second,
			logs: []string{"SIGTERM" + forwardNote, "Child process exited with signal: 15 (SIGTERM)", "Measurement complete"},
			data: "complete", marker: "ran", sleeper: "3011",
		},
		{
			name: "exec/command traps SIGHUP", sig: syscall.SIGHUP, emu: []string{"--lag", "1s"},
			args:  []string{"exec", "--", "sh", "-c", "trap 'exit 7' HUP; sleep 3012 & wait"},
			phase: sleeping("3012"), code: 7, limit: 60 * time.Second,
			logs: []string{"SIGHUP" + forwardNote, "exit status: 7", "Measurement complete"},
			data: "complete", sleeper: "3012",
		},
		{
			name: "exec/final fetch/SIGHUP", sig: syscall.SIGHUP, emu: []string{"--lag", "3s"},
			args:  []string{"exec", "--", "sh", "-c", "sleep 2"},
			phase: logThenBlackhole("Child process exited"), code: 129, limit: 20 * time.Second,
			logs: []string{"SIGHUP" + cutNote, "The fetch was cut short by SIGHUP: exiting with 129."},
			data: "fetched", resume: true, refetch: true,
		},
		{
			name: "exec/tail wait/SIGINT", sig: syscall.SIGINT, emu: []string{"--lag", "5s"}, extra: "fetch_timeout = \"60s\"\n",
			args:  []string{"exec", "--", "sh", "-c", "sleep 7"},
			phase: rowsWritten(1), code: 130, limit: 20 * time.Second,
			logs: []string{"SIGINT" + cutNote, "PARTIAL", "cut short (interrupted by SIGINT)"},
			data: "fetched", resume: true, refetch: true,
		},
		// watch
		{
			name: "watch/start-up/SIGTERM", sig: syscall.SIGTERM, emu: []string{"--lag", "1s", "--blackhole"},
			args: []string{"watch", "PID"}, phase: held, code: 143, limit: 15 * time.Second,
			logs: []string{"SIGTERM" + startNote}, data: "none",
		},
		{
			name: "watch/measuring/SIGHUP twice", sig: syscall.SIGHUP, dup: true, emu: []string{"--lag", "1s"},
			args: []string{"watch", "PID"}, phase: logged("Plugin startup complete."), code: 0, limit: 60 * time.Second,
			logs: []string{"SIGHUP received: ending the measurement of process", "Measurement complete"}, data: "complete",
		},
		{
			name: "watch/final fetch/SIGINT", sig: syscall.SIGINT, emu: []string{"--lag", "3s"},
			args:  []string{"watch", "PID"},
			phase: firstSignalThenBlackhole(syscall.SIGTERM, "Plugin startup complete."), code: 130, limit: 20 * time.Second,
			logs: []string{"SIGTERM received: ending the measurement", "SIGINT" + cutNote, "The fetch was cut short by SIGINT: exiting with 130."},
			data: "fetched", resume: true, refetch: true,
		},
		// run
		{
			name: "run/start-up/SIGHUP", sig: syscall.SIGHUP, emu: []string{"--lag", "1s", "--blackhole"},
			args: []string{"run"}, phase: held, code: 129, limit: 15 * time.Second,
			logs: []string{"SIGHUP" + startNote}, data: "none",
		},
		{
			name: "run/measuring/SIGINT", sig: syscall.SIGINT, emu: []string{"--lag", "1s"}, extra: "poll_interval = \"1s\"\n",
			args: []string{"run"}, phase: polled(2), code: 0, limit: 60 * time.Second,
			logs: []string{"Ctrl+C received, shutting down", "Measurement complete"}, data: "complete",
		},
		{
			name: "run/final fetch/SIGTERM twice", sig: syscall.SIGTERM, dup: true, emu: []string{"--lag", "1s"}, extra: "poll_interval = \"1s\"\n",
			args:  []string{"run"},
			phase: func(t *testing.T, r *chaosRun) { polled(2)(t, r); firstSignalThenBlackhole(syscall.SIGHUP, "")(t, r) },
			code:  143, limit: 20 * time.Second,
			logs: []string{"SIGHUP received, shutting down", "SIGTERM" + cutNote, "The fetch was cut short by SIGTERM: exiting with 143."},
			data: "fetched", resume: true, refetch: true,
		},
		// fetch
		{
			name: "fetch/start-up/SIGHUP", sig: syscall.SIGHUP, emu: []string{"--lag", "1s", "--blackhole"},
			args: []string{"fetch", "--from", "now-10m", "--to", "now-9m"}, phase: held, code: 129, limit: 15 * time.Second,
			logs: []string{"SIGHUP" + startNote}, data: "none",
		},
		{
			name: "fetch/hung query/SIGINT", sig: syscall.SIGINT, emu: []string{"--lag", "1s", "--fault", "kind=blackhole"},
			args: []string{"fetch", "--from", "now-10m", "--to", "now-9m"}, phase: held, code: 130, limit: 20 * time.Second,
			logs: []string{"SIGINT" + cutNote, "FAILED: the fetch was cut short (interrupted by SIGINT)"},
			data: "none", resume: true, refetch: true,
		},
		{
			name: "fetch/stall mid-body/SIGHUP", sig: syscall.SIGHUP, emu: []string{"--lag", "1s", "--fault", "kind=stall;rows=5"},
			args: []string{"fetch", "--from", "now-10m", "--to", "now-9m"}, phase: held, code: 129, limit: 20 * time.Second,
			logs: []string{"SIGHUP" + cutNote, "cut short (interrupted by SIGHUP)"},
			data: "fetched", resume: true, refetch: true,
		},
		{
			name: "fetch/tail wait/SIGTERM", sig: syscall.SIGTERM, emu: []string{"--lag", "60s"},
			args: []string{"fetch", "--from", "now-70s", "--to", "now"}, phase: rowsWritten(3), code: 143, limit: 20 * time.Second,
			logs: []string{"SIGTERM" + cutNote, "PARTIAL", "cut short (interrupted by SIGTERM)"},
			data: "fetched", resume: true,
		},
		// kwollect metrics
		{
			name: "kwollect metrics/black hole/SIGINT", sig: syscall.SIGINT, emu: []string{"--blackhole"},
			args: []string{"kwollect", "metrics", "--site", "lyon", "--node", "taurus-7"}, phase: held, code: 130, limit: 15 * time.Second,
			logs: []string{"SIGINT received: stopping."}, data: "none",
		},
		{
			name: "kwollect metrics/black hole/SIGTERM", sig: syscall.SIGTERM, emu: []string{"--blackhole"},
			args: []string{"kwollect", "metrics", "--site", "lyon", "--node", "taurus-7"}, phase: held, code: 143, limit: 15 * time.Second,
			logs: []string{"SIGTERM received: stopping."}, data: "none",
		},
		{
			name: "kwollect metrics/black hole/SIGHUP twice", sig: syscall.SIGHUP, dup: true, emu: []string{"--blackhole"},
			args: []string{"kwollect", "metrics", "--site", "lyon", "--node", "taurus-7"}, phase: held, code: 129, limit: 15 * time.Second,
			logs: []string{"SIGHUP received: stopping."}, data: "none",
		},
	}
	groups := []siteNodes{{"lyon", []string{"taurus-7"}}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.bug != "" {
				t.Skip("BUG: " + tt.bug)
			}
			t.Parallel()
			r := &chaosRun{emu: startControlledEmulator(t, tt.emu...), dir: t.TempDir()}
			writeConfig(t, r.dir, outcomeConfig(r.emu.api, "taurus-7", tt.extra))
			args := append([]string{"--output-file", "out.csv", "--plugins", "csv,kwollect-input"}, tt.args...)
			if i := slices.Index(args, "PID"); i >= 0 {
				watched := exec.Command("sleep", "3030")
				require.NoError(t, watched.Start())
				done := make(chan struct{})
				go func() { _ = watched.Wait(); close(done) }()
				t.Cleanup(func() { _ = watched.Process.Kill(); <-done })
				args[i] = strconv.Itoa(watched.Process.Pid)
			}
			r.cmd, r.stderr = startAgent(t, r.dir, args...)
			tt.phase(t, r)
			r.signal(t, tt.sig, tt.dup)
			sent := time.Now()
			code := waitExit(t, r.cmd, r.stderr, tt.limit)
			t.Logf("exit code %d, %v after the signal", code, time.Since(sent).Round(time.Millisecond))
			log := r.stderr.String()
			t.Cleanup(func() {
				if t.Failed() {
					t.Log(log)
				}
			})
			require.Equal(t, tt.code, code)
			for _, l := range tt.logs {
				require.Contains(t, log, l)
			}
			sigName := map[syscall.Signal]string{syscall.SIGINT: "SIGINT", syscall.SIGTERM: "SIGTERM", syscall.SIGHUP: "SIGHUP"}[tt.sig]
			if tt.dup {
				// Once: a second delivery would be forwarded again, cut the
				// fetch of watch, or be logged as a later signal.
				require.LessOrEqual(t, strings.Count(log, sigName+" received"), 1)
				require.NotContains(t, log, "already stopping")
			}
			require.NotContains(t, log, "panic")

			out := filepath.Join(r.dir, "out.csv")
			switch tt.data {
			case "none":
				_, err := os.Stat(out)
				require.True(t, os.IsNotExist(err), "nothing was fetched: no CSV")
			case "complete":
				start, end := fetchWindow(t, log)
				if tt.args[0] == "run" {
					end = time.Time{} // polls: up to the last row, the log says it is complete
				}
				requireRows(t, out, groups, start, end)
			case "fetched":
				if urlLine.MatchString(log) {
					start, _ := fetchWindow(t, log)
					requireRows(t, out, groups, start, time.Time{})
				}
			}
			if tt.resume {
				_, from, to := resume(t, log)
				require.True(t, from.Before(to))
				require.NotContains(t, log, "all data written")
				if tt.refetch {
					start := from
					if urlLine.MatchString(log) {
						start, _ = fetchWindow(t, log)
					}
					runResume(t, r.emu, log, out, groups, []string{"wattmetre_power_watt"}, start)
				}
			} else {
				require.NotRegexp(t, resumeLine, log)
			}
			if tt.marker != "" {
				_, err := os.Stat(filepath.Join(r.dir, tt.marker))
				require.True(t, os.IsNotExist(err), "the command must not have run to its end")
			}
			if tt.sleeper != "" {
				require.Empty(t, processesWith(t, "sleep", tt.sleeper), "a process of the command is left")
			}
			require.Empty(t, processesIn(t, r.dir), "a process is left in the agent's directory")
		})
	}
}

// nodesOf is taurus-1..taurus-n.
func nodesOf(n int) []string {
	var nodes []string
	for i := 1; i <= n; i++ {
		nodes = append(nodes, "taurus-"+strconv.Itoa(i))
	}
	return nodes
}

var retriedLine = regexp.MustCompile(`\d+ queries \(\d+ retried\)|Kwollect poll failed|Kwollect is back after [^.]*`)

// requireFaultOutcome: exit 0 with every row of [start, end] once, or an
// honest exit 3 (a fault exhausted the retries): the incomplete series
// listed, what was written in whole lines, none duplicated, none outside
// the ground truth, and the resume command, which fetches the rest.
func requireFaultOutcome(t *testing.T, emu chaosEmu, code int, log, out string, groups []siteNodes, start, end time.Time) {
	t.Helper()
	metrics := []string{"wattmetre_power_watt"}
	t.Logf("exit code %d; %s", code, strings.Join(retriedLine.FindAllString(log, -1), "; "))
	want := expectedRows(t, emulator.Config{}, groups, metrics, start, end)
	switch code {
	case 0:
		require.Contains(t, log, "Measurement complete")
		require.NotRegexp(t, resumeLine, log)
		requireWholeLines(t, out)
		require.Empty(t, cmp.Diff(want, csvRows(t, out)), "rows of [%v, %v]: none lost, none duplicated", start, end)
	case 3:
		require.Contains(t, log, "Measurement INCOMPLETE")
		require.Regexp(t, `(PARTIAL|EMPTY|FAILED)`, log)
		if _, err := os.Stat(out); err == nil {
			requireWholeLines(t, out)
			assertNoDuplicateLines(t, out)
			truth := map[string]bool{}
			for _, r := range want {
				truth[r] = true
			}
			for _, r := range csvRows(t, out) {
				if rowTime(t, r).After(end) {
					continue // run mode: rows after the last one checked
				}
				require.True(t, truth[r], "a row that is not the emulator's: %q", r)
			}
		}
		runResume(t, emu, log, out, groups, metrics, start)
	default:
		t.Fatalf("exit code %d, want 0 or 3", code)
	}
}

// TestChaosFaults: a quarter of the requests fail (5xx, 429, resets,
// truncated bodies, stalls that resume, slow first bytes) over an exec of a
// few seconds and the fetch of a past window of several nodes: every row
// once, or an honest exit 3 whose resume command fetches the rest.
func TestChaosFaults(t *testing.T) {
	t.Parallel()
	pastEnd := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	pastStart := pastEnd.Add(-30 * time.Minute)
	tests := []struct {
		name  string
		seed  string
		nodes int
		extra string
		args  []string
		// window: the window the agent fetched, from its log.
		window func(t *testing.T, log string) (time.Time, time.Time)
	}{
		{
			name: "exec", seed: "15", nodes: 4,
			args:   []string{"exec", "--", "sh", "-c", "sleep 4"},
			window: fetchWindow,
		},
		{
			name: "fetch of a past window", seed: "12", nodes: 12, extra: "row_budget = 1000\n",
			args:   []string{"fetch", "--from", pastStart.Format(time.RFC3339), "--to", pastEnd.Format(time.RFC3339)},
			window: func(*testing.T, string) (time.Time, time.Time) { return pastStart, pastEnd },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			emu := startControlledEmulator(t, append([]string{"--lag", "1s", "--fault-seed", tt.seed}, faultsPerQuarter...)...)
			dir := t.TempDir()
			nodes := nodesOf(tt.nodes)
			writeConfig(t, dir, outcomeConfig(emu.api, strings.Join(nodes, ","), tt.extra))
			cmd, stderr := startAgent(t, dir, append([]string{"--output-file", "out.csv", "--plugins", "csv,kwollect-input"}, tt.args...)...)
			code := waitExit(t, cmd, stderr, 3*time.Minute)
			log := stderr.String()
			t.Cleanup(func() {
				if t.Failed() {
					t.Log(log)
				}
			})
			n, kinds := emu.faults(t)
			t.Logf("%d faults injected: %v", n, kinds)
			require.Positive(t, n, "the seed injects faults in the first requests")
			start, end := tt.window(t, log)
			requireFaultOutcome(t, emu, code, log, filepath.Join(dir, "out.csv"), []siteNodes{{"lyon", nodes}}, start, end)
			require.Empty(t, processesIn(t, dir))
		})
	}
}

// TestChaosRunSoak: run mode for about 30 s, polling every second, with a
// quarter of the requests failing: the CSV holds every row of the run once.
func TestChaosRunSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("lasts 30 s")
	}
	t.Parallel()
	emu := startControlledEmulator(t, append([]string{"--lag", "1s", "--fault-seed", "13"}, faultsPerQuarter...)...)
	dir := t.TempDir()
	nodes := nodesOf(3)
	writeConfig(t, dir, outcomeConfig(emu.api, strings.Join(nodes, ","), "poll_interval = \"1s\"\n"))
	cmd, stderr := startAgent(t, dir, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "run")
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(stderr.String())
		}
	})
	waitLog(t, stderr, "Plugin startup complete.", 60*time.Second)
	time.Sleep(30 * time.Second) // the soak
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	code := waitExit(t, cmd, stderr, 90*time.Second)
	log := stderr.String()
	require.Contains(t, log, "SIGTERM received, shutting down")
	n, kinds := emu.faults(t)
	t.Logf("%d faults injected: %v", n, kinds)
	require.Greater(t, n, 5, "about a quarter of some 30 polls")
	out := filepath.Join(dir, "out.csv")
	start, _ := fetchWindow(t, log)
	rows := csvRows(t, out)
	require.Greater(t, len(rows), 3*25, "about 30 s of 3 nodes")
	end := rowTime(t, rows[len(rows)-1])
	for _, r := range rows {
		if ts := rowTime(t, r); ts.After(end) {
			end = ts
		}
	}
	requireFaultOutcome(t, emu, code, log, out, []siteNodes{{"lyon", nodes}}, start, end)
	require.Empty(t, processesIn(t, dir))
}

// TestChaosOutputFails: run mode whose CSV hits a file-size limit: the agent
// stops polling, exits 1 and says the points lost; the CSV ends in a whole
// line; the resume command it prints recovers the whole window.
func TestChaosOutputFails(t *testing.T) {
	t.Parallel()
	emu := startControlledEmulator(t, "--lag", "1s")
	dir := t.TempDir()
	nodes := nodesOf(16)
	writeConfig(t, dir, outcomeConfig(emu.api, strings.Join(nodes, ","), "poll_interval = \"1s\"\n"))
	// 16 blocks: 8 KiB with dash (512-byte blocks), 16 KiB with bash: a few
	// seconds of 16 nodes (about 2 KB/s).
	cmd := exec.Command("sh", "-c", `ulimit -f 16 && exec "$0" "$@"`, filepath.Join(binDir, "alumet-agent"),
		"--output-file", "out.csv", "--plugins", "csv,kwollect-input", "run")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ALUMET_CONFIG=", "RUST_LOG=", "ALUMET_LOG=")
	var stderr testkit.LockedBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	code := waitExit(t, cmd, &stderr, 90*time.Second)
	log := stderr.String()
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(log)
		}
	})
	require.Equal(t, 1, code)
	require.Contains(t, log, "An output failed: stopping the measurement now")
	require.Contains(t, log, "file too large")
	require.Contains(t, log, "points lost")
	require.NotContains(t, log, "Measurement complete")
	out := filepath.Join(dir, "out.csv")
	rows := requireWholeLines(t, out)
	require.Positive(t, rows)
	assertNoDuplicateLines(t, out)
	start, _ := fetchWindow(t, log)
	runResume(t, emu, log, out, []siteNodes{{"lyon", nodes}}, []string{"wattmetre_power_watt"}, start)
	require.Empty(t, processesIn(t, dir))
}
