package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// helpEnv is the environment of Alumet's recordings: the package's
// ALUMET_CONFIG, no thread variables.
func helpEnv(t *testing.T) {
	t.Helper()
	t.Setenv("ALUMET_CONFIG", "/etc/alumet/alumet-config.toml")
	for _, v := range []string{"ALUMET_NORMAL_THREADS", "ALUMET_PRIORITY_THREADS"} {
		t.Setenv(v, "")
		require.NoError(t, os.Unsetenv(v))
	}
}

func runHelp(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(args, &out, &errOut)
	require.Equal(t, 0, code, "%v: %s", args, errOut.String())
	require.Empty(t, errOut.String(), "%v", args)
	return out.String()
}

// TestHelpGolden keeps our help texts in testdata/help (go test -update
// rewrites them).
func TestHelpGolden(t *testing.T) {
	helpEnv(t)
	tests := []struct {
		file string
		args []string
	}{
		{"root-h.txt", []string{"-h"}},
		{"root-help.txt", []string{"--help"}},
		{"run-h.txt", []string{"run", "-h"}},
		{"exec-h.txt", []string{"exec", "-h"}},
		{"exec-help.txt", []string{"exec", "--help"}},
		{"watch-h.txt", []string{"watch", "-h"}},
		{"config-h.txt", []string{"config", "-h"}},
		{"config-regen-h.txt", []string{"config", "regen", "-h"}},
		{"plugins-h.txt", []string{"plugins", "-h"}},
		{"plugins-list-h.txt", []string{"plugins", "list", "-h"}},
		{"fetch-h.txt", []string{"fetch", "-h"}},
		{"kwollect-h.txt", []string{"kwollect", "-h"}},
		{"kwollect-metrics-h.txt", []string{"kwollect", "metrics", "-h"}},
		{"mark-h.txt", []string{"mark", "-h"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got := runHelp(t, tt.args...)
			path := filepath.Join("testdata", "help", tt.file)
			if *update {
				require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Empty(t, cmp.Diff(string(want), got), "%s (go test -update rewrites it)", path)
		})
	}
}

// oursSection is a section this agent adds, up to the next blank line.
var oursSection = regexp.MustCompile(`\n\n(` + oursCommands + `|` + oursOptions + `):\n(.+\n)*?(\n|$)`)

// TestHelpMatchesAlumet compares our -h with the help texts Alumet's
// integration tests record (testdata/alumet, see ORIGIN.md): once our own
// sections are taken out, every line is Alumet's, byte for byte.
func TestHelpMatchesAlumet(t *testing.T) {
	helpEnv(t)
	tests := []struct {
		file string
		args []string
	}{
		{"help-option.txt", []string{"-h"}},
		{"help-exec-option.txt", []string{"exec", "-h"}},
		{"help-watch-option.txt", []string{"watch", "-h"}},
		{"help-config-option.txt", []string{"config", "-h"}},
		{"help-plugins-option.txt", []string{"plugins", "-h"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			alumet, err := os.ReadFile(filepath.Join("testdata", "alumet", tt.file))
			require.NoError(t, err)
			got := runHelp(t, tt.args...)
			// Our sections come after Alumet's, never inside one.
			stripped := oursSection.ReplaceAllString(got, "\n\n")
			stripped = strings.TrimRight(stripped, "\n")
			require.Empty(t, cmp.Diff(string(alumet), stripped), "our help minus our sections vs Alumet's %s", tt.file)
		})
	}
}

// The layout rules of clap, on small commands.
func TestRenderHelp(t *testing.T) {
	mk := func() *cobra.Command {
		root := &cobra.Command{Use: "tool [OPTIONS]", Short: "A tool", Run: func(*cobra.Command, []string) {}}
		root.Flags().SortFlags = false
		f := root.Flags()
		f.StringP("name", "n", "", "The name")
		annotate(f, "name", annPossible, "a", "b")
		f.String("level", "", "The level")
		annotate(f, "level", annDefault, "info")
		annotate(f, "level", annEnv, "TOOL_LEVEL")
		annotate(f, "level", annLong, "The level.\n\nSecond paragraph.")
		f.BoolP("quiet", "q", false, "Say less")
		root.InitDefaultHelpFlag()
		return root
	}
	t.Setenv("TOOL_LEVEL", "debug")
	tests := []struct {
		name string
		long bool
		want string
	}{
		{"short", false, "A tool\n\nUsage: tool [OPTIONS]\n\nOptions:\n" +
			"  -n, --name <NAME>    The name [possible values: a, b]\n" +
			"      --level <LEVEL>  The level [env: TOOL_LEVEL=debug] [default: info]\n" +
			"  -q, --quiet          Say less\n" +
			"  -h, --help           Print help (see more with '--help')\n"},
		{"long", true, "A tool\n\nUsage: tool [OPTIONS]\n\nOptions:\n" +
			"  -n, --name <NAME>\n          The name\n          \n          [possible values: a, b]\n\n" +
			"      --level <LEVEL>\n          The level.\n          \n          Second paragraph.\n          \n          [env: TOOL_LEVEL=debug]\n          [default: info]\n\n" +
			"  -q, --quiet\n          Say less\n\n" +
			"  -h, --help\n          Print help (see a summary with '-h')\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Empty(t, cmp.Diff(tt.want, renderHelp(mk(), tt.long)))
		})
	}
}

func TestLongHelpAsked(t *testing.T) {
	tests := []struct {
		args []string
		want bool
	}{
		{[]string{"-h"}, false},
		{[]string{"--help"}, true},
		{[]string{"exec", "--help"}, true},
		{[]string{"exec", "-h", "--help"}, false},
		{[]string{"exec", "--", "prog", "--help"}, false},
		{nil, false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, longHelpAsked(tt.args), "%v", tt.args)
	}
}

// The help subcommand gives the long help, as clap's does, at every level.
func TestHelpSubcommandIsLong(t *testing.T) {
	helpEnv(t)
	tests := []struct{ help, flag []string }{
		{[]string{"help"}, []string{"--help"}},
		{[]string{"help", "exec"}, []string{"exec", "--help"}},
		{[]string{"config", "help", "regen"}, []string{"config", "regen", "--help"}},
		{[]string{"plugins", "help"}, []string{"plugins", "--help"}},
		{[]string{"kwollect", "help", "metrics"}, []string{"kwollect", "metrics", "--help"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.help, " "), func(t *testing.T) {
			require.Empty(t, cmp.Diff(runHelp(t, tt.flag...), runHelp(t, tt.help...)))
		})
	}
}
