package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// syncBuffer is a goroutine-safe bytes.Buffer for the child's stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

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

func TestCommandServesAndStops(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	bin := buildBinary(t)
	jobStart := time.Now().Unix() - 600
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--lag", "0s", "--seed", "3",
		"--user", "alice:pa55", "--monitor", "gemini-1,taurus-2", "--cpu-load-node", "taurus-9",
		"--job", "id=42;site=lyon;nodes=taurus-7,taurus-8;start="+strconv.FormatInt(jobStart, 10)+";stop="+strconv.FormatInt(jobStart+300, 10)+";types=monitor",
		"--load", "nodes=taurus-3;start=-1m;util=0.5")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-done
		}
	})

	lineCh := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lineCh <- line
		_, _ = io.Copy(io.Discard, stdout)
		done <- cmd.Wait()
	}()
	var line string
	select {
	case line = <-lineCh:
	case <-time.After(60 * time.Second):
		t.Fatalf("no listening line; stderr: %s", stderr.String())
	}
	const prefix = "kwollect-emulator listening on http://127.0.0.1:"
	require.True(t, strings.HasPrefix(line, prefix), line)
	require.True(t, strings.HasSuffix(line, "\n"))
	port, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, prefix)))
	require.NoError(t, err)
	require.Greater(t, port, 0)
	base := "http://127.0.0.1:" + strconv.Itoa(port)

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

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-done:
		require.NoError(t, err, "exit status; stderr: %s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	require.Equal(t, 0, cmd.ProcessState.ExitCode())
	logs := stderr.String()
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
