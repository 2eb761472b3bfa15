package kwollectinput

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/kwollect"
)

func fakeEnv(vars map[string]string, host string, files map[string]string) environment {
	return environment{
		getenv:   func(k string) string { return vars[k] },
		hostname: func() (string, error) { return host, nil },
		readFile: func(p string) ([]byte, error) {
			if s, ok := files[p]; ok {
				return []byte(s), nil
			}
			return nil, os.ErrNotExist
		},
	}
}

func TestResolveTargets(t *testing.T) {
	nodefile := "taurus-3.lyon.grid5000.fr\ntaurus-3.lyon.grid5000.fr\ntaurus-4.lyon.grid5000.fr\n\n"
	tests := []struct {
		name    string
		cfg     string
		env     environment
		want    targets
		wantErr string
	}{
		{name: "seed", cfg: `site = "lyon"` + "\nhostname = \"taurus-7\"",
			want: targets{Nodes: []kwollect.Target{{Site: "lyon", Node: "taurus-7"}}}},
		{name: "fqdn site wins, dedupe", cfg: `site = "lyon"` + "\nhostname = \"taurus-7,gros-41.nancy.grid5000.fr\"\nnodes = [\"taurus-7.lyon.grid5000.fr\", \"orion-3\"]",
			want: targets{Nodes: []kwollect.Target{{Site: "lyon", Node: "taurus-7"}, {Site: "nancy", Node: "gros-41"}, {Site: "lyon", Node: "orion-3"}}}},
		{name: "no site", cfg: `hostname = "taurus-7"`, wantErr: `node "taurus-7" has no site`},
		{name: "site case folded", cfg: `site = "Lyon"` + "\nhostname = \"taurus-7,gros-41.Nancy.grid5000.fr\"",
			want: targets{Nodes: []kwollect.Target{{Site: "lyon", Node: "taurus-7"}, {Site: "nancy", Node: "gros-41"}}}},
		{name: "job site case folded", cfg: "site = \"LYON\"\njob_id = 42",
			want: targets{JobID: 42, JobSite: "lyon"}},
		{name: "explicit job", cfg: "site = \"lyon\"\njob_id = 42",
			want: targets{JobID: 42, JobSite: "lyon"}},
		{name: "job as string", cfg: "site = \"lyon\"\njob_id = \"42\"",
			want: targets{JobID: 42, JobSite: "lyon"}},
		{name: "auto", cfg: `job_id = "auto"`,
			env:  fakeEnv(map[string]string{"OAR_JOB_ID": "77", "OAR_NODEFILE": "/nf"}, "taurus-3.lyon.grid5000.fr", map[string]string{"/nf": nodefile}),
			want: targets{JobID: 77, JobSite: "lyon", Nodes: []kwollect.Target{{Site: "lyon", Node: "taurus-3"}, {Site: "lyon", Node: "taurus-4"}}}},
		{name: "nothing named on a Grid'5000 node: the node itself", cfg: ``,
			env:  fakeEnv(nil, "taurus-9.lyon.grid5000.fr", nil),
			want: targets{Nodes: []kwollect.Target{{Site: "lyon", Node: "taurus-9"}}}},
		{name: "short name on a Grid'5000 node: its site", cfg: `hostname = "gros-3"`,
			env:  fakeEnv(nil, "gros-41.nancy.grid5000.fr", nil),
			want: targets{Nodes: []kwollect.Target{{Site: "nancy", Node: "gros-3"}}}},
		{name: "auto on a node lists the job's nodes, not only the local one", cfg: `job_id = "auto"`,
			env:  fakeEnv(map[string]string{"OAR_JOB_ID": "5", "OAR_NODEFILE": "/nf"}, "gros-41.nancy.grid5000.fr", map[string]string{"/nf": "gros-41.nancy.grid5000.fr\ngros-42.nancy.grid5000.fr\n"}),
			want: targets{JobID: 5, JobSite: "nancy", Nodes: []kwollect.Target{{Site: "nancy", Node: "gros-41"}, {Site: "nancy", Node: "gros-42"}}}},
		{name: "auto outside a job", cfg: `job_id = "auto"`, env: fakeEnv(nil, "laptop", nil), wantErr: "needs $OAR_JOB_ID"},
		{name: "auto bad id", cfg: `job_id = "auto"`, env: fakeEnv(map[string]string{"OAR_JOB_ID": "x"}, "laptop", nil), wantErr: "not a job id"},
		{name: "auto no nodefile", cfg: `job_id = "auto"`, env: fakeEnv(map[string]string{"OAR_JOB_ID": "1"}, "laptop", nil), wantErr: "OAR_NODEFILE is not set"},
		{name: "auto unreadable nodefile", cfg: `job_id = "auto"`, env: fakeEnv(map[string]string{"OAR_JOB_ID": "1", "OAR_NODEFILE": "/x"}, "laptop", nil), wantErr: "reading $OAR_NODEFILE"},
		{name: "auto empty nodefile", cfg: `job_id = "auto"`, env: fakeEnv(map[string]string{"OAR_JOB_ID": "1", "OAR_NODEFILE": "/nf"}, "laptop", map[string]string{"/nf": "\n"}), wantErr: "lists no node"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &Config{}
			_, err := toml.Decode(tt.cfg, cfg)
			require.NoError(t, err)
			env := tt.env
			if env.getenv == nil {
				env = fakeEnv(nil, "laptop", nil)
			}
			got, err := cfg.resolveTargets(env)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Empty(t, cmp.Diff(tt.want, got))
		})
	}
}

func TestJobRefAndPreflightTOML(t *testing.T) {
	var v struct {
		J JobRef        `toml:"j"`
		P PreflightMode `toml:"p"`
	}
	for _, bad := range []string{"j = -1", `j = "x"`, "j = 1.5", `p = "maybe"`, "p = 3"} {
		_, err := toml.Decode(bad, &v)
		require.Error(t, err, bad)
	}
	for in, want := range map[string]PreflightMode{"p = true": PreflightFail, "p = false": PreflightOff, `p = "warn"`: PreflightWarn} {
		_, err := toml.Decode(in, &v)
		require.NoError(t, err)
		require.Equal(t, want, v.P)
		b, err := v.P.MarshalTOML()
		require.NoError(t, err)
		require.Equal(t, strings.TrimPrefix(in, "p = "), string(b))
	}
	b, _ := JobRef{Auto: true}.MarshalTOML()
	require.Equal(t, `"auto"`, string(b))
	b, _ = JobRef{ID: 9}.MarshalTOML()
	require.Equal(t, "9", string(b))
}

func TestCredentials(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), mode))
		require.NoError(t, os.Chmod(p, mode))
		return p
	}
	netrcPath := write("netrc", "machine api.grid5000.fr login jdoe password fromnetrc\n", 0o600)
	openNetrc := write("netrc-open", "machine api.grid5000.fr login jdoe password fromnetrc\n", 0o644)
	pwFile := write("pw", "fromfile\nsecond line\n", 0o600)
	openPw := write("pw-open", "fromfile\n", 0o644)
	cfgFile := write("cfg.toml", `password = "literal-pw"`, 0o644)
	tests := []struct {
		name                string
		cfg                 Config
		configPath, netrc   string
		wantLogin, wantPass string
		wantWarn, wantErr   string
	}{
		{name: "none", cfg: Config{APIURL: kwollect.DefaultBaseURL}, netrc: filepath.Join(dir, "missing")},
		{name: "config", cfg: Config{APIURL: kwollect.DefaultBaseURL, Login: "u", Password: "p"}, netrc: netrcPath, wantLogin: "u", wantPass: "p"},
		{name: "literal password in a readable config", cfg: Config{APIURL: kwollect.DefaultBaseURL, Login: "u", Password: "literal-pw"}, configPath: cfgFile,
			wantLogin: "u", wantPass: "literal-pw", wantWarn: "can be read by other users"},
		{name: "password file", cfg: Config{APIURL: kwollect.DefaultBaseURL, Login: "u", PasswordFile: pwFile}, wantLogin: "u", wantPass: "fromfile"},
		{name: "readable password file", cfg: Config{APIURL: kwollect.DefaultBaseURL, Login: "u", PasswordFile: openPw}, wantLogin: "u", wantPass: "fromfile", wantWarn: "chmod 600"},
		{name: "missing password file", cfg: Config{APIURL: kwollect.DefaultBaseURL, Login: "u", PasswordFile: filepath.Join(dir, "nope")}, wantErr: "password_file"},
		{name: "netrc", cfg: Config{APIURL: kwollect.DefaultBaseURL}, netrc: netrcPath, wantLogin: "jdoe", wantPass: "fromnetrc"},
		{name: "netrc readable", cfg: Config{APIURL: kwollect.DefaultBaseURL}, netrc: openNetrc, wantLogin: "jdoe", wantPass: "fromnetrc", wantWarn: "can be read by other users"},
		{name: "netrc other login", cfg: Config{APIURL: kwollect.DefaultBaseURL, Login: "someone"}, netrc: netrcPath, wantWarn: "no password"},
		{name: "netrc other host", cfg: Config{APIURL: "http://127.0.0.1:9/stable"}, netrc: netrcPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs strings.Builder
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			login, pass, err := tt.cfg.credentials(tt.configPath, tt.netrc, log)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantLogin, login)
			require.Equal(t, tt.wantPass, pass)
			if tt.wantWarn != "" {
				require.Contains(t, logs.String(), tt.wantWarn)
			}
			for _, secret := range []string{"fromnetrc", "fromfile", "literal-pw"} {
				require.NotContains(t, logs.String(), secret)
			}
		})
	}
}

func TestGeneratedConfig(t *testing.T) {
	c := generatedConfig(fakeEnv(nil, "taurus-7.lyon.grid5000.fr", nil))
	require.Equal(t, "lyon", c.Site)
	require.Equal(t, StringList{"taurus-7"}, c.Hostname)
	c = generatedConfig(fakeEnv(nil, "laptop", nil))
	require.Empty(t, c.Site)
	require.Empty(t, c.Hostname)
	require.Equal(t, DefaultConfig().Hostname, c.Hostname)
}
