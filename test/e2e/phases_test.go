package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/testkit"
	"github.com/alumet-go/alumet-agent/plugins/energyreport"
)

// runAgentToFile runs alumet-agent in dir with its stdout on the file
// stdoutName (as in an OAR batch job), and returns that file's content.
func runAgentToFile(t *testing.T, dir, stdoutName string, env []string, args ...string) (res result, stdout string) {
	t.Helper()
	path := filepath.Join(dir, stdoutName)
	f, err := os.Create(path)
	require.NoError(t, err)
	cmd := agentCmd(dir, env, args...)
	var stderr testkit.LockedBuffer
	cmd.Stdout, cmd.Stderr = f, &stderr
	err = cmd.Run()
	require.NoError(t, f.Close())
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return result{code: code, stderr: stderr.String()}, string(b)
}

// phaseSummary is what these tests read of a single run's summary.
type phaseSummary = energyreport.Summary

func readPhaseSummary(t *testing.T, path string) (phaseSummary, map[string]any) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var s phaseSummary
	require.NoError(t, json.Unmarshal(b, &s), string(b))
	var raw map[string]any
	require.NoError(t, json.Unmarshal(b, &raw))
	return s, raw
}

// TestExecStdioIsTheUsers: with energy-report enabled and no phases key,
// the command's stdout is the agent's own (here a file: the command writes
// to it directly, not through a pipe the agent copies), and alumet-agent
// mark still marks phases. --phases, or phases = true, makes it a pipe;
// --no-phases wins over the key.
func TestExecStdioIsTheUsers(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s")
	agentBin := filepath.Join(binDir, "alumet-agent")
	script := fmt.Sprintf("readlink /proc/self/fd/1; %s mark work; sleep 1.2", agentBin)
	tests := []struct {
		name     string
		key      string // the phases line of [plugins.energy-report]
		flags    []string
		wantPipe bool
	}{
		{name: "default", wantPipe: false},
		{name: "--phases", flags: []string{"--phases"}, wantPipe: true},
		{name: "phases = true", key: "phases = true\n", wantPipe: true},
		{name: "phases = false", key: "phases = false\n", wantPipe: false},
		{name: "--no-phases wins over the key", key: "phases = true\n", flags: []string{"--no-phases"}, wantPipe: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeConfig(t, dir, seedConfig("", "", api)+"\n[plugins.energy-report]\nsummary_file = \"energy.json\"\nplot_file = \"\"\n"+tt.key)
			args := append([]string{"--output-file", "out.csv", "--plugins", "csv,kwollect-input,energy-report", "exec"}, tt.flags...)
			args = append(args, "--", "sh", "-c", script)
			res, stdout := runAgentToFile(t, dir, "job.stdout", []string{"XDG_RUNTIME_DIR=" + t.TempDir()}, args...)
			require.Equal(t, 0, res.code, res.stderr)
			noPhases := len(tt.flags) > 0 && tt.flags[0] == "--no-phases"
			fd1 := strings.TrimSpace(stdout)
			if tt.wantPipe {
				require.True(t, strings.HasPrefix(fd1, "pipe:"), "the command's stdout is the agent's pipe: %q", fd1)
			} else {
				require.Equal(t, filepath.Join(dir, "job.stdout"), fd1, "the command writes to the agent's stdout itself")
			}
			s, _ := readPhaseSummary(t, filepath.Join(dir, "energy.json"))
			if noPhases {
				require.Empty(t, s.Phases)
				return
			}
			var names []string
			for _, ph := range s.Phases {
				names = append(names, ph.Name)
			}
			require.Equal(t, []string{"(before the first mark)", "work"}, names, "alumet-agent mark works in every case")
			require.Empty(t, s.Warnings)
		})
	}
}

// TestExecPhasesBlockBuffered: the case. With --phases and the
// agent's stdout on a file (an OAR batch job), python3 printing its marks
// without flushing block-buffers them: they all arrive when it exits. The
// agent says so, with the fix, and so does the JSON; with
// PYTHONUNBUFFERED=1 the marks come in time, and the phases are right.
func TestExecPhasesBlockBuffered(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	api := startEmulator(t, "--lag", "1s")
	names := []string{"setup", "compute", "write", "check"}
	marks := ""
	for _, n := range names {
		marks += "ALUMET_PHASE " + n + "\n"
	}
	config := seedConfig("", "", api) + "\n[plugins.energy-report]\nsummary_file = \"energy.json\"\nplot_file = \"\"\n"

	t.Run("buffered", func(t *testing.T) {
		t.Parallel()
		const py = `import time
for name in ["setup", "compute", "write", "check"]:
    print("ALUMET_PHASE " + name)
    time.sleep(0.5)
print("done")
`
		dir := t.TempDir()
		writeConfig(t, dir, config)
		res, stdout := runAgentToFile(t, dir, "job.stdout", []string{"PYTHONUNBUFFERED="},
			"--output-file", "out.csv", "--plugins", "csv,kwollect-input,energy-report", "exec", "--phases", "--", "python3", "-c", py)
		require.Equal(t, 0, res.code, res.stderr)
		require.Equal(t, marks+"done\n", stdout, "copied through unchanged")
		const warn = "4 phase marks arrived together when the command exited: its stdout is block-buffered (not a terminal), so the phases are wrong. " +
			"Run it with PYTHONUNBUFFERED=1 or python3 -u, stdbuf -oL, or call `alumet-agent mark NAME`"
		require.Contains(t, res.stderr, "WARN  alumet::agent::exec] "+warn)
		s, _ := readPhaseSummary(t, filepath.Join(dir, "energy.json"))
		require.Equal(t, []string{warn}, s.Warnings, "the JSON flags the run")
		require.Contains(t, res.stderr, "warning: "+warn, "under the table too")
	})

	// Unbuffered, a mark counts when the agent reads it. Event-driven: the
	// script prints each line only when this test lets it (a line on a
	// FIFO), and the test lets the next one go 0.5 s after it has seen the
	// previous one in the job's stdout (which the agent writes after reading
	// the mark). Each phase's duration is then bounded by the times the test
	// saw, whatever the machine's load.
	t.Run("PYTHONUNBUFFERED=1", func(t *testing.T) {
		t.Parallel()
		const py = `import sys
gate = open(sys.argv[1])
for name in ["setup", "compute", "write", "check"]:
    gate.readline()
    print("ALUMET_PHASE " + name)
gate.readline()
print("done")
`
		dir := t.TempDir()
		writeConfig(t, dir, config)
		gatePath := filepath.Join(dir, "gate")
		require.NoError(t, syscall.Mkfifo(gatePath, 0o600))
		gate, err := os.OpenFile(gatePath, os.O_RDWR, 0) // read-write: does not wait for the script to open it
		require.NoError(t, err)
		t.Cleanup(func() { gate.Close() }) // on a failure, the script reads EOF and ends
		stdoutPath := filepath.Join(dir, "job.stdout")
		f, err := os.Create(stdoutPath)
		require.NoError(t, err)
		defer f.Close()
		cmd := agentCmd(dir, []string{"PYTHONUNBUFFERED=1"},
			"--output-file", "out.csv", "--plugins", "csv,kwollect-input,energy-report", "exec", "--phases", "--", "python3", "-c", py, gatePath)
		var stderr testkit.LockedBuffer
		cmd.Stdout, cmd.Stderr = f, &stderr
		launched := time.Now()
		require.NoError(t, cmd.Start())
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			if t.Failed() {
				t.Log(stderr.String())
			}
		})
		release := func() time.Time {
			now := time.Now()
			_, err := gate.WriteString("\n")
			require.NoError(t, err)
			return now
		}
		var released, seen []time.Time
		for i := range names {
			if i > 0 {
				time.Sleep(500 * time.Millisecond) // the phase's work; not a bound
			}
			released = append(released, release())
			want := strings.Join(strings.SplitAfter(marks, "\n")[:i+1], "")
			deadline := time.Now().Add(60 * time.Second)
			for {
				b, err := os.ReadFile(stdoutPath)
				require.NoError(t, err)
				if strings.HasPrefix(string(b), want) {
					break
				}
				require.True(t, time.Now().Before(deadline), "mark %q not passed through within 60 s: %q", names[i], b)
				time.Sleep(5 * time.Millisecond)
			}
			seen = append(seen, time.Now())
		}
		time.Sleep(500 * time.Millisecond)
		lastReleased := release()
		var runErr error
		select {
		case runErr = <-exited:
		case <-time.After(2 * time.Minute):
			t.Fatal("the agent did not exit")
		}
		ended := time.Now()
		require.NoError(t, runErr, stderr.String())
		log := stderr.String()
		b, err := os.ReadFile(stdoutPath)
		require.NoError(t, err)
		require.Equal(t, marks+"done\n", string(b), "copied through unchanged")
		require.NotContains(t, log, "arrived together")
		s, raw := readPhaseSummary(t, filepath.Join(dir, "energy.json"))
		require.NotContains(t, raw, "warnings")
		var got []string
		for _, ph := range s.Phases {
			got = append(got, ph.Name)
		}
		require.Equal(t, append([]string{"(before the first mark)"}, names...), got)
		// Mark i was read in [released[i], seen[i]]; the command exited in
		// [lastReleased, ended]. 1 ms for the float seconds of the JSON.
		const slack = time.Millisecond
		within := func(name string, d float64, lo, hi time.Duration) {
			got := time.Duration(d * float64(time.Second))
			require.True(t, got >= lo-slack && got <= hi+slack, "%s lasted %v: not within [%v, %v]", name, got, lo, hi)
		}
		within("(before the first mark)", s.Phases[0].DurationS, 0, seen[0].Sub(launched))
		for i, name := range names {
			lo, hi := lastReleased.Sub(seen[i]), ended.Sub(released[i])
			if i+1 < len(names) {
				lo, hi = released[i+1].Sub(seen[i]), seen[i+1].Sub(released[i])
			}
			within(name, s.Phases[i+1].DurationS, lo, hi)
		}
	})
}

// TestFailedRunKeepsPreviousFiles: a run that measured nothing leaves the
// previous run's alumet-output.csv, alumet-energy.json and alumet-power.png
// byte for byte, and says so; the agent still fails.
func TestFailedRunKeepsPreviousFiles(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "0s")
	tests := []struct {
		name    string
		cfg     string
		code    int
		wantLog []string
	}{
		{
			// gros-1 has no wattmeter: the pre-flight refuses to run the command.
			name:    "pre-flight refused",
			cfg:     fmt.Sprintf("[plugins.kwollect-input]\nsite = \"nancy\"\nhostname = \"gros-1\"\nmetrics = \"wattmetre_power_watt\"\napi_url = %q\n", api),
			code:    1,
			wantLog: []string{"Pre-flight check failed, the command was not started"},
		},
		{
			name:    "API unreachable",
			cfg:     "[plugins.kwollect-input]\nsite = \"lyon\"\nhostname = \"taurus-7\"\nmetrics = \"wattmetre_power_watt\"\npreflight = false\nfetch_timeout = \"2s\"\napi_url = \"http://127.0.0.1:1/stable\"\n",
			code:    3, // the series failed: the measurement is incomplete
			wantLog: []string{"no data: no power sample in the measured window: alumet-energy.json and alumet-power.png not written, the previous files are kept"},
		},
	}
	old := map[string]string{
		"alumet-output.csv":  "metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;metric_id;__late_attributes\nwattmetre_power_watt_W;2026-01-01T00:00:00Z;120;device_id;taurus-7;device_origin;w;wattmetre_power_watt;\n",
		"alumet-energy.json": "{\"previous\": \"run\"}\n",
		"alumet-power.png":   "\x89PNG\r\n\x1a\nprevious plot",
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeConfig(t, dir, tt.cfg)
			times := map[string]time.Time{}
			for name, content := range old {
				p := filepath.Join(dir, name)
				require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
				st, err := os.Stat(p)
				require.NoError(t, err)
				times[name] = st.ModTime()
			}
			res := runAgent(t, dir, nil, "--plugins", "csv,kwollect-input,energy-report", "exec", "--", "touch", "ran")
			require.Equal(t, tt.code, res.code, "nothing measured is a failure: %s", res.stderr)
			require.Contains(t, res.stderr, "no data: alumet-output.csv not written, the previous file is kept")
			for _, l := range tt.wantLog {
				require.Contains(t, res.stderr, l)
			}
			for name, content := range old {
				b, err := os.ReadFile(filepath.Join(dir, name))
				require.NoError(t, err)
				require.Equal(t, content, string(b), "%s is the previous run's", name)
				st, err := os.Stat(filepath.Join(dir, name))
				require.NoError(t, err)
				require.Equal(t, times[name], st.ModTime(), "%s not even rewritten", name)
			}
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			for _, e := range entries {
				require.False(t, strings.HasSuffix(e.Name(), ".tmp"), "no temporary file left: %s", e.Name())
			}
		})
	}
}
