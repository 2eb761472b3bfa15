package writeback

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTracker(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	require.NoError(t, err)
	defer f.Close()
	var tr Tracker
	tr.Reset(100)
	tr.Wrote(f, Every-1)
	require.Equal(t, int64(100), tr.Requested(), "not yet Every bytes")
	tr.Wrote(f, 1)
	require.Equal(t, int64(100+Every), tr.Pos())
	require.Equal(t, tr.Pos(), tr.Requested())
	require.Equal(t, runtime.GOOS != "linux", tr.Off())

	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	var p Tracker
	p.Wrote(w, Every)
	require.True(t, p.Off(), "a pipe cannot be written back")
	p.Wrote(w, Every)
	require.Equal(t, 2*int64(Every), p.Pos())
}
