package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// unreachableAPI is an api_url nothing listens on: the tests that use it
// must fail before any query.
const unreachableAPI = "http://127.0.0.1:9/stable"

// precious is a CSV from an earlier run that a refused command must leave
// byte-identical.
const precious = "metric;timestamp;value\nwattmetre_power_watt_W;2026-11-30T10:00:00Z;142.5\n"

// stderrLines counts the lines of a stderr.
func stderrLines(s string) int { return strings.Count(strings.TrimSuffix(s, "\n"), "\n") + 1 }

// TestUsagePluginTypo: a --plugins name that is neither ours nor Alumet's
// stops the agent before anything runs: exit 2, a suggestion, the command
// not spawned, the earlier CSV and config untouched, no config generated.
func TestUsagePluginTypo(t *testing.T) {
	t.Parallel()
	const suggestion = `error: --plugins: unknown plugin "kwolect-input" (did you mean kwollect-input?)`
	tests := []struct {
		name     string
		noConfig bool // run without a config file: none must be generated
		args     []string
		wantHelp string
	}{
		{name: "exec", args: []string{"--plugins", "csv,kwolect-input", "exec", "--", "touch", "marker"}, wantHelp: "alumet-agent exec"},
		{name: "exec without config", noConfig: true, args: []string{"--plugins", "csv,kwolect-input", "exec", "--", "touch", "marker"}, wantHelp: "alumet-agent exec"},
		{name: "watch", args: []string{"--plugins", "csv,kwolect-input", "watch", strconv.Itoa(os.Getpid())}, wantHelp: "alumet-agent watch"},
		{name: "fetch", args: []string{"--plugins", "kwolect-input,csv", "fetch", "--from", "-2m", "--to", "-1m"}, wantHelp: "alumet-agent fetch"},
		{name: "run", args: []string{"--plugins", "csv,kwolect-input"}, wantHelp: "alumet-agent"},
		{name: "config regen", args: []string{"--plugins", "csv,kwolect-input", "config", "regen"}, wantHelp: "alumet-agent config regen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cfg := seedConfig("alice", "${G5K_PASSWORD}", unreachableAPI)
			if !tt.noConfig {
				writeConfig(t, dir, cfg)
			}
			require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-output.csv"), []byte(precious), 0o644))
			res := runAgent(t, dir, nil, tt.args...)
			require.Equal(t, 2, res.code, res.stderr)
			require.Equal(t, suggestion+"\nRun '"+tt.wantHelp+" --help' for usage.\n", res.stderr)
			require.NoFileExists(t, filepath.Join(dir, "marker"), "the command must not run")
			b, err := os.ReadFile(filepath.Join(dir, "alumet-output.csv"))
			require.NoError(t, err)
			require.Equal(t, precious, string(b), "the earlier CSV must be left alone")
			if tt.noConfig {
				require.NoFileExists(t, filepath.Join(dir, "alumet-config.toml"), "no config is generated for a typo")
			} else {
				b, err = os.ReadFile(filepath.Join(dir, "alumet-config.toml"))
				require.NoError(t, err)
				require.Equal(t, cfg, string(b))
				require.NoFileExists(t, filepath.Join(dir, "alumet-config.toml.bak"))
			}
		})
	}
}

// TestUsageAlumetPluginNotShipped: Alumet plugins this agent lacks keep
// Alumet's behaviour: one ERROR line each, and the measurement goes on.
func TestUsageAlumetPluginNotShipped(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "0s")
	dir := t.TempDir()
	writeConfig(t, dir, seedConfig("", "", api))
	notShipped := []string{"procfs", "socket-control", "mongodb", "relay-client", "k8s"}
	res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input,"+strings.Join(notShipped, ","),
		"exec", "--", "sh", "-c", "touch marker; sleep 1")
	require.Equal(t, 0, res.code, res.stderr)
	for _, name := range notShipped {
		require.Regexp(t, `(?m)^\[\S+ ERROR alumet_agent\] Plugin `+regexp.QuoteMeta(name)+` is not available in this binary of Alumet Agent\.$`, res.stderr)
	}
	require.FileExists(t, filepath.Join(dir, "marker"), "the command runs")
	checkCSV(t, filepath.Join(dir, "out.csv"), res.stderr, 1)
}

// TestUsageNoSource: exec, watch, fetch and run without a measurement
// source are refused before the plugins start (exit 2): the command is not
// spawned and the CSV of an earlier run is not truncated.
func TestUsageNoSource(t *testing.T) {
	t.Parallel()
	const viaFlag = "error: no source is enabled: nothing would be measured; add kwollect-input or rapl to --plugins"
	tests := []struct {
		name     string
		config   string // "" for the seed section
		noConfig bool   // no config file: none must be generated
		args     []string
		wantErr  string
	}{
		{name: "exec", args: []string{"--plugins", "csv", "exec", "--", "touch", "marker"},
			wantErr: viaFlag + " (e.g. --plugins csv,kwollect-input)"},
		{name: "exec without config", noConfig: true, args: []string{"--plugins", "csv", "exec", "--", "touch", "marker"},
			wantErr: viaFlag + " (e.g. --plugins csv,kwollect-input)"},
		{name: "exec with energy-report only", args: []string{"--plugins", "csv,energy-report", "exec", "--", "touch", "marker"},
			wantErr: viaFlag + " (e.g. --plugins csv,energy-report,kwollect-input)"},
		{name: "exec with an Alumet source", args: []string{"--plugins", "csv,procfs", "exec", "--", "touch", "marker"},
			wantErr: viaFlag + " (e.g. --plugins csv,procfs,kwollect-input)"},
		{name: "watch", args: []string{"--plugins", "csv", "watch", strconv.Itoa(os.Getpid())},
			wantErr: viaFlag + " (e.g. --plugins csv,kwollect-input)"},
		{name: "fetch", args: []string{"--plugins", "csv", "fetch", "--from", "-2m", "--to", "-1m"},
			wantErr: viaFlag + " (e.g. --plugins csv,kwollect-input)"},
		{name: "run", args: []string{"--plugins", "csv"},
			wantErr: viaFlag + " (e.g. --plugins csv,kwollect-input)"},
		{name: "config without a source", config: "[plugins.csv]\n\n[plugins.kwollect-input]\nenabled = false\n",
			args:    []string{"exec", "--", "touch", "marker"},
			wantErr: "error: no source is enabled in alumet-config.toml: nothing would be measured; add a [plugins.kwollect-input] section (without enabled = false) or use --plugins csv,kwollect-input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cfg := tt.config
			if cfg == "" {
				cfg = seedConfig("", "", unreachableAPI)
			}
			if !tt.noConfig {
				writeConfig(t, dir, cfg)
			}
			require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-output.csv"), []byte(precious), 0o644))
			res := runAgent(t, dir, nil, tt.args...)
			require.Equal(t, 2, res.code, res.stderr)
			require.Contains(t, res.stderr, tt.wantErr+"\nRun '")
			require.LessOrEqual(t, stderrLines(res.stderr), 3, res.stderr)
			if tt.noConfig {
				require.NoFileExists(t, filepath.Join(dir, "alumet-config.toml"), "with --plugins the check comes before the config is generated")
			}
			require.NoFileExists(t, filepath.Join(dir, "marker"), "the command must not run")
			b, err := os.ReadFile(filepath.Join(dir, "alumet-output.csv"))
			require.NoError(t, err)
			require.Equal(t, precious, string(b), "the earlier CSV must not be truncated")
		})
	}
}

var windowLine = regexp.MustCompile(`INFO  alumet::agent::fetch\] Fetching the window \[(\S+), (\S+)\]( \((.*)\))?\n`)

// loggedWindow returns the window of the agent's "Fetching the window" line
// and its note in parentheses.
func loggedWindow(t *testing.T, stderr string) (start, end time.Time, note string) {
	t.Helper()
	m := windowLine.FindStringSubmatch(stderr)
	require.NotNil(t, m, "no window line in the log:\n%s", stderr)
	start, err := time.Parse(time.RFC3339Nano, m[1])
	require.NoError(t, err)
	end, err = time.Parse(time.RFC3339Nano, m[2])
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(m[1], "Z") && strings.HasSuffix(m[2], "Z"), "the logged window is in UTC: %s", m[0])
	return start, end, m[4]
}

// TestUsageFetchTimes: local times (read in $TZ), relative times and the
// +D form of --to, through the binary against the emulator; the logged UTC
// window is the one queried, and the CSV holds exactly its rows.
func TestUsageFetchTimes(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "0s")
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	// A local start two hours ago, on a whole minute, away from a change of
	// offset (the agent rightly refuses a time that the clocks skip or repeat).
	local := time.Now().In(paris).Add(-2 * time.Hour).Truncate(time.Minute)
	for {
		_, before := local.Add(-3 * time.Hour).Zone()
		_, after := local.Add(3 * time.Hour).Zone()
		if before == after {
			break
		}
		local = local.AddDate(0, 0, -1)
	}
	start := local.UTC()
	offset := local.Format("-07:00")
	tests := []struct {
		name, from, to     string
		wantStart, wantEnd time.Time // zero: relative to now, checked with endAgo and duration
		endAgo, duration   time.Duration
		wantNote           string // regexp
	}{
		{name: "T separator and +D", from: local.Format("2006-01-02T15:04:05"), to: "+2m",
			wantStart: start, wantEnd: start.Add(2 * time.Minute),
			wantNote: regexp.QuoteMeta("from " + local.Format("2006-01-02T15:04:05") + " in Europe/Paris, UTC" + offset + "; to 2m after from")},
		{name: "space separator, both local", from: local.Format("2006-01-02 15:04:05"), to: local.Add(90 * time.Second).Format("2006-01-02 15:04:05"),
			wantStart: start, wantEnd: start.Add(90 * time.Second),
			wantNote: regexp.QuoteMeta("from " + local.Format("2006-01-02 15:04:05") + " in Europe/Paris, UTC" + offset +
				"; to " + local.Add(90*time.Second).Format("2006-01-02 15:04:05") + " in Europe/Paris, UTC" + offset)},
		{name: "minutes only, +D in humantime", from: local.Format("2006-01-02T15:04"), to: "+1m 30s",
			wantStart: start, wantEnd: start.Add(90 * time.Second),
			wantNote: regexp.QuoteMeta("from " + local.Format("2006-01-02T15:04") + " in Europe/Paris, UTC" + offset + "; to 1m 30s after from")},
		{name: "-D and now-D", from: "-3m", to: "now-1m", endAgo: time.Minute, duration: 2 * time.Minute,
			wantNote: `^from -3m; to now-1m; now = \S+Z$`},
		{name: "now-D and now+0s", from: "now-90s", to: "now+0s", duration: 90 * time.Second,
			wantNote: `^from now-90s; to now\+0s; now = \S+Z$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeConfig(t, dir, seedConfig("", "", api))
			before := time.Now()
			res := runAgent(t, dir, []string{"TZ=Europe/Paris"}, "--output-file", "out.csv", "--plugins", "csv,kwollect-input",
				"fetch", "--from", tt.from, "--to", tt.to)
			after := time.Now()
			require.Equal(t, 0, res.code, res.stderr)
			gotStart, gotEnd, note := loggedWindow(t, res.stderr)
			require.Regexp(t, tt.wantNote, note)
			if !tt.wantStart.IsZero() {
				require.True(t, tt.wantStart.Equal(gotStart), "start %v, want %v", gotStart, tt.wantStart)
				require.True(t, tt.wantEnd.Equal(gotEnd), "end %v, want %v", gotEnd, tt.wantEnd)
			} else {
				require.Equal(t, tt.duration, gotEnd.Sub(gotStart))
				require.WithinRange(t, gotEnd, before.Add(-tt.endAgo), after.Add(-tt.endAgo))
			}
			// The query is that window (Alumet floors the start to the second;
			// end_time has Kwollect's microseconds).
			qStart, qEnd := fetchWindow(t, res.stderr)
			require.WithinDuration(t, gotEnd, qEnd, time.Microsecond, "query end %v, logged %v", qEnd, gotEnd)
			require.True(t, gotStart.Truncate(time.Second).Equal(qStart), "query start %v, logged %v", qStart, gotStart)
			checkCSV(t, filepath.Join(dir, "out.csv"), res.stderr, 1)
		})
	}
}

// TestUsageErrorFormat: a usage error is the error and one line pointing at
// the command's --help, not the usage block; exit code 2.
func TestUsageErrorFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     []string
		args    []string
		wantErr string // the first line, after "error: "
		help    string // the command named in the second line
	}{
		{name: "unknown flag", args: []string{"--bogus"}, wantErr: "unknown flag: --bogus", help: "alumet-agent"},
		{name: "bad time", args: []string{"fetch", "--from", "x", "--to", "now"}, wantErr: `--from: invalid time "x": use RFC 3339`, help: "alumet-agent fetch"},
		{name: "+D in --from", args: []string{"fetch", "--from", "+30m", "--to", "now"}, wantErr: `--from: "+30m" is a time after --from, which only --to can use`, help: "alumet-agent fetch"},
		{name: "duration without unit", args: []string{"fetch", "--from", "-10", "--to", "now"}, wantErr: `--from: invalid time "-10": invalid duration "10": missing unit after 10`, help: "alumet-agent fetch"},
		{name: "future", args: []string{"fetch", "--from", "-1m", "--to", "+2m"}, wantErr: "is in the future; use exec or run to measure from now on", help: "alumet-agent fetch"},
		{name: "skipped local time", env: []string{"TZ=Europe/Paris"}, args: []string{"fetch", "--from", "2026-03-29 02:30", "--to", "+1h"},
			wantErr: `--from: invalid time "2026-03-29 02:30": the clocks of Europe/Paris skip 2026-03-29T02:30:00 (a change of offset); give an offset, e.g. 2026-03-29T02:30:00+01:00`, help: "alumet-agent fetch"},
		{name: "unknown TZ", env: []string{"TZ=Mars/Olympus_Mons"}, args: []string{"fetch", "--from", "2026-11-30 20:00", "--to", "+1h"},
			wantErr: `TZ="Mars/Olympus_Mons" is not a time zone this system knows`, help: "alumet-agent fetch"},
		{name: "exec without program", args: []string{"exec"}, wantErr: "exec needs a PROGRAM to run", help: "alumet-agent exec"},
		{name: "bad pid", args: []string{"watch", "abc"}, wantErr: `invalid PID "abc"`, help: "alumet-agent watch"},
		{name: "plugin typo", args: []string{"--plugins", "csb", "plugins", "list", "--status"}, wantErr: `--plugins: unknown plugin "csb" (did you mean csv?)`, help: "alumet-agent plugins list"},
		{name: "help topic", args: []string{"help", "nope"}, wantErr: `unknown help topic "nope"`, help: "alumet-agent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := runAgent(t, t.TempDir(), tt.env, tt.args...)
			require.Equal(t, 2, res.code, res.stderr)
			require.LessOrEqual(t, stderrLines(res.stderr), 3, res.stderr)
			require.NotContains(t, res.stderr, "Usage:")
			require.NotContains(t, res.stderr, "Flags:")
			lines := strings.Split(strings.TrimSuffix(res.stderr, "\n"), "\n")
			require.Equal(t, "Run '"+tt.help+" --help' for usage.", lines[len(lines)-1])
			require.True(t, strings.HasPrefix(lines[len(lines)-2], "error: "), res.stderr)
			require.Contains(t, lines[len(lines)-2], tt.wantErr)
		})
	}
}

// TestUsageConfigRegenBackup: regen over an edited file keeps it as .bak
// (same bytes, same mode) and warns once; over its own output it changes
// nothing; a later regen over another edit uses .bak.1, never replacing the
// first backup, and warns when the backup exposes a literal password.
func TestUsageConfigRegenBackup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "alumet-config.toml")
	old := seedConfig("alice", "${G5K_PASSWORD}", "http://127.0.0.1:8080/stable")
	require.NoError(t, os.WriteFile(path, []byte(old), 0o600))

	res := runAgent(t, dir, nil, "config", "regen")
	require.Equal(t, 0, res.code, res.stderr)
	require.Equal(t, 1, strings.Count(res.stderr, "Default configuration file written to: alumet-config.toml\n"), res.stderr)
	require.Equal(t, 1, strings.Count(res.stderr, "WARN  alumet_agent] Previous configuration kept as alumet-config.toml.bak\n"), res.stderr)
	bak, err := os.ReadFile(path + ".bak")
	require.NoError(t, err)
	require.Equal(t, old, string(bak), "the .bak is the old file")
	for _, p := range []string{path, path + ".bak"} {
		info, err := os.Stat(p)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "%s keeps the old file's mode", p)
	}
	regenerated, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(regenerated), "[plugins.csv]")
	require.NotEqual(t, old, string(regenerated))

	// Again: the file already holds the defaults, nothing moves.
	res = runAgent(t, dir, nil, "config", "regen")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stderr, "Default configuration file unchanged: alumet-config.toml")
	require.NotContains(t, res.stderr, "written to")
	require.NotContains(t, res.stderr, "Previous configuration")
	bak, err = os.ReadFile(path + ".bak")
	require.NoError(t, err)
	require.Equal(t, old, string(bak), "the .bak still holds the credentials")
	again, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(regenerated), string(again))

	// An edit (here a literal password, world-readable) then a regen: the
	// edited file goes to the first free name, never over the first backup,
	// and the warning says that the backup exposes the password.
	edited := seedConfig("alice", "hunter2", "http://127.0.0.1:8080/stable")
	require.NoError(t, os.WriteFile(path, []byte(edited), 0o644))
	require.NoError(t, os.Chmod(path, 0o644))
	res = runAgent(t, dir, nil, "config", "regen")
	require.Equal(t, 0, res.code, res.stderr)
	require.Equal(t, 1, strings.Count(res.stderr, "Previous configuration kept"), res.stderr)
	require.Contains(t, res.stderr, "WARN  alumet_agent] Previous configuration kept as alumet-config.toml.bak.1 (the older backups are kept too); "+
		"it holds a literal secret (plugins.kwollect-input.password) and is readable by group or others (mode 0644): "+
		"run chmod 600 alumet-config.toml.bak.1 (or delete it once you have copied what you need), "+
		`and write password = "${VAR}" with VAR set in the environment instead`+"\n")
	require.NotContains(t, res.stderr, "hunter2")
	bak, err = os.ReadFile(path + ".bak")
	require.NoError(t, err)
	require.Equal(t, old, string(bak), "the first backup is never replaced")
	bak1, err := os.ReadFile(path + ".bak.1")
	require.NoError(t, err)
	require.Equal(t, edited, string(bak1))
}
