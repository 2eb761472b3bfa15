package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBadConfigIsBounded: bad input in the configuration gets a clear
// error naming the file, key and line, quickly and without a secret.
func TestBadConfigIsBounded(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-Pa55"
	deep := strings.Repeat("{ a = ", 2000) + "1" + strings.Repeat(" }", 2000) // 16 KB
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
	e := startControlledEmulator(t)
	base, token := e.base, e.token
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

// mangler is a proxy in front of the emulator that spoils its data
// answers: the first row twice, an element of hugeBytes, garbage after the
// array.
func mangler(t *testing.T, api string, hugeBytes int) string {
	t.Helper()
	target, err := url.Parse(strings.TrimSuffix(api, "/stable"))
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var once sync.Once
	proxy.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.Method != http.MethodGet || !strings.HasSuffix(resp.Request.URL.Path, "/metrics") || resp.StatusCode != http.StatusOK ||
			resp.Request.URL.Query().Get("start_time") == "" {
			return nil
		}
		var rows []json.RawMessage
		if err := json.NewDecoder(resp.Body).Decode(&rows); err != nil {
			return err
		}
		resp.Body.Close()
		// The body is streamed: the huge element is not held in this process.
		var parts []io.Reader
		var size int64
		b := new(bytes.Buffer)
		b.WriteByte('[')
		for i, r := range rows {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(r)
			if i == 0 {
				once.Do(func() {
					// One answer only: the row again, and a huge element.
					b.WriteByte(',')
					b.Write(r)
					b.WriteString(`,{"timestamp":"2026-01-01T00:00:00+00:00","device_id":"taurus-7","metric_id":"wattmetre_power_watt","value":1,"labels":{"junk":"`)
					size += int64(b.Len()) + int64(hugeBytes)
					parts = append(parts, b, io.LimitReader(repeatByte('x'), int64(hugeBytes)))
					b = new(bytes.Buffer)
					b.WriteString(`"}}`)
				})
			}
		}
		b.WriteString("]garbage after the array")
		size += int64(b.Len())
		parts = append(parts, b)
		resp.Body = io.NopCloser(io.MultiReader(parts...))
		resp.ContentLength = size
		resp.Header.Set("Content-Length", strconv.FormatInt(size, 10))
		return nil
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	return srv.URL + "/stable"
}

// repeatByte is an endless reader of one byte.
type repeatByte byte

func (c repeatByte) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c)
	}
	return len(p), nil
}

// TestSpoiledAnswers: a duplicate row, a 100 MB element and garbage after
// the array: the rows are still exact, the memory stays small, and the
// anomalies are said in the outcome.
func TestSpoiledAnswers(t *testing.T) {
	t.Parallel()
	api := mangler(t, startEmulator(t, "--lag", "1s"), 100<<20)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(seedConfig("", "", api)+"preflight = \"off\"\n"), 0o600))
	cmd := agentCmd(dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "exec", "--", "sleep", "2")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	// The agent's own high-water RSS (VmHWM: since its exec; the rusage of
	// a child also counts the parent's memory it was forked from).
	var hwm int64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			hwm = max(hwm, vmHWM(cmd.Process.Pid))
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	<-sampled
	require.NoError(t, err, stderr.String())
	log := stderr.String()
	require.Contains(t, log, "skipped: element too large")
	require.Contains(t, log, "But the API's answers had anomalies: 1 duplicate row dropped, 1 oversized row skipped")
	require.Contains(t, log, "data after")
	checkCSV(t, filepath.Join(dir, "out.csv"), log, 2)
	t.Logf("the agent's VmHWM: %d KiB", hwm)
	require.Positive(t, hwm, "VmHWM sampled")
	require.Less(t, hwm, int64(100<<10), "a 100 MB element must not be held in memory (VmHWM %d KiB)", hwm)
}

// vmHWM reads a live process's peak resident size in KiB (0 once gone).
func vmHWM(pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// TestPreflightRidesOutTransientFaults: with a quarter of the API's
// answers failing (503, 429, resets), the pre-flight check retries like
// any query and the command is started every time.
func TestPreflightRidesOutTransientFaults(t *testing.T) {
	t.Parallel()
	e := startControlledEmulator(t, "--lag", "1s", "--fault-seed", "7",
		"--fault", "kind=503;p=0.12", "--fault", "kind=429;p=0.08;retry-after=1", "--fault", "kind=reset;p=0.06")
	dir := t.TempDir()
	cfg := outcomeConfig(e.api, "taurus-1,taurus-2,taurus-3,taurus-4", "")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(cfg), 0o600))
	for i := range 4 {
		marker := fmt.Sprintf("ran-%d", i)
		res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input", "exec", "--", "touch", marker)
		_, err := os.Stat(filepath.Join(dir, marker))
		require.NoError(t, err, "run %d: the command was not started:\n%s", i, res.stderr)
		require.Contains(t, []int{0, 3}, res.code, res.stderr)
		if res.code == 3 {
			require.Regexp(t, `fetch --from [0-9.]+ --to [0-9.]+`, res.stderr)
		}
	}
	n, _ := e.faults(t)
	require.Positive(t, n, "faults were injected")
}
