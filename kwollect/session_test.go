package kwollect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/racetest"
	"github.com/alumet-go/alumet-agent/kwollect/emulator"
)

const pdu = "pdu_outlet_power_watt"

// emuNow is the emulated "now" of the session tests (a winter date, so
// Paris is UTC+1).
var emuNow = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

// rowKey identifies a row with its value, in one text form for our rows
// and the emulator's.
func rowKey(dev, metric string, orig []string, labels map[string]string, ts time.Time, value string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|%s|", dev, metric, strings.Join(orig, ","))
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s;", k, labels[k])
	}
	fmt.Fprintf(&b, "|%d|%s", ts.UnixMicro(), value)
	return b.String()
}

func valueText(v float64, null bool) string {
	switch {
	case null:
		return "null"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func keyOfRow(r *Row) string {
	labels := map[string]string{}
	for _, l := range r.Labels {
		labels[l.Key] = l.Value
	}
	return rowKey(r.DeviceID, r.MetricID, r.DeviceOrig, labels, r.Timestamp, valueText(r.Value, r.Null))
}

func keyOfEmu(t *testing.T, r emulator.Row) string {
	labels := map[string]string{}
	var orig []string
	for k, v := range r.Labels {
		if k == "_device_orig" {
			orig = v.([]string)
			continue
		}
		if s, ok := v.(string); ok {
			labels[k] = s
			continue
		}
		b, err := json.Marshal(v)
		require.NoError(t, err)
		labels[k] = string(b)
	}
	return rowKey(r.DeviceID, r.MetricID, orig, labels, r.Timestamp, valueText(r.Value, r.Null))
}

// expectedKeys returns the emulator's rows for a query, as keys.
func expectedKeys(t *testing.T, e *emulator.Emulator, site string, nodes, metrics []string, from, to time.Time) []string {
	t.Helper()
	rows, err := e.Expected(site, nodes, metrics, from, to)
	require.NoError(t, err)
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = keyOfEmu(t, r)
	}
	return out
}

// collector is a sink that checks batch sizes, duplicates and the order
// of each series.
type collector struct {
	mu       sync.Mutex
	keys     map[string]int
	last     map[string]time.Time // newest row per series
	disorder []string             // rows older than their series' previous one
	rows     int
	maxBatch int
	batches  int
	inSink   int // concurrent sink calls seen
	maxIn    int
	// Row.Series: one nonzero number per series, a series per number.
	idOf      map[string]uint64
	seriesOf  map[uint64]string
	badSeries []string
}

func newCollector() *collector {
	return &collector{keys: map[string]int{}, last: map[string]time.Time{}, idOf: map[string]uint64{}, seriesOf: map[uint64]string{}}
}

func (c *collector) sink(rows []Row) error {
	c.mu.Lock()
	c.inSink++
	c.maxIn = max(c.maxIn, c.inSink)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.inSink--
		c.mu.Unlock()
	}()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batches++
	c.maxBatch = max(c.maxBatch, len(rows))
	for i := range rows {
		r := &rows[i]
		c.keys[keyOfRow(r)]++
		c.rows++
		ser := string(r.appendSeriesKey(nil))
		if id, ok := c.idOf[ser]; r.Series == 0 || ok && id != r.Series {
			c.badSeries = append(c.badSeries, fmt.Sprintf("%s: Series %d, before %d", ser, r.Series, id))
		}
		if other, ok := c.seriesOf[r.Series]; ok && other != ser {
			c.badSeries = append(c.badSeries, fmt.Sprintf("Series %d names %s and %s", r.Series, other, ser))
		}
		c.idOf[ser], c.seriesOf[r.Series] = r.Series, ser
		if last, ok := c.last[ser]; ok && r.Timestamp.Before(last) {
			c.disorder = append(c.disorder, fmt.Sprintf("%s at %s after %s", ser, r.Timestamp.Format(time.RFC3339Nano), last.Format(time.RFC3339Nano)))
		} else {
			c.last[ser] = r.Timestamp
		}
	}
	return nil
}

// requireExactlyOnce checks that the delivered rows are exactly want, each
// delivered once.
func (c *collector) requireExactlyOnce(t *testing.T, want []string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var dups []string
	for k, n := range c.keys {
		if n > 1 {
			dups = append(dups, fmt.Sprintf("%dx %s", n, k))
		}
	}
	sort.Strings(dups)
	require.Empty(t, dups, "rows delivered more than once")
	require.Empty(t, c.disorder, "rows delivered out of time order in their series")
	require.Empty(t, c.badSeries, "Row.Series does not name one series")
	got := make([]string, 0, len(c.keys))
	for k := range c.keys {
		got = append(got, k)
	}
	w := slices.Clone(want)
	slices.Sort(w)
	slices.Sort(got)
	require.Equal(t, len(w), len(got), "row count")
	require.Empty(t, cmp.Diff(w, got), "delivered rows differ from the emulator's")
}

// queryLog records the metrics GETs a server received.
type queryLog struct {
	mu   sync.Mutex
	reqs []*url.URL
}

func (l *queryLog) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/metrics") {
			l.mu.Lock()
			u := *r.URL
			l.reqs = append(l.reqs, &u)
			l.mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}

func (l *queryLog) all() []*url.URL {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.reqs)
}

func (l *queryLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = nil
}

func siteOf(u *url.URL) string {
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	return parts[2] // stable/sites/<site>/metrics
}

func epochOf(t *testing.T, u *url.URL, key string) time.Time {
	t.Helper()
	tm, err := parseEpoch(u.Query().Get(key))
	require.NoError(t, err)
	return tm
}

type testEnv struct {
	conns  atomic.Int64 // TCP connections accepted by the server
	emu    *emulator.Emulator
	clock  *fakeClock
	log    *queryLog
	client *Client
	waits  []time.Duration // retry waits
	mu     sync.Mutex
}

// newTestEnv starts an emulator behind optional middleware, with a fake
// clock shared by the emulator and the session.
func newTestEnv(t testing.TB, cfg emulator.Config, mw func(http.Handler) http.Handler) *testEnv {
	env := &testEnv{clock: &fakeClock{now: emuNow}, log: &queryLog{}}
	if cfg.Now == nil {
		cfg.Now = env.clock.Now
	}
	e, err := emulator.New(cfg)
	require.NoError(t, err)
	t.Cleanup(e.Close)
	env.emu = e
	h := e.Handler()
	if mw != nil {
		h = mw(h)
	}
	srv := httptest.NewUnstartedServer(env.log.wrap(h))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			env.conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	env.client, err = NewClient(Options{BaseURL: srv.URL + "/stable"})
	require.NoError(t, err)
	return env
}

// opts injects the fake clock, a deterministic jitter and an instant sleep
// that records the waits (without advancing the clock).
func (env *testEnv) opts(o SessionOptions) SessionOptions {
	o.Clock = env.clock.Now
	o.Rand = func() float64 { return 0.5 }
	o.Sleep = func(ctx context.Context, d time.Duration) error {
		env.mu.Lock()
		env.waits = append(env.waits, d)
		env.mu.Unlock()
		return ctx.Err()
	}
	return o
}

func TestSpanSet(t *testing.T) {
	tests := []struct {
		name string
		add  []span
		want spanSet
	}{
		{"single", []span{{10, 20}}, spanSet{{10, 20}}},
		{"disjoint sorted", []span{{30, 40}, {10, 20}}, spanSet{{10, 20}, {30, 40}}},
		{"adjacent merge", []span{{10, 20}, {21, 30}}, spanSet{{10, 30}}},
		{"overlap merge", []span{{10, 20}, {15, 25}}, spanSet{{10, 25}}},
		{"bridge", []span{{10, 20}, {30, 40}, {50, 60}, {19, 51}}, spanSet{{10, 60}}},
		{"gap of one", []span{{10, 20}, {22, 30}}, spanSet{{10, 20}, {22, 30}}},
		{"empty ignored", []span{{10, 9}}, nil},
		{"inside", []span{{10, 40}, {20, 30}}, spanSet{{10, 40}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s spanSet
			for _, sp := range tt.add {
				s.add(sp.lo, sp.hi)
			}
			require.Equal(t, tt.want, s)
		})
	}
	s := spanSet{{10, 20}, {30, 40}}
	require.True(t, s.contains(10))
	require.True(t, s.contains(20))
	require.False(t, s.contains(21))
	require.False(t, s.contains(9))
	require.True(t, s.contains(35))
	require.Equal(t, []span{{0, 9}, {21, 29}, {41, 50}}, s.missing(0, 50))
	require.Equal(t, []span{{21, 29}}, s.missing(15, 35))
	require.Nil(t, s.missing(12, 18))
	require.Equal(t, []span{{15, 20}, {30, 35}}, s.clip(15, 35))
	require.Equal(t, int64(21), s.firstGap(10))
	require.Equal(t, int64(5), s.firstGap(5))
	require.Equal(t, int64(25), s.firstGap(25))
	require.Equal(t, int64(41), s.firstGap(40))
}

func TestRetryPolicy(t *testing.T) {
	d := SessionOptions{}.withDefaults().Retry
	require.Equal(t, DefaultRetryPolicy(), d)
	tests := []struct {
		n    int
		r    float64
		want time.Duration
	}{
		{1, 0.5, 250 * time.Millisecond},
		{2, 0.5, 500 * time.Millisecond},
		{3, 0.5, time.Second},
		{6, 0.5, 8 * time.Second},
		{7, 0.5, 10 * time.Second}, // capped
		{20, 0.5, 10 * time.Second},
		{1, 0, 125 * time.Millisecond}, // -50 %
		{3, 0.75, 1250 * time.Millisecond},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, d.wait(tt.n, tt.r), "retry %d r=%v", tt.n, tt.r)
	}
	// A policy with some fields set keeps Jitter 0 and MaxAttempts 0.
	p := RetryPolicy{Base: time.Second}.withDefaults()
	require.Equal(t, RetryPolicy{Base: time.Second, Max: 10 * time.Second, Multiplier: 2}, p)
	require.Equal(t, 4*time.Second, p.wait(3, 0.99))
}

func TestNewSessionValidation(t *testing.T) {
	c, err := NewClient(Options{BaseURL: "http://127.0.0.1:1"})
	require.NoError(t, err)
	tests := []struct {
		name string
		plan Plan
		msg  string
	}{
		{"no metrics", Plan{Targets: []Target{{"lyon", "taurus-7"}}}, "needs Metrics"},
		{"no target", Plan{Metrics: []string{watt}}, "no target and no job"},
		{"no site", Plan{Targets: []Target{{"", "taurus-7"}}, Metrics: []string{watt}}, "has no site"},
		{"two sites", Plan{Targets: []Target{{"lyon", "taurus-7"}, {"nancy", "taurus-7.lyon.grid5000.fr"}}, Metrics: []string{watt}}, "listed on two sites"},
		{"job without site", Plan{JobID: 42, Metrics: []string{watt}}, "needs JobSite"},
		{"site without job", Plan{JobSite: "lyon", Targets: []Target{{"lyon", "a"}}, Metrics: []string{watt}}, "without JobID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.NewSession(tt.plan, SessionOptions{})
			require.ErrorContains(t, err, tt.msg)
		})
	}
	s, err := c.NewSession(Plan{Targets: []Target{{" lyon ", "taurus-7.lyon.grid5000.fr"}, {"lyon", "taurus-7"}}, Metrics: []string{watt, " ", watt}}, SessionOptions{})
	require.NoError(t, err)
	require.Len(t, s.Coverage(emuNow, emuNow), 1, "one pair after normalisation")
	require.True(t, s.Watermark().IsZero())
	_, err = s.Complete(context.Background(), emuNow, emuNow, func([]Row) error { return nil })
	require.ErrorContains(t, err, "needs a Fetch first")
	_, err = s.Fetch(context.Background(), emuNow, emuNow.Add(-time.Second), func([]Row) error { return nil })
	require.ErrorContains(t, err, "before start")
}

// Four nodes on two sites in one Fetch: one query per site carrying its
// nodes and all the metrics; every row exactly once.
func TestSessionMultiSite(t *testing.T) {
	env := newTestEnv(t, emulator.Config{}, nil)
	metrics := []string{watt, bmc, pdu}
	plan := Plan{
		Targets: []Target{{"lyon", "taurus-7"}, {"nancy", "gros-41"}, {"lyon", "orion-3.lyon.grid5000.fr"}, {"nancy", "gros-42"}},
		Metrics: metrics,
	}
	var progress []Progress
	o := env.opts(SessionOptions{OnProgress: func(p Progress) { progress = append(progress, p) }})
	s, err := env.client.NewSession(plan, o)
	require.NoError(t, err)
	from, to := emuNow.Add(-20*time.Minute), emuNow.Add(-time.Minute)
	col := newCollector()
	rep, err := s.Fetch(context.Background(), from, to, col.sink)
	require.NoError(t, err)

	want := append(expectedKeys(t, env.emu, "lyon", []string{"taurus-7", "orion-3"}, metrics, from, to),
		expectedKeys(t, env.emu, "nancy", []string{"gros-41", "gros-42"}, metrics, from, to)...)
	col.requireExactlyOnce(t, want)
	require.LessOrEqual(t, col.maxBatch, defaultBatchSize)
	require.Equal(t, 1, col.maxIn, "sink calls are serialised")

	qs := env.log.all()
	require.Len(t, qs, 2, "one query per site")
	bySite := map[string]url.Values{}
	for _, u := range qs {
		bySite[siteOf(u)] = u.Query()
	}
	require.Equal(t, "taurus-7,orion-3", bySite["lyon"].Get("nodes"))
	require.Equal(t, "gros-41,gros-42", bySite["nancy"].Get("nodes"))
	for _, v := range bySite {
		require.Equal(t, strings.Join(metrics, ","), v.Get("metrics"))
		require.Empty(t, v.Get("job_id"))
	}
	require.Equal(t, 2, rep.Queries)
	require.Equal(t, 2, rep.Chunks)
	require.Equal(t, len(want), rep.Rows)
	require.Zero(t, rep.Retries)
	require.Empty(t, rep.FailedChunks)

	// Coverage: 12 pairs, sorted by node then metric; pairs without a meter
	// (no PDU in lyon) have no rows.
	require.Len(t, rep.Series, 12)
	noData := map[string]bool{}
	for _, sc := range rep.Series {
		site := map[bool]string{true: "nancy", false: "lyon"}[strings.HasPrefix(sc.Node, "gros")]
		rows, err := env.emu.Expected(site, []string{sc.Node}, []string{sc.Metric}, from, to)
		require.NoError(t, err)
		noData[sc.Node+"/"+sc.Metric] = len(rows) == 0
	}
	require.True(t, noData["taurus-7/"+pdu])
	for i, sc := range rep.Series {
		if i > 0 {
			prev := rep.Series[i-1]
			require.True(t, prev.Node < sc.Node || (prev.Node == sc.Node && prev.Metric < sc.Metric))
		}
		require.Equal(t, map[bool]string{true: "nancy", false: "lyon"}[strings.HasPrefix(sc.Node, "gros")], sc.Site)
		if noData[sc.Node+"/"+sc.Metric] {
			require.Zero(t, sc.Rows, sc)
			continue
		}
		require.Positive(t, sc.Rows, sc)
		require.True(t, sc.Complete, sc)
		require.Zero(t, sc.Unverified, sc)
	}
	require.NotEmpty(t, progress)
	for i := 1; i < len(progress); i++ {
		require.GreaterOrEqual(t, progress[i].ChunksDone, progress[i-1].ChunksDone)
		require.GreaterOrEqual(t, progress[i].Rows, progress[i-1].Rows)
	}
	last := progress[len(progress)-1]
	require.True(t, last.Done())
	require.Equal(t, 2, last.ChunksDone)
	require.Equal(t, len(want), last.Rows)
	require.Contains(t, last.String(), "2/2 chunks")

	// The window ended a minute before the first query, when no pair had
	// any row yet: everything up to its end is verified (see settleAge), the
	// watermark is the window's end, and a second Fetch of the same window
	// sends nothing.
	require.True(t, to.Equal(s.Watermark()), "watermark %v", s.Watermark())
	env.log.reset()
	rep, err = s.Fetch(context.Background(), from, to, col.sink)
	require.NoError(t, err)
	require.Zero(t, rep.Rows)
	require.Zero(t, rep.Queries)
	require.Empty(t, env.log.all())
	col.requireExactlyOnce(t, want)
}

// 100 Hz raw wattmetre data (a v3 wattmetre in a monitor job): the window
// is cut in chunks of RowBudget × period, fetched with flat memory after
// a probe of the newest seconds, and every frame arrives once, in time
// order.
func TestSessionHighFrequency(t *testing.T) {
	tests := []struct {
		name       string
		window     time.Duration
		budget     int
		wantChunks int
		long       bool
	}{
		// 20 000 rows × 10 ms = 200 s per chunk, and the probe.
		{"30min", 30 * time.Minute, 20_000, 10, false},
		// 100 000 rows × 10 ms = 1000 s per chunk: 7200 s + 1 µs -> 8, and the probe.
		{"2h", 2 * time.Hour, 100_000, 9, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.long && testing.Short() {
				t.Skip("720 000 rows: skipped with -short")
			}
			if tt.long {
				racetest.WithoutRace(t) // the 30min case takes the same paths under -race
			}
			var body byteCounter
			env := newTestEnv(t, emulator.Config{Monitored: []string{"gemini-1"}}, body.wrap)
			from := emuNow.Add(-3 * time.Hour)
			to := from.Add(tt.window)

			// The emulator's frames, in 10-minute pieces, as a count and an
			// order-independent hash per frame slot.
			wantHash, wantRows := uint64(0), 0
			for a := from; !a.After(to); a = a.Add(10 * time.Minute) {
				b := a.Add(10*time.Minute - time.Microsecond)
				if b.After(to) {
					b = to
				}
				rows, err := env.emu.Expected("lyon", []string{"gemini-1"}, []string{watt}, a, b)
				require.NoError(t, err)
				for _, r := range rows {
					wantHash ^= frameHash(r.Timestamp, r.Value)
				}
				wantRows += len(rows)
			}
			require.Greater(t, wantRows, int(tt.window/(11*time.Millisecond)))

			// Frames are 10 ms apart with < 50 µs jitter: slot = ts / 10 ms.
			base := from.UnixMicro() / 10_000
			seen := make([]uint64, (int(tt.window/(10*time.Millisecond))+64)/64+1)
			var (
				mu       sync.Mutex
				gotHash  uint64
				got      int
				dups     int
				maxBatch int
				peak     uint64
				batches  int
				last     time.Time
				disorder int
			)
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			baseline := ms.HeapAlloc
			sink := func(rows []Row) error {
				mu.Lock()
				defer mu.Unlock()
				maxBatch = max(maxBatch, len(rows))
				for i := range rows {
					if !rows[i].Timestamp.After(last) {
						disorder++
					}
					last = rows[i].Timestamp
					slot := rows[i].Timestamp.UnixMicro()/10_000 - base
					if seen[slot/64]&(1<<(slot%64)) != 0 {
						dups++
					}
					seen[slot/64] |= 1 << (slot % 64)
					gotHash ^= frameHash(rows[i].Timestamp, rows[i].Value)
					got++
				}
				if batches++; batches%8 == 0 {
					runtime.ReadMemStats(&ms)
					peak = max(peak, ms.HeapAlloc)
				}
				return nil
			}
			o := env.opts(SessionOptions{RowBudget: tt.budget, Periods: map[string]time.Duration{watt: 10 * time.Millisecond}})
			s, err := env.client.NewSession(Plan{Targets: []Target{{"lyon", "gemini-1"}}, Metrics: []string{watt}}, o)
			require.NoError(t, err)
			start := time.Now()
			rep, err := s.Fetch(context.Background(), from, to, sink)
			elapsed := time.Since(start)
			require.NoError(t, err)
			require.Equal(t, wantRows, got)
			require.Zero(t, dups)
			require.Zero(t, disorder, "one series: every row after the one before")
			require.Equal(t, wantHash, gotHash, "same frames and values")
			require.Equal(t, tt.wantChunks, rep.Chunks)
			require.Equal(t, tt.wantChunks, rep.Queries)
			// Connections are reused: without keep-alive every chunk would open its own. The +2 slack
			// absorbs a connection not yet back in the idle pool when the next chunk starts (load).
			require.LessOrEqual(t, env.conns.Load(), int64(defaultConcurrency+2), "keep-alive connections are reused")
			require.Equal(t, wantRows, rep.Rows)
			require.LessOrEqual(t, maxBatch, defaultBatchSize)
			// Each chunk stays within the budget (+1 % for jitter).
			for _, u := range env.log.all() {
				d := epochOf(t, u, "end_time").Sub(epochOf(t, u, "start_time"))
				require.LessOrEqual(t, d, time.Duration(tt.budget)*10*time.Millisecond)
			}
			growth := int64(peak) - int64(baseline)
			jsonBytes := body.total()
			t.Logf("%d rows, %d chunks in %v (%.0f rows/s); heap growth %.1f MB for %.0f MB of JSON",
				got, rep.Chunks, elapsed.Round(time.Millisecond), float64(got)/elapsed.Seconds(), float64(growth)/1e6, float64(jsonBytes)/1e6)
			require.Less(t, growth, int64(32<<20), "memory stays flat")
			if tt.long {
				require.Greater(t, jsonBytes, int64(3*32<<20), "far more data than memory")
			}
			cov := s.Coverage(from, to)
			require.Len(t, cov, 1)
			require.True(t, cov[0].Complete)
			require.Zero(t, cov[0].Unverified, "the probe saw the newest rows: every chunk edge is verified")
			require.InDelta(t, 10*time.Millisecond, cov[0].Period, float64(100*time.Microsecond))
		})
	}
}

// byteCounter counts the response bytes a server writes.
type byteCounter struct {
	mu sync.Mutex
	n  int64
}

func (c *byteCounter) total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

type countingWriter struct {
	http.ResponseWriter
	c *byteCounter
}

func (w countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.c.mu.Lock()
	w.c.n += int64(n)
	w.c.mu.Unlock()
	return n, err
}

func (w countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (c *byteCounter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(countingWriter{w, c}, r)
	})
}

func frameHash(ts time.Time, v float64) uint64 {
	h := fnv.New64a()
	var b [16]byte
	us := uint64(ts.UnixMicro())
	bits := math.Float64bits(v)
	for i := 0; i < 8; i++ {
		b[i] = byte(us >> (8 * i))
		b[8+i] = byte(bits >> (8 * i))
	}
	_, _ = h.Write(b[:])
	return h.Sum64()
}

// faults injects failures into the metrics GETs, deterministically: the
// decision is a hash of the request URL and of how many times that URL
// was seen, so it does not depend on the order of concurrent requests.
type faults struct {
	seed   uint64
	rate   int // percent
	kinds  []string
	mu     sync.Mutex
	seen   map[string]int
	counts map[string]int
}

func newFaults(seed uint64, rate int, kinds ...string) *faults {
	return &faults{seed: seed, rate: rate, kinds: kinds, seen: map[string]int{}, counts: map[string]int{}}
}

func (f *faults) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.counts {
		n += c
	}
	return n
}

func (f *faults) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/metrics") {
			next.ServeHTTP(w, r)
			return
		}
		f.mu.Lock()
		uri := r.URL.RequestURI()
		n := f.seen[uri]
		f.seen[uri]++
		h := fnv.New64a()
		fmt.Fprintf(h, "%d|%s|%d", f.seed, uri, n)
		v := h.Sum64()
		kind := ""
		if int(v%100) < f.rate {
			kind = f.kinds[int(v/100)%len(f.kinds)]
			f.counts[kind]++
		}
		f.mu.Unlock()
		serveFault(w, r, kind, next)
	})
}

// serveFault answers a request with a fault, or normally for kind "".
func serveFault(w http.ResponseWriter, r *http.Request, kind string, next http.Handler) {
	switch kind {
	case "":
		next.ServeHTTP(w, r)
	case "503":
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(503)
		_, _ = io.WriteString(w, "<html><body>503 Service Unavailable</body></html>")
	case "429":
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(429)
		_, _ = io.WriteString(w, "Too Many Requests")
	case "reset":
		// A status line, then a TCP reset: Go's transport does not
		// replay a request once response bytes came back.
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\n")
		_ = buf.Flush()
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = conn.Close()
	case "truncate":
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if rec.Code != 200 {
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body)
			return
		}
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		cut := len(body) * 3 / 5
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
		_, _ = buf.Write(body[:cut])
		_ = buf.Flush()
	default:
		panic("unknown fault " + kind)
	}
}

// 20 % of the queries fail (503, 429, reset, truncated body): every row
// arrives exactly once, each failure is retried once.
func TestSessionFaults(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			f := newFaults(seed, 20, "503", "429", "reset", "truncate")
			env := newTestEnv(t, emulator.Config{Monitored: []string{"orion-3"}}, f.wrap)
			metrics := []string{watt, bmc, pdu}
			plan := Plan{Targets: []Target{{"lyon", "taurus-7"}, {"lyon", "orion-3"}, {"nancy", "gros-41"}, {"nancy", "gros-42"}}, Metrics: metrics}
			var retries []string
			o := env.opts(SessionOptions{
				RowBudget: 5000, Concurrency: 3, BatchSize: 500,
				// orion-3's raw frames: 20 ms. A 1 Hz wattmetre is not
				// learned as faster, so the chunks are the same every run.
				Periods: map[string]time.Duration{watt: 20 * time.Millisecond, bmc: 5 * time.Second},
				OnRetry: func(u string, err error, attempt int, wait time.Duration) {
					retries = append(retries, fmt.Sprintf("%d %v", attempt, err))
				},
			})
			s, err := env.client.NewSession(plan, o)
			require.NoError(t, err)
			from, to := emuNow.Add(-40*time.Minute), emuNow.Add(-30*time.Minute)
			col := newCollector()
			rep, err := s.Fetch(context.Background(), from, to, col.sink)
			require.NoError(t, err)
			want := append(expectedKeys(t, env.emu, "lyon", []string{"taurus-7", "orion-3"}, metrics, from, to),
				expectedKeys(t, env.emu, "nancy", []string{"gros-41", "gros-42"}, metrics, from, to)...)
			col.requireExactlyOnce(t, want)
			require.LessOrEqual(t, col.maxBatch, 500)
			require.Positive(t, f.total(), "faults injected")
			require.Equal(t, f.total(), rep.Retries, "one retry per fault: %v", retries)
			require.Len(t, retries, rep.Retries)
			require.Equal(t, rep.Chunks+rep.Retries, rep.Queries)
			require.Greater(t, rep.Chunks, 10)
			f.mu.Lock()
			t.Logf("%d rows, %d chunks, %d queries, faults %v", rep.Rows, rep.Chunks, rep.Queries, f.counts)
			f.mu.Unlock()
			for _, sc := range rep.Series {
				require.Zero(t, sc.Unverified, sc)
			}
		})
	}
}

// tooMuchData answers Kwollect's statement timeout for windows longer than
// limit.
func tooMuchData(limit time.Duration, hits *int, mu *sync.Mutex) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			a, err1 := parseEpoch(q.Get("start_time"))
			b, err2 := parseEpoch(q.Get("end_time"))
			if err1 == nil && err2 == nil && b.Sub(a) > limit {
				mu.Lock()
				*hits++
				mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(500)
				_, _ = io.WriteString(w, `{"hint":null,"details":null,"code":"XX000","message":"Exception: Request timeout, too much data to process."}`)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Kwollect's "too much data": chunks are split until they pass, the budget
// is lowered for the next chunks, and everything arrives.
func TestSessionTooMuchData(t *testing.T) {
	var mu sync.Mutex
	hits := 0
	env := newTestEnv(t, emulator.Config{Monitored: []string{"taurus-7"}}, tooMuchData(90*time.Second, &hits, &mu))
	metrics := []string{watt, bmc}
	// One query at a time: the order of the splits, and so the budget
	// learned, is the same every run.
	s, err := env.client.NewSession(Plan{Targets: []Target{{"lyon", "taurus-7"}, {"lyon", "taurus-8"}}, Metrics: metrics},
		env.opts(SessionOptions{Concurrency: 1}))
	require.NoError(t, err)
	from, to := emuNow.Add(-2*time.Hour), emuNow.Add(-104*time.Minute)
	col := newCollector()
	rep, err := s.Fetch(context.Background(), from, to, col.sink)
	require.NoError(t, err)
	col.requireExactlyOnce(t, expectedKeys(t, env.emu, "lyon", []string{"taurus-7", "taurus-8"}, metrics, from, to))
	// The first refusal (16 min, on guessed periods) gives the range back
	// to be cut for 100 Hz frames; the chunks refused after that, sized on
	// periods seen in the data, are halved (15 splits before the give-back).
	require.Equal(t, 8, rep.Splits)
	require.Equal(t, hits, rep.Splits, "one split per timeout")
	require.Zero(t, rep.Retries)
	s.mu.Lock()
	budget := s.budget
	s.mu.Unlock()
	require.Less(t, budget, defaultRowBudget, "a smaller budget was learned")
	require.Greater(t, budget, 2000, "from estimates based on the data, not on guessed periods")
	t.Logf("%d rows, %d queries, %d splits, budget %d", rep.Rows, rep.Queries, rep.Splits, budget)

	// The next 16 minutes are cut to the learned budget (half of the
	// 2-minute chunks that failed): no timeout at all.
	rep, err = s.Fetch(context.Background(), to, to.Add(16*time.Minute), col.sink)
	require.NoError(t, err)
	require.Zero(t, rep.Splits)
	require.Greater(t, rep.Chunks, 15)
	col.requireExactlyOnce(t, expectedKeys(t, env.emu, "lyon", []string{"taurus-7", "taurus-8"}, metrics, from, to.Add(16*time.Minute)))

	// Down to one second and one node, the error is a failed chunk.
	hits = 0
	env2 := newTestEnv(t, emulator.Config{}, tooMuchData(0, &hits, &mu))
	s, err = env2.client.NewSession(Plan{Targets: []Target{{"lyon", "taurus-7"}, {"lyon", "taurus-8"}}, Metrics: metrics}, env2.opts(SessionOptions{}))
	require.NoError(t, err)
	rep, err = s.Fetch(context.Background(), from, from.Add(3*time.Second), newCollector().sink)
	var pe *PartialError
	require.ErrorAs(t, err, &pe)
	require.Len(t, pe.Failed, 4, "2 halves of 1.5 s × 2 nodes")
	require.True(t, isTooMuchData(err))
	require.Len(t, rep.FailedChunks, 4)
}

// One site answers 503 forever: its chunks are reported as failed, the
// other site's rows are all delivered.
func TestSessionSiteDown(t *testing.T) {
	down := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/sites/nancy/") {
				serveFault(w, r, "503", next)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	env := newTestEnv(t, emulator.Config{}, down)
	metrics := []string{watt, pdu}
	plan := Plan{Targets: []Target{{"lyon", "taurus-7"}, {"nancy", "gros-41"}, {"nancy", "gros-42"}}, Metrics: metrics}
	s, err := env.client.NewSession(plan, env.opts(SessionOptions{Retry: RetryPolicy{MaxAttempts: 3}}))
	require.NoError(t, err)
	from, to := emuNow.Add(-10*time.Minute), emuNow.Add(-5*time.Minute)
	col := newCollector()
	rep, err := s.Fetch(context.Background(), from, to, col.sink)
	var pe *PartialError
	require.ErrorAs(t, err, &pe)
	var ge *GatewayError
	require.ErrorAs(t, err, &ge, "the chunks' errors are wrapped")
	require.Equal(t, 503, ge.Status)
	require.Len(t, pe.Failed, 1)
	f := pe.Failed[0]
	require.Equal(t, "nancy", f.Site)
	require.Equal(t, []string{"gros-41", "gros-42"}, f.Nodes)
	require.Equal(t, metrics, f.Metrics)
	require.True(t, f.From.Equal(from) && f.To.Equal(to), "%v", f)
	require.Contains(t, err.Error(), "gros-41,gros-42 on nancy")
	require.Equal(t, pe.Failed, rep.FailedChunks)
	require.Equal(t, 2, rep.Retries, "3 attempts")
	require.Equal(t, []time.Duration{250 * time.Millisecond, 500 * time.Millisecond}, env.waits)
	col.requireExactlyOnce(t, expectedKeys(t, env.emu, "lyon", []string{"taurus-7"}, metrics, from, to))
	for _, sc := range rep.Series {
		if sc.Site == "nancy" {
			require.Zero(t, sc.Rows)
		}
	}
}

// A 401 is not retried: the error comes back at once.
func TestSessionUnauthorized(t *testing.T) {
	env := newTestEnv(t, emulator.Config{Users: map[string]string{"alice": "secret"}}, nil)
	s, err := env.client.NewSession(Plan{Targets: []Target{{"lyon", "taurus-7"}, {"nancy", "gros-41"}}, Metrics: []string{watt}},
		env.opts(SessionOptions{}))
	require.NoError(t, err)
	rep, err := s.Fetch(context.Background(), emuNow.Add(-time.Hour), emuNow, newCollector().sink)
	var ge *GatewayError
	require.ErrorAs(t, err, &ge)
	require.Equal(t, 401, ge.Status)
	var pe *PartialError
	require.False(t, errors.As(err, &pe))
	require.Zero(t, rep.Retries)
	require.Empty(t, env.waits)
	require.LessOrEqual(t, rep.Queries, 2)
	require.Zero(t, rep.Rows)
}

// Complete with ingestion lag: tail queries only for the incomplete pairs,
// until every pair reaches the end.
func TestSessionCompleteLag(t *testing.T) {
	env := newTestEnv(t, emulator.Config{Lag: 4 * time.Second}, nil)
	plan := Plan{Targets: []Target{{"lyon", "taurus-7"}, {"lyon", "orion-3"}, {"nancy", "gros-41"}}, Metrics: []string{watt, bmc, pdu}}
	o := env.opts(SessionOptions{Periods: map[string]time.Duration{bmc: 5 * time.Second}, EmptyGrace: 3 * time.Second})
	o.Sleep = env.clock.Sleep // sleeping advances the emulator's clock
	s, err := env.client.NewSession(plan, o)
	require.NoError(t, err)
	to := emuNow
	from := to.Add(-5 * time.Minute)
	col := newCollector()
	rep, err := s.Fetch(context.Background(), from, to, col.sink)
	require.NoError(t, err)
	require.Equal(t, 2, rep.Queries)
	require.False(t, rep.Complete(), "the lag hides the tail")
	incomplete, noRows := map[string]bool{}, map[string]bool{}
	for _, sc := range rep.Series {
		if !sc.Complete {
			incomplete[sc.Node+"/"+sc.Metric] = true
		}
		if sc.Rows == 0 {
			noRows[sc.Node+"/"+sc.Metric] = true
		}
	}
	env.log.reset()
	tail, err := s.Complete(context.Background(), to, to.Add(time.Minute), col.sink)
	require.NoError(t, err)
	want := append(expectedKeys(t, env.emu, "lyon", []string{"taurus-7", "orion-3"}, []string{watt, bmc, pdu}, from, to),
		expectedKeys(t, env.emu, "nancy", []string{"gros-41"}, []string{watt, bmc, pdu}, from, to)...)
	col.requireExactlyOnce(t, want)
	for _, sc := range tail.Series {
		if sc.Rows > 0 {
			require.True(t, sc.Complete, sc)
		}
	}
	// Backoff 0.5s, 1s, 2s while the pairs without rows are waited for
	// (EmptyGrace 3s), then rounds due at the lag seen (≥ 250 ms apart
	// after a miss): the wattmetre mean of the last second shows 5s after it.
	require.Equal(t, []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 250 * time.Millisecond, 250 * time.Millisecond, 800 * time.Millisecond, 250 * time.Millisecond}, env.clock.Sleeps())
	// Tail queries ask only for incomplete pairs: from their newest row, or
	// from the start for the pairs without any row (until EmptyGrace).
	require.NotEmpty(t, env.log.all())
	for _, u := range env.log.all() {
		q := u.Query()
		nodes, ms := strings.Split(q.Get("nodes"), ","), strings.Split(q.Get("metrics"), ",")
		rowless := false
		for _, n := range nodes {
			found := false
			for _, m := range ms {
				found = found || incomplete[n+"/"+m]
				rowless = rowless || noRows[n+"/"+m]
			}
			require.True(t, found, "tail query %s for complete node %s", u.RawQuery, n)
		}
		if !rowless {
			require.True(t, epochOf(t, u, "start_time").After(to.Add(-10*time.Second)), "tail query from the newest rows: %s", u.RawQuery)
		}
	}
	require.Equal(t, len(env.log.all()), tail.Queries)
}

// Run mode: polls every 10 s from the watermark, with lag and an API
// outage in the middle: the union of the polls is the emulator's data,
// each row once.
func TestSessionRunMode(t *testing.T) {
	var (
		mu   sync.Mutex
		down bool
	)
	outage := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			d := down
			mu.Unlock()
			if d && strings.HasSuffix(r.URL.Path, "/metrics") {
				serveFault(w, r, "503", next)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	env := newTestEnv(t, emulator.Config{Lag: 3 * time.Second, Monitored: []string{"orion-3"}}, outage)
	metrics := []string{watt, bmc, pdu}
	plan := Plan{Targets: []Target{{"lyon", "taurus-7"}, {"lyon", "orion-3"}, {"nancy", "gros-41"}}, Metrics: metrics}
	s, err := env.client.NewSession(plan, env.opts(SessionOptions{Retry: RetryPolicy{MaxAttempts: 2}, RowBudget: 3000}))
	require.NoError(t, err)
	windowStart := emuNow.Add(-95 * time.Second)
	col := newCollector()
	var dropped, failedPolls int
	var lastWM time.Time
	for i := 0; i < 40; i++ {
		env.clock.mu.Lock()
		env.clock.now = env.clock.now.Add(10 * time.Second)
		now := env.clock.now
		env.clock.mu.Unlock()
		mu.Lock()
		down = i >= 12 && i < 17
		mu.Unlock()
		before := s.Watermark()
		require.False(t, before.Before(lastWM), "the watermark never goes back")
		lastWM = before
		from := windowStart
		if wm := s.Watermark(); wm.After(from) {
			from = wm
		}
		rep, err := s.Fetch(context.Background(), from, now, col.sink)
		dropped += rep.Dropped
		if i >= 12 && i < 17 {
			var pe *PartialError
			require.ErrorAs(t, err, &pe, "poll %d", i)
			require.Equal(t, before, s.Watermark(), "a failed poll leaves the watermark")
			failedPolls++
			continue
		}
		require.NoError(t, err, "poll %d", i)
		if i > 0 && i != 17 {
			// Steady state: one query per site, a few seconds of overlap.
			require.LessOrEqual(t, rep.Queries, 4, "poll %d", i)
		}
	}
	// A last poll once everything is ingested.
	env.clock.mu.Lock()
	lastTo := env.clock.now
	env.clock.now = env.clock.now.Add(10 * time.Second)
	env.clock.mu.Unlock()
	_, err = s.Fetch(context.Background(), max64(windowStart, s.Watermark()), lastTo, col.sink)
	require.NoError(t, err)
	want := append(expectedKeys(t, env.emu, "lyon", []string{"taurus-7", "orion-3"}, metrics, windowStart, lastTo),
		expectedKeys(t, env.emu, "nancy", []string{"gros-41"}, metrics, windowStart, lastTo)...)
	col.requireExactlyOnce(t, want)
	require.Equal(t, 5, failedPolls)
	t.Logf("%d rows over %d polls, %d rows re-read and dropped", col.rows, 41, dropped)
	require.Less(t, dropped, col.rows, "polls overlap by a few seconds only")
}

func max64(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Overlapping Fetch calls on historical data deliver each row once.
func TestSessionOverlappingWindows(t *testing.T) {
	env := newTestEnv(t, emulator.Config{}, nil)
	metrics := []string{watt, bmc}
	s, err := env.client.NewSession(Plan{Targets: []Target{{"lyon", "taurus-7"}, {"lyon", "taurus-8"}}, Metrics: metrics},
		env.opts(SessionOptions{RowBudget: 500}))
	require.NoError(t, err)
	t0 := emuNow.Add(-time.Hour)
	col := newCollector()
	windows := [][2]time.Duration{{0, 10 * time.Minute}, {5 * time.Minute, 15 * time.Minute}, {2 * time.Minute, 3 * time.Minute}, {14*time.Minute + 500*time.Millisecond, 20 * time.Minute}}
	for i, w := range windows {
		_, err := s.Fetch(context.Background(), t0.Add(w[0]), t0.Add(w[1]), col.sink)
		require.NoError(t, err)
		if i == 0 {
			env.log.reset()
		}
	}
	col.requireExactlyOnce(t, expectedKeys(t, env.emu, "lyon", []string{"taurus-7", "taurus-8"}, metrics, t0, t0.Add(20*time.Minute)))
	// The overlapping parts were not asked again: after the first window,
	// nothing before its last few seconds.
	for _, u := range env.log.all() {
		a := epochOf(t, u, "start_time")
		require.False(t, a.After(t0.Add(2*time.Minute)) && a.Before(t0.Add(9*time.Minute)), "window re-read: %s", u.RawQuery)
	}
}

// A job plan: the job's nodes come from Kwollect (job_id, no node list).
func TestSessionJob(t *testing.T) {
	job := emulator.Job{ID: 4242, Site: "lyon", Nodes: []string{"taurus-3", "taurus-4"}, Start: emuNow.Add(-time.Hour), Stop: emuNow.Add(-10 * time.Minute)}
	env := newTestEnv(t, emulator.Config{Jobs: []emulator.Job{job}}, nil)
	metrics := []string{watt, bmc}
	s, err := env.client.NewSession(Plan{JobSite: "lyon", JobID: 4242, Metrics: metrics}, env.opts(SessionOptions{RowBudget: 2000}))
	require.NoError(t, err)
	from, to := emuNow.Add(-50*time.Minute), emuNow.Add(-20*time.Minute)
	col := newCollector()
	rep, err := s.Fetch(context.Background(), from, to, col.sink)
	require.NoError(t, err)
	col.requireExactlyOnce(t, expectedKeys(t, env.emu, "lyon", job.Nodes, metrics, from, to))
	for _, u := range env.log.all() {
		q := u.Query()
		require.Equal(t, "4242", q.Get("job_id"))
		require.Empty(t, q.Get("nodes"))
	}
	require.Greater(t, rep.Chunks, 1, "sized on the job's nodes once seen")
	var pairs []string
	for _, sc := range rep.Series {
		pairs = append(pairs, sc.Node+"/"+sc.Metric)
		require.True(t, sc.Complete, sc)
		require.Zero(t, sc.Unverified, sc)
	}
	require.Equal(t, []string{"taurus-3/" + bmc, "taurus-3/" + watt, "taurus-4/" + bmc, "taurus-4/" + watt}, pairs)
	require.False(t, s.Watermark().IsZero())
}

// The sink owns its batches; its error stops the fetch; Retry-After is
// honoured.
func TestSessionSinkAndRetryAfter(t *testing.T) {
	env := newTestEnv(t, emulator.Config{}, nil)
	s, err := env.client.NewSession(Plan{Targets: []Target{{"lyon", "taurus-7"}}, Metrics: []string{watt}}, env.opts(SessionOptions{BatchSize: 100}))
	require.NoError(t, err)
	var kept [][]Row
	stop := errors.New("disk full")
	rep, err := s.Fetch(context.Background(), emuNow.Add(-time.Hour), emuNow.Add(-50*time.Minute), func(rows []Row) error {
		if len(kept) == 3 {
			return stop
		}
		kept = append(kept, rows)
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 300, rep.Rows)
	for i, b := range kept {
		require.Len(t, b, 100)
		require.True(t, b[0].Timestamp.Equal(emuNow.Add(-time.Hour).Add(time.Duration(100*i)*time.Second)), "batch %d kept intact", i)
	}
	// A later Fetch goes on after the 300 rows delivered.
	col := newCollector()
	_, err = s.Fetch(context.Background(), emuNow.Add(-time.Hour), emuNow.Add(-50*time.Minute), col.sink)
	require.NoError(t, err)
	require.Equal(t, 601-300, col.rows)

	// 429 with Retry-After: 3 -> the wait is at least 3s.
	n := 0
	var nmu sync.Mutex
	ra := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			nmu.Lock()
			n++
			first := n == 1
			nmu.Unlock()
			if first {
				w.Header().Set("Retry-After", "3")
				w.WriteHeader(429)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	env2 := newTestEnv(t, emulator.Config{}, ra)
	var urls []string
	s, err = env2.client.NewSession(Plan{Targets: []Target{{"lyon", "taurus-7"}}, Metrics: []string{watt}},
		env2.opts(SessionOptions{OnRetry: func(u string, err error, attempt int, wait time.Duration) { urls = append(urls, u) }}))
	require.NoError(t, err)
	rep, err = s.Fetch(context.Background(), emuNow.Add(-time.Hour), emuNow.Add(-50*time.Minute), newCollector().sink)
	require.NoError(t, err)
	require.Equal(t, []time.Duration{3 * time.Second}, env2.waits)
	require.Equal(t, 1, rep.Retries)
	require.Len(t, urls, 1)
	require.Contains(t, urls[0], "nodes=taurus-7")
}

// Targets and a job on the same site: the job query returns the job's
// nodes, the targets come from their own queries, every row once.
func TestSessionJobAndTargets(t *testing.T) {
	job := emulator.Job{ID: 77, Site: "lyon", Nodes: []string{"taurus-3", "taurus-4"}, Start: emuNow.Add(-time.Hour)}
	env := newTestEnv(t, emulator.Config{Jobs: []emulator.Job{job}}, nil)
	metrics := []string{watt, bmc}
	plan := Plan{Targets: []Target{{"lyon", "taurus-3"}, {"lyon", "taurus-9"}, {"nancy", "gros-41"}}, JobSite: "lyon", JobID: 77, Metrics: metrics}
	s, err := env.client.NewSession(plan, env.opts(SessionOptions{}))
	require.NoError(t, err)
	from, to := emuNow.Add(-30*time.Minute), emuNow.Add(-20*time.Minute)
	col := newCollector()
	rep, err := s.Fetch(context.Background(), from, to, col.sink)
	require.NoError(t, err)
	col.requireExactlyOnce(t, append(expectedKeys(t, env.emu, "lyon", []string{"taurus-3", "taurus-4", "taurus-9"}, metrics, from, to),
		expectedKeys(t, env.emu, "nancy", []string{"gros-41"}, metrics, from, to)...))
	var kinds []string
	for _, u := range env.log.all() {
		q := u.Query()
		kinds = append(kinds, siteOf(u)+" nodes="+q.Get("nodes")+" job="+q.Get("job_id"))
	}
	slices.Sort(kinds)
	require.Equal(t, []string{"lyon nodes= job=77", "lyon nodes=taurus-3,taurus-9 job=", "nancy nodes=gros-41 job="}, kinds)
	require.Positive(t, rep.Dropped, "taurus-3 rows of the job query are left to its own query")
	var nodes []string
	for _, sc := range rep.Series {
		if !slices.Contains(nodes, sc.Node) {
			nodes = append(nodes, sc.Node)
		}
	}
	require.Equal(t, []string{"gros-41", "taurus-3", "taurus-4", "taurus-9"}, nodes)
}

// When one second of all the nodes exceeds the budget, the node list is
// split; a period seen in the data resizes the chunks planned after it.
func TestSessionChunkSizing(t *testing.T) {
	t.Run("node groups", func(t *testing.T) {
		env := newTestEnv(t, emulator.Config{Monitored: []string{"gemini-1", "gemini-2"}}, nil)
		s, err := env.client.NewSession(Plan{Targets: []Target{{"lyon", "gemini-1"}, {"lyon", "gemini-2"}}, Metrics: []string{watt}},
			env.opts(SessionOptions{RowBudget: 150, Periods: map[string]time.Duration{watt: 10 * time.Millisecond}}))
		require.NoError(t, err)
		from := emuNow.Add(-time.Hour)
		to := from.Add(9 * time.Second)
		col := newCollector()
		rep, err := s.Fetch(context.Background(), from, to, col.sink)
		require.NoError(t, err)
		col.requireExactlyOnce(t, expectedKeys(t, env.emu, "lyon", []string{"gemini-1", "gemini-2"}, []string{watt}, from, to))
		perNode := map[string]int{}
		for _, u := range env.log.all() {
			n := u.Query().Get("nodes")
			require.NotContains(t, n, ",", "one node per query")
			perNode[n]++
			d := epochOf(t, u, "end_time").Sub(epochOf(t, u, "start_time"))
			require.LessOrEqual(t, d, 1500*time.Millisecond)
		}
		// 150 rows at 100 Hz = 1.5 s: 9 s + 1 µs in 6 chunks (the µs is
		// absorbed), after a probe of 150/8 rows (1 s, the shortest).
		require.Equal(t, map[string]int{"gemini-1": 7, "gemini-2": 7}, perNode)
		require.Equal(t, 14, rep.Chunks)
	})
	t.Run("learned period", func(t *testing.T) {
		env := newTestEnv(t, emulator.Config{Monitored: []string{"orion-3"}}, nil)
		// No Periods: 1 s assumed, the data shows 20 ms frames.
		s, err := env.client.NewSession(Plan{Targets: []Target{{"lyon", "orion-3"}}, Metrics: []string{watt}}, env.opts(SessionOptions{RowBudget: 500}))
		require.NoError(t, err)
		from := emuNow.Add(-time.Hour)
		to := from.Add(15 * time.Minute)
		col := newCollector()
		rep, err := s.Fetch(context.Background(), from, to, col.sink)
		require.NoError(t, err)
		col.requireExactlyOnce(t, expectedKeys(t, env.emu, "lyon", []string{"orion-3"}, []string{watt}, from, to))
		// The probe, sized with 1 s: 500/8 rows, 62.5 s, at most a minute; then the 900 s at
		// 50 rows/s: chunks of about 10 s.
		qs := env.log.all()
		require.Equal(t, time.Minute-time.Microsecond, epochOf(t, qs[0], "end_time").Sub(epochOf(t, qs[0], "start_time")))
		require.InDelta(t, 91, rep.Chunks, 2)
		for _, u := range qs[1:] {
			d := epochOf(t, u, "end_time").Sub(epochOf(t, u, "start_time"))
			require.LessOrEqual(t, d, 10*time.Second+100*time.Millisecond, "sized from the probe's periods: %s", u.RawQuery)
		}
		require.Less(t, col.maxBatch, 4097)
	})
}

// Canceling the context stops the fetch: ctx.Err() comes back, and what
// was delivered stays verified.
func TestSessionCancel(t *testing.T) {
	env := newTestEnv(t, emulator.Config{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	queries := 0
	o := env.opts(SessionOptions{RowBudget: 100, Concurrency: 1, OnQuery: func(string) {
		if queries++; queries == 4 { // the probe, then two chunks
			cancel()
		}
	}})
	s, err := env.client.NewSession(Plan{Targets: []Target{{"lyon", "taurus-7"}}, Metrics: []string{watt}}, o)
	require.NoError(t, err)
	from, to := emuNow.Add(-time.Hour), emuNow.Add(-50*time.Minute)
	col := newCollector()
	rep, err := s.Fetch(ctx, from, to, col.sink)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 2, rep.Rows/100, "two chunks of 100 s before the cancel")
	require.Empty(t, rep.FailedChunks)
	_, err = s.Fetch(context.Background(), from, to, col.sink)
	require.NoError(t, err)
	col.requireExactlyOnce(t, expectedKeys(t, env.emu, "lyon", []string{"taurus-7"}, []string{watt}, from, to))
}

// BenchmarkSessionFetch measures rows/s end to end: emulator over HTTP,
// decoding, deduplication, batching.
func BenchmarkSessionFetch(b *testing.B) {
	env := newTestEnv(b, emulator.Config{Monitored: []string{"gemini-1", "gemini-2"}}, nil)
	from := emuNow.Add(-2 * time.Hour)
	total := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := env.client.NewSession(Plan{Targets: []Target{{"lyon", "gemini-1"}, {"lyon", "gemini-2"}}, Metrics: []string{watt}},
			env.opts(SessionOptions{Periods: map[string]time.Duration{watt: 10 * time.Millisecond}, RowBudget: 50_000}))
		if err != nil {
			b.Fatal(err)
		}
		rep, err := s.Fetch(context.Background(), from, from.Add(5*time.Minute), func([]Row) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		total += rep.Rows
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "rows/s")
}

// Monitored nodes (50 Hz raw frames) that the catalogue lists at 1 s, on a
// server that refuses any query over 25 000 rows: the first queries are
// sized with the fast period, the rest with the periods seen, so no query
// is refused; each series arrives once and in time order, from lanes of
// disjoint nodes.
func TestSessionMonitoredRowLimit(t *testing.T) {
	var nodes []string
	for i := 1; i <= 10; i++ {
		nodes = append(nodes, fmt.Sprintf("taurus-%d", i))
	}
	tests := []struct {
		name string
		fast map[string]time.Duration
		// maxRefusals: without FastPeriods the first guess is 50× off,
		// and refused once.
		maxRefusals int64
		lanes       int
	}{
		{"fast periods", map[string]time.Duration{watt: 20 * time.Millisecond}, 0, 2},
		{"catalogue period only", nil, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, emulator.Config{Monitored: nodes, RowLimit: 25_000}, nil)
			var plan Plan
			for _, n := range nodes {
				plan.Targets = append(plan.Targets, Target{"lyon", n})
			}
			plan.Metrics = []string{watt}
			var progress []Progress
			s, err := env.client.NewSession(plan, env.opts(SessionOptions{RowBudget: 20_000,
				Periods: map[string]time.Duration{watt: time.Second}, FastPeriods: tt.fast,
				OnProgress: func(p Progress) { progress = append(progress, p) }}))
			require.NoError(t, err)
			from := emuNow.Add(-2 * time.Hour)
			to := from.Add(200 * time.Second)
			col := newCollector()
			rep, err := s.Fetch(context.Background(), from, to, col.sink)
			require.NoError(t, err)
			col.requireExactlyOnce(t, expectedKeys(t, env.emu, "lyon", nodes, []string{watt}, from, to))
			require.Greater(t, col.rows, 90_000)
			require.LessOrEqual(t, env.emu.Stats().RowLimitErrors, tt.maxRefusals)
			t.Logf("%d rows, %d queries, %d chunks, %d splits, %d refusals", rep.Rows, rep.Queries, rep.Chunks, rep.Splits, env.emu.Stats().RowLimitErrors)
			lanes := map[string]bool{}
			for _, u := range env.log.all() {
				lanes[u.Query().Get("nodes")] = true
			}
			require.GreaterOrEqual(t, len(lanes), tt.lanes, "side by side on disjoint nodes")
			require.NotEmpty(t, progress)
			for _, p := range progress {
				require.GreaterOrEqual(t, p.EstimatedRows, p.Rows)
			}
			end := progress[len(progress)-1]
			require.Equal(t, rep.Rows, end.Rows)
			require.Equal(t, end.Rows, end.EstimatedRows, "nothing left to estimate")
			require.Greater(t, end.Bytes, int64(100*end.Rows), "the JSON read")
		})
	}
}
