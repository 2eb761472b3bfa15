package emulator

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// hangGuard bounds every wait of these tests; it is never what a test
// asserts (a healthy run takes milliseconds).
const hangGuard = 30 * time.Second

// holdHooks reports the connections that start (held) and stop (released)
// being held. Call it before serving.
func holdHooks(e *Emulator) (held, released chan struct{}) {
	held, released = make(chan struct{}, 16), make(chan struct{}, 16)
	e.holds.onHold = func() { held <- struct{}{} }
	e.holds.onRelease = func() { released <- struct{}{} }
	return held, released
}

func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(hangGuard):
		t.Fatalf("hang guard: %s", what)
	}
	var zero T
	return zero
}

// closeEmu calls e.Close and waits for it to return (bounded by the hang
// guard, not timed).
func closeEmu(t *testing.T, e *Emulator) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		e.Close()
		close(done)
	}()
	waitFor(t, done, "Close did not return with held connections")
}

// rawRequest sends an HTTP/1.1 request on a new connection.
func rawRequest(t *testing.T, srv *httptest.Server, method, path, body string, hdr ...string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	req := method + " " + path + " HTTP/1.1\r\nHost: emulator\r\n"
	for _, h := range hdr {
		req += h + "\r\n"
	}
	if body != "" {
		req += "Content-Type: application/json\r\nContent-Length: " + sprint(len(body)) + "\r\n"
	}
	_, err = io.WriteString(conn, req+"\r\n"+body)
	require.NoError(t, err)
	return conn
}

// noByteYet checks that nothing arrives on conn within a short read
// deadline (the client's timeout).
func noByteYet(t *testing.T, conn net.Conn) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	n, err := conn.Read(make([]byte, 1))
	require.Zero(t, n)
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "want a client timeout, got %v", err)
}

// allBytes reads conn to its end: what the emulator ever sent.
func allBytes(t *testing.T, conn net.Conn) string {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(hangGuard)))
	b, err := io.ReadAll(conn)
	if err != nil {
		require.True(t, isConnError(err), err) // a close with unread input is a reset
	}
	return string(b)
}

func TestFaultBlackhole(t *testing.T) {
	for _, tc := range []struct {
		name         string
		cfg          Config
		method, path string
		body         string
	}{
		{"rule, no trigger", Config{Faults: []FaultRule{{Kind: FaultBlackhole}}}, "GET", tenRows, ""},
		{"rule, POST", Config{Faults: []FaultRule{{Kind: FaultBlackhole, Methods: []string{"POST"}}}}, "POST", "/stable/sites/lyon/metrics", `[{"metric_id":"a","value":1}]`},
		{"server, healthz", Config{Blackhole: true}, "GET", "/healthz", ""},
		{"server, metrics before auth", Config{Blackhole: true, Users: map[string]string{"u": "p"}}, "GET", tenRows, ""},
		{"server, control not mounted", Config{Blackhole: true}, "GET", "/_emulator/stats", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := newEmu(t, tc.cfg, winterNow)
			held, _ := holdHooks(e)
			srv := serve(t, e)
			conn := rawRequest(t, srv, tc.method, tc.path, tc.body)
			waitFor(t, held, "the request was not held")
			noByteYet(t, conn)
			// An HTTP client with a timeout gets no response either.
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			require.NoError(t, err)
			_, err = (&http.Client{Timeout: 50 * time.Millisecond}).Do(req)
			var ne net.Error
			require.True(t, errors.As(err, &ne) && ne.Timeout(), "want a client timeout, got %v", err)
			waitFor(t, held, "the second request was not held")
			// (that client left, so only the first connection is surely held)
			require.GreaterOrEqual(t, e.Stats().Held, int64(1))

			closeEmu(t, e)
			require.Empty(t, allBytes(t, conn), "a black hole never sends a byte")
			st := e.Stats()
			require.Zero(t, st.Held)
			require.Equal(t, int64(2), st.ByStatus[0])
			require.Equal(t, int64(2), st.FaultsByKind[FaultBlackhole])
			require.Equal(t, int64(2), st.Faults)
			require.Len(t, st.ByStatus, 1)
		})
	}
}

func TestBlackholeClientLeaves(t *testing.T) {
	e, _ := newEmu(t, Config{Faults: []FaultRule{{Kind: FaultBlackhole, Next: 1}}}, winterNow)
	held, released := holdHooks(e)
	srv := serve(t, e)
	conn := rawRequest(t, srv, "GET", tenRows, "")
	waitFor(t, held, "not held")
	require.NoError(t, conn.Close())
	waitFor(t, released, "not released when the client left")
	require.Zero(t, e.Stats().Held)
	res, body, err := fetch(t, freshClient(), srv.URL+tenRows)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Len(t, decodeRows(t, body), 10)
}

func TestBlackholeModeControl(t *testing.T) {
	e, _ := newEmu(t, Config{Seed: 1, Blackhole: true, Control: true}, winterNow)
	held, _ := holdHooks(e)
	srv := serve(t, e)
	conn := rawRequest(t, srv, "GET", "/healthz", "")
	waitFor(t, held, "not held")

	// The control endpoint is never black-holed; it lifts the black hole.
	require.Equal(t, `{"blackhole":true}`+"\n", do(t, e, "GET", "/_emulator/blackhole", "", ctlHdr(e)).body)
	res := do(t, e, "DELETE", "/_emulator/blackhole", "", ctlHdr(e))
	require.Equal(t, http.StatusOK, res.status, res.body)
	require.Equal(t, `{"blackhole":false}`+"\n", res.body)
	require.False(t, e.Blackhole())
	r2, body, err := fetch(t, freshClient(), srv.URL+"/healthz")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, r2.StatusCode)
	require.Equal(t, "ok", body)
	noByteYet(t, conn) // lifting it does not answer the held requests

	res = do(t, e, "PUT", "/_emulator/blackhole", `{"blackhole":true}`, ctlHdr(e))
	require.Equal(t, `{"blackhole":true}`+"\n", res.body)
	require.True(t, e.Blackhole())
	for _, bad := range []string{``, `true`, `{"blackhole":"yes"}`, `{"blackhole":true,"x":1}`} {
		res = do(t, e, "PUT", "/_emulator/blackhole", bad, ctlHdr(e))
		require.Equal(t, http.StatusBadRequest, res.status, bad)
	}
	require.Equal(t, http.StatusMethodNotAllowed, do(t, e, "POST", "/_emulator/blackhole", `{}`, ctlHdr(e)).status)
	e.SetBlackhole(false)
	require.False(t, e.Blackhole())

	closeEmu(t, e)
	require.Empty(t, allBytes(t, conn))
}

func TestFaultStall(t *testing.T) {
	e0, _ := newEmu(t, Config{Seed: 1}, winterNow)
	full := fullBody(t, e0, tenRows)
	for _, tc := range []struct {
		spec string
		want string
	}{
		{"stall", rowsPrefix(t, full, 1)},
		{"kind=stall;rows=3", rowsPrefix(t, full, 3)},
		{"kind=stall;bytes=50", full[:50]},
		{"kind=stall;bytes=1", "["},
		{"kind=stall;rows=2;bytes=100000", rowsPrefix(t, full, 2)},
		{"kind=stall;rows=100", strings.TrimSuffix(full, "]")},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			r, err := ParseFaultRule(tc.spec, winterNow, winterNow)
			require.NoError(t, err)
			e, _ := newEmu(t, Config{Seed: 1, Faults: []FaultRule{r}}, winterNow)
			held, _ := holdHooks(e)
			srv := serve(t, e)
			res, err := freshClient().Get(srv.URL + tenRows)
			require.NoError(t, err)
			defer res.Body.Close()
			require.Equal(t, http.StatusOK, res.StatusCode)
			require.Equal(t, "application/json", res.Header.Get("Content-Type"))
			require.Equal(t, int64(-1), res.ContentLength)
			prefix := make([]byte, len(tc.want))
			_, err = io.ReadFull(res.Body, prefix)
			require.NoError(t, err)
			require.Equal(t, tc.want, string(prefix))
			waitFor(t, held, "not held")
			require.Equal(t, int64(1), e.Stats().Held)

			// Nothing more is ever sent: once released by Close, the rest
			// of the body is empty and cut.
			closeEmu(t, e)
			rest, err := io.ReadAll(res.Body)
			require.ErrorIs(t, err, io.ErrUnexpectedEOF)
			require.Empty(t, string(rest))
			st := e.Stats()
			require.Equal(t, Stats{Requests: 1, MetricsGET: 1, RowsServed: st.RowsServed, Faults: 1,
				FaultsByKind: map[FaultKind]int64{FaultStall: 1}, ByStatus: map[int]int64{200: 1}}, st)
		})
	}
}

func TestFaultStallClientLeaves(t *testing.T) {
	e, _ := newEmu(t, Config{Seed: 1, Faults: []FaultRule{{Kind: FaultStall, Rows: 2}}}, winterNow)
	held, released := holdHooks(e)
	srv := serve(t, e)
	res, err := freshClient().Get(srv.URL + tenRows)
	require.NoError(t, err)
	_, err = bufio.NewReader(res.Body).ReadByte()
	require.NoError(t, err)
	waitFor(t, held, "not held")
	require.NoError(t, res.Body.Close())
	waitFor(t, released, "not released when the client left")
	require.Zero(t, e.Stats().Held)
}

func TestFaultStallPause(t *testing.T) {
	e0, _ := newEmu(t, Config{Seed: 1}, winterNow)
	full := fullBody(t, e0, tenRows)
	for _, tc := range []struct {
		spec   string
		prefix string
	}{
		{"kind=stall;rows=2;pause=1m", rowsPrefix(t, full, 2)},
		{"kind=stall;bytes=50;pause=1m", full[:50]},
		{"kind=stall;rows=2;bytes=50;pause=1m", full[:min(50, len(rowsPrefix(t, full, 2)))]},
		{"kind=stall;rows=100;pause=1m", strings.TrimSuffix(full, "]")},
	} {
		for _, resume := range []bool{true, false} {
			t.Run(tc.spec+map[bool]string{true: " resumes", false: " closed"}[resume], func(t *testing.T) {
				r, err := ParseFaultRule(tc.spec, winterNow, winterNow)
				require.NoError(t, err)
				e, _ := newEmu(t, Config{Seed: 1, Faults: []FaultRule{r}}, winterNow)
				hook := newSleepHook(e)
				srv := serve(t, e)
				res, err := freshClient().Get(srv.URL + tenRows)
				require.NoError(t, err)
				defer res.Body.Close()
				require.Equal(t, http.StatusOK, res.StatusCode)
				prefix := make([]byte, len(tc.prefix))
				_, err = io.ReadFull(res.Body, prefix)
				require.NoError(t, err)
				require.Equal(t, tc.prefix, string(prefix))
				require.Equal(t, time.Minute, waitFor(t, hook.waits, "no pause"))
				require.Equal(t, int64(1), e.Stats().Held)
				if resume {
					hook.release <- struct{}{}
					rest, err := io.ReadAll(res.Body)
					require.NoError(t, err)
					require.Equal(t, full, string(prefix)+string(rest))
					require.Len(t, hook.waits, 0, "one pause only")
					return
				}
				closeEmu(t, e)
				rest, err := io.ReadAll(res.Body)
				require.ErrorIs(t, err, io.ErrUnexpectedEOF)
				require.Empty(t, string(rest))
			})
		}
	}
}

// TestCloseReleasesHeld holds connections of every kind at once; Close
// releases them all and returns, and the server then closes normally.
func TestCloseReleasesHeld(t *testing.T) {
	e, _ := newEmu(t, Config{Seed: 1, Faults: []FaultRule{
		{Kind: FaultBlackhole, FirstRequest: 1, LastRequest: 2},
		{Kind: FaultStall, FirstRequest: 3, LastRequest: 3},
		{Kind: FaultStall, Pause: time.Hour, FirstRequest: 4, LastRequest: 4},
	}}, winterNow)
	held, _ := holdHooks(e)
	srv := httptest.NewServer(e.Handler())
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			res, err := freshClient().Get(srv.URL + tenRows)
			if err == nil {
				_, err = io.ReadAll(res.Body)
				res.Body.Close()
			}
			errs <- err
		}()
		waitFor(t, held, "not held")
	}
	require.Equal(t, int64(4), e.Stats().Held)
	closeEmu(t, e)
	for i := 0; i < 4; i++ {
		err := waitFor(t, errs, "a client still waits")
		require.Error(t, err)
		require.True(t, isConnError(err), err)
	}
	require.Zero(t, e.Stats().Held)
	done := make(chan struct{})
	go func() {
		srv.Close()
		close(done)
	}()
	waitFor(t, done, "the server did not close")

	// After Close nothing is held any more: a black hole closes at once.
	e2, _ := newEmu(t, Config{Blackhole: true}, winterNow)
	srv2 := serve(t, e2)
	e2.Close()
	conn := rawRequest(t, srv2, "GET", "/healthz", "")
	require.Empty(t, allBytes(t, conn))
}

// TestHoldWithoutHijack: without a connection to take over (a recorder,
// HTTP/2), the handler blocks until Close and then aborts.
func TestHoldWithoutHijack(t *testing.T) {
	e, _ := newEmu(t, Config{Blackhole: true}, winterNow)
	held, _ := holdHooks(e)
	rec := httptest.NewRecorder()
	panicked := make(chan any, 1)
	go func() {
		defer func() { panicked <- recover() }()
		e.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	}()
	waitFor(t, held, "not held")
	closeEmu(t, e)
	require.Equal(t, http.ErrAbortHandler, waitFor(t, panicked, "the handler did not return"))
	require.False(t, rec.Flushed)
	require.Empty(t, rec.Body.String())
	require.Equal(t, int64(1), e.Stats().ByStatus[0])
}

func TestControlAuth(t *testing.T) {
	const token = "0123456789abcdef-test"
	basic := "Basic YWxpY2U6cHc=" // alice:pw
	for _, tc := range []struct {
		name          string
		users         bool
		method, path  string
		auth, ctype   string
		body          string
		status        int
		wwwAuthBearer bool
	}{
		{"no credentials", false, "GET", "/_emulator/stats", "", "", "", 401, true},
		{"wrong token", false, "GET", "/_emulator/stats", "Bearer nope", "", "", 401, true},
		{"token", false, "GET", "/_emulator/stats", "Bearer " + token, "", "", 200, false},
		{"token, lower-case scheme", false, "GET", "/_emulator/stats", "bearer " + token, "", "", 200, false},
		{"Basic without users", false, "GET", "/_emulator/stats", basic, "", "", 401, true},
		{"Basic with users", true, "GET", "/_emulator/stats", basic, "", "", 200, false},
		{"wrong Basic", true, "GET", "/_emulator/stats", "Basic YWxpY2U6bm8=", "", "", 401, true},
		{"token with users", true, "GET", "/_emulator/faults", "Bearer " + token, "", "", 200, false},
		{"unknown route needs auth", false, "GET", "/_emulator/nothing", "", "", "", 401, true},
		{"POST JSON", false, "POST", "/_emulator/faults", "Bearer " + token, "application/json", `{"kind":"503"}`, 200, false},
		{"POST JSON charset", true, "POST", "/_emulator/faults", basic, "application/json; charset=utf-8", `"kind=503"`, 200, false},
		{"POST spec object", false, "POST", "/_emulator/faults", "Bearer " + token, "application/json", `{"spec":"kind=503;p=0.2"}`, 200, false},
		{"POST text/plain", false, "POST", "/_emulator/faults", "Bearer " + token, "text/plain", `"kind=503"`, 415, false},
		{"POST form", true, "POST", "/_emulator/faults", basic, "application/x-www-form-urlencoded", `kind=503`, 415, false},
		{"POST multipart", false, "POST", "/_emulator/jobs", "Bearer " + token, "multipart/form-data; boundary=x", `{}`, 415, false},
		{"POST no type", false, "POST", "/_emulator/monitor", "Bearer " + token, "", `{"nodes":["taurus-5"]}`, 415, false},
		{"DELETE no type", false, "DELETE", "/_emulator/faults", "Bearer " + token, "", "", 415, false},
		{"DELETE JSON", false, "DELETE", "/_emulator/faults", "Bearer " + token, "application/json", "", 204, false},
		{"PUT unauthenticated", false, "PUT", "/_emulator/blackhole", "", "application/json", `{"blackhole":true}`, 401, true},
		{"raw text spec", false, "POST", "/_emulator/faults", "Bearer " + token, "application/json", `kind=503;p=0.2`, 400, false},
		{"spec beside fields", false, "POST", "/_emulator/faults", "Bearer " + token, "application/json", `{"spec":"kind=503","p":0.5}`, 400, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Control: true, ControlToken: token}
			if tc.users {
				cfg.Users = map[string]string{"alice": "pw"}
			}
			e, _ := newEmu(t, cfg, winterNow)
			hdr := map[string]string{}
			if tc.auth != "" {
				hdr["Authorization"] = tc.auth
			}
			if tc.ctype != "" {
				hdr["Content-Type"] = tc.ctype
			}
			res := do(t, e, tc.method, tc.path, tc.body, hdr)
			require.Equal(t, tc.status, res.status, res.body)
			if tc.status >= 400 {
				require.Equal(t, "application/json", res.header.Get("Content-Type"))
				require.Contains(t, res.body, `"error":`)
			}
			if tc.wwwAuthBearer {
				require.Equal(t, []string{controlRealm}, res.header.Values("WWW-Authenticate"), "no Basic challenge")
			}
			if tc.status == 401 || tc.status == 415 {
				require.Empty(t, e.Faults(), "a refused request changes nothing")
				require.False(t, e.Blackhole())
				require.Empty(t, e.MonitoredNodes())
			}
		})
	}
	// The spec object is that rule.
	e, _ := newEmu(t, Config{Control: true, ControlToken: token}, winterNow)
	res := do(t, e, "POST", "/_emulator/faults", `[{"spec":"kind=stall;rows=2;pause=1s","seen":3}]`, ctlHdr(e))
	require.Equal(t, http.StatusOK, res.status, res.body)
	require.Equal(t, []FaultRule{{Kind: FaultStall, Rows: 2, Pause: time.Second}}, rulesOf(e.Faults()))
	// The API is not affected by the control token.
	require.Equal(t, http.StatusOK, get(t, e, tenRows).status)
}

func TestControlToken(t *testing.T) {
	a, _ := newEmu(t, Config{Control: true}, winterNow)
	b, _ := newEmu(t, Config{Control: true}, winterNow)
	require.Regexp(t, `^[0-9a-f]{32}$`, a.ControlToken())
	require.NotEqual(t, a.ControlToken(), b.ControlToken())
	off, _ := newEmu(t, Config{}, winterNow)
	require.Empty(t, off.ControlToken())
	given, _ := newEmu(t, Config{Control: true, ControlToken: "a-token-of-16-ch"}, winterNow)
	require.Equal(t, "a-token-of-16-ch", given.ControlToken())
	for _, bad := range []string{"short", "sixteen chars  x", "sixteen-chars-é!"} {
		_, err := New(Config{Control: true, ControlToken: bad})
		require.Error(t, err, bad)
	}
}
