package config

import (
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/plugin"
)

func TestGenerate(t *testing.T) {
	got, err := Generate(testSpecs())
	require.NoError(t, err)
	want := `[plugins.csv]
output_path = "alumet-output.csv"
force_flush = true
csv_delimiter = ";"

[plugins.kwollect-input]
site = "lyon"
interval = "1s"
login = "login"
password = "dflt-Secret"
metrics = ["wattmetre_power_watt"]

[plugins.kwollect-input.options]
retries = 3
token = ""

[plugins.kwollect-output]
url = "https://example.org/metrics"
`
	require.Equal(t, want, string(got))

	empty, err := Generate(nil)
	require.NoError(t, err)
	require.Empty(t, empty)
}

// specCSV mirrors the CSV plugin's keys of alumet-compat.md §4.5.
type specCSV struct {
	OutputPath             string `toml:"output_path"`
	ForceFlush             bool   `toml:"force_flush"`
	AppendUnitToMetricName bool   `toml:"append_unit_to_metric_name"`
	UseUnitDisplayName     bool   `toml:"use_unit_display_name"`
	CSVDelimiter           string `toml:"csv_delimiter"`
	CSVLateDelimiter       string `toml:"csv_late_delimiter"`
	Append                 bool   `toml:"append,omitempty"`
	Internal               string `toml:"-"`
	FlushInterval          *Duration
	unexported             int
}

func (*specCSV) Validate() error { return nil }

func TestGenerateMatchesAlumetCSVSection(t *testing.T) {
	spec := PluginSpec{Name: "csv", DefaultConfig: func() plugin.Config {
		return &specCSV{OutputPath: "alumet-output.csv", ForceFlush: true, AppendUnitToMetricName: true,
			UseUnitDisplayName: true, CSVDelimiter: ";", CSVLateDelimiter: ",", Internal: "x", unexported: 1}
	}}
	got, err := Generate([]PluginSpec{spec})
	require.NoError(t, err)
	require.Equal(t, `[plugins.csv]
output_path = "alumet-output.csv"
force_flush = true
append_unit_to_metric_name = true
use_unit_display_name = true
csv_delimiter = ";"
csv_late_delimiter = ","
`, string(got))
}

func TestGenerateDurations(t *testing.T) {
	type cfg struct {
		*specCSV
		Poll  Duration `toml:"poll_interval"`
		Flush Duration `toml:"flush_interval"`
	}
	spec := PluginSpec{Name: "x", DefaultConfig: func() plugin.Config {
		return &cfg{specCSV: &specCSV{}, Poll: Duration(time.Minute), Flush: Duration(1500 * time.Millisecond)}
	}}
	got, err := Generate([]PluginSpec{spec})
	require.NoError(t, err)
	require.Contains(t, string(got), "poll_interval = \"1m\"\nflush_interval = \"1s 500ms\"\n")
}

func TestGenerateErrors(t *testing.T) {
	_, err := Generate([]PluginSpec{{Name: "a"}})
	require.ErrorContains(t, err, "plugin a: internal error")
	_, err = Generate([]PluginSpec{{Name: "b", DefaultConfig: func() plugin.Config { return nil }}})
	require.ErrorContains(t, err, "plugin b: internal error")
	type neg struct {
		*specCSV
		D Duration `toml:"d"`
	}
	_, err = Generate([]PluginSpec{{Name: "c", DefaultConfig: func() plugin.Config { return &neg{specCSV: &specCSV{}, D: -1} }}})
	require.ErrorContains(t, err, "plugin c: cannot encode the default configuration")
}

func TestCaseSensitiveKeys(t *testing.T) {
	_, _, err := load(t, "[plugins.csv]\nOutput_Path = 'x'\n")
	require.Equal(t, `alumet-config.toml:2: plugins.csv: unknown key "Output_Path" (valid keys: output_path, force_flush, csv_delimiter; did you mean "output_path"?)`, errText(t, err))
}

func TestUntaggedAndEmbeddedFields(t *testing.T) {
	spec := PluginSpec{Name: "csv", DefaultConfig: func() plugin.Config { return &specCSV{} }}
	ld, _, err := load(t, "[plugins.csv]\nflushinterval = \"2s\"\nappend = true\n", func(o *Options) { o.Specs = []PluginSpec{spec} })
	require.NoError(t, err)
	c := ld.config("csv").(*specCSV)
	require.Equal(t, 2*time.Second, c.FlushInterval.D())
	require.True(t, c.Append)

	_, _, err = load(t, "[plugins.csv]\nInternal = 'x'\n", func(o *Options) { o.Specs = []PluginSpec{spec} })
	require.ErrorContains(t, err, `unknown key "Internal" (valid keys: output_path, force_flush, append_unit_to_metric_name, use_unit_display_name, csv_delimiter, csv_late_delimiter, append, FlushInterval)`)
}

// secretConfig has secrets in several shapes.
type secretConfig struct {
	Login    string            `toml:"login"`
	Password string            `toml:"password"`
	APIToken string            `toml:"api_token"`
	Empty    string            `toml:"password_file"`
	Port     int               `toml:"port"`
	Nested   secretNested      `toml:"auth"`
	Servers  []secretNested    `toml:"servers"`
	Labels   map[string]string `toml:"labels"`
	Inline   secretNested      `toml:"inline,inline"`
}

type secretNested struct {
	User   string `toml:"user"`
	Secret string `toml:"secret"`
}

func (*secretConfig) Validate() error { return nil }

func TestRedacted(t *testing.T) {
	cfg := &secretConfig{
		Login: "me", Password: "pw-1", APIToken: "tok-2", Port: 80,
		Nested:  secretNested{User: "u", Secret: "sec-3"},
		Servers: []secretNested{{User: "a", Secret: "sec-4"}},
		Labels:  map[string]string{"token": "tok-5", "site": "lyon"},
		Inline:  secretNested{User: "i", Secret: "sec-6"},
	}
	got := Redacted(cfg)
	for _, s := range []string{"pw-1", "tok-2", "sec-3", "sec-4", "tok-5", "sec-6"} {
		require.NotContains(t, got, s)
	}
	require.Contains(t, got, `login = "me"`)
	require.Contains(t, got, `password_file = ""`)
	require.Contains(t, got, `port = 80`)
	var back map[string]any
	_, err := toml.Decode(got, &back)
	require.NoError(t, err, got)
	require.Equal(t, "<redacted>", back["password"])
	require.Equal(t, "<redacted>", back["api_token"])
	require.Equal(t, "<redacted>", back["auth"].(map[string]any)["secret"])
	require.Equal(t, "u", back["auth"].(map[string]any)["user"])
	require.Equal(t, "<redacted>", back["labels"].(map[string]any)["token"])

	// Without an inline table, the line-based path keeps the field order.
	simple := Redacted(&inputConfig{Site: "lyon", Password: "pw-7", Interval: Duration(time.Second), Options: inputOptions{Token: "tok-8"}})
	require.Equal(t, `site = "lyon"
interval = "1s"
login = ""
password = "<redacted>"

[options]
retries = 0
token = "<redacted>"
`, simple)
	require.True(t, strings.HasPrefix(Redacted(notStruct(1)), "<cannot render"))
}

func TestIsSecretKey(t *testing.T) {
	for _, k := range []string{"password", "Password", "db_password", "token", "api_token", "secret", "client_secret", "passwd", "api_key", "credentials"} {
		require.True(t, IsSecretKey(k), k)
	}
	for _, k := range []string{"login", "user", "url", "hostname", "password_length_"} {
		if k == "password_length_" {
			require.True(t, IsSecretKey(k), "anything containing password is secret")
			continue
		}
		require.False(t, IsSecretKey(k), k)
	}
}

func TestRedactedURLPassword(t *testing.T) {
	cfg := &struct {
		APIURL string `toml:"api_url"`
	}{APIURL: "https://alice:S3cretPW@api.grid5000.fr/stable"}
	out := Redacted(cfg)
	if strings.Contains(out, "S3cretPW") || !strings.Contains(out, "alice:<redacted>@api.grid5000.fr") {
		t.Fatalf("URL password not redacted: %s", out)
	}
}

func TestGenerateUsesGeneratedConfig(t *testing.T) {
	spec := PluginSpec{Name: "kwollect-output", Version: "0.1.0",
		DefaultConfig:   func() plugin.Config { return &outputConfig{URL: "default"} },
		GeneratedConfig: func() plugin.Config { return &outputConfig{URL: "host-specific"} }}
	b, err := Generate([]PluginSpec{spec})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `url = "host-specific"`) {
		t.Fatalf("generated config ignores GeneratedConfig:\n%s", b)
	}
}

// A generated section carries its sample's comments: the lines before each
// key, the comment ending its line (aligned), commented-out keys, and what
// follows the last key; the values are the generated ones, and keys the
// sample lacks stay bare.
func TestWithComments(t *testing.T) {
	sample := `[plugins.p]
# about a
a = "sample value # not a comment"   # a's note
# b = 1   # optional, commented out
c = 2
# the end
`
	text := `[plugins.p]
a = "generated"
c = 3
d = true
`
	want := `[plugins.p]
# about a
a = "generated"                   # a's note
# b = 1   # optional, commented out
c = 3
d = true
# the end
`
	require.Equal(t, want, withComments(text, sample))
	require.Equal(t, text, withComments(text, ""))
}

// GeneratedOff writes enabled = false first in the section, and the
// generated file loads with the plugin off.
func TestGenerateOff(t *testing.T) {
	spec := PluginSpec{Name: "csv", GeneratedOff: true, DefaultConfig: func() plugin.Config {
		return &specCSV{OutputPath: "alumet-output.csv"}
	}}
	got, err := Generate([]PluginSpec{spec})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(got), "[plugins.csv]\nenabled = false\noutput_path = \"alumet-output.csv\"\n"), string(got))
}
