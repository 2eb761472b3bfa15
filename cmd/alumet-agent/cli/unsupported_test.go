package cli

import (
	"bytes"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/agent"
)

// TestExecWatchUnsupported plays macOS on any system: exec and watch fail
// with the reason before the agent starts (no config is generated, no
// plugin starts), after the usage checks.
func TestExecWatchUnsupported(t *testing.T) {
	saved := [2]func() error{checkExec, checkWatch}
	t.Cleanup(func() { checkExec, checkWatch = saved[0], saved[1] })
	checkExec = func() error {
		return &agent.UnsupportedError{Command: "exec", What: "measuring a process tree", GOOS: "darwin"}
	}
	checkWatch = func() error {
		return &agent.UnsupportedError{Command: "watch", What: "following a process", GOOS: "darwin"}
	}
	dir := t.TempDir()
	t.Chdir(dir)
	tests := []struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		{[]string{"--plugins", "csv,kwollect-input", "exec", "--", "true"}, 1, "Error: exec: measuring a process tree is not supported on darwin (Linux only)\n"},
		{[]string{"exec", "--repeat", "2", "true"}, 1, "Error: exec: measuring a process tree is not supported on darwin (Linux only)\n"},
		{[]string{"watch", strconv.Itoa(os.Getpid())}, 1, "Error: watch: following a process is not supported on darwin (Linux only)\n"},
		{[]string{"exec"}, 2, "exec needs a PROGRAM"},
		{[]string{"watch", "abc"}, 2, `invalid PID "abc"`},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code := Main(tt.args, &out, &errOut)
		require.Equal(t, tt.wantCode, code, "%v: %s", tt.args, errOut.String())
		require.Contains(t, errOut.String(), tt.wantErr, "%v", tt.args)
		require.NotContains(t, errOut.String(), "Starting Alumet agent", "%v: nothing started", tt.args)
		require.Empty(t, out.String())
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "no alumet-config.toml generated, no CSV written")
}
