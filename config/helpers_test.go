package config

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/plugin"
)

// csvConfig is a fake plugin config shaped like the CSV plugin's.
type csvConfig struct {
	OutputPath   string `toml:"output_path"`
	ForceFlush   bool   `toml:"force_flush"`
	CSVDelimiter string `toml:"csv_delimiter"`
}

func (c *csvConfig) Validate() error {
	if n := utf8.RuneCountInString(c.CSVDelimiter); n != 1 {
		return plugin.FieldErrorf("csv_delimiter", "must be exactly one character, got %d", n)
	}
	return nil
}

// inputOptions is a nested table of inputConfig.
type inputOptions struct {
	Retries int    `toml:"retries"`
	Token   string `toml:"token"`
}

// inputConfig is a fake plugin config with a duration, a secret, a list and
// a nested table.
type inputConfig struct {
	Site     string       `toml:"site"`
	Interval Duration     `toml:"interval"`
	Login    string       `toml:"login"`
	Password string       `toml:"password"`
	Metrics  []string     `toml:"metrics"`
	Options  inputOptions `toml:"options"`
}

func (c *inputConfig) Validate() error {
	if c.Interval <= 0 {
		return plugin.FieldErrorf("interval", "must be positive")
	}
	if strings.HasPrefix(c.Password, "bad") {
		return plugin.FieldErrorf("password", "the password %q is rejected", c.Password)
	}
	if c.Options.Retries < 0 {
		return plugin.FieldErrorf("options.retries", "must not be negative")
	}
	if c.Site == "both" {
		return errorsJoin(plugin.FieldErrorf("site", "bad site"), plugin.FieldErrorf("login", "bad login"))
	}
	if c.Site == "global" {
		return errString("the configuration is inconsistent")
	}
	return nil
}

type errString string

func (e errString) Error() string { return string(e) }

// joined is a minimal errors.Join (kept local to show any Unwrap() []error works).
type joined []error

func (j joined) Error() string {
	s := make([]string, len(j))
	for i, e := range j {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}
func (j joined) Unwrap() []error { return j }

func errorsJoin(errs ...error) error { return joined(errs) }

// outputConfig is a third fake plugin, so that "kwollect" has two near names.
type outputConfig struct {
	URL string `toml:"url"`
}

func (c *outputConfig) Validate() error { return nil }

func testSpecs() []PluginSpec {
	return []PluginSpec{
		{Name: "csv", Version: "0.2.0", DefaultConfig: func() plugin.Config {
			return &csvConfig{OutputPath: "alumet-output.csv", ForceFlush: true, CSVDelimiter: ";"}
		}},
		{Name: "kwollect-input", Version: "1.0.0", DefaultConfig: func() plugin.Config {
			return &inputConfig{Site: "lyon", Interval: Duration(time.Second), Login: "login", Password: "dflt-Secret", Metrics: []string{"wattmetre_power_watt"}, Options: inputOptions{Retries: 3}}
		}},
		{Name: "kwollect-output", Version: "0.1.0", DefaultConfig: func() plugin.Config {
			return &outputConfig{URL: "https://example.org/metrics"}
		}},
	}
}

// env is an injected environment.
type env map[string]string

func (e env) get(name string) (string, bool) {
	v, ok := e[name]
	return v, ok
}

// logs captures the logger output.
type logs struct{ buf bytes.Buffer }

func (l *logs) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(&l.buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *logs) String() string { return l.buf.String() }

// writeConfig writes text to a new alumet-config.toml and returns its path.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "alumet-config.toml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	return path
}

// load runs Load on text with the test specs, an empty environment and
// captured logs, after applying the option changes.
func load(t *testing.T, text string, change ...func(*Options)) (*Loaded, *logs, error) {
	t.Helper()
	path := writeConfig(t, text)
	l := &logs{}
	o := Options{Path: path, Specs: testSpecs(), Getenv: env{}.get, Logger: l.logger()}
	for _, c := range change {
		c(&o)
	}
	ld, err := Load(o)
	return ld, l, err
}

// names returns the names of the enabled plugins.
func (ld *Loaded) names() []string {
	out := []string{}
	for _, e := range ld.Enabled {
		out = append(out, e.Spec.Name)
	}
	return out
}

func (ld *Loaded) disabledNames() []string {
	out := []string{}
	for _, s := range ld.Disabled {
		out = append(out, s.Name)
	}
	return out
}

func (ld *Loaded) config(name string) plugin.Config {
	for _, e := range ld.Enabled {
		if e.Spec.Name == name {
			return e.Config
		}
	}
	return nil
}

// errText returns the error text with the temporary directory removed.
func errText(t *testing.T, err error) string {
	t.Helper()
	require.Error(t, err)
	s := err.Error()
	if i := strings.Index(s, "alumet-config.toml"); i > 0 {
		// Strip the directory of the path at the start of the message.
		s = s[strings.LastIndex(s[:i], "/")+1:]
	}
	return s
}
