package kwollectinput

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/config"
	"github.com/alumet-go/alumet-agent/internal/redact"
	"github.com/alumet-go/alumet-agent/kwollect"
)

// loadSection loads a configuration file whose kwollect-input section
// holds body after a valid target, and returns the error text with the
// file's directory removed.
func loadSection(t *testing.T, body string) (*config.Loaded, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "alumet-config.toml")
	text := "[plugins.kwollect-input]\nsite = \"lyon\"\nhostname = \"taurus-7\"\n" + body
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	ld, err := config.Load(config.Options{
		Path:   path,
		Specs:  []config.PluginSpec{config.SpecOf(Factory())},
		Getenv: func(string) (string, bool) { return "", false },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return ld, strings.ReplaceAll(err.Error(), dir+"/", "")
	}
	return ld, ""
}

// TestAPIURLErrorsHideThePassword: the shapes of api_url that the check
// rejects give an error naming the file, the line and the key, and never the
// password (issue 10: 4 of 8 shapes printed it).
func TestAPIURLErrorsHideThePassword(t *testing.T) {
	const pw = "Sup3rS3cret"
	tests := []struct {
		name, url, password string
	}{
		{"bad port", "https://alice:" + pw + "@api.grid5000.fr:80x/stable", pw},
		{"ftp", "ftp://alice:" + pw + "@api.grid5000.fr/stable", pw},
		{"bad escape in password", "https://alice:" + pw + "%zz@api.grid5000.fr/stable", pw},
		{"bad escape in host", "https://alice:" + pw + "@api%zz.grid5000.fr/stable", pw},
		{"unparsable, blank", "https://al ice:" + pw + "@api.grid5000.fr", pw},
		{"no host", "https://alice:" + pw + "@", pw},
		{"slash in password", "https://alice:Sup3r/S3cret@api.grid5000.fr", "Sup3r/S3cret"},
		{"at and colon in password", "ftp://alice:Sup3r@S3:cret@api.grid5000.fr", "Sup3r@S3:cret"},
		{"ipv6, bad", "https://alice:" + pw + "@[::1/stable", pw},
		{"no scheme", "//alice:" + pw + "@api.grid5000.fr/stable", pw},
		{"no slashes", "alice:" + pw + "@api.grid5000.fr", pw},
		{"mailto-like", "https:alice:" + pw + "@api.grid5000.fr", pw},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A password of its own, so that no case relies on an earlier
			// one's registration.
			tt.url = strings.ReplaceAll(tt.url, "S3", "S"+strconv.Itoa(i))
			tt.password = strings.ReplaceAll(tt.password, "S3", "S"+strconv.Itoa(i))
			_, msg := loadSection(t, "api_url = \""+tt.url+"\"\n")
			require.NotEmpty(t, msg, "api_url %q is accepted", tt.url)
			require.True(t, strings.HasPrefix(msg, "alumet-config.toml:4: plugins.kwollect-input: api_url: "), msg)
			require.NotContains(t, msg, tt.password)
			for _, part := range strings.FieldsFunc(tt.password, func(r rune) bool { return r == '/' || r == '@' || r == ':' }) {
				require.NotContains(t, msg, part)
			}
		})
	}
}

// TestCredentialsRegisterPasswords: the password chosen by credentials (from
// the config, password_file or netrc) is masked in every later message.
func TestCredentialsRegisterPasswords(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pwFile, []byte("fromFile-9x\n"), 0o600))
	netrcFile := filepath.Join(dir, "netrc")
	require.NoError(t, os.WriteFile(netrcFile, []byte("machine api.grid5000.fr login alice password fromNetrc-7y\n"), 0o600))
	tests := []struct {
		name     string
		cfg      Config
		password string
	}{
		{"config", Config{Login: "alice", Password: "fromConfig-3z", APIURL: kwollectDefault}, "fromConfig-3z"},
		{"password_file", Config{Login: "alice", PasswordFile: pwFile, APIURL: kwollectDefault}, "fromFile-9x"},
		{"netrc", Config{APIURL: kwollectDefault}, "fromNetrc-7y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, pw, err := tt.cfg.credentials("", netrcFile, slog.New(slog.NewTextHandler(io.Discard, nil)))
			require.NoError(t, err)
			require.Equal(t, tt.password, pw)
			require.Equal(t, "got xxxxx", redact.String("got "+tt.password))
		})
	}
}

const kwollectDefault = kwollect.DefaultBaseURL

func TestDurationBounds(t *testing.T) {
	tests := []struct {
		name, body, want string // want "" means accepted
	}{
		{"fetch_delay 290y", "fetch_delay = \"290y\"\n", `alumet-config.toml:4: plugins.kwollect-input: fetch_delay = "290y": too long (at most 1h)`},
		{"fetch_delay 1h", "fetch_delay = \"1h\"\n", ""},
		{"fetch_delay 0s", "fetch_delay = \"0s\"\n", ""},
		{"fetch_delay 1h 1s", "fetch_delay = \"1h 1s\"\n", `alumet-config.toml:4: plugins.kwollect-input: fetch_delay = "1h 1s": too long (at most 1h)`},
		{"fetch_timeout 2d", "fetch_timeout = \"2d\"\n", `alumet-config.toml:4: plugins.kwollect-input: fetch_timeout = "2d": too long (at most 1h)`},
		{"fetch_timeout 0s", "fetch_timeout = \"0s\"\n", ""},
		{"poll_interval 61m", "poll_interval = \"61m\"\n", `alumet-config.toml:4: plugins.kwollect-input: poll_interval = "61m": too long (at most 1h)`},
		{"poll_interval 500ms", "poll_interval = \"500ms\"\n", `alumet-config.toml:4: plugins.kwollect-input: poll_interval = "500ms": too short (at least 1s)`},
		{"poll_interval 1h", "poll_interval = \"1h\"\n", ""},
		{"negative", "fetch_delay = \"-1s\"\n", `alumet-config.toml:4: plugins.kwollect-input: fetch_delay: invalid duration "-1s": negative durations are not allowed`},
		{"overflow", "fetch_delay = \"300y\"\n", `alumet-config.toml:4: plugins.kwollect-input: fetch_delay: invalid duration "300y": too large (the maximum is about 292 years)`},
		{"inline override of the line", "\n\nfetch_timeout = \"90000s\"\n", `alumet-config.toml:6: plugins.kwollect-input: fetch_timeout = "90000s": too long (at most 1h)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, msg := loadSection(t, tt.body)
			if tt.want == "" {
				require.Empty(t, msg)
				return
			}
			require.True(t, strings.HasPrefix(msg, tt.want), "got %s", msg)
		})
	}
}

func TestValidateDurationBounds(t *testing.T) {
	tests := []struct {
		name string
		set  func(*Config)
		want string
	}{
		{"delay too long", func(c *Config) { c.FetchDelay = config.Duration(2 * time.Hour) }, "fetch_delay: 2h is too long (at most 1h)"},
		{"timeout negative", func(c *Config) { c.FetchTimeout = -1 }, "fetch_timeout: must not be negative"},
		{"poll too long", func(c *Config) { c.PollInterval = config.Duration(25 * time.Hour) }, "poll_interval: 1d 1h is too long (at most 1h)"},
		{"poll too short", func(c *Config) { c.PollInterval = config.Duration(time.Millisecond) }, "poll_interval: must be at least 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Hostname, c.Site = StringList{"taurus-7"}, "lyon"
			tt.set(c)
			require.ErrorContains(t, c.Validate(), tt.want)
		})
	}
}

// sample.toml, the commented section config regen takes its comments from,
// is a valid section (every key known, the values valid once ${VAR} is
// substituted), and every key of Config is in it, set or commented out.
func TestSampleConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "alumet-config.toml")
	require.NoError(t, os.WriteFile(path, []byte(SampleConfig), 0o600))
	t.Setenv("G5K_PASSWORD", "s3cret-sample")
	loaded, err := config.Load(config.Options{Path: path, Specs: []config.PluginSpec{config.SpecOf(Factory())}, NoDefaultConfig: true, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	require.Len(t, loaded.Enabled, 1)
	cfg := loaded.Enabled[0].Config.(*Config)
	require.NoError(t, cfg.Validate())
	require.Equal(t, "lyon", cfg.Site)
	for _, k := range []string{"site", "hostname", "nodes", "job_id", "metrics", "login", "password", "password_file", "api_url",
		"utc_offset", "fetch_delay", "fetch_timeout", "poll_interval", "preflight", "row_budget", "concurrency"} {
		require.Regexp(t, `(?m)^(# )?`+k+` = `, SampleConfig, k)
	}
}
