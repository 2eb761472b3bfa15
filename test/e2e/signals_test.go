package e2e

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/testkit"
)

// startAgent starts the agent in dir with its stderr captured.
func startAgent(t *testing.T, dir string, args ...string) (*exec.Cmd, *testkit.LockedBuffer) {
	t.Helper()
	cmd := agentCmd(dir, nil, args...)
	var stderr testkit.LockedBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd, &stderr
}

// waitLog waits until the agent's log contains s.
func waitLog(t *testing.T, stderr *testkit.LockedBuffer, s string, within time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), s) }, within, 10*time.Millisecond, "waiting for %q in:\n%s", s, stderr)
}

// waitExit waits for the agent and returns its exit code and how long it
// took after since; the test fails if it does not end within limit (a
// bound far above what the agent documents: the test proves that it ends,
// not how fast).
func waitExit(t *testing.T, cmd *exec.Cmd, stderr *testkit.LockedBuffer, limit time.Duration) int {
	t.Helper()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		_ = cmd.Process.Kill()
		t.Fatalf("the agent did not end within %v:\n%s", limit, stderr)
	}
	return cmd.ProcessState.ExitCode()
}

// requireWholeLines checks that a CSV ends with a whole line and that every
// line has the header's number of fields.
func requireWholeLines(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NotEmpty(t, data)
	require.Equal(t, byte('\n'), data[len(data)-1], "the CSV ends in a torn line")
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	fields := strings.Count(lines[0], ";")
	for i, l := range lines {
		require.Equal(t, fields, strings.Count(l, ";"), "line %d: %q", i+1, l)
	}
	return len(lines) - 1
}

// TestSignalCutsFetchShort: with the API failing at the end of an exec, each
// of SIGINT, SIGTERM and SIGHUP stops the retries at once: the agent says
// what is missing, prints the command that fetches it later, and exits
// 128+N, long before fetch_timeout.
func TestSignalCutsFetchShort(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s", "--fault", "kind=503")
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cfg := seedConfig("", "", api) + "preflight = \"off\"\nfetch_timeout = \"10m\"\n"
			require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(cfg), 0o600))
			cmd, stderr := startAgent(t, dir, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "exec", "--", "sleep", "1")
			waitLog(t, stderr, "Kwollect query failed", 60*time.Second)
			require.NoError(t, cmd.Process.Signal(sig))
			code := waitExit(t, cmd, stderr, 30*time.Second)
			log := stderr.String()
			require.Equal(t, 128+int(sig), code, log)
			require.Contains(t, log, "received: no more waiting nor retrying")
			require.Contains(t, log, "FAILED: the fetch was cut short (interrupted by SIG")
			require.Regexp(t, `fetch --from [0-9.]+ --to [0-9.]+`, log)
			require.NotContains(t, log, "ignored")
		})
	}
}

// blackHole is a TCP server that accepts connections and never answers.
func blackHole(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		var held []net.Conn // accepted, read from by nobody, never answered
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	return "http://" + ln.Addr().String() + "/stable"
}

// TestHungAPIIsBounded: an API that accepts connections and never answers,
// or stalls in the middle of a body, holds neither the start nor the final
// fetch past their budgets.
func TestHungAPIIsBounded(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		api    func(t *testing.T) string
		silent bool // the catalogues do not answer either
	}{
		{"raw black hole", blackHole, true},
		{"emulator --blackhole", func(t *testing.T) string { return startEmulator(t, "--lag", "1s", "--blackhole") }, true},
		{"stall mid-body", func(t *testing.T) string { return startEmulator(t, "--lag", "1s", "--fault", "kind=stall;rows=1") }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cfg := seedConfig("", "", tt.api(t)) + "preflight = \"off\"\nfetch_timeout = \"3s\"\n"
			require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(cfg), 0o600))
			cmd, stderr := startAgent(t, dir, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "exec", "--", "sleep", "1")
			waitLog(t, stderr, "Publishing EndConsumerMeasurement event", 60*time.Second)
			if tt.silent {
				require.Contains(t, stderr.String(), "metric catalogue did not answer within 20 s")
			}
			code := waitExit(t, cmd, stderr, 30*time.Second)
			log := stderr.String()
			require.Equal(t, 3, code, log)
			require.Contains(t, log, "ran out (fetch_timeout)")
			require.Regexp(t, `fetch --from [0-9.]+ --to [0-9.]+`, log)
		})
	}
}

// TestDuplicateSignalIsOne: GNU timeout delivers its signal twice (to the
// agent, then to its process group): one stop, the last window fetched in
// full.
func TestDuplicateSignalIsOne(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(seedConfig("", "", api)), 0o600))
	cmd, stderr := startAgent(t, dir, "--output-file", "out.csv", "--plugins", "csv,kwollect-input")
	waitLog(t, stderr, "Plugin startup complete.", 60*time.Second)
	time.Sleep(2 * time.Second)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	code := waitExit(t, cmd, stderr, 60*time.Second)
	log := stderr.String()
	require.Equal(t, 0, code, log)
	require.Equal(t, 1, strings.Count(log, "SIGTERM received"), log)
	require.Contains(t, log, "Measurement complete")
	checkCSV(t, filepath.Join(dir, "out.csv"), log, 2)

	// The real thing: GNU timeout, which signals the agent and then its own
	// process group (the agent's too).
	tm, err := exec.LookPath("timeout")
	if err != nil {
		t.Skip("no timeout(1)")
	}
	for _, sig := range []string{"TERM", "INT", "HUP"} {
		cmd := exec.Command(tm, "--preserve-status", "-s", sig, "4", filepath.Join(binDir, "alumet-agent"), "--output-file", "t.csv", "--plugins", "csv,kwollect-input")
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Run(), "signal %s: %s", sig, stderr.String())
		require.Equal(t, 1, strings.Count(stderr.String(), "received, shutting down"), stderr.String())
		require.Contains(t, stderr.String(), "Measurement complete")
		checkCSV(t, filepath.Join(dir, "t.csv"), stderr.String(), 2)
	}
}

// TestFetchSignalKeepsWholeLines: SIGTERM or SIGHUP in the middle of a long
// fetch: what was fetched is written in whole lines, the log says so and
// how to fetch the rest, exit 128+N.
func TestFetchSignalKeepsWholeLines(t *testing.T) {
	t.Parallel()
	// About 35 s for the whole day: the signal comes well before the end.
	api := startEmulator(t, "--lag", "1s", "--fault", "kind=slow-body;every=1000;pause=50ms")
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cfg := outcomeConfig(api, "taurus-1,taurus-2,taurus-3,taurus-4,taurus-5,taurus-6,taurus-7,taurus-8", "")
			require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(cfg), 0o600))
			cmd, stderr := startAgent(t, dir, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "fetch", "--from", "now-24h", "--to", "now")
			out := filepath.Join(dir, "out.csv")
			require.Eventually(t, func() bool { st, err := os.Stat(out); return err == nil && st.Size() > 100<<10 }, 60*time.Second, 20*time.Millisecond, stderr)
			require.NoError(t, cmd.Process.Signal(sig))
			code := waitExit(t, cmd, stderr, 30*time.Second)
			log := stderr.String()
			require.Equal(t, 128+int(sig), code, log)
			rows := requireWholeLines(t, out)
			require.Less(t, rows, 8*86400, "the fetch was cut short")
			require.Contains(t, log, "received: no more waiting nor retrying")
			require.Contains(t, log, "rows fetched before the fetch stopped")
			require.Contains(t, log, "partial")
			require.Regexp(t, `fetch --from [0-9.]+ --to [0-9.]+`, log)
		})
	}
}

// processesWith lists the pids whose command line contains every arg.
func processesWith(t *testing.T, args ...string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var pids []string
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(data) == 0 {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			continue // a zombie runs nothing
		}
		parts := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
		match := len(parts) >= len(args)
		for i := 0; match && i < len(args); i++ {
			match = parts[len(parts)-len(args)+i] == args[i]
		}
		if match {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// TestCommandTreeEnds: a signal reaches the whole command tree (a shell's
// child too), and what the command leaves running when it exits is stopped
// and named; nothing is left behind.
func TestCommandTreeEnds(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s")
	t.Run("signal", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(seedConfig("", "", api)), 0o600))
		cmd, stderr := startAgent(t, dir, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "exec", "--", "sh", "-c", "sleep 3001; echo after")
		waitLog(t, stderr, "spawned with pid", 60*time.Second)
		require.Eventually(t, func() bool { return len(processesWith(t, "sleep", "3001")) == 1 }, 10*time.Second, 10*time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		code := waitExit(t, cmd, stderr, 60*time.Second)
		require.Equal(t, 143, code, stderr)
		require.Empty(t, processesWith(t, "sleep", "3001"), "the shell's child survived the agent")
		checkCSV(t, filepath.Join(dir, "out.csv"), stderr.String(), 1)
	})
	t.Run("leftovers", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(seedConfig("", "", api)), 0o600))
		res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "exec", "--", "sh", "-c", "sleep 3002 & setsid sleep 3003 & sleep 1")
		require.Equal(t, 0, res.code, res.stderr)
		require.Contains(t, res.stderr, "The command left 2 process(es) running")
		require.Contains(t, res.stderr, "(sleep)")
		require.Empty(t, processesWith(t, "sleep", "3002"))
		require.Empty(t, processesWith(t, "sleep", "3003"), "a process that left the group (setsid) survived")
	})
}

// TestTerminalJobControl: on a terminal, the command has the foreground: it
// reads the terminal, Ctrl+C reaches it once (not the agent, which then
// fetches the window), and Ctrl+Z does not leave it hanging stopped.
func TestTerminalJobControl(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(seedConfig("", "", api)), 0o600))
	master, slave := openPTY(t)
	cmd := agentCmd(dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "exec", "--", "sh", "-c", "read x; echo got-$x; sleep 3004")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var out testkit.LockedBuffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			_, _ = out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	waitLog(t, &out, "spawned with pid", 60*time.Second)
	_, err := master.Write([]byte("hello\n"))
	require.NoError(t, err)
	waitLog(t, &out, "got-hello", 10*time.Second)
	_, err = master.Write([]byte{0x1a}) // Ctrl+Z
	require.NoError(t, err)
	waitLog(t, &out, "it is resumed", 10*time.Second)
	_, err = master.Write([]byte{0x03}) // Ctrl+C
	require.NoError(t, err)
	code := waitExit(t, cmd, &out, 60*time.Second)
	require.Equal(t, 130, code, out.String())
	require.NotContains(t, out.String(), "SIGINT received", "the agent itself did not get the terminal's Ctrl+C")
	require.Contains(t, out.String(), "Child process exited with signal: 2 (SIGINT)")
	require.Empty(t, processesWith(t, "sleep", "3004"))
	checkCSV(t, filepath.Join(dir, "out.csv"), out.String(), 1)
}

// TestOutputFailureStopsLoudly: a write error fails the output with the
// count of points lost; in run mode the agent stops polling and exits 1;
// the CSV never ends in a torn line.
func TestOutputFailureStopsLoudly(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s")
	t.Run("run to /dev/full", func(t *testing.T) {
		t.Parallel()
		if _, err := os.Stat("/dev/full"); err != nil {
			t.Skip("no /dev/full")
		}
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(seedConfig("", "", api)+"poll_interval = \"1s\"\n"), 0o600))
		cmd, stderr := startAgent(t, dir, "--output-file", "/dev/full", "--plugins", "csv,kwollect-input", "run")
		code := waitExit(t, cmd, stderr, 90*time.Second)
		log := stderr.String()
		require.Equal(t, 1, code, log)
		require.Contains(t, log, "An output failed: stopping the measurement now")
		require.Contains(t, log, "no space left on device")
		require.Contains(t, log, "Measurement INCOMPLETE: 1 output(s) failed")
		require.Regexp(t, `points lost`, log)
		require.NotContains(t, log, "Measurement complete")
	})
	t.Run("file size limit", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		cfg := outcomeConfig(api, "taurus-1,taurus-2,taurus-3,taurus-4,taurus-5,taurus-6,taurus-7,taurus-8", "")
		require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(cfg), 0o600))
		// dash counts ulimit -f in 512-byte blocks, bash in KiB: 2 or 4 MiB,
		// more than one write buffer, less than the hour of 8 nodes (5 MB).
		args := append([]string{"-c", `ulimit -f 4096 && exec "$0" "$@"`, filepath.Join(binDir, "alumet-agent")},
			"--output-file", "out.csv", "--plugins", "csv,kwollect-input", "fetch", "--from", "now-1h", "--to", "now")
		cmd := exec.Command("sh", args...)
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee, stderr.String())
		require.Equal(t, 1, ee.ExitCode(), stderr.String())
		rows := requireWholeLines(t, filepath.Join(dir, "out.csv"))
		require.Less(t, rows, 8*3600)
		require.Contains(t, stderr.String(), "file too large")
		require.Contains(t, stderr.String(), "points lost")
		require.Regexp(t, `fetch --from [0-9.]+ --to [0-9.]+`, stderr.String())
	})
}

// TestRunHungPollDoesNotHoldTheStop: the API goes silent while run mode
// polls; the stop signal cuts the hung poll short, and the final fetch
// ends at its budget with the command that fetches the rest.
func TestRunHungPollDoesNotHoldTheStop(t *testing.T) {
	t.Parallel()
	e := startControlledEmulator(t, "--lag", "1s")
	dir := t.TempDir()
	cfg := seedConfig("", "", e.api) + "poll_interval = \"1s\"\nfetch_timeout = \"3s\"\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(cfg), 0o600))
	cmd, stderr := startAgent(t, dir, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "run")
	waitLog(t, stderr, "Plugin startup complete.", 60*time.Second)
	require.Eventually(t, func() bool { st, err := os.Stat(filepath.Join(dir, "out.csv")); return err == nil && st.Size() > 0 }, 30*time.Second, 20*time.Millisecond)
	e.blackhole(t, true)
	e.waitHeld(t, 10*time.Second) // a poll is stuck on the silent API
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	// Far below what a hung poll would hold it (30 s per attempt, 3 attempts).
	code := waitExit(t, cmd, stderr, 25*time.Second)
	log := stderr.String()
	require.Equal(t, 3, code, log)
	require.Contains(t, log, "ran out (fetch_timeout)")
	require.Regexp(t, `fetch --from [0-9.]+ --to [0-9.]+`, log)
	requireWholeLines(t, filepath.Join(dir, "out.csv"))
}
