// Package emutest starts the Kwollect emulator for tests, on 127.0.0.1
// with a free port, and stops it when the test ends: in process (Start,
// or New for an emulator that is not served, to compute Expected rows),
// or as the kwollect-emulator binary (StartBinary), as the end-to-end
// tests run it.
package emutest

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alumet-go/alumet-agent/internal/testkit"
	"github.com/alumet-go/alumet-agent/kwollect/emulator"
)

// New returns the emulator of cfg, closed when the test ends. It serves
// nothing: a test asks it for the rows a query returns (Expected,
// ExpectedQuery), or serves its Handler itself.
func New(t testing.TB, cfg emulator.Config) *emulator.Emulator {
	t.Helper()
	emu, err := emulator.New(cfg)
	if err != nil {
		t.Fatalf("emutest: emulator.New: %v", err)
	}
	t.Cleanup(emu.Close)
	return emu
}

// Server is an emulator served over HTTP on loopback.
type Server struct {
	Emulator *emulator.Emulator
	// URL is the API base a client is given, http://127.0.0.1:PORT/stable.
	URL string
	// Base is the server's root, http://127.0.0.1:PORT (the control
	// endpoint is Base+"/_emulator/").
	Base string
}

// Option changes how Start serves the emulator.
type Option func(*options)

type options struct {
	wrap func(http.Handler) http.Handler
}

// Wrap serves wrap(the emulator's handler) instead of the handler: a test
// that rewrites, delays or counts requests. A nil wrap changes nothing.
func Wrap(wrap func(http.Handler) http.Handler) Option {
	return func(o *options) { o.wrap = wrap }
}

// Start serves the emulator of cfg on 127.0.0.1 with a free port until the
// test ends; then the emulator is closed first (its held connections are
// released) and the server after it.
func Start(t testing.TB, cfg emulator.Config, opts ...Option) *Server {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	emu := New(t, cfg)
	var h http.Handler = emu.Handler()
	if o.wrap != nil {
		h = o.wrap(h)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("emutest: listen on loopback: %v", err)
	}
	srv := httptest.NewUnstartedServer(h)
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	// Cleanups run last first: this one before New's emu.Close, which then
	// does nothing more.
	t.Cleanup(func() {
		emu.Close()
		srv.Close()
	})
	return &Server{Emulator: emu, URL: srv.URL + "/stable", Base: srv.URL}
}

// Process is a kwollect-emulator binary started by StartBinary.
type Process struct {
	Cmd *exec.Cmd
	// URL is the API base, http://127.0.0.1:PORT/stable.
	URL string
	// Base is http://127.0.0.1:PORT.
	Base string
	// Token is the control endpoint's bearer token (with --control; "" otherwise).
	Token string
	// Line is the start line the emulator printed.
	Line string
	// Stderr is the emulator's standard error (its log), written as it runs.
	Stderr *testkit.LockedBuffer
}

// StartTimeout bounds the wait for the emulator's start line (a binary on a
// loaded machine, under the race detector, can be slow to start).
var StartTimeout = 60 * time.Second

// StartBinary runs the kwollect-emulator binary at bin with
// --listen 127.0.0.1:0 and args (a later --listen wins), waits for its
// start line "kwollect-emulator listening on http://HOST:PORT[ control-token=T]",
// and stops it with SIGTERM when the test ends (SIGKILL if it is still
// running 10 s later).
func StartBinary(t testing.TB, bin string, args ...string) *Process {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--listen", "127.0.0.1:0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("emutest: %v", err)
	}
	p := &Process{Cmd: cmd, Stderr: &testkit.LockedBuffer{}}
	cmd.Stderr = p.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("emutest: starting %s: %v", bin, err)
	}
	exited := make(chan struct{})
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		for s.Scan() {
		}
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	select {
	case l, ok := <-line:
		if !ok {
			<-exited
			t.Fatalf("emutest: the emulator exited without a start line (%v); stderr: %s", cmd.ProcessState, p.Stderr)
		}
		p.Line = l
	case <-time.After(StartTimeout):
		t.Fatalf("emutest: the emulator did not start within %v; stderr: %s", StartTimeout, p.Stderr)
	}
	rest, ok := strings.CutPrefix(p.Line, "kwollect-emulator listening on ")
	fields := strings.Fields(rest)
	if !ok || len(fields) == 0 {
		t.Fatalf("emutest: unexpected first line %q; stderr: %s", p.Line, p.Stderr)
	}
	p.Base = fields[0]
	for _, f := range fields[1:] {
		if v, ok := strings.CutPrefix(f, "control-token="); ok {
			p.Token = v
		}
	}
	p.URL = p.Base + "/stable"
	return p
}
