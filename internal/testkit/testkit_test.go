package testkit

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// Concurrent writers and a reader: every write is whole (go test -race
// checks the locking).
func TestLockedBufferConcurrent(t *testing.T) {
	var b LockedBuffer
	require.Empty(t, b.String())
	const writers, lines = 8, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range lines {
				_, err := fmt.Fprintf(&b, "w%d line %03d\n", w, i)
				require.NoError(t, err)
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	require.Len(t, got, writers*lines)
	for _, l := range got {
		require.Regexp(t, `^w\d line \d{3}$`, l)
	}
	require.Equal(t, len(b.String()), b.Len())
}

func TestLogs(t *testing.T) {
	log := func(l *slog.Logger) {
		l.Debug("dbg", "k", 1)
		l.Info("hello")
		l.With("a", "b").WithGroup("g").Warn("careful", "x", 2)
		l.Error("bad")
	}
	tests := []struct {
		level string
		want  string
	}{
		{"", "DEBUG dbg\nINFO hello\nWARN careful\nERROR bad"},
		{"WARN", "WARN careful"},
		{"DEBUG", "DEBUG dbg"},
		{"TRACE", ""},
	}
	var logs Logs
	require.Nil(t, logs.Lines())
	require.Empty(t, logs.Text(""))
	log(logs.Logger())
	for _, tt := range tests {
		t.Run(tt.level, func(t *testing.T) {
			require.Equal(t, tt.want, logs.Text(tt.level))
		})
	}
	want := []string{"DEBUG dbg", "INFO hello", "WARN careful", "ERROR bad"}
	lines := logs.Lines()
	require.Empty(t, cmp.Diff(want, lines))
	lines[0] = "changed"
	require.Equal(t, "DEBUG dbg", logs.Lines()[0], "Lines returns a copy")
}

func TestLogsConcurrent(t *testing.T) {
	var logs Logs
	l := logs.Logger()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				l.Info("m")
				_ = logs.Text("INFO")
			}
		}()
	}
	wg.Wait()
	require.Len(t, logs.Lines(), 400)
}
