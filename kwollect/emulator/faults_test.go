package emulator

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const tooMuchData = `{"hint":null,"details":null,"code":"XX000","message":"Exception: Request timeout, too much data to process."}`

// tenRows is a query with exactly 10 rows (taurus-7 1 Hz means) at winterNow.
var tenRows = "/stable/sites/lyon/metrics?" + vals("nodes", "taurus-7", "metrics", wpw,
	"start_time", epoch(winterNow.Add(-60*time.Second)), "end_time", epoch(winterNow.Add(-51*time.Second))).Encode()

// nRows is a query with exactly n rows (n seconds of 1 Hz means).
func nRows(n int) string {
	a := winterNow.Add(-time.Hour)
	return "/stable/sites/lyon/metrics?" + vals("nodes", "taurus-7", "metrics", wpw,
		"start_time", epoch(a), "end_time", epoch(a.Add(time.Duration(n-1)*time.Second))).Encode()
}

// serve starts a real HTTP server on loopback for e.
func serve(t *testing.T, e *Emulator) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(e.Handler())
	t.Cleanup(srv.Close)
	return srv
}

// freshClient opens a new connection per request (no transparent retry of
// a reset keep-alive connection) and bounds every request as a hang guard.
func freshClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
}

// fetch GETs url and reads the whole body.
func fetch(t *testing.T, c *http.Client, url string) (*http.Response, string, error) {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, string(b), err
}

func statuses(t *testing.T, e *Emulator, target string, n int) []int {
	t.Helper()
	out := make([]int, n)
	for i := range out {
		out[i] = get(t, e, target).status
	}
	return out
}

func TestRowLimit(t *testing.T) {
	for _, limit := range []int{10, 9} {
		e, _ := newEmu(t, Config{Seed: 1, RowLimit: limit}, winterNow)
		res := get(t, e, tenRows)
		require.Equal(t, "application/json", res.header.Get("Content-Type"))
		if limit == 10 {
			require.Equal(t, http.StatusOK, res.status)
			require.Len(t, decodeRows(t, res.body), 10)
		} else {
			require.Equal(t, http.StatusInternalServerError, res.status)
			require.Equal(t, tooMuchData, res.body)
		}
		// Expected ignores the limit.
		want, err := e.Expected("lyon", []string{"taurus-7"}, []string{wpw}, winterNow.Add(-60*time.Second), winterNow.Add(-51*time.Second))
		require.NoError(t, err)
		require.Len(t, want, 10)
		st := e.Stats()
		if limit == 9 {
			require.Equal(t, int64(1), st.RowLimitErrors)
			require.Equal(t, map[int]int64{500: 1}, st.ByStatus)
			require.Zero(t, st.RowsServed)
		} else {
			require.Zero(t, st.RowLimitErrors)
			require.Equal(t, int64(10), st.RowsServed)
		}
	}

	// A huge query fails without being generated in full; the wait before
	// the error is StatementDelay; POSTs are not limited.
	e, _ := newEmu(t, Config{Seed: 1, RowLimit: 1000, StatementDelay: 5 * time.Minute, Monitored: []string{"gemini-1"}}, winterNow)
	var mu sync.Mutex
	var slept []time.Duration
	e.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		slept = append(slept, d)
		return nil
	}
	a := winterNow.Add(-24 * time.Hour)
	res := get(t, e, "/stable/sites/lyon/metrics?"+vals("nodes", "gemini-1", "start_time", epoch(a), "end_time", epoch(winterNow)).Encode())
	require.Equal(t, http.StatusInternalServerError, res.status)
	require.Equal(t, tooMuchData, res.body)
	require.Equal(t, []time.Duration{5 * time.Minute}, slept)
	post := do(t, e, "POST", "/stable/sites/lyon/metrics", `[`+strings.Repeat(`{"metric_id":"m","value":1},`, 1500)+`{"metric_id":"m"}]`, nil)
	require.Equal(t, http.StatusOK, post.status)
	require.Equal(t, int64(1501), e.Stats().RowsPosted)
	require.Equal(t, []time.Duration{5 * time.Minute}, slept, "no wait below the limit")
}

func TestFaultStatusKinds(t *testing.T) {
	e, _ := newEmu(t, Config{Seed: 1}, winterNow)
	srv := serve(t, e)
	c := freshClient()
	for _, tc := range []struct {
		rule       FaultRule
		status     int
		title      string
		retryAfter string
	}{
		{FaultRule{Kind: Fault500}, 500, "500 Internal Server Error", ""},
		{FaultRule{Kind: Fault502}, 502, "502 Bad Gateway", ""},
		{FaultRule{Kind: Fault503, RetryAfter: "7"}, 503, "503 Service Unavailable", "7"},
		{FaultRule{Kind: Fault504}, 504, "504 Gateway Timeout", ""},
		{FaultRule{Kind: Fault429}, 429, "429 Too Many Requests", "1"},
		{FaultRule{Kind: Fault429, RetryAfter: "Wed, 21 Oct 2015 07:28:00 GMT"}, 429, "429 Too Many Requests", "Wed, 21 Oct 2015 07:28:00 GMT"},
		{FaultRule{Kind: Fault429, RetryAfter: "none"}, 429, "429 Too Many Requests", ""},
	} {
		t.Run(tc.rule.String(), func(t *testing.T) {
			tc.rule.Next = 1
			require.NoError(t, e.SetFaults([]FaultRule{tc.rule}))
			res, body, err := fetch(t, c, srv.URL+tenRows)
			require.NoError(t, err)
			require.Equal(t, tc.status, res.StatusCode)
			require.Equal(t, "text/html", res.Header.Get("Content-Type"))
			require.Contains(t, body, "<h1>"+tc.title+"</h1>")
			require.True(t, strings.HasPrefix(body, "<html>"), body)
			require.Error(t, json.Unmarshal([]byte(body), new(any)), "not JSON")
			require.Equal(t, tc.retryAfter, res.Header.Get("Retry-After"))
			_, has := res.Header["Retry-After"]
			require.Equal(t, tc.retryAfter != "", has)
			// next=1: the following request is served.
			res, body, err = fetch(t, c, srv.URL+tenRows)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, res.StatusCode)
			require.Len(t, decodeRows(t, body), 10)
		})
	}
	// /healthz, reference documents and non-metrics routes are never faulted.
	require.NoError(t, e.SetFaults([]FaultRule{{Kind: Fault503}}))
	for _, p := range []string{"/healthz", "/stable/sites/lyon", "/stable/sites/lyon/clusters/taurus", "/stable/sites/lyon/pdus/wattmetre1"} {
		res, _, err := fetch(t, c, srv.URL+p)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.StatusCode, p)
	}
}

// fullBody returns the unfaulted body of target.
func fullBody(t *testing.T, e *Emulator, target string) string {
	t.Helper()
	res := get(t, e, target)
	require.Equal(t, http.StatusOK, res.status)
	return res.body
}

// rowsPrefix is the body up to the end of row n (no closing bracket).
func rowsPrefix(t *testing.T, full string, n int) string {
	t.Helper()
	parts := strings.Split(strings.TrimSuffix(full, "]"), rowSeparator)
	require.GreaterOrEqual(t, len(parts), n)
	return strings.Join(parts[:n], rowSeparator)
}

func TestFaultTruncate(t *testing.T) {
	e, _ := newEmu(t, Config{Seed: 1}, winterNow)
	srv := serve(t, e)
	c := freshClient()
	full := fullBody(t, e, tenRows)
	for _, tc := range []struct {
		spec string
		want string
	}{
		{"truncate", rowsPrefix(t, full, 1)},
		{"kind=truncate;rows=3", rowsPrefix(t, full, 3)},
		{"kind=truncate;rows=100", strings.TrimSuffix(full, "]")},
		{"kind=truncate;bytes=50", full[:50]},
		{"kind=truncate;bytes=1", "["},
		{"kind=truncate;rows=2;bytes=100000", rowsPrefix(t, full, 2)},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			r, err := ParseFaultRule(tc.spec, winterNow, winterNow)
			require.NoError(t, err)
			require.NoError(t, e.SetFaults([]FaultRule{r}))
			res, err := c.Get(srv.URL + tenRows)
			require.NoError(t, err)
			defer res.Body.Close()
			require.Equal(t, http.StatusOK, res.StatusCode)
			require.Equal(t, "application/json", res.Header.Get("Content-Type"))
			require.Empty(t, res.Header.Get("Content-Length"))
			require.Equal(t, int64(-1), res.ContentLength)
			body, err := io.ReadAll(res.Body)
			require.ErrorIs(t, err, io.ErrUnexpectedEOF)
			require.Equal(t, tc.want, string(body))
			var rows []jsonRow
			err = json.Unmarshal(body, &rows)
			require.Error(t, err)
		})
	}
	// A streaming decoder sees the unexpected EOF too.
	require.NoError(t, e.SetFaults([]FaultRule{{Kind: FaultTruncate, Rows: 4}}))
	res, err := c.Get(srv.URL + tenRows)
	require.NoError(t, err)
	var rows []jsonRow
	err = json.NewDecoder(res.Body).Decode(&rows)
	res.Body.Close()
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.Equal(t, int64(7), e.Stats().FaultsByKind[FaultTruncate])
}

// isConnError tells whether err is what a client sees of a reset or a
// closed connection.
func isConnError(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "EOF")
}

func TestFaultReset(t *testing.T) {
	e, _ := newEmu(t, Config{Seed: 1}, winterNow)
	srv := serve(t, e)
	c := freshClient()
	full := fullBody(t, e, tenRows)

	// Before any byte: no response at all.
	require.NoError(t, e.SetFaults([]FaultRule{{Kind: FaultReset, Next: 1}}))
	_, err := c.Get(srv.URL + tenRows)
	require.Error(t, err)
	require.True(t, isConnError(err), err)
	st := e.Stats()
	require.Equal(t, int64(1), st.ByStatus[0])
	require.Equal(t, int64(1), st.FaultsByKind[FaultReset])
	res, body, err := fetch(t, c, srv.URL+tenRows)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, full, body)

	// After some bytes: a 200 and part of the body, then the reset (the
	// client may also see the reset before the headers).
	for _, r := range []FaultRule{{Kind: FaultReset, Bytes: 100}, {Kind: FaultReset, Rows: 2}} {
		require.NoError(t, e.SetFaults([]FaultRule{r}))
		res, body, err := fetch(t, c, srv.URL+tenRows)
		require.Error(t, err, r.String())
		require.True(t, isConnError(err), err)
		t.Logf("%s: response %v, %d body bytes, error %v", r.String(), res != nil, len(body), err)
		if res != nil {
			require.Equal(t, http.StatusOK, res.StatusCode)
			require.True(t, strings.HasPrefix(full, body), body)
			require.Less(t, len(body), len(full))
		}
	}
}

// sleepHook replaces Emulator.sleep: each wait is reported on waits and
// lasts until the test sends on release (or the request is cancelled).
type sleepHook struct {
	waits   chan time.Duration
	release chan struct{}
}

func newSleepHook(e *Emulator) *sleepHook {
	h := &sleepHook{waits: make(chan time.Duration, 16), release: make(chan struct{})}
	e.sleep = func(ctx context.Context, d time.Duration) error {
		h.waits <- d
		select {
		case <-h.release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return h
}

func TestFaultSlowFirstByte(t *testing.T) {
	e, _ := newEmu(t, Config{Seed: 1}, winterNow)
	hook := newSleepHook(e)
	srv := serve(t, e)
	c := freshClient()
	full := fullBody(t, e, tenRows)
	for _, tc := range []struct {
		rule FaultRule
		wait time.Duration
	}{
		{FaultRule{Kind: FaultSlowFirstByte}, time.Second},
		{FaultRule{Kind: FaultSlowFirstByte, Delay: 90 * time.Second}, 90 * time.Second},
	} {
		require.NoError(t, e.SetFaults([]FaultRule{tc.rule}))
		type result struct {
			body string
			err  error
		}
		done := make(chan result, 1)
		go func() {
			res, err := c.Get(srv.URL + tenRows)
			if err != nil {
				done <- result{err: err}
				return
			}
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			done <- result{string(b), err}
		}()
		require.Equal(t, tc.wait, <-hook.waits)
		select {
		case <-done:
			t.Fatal("response before the delay ended")
		default:
		}
		hook.release <- struct{}{}
		r := <-done
		require.NoError(t, r.err)
		require.Equal(t, full, r.body)
	}
	// delay applies to any kind: a 504 after the delay.
	require.NoError(t, e.SetFaults([]FaultRule{{Kind: Fault504, Delay: time.Minute}}))
	waited := make(chan time.Duration, 1)
	go func() { d := <-hook.waits; hook.release <- struct{}{}; waited <- d }()
	res, _, err := fetch(t, c, srv.URL+tenRows)
	require.NoError(t, err)
	require.Equal(t, http.StatusGatewayTimeout, res.StatusCode)
	require.Equal(t, time.Minute, <-waited)
}

func TestFaultSlowFirstByteRealClock(t *testing.T) {
	e, _ := newEmu(t, Config{Seed: 1}, winterNow)
	srv := httptest.NewServer(e.Handler())
	full := fullBody(t, e, tenRows)
	// A tiny real delay: the response is complete.
	require.NoError(t, e.SetFaults([]FaultRule{{Kind: FaultSlowFirstByte, Delay: time.Millisecond}}))
	res, body, err := fetch(t, freshClient(), srv.URL+tenRows)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, full, body)
	// An hour-long delay: the client gives up, the handler stops waiting
	// (srv.Close waits for the handlers).
	require.NoError(t, e.SetFaults([]FaultRule{{Kind: FaultSlowFirstByte, Delay: time.Hour}}))
	impatient := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 100 * time.Millisecond}
	_, err = impatient.Get(srv.URL + tenRows)
	require.Error(t, err)
	srv.Close()
	require.Equal(t, int64(1), e.Stats().ByStatus[0], "counted as no response")
}

func TestFaultSlowBody(t *testing.T) {
	e, _ := newEmu(t, Config{Seed: 1}, winterNow)
	hook := newSleepHook(e)
	srv := serve(t, e)
	target := nRows(250)
	full := fullBody(t, e, target)
	require.Len(t, decodeRows(t, full), 250)
	require.NoError(t, e.SetFaults([]FaultRule{{Kind: FaultSlowBody, Every: 100, Pause: 5 * time.Second}}))
	res, err := freshClient().Get(srv.URL + target)
	require.NoError(t, err, "headers arrive with the first flush")
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	dec := json.NewDecoder(res.Body)
	tok, err := dec.Token()
	require.NoError(t, err)
	require.Equal(t, json.Delim('['), tok)
	var got []jsonRow
	readRows := func(n int) {
		for i := 0; i < n; i++ {
			var r jsonRow
			require.NoError(t, dec.Decode(&r))
			got = append(got, r)
		}
	}
	// The server is paused after 100 rows, which were flushed.
	readRows(100)
	require.Equal(t, 5*time.Second, <-hook.waits)
	hook.release <- struct{}{}
	readRows(100)
	require.Equal(t, 5*time.Second, <-hook.waits)
	hook.release <- struct{}{}
	readRows(50)
	tok, err = dec.Token()
	require.NoError(t, err)
	require.Equal(t, json.Delim(']'), tok)
	require.False(t, dec.More())
	require.Equal(t, decodeRows(t, full), got)
	select {
	case d := <-hook.waits:
		t.Fatalf("unexpected pause %v", d)
	default:
	}
}

func TestFaultProbabilityReproducible(t *testing.T) {
	rules := []FaultRule{{Kind: Fault503, P: 0.25}, {Kind: Fault502, P: 0.25}}
	run := func(seed int64) ([]int, *Emulator) {
		e, _ := newEmu(t, Config{Seed: 1, FaultSeed: seed, Faults: rules}, winterNow)
		return statuses(t, e, tenRows, 60), e
	}
	s1, e1 := run(42)
	s2, _ := run(42)
	require.Equal(t, s1, s2, "same seed, same faults")
	count := map[int]int64{}
	for _, s := range s1 {
		count[s]++
	}
	require.Len(t, count, 3, "200, 502 and 503 all occur: %v", s1)
	st := e1.Stats()
	require.Equal(t, count[503], st.FaultsByKind[Fault503])
	require.Equal(t, count[502], st.FaultsByKind[Fault502])
	require.Equal(t, count[502]+count[503], st.Faults)
	require.Equal(t, map[int]int64{200: count[200], 502: count[502], 503: count[503]}, st.ByStatus)
	fs := e1.Faults()
	require.Equal(t, []int64{60, 60}, []int64{fs[0].Seen, fs[1].Seen})
	require.Equal(t, []int64{count[503], count[502]}, []int64{fs[0].Injected, fs[1].Injected})
	s3, _ := run(43)
	require.NotEqual(t, s1, s3, "another seed, other faults")
	// SetFaults restarts the random sequence.
	require.NoError(t, e1.SetFaults(rules))
	require.Equal(t, s1, statuses(t, e1, tenRows, 60))
	// p=1 always fires.
	require.NoError(t, e1.SetFaults([]FaultRule{{Kind: Fault500, P: 1}}))
	require.Equal(t, []int{500, 500, 500}, statuses(t, e1, tenRows, 3))
}

func TestFaultNextRequestsAndMethods(t *testing.T) {
	e, _ := newEmu(t, Config{Seed: 1}, winterNow)
	require.NoError(t, e.SetFaults([]FaultRule{{Kind: Fault503, Next: 2}, {Kind: Fault502, FirstRequest: 2, LastRequest: 3}}))
	// Request 2 is the second rule's #2 but the first rule wins it.
	require.Equal(t, []int{503, 503, 502, 200, 200}, statuses(t, e, tenRows, 5))
	fs := e.Faults()
	require.Equal(t, int64(2), fs[0].Injected)
	require.Equal(t, int64(1), fs[1].Injected)
	require.Equal(t, int64(5), fs[1].Seen)

	// Request numbers count from the rule's installation.
	require.NoError(t, e.AddFaults(FaultRule{Kind: Fault500, FirstRequest: 2}))
	require.Equal(t, []int{200, 500, 500}, statuses(t, e, tenRows, 3))

	// POSTs are not faulted unless the rule says so; a status fault stores
	// nothing. HEAD counts as GET.
	require.NoError(t, e.SetFaults([]FaultRule{{Kind: Fault503}}))
	post := `{"metric_id":"app","device_id":"taurus-7","timestamp":` + epoch(winterNow.Add(-55*time.Second)) + `,"value":1}`
	require.Equal(t, http.StatusOK, do(t, e, "POST", "/stable/sites/lyon/metrics", post, nil).status)
	require.Equal(t, http.StatusServiceUnavailable, do(t, e, "HEAD", tenRows, "", nil).status)
	require.NoError(t, e.SetFaults([]FaultRule{{Kind: Fault503, Methods: []string{"post"}}}))
	require.Equal(t, "POST", e.Faults()[0].Methods[0])
	require.Equal(t, http.StatusServiceUnavailable, do(t, e, "POST", "/stable/sites/lyon/metrics", strings.Replace(post, `"value":1`, `"value":2`, 1), nil).status)
	res := get(t, e, "/stable/sites/lyon/metrics?"+vals("nodes", "taurus-7", "metrics", "app",
		"start_time", epoch(winterNow.Add(-60*time.Second)), "end_time", epoch(winterNow.Add(-51*time.Second))).Encode())
	require.Equal(t, http.StatusOK, res.status)
	rows := decodeRows(t, res.body)
	require.Len(t, rows, 1, "the faulted POST stored nothing")
	require.Equal(t, "1", string(rows[0].Value))
	// Body faults on POST shape the answer of stored rows.
	require.NoError(t, e.SetFaults([]FaultRule{{Kind: FaultTruncate, Methods: []string{"GET", "POST"}, Next: 1}}))
	srv := serve(t, e)
	pres, err := freshClient().Post(srv.URL+"/stable/sites/lyon/metrics", "application/json", strings.NewReader(`[{"metric_id":"a"},{"metric_id":"b"}]`))
	require.NoError(t, err)
	_, err = io.ReadAll(pres.Body)
	pres.Body.Close()
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	st := e.Stats()
	require.Equal(t, int64(3), st.RowsPosted)
	require.Equal(t, int64(3), st.MetricsPOST)
}

func TestFaultTimeWindow(t *testing.T) {
	e, clk := newEmu(t, Config{Seed: 1}, winterNow)
	r, err := ParseFaultRule("kind=504;from=10s;to=40s", winterNow, winterNow)
	require.NoError(t, err)
	require.True(t, r.From.Equal(winterNow.Add(10*time.Second)))
	require.NoError(t, e.SetFaults([]FaultRule{r}))
	for _, tc := range []struct {
		at     time.Duration
		status int
	}{
		{5 * time.Second, 200},
		{10 * time.Second, 504},
		{40*time.Second - time.Microsecond, 504},
		{40 * time.Second, 200},
		{time.Hour, 200},
	} {
		clk.Set(winterNow.Add(tc.at))
		require.Equal(t, tc.status, get(t, e, tenRows).status, tc.at)
	}
	// "now+D" is relative to the time the rule is installed; from the
	// control endpoint "10s" stays relative to the emulator start.
	e2, clk2 := newEmu(t, Config{Seed: 1, Control: true}, winterNow)
	clk2.Set(winterNow.Add(time.Hour))
	res := do(t, e2, "POST", "/_emulator/faults", `["kind=503;from=now+1m;to=now+2m", {"kind":"502","from":"10s","to":"20s"}]`, ctlHdr(e2))
	require.Equal(t, http.StatusOK, res.status, res.body)
	fs := e2.Faults()
	require.True(t, fs[0].From.Equal(winterNow.Add(61*time.Minute)), fs[0].From)
	require.True(t, fs[1].To.Equal(winterNow.Add(20*time.Second)), fs[1].To)
	require.Equal(t, 200, get(t, e2, tenRows).status)
	clk2.Add(90 * time.Second)
	require.Equal(t, 503, get(t, e2, tenRows).status)
}

func TestParseFaultRule(t *testing.T) {
	start := winterNow
	now := winterNow.Add(time.Hour)
	r, err := ParseFaultRule("kind=503; p=0.2 ;next=3;requests=2-5;from=10s;to=2025-01-15T11:00:00Z;methods=get,post;delay=1.5s;retry_after=5", start, now)
	require.NoError(t, err)
	want := FaultRule{Kind: Fault503, P: 0.2, Next: 3, FirstRequest: 2, LastRequest: 5, From: start.Add(10 * time.Second),
		To: time.Date(2025, 1, 15, 11, 0, 0, 0, time.UTC), Methods: []string{"GET", "POST"}, Delay: 1500 * time.Millisecond, RetryAfter: "5"}
	require.True(t, want.From.Equal(r.From) && want.To.Equal(r.To))
	r.From, r.To = want.From, want.To
	require.Equal(t, want, r)
	spec := r.String()
	require.Equal(t, "kind=503;p=0.2;next=3;requests=2-5;from=2025-01-15T09:00:10Z;to=2025-01-15T11:00:00Z;methods=GET,POST;delay=1.5s;retry-after=5", spec)
	back, err := ParseFaultRule(spec, time.Time{}, time.Time{})
	require.NoError(t, err)
	require.Equal(t, spec, back.String())

	for spec, want := range map[string]FaultRule{
		"503":                              {Kind: Fault503},
		"reset;bytes=10":                   {Kind: FaultReset, Bytes: 10},
		"kind=slow-body;every=5;pause=1ms": {Kind: FaultSlowBody, Every: 5, Pause: time.Millisecond},
		"kind=truncate;rows=2":             {Kind: FaultTruncate, Rows: 2},
		"kind=429;requests=4":              {Kind: Fault429, FirstRequest: 4, LastRequest: 4},
		"kind=429;requests=4-":             {Kind: Fault429, FirstRequest: 4},
		"kind=429;requests=-4":             {Kind: Fault429, LastRequest: 4},
		"kind=SLOW-FIRST-BYTE;delay=0s":    {Kind: FaultSlowFirstByte},
		"blackhole":                        {Kind: FaultBlackhole},
		"kind=blackhole;methods=GET,POST":  {Kind: FaultBlackhole, Methods: []string{"GET", "POST"}},
		"stall":                            {Kind: FaultStall},
		"kind=stall;rows=2;pause=30s":      {Kind: FaultStall, Rows: 2, Pause: 30 * time.Second},
		"kind=stall;bytes=7":               {Kind: FaultStall, Bytes: 7},
	} {
		r, err := ParseFaultRule(spec, start, now)
		require.NoError(t, err, spec)
		require.Equal(t, want, r, spec)
		again, err := ParseFaultRule(r.String(), start, now)
		require.NoError(t, err)
		require.Equal(t, r, again, spec)
	}
	for _, bad := range []string{"", "kind=404", "p=0.5", "kind=503;p=0", "kind=503;p=1.5", "kind=503;next=0", "kind=503;requests=5-3",
		"kind=503;requests=0", "kind=503;rows=3", "kind=truncate;retry-after=1", "kind=reset;every=2", "kind=503;bogus=1",
		"kind=503;next=1;next=2", "kind=503;from=40s;to=10s", "kind=503;methods=PUT", "kind=503;delay=-1s", "kind=503;delay=soon",
		"kind=503;retry-after=soon", "kind=503;from=infinity", "kind=503;x", "kind=truncate;rows=0",
		"kind=blackhole;rows=1", "kind=blackhole;pause=1s", "kind=stall;every=2", "kind=503;pause=1s", "kind=stall;retry-after=1"} {
		_, err := ParseFaultRule(bad, start, now)
		require.Error(t, err, bad)
	}
	// Go API validation.
	require.Error(t, (&FaultRule{Kind: "nope"}).Validate())
	e, _ := newEmu(t, Config{}, winterNow)
	require.Error(t, e.SetFaults([]FaultRule{{Kind: Fault503, P: 2}}))
	_, err = New(Config{Faults: []FaultRule{{Kind: Fault503, Rows: 1}}})
	require.Error(t, err)
}

func TestParseTimeSpec(t *testing.T) {
	start, now := winterNow, winterNow.Add(time.Hour)
	for in, want := range map[string]time.Time{
		"10s":                  start.Add(10 * time.Second),
		"-10m":                 start.Add(-10 * time.Minute),
		"+1h":                  start.Add(time.Hour),
		"0s":                   start,
		"now":                  now,
		"now+30s":              now.Add(30 * time.Second),
		"now-1m":               now.Add(-time.Minute),
		"1736931600":           time.Unix(1736931600, 0),
		"0":                    time.Unix(0, 0),
		"2025-01-15T10:30:00":  winterNow.Add(30 * time.Minute), // naive = Paris
		"2025-01-15T10:30:00Z": time.Date(2025, 1, 15, 10, 30, 0, 0, time.UTC),
	} {
		got, err := ParseTimeSpec(in, start, now)
		require.NoError(t, err, in)
		require.True(t, want.Equal(got), "%s: want %s, got %s", in, want, got)
	}
	for _, bad := range []string{"soon", "now+soon", "infinity", ""} {
		_, err := ParseTimeSpec(bad, start, now)
		require.Error(t, err, bad)
	}
}

func TestControlEndpoint(t *testing.T) {
	// Not mounted without Control.
	off, _ := newEmu(t, Config{}, winterNow)
	require.Equal(t, http.StatusNotFound, get(t, off, "/_emulator/faults").status)

	e, _ := newEmu(t, Config{Seed: 1, Control: true}, winterNow)
	srv := serve(t, e)
	c := freshClient()
	send := func(method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		for k, v := range ctlHdr(e) {
			req.Header.Set(k, v)
		}
		res, err := c.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		if res.StatusCode == http.StatusOK || res.StatusCode == http.StatusBadRequest {
			require.Equal(t, "application/json", res.Header.Get("Content-Type"), string(b))
		}
		return res.StatusCode, string(b)
	}
	status, body := send("GET", "/_emulator/faults", "")
	require.Equal(t, 200, status)
	require.Equal(t, "[]\n", body)

	// POST appends (object, text spec or array); the listing has the rules,
	// their spec and counters.
	status, body = send("POST", "/_emulator/faults", `{"kind":"503","next":2,"retry_after":"4","methods":["GET","POST"]}`)
	require.Equal(t, 200, status, body)
	status, body = send("POST", "/_emulator/faults", `["kind=truncate;rows=3;from=10s", {"kind":"slow-body","every":"50","pause":"20ms","p":0.5}]`)
	require.Equal(t, 200, status, body)
	var listing []map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &listing))
	require.Len(t, listing, 3)
	require.Equal(t, map[string]any{"kind": "503", "next": 2.0, "retry_after": "4", "methods": []any{"GET", "POST"},
		"spec": "kind=503;next=2;methods=GET,POST;retry-after=4", "seen": 0.0, "injected": 0.0}, listing[0])
	require.Equal(t, map[string]any{"kind": "truncate", "rows": 3.0, "from": "2025-01-15T09:00:10Z",
		"spec": "kind=truncate;from=2025-01-15T09:00:10Z;rows=3", "seen": 0.0, "injected": 0.0}, listing[1])
	require.Equal(t, "kind=slow-body;p=0.5;every=50;pause=20ms", listing[2]["spec"])
	require.Equal(t, []FaultRule{
		{Kind: Fault503, Next: 2, RetryAfter: "4", Methods: []string{"GET", "POST"}},
		{Kind: FaultTruncate, Rows: 3, From: winterNow.Add(10 * time.Second)},
		{Kind: FaultSlowBody, P: 0.5, Every: 50, Pause: 20 * time.Millisecond},
	}, rulesOf(e.Faults()))

	// The rule takes effect; counters show.
	res, _, err := fetch(t, c, srv.URL+tenRows)
	require.NoError(t, err)
	require.Equal(t, 503, res.StatusCode)
	require.Equal(t, "4", res.Header.Get("Retry-After"))
	status, body = send("GET", "/_emulator/faults", "")
	require.Equal(t, 200, status)
	require.NoError(t, json.Unmarshal([]byte(body), &listing))
	require.Equal(t, 1.0, listing[0]["injected"])
	require.Equal(t, 1.0, listing[1]["seen"])

	// The listing round-trips through PUT (replace; counters restart).
	before := e.Faults()
	status, body2 := send("PUT", "/_emulator/faults", body)
	require.Equal(t, 200, status, body2)
	require.Equal(t, rulesOf(before), rulesOf(e.Faults()))
	require.Zero(t, e.Faults()[0].Injected)

	// Errors.
	for _, bad := range []string{`{"kind":"404"}`, `nope`, `{"kind":"503","p":true}`, `{"kind":"503","bogus":1}`, `[1]`, `{"kind":"503"} {}`} {
		status, body = send("POST", "/_emulator/faults", bad)
		require.Equal(t, 400, status, bad)
		require.Contains(t, body, `"error":`)
	}
	require.Len(t, e.Faults(), 3, "a bad body changes nothing")
	status, _ = send("PATCH", "/_emulator/faults", "")
	require.Equal(t, 405, status)
	status, _ = send("DELETE", "/_emulator/faults", "")
	require.Equal(t, 204, status)
	require.Empty(t, e.Faults())
	res, _, err = fetch(t, c, srv.URL+tenRows)
	require.NoError(t, err)
	require.Equal(t, 200, res.StatusCode)

	// Stats, not counting the control requests.
	status, body = send("GET", "/_emulator/stats", "")
	require.Equal(t, 200, status)
	var st Stats
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	require.Equal(t, e.Stats(), st)
	require.Equal(t, Stats{Requests: 2, MetricsGET: 2, RowsServed: 10, Faults: 1,
		FaultsByKind: map[FaultKind]int64{Fault503: 1}, ByStatus: map[int]int64{200: 1, 503: 1}}, st)
	require.Contains(t, body, `"by_status":{"200":1,"503":1}`)
	status, _ = send("GET", "/_emulator/nothing", "")
	require.Equal(t, 404, status)
}

func rulesOf(fs []FaultStatus) []FaultRule {
	out := make([]FaultRule, len(fs))
	for i, f := range fs {
		out[i] = f.FaultRule
	}
	return out
}

func TestControlJobsAndMonitor(t *testing.T) {
	now := winterNow
	e, _ := newEmu(t, Config{Seed: 1, Control: true, Jobs: []Job{{ID: 1, Nodes: []string{"taurus-1"}, Start: now.Add(-time.Hour)}}}, now)
	oneSecond := func(node string) int {
		a := now.Add(-100 * time.Second)
		return len(rowsOf(t, e, "lyon", vals("nodes", node, "metrics", wpw, "start_time", epoch(a), "end_time", epoch(a.Add(time.Second-time.Microsecond)))))
	}
	require.Equal(t, 1, oneSecond("orion-2"), "1 Hz before the job")

	res := do(t, e, "POST", "/_emulator/jobs", `{"id":7,"site":"lyon","nodes":["orion-2.lyon.grid5000.fr"],"start":"-10m","types":"monitor"}`, ctlHdr(e))
	require.Equal(t, http.StatusCreated, res.status, res.body)
	require.Equal(t, `{"id":7,"site":"lyon","nodes":["orion-2.lyon.grid5000.fr"],"start":"2025-01-15T09:50:00+01:00","stop":null,"types":["monitor"]}`+"\n", res.body)
	require.Equal(t, 50, oneSecond("orion-2"), "50 Hz frames in the monitor job")
	jobRows := rowsOf(t, e, "lyon", vals("job_id", "7", "metrics", wpw, "start_time", epoch(now.Add(-100*time.Second)), "end_time", epoch(now.Add(-99*time.Second-time.Microsecond))))
	require.Len(t, jobRows, 50)
	want, err := e.ExpectedQuery("lyon", vals("job_id", "7", "metrics", wpw, "start_time", epoch(now.Add(-100*time.Second)), "end_time", epoch(now.Add(-99*time.Second-time.Microsecond))))
	require.NoError(t, err)
	sameRows(t, jobRows, want)

	res = do(t, e, "POST", "/_emulator/jobs", `{"id":7,"nodes":"orion-3"}`, ctlHdr(e))
	require.Equal(t, http.StatusConflict, res.status, res.body)
	require.ErrorIs(t, e.AddJob(Job{ID: 1, Site: "nancy", Nodes: []string{"gros-1"}}), ErrJobExists, "job 1 is known everywhere")
	for _, bad := range []string{`{"id":8,"nodes":["nope-1"]}`, `{"nodes":["orion-3"]}`, `{"id":8}`, `{"id":8,"nodes":"orion-3","start":"soon"}`,
		`{"id":8,"nodes":"orion-3","types":"monitor=("}`, `{"id":8,"nodes":"orion-3","site":"atlantis"}`, `{"id":8,"nodes":"orion-3","color":"red"}`, `[]`} {
		res = do(t, e, "POST", "/_emulator/jobs", bad, ctlHdr(e))
		require.Equal(t, http.StatusBadRequest, res.status, bad)
	}
	res = do(t, e, "GET", "/_emulator/jobs", "", ctlHdr(e))
	require.Equal(t, http.StatusOK, res.status)
	var jobs []jobJSON
	require.NoError(t, json.Unmarshal([]byte(res.body), &jobs))
	require.Len(t, jobs, 2)
	require.Equal(t, int64(7), jobs[1].ID)

	// Go API: a finished job with start and stop.
	require.NoError(t, e.AddJob(Job{ID: 9, Site: "lyon", Nodes: []string{"nova-1"}, Start: now.Add(-200 * time.Second), Stop: now.Add(-50 * time.Second), Types: []string{"monitor=wattmetre"}}))
	require.Equal(t, 50, oneSecond("nova-1"))

	// Monitor.
	require.Equal(t, 1, oneSecond("taurus-5"))
	res = do(t, e, "POST", "/_emulator/monitor", `{"nodes":["taurus-5"]}`, ctlHdr(e))
	require.Equal(t, http.StatusOK, res.status, res.body)
	require.Equal(t, `{"nodes":["taurus-5"]}`+"\n", res.body)
	require.Equal(t, 50, oneSecond("taurus-5"))
	res = do(t, e, "POST", "/_emulator/monitor", `["taurus-6","taurus-5"]`, ctlHdr(e))
	require.Equal(t, `{"nodes":["taurus-5","taurus-6"]}`+"\n", res.body)
	require.Equal(t, []string{"taurus-5", "taurus-6"}, e.MonitoredNodes())
	for _, bad := range []string{`{"nodes":["nope-1"]}`, `{"nodes":[]}`, `{"node":"x"}`, `3`} {
		res = do(t, e, "POST", "/_emulator/monitor", bad, ctlHdr(e))
		require.Equal(t, http.StatusBadRequest, res.status, bad)
	}
	require.Equal(t, `{"nodes":["taurus-5","taurus-6"]}`+"\n", do(t, e, "GET", "/_emulator/monitor", "", ctlHdr(e)).body)
}

func TestControlNeedsAuthWithUsers(t *testing.T) {
	e, _ := newEmu(t, Config{Control: true, Users: map[string]string{"alice": "pw"}}, winterNow)
	require.Equal(t, http.StatusUnauthorized, get(t, e, "/_emulator/stats").status)
	res := do(t, e, "GET", "/_emulator/stats", "", map[string]string{"Authorization": "Basic YWxpY2U6cHc="})
	require.Equal(t, http.StatusOK, res.status)
	// Control requests are never counted, authorised or not.
	var st Stats
	require.NoError(t, json.Unmarshal([]byte(res.body), &st))
	require.Equal(t, int64(0), st.Requests)
}

func TestStatsCounters(t *testing.T) {
	e, _ := newEmu(t, Config{Seed: 1, RowLimit: 20, Users: map[string]string{"u": "p"},
		Faults: []FaultRule{{Kind: Fault502, FirstRequest: 2, LastRequest: 2}}}, winterNow)
	auth := map[string]string{"Authorization": "Basic dTpw"}
	require.Equal(t, 200, do(t, e, "GET", "/healthz", "", nil).status)
	require.Equal(t, 401, get(t, e, tenRows).status)
	require.Equal(t, 200, do(t, e, "GET", tenRows, "", auth).status)
	require.Equal(t, 502, do(t, e, "GET", tenRows, "", auth).status)
	require.Equal(t, 500, do(t, e, "GET", nRows(21), "", auth).status)
	require.Equal(t, 200, do(t, e, "GET", nRows(20), "", auth).status)
	require.Equal(t, 200, do(t, e, "POST", "/stable/sites/lyon/metrics", `[{"metric_id":"a"},{"metric_id":"b"}]`, auth).status)
	require.Equal(t, 404, do(t, e, "GET", "/stable/sites/atlantis/metrics", "", auth).status)
	require.Equal(t, Stats{Requests: 8, MetricsGET: 4, MetricsPOST: 1, RowsServed: 30, RowsPosted: 2, RowLimitErrors: 1, Faults: 1,
		FaultsByKind: map[FaultKind]int64{Fault502: 1}, ByStatus: map[int]int64{200: 4, 401: 1, 404: 1, 500: 1, 502: 1}}, e.Stats())
}

// TestConcurrentControl exercises the runtime changes under the race
// detector while requests are served.
func TestConcurrentControl(t *testing.T) {
	e, _ := newEmu(t, Config{Seed: 1, Control: true, FaultSeed: 3}, winterNow)
	srv := serve(t, e)
	c := &http.Client{Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 15; i++ {
				res, err := c.Get(srv.URL + "/stable/sites/lyon/metrics?nodes=orion-" + strconv.Itoa(1+i%4) + "&start_time=" + epoch(winterNow.Add(-10*time.Second)))
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		}()
	}
	for i := 0; i < 15; i++ {
		_ = e.SetFaults([]FaultRule{{Kind: Fault503, P: 0.3}, {Kind: FaultSlowBody, Every: 3, Pause: time.Microsecond}})
		_ = e.AddJob(Job{ID: int64(100 + i), Nodes: []string{"orion-" + strconv.Itoa(1+i%4)}, Start: winterNow.Add(-time.Minute), Types: []string{"monitor"}})
		_ = e.Monitor("nova-" + strconv.Itoa(1+i%8))
		_ = e.Stats()
		_ = e.Faults()
		_, _ = e.Expected("lyon", []string{"orion-1"}, []string{wpw}, winterNow.Add(-time.Minute), winterNow)
	}
	wg.Wait()
	st := e.Stats()
	require.Equal(t, int64(60), st.MetricsGET)
	var sum int64
	for _, n := range st.ByStatus {
		sum += n
	}
	require.Equal(t, int64(60), sum)
}
