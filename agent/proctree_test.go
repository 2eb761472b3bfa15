package agent

import (
	"errors"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestUnsupportedError(t *testing.T) {
	err := error(&UnsupportedError{Command: "exec", What: "measuring a process tree", GOOS: "darwin"})
	require.EqualError(t, err, "exec: measuring a process tree is not supported on darwin (Linux only)")
	require.ErrorIs(t, err, errors.ErrUnsupported)
	require.EqualError(t, &UnsupportedError{Command: "watch", What: "following a process", GOOS: "windows"},
		"watch: following a process is not supported on windows (Linux only)")
}

func TestCheckExecWatch(t *testing.T) {
	if runtime.GOOS == "linux" {
		require.NoError(t, CheckExec())
		require.NoError(t, CheckWatch())
		return
	}
	require.EqualError(t, CheckExec(), "exec: measuring a process tree is not supported on "+runtime.GOOS+" (Linux only)")
	require.EqualError(t, CheckWatch(), "watch: following a process is not supported on "+runtime.GOOS+" (Linux only)")
	require.ErrorIs(t, CheckWatch(), errors.ErrUnsupported)
}
