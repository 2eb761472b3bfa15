package kwollect

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A bound for waits in these tests: generous, so that a slow machine does
// not fail them; a hang (the bug) still does.
const hangBound = 30 * time.Second

// misbehave serves what next serves, but in one of these ways:
//
//	"ok": as is
//	"blackhole": accepts and never answers
//	"stall": headers and the first stallAt bytes of the body, then nothing
//	"trickle": headers, then one whitespace byte every 20ms, forever
type misbehave struct {
	next    http.Handler
	mode    atomic.Value // string
	stallAt int
	hits    atomic.Int32
	flushed chan struct{} // closed when a stall has written its bytes
	once    sync.Once
	done    chan struct{}
}

func newMisbehave(t *testing.T, next http.Handler, mode string) (*misbehave, string) {
	m := &misbehave{next: next, flushed: make(chan struct{}), done: make(chan struct{})}
	m.mode.Store(mode)
	srv := httptest.NewServer(m)
	t.Cleanup(func() {
		close(m.done)
		srv.CloseClientConnections()
		srv.Close()
	})
	return m, srv.URL + "/stable"
}

func (m *misbehave) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.hits.Add(1)
	wait := func() {
		select {
		case <-r.Context().Done():
		case <-m.done:
		}
	}
	switch m.mode.Load().(string) {
	case "ok":
		m.next.ServeHTTP(w, r)
	case "blackhole":
		wait()
	case "stall":
		rec := httptest.NewRecorder()
		m.next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body[:min(m.stallAt, len(body))])
		http.NewResponseController(w).Flush()
		m.once.Do(func() { close(m.flushed) })
		wait()
	case "trickle":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("["))
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			http.NewResponseController(w).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-m.done:
				return
			case <-tick.C:
				if _, err := w.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}
}

func TestClientTimeouts(t *testing.T) {
	from := time.Date(2025, 3, 21, 10, 0, 0, 0, time.UTC)
	api := NewMemAPI(1, 1, from, time.Minute)
	q := Query{Site: "lyon", Nodes: api.Nodes, Metrics: []string{"wattmetre_power_watt"}, Start: from, End: from.Add(time.Minute)}
	const short = 300 * time.Millisecond
	tests := []struct {
		name     string
		mode     string
		stallAt  int
		client   *http.Client // nil: the default one
		wantWait string
		wantRows int
	}{
		{"black hole: no headers", "blackhole", 0, nil, WaitHeaders, 0},
		{"black hole, caller's http.Client", "blackhole", 0, &http.Client{}, WaitHeaders, 0},
		{"headers, then no body", "stall", 0, nil, WaitBody, 0},
		{"stall mid-body", "stall", 400, nil, WaitBody, 2},
		{"stall mid-body, caller's http.Client", "stall", 400, &http.Client{}, WaitBody, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, base := newMisbehave(t, api, tt.mode)
			m.stallAt = tt.stallAt
			c, err := NewClient(Options{BaseURL: base, HTTPClient: tt.client, HeaderTimeout: short, StallTimeout: short})
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), hangBound)
			defer cancel()
			n, err := c.Stream(ctx, q, func(*Row) error { return nil })
			require.NoError(t, ctx.Err(), "the client's own deadline must fire first")
			require.Equal(t, tt.wantRows, n)
			var to *TimeoutError
			require.ErrorAs(t, err, &to)
			require.Equal(t, tt.wantWait, to.Wait)
			require.Equal(t, short, to.After)
			require.True(t, IsRetryable(err))
			require.NotErrorIs(t, err, context.DeadlineExceeded)
			require.NotErrorIs(t, err, context.Canceled)
			if tt.wantWait == WaitHeaders {
				require.ErrorAs(t, err, new(*NetworkError))
				require.Contains(t, err.Error(), "no response headers within 300ms (HeaderTimeout)")
			} else {
				require.ErrorAs(t, err, new(*TruncatedError))
				require.Contains(t, err.Error(), "stalled after")
				require.Contains(t, err.Error(), "no data for 300ms in the response body (StallTimeout)")
			}
		})
	}
}

// A trickling body never stalls: the caller's context bounds it.
func TestClientTrickleBoundedByContext(t *testing.T) {
	m, base := newMisbehave(t, http.NotFoundHandler(), "trickle")
	_ = m
	c, err := NewClient(Options{BaseURL: base, StallTimeout: 200 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	q := Query{Site: "lyon", Nodes: []string{"n-1"}, Metrics: []string{"m"}}
	_, err = c.Stream(ctx, q, func(*Row) error { return nil })
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.False(t, errors.As(err, new(*TimeoutError)))
}

func TestClientCancelMidBody(t *testing.T) {
	from := time.Date(2025, 3, 21, 10, 0, 0, 0, time.UTC)
	api := NewMemAPI(1, 1, from, time.Minute)
	m, base := newMisbehave(t, api, "stall")
	m.stallAt = 400
	c, err := NewClient(Options{BaseURL: base, StallTimeout: hangBound, HeaderTimeout: hangBound})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q := Query{Site: "lyon", Nodes: api.Nodes, Metrics: []string{"wattmetre_power_watt"}, Start: from, End: from.Add(time.Minute)}
	seen := 0
	n, err := c.Stream(ctx, q, func(*Row) error {
		if seen++; seen == 2 {
			cancel() // the user's signal while the server stalls
		}
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, IsRetryable(err))
	require.Equal(t, 2, n)
}

func TestDefaultTimeouts(t *testing.T) {
	c, err := NewClient(Options{})
	require.NoError(t, err)
	require.Equal(t, DefaultHeaderTimeout, c.header)
	require.Equal(t, DefaultStallTimeout, c.stall)
	tr := c.hc.Transport.(*http.Transport)
	require.Equal(t, DefaultConnectTimeout, tr.TLSHandshakeTimeout)
	require.NotNil(t, tr.DialContext)
	c, err = NewClient(Options{HeaderTimeout: -1, StallTimeout: -1})
	require.NoError(t, err)
	require.Zero(t, c.header)
	require.Zero(t, c.stall)
	// Detected well within the plugin's default fetch_timeout (2 min),
	// with room for a retry.
	require.Less(t, 2*DefaultHeaderTimeout, 2*time.Minute)
}

// sessionFor builds a session of api's nodes on base.
func sessionFor(t *testing.T, base string, api *MemAPI, co Options, so SessionOptions) *Session {
	t.Helper()
	co.BaseURL = base
	c, err := NewClient(co)
	require.NoError(t, err)
	s, err := c.NewSession(Plan{Targets: api.Targets(), Metrics: []string{"wattmetre_power_watt"}}, so)
	require.NoError(t, err)
	return s
}

// The call's deadline bounds every attempt: against a server that never
// answers, Fetch (ctx deadline) and Complete (its deadline) end soon after
// it, and the error says the deadline passed, not a server failure.
func TestSessionDeadlineBoundsAttempts(t *testing.T) {
	from := time.Date(2025, 3, 21, 10, 0, 0, 0, time.UTC)
	api := NewMemAPI(2, 1, from, time.Minute)
	to := from.Add(2 * time.Minute) // the tail is missing: Complete keeps asking
	const budget = time.Second
	tests := []struct {
		name string
		mode string
	}{
		{"black hole", "blackhole"},
		{"stall mid-body", "stall"},
		{"trickle", "trickle"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/Fetch with a ctx deadline", func(t *testing.T) {
			t.Parallel() // each waits about budget, on its own server
			m, base := newMisbehave(t, api, tt.mode)
			m.stallAt = 100 // within the first row
			// Default header and stall timeouts (30s, 20s) and query
			// timeout (5 min): only the deadline can end the call in time.
			s := sessionFor(t, base, api, Options{}, SessionOptions{})
			ctx, cancel := context.WithTimeout(context.Background(), budget)
			defer cancel()
			c := newCollector()
			begin := time.Now()
			rep, err := s.Fetch(ctx, from, to, c.sink)
			took := time.Since(begin)
			t.Logf("Fetch returned %v after the start (deadline %v)", took, budget)
			require.Less(t, took, hangBound)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.NotEmpty(t, rep.FailedChunks)
			require.Equal(t, rep.Rows, c.count())
		})
		t.Run(tt.name+"/Complete deadline", func(t *testing.T) {
			t.Parallel() // each waits about budget, on its own server
			m, base := newMisbehave(t, api, "ok")
			m.stallAt = 100
			s := sessionFor(t, base, api, Options{}, SessionOptions{})
			s.tailGrace = 200 * time.Millisecond // TailGrace, shortened
			c := newCollector()
			_, err := s.Fetch(context.Background(), from, to, c.sink)
			require.NoError(t, err)
			m.mode.Store(tt.mode)
			begin := time.Now()
			rep, err := s.Complete(context.Background(), to, begin.Add(budget), c.sink)
			took := time.Since(begin)
			t.Logf("Complete returned %v after the start (deadline %v, grace %v)", took, budget, s.tailGrace)
			require.Less(t, took, hangBound)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.NotErrorIs(t, err, context.Canceled)
			require.ErrorAs(t, err, new(*PartialError))
			require.False(t, rep.Complete())
			require.Positive(t, m.hits.Load())
		})
		t.Run(tt.name+"/Complete with a ctx deadline", func(t *testing.T) {
			t.Parallel() // each waits about budget, on its own server
			m, base := newMisbehave(t, api, "ok")
			m.stallAt = 100
			s := sessionFor(t, base, api, Options{}, SessionOptions{})
			c := newCollector()
			_, err := s.Fetch(context.Background(), from, to, c.sink)
			require.NoError(t, err)
			m.mode.Store(tt.mode)
			ctx, cancel := context.WithTimeout(context.Background(), budget)
			defer cancel()
			begin := time.Now()
			rep, err := s.Complete(ctx, to, begin.Add(time.Hour), c.sink)
			took := time.Since(begin)
			t.Logf("Complete returned %v after the start (ctx deadline %v)", took, budget)
			require.Less(t, took, hangBound)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.False(t, rep.Complete())
		})
	}
}

// A cancelled context ends the call at once; the rows handed to the sink
// are counted, the coverage verifies only what was delivered, and a later
// Fetch delivers the rest exactly once.
func TestSessionCancelMidBody(t *testing.T) {
	from := time.Date(2025, 3, 21, 10, 0, 0, 0, time.UTC)
	api := NewMemAPI(1, 1, from, time.Minute)
	to := api.To
	m, base := newMisbehave(t, api, "stall")
	m.stallAt = 2000 // a few rows, then nothing
	s := sessionFor(t, base, api, Options{StallTimeout: hangBound}, SessionOptions{BatchSize: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := newCollector()
	rep, err := s.Fetch(ctx, from, to, func(rows []Row) error {
		cancel() // the user's signal, while the server stalls
		return c.sink(rows)
	})
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, context.DeadlineExceeded)
	first := c.count()
	require.Positive(t, first)
	require.Equal(t, first, rep.Rows)
	cov := s.Coverage(from, to)
	require.Len(t, cov, 1)
	require.Equal(t, first, cov[0].Rows)
	require.False(t, cov[0].Complete)

	m.mode.Store("ok")
	rep, err = s.Fetch(context.Background(), from, to, c.sink)
	require.NoError(t, err)
	require.Equal(t, api.Rows(), c.count(), "every row once")
	for k, n := range c.keys {
		require.Equal(t, 1, n, "row %s delivered %d times", k, n)
	}
	require.Equal(t, api.Rows()-first, rep.Rows)
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rows
}
