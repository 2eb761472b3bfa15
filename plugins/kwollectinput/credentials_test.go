package kwollectinput

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/kwollect"
)

// TestResolveCredentials: the precedence of the one resolver, with and
// without the --login of alumet-agent kwollect metrics, and the Source
// that the 401 messages quote. (TestCredentials covers the warnings and
// errors of the files.)
func TestResolveCredentials(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	netrcPath := write("netrc", "machine api.grid5000.fr login jdoe password fromnetrc\n")
	pwFile := write("pw", "fromfile\n")
	cfgFile := write("cfg.toml", "[plugins.kwollect-input]\nlogin = \"u\"\npassword = \"${G5K_PASSWORD}\"\n")
	literal := write("literal.toml", "password = \"literal-pw\"\n")
	login := func(s string) *string { return &s }
	api := kwollect.DefaultBaseURL
	tests := []struct {
		name     string
		cfg      Config
		config   string            // the config file
		login    *string           // --login
		env      map[string]string // for Getenv
		want     Credentials
		wantWarn string
	}{
		{name: "none", cfg: Config{APIURL: api}, config: cfgFile,
			want: Credentials{Source: "no credentials: none in the config (login, password, password_file) nor in " + filepath.Join(dir, "none") + " for api.grid5000.fr"}},
		{name: "config password, written in the file", cfg: Config{APIURL: api, Login: "u", Password: "literal-pw"}, config: literal,
			want: Credentials{Login: "u", Password: "literal-pw", Source: `login "u" with the password of the config`}},
		{name: "config password from ${VAR}", cfg: Config{APIURL: api, Login: "u", Password: "envpw"}, config: cfgFile,
			want: Credentials{Login: "u", Password: "envpw", Source: `login "u" with the password of the config, from an environment variable`}},
		{name: "password_file", cfg: Config{APIURL: api, Login: "u", PasswordFile: pwFile}, config: cfgFile,
			want: Credentials{Login: "u", Password: "fromfile", Source: `login "u" with the password of password_file ` + pwFile}},
		{name: "netrc", cfg: Config{APIURL: api}, config: cfgFile,
			want: Credentials{Login: "jdoe", Password: "fromnetrc", Source: `login "jdoe" from NETRC (machine api.grid5000.fr)`}},
		{name: "G5K_PASSWORD alone is not read without --login", cfg: Config{APIURL: api, Login: "someone"}, config: cfgFile, env: map[string]string{"G5K_PASSWORD": "envpw"},
			want:     Credentials{Source: `no credentials: login "someone" is set but no password (password, password_file or NETRC)`},
			wantWarn: "sending no credentials"},

		{name: "--login with G5K_PASSWORD", cfg: Config{APIURL: api}, config: cfgFile, login: login("jdoe"), env: map[string]string{"G5K_PASSWORD": "envpw"},
			want: Credentials{Login: "jdoe", Password: "envpw", Source: `login "jdoe" with the password of the config, from an environment variable`}},
		{name: "--login drops another login's password", cfg: Config{APIURL: api, Login: "u", Password: "literal-pw"}, config: literal, login: login("jdoe"),
			want: Credentials{Login: "jdoe", Password: "fromnetrc", Source: `login "jdoe" from NETRC (machine api.grid5000.fr)`}},
		{name: "--login drops another login's password_file", cfg: Config{APIURL: api, Login: "u", PasswordFile: pwFile}, config: cfgFile, login: login("other"),
			want:     Credentials{Source: `no credentials: login "other" is set but no password (password, password_file or NETRC)`},
			wantWarn: `is set but no password`},
		{name: "--login of the config keeps its password_file over G5K_PASSWORD", cfg: Config{APIURL: api, Login: "u", PasswordFile: pwFile}, config: cfgFile,
			login: login("u"), env: map[string]string{"G5K_PASSWORD": "envpw"},
			want: Credentials{Login: "u", Password: "fromfile", Source: `login "u" with the password of password_file ` + pwFile}},
		{name: "--login of the config: G5K_PASSWORD over its password", cfg: Config{APIURL: api, Login: "u", Password: "literal-pw"}, config: literal,
			login: login("u"), env: map[string]string{"G5K_PASSWORD": "envpw"},
			want: Credentials{Login: "u", Password: "envpw", Source: `login "u" with the password of the config, from an environment variable`}},
		{name: "--login of the config without G5K_PASSWORD", cfg: Config{APIURL: api, Login: "u", Password: "literal-pw"}, config: literal, login: login("u"),
			want: Credentials{Login: "u", Password: "literal-pw", Source: `login "u" with the password of the config`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			np := netrcPath
			if tt.name == "none" {
				np = filepath.Join(dir, "none")
			}
			var logs strings.Builder
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			cfg := tt.cfg
			before := cfg
			got, err := ResolveCredentials(&cfg, CredentialOptions{ConfigPath: tt.config, NetrcPath: np, Login: tt.login,
				Getenv: func(k string) string { return tt.env[k] }, Log: log})
			require.NoError(t, err)
			want := tt.want
			want.Source = strings.ReplaceAll(want.Source, "NETRC", np)
			require.Empty(t, cmp.Diff(want, got))
			require.Equal(t, want.Source, cfg.credSource, "the plugin's messages quote it")
			cfg.credSource = ""
			require.Empty(t, cmp.Diff(before, cfg, cmp.AllowUnexported(Config{})), "the config is not changed")
			if tt.wantWarn != "" {
				require.Contains(t, logs.String(), tt.wantWarn)
			}
			for _, secret := range []string{"fromnetrc", "fromfile", "literal-pw", "envpw"} {
				require.NotContains(t, logs.String(), secret)
			}
		})
	}
}

// Without Getenv, --login reads the process's $G5K_PASSWORD; a bad api_url
// fails in ClientFromConfig with the key's name.
func TestClientFromConfig(t *testing.T) {
	t.Setenv("G5K_PASSWORD", "from-the-env")
	none := filepath.Join(t.TempDir(), "netrc")
	jdoe := "jdoe"
	cfg := &Config{APIURL: kwollect.DefaultBaseURL}
	client, source, err := ClientFromConfig(cfg, CredentialOptions{NetrcPath: none, Login: &jdoe})
	require.NoError(t, err)
	require.NotNil(t, client)
	require.Equal(t, `login "jdoe" with the password of the config`, source)

	_, _, err = ClientFromConfig(&Config{APIURL: "ftp://example.org"}, CredentialOptions{NetrcPath: none})
	require.ErrorContains(t, err, "api_url: ")
	require.NotContains(t, err.Error(), "from-the-env")
}
