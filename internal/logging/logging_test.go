package logging

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/redact"
)

func TestParseFilter(t *testing.T) {
	tests := []struct {
		spec     string
		target   string
		want     slog.Level
		wantErrs []string
	}{
		{spec: "", target: "x", want: slog.LevelError},
		{spec: " , ", target: "x", want: slog.LevelError},
		{spec: "debug", target: "x", want: slog.LevelDebug},
		{spec: "DeBuG", target: "x", want: slog.LevelDebug},
		{spec: "WARN", target: "x", want: slog.LevelWarn},
		{spec: "tRaCe", target: "x", want: LevelTrace},
		{spec: "\u0131nfo", target: "x", want: LevelOff}, // a dotless i: a target, not info
		{spec: "off", target: "alumet_agent", want: LevelOff},
		{spec: "info,plugin_kwollect_input=debug", target: "plugin_kwollect_input", want: slog.LevelDebug},
		{spec: "info,plugin_kwollect_input=debug", target: "alumet_agent", want: slog.LevelInfo},
		// A module directive alone: every other target is off.
		{spec: "plugin_kwollect_input=debug", target: "plugin_kwollect_input", want: slog.LevelDebug},
		{spec: "plugin_kwollect_input=debug", target: "alumet_agent", want: LevelOff},
		{spec: "plugin_kwollect_input=debug", target: "alumet::agent::builder", want: LevelOff},
		// A name alone: that prefix at every level.
		{spec: "plugin_kwollect_input", target: "plugin_kwollect_input", want: LevelTrace},
		{spec: "plugin_kwollect_input", target: "plugin_csv", want: LevelOff},
		{spec: "plugin_csv=", target: "plugin_csv", want: LevelTrace},
		// Longest prefix, a plain string prefix as in env_filter.
		{spec: "warn,alumet=trace", target: "alumet::agent::exec", want: LevelTrace},
		{spec: "alumet=error,alumet::agent=debug", target: "alumet::agent::builder", want: slog.LevelDebug},
		{spec: "alumet=error,alumet::agent=debug", target: "alumet::pipeline", want: slog.LevelError},
		{spec: "alumet=error", target: "alumet_agent", want: slog.LevelError},
		{spec: "alumet::agent::builder=info", target: "alumet::agent", want: LevelOff},
		// The later directive with the same name wins.
		{spec: "x=debug,x=warn", target: "x", want: slog.LevelWarn},
		{spec: "info,warn", target: "x", want: slog.LevelWarn},
		// The empty name matches everything, as long as the default.
		{spec: "info,=debug", target: "x", want: slog.LevelDebug},
		{spec: "=debug,info", target: "x", want: slog.LevelInfo},
		{spec: "info,=debug,warn", target: "x", want: slog.LevelDebug},
		{spec: " info , x = debug ", target: "x ", want: slog.LevelDebug},
		// Invalid parts are skipped, the rest applies.
		{spec: "x=loud", target: "x", want: slog.LevelError, wantErrs: []string{"invalid logging spec 'loud'"}},
		{spec: "info,x=loud", target: "x", want: slog.LevelInfo, wantErrs: []string{"invalid logging spec 'loud'"}},
		{spec: "a=b=c,debug", target: "a", want: slog.LevelDebug, wantErrs: []string{"invalid logging spec 'a=b=c'"}},
		{spec: "warning", target: "warning", want: LevelTrace},
		{spec: "debug/a/b", target: "x", want: slog.LevelError, wantErrs: []string{"invalid logging spec 'debug/a/b' (too many '/'s)"}},
		{spec: "debug/(", target: "x", want: slog.LevelDebug, wantErrs: []string{"invalid regex filter - "}},
	}
	for _, tt := range tests {
		t.Run(tt.spec+"@"+tt.target, func(t *testing.T) {
			f, errs := ParseFilter(tt.spec)
			var got []string
			for _, err := range errs {
				got = append(got, err.Error())
			}
			require.Len(t, got, len(tt.wantErrs))
			for i, w := range tt.wantErrs {
				require.True(t, strings.HasPrefix(got[i], w), "error %q, want %q", got[i], w)
			}
			require.Equal(t, tt.want, f.LevelFor(tt.target))
		})
	}
}

// TestFilterTargets says which of the agent's lines print under each filter.
func TestFilterTargets(t *testing.T) {
	type rec struct {
		target string
		level  slog.Level
		msg    string
	}
	recs := []rec{
		{"alumet_agent", slog.LevelInfo, "Starting Alumet agent 'alumet-agent' v0.1.0"},
		{"alumet::agent::builder", slog.LevelInfo, "🔥 ALUMET agent is ready."},
		{"alumet::agent::exec", slog.LevelInfo, "Child process exited with exit status: 0, Alumet will now stop."},
		{"plugin_kwollect_input", slog.LevelDebug, "Polling KwollectSource"},
		{"plugin_kwollect_input", slog.LevelInfo, "API request should be triggered with URL: https://x"},
		{"plugin_kwollect_input", slog.LevelWarn, "Measurement incomplete"},
		{"alumet::agent::builder", slog.LevelError, "Shutdown finished with errors"},
	}
	tests := []struct {
		spec string
		want []int // indexes of recs printed
	}{
		{"info", []int{0, 1, 2, 4, 5, 6}},
		{"plugin_kwollect_input=debug", []int{3, 4, 5}},
		{"plugin_kwollect_input", []int{3, 4, 5}},
		{"warn", []int{5, 6}},
		{"error,alumet::agent=info", []int{1, 2, 6}},
		{"alumet", []int{0, 1, 2, 6}},
		{"off", nil},
		{"OFF,plugin_kwollect_input=WARN", []int{5}},
		{"debug/API|ready", []int{1, 4}},
		{"/Shutdown", []int{6}},
		{"", []int{6}},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			f, errs := ParseFilter(tt.spec)
			require.Empty(t, errs)
			var got []int
			for i, r := range recs {
				if f.Enabled(r.target, r.level, r.msg) {
					got = append(got, i)
				}
			}
			require.Empty(t, cmp.Diff(tt.want, got))
		})
	}
}

func TestHandlerFormat(t *testing.T) {
	var out bytes.Buffer
	f, errs := ParseFilter("info,noisy=error")
	require.Empty(t, errs)
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
