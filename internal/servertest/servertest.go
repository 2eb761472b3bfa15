// Package servertest starts the real servers Debian gives us
// (VictoriaMetrics, InfluxDB 1.x, Prometheus) for the end-to-end tests of
// the outputs: on 127.0.0.1 with a free port and a t.TempDir() data
// directory, waited for until ready, stopped in t.Cleanup.
//
// A missing binary skips the test with a message saying which package to
// install, except when the environment has ALUMET_REQUIRE_SERVERS=1 (CI
// sets it, after installing them): then the test fails.
package servertest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequireEnv is the environment variable that turns a missing server from
// a skip into a failure.
const RequireEnv = "ALUMET_REQUIRE_SERVERS"

// Server is a running server.
type Server struct {
	Name string // "victoria-metrics"
	URL  string // http://127.0.0.1:PORT
	Addr string // 127.0.0.1:PORT
	Dir  string // its data directory
	Log  *bytes.Buffer

	cmd       *exec.Cmd
	mu        sync.Mutex
	done      chan struct{}
	bin       string
	args      []string
	readyPath string
}

// Binary returns the path of the named executable, or skips t (fails it
// when ALUMET_REQUIRE_SERVERS=1) saying which Debian package has it.
func Binary(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s not found (apt-get install -y --no-install-recommends %s)", name, debianPackage)
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s, and %s=1 requires it", msg, RequireEnv)
	}
	t.Skip(msg + "; set " + RequireEnv + "=1 to make this a failure")
	return ""
}

// FreeAddr returns 127.0.0.1:PORT with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// start runs bin with the args that args(addr, dir) gives and waits for
// GET readyPath to answer 2xx. A server that exits at once (its port
// taken meanwhile) is started again on another port, up to 3 times.
func start(t testing.TB, name, bin, readyPath string, args func(addr, dir string) []string) *Server {
	t.Helper()
	dir := t.TempDir()
	var last string
	for try := 0; try < 3; try++ {
		addr := FreeAddr(t)
		s := &Server{Name: name, Addr: addr, URL: "http://" + addr, Dir: dir, Log: &bytes.Buffer{},
			bin: bin, args: args(addr, dir), readyPath: readyPath}
		if err := s.run(); err != nil {
			t.Fatalf("starting %s: %v", name, err)
		}
		if err := s.waitReady(readyPath, 30*time.Second); err != nil {
			s.stop()
			last = fmt.Sprintf("%s on %s: %v\n%s", name, addr, err, s.logText())
			continue
		}
		t.Cleanup(func() {
			s.stop()
			if t.Failed() {
				t.Logf("%s's log:\n%s", name, s.logText())
			}
		})
		return s
	}
	t.Fatalf("%s never became ready: %s", name, last)
	return nil
}

func (s *Server) run() error {
	s.done = make(chan struct{})
	s.cmd = exec.Command(s.bin, s.args...)
	s.cmd.Dir = s.Dir
	w := &lockedWriter{s: s}
	s.cmd.Stdout, s.cmd.Stderr = w, w
	if err := s.cmd.Start(); err != nil {
		return err
	}
	done := s.done
	cmd := s.cmd
	go func() { _ = cmd.Wait(); close(done) }()
	return nil
}

// Stop stops the server (an outage); Start starts it again on the same
// address with the same data.
func (s *Server) Stop() { s.stop() }

// Start starts a stopped server again and waits until it is ready.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	if err := s.run(); err != nil {
		t.Fatalf("restarting %s: %v", s.Name, err)
	}
	if err := s.waitReady(s.readyPath, 30*time.Second); err != nil {
		t.Fatalf("restarting %s on %s: %v\n%s", s.Name, s.Addr, err, s.logText())
	}
}

type lockedWriter struct{ s *Server }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if w.s.Log.Len() < 1<<20 {
		w.s.Log.Write(p)
	}
	return len(p), nil
}

func (s *Server) logText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Log.String()
}

func (s *Server) waitReady(path string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	c := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-s.done:
			return fmt.Errorf("exited before it was ready")
		default:
		}
		resp, err := c.Get(s.URL + path)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s (last: %v)", limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return // stopped already
	default:
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// VictoriaMetrics starts victoria-metrics (single node), ready at /health.
func VictoriaMetrics(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t, "victoria-metrics", "victoria-metrics")
	return start(t, "victoria-metrics", bin, "/health", func(addr, dir string) []string {
		return []string{"-httpListenAddr=" + addr, "-storageDataPath=" + filepath.Join(dir, "data"),
			"-loggerLevel=ERROR", "-retentionPeriod=100y", "-search.disableCache"}
	})
}

// InfluxDB1 starts influxd (InfluxDB 1.x: /write and /query; no
// /api/v2/write), ready at /ping, with authentication off.
func InfluxDB1(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t, "influxd", "influxdb")
	return start(t, "influxdb", bin, "/ping", func(addr, dir string) []string {
		cfg := fmt.Sprintf(`reporting-disabled = true
bind-address = %q
[meta]
  dir = %q
[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false
[http]
  bind-address = %q
  log-enabled = false
[monitor]
  store-enabled = false
[logging]
  level = "error"
`, FreeAddr(t), filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), addr)
		path := filepath.Join(dir, "influxdb.conf")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return []string{"run", "-config", path}
	})
}

// PrometheusOptions configures Prometheus.
type PrometheusOptions struct {
	// ScrapeConfigs is the YAML list under scrape_configs ("[]" when empty).
	ScrapeConfigs string
	// OutOfOrderWindow is tsdb's out_of_order_time_window, for samples
	// older than the head (history sent by remote write); "30d" when empty.
	OutOfOrderWindow string
}

// Prometheus starts prometheus with its remote-write receiver
// (POST /api/v1/write), ready at /-/ready.
func Prometheus(t testing.TB, opts PrometheusOptions) *Server {
	t.Helper()
	bin := Binary(t, "prometheus", "prometheus")
	if opts.ScrapeConfigs == "" {
		opts.ScrapeConfigs = "[]"
	}
	if opts.OutOfOrderWindow == "" {
		opts.OutOfOrderWindow = "30d"
	}
	return start(t, "prometheus", bin, "/-/ready", func(addr, dir string) []string {
		cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\nstorage:\n  tsdb:\n    out_of_order_time_window: %s\nscrape_configs: %s\n",
			opts.OutOfOrderWindow, opts.ScrapeConfigs)
		path := filepath.Join(dir, "prometheus.yml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return []string{"--config.file=" + path, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=" + addr, "--web.enable-remote-write-receiver", "--log.level=error"}
	})
}

// Get returns the body of GET path (with its query), failing t unless 2xx.
func (s *Server) Get(t testing.TB, path string) []byte {
	t.Helper()
	return s.do(t, http.MethodGet, path, nil)
}

// Post posts body (may be nil) to path, failing t unless 2xx.
func (s *Server) Post(t testing.TB, path string, body []byte) []byte {
	t.Helper()
	return s.do(t, http.MethodPost, path, body)
}

func (s *Server) do(t testing.TB, method, path string, body []byte) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	return b
}

// VMExport flushes VictoriaMetrics' buffers and returns /api/v1/export's
// JSON lines for the series selector match (e.g. `{__name__=~".+"}`).
func (s *Server) VMExport(t testing.TB, match string) []byte {
	t.Helper()
	s.Get(t, "/internal/force_flush")
	return s.Get(t, "/api/v1/export?match[]="+url.QueryEscape(match)+"&reduce_mem_usage=1")
}

// InfluxQuery runs an InfluxQL query on database db (epoch=ns) and returns
// the JSON answer.
func (s *Server) InfluxQuery(t testing.TB, db, q string) []byte {
	t.Helper()
	v := url.Values{"db": {db}, "q": {q}, "epoch": {"ns"}}
	return s.Post(t, "/query?"+v.Encode(), nil)
}

// InfluxCreateDatabase creates database db.
func (s *Server) InfluxCreateDatabase(t testing.TB, db string) {
	t.Helper()
	s.Post(t, "/query?q="+url.QueryEscape("CREATE DATABASE "+strconv.Quote(db)), nil)
}

// Logged returns what the server printed so far (bounded to 1 MiB).
func (s *Server) Logged() string {
	return strings.TrimSpace(s.logText())
}
