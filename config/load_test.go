package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/plugin"
)

func TestResolvePath(t *testing.T) {
	tests := []struct {
		name string
		flag string
		env  env
		want string
	}{
		{"flag beats env", "from-flag.toml", env{"ALUMET_CONFIG": "/etc/alumet/alumet-config.toml"}, "from-flag.toml"},
		{"env", "", env{"ALUMET_CONFIG": "/etc/alumet/alumet-config.toml"}, "/etc/alumet/alumet-config.toml"},
		{"empty env", "", env{"ALUMET_CONFIG": ""}, "alumet-config.toml"},
		{"default", "", env{}, "alumet-config.toml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, ResolvePath(Options{Path: tt.flag, Getenv: tt.env.get}))
		})
	}
}

func TestLoadUsesEnvPath(t *testing.T) {
	path := writeConfig(t, "[plugins.csv]\n")
	ld, err := Load(Options{Specs: testSpecs(), Getenv: env{"ALUMET_CONFIG": path}.get, Logger: (&logs{}).logger()})
	require.NoError(t, err)
	require.Equal(t, path, ld.Path)
	require.Equal(t, []string{"csv"}, ld.names())
}

func TestLoadGeneratesMissingFile(t *testing.T) {
	tests := []struct {
		name    string
		plugins []string
		want    []string
	}{
		{"all plugins", nil, []string{"csv", "kwollect-input", "kwollect-output"}},
		{"--plugins in registration order", []string{"kwollect-output, csv", "rapl"}, []string{"csv", "kwollect-output"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "alumet-config.toml")
			l := &logs{}
			o := Options{Path: path, Specs: testSpecs(), Plugins: tt.plugins, Getenv: env{}.get, Logger: l.logger()}
			ld, err := Load(o)
			require.NoError(t, err)
			require.True(t, ld.Generated)
			require.Equal(t, tt.want, ld.names())
			require.Contains(t, l.String(), "Default configuration file written to: "+path)

			written, err := os.ReadFile(path)
			require.NoError(t, err)
			want, err := Generate(selectSpecs(testSpecs(), tt.want, true))
			require.NoError(t, err)
			require.Equal(t, string(want), string(written))

			// The second run reuses the file.
			l2 := &logs{}
			o.Logger = l2.logger()
			ld2, err := Load(o)
			require.NoError(t, err)
			require.False(t, ld2.Generated)
			require.Equal(t, tt.want, ld2.names())
			require.NotContains(t, l2.String(), "Default configuration file written")
			if diff := cmp.Diff(ld.Enabled[0].Config, ld2.Enabled[0].Config); diff != "" {
				t.Errorf("config differs after reload (-first +second):\n%s", diff)
			}
		})
	}
}

func TestLoadGeneratedDefaultsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alumet-config.toml")
	ld, err := Load(Options{Path: path, Specs: testSpecs(), Getenv: env{}.get, Logger: (&logs{}).logger()})
	require.NoError(t, err)
	for i, s := range testSpecs() {
		if diff := cmp.Diff(s.DefaultConfig(), ld.Enabled[i].Config); diff != "" {
			t.Errorf("%s: generated file does not load as the defaults (-want +got):\n%s", s.Name, diff)
		}
	}
}

func TestLoadWriteFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing-dir", "alumet-config.toml")
	_, err := Load(Options{Path: path, Specs: testSpecs(), Getenv: env{}.get, Logger: (&logs{}).logger()})
	require.Error(t, err)
	require.Contains(t, err.Error(), path+": cannot write the default configuration file: ")
	require.ErrorIs(t, err, fs.ErrNotExist)
}

func TestLoadNoDefaultConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alumet-config.toml")
	_, err := Load(Options{Path: path, NoDefaultConfig: true, Specs: testSpecs(), Getenv: env{}.get, Logger: (&logs{}).logger()})
	require.Error(t, err)
	require.Equal(t, path+": the configuration file does not exist and --no-default-config is set (create it, e.g. with 'alumet-agent config regen')", err.Error())
	require.ErrorIs(t, err, fs.ErrNotExist)
	_, statErr := os.Stat(path)
	require.ErrorIs(t, statErr, fs.ErrNotExist, "nothing must be written")
}

func TestLoadReadError(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(Options{Path: dir, Specs: testSpecs(), Getenv: env{}.get, Logger: (&logs{}).logger()})
	require.Error(t, err)
	require.Contains(t, err.Error(), dir+": cannot read the configuration file: ")
}

func TestSubstitution(t *testing.T) {
	vars := env{"OUT": "out.csv", "PW": "s3cr3t-pw", "EMPTY": "", "MULTI": "a\n# b"}
	tests := []struct {
		name    string
		text    string
		wantErr string
		check   func(t *testing.T, ld *Loaded)
	}{
		{
			name: "set",
			text: "[plugins.csv]\noutput_path = \"${OUT}\"\n[plugins.kwollect-input]\npassword = \"${PW}\"\n",
			check: func(t *testing.T, ld *Loaded) {
				require.Equal(t, "out.csv", ld.config("csv").(*csvConfig).OutputPath)
				require.Equal(t, "s3cr3t-pw", ld.config("kwollect-input").(*inputConfig).Password)
			},
		},
		{
			name: "empty value and several per line",
			text: "[plugins.csv]\noutput_path = \"${OUT}${EMPTY}-${OUT}\"\n",
			check: func(t *testing.T, ld *Loaded) {
				require.Equal(t, "out.csv-out.csv", ld.config("csv").(*csvConfig).OutputPath)
			},
		},
		{
			name: "escape",
			text: "[plugins.csv]\noutput_path = \"\\${OUT}\"\n",
			check: func(t *testing.T, ld *Loaded) {
				require.Equal(t, "${OUT}", ld.config("csv").(*csvConfig).OutputPath)
			},
		},
		{
			name: "dollar alone",
			text: "[plugins.csv]\noutput_path = \"$OUT {x} $\"\n",
			check: func(t *testing.T, ld *Loaded) {
				require.Equal(t, "$OUT {x} $", ld.config("csv").(*csvConfig).OutputPath)
			},
		},
		{
			name: "in a comment",
			text: "# output: ${OUT}\n[plugins.csv]\n",
			check: func(t *testing.T, ld *Loaded) {
				require.Equal(t, []string{"csv"}, ld.names())
			},
		},
		{
			name:    "unset",
			text:    "[plugins.csv]\n\noutput_path = \"${NOPE}\"\n",
			wantErr: "alumet-config.toml:3: the environment variable NOPE does not exist",
		},
		{
			name:    "unset in a comment",
			text:    "# ${NOPE}\n",
			wantErr: "alumet-config.toml:1: the environment variable NOPE does not exist",
		},
		{
			name:    "unclosed",
			text:    "[plugins.csv]\noutput_path = \"${OUT\"\n# }\n",
			wantErr: "alumet-config.toml:2: unclosed ${ (missing '}' before the end of the line; write \\${ for a literal ${)",
		},
		{
			name:    "unclosed at the end",
			text:    "[plugins.csv]\n${",
			wantErr: "alumet-config.toml:2: unclosed ${",
		},
		{
			name:    "invalid name",
			text:    "[plugins.csv]\noutput_path = \"${1OUT}\"\n",
			wantErr: `alumet-config.toml:2: invalid environment variable name "1OUT" in ${1OUT}`,
		},
		{
			name:    "empty name",
			text:    "[plugins.csv]\noutput_path = \"${}\"\n",
			wantErr: `alumet-config.toml:2: invalid environment variable name ""`,
		},
		{
			name: "lines after a multi-line value keep the file's numbering",
			text: "# ${MULTI}\n[plugins.csv]\nouput_path = \"x\"\n",
			// The value adds a line to the text, but the error points at the file's line 3.
			wantErr: `alumet-config.toml:3: plugins.csv: unknown key "ouput_path"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ld, _, err := load(t, tt.text, func(o *Options) { o.Getenv = vars.get })
			if tt.wantErr != "" {
				require.Contains(t, errText(t, err), tt.wantErr)
				return
			}
			require.NoError(t, err)
			tt.check(t, ld)
		})
	}
}

func TestSubstitutedSecretNotInSyntaxError(t *testing.T) {
	// A password with a quote breaks the TOML; the error must not show it.
	_, _, err := load(t, "[plugins.kwollect-input]\npassword = \"${PW}\"\n", func(o *Options) {
		o.Getenv = env{"PW": `pa"ss"word-xyz`}.get
	})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "word-xyz")
	require.Contains(t, errText(t, err), "alumet-config.toml:2:")
}

func TestOverrides(t *testing.T) {
	file := `
[plugins.csv]
output_path = "file.csv"
csv_delimiter = ","

[plugins.kwollect-input]
metrics = ["a", "b", "c"]
options = { retries = 5, token = "file-token" }
`
	tests := []struct {
		name      string
		overrides []string
		output    string
		check     func(t *testing.T, ld *Loaded)
	}{
		{
			name:      "nested table merged, siblings kept",
			overrides: []string{`plugins.kwollect-input.options.retries = 7`},
			check: func(t *testing.T, ld *Loaded) {
				in := ld.config("kwollect-input").(*inputConfig)
				require.Equal(t, inputOptions{Retries: 7, Token: "file-token"}, in.Options)
				require.Equal(t, []string{"a", "b", "c"}, in.Metrics)
			},
		},
		{
			name:      "arrays replaced, not merged",
			overrides: []string{`plugins.kwollect-input.metrics = ["z"]`},
			check: func(t *testing.T, ld *Loaded) {
				require.Equal(t, []string{"z"}, ld.config("kwollect-input").(*inputConfig).Metrics)
			},
		},
		{
			name:      "later wins",
			overrides: []string{`plugins.csv.output_path = "one.csv"`, "[plugins.csv]\noutput_path = 'two.csv'"},
			check: func(t *testing.T, ld *Loaded) {
				c := ld.config("csv").(*csvConfig)
				require.Equal(t, "two.csv", c.OutputPath)
				require.Equal(t, ",", c.CSVDelimiter)
			},
		},
		{
			name:      "--output-file applies after the overrides",
			overrides: []string{`plugins.csv.output_path = "one.csv"`},
			output:    "flag.csv",
			check: func(t *testing.T, ld *Loaded) {
				require.Equal(t, "flag.csv", ld.config("csv").(*csvConfig).OutputPath)
			},
		},
		{
			name:      "overrides are not substituted",
			overrides: []string{`plugins.csv.output_path = "${HOME}.csv"`},
			check: func(t *testing.T, ld *Loaded) {
				require.Equal(t, "${HOME}.csv", ld.config("csv").(*csvConfig).OutputPath)
			},
		},
		{
			name:      "a new section comes after the file's sections",
			overrides: []string{`plugins.kwollect-output.url = "http://x"`},
			check: func(t *testing.T, ld *Loaded) {
				require.Equal(t, []string{"csv", "kwollect-input", "kwollect-output"}, ld.names())
				require.Equal(t, "http://x", ld.config("kwollect-output").(*outputConfig).URL)
			},
		},
		{
			name:      "an override can disable a plugin",
			overrides: []string{`plugins.csv.enabled = false`},
			check: func(t *testing.T, ld *Loaded) {
				require.Equal(t, []string{"kwollect-input"}, ld.names())
			},
		},
		{
			name:      "general keys",
			overrides: []string{`max_update_interval = "5s"`},
			check: func(t *testing.T, ld *Loaded) {
				require.Equal(t, 5*time.Second, ld.General.MaxUpdateInterval.D())
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ld, _, err := load(t, file, func(o *Options) { o.Overrides = tt.overrides; o.OutputFile = tt.output })
			require.NoError(t, err)
			tt.check(t, ld)
		})
	}
}

func TestOverrideSyntaxError(t *testing.T) {
	_, _, err := load(t, "[plugins.csv]\n", func(o *Options) {
		o.Overrides = []string{`plugins.csv.force_flush = true`, `plugins.csv.output_path = run1.csv`}
	})
	require.Error(t, err)
	require.True(t, strings.HasPrefix(err.Error(), "--config-override #2:1:"), err.Error())
	require.Contains(t, err.Error(), "invalid TOML: ")
	var pe toml.ParseError
	require.ErrorAs(t, err, &pe)
}

func TestOutputFileCreatesCSVSection(t *testing.T) {
	ld, _, err := load(t, "[plugins.kwollect-input]\n", func(o *Options) { o.OutputFile = "/var/log/alumet-output.csv" })
	require.NoError(t, err)
	require.Equal(t, []string{"kwollect-input", "csv"}, ld.names())
	want := &csvConfig{OutputPath: "/var/log/alumet-output.csv", ForceFlush: true, CSVDelimiter: ";"}
	if diff := cmp.Diff(want, ld.config("csv")); diff != "" {
		t.Errorf("csv config (-want +got):\n%s", diff)
	}

	// With --plugins, the created section does not enable csv.
	ld, _, err = load(t, "[plugins.kwollect-input]\n", func(o *Options) {
		o.OutputFile = "x.csv"
		o.Plugins = []string{"kwollect-input"}
	})
	require.NoError(t, err)
	require.Equal(t, []string{"kwollect-input"}, ld.names())
}

func TestEnableRules(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		plugins  []string
		enabled  []string
		disabled []string
	}{
		{
			name:     "a section enables its plugin",
			text:     "[plugins.kwollect-output]\n[plugins.csv]\n",
			enabled:  []string{"kwollect-output", "csv"},
			disabled: []string{"kwollect-input"},
		},
		{
			name:     "enabled = false",
			text:     "[plugins.csv]\nenabled = false\n[plugins.kwollect-input]\nenabled = true\n",
			enabled:  []string{"kwollect-input"},
			disabled: []string{"csv", "kwollect-output"},
		},
		{
			name:     "enable = false",
			text:     "[plugins.csv]\nenable = false\noutput_path = 1\n",
			enabled:  []string{},
			disabled: []string{"csv", "kwollect-input", "kwollect-output"},
		},
		{
			name:     "no plugins table",
			text:     "max_update_interval = \"1s\"\n",
			enabled:  []string{},
			disabled: []string{"csv", "kwollect-input", "kwollect-output"},
		},
		{
			name:     "--plugins: exactly the listed plugins, sections first in file order",
			text:     "[plugins.kwollect-output]\n[plugins.kwollect-input]\nenabled = false\n[plugins.csv]\n",
			plugins:  []string{"csv,kwollect-input"},
			enabled:  []string{"kwollect-input", "csv"},
			disabled: []string{"kwollect-output"},
		},
		{
			name:     "--plugins: listed plugins without a section come last, in flag order",
			text:     "[plugins.kwollect-input]\n",
			plugins:  []string{"kwollect-output", " csv ", "kwollect-input", "csv"},
			enabled:  []string{"kwollect-input", "kwollect-output", "csv"},
			disabled: []string{},
		},
		{
			name:     "--plugins: a disabled plugin's bad values are not checked",
			text:     "[plugins.kwollect-input]\ninterval = 12\nnope = 1\n[plugins.csv]\n",
			plugins:  []string{"csv"},
			enabled:  []string{"csv"},
			disabled: []string{"kwollect-input", "kwollect-output"},
		},
		{
			name:     "--plugins given empty",
			text:     "[plugins.csv]\n",
			plugins:  []string{""},
			enabled:  []string{},
			disabled: []string{"csv", "kwollect-input", "kwollect-output"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ld, _, err := load(t, tt.text, func(o *Options) { o.Plugins = tt.plugins })
			require.NoError(t, err)
			require.Equal(t, tt.enabled, ld.names())
			require.Equal(t, tt.disabled, ld.disabledNames())
		})
	}
}

func TestEnabledKeyMustBeBoolean(t *testing.T) {
	_, _, err := load(t, "[plugins.csv]\noutput_path = \"x\"\nenabled = \"no\"\n")
	require.Equal(t, `alumet-config.toml:3: plugins.csv: enabled: expected a boolean, got string "no"`, errText(t, err))
	_, _, err = load(t, "[plugins.csv]\nenable = 0\n")
	require.Equal(t, `alumet-config.toml:2: plugins.csv: enable: expected a boolean, got integer 0`, errText(t, err))
}

func TestEnabledKeyRemovedBeforeDecoding(t *testing.T) {
	// The plugin's struct has no "enabled" field: no unknown-key error.
	ld, _, err := load(t, "[plugins.csv]\nenabled = true\nenable = true\n")
	require.NoError(t, err)
	require.Equal(t, []string{"csv"}, ld.names())
}

func TestUnknownPluginsFlagEntry(t *testing.T) {
	t.Run("an Alumet plugin is an ERROR line", func(t *testing.T) {
		ld, l, err := load(t, "[plugins.csv]\n", func(o *Options) { o.Plugins = []string{"csv,rapl"} })
		require.NoError(t, err)
		require.Equal(t, []string{"csv"}, ld.names())
		require.Contains(t, l.String(), "level=ERROR msg=\"Plugin rapl is not available in this binary of Alumet Agent.\"")
	})
	t.Run("another name is an error, before the file is generated", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "alumet-config.toml")
		_, err := Load(Options{Path: path, Specs: testSpecs(), Plugins: []string{"csv,kwolect-input,foo"}, Getenv: env{}.get, Logger: (&logs{}).logger()})
		require.Equal(t, `--plugins: unknown plugin "kwolect-input" (did you mean kwollect-input?); `+
			`unknown plugin "foo" (the plugins of this agent: csv, kwollect-input, kwollect-output; see alumet-agent plugins list)`, errText(t, err))
		var upe *UnknownPluginsError
		require.ErrorAs(t, err, &upe)
		require.Len(t, upe.Unknown, 2)
		require.NoFileExists(t, path)
	})
}

func TestCheckPluginNames(t *testing.T) {
	tests := []struct {
		names []string
		want  string // "" for no error
	}{
		{[]string{"csv", "kwollect-input", "kwollect-output"}, ""},
		{[]string{"rapl", "procfs", "relay-client", "energy-attribution", "prometheus-exporter", "socket-control"}, ""},
		{[]string{"kwolect-input"}, `unknown plugin "kwolect-input" (did you mean kwollect-input?)`},
		{[]string{"csb"}, `unknown plugin "csb" (did you mean csv?)`},
		{[]string{"kwollect"}, `unknown plugin "kwollect" (did you mean kwollect-input or kwollect-output?)`},
		{[]string{"rapel"}, `unknown plugin "rapel" (did you mean rapl? Alumet has it, this agent does not)`},
		{[]string{"CSV"}, `unknown plugin "CSV" (did you mean csv?)`},
		{[]string{"zzzzzz"}, `unknown plugin "zzzzzz" (the plugins of this agent: csv, kwollect-input, kwollect-output; see alumet-agent plugins list)`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.names, ","), func(t *testing.T) {
			err := CheckPluginNames(tt.names, testSpecs())
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.want)
		})
	}
}

func TestUnknownPluginSection(t *testing.T) {
	const available = "(available plugins: csv, kwollect-input, kwollect-output)"
	tests := []struct {
		name    string
		text    string
		plugins []string
		want    string
	}{
		{"prefix hint", "[plugins.csv]\n\n[plugins.kwollect]\nurl = 'x'\n", nil,
			"alumet-config.toml:3: unknown plugin 'kwollect' in configuration; did you mean 'kwollect-input' or 'kwollect-output'? " + available},
		{"typo hint", "[plugins.csb]\n", nil,
			"alumet-config.toml:1: unknown plugin 'csb' in configuration; did you mean 'csv'? " + available},
		{"no hint", "[plugins.zzzzzz]\n", nil,
			"alumet-config.toml:1: unknown plugin 'zzzzzz' in configuration " + available},
		{"disabled unknown section is still an error", "[plugins.kwollect-ouput]\nenabled = false\n", nil,
			"alumet-config.toml:1: unknown plugin 'kwollect-ouput' in configuration; did you mean 'kwollect-output'? " + available},
		{"also with --plugins", "[plugins.foo]\n", []string{"csv"},
			"alumet-config.toml:1: unknown plugin 'foo' in configuration " + available},
		{"dotted key", "plugins.kwollect.x = 1\n", nil,
			"alumet-config.toml:1: unknown plugin 'kwollect' in configuration; did you mean 'kwollect-input' or 'kwollect-output'? " + available},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := load(t, tt.text, func(o *Options) { o.Plugins = tt.plugins })
			require.Equal(t, tt.want, errText(t, err))
			var ce *Error
			require.ErrorAs(t, err, &ce)
		})
	}
}

func TestAlumetOnlyPlugins(t *testing.T) {
	t.Run("enabled is an error", func(t *testing.T) {
		_, _, err := load(t, "[plugins.csv]\n[plugins.rapl]\npoll_interval = \"1s\"\n")
		require.Equal(t, "alumet-config.toml:2: plugin 'rapl' is not implemented by this agent "+
			"(available plugins: csv, kwollect-input, kwollect-output); remove its section, set enabled = false in it, or leave it out of --plugins",
			errText(t, err))
	})
	t.Run("disabled is a warning", func(t *testing.T) {
		ld, l, err := load(t, "[plugins.csv]\n[plugins.rapl]\nenabled = false\n")
		require.NoError(t, err)
		require.Equal(t, []string{"csv"}, ld.names())
		require.Contains(t, l.String(), "level=WARN")
		require.Contains(t, l.String(), "Plugin 'rapl' is configured")
		require.Contains(t, l.String(), "alumet-config.toml:2) but is not implemented by this agent; its section is ignored.")
	})
	t.Run("left out of --plugins is a warning", func(t *testing.T) {
		ld, l, err := load(t, "[plugins.csv]\n[plugins.perf]\n", func(o *Options) { o.Plugins = []string{"csv"} })
		require.NoError(t, err)
		require.Equal(t, []string{"csv"}, ld.names())
		require.Contains(t, l.String(), "Plugin 'perf' is configured")
	})
	t.Run("listed in --plugins is the not-available error log", func(t *testing.T) {
		ld, l, err := load(t, "[plugins.csv]\n[plugins.procfs]\n", func(o *Options) { o.Plugins = []string{"csv,procfs"} })
		require.NoError(t, err)
		require.Equal(t, []string{"csv"}, ld.names())
		require.Contains(t, l.String(), "Plugin procfs is not available in this binary of Alumet Agent.")
		require.NotContains(t, l.String(), "Plugin 'procfs' is configured")
	})
	t.Run("a name the binary has is never Alumet-only", func(t *testing.T) {
		specs := append(testSpecs(), PluginSpec{Name: "rapl", Version: "0.1.0", DefaultConfig: func() plugin.Config { return &outputConfig{} }})
		ld, _, err := load(t, "[plugins.rapl]\nurl = 'x'\n", func(o *Options) { o.Specs = specs })
		require.NoError(t, err)
		require.Equal(t, []string{"rapl"}, ld.names())
	})
}

func TestPluginErrors(t *testing.T) {
	tests := []struct {
		name      string
		text      string
		overrides []string
		output    string
		want      string
	}{
		{
			name: "unknown key with suggestion",
			text: "# csv output\n\n[plugins.csv]\nforce_flush = true\n\n\nouput_path = \"x.csv\"\n",
			want: `alumet-config.toml:7: plugins.csv: unknown key "ouput_path" (valid keys: output_path, force_flush, csv_delimiter; did you mean "output_path"?)`,
		},
		{
			name: "unknown key without suggestion",
			text: "[plugins.kwollect-output]\nurl = 'x'\nfoo = 1\n",
			want: `alumet-config.toml:3: plugins.kwollect-output: unknown key "foo" (valid keys: url)`,
		},
		{
			name: "first unknown key in file order",
			text: "[plugins.kwollect-output]\nzzz = 1\naaa = 2\n",
			want: `alumet-config.toml:2: plugins.kwollect-output: unknown key "zzz" (valid keys: url)`,
		},
		{
			name: "unknown key in a nested table",
			text: "[plugins.kwollect-input]\nsite = 'x'\n\n[plugins.kwollect-input.options]\nretries = 1\nretris = 2\n",
			want: `alumet-config.toml:6: plugins.kwollect-input: unknown key "options.retris" (valid keys: options.retries, options.token; did you mean "options.retries"?)`,
		},
		{
			name: "unknown key in an inline table",
			text: "[plugins.kwollect-input]\noptions = { retries = 1,\n tokn = 'x' }\n",
			want: `alumet-config.toml:3: plugins.kwollect-input: unknown key "options.tokn" (valid keys: options.retries, options.token; did you mean "options.token"?)`,
		},
		{
			name: "unknown key with a dotted key",
			text: "[plugins]\ncsv.force_flush = true\ncsv.flush = false\n",
			want: `alumet-config.toml:3: plugins.csv: unknown key "flush" (valid keys: output_path, force_flush, csv_delimiter; did you mean "force_flush"?)`,
		},
		{
			name: "unknown key with a quoted key",
			text: "[plugins.\"csv\"]\n'output path' = 'x'\n",
			want: `alumet-config.toml:2: plugins.csv: unknown key "output path" (valid keys: output_path, force_flush, csv_delimiter; did you mean "output_path"?)`,
		},
		{
			name: "type error",
			text: "[plugins.csv]\noutput_path = \"x\"\nforce_flush = \"yes\"\n",
			want: `alumet-config.toml:3: plugins.csv: force_flush: expected a boolean, got string "yes"`,
		},
		{
			name: "type error in a list",
			text: "[plugins.kwollect-input]\nmetrics = [\n  \"a\",\n  2,\n]\n",
			want: `alumet-config.toml:2: plugins.kwollect-input: metrics: expected an array of strings (element 1 is an integer), got array ["a", 2]`,
		},
		{
			name: "type error in a nested table",
			text: "[plugins.kwollect-input.options]\nretries = \"many\"\n",
			want: `alumet-config.toml:2: plugins.kwollect-input: options.retries: expected an integer, got string "many"`,
		},
		{
			name: "table instead of a value",
			text: "[plugins.csv.output_path]\nx = 1\n",
			want: `alumet-config.toml:1: plugins.csv: output_path: expected a string, got table`,
		},
		{
			name: "bad duration",
			text: "[plugins.kwollect-input]\ninterval = \"1.5s\"\n",
			want: `alumet-config.toml:2: plugins.kwollect-input: interval: invalid duration "1.5s": fractions are not supported (write "1s 500ms" instead of "1.5s") ` +
				`(valid units: ns, us (µs, usec), ms (msec), s (sec, second, seconds), m (min, minute, minutes), h (hr, hour, hours), d (day, days), ` +
				`w (week, weeks), M (month, months), y (year, years); e.g. "1s", "500ms", "1m 30s")`,
		},
		{
			name: "field error at its key",
			text: "[plugins.csv]\noutput_path = \"x\"\ncsv_delimiter = \";;\"\n",
			want: `alumet-config.toml:3: plugins.csv: csv_delimiter: must be exactly one character, got 2`,
		},
		{
			name: "field error with a nested key",
			text: "[plugins.kwollect-input]\noptions.retries = -1\n",
			want: `alumet-config.toml:2: plugins.kwollect-input: options.retries: must not be negative`,
		},
		{
			name: "field error on a default value points at the section",
			text: "\n[plugins.kwollect-input]\ninterval = \"0s\"\n",
			want: `alumet-config.toml:3: plugins.kwollect-input: interval: must be positive`,
		},
		{
			name: "non-field validation error points at the section",
			text: "\n[plugins.kwollect-input]\nsite = \"global\"\n",
			want: `alumet-config.toml:2: plugins.kwollect-input: the configuration is inconsistent`,
		},
		{
			name: "several field errors",
			text: "[plugins.kwollect-input]\nlogin = 'x'\nsite = \"both\"\n",
			want: "alumet-config.toml:3: plugins.kwollect-input: site: bad site\n" +
				"/alumet-config.toml:2: plugins.kwollect-input: login: bad login",
		},
		{
			name:      "unknown key from an override",
			text:      "[plugins.csv]\n",
			overrides: []string{"plugins.csv.force_flush = true", "plugins.csv.ouput_path = 'x'"},
			want:      `alumet-config.toml (from --config-override #2): plugins.csv: unknown key "ouput_path" (valid keys: output_path, force_flush, csv_delimiter; did you mean "output_path"?)`,
		},
		{
			name:      "override replacing a file value",
			text:      "[plugins.csv]\nforce_flush = true\n",
			overrides: []string{"plugins.csv.force_flush = 'no'"},
			want:      `alumet-config.toml (from --config-override #1): plugins.csv: force_flush: expected a boolean, got string "no"`,
		},
		{
			name:      "field error on an override",
			text:      "[plugins.csv]\n",
			overrides: []string{"plugins.csv.csv_delimiter = ''"},
			want:      `alumet-config.toml (from --config-override #1): plugins.csv: csv_delimiter: must be exactly one character, got 0`,
		},
		{
			name:      "override replacing a file table",
			text:      "[plugins.kwollect-input]\n[plugins.kwollect-input.options]\nretries = 1\n",
			overrides: []string{"plugins.kwollect-input.options = 3"},
			want:      `alumet-config.toml (from --config-override #1): plugins.kwollect-input: options: expected a table, got integer 3`,
		},
		{
			name:   "--output-file",
			text:   "[plugins.csv]\n",
			output: "out.csv",
			// valid, see below
		},
		{
			name: "plugins not a table",
			text: "plugins = \"csv\"\n",
			want: `alumet-config.toml:1: unexpected type for plugins: expected table, got string`,
		},
		{
			name: "plugins.X not a table",
			text: "[plugins]\ncsv = \"on\"\n",
			want: `alumet-config.toml:2: unexpected type for plugins.csv: expected table, got string`,
		},
		{
			name: "plugins.X an array of tables",
			text: "[[plugins.csv]]\noutput_path = 'x'\n",
			want: `alumet-config.toml:1: unexpected type for plugins.csv: expected table, got array`,
		},
		{
			name:      "plugins.X not a table, from an override",
			text:      "[plugins.csv]\n",
			overrides: []string{"plugins.csv = 1"},
			want:      `alumet-config.toml (from --config-override #1): unexpected type for plugins.csv: expected table, got integer`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := load(t, tt.text, func(o *Options) { o.Overrides = tt.overrides; o.OutputFile = tt.output })
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			got := errText(t, err)
			if strings.Contains(tt.want, "\n") {
				// Joined errors: compare each line's end.
				lines := strings.Split(got, "\n")
				wantLines := strings.Split(tt.want, "\n")
				require.Len(t, lines, len(wantLines))
				for i := range lines {
					require.True(t, strings.HasSuffix(lines[i], strings.TrimPrefix(wantLines[i], "/")), "line %d: %q", i, lines[i])
				}
				return
			}
			require.Equal(t, tt.want, got)
		})
	}
}

func TestFieldErrorIsWrapped(t *testing.T) {
	_, _, err := load(t, "[plugins.csv]\ncsv_delimiter = \"\"\n")
	var fe *plugin.FieldError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "csv_delimiter", fe.Key)
	var ce *Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, 2, ce.Line)
	require.Equal(t, "plugins.csv", ce.Section)
}

func TestFieldErrorWithoutSection(t *testing.T) {
	// A plugin enabled by --plugins with no section: only defaults, no line.
	specs := testSpecs()
	specs[0].DefaultConfig = func() plugin.Config { return &csvConfig{CSVDelimiter: "ab"} }
	_, _, err := load(t, "", func(o *Options) { o.Specs = specs; o.Plugins = []string{"csv"} })
	require.Error(t, err)
	require.Equal(t, "plugins.csv: csv_delimiter: must be exactly one character, got 2", err.Error())
}

func TestSecretsRedactedInErrors(t *testing.T) {
	const pw = "hunter2-very-secret"
	tests := []struct {
		name string
		text string
		want string
	}{
		{"type error on a password", "[plugins.kwollect-input]\npassword = [\"" + pw + "\"]\n",
			`alumet-config.toml:2: plugins.kwollect-input: password: expected a string, got array <redacted>`},
		{"type error on a nested token", "[plugins.kwollect-input.options]\ntoken = 12345678\n",
			`alumet-config.toml:2: plugins.kwollect-input: options.token: expected a string, got integer <redacted>`},
		{"validation error quoting a password", "[plugins.kwollect-input]\npassword = \"bad-" + pw + "\"\n",
			`alumet-config.toml:2: plugins.kwollect-input: password: the password "xxxxx" is rejected`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := load(t, tt.text)
			got := errText(t, err)
			require.NotContains(t, got, pw)
			require.NotContains(t, got, "12345678")
			require.Equal(t, tt.want, got)
		})
	}
}

func TestSectionOrderIsStartOrder(t *testing.T) {
	text := `
[plugins.kwollect-output]
url = "a"

[plugins.csv]

[plugins.kwollect-input.options]
retries = 1
`
	ld, _, err := load(t, text)
	require.NoError(t, err)
	require.Equal(t, []string{"kwollect-output", "csv", "kwollect-input"}, ld.names())
	require.Equal(t, []string{}, ld.disabledNames())
}

func TestPartialSectionKeepsDefaults(t *testing.T) {
	ld, _, err := load(t, "[plugins.kwollect-input]\nsite = \"nancy\"\ninterval = \"1m 30s\"\n")
	require.NoError(t, err)
	want := &inputConfig{Site: "nancy", Interval: Duration(90 * time.Second), Login: "login", Password: "dflt-Secret",
		Metrics: []string{"wattmetre_power_watt"}, Options: inputOptions{Retries: 3}}
	if diff := cmp.Diff(want, ld.config("kwollect-input")); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestGeneralKeys(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    General
		wantErr string
		warn    string
	}{
		{name: "defaults", text: "", want: General{MaxUpdateInterval: Duration(2 * time.Second), SourceChannelSize: 2048, ShutdownTimeout: Duration(30 * time.Second)}},
		{
			name: "all set",
			text: "max_update_interval = \"500ms\"\nsource_channel_size = 16\nshutdown_timeout = \"1m 30s\"\nadd_host_attribute = true\n[plugins.csv]\n",
			want: General{MaxUpdateInterval: Duration(500 * time.Millisecond), SourceChannelSize: 16, ShutdownTimeout: Duration(90 * time.Second), AddHostAttribute: true},
		},
		{name: "bad duration", text: "\nmax_update_interval = \"2 secondes\"\n", wantErr: `alumet-config.toml:2: max_update_interval: invalid duration "2 secondes": unknown unit "secondes"`},
		{name: "duration not a string", text: "shutdown_timeout = 30\n", wantErr: `alumet-config.toml:1: shutdown_timeout: expected a duration string such as "1s" or "1m 30s", got integer 30`},
		{name: "zero duration", text: "shutdown_timeout = \"0s\"\n", wantErr: `alumet-config.toml:1: shutdown_timeout: must be greater than zero`},
		{name: "shutdown_timeout too long", text: "shutdown_timeout = \"290y\"\n", wantErr: `alumet-config.toml:1: shutdown_timeout = "290y": too long (at most 1h)`},
		{name: "shutdown_timeout 1h", text: "shutdown_timeout = \"1h\"\n", want: General{MaxUpdateInterval: DefaultMaxUpdateInterval, SourceChannelSize: 2048, ShutdownTimeout: Duration(time.Hour)}},
		{name: "max_update_interval too long", text: "\n\nmax_update_interval = \"2h\"\n", wantErr: `alumet-config.toml:3: max_update_interval = "2h": too long (at most 1h)`},
		{name: "duration overflow", text: "shutdown_timeout = \"300y\"\n", wantErr: `alumet-config.toml:1: shutdown_timeout: invalid duration "300y": too large (the maximum is about 292 years)`},
		{name: "negative duration", text: "shutdown_timeout = \"-5s\"\n", wantErr: `alumet-config.toml:1: shutdown_timeout: invalid duration "-5s": negative durations are not allowed`},
		{name: "channel size negative", text: "source_channel_size = -1\n", wantErr: `alumet-config.toml:1: source_channel_size: expected a positive integer, got integer -1`},
		{name: "channel size string", text: "source_channel_size = \"big\"\n", wantErr: `alumet-config.toml:1: source_channel_size: expected a positive integer, got string "big"`},
		{name: "host attribute not a bool", text: "add_host_attribute = \"yes\"\n", wantErr: `alumet-config.toml:1: add_host_attribute: expected a boolean, got string "yes"`},
		{
			name: "unknown top-level key warns",
			text: "\nfoo = 1\n[bar]\nx = 1\n",
			want: DefaultGeneral(),
			warn: `Unknown top-level key \"foo\" in the configuration (`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ld, l, err := load(t, tt.text)
			if tt.wantErr != "" {
				require.Contains(t, errText(t, err), tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, ld.General)
			if tt.warn != "" {
				require.Contains(t, l.String(), "level=WARN")
				require.Contains(t, l.String(), tt.warn)
				require.Contains(t, l.String(), `alumet-config.toml:2) is ignored.`)
				require.Contains(t, l.String(), `Unknown top-level key \"bar\"`)
			}
		})
	}
}

func TestSyntaxError(t *testing.T) {
	_, _, err := load(t, "[plugins.csv]\noutput_path = \"x\"\nforce_flush = tru\n")
	got := errText(t, err)
	require.True(t, strings.HasPrefix(got, "alumet-config.toml:3:"), got)
	require.Contains(t, got, "invalid TOML: ")
	var ce *Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, 3, ce.Line)
	require.Positive(t, ce.Column)
	var pe toml.ParseError
	require.ErrorAs(t, err, &pe)
}

func TestDebugLogRedactsSecrets(t *testing.T) {
	_, l, err := load(t, "[plugins.kwollect-input]\npassword = \"${PW}\"\nlogin = \"me\"\n", func(o *Options) {
		o.Getenv = env{"PW": "top-secret-value"}.get
	})
	require.NoError(t, err)
	require.Contains(t, l.String(), "Configuration of plugin kwollect-input")
	require.Contains(t, l.String(), `login = \"me\"`)
	require.NotContains(t, l.String(), "top-secret-value")
}

// TestRegenBackupSecretWarning: the backup keeps the old file's mode, so
// the warning says when it holds a written-out secret that group or others
// can read.
func TestRegenBackupSecretWarning(t *testing.T) {
	const advice = "run chmod 600 "
	tests := []struct {
		name     string
		text     string
		mode     os.FileMode
		wantKeys string // "" = no secret part in the warning
	}{
		{name: "literal, world-readable", text: "[plugins.kwollect-input]\nlogin = \"me\"\npassword = \"hunter2\"  # mine\n", mode: 0o644,
			wantKeys: "a literal secret (plugins.kwollect-input.password)"},
		{name: "literal, group-readable, single quotes", text: "[plugins.kwollect-input]\npassword = 'hunter2'\n", mode: 0o640,
			wantKeys: "a literal secret (plugins.kwollect-input.password)"},
		{name: "two literals, dotted key", text: "plugins.kwollect-input.password = \"a\"\n[x]\napi_token = \"b\"\n", mode: 0o604,
			wantKeys: "literal secrets (plugins.kwollect-input.password, x.api_token)"},
		{name: "literal, owner only", text: "[plugins.kwollect-input]\npassword = \"hunter2\"\n", mode: 0o600},
		{name: "variable reference", text: "[plugins.kwollect-input]\npassword = \"${G5K_PASSWORD}\"\n", mode: 0o644},
		{name: "empty", text: "[plugins.kwollect-input]\npassword = \"\"\n", mode: 0o644},
		{name: "commented out", text: "[plugins.kwollect-input]\n# password = \"hunter2\"\n", mode: 0o644},
		{name: "not a secret key", text: "[plugins.kwollect-input]\nlogin = \"hunter2\"\n", mode: 0o644},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.text)
			require.NoError(t, os.Chmod(path, tt.mode))
			l := &logs{}
			_, err := Regen(Options{Path: path, Specs: testSpecs(), Plugins: []string{"csv"}, Logger: l.logger()})
			require.NoError(t, err)
			info, err := os.Stat(path + ".bak")
			require.NoError(t, err)
			require.Equal(t, tt.mode, info.Mode().Perm(), "the backup keeps the mode")
			require.Equal(t, 1, strings.Count(l.String(), "level=WARN"), l.String())
			require.Contains(t, l.String(), "level=WARN msg=\"Previous configuration kept as "+path+".bak")
			if tt.wantKeys == "" {
				require.NotContains(t, l.String(), advice)
				return
			}
			require.Contains(t, l.String(), "; it holds "+tt.wantKeys+fmt.Sprintf(" and is readable by group or others (mode %04o): ", tt.mode)+advice+path+".bak (or delete it")
			require.NotContains(t, l.String(), "hunter2", "the warning never quotes the secret")
		})
	}
}

func TestRegen(t *testing.T) {
	const oldText = "# old content\n[plugins.csv]\noutput_path = 'old.csv'\n"
	path := writeConfig(t, oldText)
	require.NoError(t, os.Chmod(path, 0o640))
	l := &logs{}
	got, err := Regen(Options{Path: path, Specs: testSpecs(), Plugins: []string{"kwollect-output,csv,rapl"}, Logger: l.logger()})
	require.NoError(t, err)
	require.Equal(t, path, got)
	written, err := os.ReadFile(path)
	require.NoError(t, err)
	want, err := Generate([]PluginSpec{testSpecs()[0], testSpecs()[2]})
	require.NoError(t, err)
	require.Equal(t, string(want), string(written))
	require.Equal(t, 1, strings.Count(l.String(), "Default configuration file written to: "+path), l.String())
	require.Equal(t, 1, strings.Count(l.String(), "level=WARN msg=\"Previous configuration kept as "+path+".bak\""), l.String())
	require.Contains(t, l.String(), "Plugin rapl is not available in this binary of Alumet Agent.")
	bak, err := os.ReadFile(path + ".bak")
	require.NoError(t, err)
	require.Equal(t, oldText, string(bak))
	for _, p := range []string{path, path + ".bak"} {
		info, err := os.Stat(p)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o640), info.Mode().Perm(), p)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 2, "no temporary file is left")

	// Same content again: nothing is renamed, the .bak stays the old file.
	l = &logs{}
	_, err = Regen(Options{Path: path, Specs: testSpecs(), Plugins: []string{"kwollect-output,csv"}, Logger: l.logger()})
	require.NoError(t, err)
	require.Contains(t, l.String(), "Default configuration file unchanged: "+path)
	require.NotContains(t, l.String(), "Previous configuration kept")
	bak, err = os.ReadFile(path + ".bak")
	require.NoError(t, err)
	require.Equal(t, oldText, string(bak))

	// A different content again never replaces a backup: the first free
	// name is used, and the hand-edited original stays in .bak.
	l = &logs{}
	_, err = Regen(Options{Path: path, Specs: testSpecs(), Plugins: []string{"csv"}, Logger: l.logger()})
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(l.String(), "Previous configuration kept"), l.String())
	require.Contains(t, l.String(), "level=WARN msg=\"Previous configuration kept as "+path+".bak.1 (the older backups are kept too)\"")
	bak, err = os.ReadFile(path + ".bak")
	require.NoError(t, err)
	require.Equal(t, oldText, string(bak), "the first backup is the hand-edited file")
	bak, err = os.ReadFile(path + ".bak.1")
	require.NoError(t, err)
	require.Equal(t, string(want), string(bak))
	l = &logs{}
	_, err = Regen(Options{Path: path, Specs: testSpecs(), Plugins: []string{"kwollect-output"}, Logger: l.logger()})
	require.NoError(t, err)
	require.Contains(t, l.String(), "Previous configuration kept as "+path+".bak.2 ")
	bak, err = os.ReadFile(path + ".bak")
	require.NoError(t, err)
	require.Equal(t, oldText, string(bak))
	entries, err = os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 4, "the file and three backups, no temporary file")

	// A missing file is written, with no .bak.
	fresh := filepath.Join(t.TempDir(), "fresh.toml")
	l = &logs{}
	_, err = Regen(Options{Path: fresh, Specs: testSpecs(), Logger: l.logger()})
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(l.String(), "Default configuration file written to: "+fresh))
	require.NotContains(t, l.String(), "Previous configuration")
	require.NoFileExists(t, fresh+".bak")

	_, err = Regen(Options{Path: filepath.Join(path, "sub.toml"), Specs: testSpecs(), Logger: l.logger()})
	require.ErrorContains(t, err, filepath.Join(path, "sub.toml")+": cannot read the existing configuration file (to keep it as sub.toml.bak): not a directory")
	var ce *Error
	require.True(t, errors.As(err, &ce))

	_, err = Regen(Options{Path: fresh, Specs: testSpecs(), Plugins: []string{"csb"}, Logger: l.logger()})
	require.EqualError(t, err, `--plugins: unknown plugin "csb" (did you mean csv?)`)
}

func TestSplitPlugins(t *testing.T) {
	names, given := SplitPlugins(nil)
	require.False(t, given)
	require.Nil(t, names)
	names, given = SplitPlugins([]string{" csv , kwollect-input", "", "csv", "a,,b"})
	require.True(t, given)
	require.Equal(t, []string{"csv", "kwollect-input", "a", "b"}, names)
}

func TestSpecsOf(t *testing.T) {
	f := plugin.Factory{Name: "csv", Version: "1.2.3", DefaultConfig: func() plugin.Config { return &outputConfig{} }}
	specs := SpecsOf([]plugin.Factory{f})
	require.Len(t, specs, 1)
	require.Equal(t, "csv", specs[0].Name)
	require.Equal(t, "1.2.3", specs[0].Version)
	require.Equal(t, &outputConfig{}, specs[0].DefaultConfig())
}

func TestBadDefaultConfig(t *testing.T) {
	specs := []PluginSpec{
		{Name: "nil", DefaultConfig: func() plugin.Config { return nil }},
		{Name: "nofunc"},
		{Name: "notstruct", DefaultConfig: func() plugin.Config { return notStruct(0) }},
	}
	for _, s := range specs {
		t.Run(s.Name, func(t *testing.T) {
			_, _, err := load(t, "[plugins."+s.Name+"]\nx = 1\n", func(o *Options) { o.Specs = []PluginSpec{s} })
			require.ErrorContains(t, err, "internal error")
		})
	}
}

type notStruct int

func (notStruct) Validate() error { return nil }

func FuzzLoad(f *testing.F) {
	seeds := []string{
		"",
		"[plugins.csv]\noutput_path = \"x\"\n",
		"[plugins.kwollect-input]\nmetrics = [\"a\", 1]\noptions = { retries = 2, token = 'x' }\n",
		"plugins.csv.enabled = false\n[plugins.rapl]\n",
		"max_update_interval = \"1m 30s\"\nsource_channel_size = 3\n",
		"[[plugins.csv]]\n[plugins.kwollect]\n",
		"a = \"\"\"\nmulti\n\"\"\"\nb = '''x'''\n[plugins.\"csv\"]\n'csv_delimiter' = \"\\u003b\"\n",
		"${X}\n\\${Y}\n${",
		"x = [{a = 1}, {b = [1, 2]}]\n[plugins.kwollect-input.options]\nretries = -1\n",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		o := Options{Specs: testSpecs(), Getenv: env{"X": "plugins.csv.force_flush = true"}.get, Logger: (&logs{}).logger(),
			Overrides: []string{"plugins.kwollect-output.url = 'u'"}}
		o.setDefaults()
		ld := &Loaded{Path: "alumet-config.toml"}
		err := loadText(ld, text, o, nil, false)
		if err != nil {
			_ = err.Error()
		}
		// On valid TOML, the scanner finds a plausible line for every key.
		lines := scanLines(text)
		var m map[string]any
		md, err := toml.Decode(text, &m)
		if err != nil {
			return
		}
		n := strings.Count(text, "\n") + 1
		for _, k := range md.Keys() {
			line, ok := lines[pathKey(k...)]
			if !ok || line < 1 || line > n {
				t.Fatalf("key %q: line %d, found %v, in %q", k.String(), line, ok, text)
			}
		}
	})
}
