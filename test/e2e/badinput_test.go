package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBadConfigIsBounded: bad input in the configuration gets a clear
// error naming the file, key and line, quickly and without a secret.
func TestBadConfigIsBounded(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-Pa55"
	deep := strings.Repeat("{ a = ", 600) + "1" + strings.Repeat(" }", 600)
	for _, tt := range []struct {
		name string
		cfg  string
		want []string
	}{
		{"fetch_delay 290y", seedConfig("", "", "https://api.grid5000.fr/stable") + "fetch_delay = \"290y\"\n",
			[]string{"alumet-config.toml:8", "fetch_delay", "at most 1h"}},
		{"fetch_timeout 2d", seedConfig("", "", "https://api.grid5000.fr/stable") + "fetch_timeout = \"2d\"\n",
			[]string{"alumet-config.toml:8", "fetch_timeout", "at most 1h"}},
		{"nested inline tables", "[plugins.csv]\nx = " + deep + "\n",
			[]string{"alumet-config.toml:2", "too deeply nested"}},
		{"api_url bad port", seedConfig("alice", secret, "https://alice:"+secret+"@api.grid5000.fr:99999/stable"),
			[]string{"alumet-config.toml", "api_url"}},
		{"api_url ftp", seedConfig("", "", "ftp://alice:"+secret+"@api.grid5000.fr/stable"),
			[]string{"alumet-config.toml", "api_url"}},
		{"api_url bad escape", seedConfig("", "", "https://alice:"+secret+"%zz@api.grid5000.fr/stable"),
			[]string{"alumet-config.toml", "api_url"}},
		{"api_url unparsable", seedConfig("", "", "https://alice:"+secret+"@[::1/stable"),
			[]string{"alumet-config.toml", "api_url"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(tt.cfg), 0o600))
			begin := time.Now()
			res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "exec", "--", "touch", "ran")
			require.Less(t, time.Since(begin), 30*time.Second, "a bad config is refused at once")
			require.NotEqual(t, 0, res.code, res.stderr)
			for _, w := range tt.want {
				require.Contains(t, res.stderr, w)
			}
			require.NotContains(t, res.stderr+res.stdout, secret)
			_, err := os.Stat(filepath.Join(dir, "ran"))
			require.ErrorIs(t, err, os.ErrNotExist, "the command must not run")
		})
	}
}

// TestEmulatorControlNeedsToken: the control endpoint refuses requests
// without the token printed at start, and bodies that are not JSON (which
// a web page could send).
func TestEmulatorControlNeedsToken(t *testing.T) {
	t.Parallel()
	_, base, token := emulatorWithControl(t)
	rule := `{"kind": "503"}`
	for _, tt := range []struct {
		name        string
		auth, ctype string
		body        string
		want        int
	}{
		{"no token", "", "application/json", rule, http.StatusUnauthorized},
		{"wrong token", "Bearer nope-nope-nope-nope", "application/json", rule, http.StatusUnauthorized},
		{"text/plain with the token", "Bearer " + token, "text/plain", "kind=503", http.StatusUnsupportedMediaType},
		{"form with the token", "Bearer " + token, "application/x-www-form-urlencoded", "kind=503", http.StatusUnsupportedMediaType},
		{"JSON with the token", "Bearer " + token, "application/json", rule, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, base+"/_emulator/faults", strings.NewReader(tt.body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", tt.ctype)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if tt.want == http.StatusOK {
				require.Less(t, resp.StatusCode, 300, string(body))
				return
			}
			require.Equal(t, tt.want, resp.StatusCode, string(body))
		})
	}
}

// emulatorWithControl starts the emulator with its control endpoint and
// returns its base URL (no /stable) and control token.
func emulatorWithControl(t *testing.T, args ...string) (*bytes.Buffer, string, string) {
	t.Helper()
	var out bytes.Buffer
	api := startEmulatorLine(t, func(line string) {
		fmt.Fprint(&out, line)
	}, append([]string{"--control"}, args...)...)
	fields := strings.Fields(out.String())
	token := ""
	for _, f := range fields {
		if v, ok := strings.CutPrefix(f, "control-token="); ok {
			token = v
		}
	}
	require.NotEmpty(t, token, "start line: %q", out.String())
	return &out, strings.TrimSuffix(api, "/stable"), token
}
