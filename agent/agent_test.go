package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

type warnings []string

func (w *warnings) Warn(msg string, _ ...any) { *w = append(*w, msg) }

func exitState(t *testing.T, script string) *os.ProcessState {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	_ = cmd.Run()
	return cmd.ProcessState
}

func TestExitCode(t *testing.T) {
	ok, three, killed := exitState(t, "exit 0"), exitState(t, "exit 3"), exitState(t, "kill -TERM $$")
	tests := []struct {
		name        string
		st          *os.ProcessState
		agentFailed bool
		ignore      bool
		want        int
		wantWarn    string
	}{
		{"success", ok, false, false, 0, ""},
		{"child failed", three, false, false, 3, "with exec --ignore-exit-code it exits with its own code"},
		{"child failed, agent failed: the child's code", three, true, false, 3, "with exec --ignore-exit-code it exits with its own code"},
		{"agent failed", ok, true, false, 1, ""},
		{"ignored", three, false, true, 0, ""},
		{"ignored but agent failed", three, true, true, 1, ""},
		{"killed by SIGTERM", killed, false, false, 143, "killed by SIGTERM"},
		{"killed but ignored", killed, false, true, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _ := childExit(tt.st)
			var w warnings
			require.Equal(t, tt.want, ExitCode(code, tt.st, map[bool]int{true: 1}[tt.agentFailed], tt.ignore, &w))
			if tt.wantWarn != "" {
				require.Len(t, w, 1)
				require.Contains(t, w[0], tt.wantWarn)
			} else {
				require.Empty(t, w)
			}
		})
	}
	_, desc := childExit(killed)
	require.Equal(t, "signal: 15 (SIGTERM)", desc)
	_, desc = childExit(three)
	require.Equal(t, "exit status: 3", desc)
}

func TestResolveProgram(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	require.NoError(t, os.WriteFile("notexec.sh", []byte("#!/bin/sh\n"), 0o644))
	require.NoError(t, os.WriteFile("local-tool", []byte("#!/bin/sh\n"), 0o755))
	require.NoError(t, os.Mkdir("adir", 0o755))
	tests := []struct {
		prog     string
		wantCode int
		wantMsg  string
	}{
		{"sh", 0, ""},
		{"./local-tool", 0, ""},
		{"no-such-program-xyz", ExitNotFound, "Command 'no-such-program-xyz' not found in PATH."},
		{"local-tool", ExitNotFound, "did you mean './local-tool'?"},
		{"./missing", ExitNotFound, "no such file"},
		{"./notexec.sh", ExitNotExecutable, "chmod +x ./notexec.sh"},
		{"./adir", ExitNotExecutable, "is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.prog, func(t *testing.T) {
			path, err := resolveProgram(tt.prog)
			if tt.wantCode == 0 {
				require.NoError(t, err)
				require.NotEmpty(t, path)
				return
			}
			var se *SpawnError
			require.ErrorAs(t, err, &se)
			require.Equal(t, tt.wantCode, se.Code)
			require.Contains(t, se.Msg, tt.wantMsg)
		})
	}
}

func TestProcessAlive(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("watch (and /proc) is Linux only")
	}
	require.True(t, processAlive(os.Getpid()))
	cmd := exec.Command("sleep", "0")
	require.NoError(t, cmd.Start())
	pid := cmd.Process.Pid
	require.Eventually(t, func() bool {
		// A zombie (exited, not yet reaped) counts as ended.
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		return err == nil && !processAlive(pid) && len(b) > 0
	}, 5e9, 1e7)
	require.NoError(t, cmd.Wait())
	require.False(t, processAlive(pid))
	require.Error(t, CheckPID(-1))
}
