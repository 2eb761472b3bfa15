package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/testkit"
)

func buildBinary(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not found")
	}
	bin := filepath.Join(t.TempDir(), "kwollect-emulator")
	out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, string(out))
	return bin
}

// command is a running kwollect-emulator process.
type command struct {
	cmd    *exec.Cmd
	base   string // http://127.0.0.1:PORT
	token  string // the control token of the start line ("" without --control)
	stderr *testkit.LockedBuffer
	done   chan error
}

// startCommand runs the binary on a free loopback port and waits for its
// listening line.
func startCommand(t *testing.T, bin string, args ...string) *command {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--listen", "127.0.0.1:0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	c := &command{cmd: cmd, stderr: &testkit.LockedBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = c.stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-c.done
		}
	})
	lineCh := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lineCh <- line
		_, _ = io.Copy(io.Discard, stdout)
		c.done <- cmd.Wait()
	}()
	var line string
	select {
	case line = <-lineCh:
	case <-time.After(60 * time.Second):
		t.Fatalf("no listening line; stderr: %s", c.stderr.String())
	}
	const prefix = "kwollect-emulator listening on http://127.0.0.1:"
	require.True(t, strings.HasPrefix(line, prefix), "%q; stderr: %s", line, c.stderr.String())
	require.True(t, strings.HasSuffix(line, "\n"))
	fields := strings.Fields(strings.TrimPrefix(line, prefix))
	port, err := strconv.Atoi(fields[0])
	require.NoError(t, err)
	require.Greater(t, port, 0)
	c.base = "http://127.0.0.1:" + strconv.Itoa(port)
	for _, f := range fields[1:] {
		v, ok := strings.CutPrefix(f, "control-token=")
		require.True(t, ok, "unexpected field %q on the start line", f)
		c.token = v
	}
	return c
}

// control sends an authorised JSON request to the control endpoint.
func (c *command) control(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, c.base+"/_emulator"+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

// stop sends SIGTERM and checks the exit status 0.
func (c *command) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-c.done:
		require.NoError(t, err, "exit status; stderr: %s", c.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	require.Equal(t, 0, c.cmd.ProcessState.ExitCode())
}

func TestCommandFaultsAndControl(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	bin := buildBinary(t)
	c := startCommand(t, bin, "--lag", "0s", "--fault", "kind=503;next=2", "--control", "--row-limit", "100", "--fault-seed", "7")
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	now := time.Now().Unix()
	q := c.base + "/stable/sites/lyon/metrics?nodes=taurus-7&metrics=wattmetre_power_watt&start_time=" + strconv.FormatInt(now-20, 10) + "&end_time=" + strconv.FormatInt(now-11, 10)
	get := func(url string) (int, http.Header, string) {
		t.Helper()
		res, err := client.Get(url)
		require.NoError(t, err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return res.StatusCode, res.Header, string(b)
	}
	for i := 0; i < 2; i++ {
		status, hdr, body := get(q)
		require.Equal(t, http.StatusServiceUnavailable, status, "request %d", i+1)
		require.Equal(t, "text/html", hdr.Get("Content-Type"))
		require.Contains(t, body, "503 Service Unavailable")
	}
	status, _, body := get(q)
	require.Equal(t, http.StatusOK, status)
	var rows []map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &rows))
	require.Len(t, rows, 10)

	// The control endpoint wants the token of the start line, and JSON.
	require.Regexp(t, `^[0-9a-f]{32}$`, c.token)
	res, err := client.Post(c.base+"/_emulator/faults", "application/json", strings.NewReader(`{"kind":"429","next":1,"retry_after":"3"}`))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusUnauthorized, res.StatusCode, "no token")
	req, _ := http.NewRequest("POST", c.base+"/_emulator/faults", strings.NewReader(`"kind=429"`))
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "text/plain")
	res, err = client.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusUnsupportedMediaType, res.StatusCode, "text/plain")

	// A rule POSTed to the control endpoint takes effect.
	code, b := c.control(t, "POST", "/faults", `{"kind":"429","next":1,"retry_after":"3"}`)
	require.Equal(t, http.StatusOK, code, b)
	require.Contains(t, b, `"spec":"kind=429;next=1;retry-after=3"`)
	status, hdr, _ := get(q)
	require.Equal(t, http.StatusTooManyRequests, status)
	require.Equal(t, "3", hdr.Get("Retry-After"))
	status, _, _ = get(q)
	require.Equal(t, http.StatusOK, status)

	// The row limit: 101 one-hertz rows are too many.
	status, _, body = get(c.base + "/stable/sites/lyon/metrics?nodes=taurus-7&metrics=wattmetre_power_watt&start_time=" + strconv.FormatInt(now-200, 10) + "&end_time=" + strconv.FormatInt(now-100, 10))
	require.Equal(t, http.StatusInternalServerError, status)
	require.Equal(t, `{"hint":null,"details":null,"code":"XX000","message":"Exception: Request timeout, too much data to process."}`, body)

	status, body = c.control(t, "GET", "/faults", "")
	require.Equal(t, http.StatusOK, status)
	var listing []map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &listing))
	require.Len(t, listing, 2)
	require.Equal(t, "kind=503;next=2", listing[0]["spec"])
	require.Equal(t, 2.0, listing[0]["injected"])
	require.Equal(t, 1.0, listing[1]["injected"])

	status, body = c.control(t, "GET", "/stats", "")
	require.Equal(t, http.StatusOK, status)
	var st struct {
		Requests     int64            `json:"requests"`
		Faults       int64            `json:"faults"`
		RowsServed   int64            `json:"rows_served"`
		ByStatus     map[string]int64 `json:"by_status"`
		FaultsByKind map[string]int64 `json:"faults_by_kind"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	require.Equal(t, int64(6), st.Requests)
	require.Equal(t, int64(3), st.Faults)
	require.Equal(t, int64(20), st.RowsServed)
	require.Equal(t, map[string]int64{"200": 2, "429": 1, "500": 1, "503": 2}, st.ByStatus)
	require.Equal(t, map[string]int64{"429": 1, "503": 2}, st.FaultsByKind)

	c.stop(t)
	logs := c.stderr.String()
	require.Contains(t, logs, "fault=503")
	require.Contains(t, logs, "status=429")
}

func TestCommandServesAndStops(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	bin := buildBinary(t)
	jobStart := time.Now().Unix() - 600
	c := startCommand(t, bin, "--lag", "0s", "--seed", "3",
		"--user", "alice:pa55", "--monitor", "gemini-1,taurus-2", "--cpu-load-node", "taurus-9",
		"--job", "id=42;site=lyon;nodes=taurus-7,taurus-8;start="+strconv.FormatInt(jobStart, 10)+";stop="+strconv.FormatInt(jobStart+300, 10)+";types=monitor",
		"--load", "nodes=taurus-3;start=-1m;util=0.5",
		"--signal", "nodes=taurus-5;kind=square;low=100;high=200;period=2s",
		"--signal", "nodes=taurus-4;kind=constant;watts=150;start=-1h",
		"--gap", "nodes=taurus-6;start=-1h;metrics=wattmetre_power_watt")
	base := c.base

	client := &http.Client{Timeout: 30 * time.Second}
	res, err := client.Get(base + "/healthz")
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "ok", string(body))

	now := time.Now().Unix()
	q := base + "/stable/sites/lyon/metrics?nodes=taurus-7&metrics=wattmetre_power_watt&start_time=" + strconv.FormatInt(now-10, 10) + "&end_time=" + strconv.FormatInt(now-5, 10)
	res, err = client.Get(q)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)

	req, _ := http.NewRequest("GET", q, nil)
	req.SetBasicAuth("alice", "pa55")
	res, err = client.Do(req)
	require.NoError(t, err)
	var rows []map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&rows))
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Len(t, rows, 6)
	require.Equal(t, "taurus-7", rows[0]["device_id"])

	req, _ = http.NewRequest("GET", base+"/stable/sites/lyon/metrics?job_id=42&metrics=wattmetre_power_watt", nil)
	req.SetBasicAuth("alice", "pa55")
	res, err = client.Do(req)
	require.NoError(t, err)
	n := 0
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		n++
	}
	res.Body.Close()
	require.Equal(t, 2*(300*50+1), n, "job 42: two nodes, 5 min of 50 Hz frames and the 1 Hz row at the stop")

	// Signals and gaps: taurus-5 alternates 200 W (even seconds) and 100 W,
	// taurus-4 draws 150 W, taurus-6 has no wattmetre row.
	req, _ = http.NewRequest("GET", base+"/stable/sites/lyon/metrics?nodes=taurus-4,taurus-5,taurus-6&metrics=wattmetre_power_watt&start_time="+strconv.FormatInt(now-10, 10)+"&end_time="+strconv.FormatInt(now-5, 10), nil)
	req.SetBasicAuth("alice", "pa55")
	res, err = client.Do(req)
	require.NoError(t, err)
	var sigRows []struct {
		Timestamp time.Time `json:"timestamp"`
		DeviceID  string    `json:"device_id"`
		Value     float64   `json:"value"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&sigRows))
	res.Body.Close()
	require.Len(t, sigRows, 12)
	for _, r := range sigRows {
		want := 150.0
		if r.DeviceID == "taurus-5" {
			want = 100
			if r.Timestamp.Unix()%2 == 0 {
				want = 200
			}
		}
		require.Equal(t, want, r.Value, "%s at %v", r.DeviceID, r.Timestamp)
	}

	c.stop(t)
	logs := c.stderr.String()
	require.Contains(t, logs, "msg=request")
	require.Contains(t, logs, "status=401")
	require.Contains(t, logs, "rows=6")
	require.NotContains(t, logs, "pa55")
}

func TestCommandRefusesRemote(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"--listen", "0.0.0.0:0"}, &out, &errOut)
	require.Equal(t, 2, code)
	require.Empty(t, out.String())
	require.Contains(t, errOut.String(), "--allow-remote")
	require.Equal(t, 2, run([]string{"--monitor", "nope-1", "--listen", "127.0.0.1:0"}, &out, &errOut))
	require.Equal(t, 2, run([]string{"--user", "nocolon"}, &out, &errOut))
	require.Equal(t, 2, run([]string{"--bogus"}, &out, &errOut))
	require.Equal(t, 2, run([]string{"--fault", "kind=404"}, &out, &errOut))
	require.Contains(t, errOut.String(), `--fault "kind=404": unknown fault kind`)
	require.Equal(t, 2, run([]string{"--fault", "kind=503;rows=2"}, &out, &errOut))
	require.Equal(t, 2, run([]string{"--row-limit", "-1"}, &out, &errOut))
	require.Equal(t, 2, run([]string{"--control-token", "0123456789abcdef"}, &out, &errOut))
	require.Contains(t, errOut.String(), "--control-token needs --control")
	require.Equal(t, 2, run([]string{"--control", "--control-token", "short"}, &out, &errOut))
	require.Contains(t, errOut.String(), "at least 16 characters")
	require.Equal(t, 2, run([]string{"--fault", "kind=blackhole;rows=1"}, &out, &errOut))
	require.Equal(t, 2, run([]string{"--signal", "nodes=taurus-7;kind=sine"}, &out, &errOut))
	require.Contains(t, errOut.String(), `--signal "nodes=taurus-7;kind=sine": unknown kind "sine"`)
	require.Equal(t, 2, run([]string{"--signal", "nodes=nope-1;kind=constant;watts=1"}, &out, &errOut))
	require.Contains(t, errOut.String(), `unknown node "nope-1"`)
	require.Equal(t, 2, run([]string{"--gap", "nodes=taurus-7;start=+1m;stop=-1m"}, &out, &errOut))
	require.Contains(t, errOut.String(), "stop must be after start")
	require.Equal(t, 2, run([]string{"--gap", "nodes=taurus-7;metrics=nope"}, &out, &errOut))
	require.Contains(t, errOut.String(), `no series of metric "nope"`)
	require.Equal(t, 0, run([]string{"-h"}, &out, &errOut))
}

func TestFlagParsing(t *testing.T) {
	base := time.Date(2025, 1, 15, 9, 0, 0, 0, time.UTC)
	j, err := parseJob("id=42;site=lyon;nodes=taurus-7, taurus-8;start=-10m;stop=2025-01-15T10:30:00;types=monitor=wattmetre_.*,deploy", base)
	require.NoError(t, err)
	require.Equal(t, int64(42), j.ID)
	require.Equal(t, "lyon", j.Site)
	require.Equal(t, []string{"taurus-7", "taurus-8"}, j.Nodes)
	require.True(t, j.Start.Equal(base.Add(-10*time.Minute)))
	require.True(t, j.Stop.Equal(base.Add(30*time.Minute)), j.Stop) // naive = Paris
	require.Equal(t, []string{"monitor=wattmetre_.*", "deploy"}, j.Types)
	j, err = parseJob("id=1;nodes=orion-3;start=1736931600", base)
	require.NoError(t, err)
	require.True(t, j.Start.Equal(base))
	require.True(t, j.Stop.IsZero())
	for _, bad := range []string{"nodes=x", "id=1", "id=1;nodes=x;when=now", "id=1;nodes=x;start=later", "garbage"} {
		_, err := parseJob(bad, base)
		require.Error(t, err, bad)
	}
	j, err = parseJob("id=2;nodes=orion-3;start=10m;stop=now+1h", base)
	require.NoError(t, err)
	require.True(t, j.Start.Equal(base.Add(10*time.Minute)))
	require.True(t, j.Stop.Equal(base.Add(time.Hour)))
	l, err := parseLoad("nodes=taurus-3;start=+1m;stop=+2m;util=0.75", base)
	require.NoError(t, err)
	require.Equal(t, 0.75, l.Util)
	require.True(t, l.Stop.Equal(base.Add(2*time.Minute)))
	_, err = parseLoad("nodes=taurus-3;util=2", base)
	require.Error(t, err)
	for addr, ok := range map[string]bool{"127.0.0.1:0": true, "localhost:8080": true, "[::1]:9": true, "127.1.2.3:80": true,
		"0.0.0.0:8080": false, ":8080": false, "192.0.2.1:80": false, "example.org:80": false, "nonsense": false} {
		require.Equal(t, ok, isLoopback(addr), addr)
	}
}

// TestCommandBlackholeAndShutdown: --blackhole answers nothing but the
// control endpoint, which lifts it; held connections (black hole, stall) do
// not delay SIGTERM, and their clients see the connection closed.
func TestCommandBlackholeAndShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	bin := buildBinary(t)
	c := startCommand(t, bin, "--lag", "0s", "--blackhole", "--control", "--control-token", "a-test-token-0123456789",
		"--fault", "kind=stall;rows=2")
	require.Equal(t, "a-test-token-0123456789", c.token)
	held := func() int64 {
		t.Helper()
		code, body := c.control(t, "GET", "/stats", "")
		require.Equal(t, http.StatusOK, code, body)
		var st struct {
			Held int64 `json:"held"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &st))
		return st.Held
	}
	// waitHeld polls the held gauge (bounded by a hang guard, not timed).
	waitHeld := func(n int64) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); held() != n; {
			require.True(t, time.Now().Before(deadline), "hang guard: want %d held connections", n)
			time.Sleep(10 * time.Millisecond)
		}
	}

	// A black-holed request: no byte, even after the client's timeout.
	conn, err := net.Dial("tcp", strings.TrimPrefix(c.base, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	waitHeld(1)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	n, err := conn.Read(make([]byte, 1))
	require.Zero(t, n)
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "%v", err)

	code, body := c.control(t, "GET", "/blackhole", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, `{"blackhole":true}`+"\n", body)
	code, body = c.control(t, "DELETE", "/blackhole", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, `{"blackhole":false}`+"\n", body)

	// The stall rule: 200, the first two rows, then nothing.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	now := time.Now().Unix()
	res, err := client.Get(c.base + "/stable/sites/lyon/metrics?nodes=taurus-7&metrics=wattmetre_power_watt&start_time=" + strconv.FormatInt(now-20, 10) + "&end_time=" + strconv.FormatInt(now-11, 10))
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	waitHeld(2)

	c.stop(t) // exits 0 although two connections are held
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
	rest, err := io.ReadAll(conn)
	require.Empty(t, rest, "the black hole never answered")
	if err != nil {
		require.Contains(t, err.Error(), "reset")
	}
	b, err := io.ReadAll(res.Body)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.Equal(t, 2, strings.Count(string(b), `"device_id"`), string(b))
	require.False(t, strings.HasSuffix(string(b), "]"))
}

// TestCommandGzipAndStatementTimeout: --gzip compresses the rows when
// asked; --statement-timeout with --statement-rows-per-second refuses a
// query over timeout × rate rows once the timeout has passed, and
// /_emulator/stats counts it.
func TestCommandGzipAndStatementTimeout(t *testing.T) {
	bin := buildBinary(t)
	c := startCommand(t, bin, "--quiet", "--gzip", "--statement-timeout", "300ms", "--statement-rows-per-second", "10", "--control")
	t0 := time.Now().Add(-time.Hour).Unix()
	query := func(seconds int64) string {
		return c.base + "/stable/sites/lyon/metrics?nodes=taurus-7&metrics=wattmetre_power_watt&start_time=" +
			strconv.FormatInt(t0, 10) + "&end_time=" + strconv.FormatInt(t0+seconds, 10)
	}
	raw := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 30 * time.Second}
	for _, tc := range []struct {
		name     string
		seconds  int64 // window length: seconds + 1 rows
		encoding string
		status   int
	}{
		{"gzip", 2, "gzip", http.StatusOK},
		{"plain", 2, "", http.StatusOK},
		{"too much data", 3, "gzip", http.StatusInternalServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, query(tc.seconds), nil)
			require.NoError(t, err)
			if tc.encoding != "" {
				req.Header.Set("Accept-Encoding", tc.encoding)
			}
			start := time.Now()
			res, err := raw.Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			var body io.Reader = res.Body
			elapsed := time.Since(start)
			require.Equal(t, tc.status, res.StatusCode)
			if tc.status != http.StatusOK {
				require.GreaterOrEqual(t, elapsed, 300*time.Millisecond)
				require.Empty(t, res.Header.Get("Content-Encoding"))
				b, err := io.ReadAll(body)
				require.NoError(t, err)
				require.Contains(t, string(b), "too much data to process")
				return
			}
			require.Equal(t, tc.encoding, res.Header.Get("Content-Encoding"))
			if tc.encoding == "gzip" {
				zr, err := gzip.NewReader(res.Body)
				require.NoError(t, err)
				body = zr
			}
			var rows []map[string]any
			require.NoError(t, json.NewDecoder(body).Decode(&rows))
			require.Len(t, rows, 3)
		})
	}
	code, body := c.control(t, http.MethodGet, "/stats", "")
	require.Equal(t, http.StatusOK, code)
	var st struct {
		StatementTimeouts int64 `json:"statement_timeouts"`
		RowLimitErrors    int64 `json:"row_limit_errors"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	require.Equal(t, int64(1), st.StatementTimeouts)
	require.Zero(t, st.RowLimitErrors)
	c.stop(t)
}

func TestStatementFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--statement-timeout", "-1s"},
		{"--statement-rows-per-second", "0"},
		{"--statement-rows-per-second", "-5"},
		{"--statement-rows-per-second", "NaN"},
		{"--statement-rows-per-second", "+Inf"},
	} {
		var stdout, stderr bytes.Buffer
		require.Equal(t, 2, run(append([]string{"--listen", "127.0.0.1:0"}, args...), &stdout, &stderr), "%v", args)
		require.Empty(t, stdout.String())
		require.Contains(t, stderr.String(), "statement-", "%v", args)
	}
}

// TestCommandStatementWork: --statement-work is accepted and valid queries
// are answered; /_emulator/stats reports in_flight and max_in_flight (one
// query at a time here). The wait itself is tested in the emulator
// package (TestStatementWork).
func TestCommandStatementWork(t *testing.T) {
	bin := buildBinary(t)
	c := startCommand(t, bin, "--quiet", "--statement-work", "--statement-rows-per-second", "1000", "--control")
	t0 := time.Now().Add(-time.Hour).Unix()
	hc := &http.Client{Timeout: 30 * time.Second}
	for i := range int64(3) {
		res, err := hc.Get(c.base + "/stable/sites/lyon/metrics?nodes=taurus-7&metrics=wattmetre_power_watt&start_time=" +
			strconv.FormatInt(t0+10*i, 10) + "&end_time=" + strconv.FormatInt(t0+10*i+4, 10))
		require.NoError(t, err)
		var rows []map[string]any
		require.NoError(t, json.NewDecoder(res.Body).Decode(&rows))
		require.NoError(t, res.Body.Close())
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Len(t, rows, 5)
	}
	code, body := c.control(t, http.MethodGet, "/stats", "")
	require.Equal(t, http.StatusOK, code)
	var st struct {
		MetricsGET  int64  `json:"metrics_get"`
		InFlight    *int64 `json:"in_flight"`
		MaxInFlight int64  `json:"max_in_flight"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	require.Equal(t, int64(3), st.MetricsGET)
	require.NotNil(t, st.InFlight, body)
	require.Equal(t, int64(1), st.MaxInFlight, body)
	c.stop(t)
}
