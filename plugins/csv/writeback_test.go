package csv

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// Writeback requests are advice: they follow the bytes written, stop at the
// first failure (a pipe), and never change what the file holds.
func TestLazyFileWriteback(t *testing.T) {
	chunk := make([]byte, 3<<20)
	for i := range chunk {
		chunk[i] = byte('a' + i%26)
	}
	t.Run("regular file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "out.csv")
		l := &lazyFile{path: path}
		for range 6 {
			n, err := l.Write(chunk)
			require.NoError(t, err)
			require.Equal(t, len(chunk), n)
		}
		require.Equal(t, int64(6*len(chunk)), l.wb.Pos())
		if runtime.GOOS == "linux" {
			require.False(t, l.wb.Off(), "sync_file_range works on a regular file")
			require.Equal(t, int64(6*len(chunk)), l.wb.Requested(), "asked at 9 MiB, then at 18 MiB")
		}
		require.NoError(t, l.f.Close())
		st, err := os.Stat(path)
		require.NoError(t, err)
		require.Equal(t, int64(6*len(chunk)), st.Size())
	})
	t.Run("pipe", func(t *testing.T) {
		r, w, err := os.Pipe()
		require.NoError(t, err)
		defer r.Close()
		got := make(chan int64)
		go func() {
			var total int64
			buf := make([]byte, 1<<16)
			for {
				n, err := r.Read(buf)
				total += int64(n)
				if err != nil {
					got <- total
					return
				}
			}
		}()
		l := &lazyFile{f: w}
		for range 4 {
			_, err := l.Write(chunk)
			require.NoError(t, err)
		}
		require.True(t, l.wb.Off(), "a pipe cannot be written back: asked once, then never again")
		require.NoError(t, w.Close())
		require.Equal(t, int64(4*len(chunk)), <-got)
	})
}
