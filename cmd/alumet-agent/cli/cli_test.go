package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func paris(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	return loc
}

func TestParseInstant(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	loc := paris(t)
	tests := []struct {
		in        string
		want      time.Time
		local     bool
		sinceFrom time.Duration // the +D form
		wantErr   string
	}{
		{in: "now", want: now},
		{in: " now ", want: now},
		{in: "now-10m", want: now.Add(-10 * time.Minute)},
		{in: "now - 1h 30m", want: now.Add(-90 * time.Minute)},
		{in: "now+0s", want: now},
		{in: "now+90s", want: now.Add(90 * time.Second)},
		{in: "-10m", want: now.Add(-10 * time.Minute)},
		{in: "-1d", want: now.Add(-24 * time.Hour)},
		{in: "+30m", sinceFrom: 30 * time.Minute},
		{in: "+1h 30m", sinceFrom: 90 * time.Minute},
		{in: "2025-07-22T13:05:26+02:00", want: time.Date(2025, 7, 22, 11, 5, 26, 0, time.UTC)},
		{in: "2025-07-22T11:05:26.25Z", want: time.Date(2025, 7, 22, 11, 5, 26, 250e6, time.UTC)},
		{in: "2025-07-22 11:05:26Z", want: time.Date(2025, 7, 22, 11, 5, 26, 0, time.UTC)},
		{in: "1753182326", want: time.Unix(1753182326, 0)},
		{in: "1753182326.123456789", want: time.Unix(1753182326, 123456789)},
		// Local times: Paris is UTC+1 in December, UTC+2 in July.
		{in: "2026-12-01T20:00:00", want: time.Date(2026, 12, 1, 19, 0, 0, 0, time.UTC), local: true},
		{in: "2026-12-01 20:00:00", want: time.Date(2026, 12, 1, 19, 0, 0, 0, time.UTC), local: true},
		{in: "2026-12-01T20:00", want: time.Date(2026, 12, 1, 19, 0, 0, 0, time.UTC), local: true},
		{in: "2026-12-01 20:00", want: time.Date(2026, 12, 1, 19, 0, 0, 0, time.UTC), local: true},
		{in: "2026-12-01T20:00:00.5", want: time.Date(2026, 12, 1, 19, 0, 0, 5e8, time.UTC), local: true},
		{in: "2026-07-01T20:00:00", want: time.Date(2026, 7, 1, 18, 0, 0, 0, time.UTC), local: true},
		{in: "2026-12-01", want: time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC), local: true},
		// Just before and after the changes of 2026 (29 March, 25 October).
		{in: "2026-03-29T01:59:59", want: time.Date(2026, 3, 29, 0, 59, 59, 0, time.UTC), local: true},
		{in: "2026-03-29T03:00:00", want: time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC), local: true},
		{in: "2026-10-25T01:59:59", want: time.Date(2026, 10, 24, 23, 59, 59, 0, time.UTC), local: true},
		{in: "2026-10-25T03:00:00", want: time.Date(2026, 10, 25, 2, 0, 0, 0, time.UTC), local: true},
		{in: "2026-03-29T02:30:00", wantErr: "the clocks of Europe/Paris skip 2026-03-29T02:30:00 (a change of offset); give an offset, e.g. 2026-03-29T02:30:00+01:00"},
		{in: "2026-10-25T02:30:00", wantErr: "the clocks of Europe/Paris show 2026-10-25T02:30:00 twice (a change of offset); give an offset: 2026-10-25T02:30:00+02:00 or 2026-10-25T02:30:00+01:00"},
		{in: "-10", wantErr: "missing unit after 10"},
		{in: "+30", wantErr: "missing unit after 30"},
		{in: "now-", wantErr: "empty value"},
		{in: "now-10", wantErr: "missing unit after 10"},
		{in: "now10m", wantErr: "expected now, now-D or now+D"},
		{in: "now--10m", wantErr: "negative durations are not allowed"},
		{in: "-1.5h", wantErr: "fractions are not supported"},
		{in: "2026-12-01T25:00:00", wantErr: "use RFC 3339"},
		{in: "1e9", wantErr: "use RFC 3339"},
		{in: "1/2", wantErr: "use RFC 3339"},
		{in: "yesterday", wantErr: "use RFC 3339"},
		{in: "", wantErr: "use RFC 3339"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseInstant(tt.in, now, loc)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, "invalid time "+`"`+strings.TrimSpace(tt.in)+`"`)
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			if tt.sinceFrom != 0 {
				require.True(t, got.sinceFrom)
				require.Equal(t, tt.sinceFrom, got.offset)
				return
			}
			require.False(t, got.sinceFrom)
			require.True(t, tt.want.Equal(got.at), "got %v, want %v", got.at, tt.want)
			require.Equal(t, tt.local, got.local)
		})
	}
}

func TestResolveWindow(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	loc := paris(t)
	tests := []struct {
		name, from, to     string
		wantStart, wantEnd time.Time
		wantNote           string
		wantErr            string
	}{
		{name: "local and +D", from: "2026-12-01T20:00:00", to: "+30m",
			wantStart: time.Date(2026, 12, 1, 19, 0, 0, 0, time.UTC), wantEnd: time.Date(2026, 12, 1, 19, 30, 0, 0, time.UTC),
			wantNote: "from 2026-12-01T20:00:00 in Europe/Paris, UTC+01:00; to 30m after from"},
		{name: "relative to now", from: "-10m", to: "now",
			wantStart: now.Add(-10 * time.Minute), wantEnd: now,
			wantNote: "from -10m; to now; now = 2026-12-02T12:00:00Z"},
		{name: "absolute: no note", from: "2026-12-01T19:00:00Z", to: "2026-12-01T20:00:00+01:00",
			wantStart: time.Date(2026, 12, 1, 19, 0, 0, 0, time.UTC), wantEnd: time.Date(2026, 12, 1, 19, 0, 0, 0, time.UTC),
			wantErr: "--to (2026-12-01T20:00:00+01:00) must be after --from (2026-12-01T19:00:00Z)"},
		{name: "+D in --from", from: "+30m", to: "now", wantErr: `--from: "+30m" is a time after --from, which only --to can use; for a time before now, write -30m or now-30m`},
		{name: "future", from: "-10m", to: "+1h", wantErr: "--to (2026-12-02T12:50:00Z) is in the future"},
		{name: "bad --from", from: "x", to: "now", wantErr: `--from: invalid time "x": use RFC 3339`},
		{name: "bad --to", from: "-1h", to: "now-", wantErr: `--to: invalid time "now-": invalid duration`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := resolveWindow(tt.from, tt.to, now, loc)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.True(t, tt.wantStart.Equal(w.start), "start %v", w.start)
			require.True(t, tt.wantEnd.Equal(w.end), "end %v", w.end)
			require.Equal(t, tt.wantNote, w.note)
		})
	}
}

func TestCheckLocalZone(t *testing.T) {
	t.Setenv("TZ", "Europe/Paris")
	require.NoError(t, checkLocalZone())
	require.Equal(t, "Europe/Paris", zoneName(time.Local))
	t.Setenv("TZ", "Mars/Olympus_Mons")
	require.ErrorContains(t, checkLocalZone(), `TZ="Mars/Olympus_Mons" is not a time zone this system knows`)
	t.Setenv("TZ", "")
	require.NoError(t, checkLocalZone())
}

// FuzzParseInstant: no input panics; an absolute result prints back (RFC
// 3339) to the same instant; an error names the input.
func FuzzParseInstant(f *testing.F) {
	for _, s := range []string{"now", "now-10m", "now+0s", "-10m", "+30m", "+1h 30m", "2026-12-01T20:00:00", "2026-12-01 20:00:00",
		"2026-12-01T20:00", "2026-12-01", "2026-03-29T02:30:00", "2026-10-25T02:30:00", "2025-07-22T13:05:26+02:00",
		"2025-07-22 11:05:26.25Z", "1753182326.5", "-10", "1e9", "", "now-", "9999-12-31T23:59:59", "-292y"} {
		f.Add(s)
	}
	loc := paris(f)
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseInstant(s, now, loc)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "invalid time ") {
				t.Fatalf("error without the input: %v", err)
			}
			return
		}
		if got.sinceFrom {
			if got.offset < 0 {
				t.Fatalf("negative offset %v from %q", got.offset, s)
			}
			return
		}
		if got.at.Year() < 0 || got.at.Year() > 9999 {
			return // RFC 3339 cannot print it
		}
		text := got.at.Format(time.RFC3339Nano)
		back, err := parseInstant(text, now, loc)
		if err != nil {
			t.Fatalf("%q → %s does not parse back: %v", s, text, err)
		}
		if !back.at.Equal(got.at) || back.local {
			t.Fatalf("%q → %s → %v", s, text, back.at)
		}
	})
}

func TestMainUsageAndVersion(t *testing.T) {
	version, detail := versionInfo()
	tests := []struct {
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{[]string{"-V"}, 0, "alumet-agent " + version + " (" + detail + ")\n", ""},
		{[]string{"--bogus"}, 2, "", "error: unknown flag: --bogus\nRun 'alumet-agent --help' for usage.\n"},
		{[]string{"fetch"}, 2, "", "error: fetch needs --from and --to, or --job-id\nRun 'alumet-agent fetch --help' for usage.\n"},
		{[]string{"fetch", "--from", "now", "--to", "now"}, 2, "", "must be after"},
		{[]string{"fetch", "--from", "+1h", "--to", "now"}, 2, "", "only --to can use"},
		{[]string{"--plugins", "csv,kwolect-input", "plugins", "list"}, 2, "",
			"error: --plugins: unknown plugin \"kwolect-input\" (did you mean kwollect-input?)\nRun 'alumet-agent plugins list --help' for usage.\n"},
		{[]string{"kwollect", "metrics"}, 2, "", "needs --site and --node"},
		{[]string{"config"}, 2, "", "config needs a subcommand"},
		{[]string{"config", "foo"}, 2, "", "unknown command"},
		{[]string{"run", "extra"}, 2, "", "unknown command"},
		{[]string{"kwollect", "foo"}, 2, "", "unknown command"},
		{[]string{"help", "nope"}, 2, "", "error: unknown help topic \"nope\"\nRun 'alumet-agent --help' for usage.\n"},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code := Main(tt.args, &out, &errOut)
		require.Equal(t, tt.wantCode, code, "%v: %s", tt.args, errOut.String())
		require.Contains(t, out.String(), tt.wantOut)
		require.Contains(t, errOut.String(), tt.wantErr)
		if tt.wantCode == 2 {
			require.NotContains(t, errOut.String(), "Usage:", "%v: the usage block is not printed", tt.args)
			require.LessOrEqual(t, strings.Count(errOut.String(), "\n"), 2, "%v: %s", tt.args, errOut.String())
		}
	}
}

// Which lines print under RUST_LOG, ALUMET_LOG and --log-level, through
// the command line: config regen logs one INFO line (target alumet_agent).
func TestLogFilterSources(t *testing.T) {
	const written = "Default configuration file written to: "
	tests := []struct {
		name             string
		rustLog, alumLog string
		args             []string
		wantCode         int
		want, not        []string
	}{
		{name: "default info", want: []string{" INFO  alumet_agent] " + written}},
		{name: "empty variables are unset", rustLog: "", alumLog: "", want: []string{written}},
		{name: "a module directive alone turns the rest off", rustLog: "plugin_kwollect_input=debug", not: []string{written}},
		{name: "a bare level", rustLog: "warn", not: []string{written}},
		{name: "prefix of the target", rustLog: "alumet=info", want: []string{written}},
		{name: "case-insensitive", rustLog: "INFO", want: []string{written}},
		{name: "invalid part skipped with env_logger's warning", rustLog: "x=loud,info",
			want: []string{"warning: invalid logging spec 'loud', ignoring it\n", written}},
		{name: "ALUMET_LOG wins over RUST_LOG", rustLog: "info", alumLog: "off", not: []string{written}},
		{name: "the flag wins", rustLog: "off", alumLog: "off", args: []string{"--log-level", "info"}, want: []string{written}},
		{name: "the flag's typo is a usage error", args: []string{"--log-level", "loud"}, wantCode: 2,
			want: []string{"invalid log level \"loud\""}, not: []string{written}},
		{name: "the flag's invalid directive is a usage error", args: []string{"--log-level", "x=loud"}, wantCode: 2,
			want: []string{"invalid logging spec 'loud'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("RUST_LOG", tt.rustLog)
			t.Setenv("ALUMET_LOG", tt.alumLog)
			t.Setenv("ALUMET_CONFIG", "")
			path := t.TempDir() + "/c.toml"
			var out, errOut bytes.Buffer
			args := append(append([]string(nil), tt.args...), "--config", path, "config", "regen")
			require.Equal(t, tt.wantCode, Main(args, &out, &errOut), errOut.String())
			for _, w := range tt.want {
				require.Contains(t, errOut.String(), w)
			}
			for _, n := range tt.not {
				require.NotContains(t, errOut.String(), n)
			}
		})
	}
}

// An agent failure is said even when the filter hides the agent's lines:
// Alumet prints it outside its logger.
func TestErrorSaidWhenFiltered(t *testing.T) {
	for _, spec := range []string{"off", "plugin_kwollect_input=debug", "info"} {
		t.Run(spec, func(t *testing.T) {
			t.Setenv("RUST_LOG", spec)
			t.Setenv("ALUMET_LOG", "")
			var out, errOut bytes.Buffer
			code := Main([]string{"--no-default-config", "--config", t.TempDir() + "/missing.toml", "plugins", "list", "--status"}, &out, &errOut)
			require.Equal(t, 1, code)
			require.Contains(t, errOut.String(), "Error: ")
			require.Equal(t, 1, strings.Count(errOut.String(), "Error: "), errOut.String())
		})
	}
}
