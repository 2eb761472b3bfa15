// Package e2e tests the binaries end to end: it builds alumet-agent and
// kwollect-emulator, starts the emulator on loopback with an ingestion lag,
// runs the seed README's commands and checks the files they write.
package e2e

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
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

const seed = 42

var binDir string

// defaultParallel is how many parallel tests run at once unless -parallel
// is given. These tests mostly wait on real time in child processes (an
// ingestion lag, an outage, a signal's effect): all of them together use
// about 30 s of CPU over some 550 s of waiting. -parallel defaults to
// GOMAXPROCS, so on a 2-core machine they waited 2 at a time (4.5 min).
const defaultParallel = 8

func TestMain(m *testing.M) {
	flag.Parse()
	parallelSet := false
	flag.Visit(func(f *flag.Flag) { parallelSet = parallelSet || f.Name == "test.parallel" })
	if !parallelSet {
		_ = flag.Set("test.parallel", strconv.Itoa(max(defaultParallel, runtime.GOMAXPROCS(0))))
	}
	dir, err := os.MkdirTemp("", "alumet-e2e-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	cmd := exec.Command("go", "build", "-o", dir+"/", "github.com/alumet-go/alumet-agent/cmd/...")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the binaries failed:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startEmulator runs kwollect-emulator on 127.0.0.1 with a free port and
// returns the API base URL (…/stable).
func startEmulator(t *testing.T, args ...string) string {
	t.Helper()
	return startEmulatorProcess(t, args...).URL
}

// startEmulatorProcess is startEmulator returning the process (its base,
// control token, stderr): the binary with the seed, stopped at the end of
// the test.
func startEmulatorProcess(t *testing.T, args ...string) *emutest.Process {
	t.Helper()
	return emutest.StartBinary(t, filepath.Join(binDir, "kwollect-emulator"), append([]string{"--seed", strconv.Itoa(seed)}, args...)...)
}

// seedConfig is the seed README's [plugins.kwollect-input] section, its exact
// lines, with the credentials and api_url given.
func seedConfig(login, password, apiURL string) string {
	return fmt.Sprintf(`[plugins.kwollect-input]
site = "lyon"                     # Grid'5000 site
hostname = "taurus-7"             # Target node hostname
metrics = "wattmetre_power_watt"  # Metric to collect, DO NOT CHANGE IT
login = %q          # Your Grid'5000 username
password = %q    # Your Grid'5000 password
api_url = %q
`, login, password, apiURL)
}

type result struct {
	code           int
	stdout, stderr string
}

// runAgent runs alumet-agent in dir and waits for it.
func runAgent(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	cmd := agentCmd(dir, env, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return result{code, stdout.String(), stderr.String()}
}

func agentCmd(dir string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(binDir, "alumet-agent"), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ALUMET_CONFIG=", "RUST_LOG=", "ALUMET_LOG=")
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

var urlLine = regexp.MustCompile(`API request should be triggered with URL: (\S+)`)

// fetchWindow returns the window of the first Kwollect query the agent logged.
func fetchWindow(t *testing.T, stderr string) (start, end time.Time) {
	t.Helper()
	m := urlLine.FindStringSubmatch(stderr)
	require.NotNil(t, m, "no query URL in the log:\n%s", stderr)
	u, err := url.Parse(m[1])
	require.NoError(t, err)
	q := u.Query()
	return epoch(t, q.Get("start_time")), epoch(t, q.Get("end_time"))
}

func epoch(t *testing.T, s string) time.Time {
	t.Helper()
	r, ok := new(big.Rat).SetString(s)
	require.True(t, ok, "bad epoch %q", s)
	ns := new(big.Rat).Mul(r, big.NewRat(1e9, 1))
	require.True(t, ns.IsInt(), "more than ns precision in %q", s)
	return time.Unix(0, ns.Num().Int64())
}

// expectedCSV is what the CSV must hold for the emulator's data in [start, end].
func expectedCSV(t *testing.T, node string, start, end time.Time) []string {
	t.Helper()
	emu := emutest.New(t, emulator.Config{Seed: seed})
	rows, err := emu.Expected("lyon", []string{node}, []string{"wattmetre_power_watt"}, start, end)
	require.NoError(t, err)
	lines := []string{"metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;metric_id;__late_attributes"}
	for _, r := range rows {
		orig := r.Labels["_device_orig"].([]string)
		lines = append(lines, fmt.Sprintf("wattmetre_power_watt_W;%s;%s;device_id;%s;device_origin;%s;wattmetre_power_watt;",
			r.Timestamp.UTC().Format(time.RFC3339Nano), strconv.FormatFloat(r.Value, 'f', -1, 64), r.DeviceID, strings.Join(orig, ",")))
	}
	return lines
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.True(t, len(b) > 0 && b[len(b)-1] == '\n', "the file must end with a newline")
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// checkCSV compares every row of the CSV with the emulator's data for the
// window the agent queried: none missing at the tail, none outside.
func checkCSV(t *testing.T, path, stderr string, minRows int) {
	t.Helper()
	start, end := fetchWindow(t, stderr)
	want := expectedCSV(t, "taurus-7", start, end)
	got := readLines(t, path)
	require.Empty(t, cmp.Diff(want, got), "CSV differs from the emulator's data for [%v, %v]", start, end)
	require.GreaterOrEqual(t, len(got)-1, minRows)
}

func TestExecSeedCommand(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "2s", "--user", "alice:s3cret-Pa55")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(seedConfig("alice", "${G5K_PASSWORD}", api)), 0o600))
	res := runAgent(t, dir, []string{"G5K_PASSWORD=s3cret-Pa55"},
		"--output-file", "measurements-kwollect.csv", "--plugins", "csv,kwollect-input", "exec", "--", "sleep", "2")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stderr, "Child process exited with exit status: 0, Alumet will now stop.")
	require.Contains(t, res.stderr, "Publishing EndConsumerMeasurement event")
	require.Regexp(t, `INFO  plugin_kwollect_input\] API request should be triggered with URL: http://127\.0\.0\.1:\d+/stable/sites/lyon/metrics\?nodes=taurus-7&metrics=wattmetre_power_watt&start_time=\d+&end_time=\d+(\.\d+)?\n`, res.stderr)
	require.NotContains(t, res.stderr+res.stdout, "s3cret-Pa55", "the password must never be printed")
	// sleep 2 plus the floored start: at least 2 samples, and the tail despite the 2 s lag.
	checkCSV(t, filepath.Join(dir, "measurements-kwollect.csv"), res.stderr, 2)
}

func TestExecExitCodes(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "0s")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantLog  string
		measured bool // the command ran: its window was fetched
	}{
		{"exit 3", []string{"exec", "--", "sh", "-c", "exit 3"}, 3, "with exec --ignore-exit-code it exits with its own code", true},
		{"ignored", []string{"exec", "--ignore-exit-code", "sh", "-c", "exit 3"}, 0, "exit status: 3", true},
		{"killed", []string{"exec", "sh", "-c", "kill -9 $$"}, 137, "signal: 9 (SIGKILL)", true},
		{"not found", []string{"exec", "no-such-program-xyz"}, 127, "Command 'no-such-program-xyz' not found", false},
		{"not executable", []string{"exec", "./script.sh"}, 126, "chmod +x ./script.sh", false},
		{"dash dash after program", []string{"exec", "sh", "--", "-c", "exit 4"}, 4, "exit status: 4", true},
		{"no shebang", []string{"exec", "./noshebang"}, 126, "#!/bin/sh", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "script.sh"), []byte("#!/bin/sh\n"), 0o644))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "noshebang"), []byte("exit 0\n"), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(seedConfig("", "", api)), 0o600))
			args := append([]string{"--output-file", "out.csv", "--plugins", "csv,kwollect-input"}, tt.args...)
			res := runAgent(t, dir, nil, args...)
			require.Equal(t, tt.wantCode, res.code, res.stderr)
			require.Contains(t, res.stderr, tt.wantLog)
			_, err := os.Stat(filepath.Join(dir, "out.csv"))
			if tt.measured {
				require.NoError(t, err, "the command ran: its data is written")
			} else {
				require.ErrorIs(t, err, os.ErrNotExist, "nothing was measured: no CSV (an earlier one would be kept)")
				require.Contains(t, res.stderr, "no data: out.csv not written")
			}
		})
	}
}

// TestExecSignals: SIGTERM and SIGINT sent to the agent reach the child, and
// the agent still fetches the whole window and writes it.
func TestExecSignals(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s")
	for _, tt := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGTERM, 143}, {syscall.SIGINT, 130}} {
		t.Run(tt.sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(seedConfig("", "", api)), 0o600))
			cmd := agentCmd(dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "exec", "--", "sleep", "60")
			var stderr testkit.LockedBuffer
			cmd.Stderr = &stderr
			require.NoError(t, cmd.Start())
			require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "spawned with pid") }, 20*time.Second, 20*time.Millisecond)
			time.Sleep(1500 * time.Millisecond)
			require.NoError(t, cmd.Process.Signal(tt.sig))
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-ctx.Done():
				_ = cmd.Process.Kill()
				t.Fatal("the agent did not exit")
			}
			require.Equal(t, tt.code, cmd.ProcessState.ExitCode(), stderr.String())
			require.Contains(t, stderr.String(), "forwarding it to the command's process group")
			checkCSV(t, filepath.Join(dir, "out.csv"), stderr.String(), 1)
		})
	}
}

func TestRunModeSIGTERM(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(seedConfig("", "", api)), 0o600))
	cmd := agentCmd(dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input")
	var stderr testkit.LockedBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	// Alumet's line scripts wait for before they signal.
	require.Eventually(t, func() bool {
		return strings.Contains(stderr.String(), "INFO  alumet::agent::builder] 🔥 ALUMET agent is ready.\n")
	},
		20*time.Second, 20*time.Millisecond)
	time.Sleep(2 * time.Second)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	err := cmd.Wait()
	require.NoError(t, err, stderr.String())
	log := stderr.String()
	require.Contains(t, log, "SIGTERM received, shutting down")
	// Alumet's start-up and shutdown lines, in Alumet's order.
	var at []int
	// The plugins start in the config's order (kwollect-input's section
	// comes first) and stop in that order too.
	for _, line := range []string{"] Plugin startup complete.\n🧩 2 plugins started:\n    - kwollect-input v1.0.0\n    - csv v0.2.0\n",
		"] 🔥 ALUMET agent is ready.", "] SIGTERM received", "] Stopping plugin kwollect-input v1.0.0\n", "] Stopping plugin csv v0.2.0\n",
		"INFO  alumet::agent::builder] All plugins have stopped.\n"} {
		i := strings.Index(log, line)
		require.GreaterOrEqual(t, i, 0, "%q not in\n%s", line, log)
		at = append(at, i)
	}
	require.IsIncreasing(t, at, log)
	checkCSV(t, filepath.Join(dir, "out.csv"), stderr.String(), 2)
}

func TestWatch(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(seedConfig("", "", api)), 0o600))
	sleeper := exec.Command("sleep", "2")
	require.NoError(t, sleeper.Start())
	go func() { _ = sleeper.Wait() }() // reap it, so it does not stay a zombie
	res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "watch", strconv.Itoa(sleeper.Process.Pid))
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stderr, "has ended")
	checkCSV(t, filepath.Join(dir, "out.csv"), res.stderr, 1)

	res = runAgent(t, dir, nil, "watch", "999999999")
	require.Equal(t, 1, res.code)
	require.Contains(t, res.stderr, "no running process with pid 999999999")
}

func TestBadCredentials(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "0s", "--user", "alice:right")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(seedConfig("alice", "wrong-pass-123", api)), 0o600))
	res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "exec", "true")
	require.Equal(t, 1, res.code, "a failed fetch is an agent failure")
	require.Contains(t, res.stderr, "401")
	require.NotContains(t, res.stderr, "wrong-pass-123")
}
