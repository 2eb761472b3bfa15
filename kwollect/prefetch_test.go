package kwollect

import (
	"context"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alumet-go/alumet-agent/kwollect/emulator"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// flightTransport counts the GETs in flight on the client side, from the
// moment they are sent until their body is closed (a parked response is in
// flight), and the most seen at once.
type flightTransport struct {
	next          http.RoundTripper
	mu            sync.Mutex
	open, maxOpen int
}

func (f *flightTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.open++
	f.maxOpen = max(f.maxOpen, f.open)
	f.mu.Unlock()
	resp, err := f.next.RoundTrip(req)
	if err != nil {
		f.done()
		return nil, err
	}
	resp.Body = &flightBody{ReadCloser: resp.Body, f: f}
	return resp, nil
}

func (f *flightTransport) done() {
	f.mu.Lock()
	f.open--
	f.mu.Unlock()
}

func (f *flightTransport) counts() (open, maxOpen int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.open, f.maxOpen
}

type flightBody struct {
	io.ReadCloser
	f    *flightTransport
	once sync.Once
}

func (b *flightBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.f.done)
	return err
}

// refuseRequests answers Kwollect's "too much data" to the metrics GETs
// numbered first..last (1-based).
func refuseRequests(first, last int64) func(http.Handler) http.Handler {
	var n atomic.Int64
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if i := n.Add(1); i >= first && i <= last {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(500)
				_, _ = io.WriteString(w, `{"hint":null,"details":null,"code":"XX000","message":"Exception: Request timeout, too much data to process."}`)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// prefetchEnv is one monitored node (50 Hz frames) on an emulator that
// works rows / 30 000 s before each valid GET's first byte, and a client
// that counts its GETs in flight.
func prefetchEnv(t *testing.T, faults []emulator.FaultRule, mw func(http.Handler) http.Handler) (*testEnv, *flightTransport) {
	t.Helper()
	env := newTestEnv(t, emulator.Config{Monitored: []string{"taurus-7", "taurus-8"}, Lag: time.Nanosecond,
		StatementWork: true, StatementRowsPerSecond: 30_000, Faults: faults}, mw)
	ft := &flightTransport{next: http.DefaultTransport.(*http.Transport).Clone()}
	t.Cleanup(func() { ft.next.(*http.Transport).CloseIdleConnections() })
	c, err := NewClient(Options{BaseURL: env.client.BaseURL(), HTTPClient: &http.Client{Transport: ft},
		HeaderTimeout: 2 * time.Second})
	require.NoError(t, err)
	env.client = c
	return env, ft
}

// One node over a window of 8 chunks, 4 query slots: the node's later
// chunks are sent ahead while the earlier ones are read, so several
// queries are in flight at once (never more than Concurrency, parked ones
// included), and every series still arrives once and in time order,
// whatever happens to a prefetched query.
func TestSessionPrefetch(t *testing.T) {
	const concurrency = 4
	tests := []struct {
		name   string
		nodes  []string // default taurus-7
		faults []emulator.FaultRule
		mw     func(http.Handler) http.Handler
		off    bool // NoPrefetch
		// the Report's splits and retries
		splits, retries int
		// transport: net/http may resend, unseen, a GET whose reused
		// connection was reset before any response (then not a retry).
		transport bool
	}{
		{name: "plain"},
		{name: "off", off: true},
		// Two lanes of one node each take two slots; the other two are
		// theirs to prefetch.
		{name: "two lanes", nodes: []string{"taurus-7", "taurus-8"}},
		// GET 1 is the probe; 2 to 5 are sent together, 3 of them ahead
		// of their turn: at least two of GETs 3 to 5 are prefetched.
		{name: "prefetched refused", mw: refuseRequests(3, 5), splits: 3},
		{name: "prefetched 503", faults: []emulator.FaultRule{{Kind: emulator.Fault503, FirstRequest: 3, LastRequest: 5}}, retries: 3},
		{name: "prefetched reset", faults: []emulator.FaultRule{{Kind: emulator.FaultReset, FirstRequest: 3, LastRequest: 5}}, retries: 3, transport: true},
		{name: "prefetched reset mid-body", faults: []emulator.FaultRule{{Kind: emulator.FaultReset, FirstRequest: 3, LastRequest: 5, Rows: 500}}, retries: 3},
		{name: "prefetched truncated", faults: []emulator.FaultRule{{Kind: emulator.FaultTruncate, FirstRequest: 3, LastRequest: 5, Rows: 700}}, retries: 3},
		{name: "prefetched black hole", faults: []emulator.FaultRule{{Kind: emulator.FaultBlackhole, FirstRequest: 4, LastRequest: 4}}, retries: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, ft := prefetchEnv(t, tt.faults, tt.mw)
			nodes := tt.nodes
			if nodes == nil {
				nodes = []string{"taurus-7"}
			}
			var plan Plan
			for _, n := range nodes {
				plan.Targets = append(plan.Targets, Target{"lyon", n})
			}
			plan.Metrics = []string{watt}
			var progress []Progress
			s, err := env.client.NewSession(plan,
				env.opts(SessionOptions{RowBudget: 3000, Concurrency: concurrency, BatchSize: 500, NoPrefetch: tt.off,
					FastPeriods: map[string]time.Duration{watt: 20 * time.Millisecond},
					OnProgress:  func(p Progress) { progress = append(progress, p) }}))
			require.NoError(t, err)
			from := emuNow.Add(-2 * time.Hour)
			to := from.Add(8 * time.Minute)
			col := newCollector()
			rep, err := s.Fetch(context.Background(), from, to, col.sink)
			require.NoError(t, err)
			col.requireExactlyOnce(t, expectedKeys(t, env.emu, "lyon", nodes, []string{watt}, from, to))
			require.Equal(t, 1, col.maxIn, "one sink call at a time")

			st := env.emu.Flight()
			open, maxOpen := ft.counts()
			t.Logf("%d rows, %d chunks, %d queries, %d splits, %d retries; in flight: at most %d (client), %d (server)",
				rep.Rows, rep.Chunks, rep.Queries, rep.Splits, rep.Retries, maxOpen, st.MaxInFlight)
			require.Zero(t, open, "every response closed")
			require.GreaterOrEqual(t, rep.Chunks, 6+1, "the probe and at least 6 chunks")
			require.LessOrEqual(t, maxOpen, concurrency, "parked responses count")
			require.LessOrEqual(t, st.MaxInFlight, int64(concurrency))
			switch {
			case tt.off:
				require.Equal(t, 1, maxOpen, "one chunk at a time")
			case len(nodes) > 1:
				lanes := map[string]bool{}
				for _, u := range env.log.all() {
					lanes[u.Query().Get("nodes")] = true
				}
				require.Len(t, lanes, 3, "the probe of both, then a lane per node")
				require.GreaterOrEqual(t, st.MaxInFlight, int64(3), "two lanes and their prefetch")
			default:
				require.GreaterOrEqual(t, st.MaxInFlight, int64(2), "later chunks sent ahead")
			}
			require.Equal(t, tt.splits, rep.Splits)
			if tt.transport {
				require.LessOrEqual(t, rep.Retries, tt.retries)
				require.Len(t, env.log.all(), rep.Queries+tt.retries-rep.Retries, "GETs the server received")
			} else {
				require.Equal(t, tt.retries, rep.Retries)
				require.Len(t, env.log.all(), rep.Queries, "GETs the server received")
			}
			require.Equal(t, rep.Chunks+rep.Retries, rep.Queries)
			for _, sc := range rep.Series {
				require.Zero(t, sc.Unverified, sc)
				require.True(t, sc.Complete, sc)
			}

			require.NotEmpty(t, progress)
			for i, p := range progress {
				require.GreaterOrEqual(t, p.EstimatedRows, p.Rows)
				require.LessOrEqual(t, p.ChunksDone, p.ChunksTotal)
				if i > 0 {
					require.GreaterOrEqual(t, p.ChunksDone, progress[i-1].ChunksDone)
					require.GreaterOrEqual(t, p.Rows, progress[i-1].Rows)
				}
			}
			end := progress[len(progress)-1]
			require.True(t, end.Done())
			require.Equal(t, rep.Chunks, end.ChunksDone)
			require.Equal(t, rep.Rows, end.Rows)
			require.Equal(t, end.Rows, end.EstimatedRows, "nothing left to estimate")
		})
	}
}

// An earlier chunk split after the later ones were sent ahead: the halves
// come first, the prefetched chunks stay valid (their range is later).
func TestSessionPrefetchEarlierSplit(t *testing.T) {
	// GET 2 (or one of 2-5, sent together) is refused: with the chunks
	// after it already sent, its halves run before them.
	env, ft := prefetchEnv(t, nil, refuseRequests(2, 2))
	s, err := env.client.NewSession(Plan{Targets: []Target{{"lyon", "taurus-7"}}, Metrics: []string{watt}},
		env.opts(SessionOptions{RowBudget: 3000, Concurrency: 4, FastPeriods: map[string]time.Duration{watt: 20 * time.Millisecond}}))
	require.NoError(t, err)
	from := emuNow.Add(-3 * time.Hour)
	to := from.Add(7 * time.Minute)
	col := newCollector()
	rep, err := s.Fetch(context.Background(), from, to, col.sink)
	require.NoError(t, err)
	col.requireExactlyOnce(t, expectedKeys(t, env.emu, "lyon", []string{"taurus-7"}, []string{watt}, from, to))
	require.Equal(t, 1, rep.Splits)
	open, maxOpen := ft.counts()
	require.Zero(t, open)
	require.LessOrEqual(t, maxOpen, 4)
	// A second Fetch of the same window delivers nothing again.
	rep, err = s.Fetch(context.Background(), from, to, col.sink)
	require.NoError(t, err)
	require.Zero(t, rep.Rows)
	col.requireExactlyOnce(t, expectedKeys(t, env.emu, "lyon", []string{"taurus-7"}, []string{watt}, from, to))
}

// Cancelled, or stopped by the sink, while responses are parked: Fetch
// returns the error, every response is closed, no goroutine is left
// behind, and a later Fetch delivers the rest once, in order.
func TestSessionPrefetchCancel(t *testing.T) {
	errSink := errors.New("sink full")
	for _, tc := range []struct {
		name string
		sink bool // the sink fails instead of a cancel
	}{{name: "cancel"}, {name: "sink error", sink: true}} {
		t.Run(tc.name, func(t *testing.T) {
			env, ft := prefetchEnv(t, nil, nil)
			before := runtime.NumGoroutine()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stop atomic.Bool
			openAtStop := -1
			s, err := env.client.NewSession(Plan{Targets: []Target{{"lyon", "taurus-7"}}, Metrics: []string{watt}},
				env.opts(SessionOptions{RowBudget: 3000, Concurrency: 4, FastPeriods: map[string]time.Duration{watt: 20 * time.Millisecond},
					OnProgress: func(p Progress) {
						if p.ChunksDone == 2 { // the probe and the first chunk
							openAtStop, _ = ft.counts()
							if tc.sink {
								stop.Store(true)
							} else {
								cancel()
							}
						}
					}}))
			require.NoError(t, err)
			from := emuNow.Add(-2 * time.Hour)
			to := from.Add(8 * time.Minute)
			col := newCollector()
			sink := func(rows []Row) error {
				if stop.Load() {
					return errSink
				}
				return col.sink(rows)
			}
			_, err = s.Fetch(ctx, from, to, sink)
			if tc.sink {
				require.ErrorIs(t, err, errSink)
			} else {
				require.ErrorIs(t, err, context.Canceled)
			}
			open, _ := ft.counts()
			require.Zero(t, open, "every parked response closed when Fetch returns")
			require.Positive(t, openAtStop, "responses were parked when it stopped")
			// No goroutine left: the transport's connections are closed,
			// and the count settles back.
			ft.next.(*http.Transport).CloseIdleConnections()
			if !assertSettles(t, before) {
				buf := make([]byte, 1<<20)
				t.Logf("%s", buf[:runtime.Stack(buf, true)])
			}

			stop.Store(false)
			_, err = s.Fetch(context.Background(), from, to, col.sink)
			require.NoError(t, err)
			col.requireExactlyOnce(t, expectedKeys(t, env.emu, "lyon", []string{"taurus-7"}, []string{watt}, from, to))
		})
	}
}

// A parked response's stall deadline starts at its first Read, not when
// its headers came; a response read at once has it from the headers.
func TestSessionPrefetchParkedStall(t *testing.T) {
	for _, lazy := range []bool{false, true} {
		ctx, cancel := context.WithCancelCause(context.Background())
		b := newWatchedBody(io.NopCloser(strings.NewReader("[]")), ctx, cancel, time.Hour, lazy)
		require.Equal(t, !lazy, b.t != nil, "lazy %v: armed before any Read", lazy)
		_, err := b.Read(make([]byte, 1))
		require.NoError(t, err)
		require.NotNil(t, b.t, "armed by the first Read")
		require.NoError(t, b.Close())
	}
}

// assertSettles waits for the goroutine count to come back to before
// (polled here: assert.Eventually runs its condition in a goroutine).
func assertSettles(t *testing.T, before int) bool {
	t.Helper()
	n := 0
	for range 2000 {
		if n = runtime.NumGoroutine(); n <= before {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return assert.LessOrEqual(t, n, before, "goroutines left behind")
}
