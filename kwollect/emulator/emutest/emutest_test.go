package emutest

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/kwollect/emulator"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := (&http.Client{Timeout: 30 * time.Second}).Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

func TestStart(t *testing.T) {
	var requests atomic.Int64
	tests := []struct {
		name     string
		opts     []Option
		wantReqs int64
	}{
		{name: "as is"},
		{name: "nil wrap", opts: []Option{Wrap(nil)}},
		{name: "wrapped", opts: []Option{Wrap(func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1); h.ServeHTTP(w, r) })
		})}, wantReqs: 2},
	}
	for _, tt := range tests {
		var base string
		t.Run(tt.name, func(t *testing.T) {
			requests.Store(0)
			s := Start(t, emulator.Config{Seed: 7}, tt.opts...)
			base = s.Base
			require.True(t, strings.HasPrefix(s.URL, "http://127.0.0.1:"), s.URL)
			require.Equal(t, s.Base+"/stable", s.URL)
			code, body := get(t, s.Base+"/healthz")
			require.Equal(t, http.StatusOK, code)
			require.Equal(t, "ok", strings.TrimSpace(body))
			code, body = get(t, s.URL+"/sites/lyon")
			require.Equal(t, http.StatusOK, code)
			require.Contains(t, body, `"lyon"`)
			require.Equal(t, tt.wantReqs, requests.Load())
			now := time.Now()
			rows, err := s.Emulator.Expected("lyon", []string{"taurus-7"}, []string{"wattmetre_power_watt"}, now.Add(-3*time.Second), now.Add(-time.Second))
			require.NoError(t, err)
			require.NotEmpty(t, rows)
		})
		// The server is gone with the test.
		_, err := (&http.Client{Timeout: 5 * time.Second}).Get(base + "/healthz")
		require.Error(t, err, "served after the test ended")
	}
}

func TestNew(t *testing.T) {
	a := New(t, emulator.Config{Seed: 42})
	b := New(t, emulator.Config{Seed: 42})
	end := time.Now().Add(-time.Minute).Truncate(time.Second)
	ra, err := a.Expected("lyon", []string{"taurus-7"}, []string{"wattmetre_power_watt"}, end.Add(-2*time.Second), end)
	require.NoError(t, err)
	rb, err := b.Expected("lyon", []string{"taurus-7"}, []string{"wattmetre_power_watt"}, end.Add(-2*time.Second), end)
	require.NoError(t, err)
	require.NotEmpty(t, ra)
	require.Equal(t, ra, rb, "same seed, same rows")
}

// fakeBinary writes a shell script standing for kwollect-emulator: it
// prints script's output and then sleeps until killed.
func fakeBinary(t *testing.T, script string) string {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	bin := filepath.Join(t.TempDir(), "kwollect-emulator")
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\n"+script), 0o755))
	return bin
}

func TestStartBinary(t *testing.T) {
	tests := []struct {
		name      string
		script    string
		wantBase  string
		wantToken string
	}{
		{name: "plain", script: `echo "kwollect-emulator listening on http://127.0.0.1:4242"; echo "args: $*" >&2; exec sleep 600`,
			wantBase: "http://127.0.0.1:4242"},
		{name: "control", script: `echo "kwollect-emulator listening on http://127.0.0.1:4243 control-token=s3cr3t"; echo "args: $*" >&2; exec sleep 600`,
			wantBase: "http://127.0.0.1:4243", wantToken: "s3cr3t"},
	}
	for _, tt := range tests {
		var p *Process
		t.Run(tt.name, func(t *testing.T) {
			p = StartBinary(t, fakeBinary(t, tt.script), "--seed", "42")
			require.Equal(t, tt.wantBase, p.Base)
			require.Equal(t, tt.wantBase+"/stable", p.URL)
			require.Equal(t, tt.wantToken, p.Token)
			require.True(t, strings.HasPrefix(p.Line, "kwollect-emulator listening on "+tt.wantBase))
			require.Eventually(t, func() bool { return strings.Contains(p.Stderr.String(), "args: --listen 127.0.0.1:0 --seed 42") },
				30*time.Second, 10*time.Millisecond, "stderr: %s", p.Stderr)
		})
		require.NotNil(t, p.Cmd.ProcessState, "stopped when the test ended")
		require.False(t, p.Cmd.ProcessState.Success(), "stopped by SIGTERM: %v", p.Cmd.ProcessState)
	}
}

// fatalTB records Fatalf and stops the goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	f.TB.SkipNow() // ends the subtest's goroutine without failing it
}

func TestStartBinaryFails(t *testing.T) {
	tests := []struct {
		name   string
		script string
		want   string
	}{
		{"exits", `echo "bad flag" >&2; exit 2`, "emutest: the emulator exited without a start line (exit status 2); stderr: bad flag"},
		{"wrong line", `echo "hello"; exec sleep 600`, `emutest: unexpected first line "hello"; stderr:`},
	}
	for _, tt := range tests {
		tb := &fatalTB{}
		t.Run(tt.name, func(t *testing.T) {
			bin := fakeBinary(t, tt.script)
			tb.TB = t
			StartBinary(tb, bin)
		})
		require.Equal(t, tt.want, strings.TrimSpace(tb.msg))
	}
}
