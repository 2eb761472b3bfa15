package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCLI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string // exact when set
		wantStderr []string
	}{
		{name: "plugins list", args: []string{"plugins", "list"}, wantStdout: "Available plugins:\n- csv v0.2.0\n- kwollect-input v1.0.0\n- energy-report v0.1.0\n- parquet v0.1.0\n\nEdit the configuration file or use the --plugins flag to enable/disable plugins.\n"},
		{name: "plugins list status", args: []string{"--plugins", "csv", "plugins", "list", "--status"},
			wantStdout: "Enabled plugins:\n- csv v0.2.0\n\nDisabled plugins:\n- kwollect-input v1.0.0\n- energy-report v0.1.0\n- parquet v0.1.0\n\nEdit the configuration file or use the --plugins flag to enable/disable plugins.\n"},
		{name: "plugins status before list", args: []string{"--plugins", "csv", "plugins", "--status", "list"},
			wantStdout: "Enabled plugins:\n- csv v0.2.0\n\nDisabled plugins:\n- kwollect-input v1.0.0\n- energy-report v0.1.0\n- parquet v0.1.0\n\nEdit the configuration file or use the --plugins flag to enable/disable plugins.\n"},
		{name: "version", args: []string{"--version"}, wantStderr: nil},
		{name: "help", args: []string{"--help"}, wantCode: 0},
		{name: "unknown flag", args: []string{"--bogus"}, wantCode: 2, wantStderr: []string{"unknown flag: --bogus", "Run 'alumet-agent --help' for usage."}},
		{name: "unknown command", args: []string{"bogus"}, wantCode: 2, wantStderr: []string{"bogus"}},
		{name: "exec without program", args: []string{"exec"}, wantCode: 2, wantStderr: []string{"exec needs a PROGRAM"}},
		{name: "global flag after exec", args: []string{"exec", "--plugins", "csv", "true"}, wantCode: 2, wantStderr: []string{"unknown flag: --plugins"}},
		{name: "watch bad pid", args: []string{"watch", "abc"}, wantCode: 2, wantStderr: []string{`invalid PID "abc"`}},
		{name: "bad log level", args: []string{"--log-level", "loud", "plugins", "list"}, wantCode: 2, wantStderr: []string{"invalid log level"}},
		{name: "missing config", args: []string{"--no-default-config", "--config", "nope.toml", "exec", "true"}, wantCode: 1, wantStderr: []string{"nope.toml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runAgent(t, t.TempDir(), nil, tt.args...)
			require.Equal(t, tt.wantCode, res.code, res.stderr)
			if tt.wantStdout != "" {
				require.Equal(t, tt.wantStdout, res.stdout)
			}
			for _, s := range tt.wantStderr {
				require.Contains(t, res.stderr, s)
			}
		})
	}
}

func TestVersionAndHelp(t *testing.T) {
	t.Parallel()
	res := runAgent(t, t.TempDir(), nil, "-V")
	require.Equal(t, 0, res.code)
	require.Regexp(t, `^alumet-agent \S+ \(\S+\)\n$`, res.stdout)
	res = runAgent(t, t.TempDir(), nil, "-h")
	require.Equal(t, 0, res.code)
	require.True(t, strings.HasPrefix(res.stdout, "Alumet standard agent: measure energy and performance metrics"), res.stdout)
	for _, c := range []string{"run", "exec", "watch", "config", "plugins", "help"} {
		require.Regexp(t, `(?m)^\s+`+c+`\s`, res.stdout)
	}
}

func TestConfigRegenAndDefault(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	res := runAgent(t, dir, nil, "--config", "gen.toml", "config", "regen")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stderr, "Default configuration file written to: gen.toml")
	b, err := os.ReadFile(filepath.Join(dir, "gen.toml"))
	require.NoError(t, err)
	s := string(b)
	require.Contains(t, s, "[plugins.csv]")
	require.Contains(t, s, "[plugins.kwollect-input]")
	require.Less(t, strings.Index(s, "[plugins.csv]"), strings.Index(s, "[plugins.kwollect-input]"))
	require.NotRegexp(t, `(?m)^utc_offset`, s, "the deprecated key is not generated (its sample comment may stay)")
	// The plugins' sample comments come with the generated values.
	require.Contains(t, s, "# Write the metric cell as <metric name>_<unit>")
	require.Contains(t, s, "concurrency = 4                   # concurrent requests per site")

	// A missing config is generated and written, then used.
	res = runAgent(t, dir, nil, "--plugins", "csv", "plugins", "list", "--status")
	require.Equal(t, 0, res.code, res.stderr)
	_, err = os.Stat(filepath.Join(dir, "alumet-config.toml"))
	require.NoError(t, err)
}

func TestConfigErrorsNameFileKeyLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := "[plugins.csv]\nouput_path = \"x.csv\"\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(cfg), 0o600))
	res := runAgent(t, dir, nil, "exec", "true")
	require.Equal(t, 1, res.code)
	require.Contains(t, res.stderr, "alumet-config.toml:2")
	require.Contains(t, res.stderr, "ouput_path")
	require.Contains(t, res.stderr, "output_path")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte("[plugins.kwollect]\n"), 0o600))
	res = runAgent(t, dir, nil, "exec", "true")
	require.Equal(t, 1, res.code)
	require.Contains(t, res.stderr, "unknown plugin 'kwollect' in configuration")
	require.Contains(t, res.stderr, "kwollect-input")
}
