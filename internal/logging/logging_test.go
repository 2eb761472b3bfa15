package logging

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/redact"
)

func TestParseFilter(t *testing.T) {
	tests := []struct {
		spec    string
		target  string
		want    slog.Level
		wantErr bool
	}{
		{spec: "", target: "x", want: slog.LevelInfo},
		{spec: "debug", target: "x", want: slog.LevelDebug},
		{spec: "info,plugin_kwollect_input=debug", target: "plugin_kwollect_input", want: slog.LevelDebug},
		{spec: "info,plugin_kwollect_input=debug", target: "alumet_agent", want: slog.LevelInfo},
		{spec: "warn,alumet=trace", target: "alumet::agent::exec", want: LevelTrace},
		{spec: "error", target: "x", want: slog.LevelError},
		{spec: "x=loud", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			f, err := ParseFilter(tt.spec)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, f.LevelFor(tt.target))
		})
	}
}

func TestHandlerFormat(t *testing.T) {
	var out bytes.Buffer
	f, err := ParseFilter("info,noisy=error")
	require.NoError(t, err)
	h := NewHandler(&out, f, false)
	h.now = func() time.Time { return time.Date(2025, 8, 5, 7, 44, 46, 123, time.UTC) }
	log := slog.New(h)
	Target(log, "plugin_kwollect_input").Info("API request should be triggered with URL: https://x/y?nodes=a,b")
	log.Warn("careful", "n", 3)
	Target(log, "alumet::agent::exec").Error("boom")
	Target(log, "noisy").Warn("hidden")
	log.Debug("hidden too")
	Target(log, "alumet::agent::builder").Info("Plugin startup complete.\n    - csv v0.2.0")
	want := "[2025-08-05T07:44:46Z INFO  plugin_kwollect_input] API request should be triggered with URL: https://x/y?nodes=a,b\n" +
		"[2025-08-05T07:44:46Z WARN  alumet_agent] careful n=3\n" +
		"[2025-08-05T07:44:46Z ERROR alumet::agent::exec] boom\n" +
		"[2025-08-05T07:44:46Z INFO  alumet::agent::builder] Plugin startup complete.\n    - csv v0.2.0\n"
	require.Equal(t, want, out.String())
}

func TestIsTerminal(t *testing.T) {
	devnull, err := os.Open(os.DevNull)
	require.NoError(t, err)
	defer devnull.Close()
	require.False(t, IsTerminal(devnull), "/dev/null is a character device but not a terminal")
	f, err := os.CreateTemp(t.TempDir(), "x")
	require.NoError(t, err)
	defer f.Close()
	require.False(t, IsTerminal(f))
}

func TestStatusLineErasedByLog(t *testing.T) {
	var out bytes.Buffer
	h := NewHandler(&out, Filter{Default: slog.LevelInfo}, false)
	h.now = func() time.Time { return time.Date(2025, 8, 5, 7, 44, 46, 0, time.UTC) }
	WriteStatus(&out, "\r\x1b[Kfetching 1/2")
	slog.New(h).Info("hello")
	WriteStatus(&out, "\r\x1b[Kdone\n")
	slog.New(h).Info("bye")
	require.Equal(t, "\r\x1b[Kfetching 1/2\r\x1b[K[2025-08-05T07:44:46Z INFO  alumet_agent] hello\n\r\x1b[Kdone\n[2025-08-05T07:44:46Z INFO  alumet_agent] bye\n", out.String())
}

func TestHandlerRedacts(t *testing.T) {
	redact.Register("netrc-Pa55word")
	tests := []struct {
		name string
		log  func(*slog.Logger)
		want string
	}{
		{"message URL", func(l *slog.Logger) { l.Info("GET https://alice:S3cret@api.grid5000.fr/stable failed") },
			"GET https://alice:xxxxx@api.grid5000.fr/stable failed"},
		{"message registered", func(l *slog.Logger) { l.Warn("wrong password netrc-Pa55word") },
			"wrong password xxxxx"},
		{"attr value", func(l *slog.Logger) { l.Info("req", "url", "http://bob:pw@host:80x/", "n", 1) },
			"req url=http://bob:xxxxx@host:80x/ n=1"},
		{"attr header", func(l *slog.Logger) { l.Info("req", slog.String("header", "Authorization: Basic YWxpY2U6UzNjcmV0")) },
			`req header="Authorization: Basic xxxxx"`},
		{"with attrs", func(l *slog.Logger) { l.With("pw", "netrc-Pa55word").Info("x") },
			"x pw=xxxxx"},
		{"with attrs, registered later", func(l *slog.Logger) {
			l = l.With("pw", "later-Secret-42")
			redact.Register("later-Secret-42")
			l.Info("x")
		}, "x pw=xxxxx"},
		{"group", func(l *slog.Logger) { l.Info("g", slog.Group("req", "u", "https://u:grp@h")) },
			`g req="[u=https://u:xxxxx@h]"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			h := NewHandler(&out, Filter{Default: slog.LevelInfo}, false)
			h.now = func() time.Time { return time.Date(2025, 8, 5, 7, 44, 46, 0, time.UTC) }
			tt.log(slog.New(h))
			line := out.String()
			_, msg, ok := strings.Cut(line, "] ")
			require.True(t, ok, line)
			require.Equal(t, tt.want+"\n", msg)
		})
	}
}
