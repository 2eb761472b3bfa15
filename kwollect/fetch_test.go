package kwollect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// fakeClock is the injected Clock/Sleep: sleeping advances time instantly,
// so lag scenarios run in microseconds and never flake.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.sleeps = append(c.sleeps, d)
	return nil
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sleeps)
}

type fakeRow struct {
	ts          time.Time
	dev, metric string
	value       float64
	orig        []string
}

// fakeKwollect serves GET /sites/{site}/metrics from an in-memory table. A
// row is visible once the fake clock passes its timestamp plus the lag of
// its (device, metric): that is Kwollect's ingestion delay.
type fakeKwollect struct {
	clock *fakeClock
	lag   func(dev, metric string) time.Duration
	// script, if not empty, handles the next requests in order (fault
	// injection); a nil entry means "serve normally".
	script       []func(w http.ResponseWriter, r *http.Request)
	ignoreBounds bool // return rows outside [start, end] too

	mu      sync.Mutex
	rows    []fakeRow
	queries []string // raw query strings, in order
}

var paris = time.FixedZone("CEST", 2*3600)

func (f *fakeKwollect) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.queries = append(f.queries, r.URL.RawQuery)
	var step func(http.ResponseWriter, *http.Request)
	if len(f.script) > 0 {
		step, f.script = f.script[0], f.script[1:]
	}
	f.mu.Unlock()
	if step != nil {
		step(w, r)
		return
	}
	q := r.URL.Query()
	nodes := strings.Split(q.Get("nodes")+","+q.Get("devices"), ",")
	metrics := strings.Split(q.Get("metrics"), ",")
	start, err1 := parseEpoch(q.Get("start_time"))
	end, err2 := parseEpoch(q.Get("end_time"))
	if err1 != nil || err2 != nil {
		w.WriteHeader(400)
		fmt.Fprintf(w, `{"hint":null,"details":null,"code":"22007","message":"bad time %v %v"}`, err1, err2)
		return
	}
	now := f.clock.Now()
	w.Header().Set("Content-Type", "application/json")
	var out []string
	for _, row := range f.rows {
		if !slices.Contains(nodes, row.dev) || !slices.Contains(metrics, row.metric) {
			continue
		}
		if !f.ignoreBounds && (row.ts.Before(start) || row.ts.After(end)) {
			continue
		}
		if row.ts.After(now.Add(-f.lag(row.dev, row.metric))) {
			continue
		}
		labels := "{}"
		if row.orig != nil {
			b, _ := json.Marshal(row.orig)
			labels = `{"_device_orig": ` + string(b) + `}`
		}
		out = append(out, fmt.Sprintf(`{"timestamp":"%s","device_id":"%s","metric_id":"%s","value":%s,"labels":%s}`,
			row.ts.In(paris).Format("2006-01-02T15:04:05.999999-07:00"), row.dev, row.metric,
			strconv.FormatFloat(row.value, 'f', -1, 64), labels))
	}
	_, _ = io.WriteString(w, "["+strings.Join(out, ", \n")+"]")
}

func (f *fakeKwollect) Queries() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.queries)
}

// parseEpoch reads "sec[.frac]" with integer arithmetic, like the server's
// float parsing but exact.
func parseEpoch(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("missing bound")
	}
	secStr, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(secStr, 10, 64)
	if err != nil || len(frac) > 6 {
		return time.Time{}, fmt.Errorf("bad epoch %q", s)
	}
	ns := int64(0)
	if frac != "" {
		v, err := strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("bad epoch %q", s)
		}
		ns = v
	}
	return time.Unix(sec, ns), nil
}

var (
	t0   = time.Unix(1754379876, 0) // 2025-08-05T07:44:36Z
	tEnd = time.Unix(1754379886, 734_000_000)
)

const (
	watt = "wattmetre_power_watt"
	bmc  = "bmc_node_power_watt"
)

// standardRows: a 1 Hz wattmetre on whole seconds and a 5 s BMC at phase
// .3 s, from 20 s before t0 to 30 s after the end, for each node.
func standardRows(nodes ...string) []fakeRow {
	var rows []fakeRow
	for i, n := range nodes {
		orig := []string{fmt.Sprintf("wattmetre1-port%d", 40+i)}
		if i == 1 {
			orig = []string{"wattmetrev3-1-port30", "wattmetrev3-1-port31"} // a multi-PSU node
		}
		for s := -20; s <= 41; s++ {
			rows = append(rows, fakeRow{ts: t0.Add(time.Duration(s) * time.Second), dev: n, metric: watt, value: 180 + float64(s)/4, orig: orig})
		}
		for s := -20; s <= 40; s += 5 {
			rows = append(rows, fakeRow{ts: t0.Add(time.Duration(s)*time.Second + 300*time.Millisecond), dev: n, metric: bmc, value: float64(190 + s)})
		}
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].ts.Before(rows[j].ts) })
	return rows
}

type fetchEnv struct {
	clock  *fakeClock
	server *fakeKwollect
	client *Client
	urls   []string
	retry  []string
}

func newFetchEnv(t *testing.T, now time.Time, rows []fakeRow, lag func(dev, metric string) time.Duration) *fetchEnv {
	t.Helper()
	if lag == nil {
		lag = func(string, string) time.Duration { return 0 }
	}
	env := &fetchEnv{clock: &fakeClock{now: now}}
	env.server = &fakeKwollect{clock: env.clock, lag: lag, rows: rows}
	srv := httptest.NewServer(env.server)
	t.Cleanup(srv.Close)
	c, err := NewClient(Options{BaseURL: srv.URL + "/stable"})
	require.NoError(t, err)
	env.client = c
	return env
}

// windowOpts is what the tests of one window vary.
type windowOpts struct {
	// Timeout is Complete's deadline after the first query (default 60s);
	// negative: Fetch only, no polling.
	Timeout    time.Duration
	EmptyGrace time.Duration
	Periods    map[string]time.Duration
	BatchSize  int
}

// opts: the fake clock, one query at a time, and the waits 0.5s, 1s, 2s...
// without jitter or attempt limit, as the tail rounds.
func (e *fetchEnv) opts(o windowOpts) SessionOptions {
	return SessionOptions{
		Concurrency: 1,
		Periods:     o.Periods,
		EmptyGrace:  o.EmptyGrace,
		BatchSize:   o.BatchSize,
		Retry:       RetryPolicy{Base: firstBackoff, Max: maxBackoff, Multiplier: 2},
		OnQuery:     func(u string) { e.urls = append(e.urls, u) },
		OnRetry: func(_ string, err error, _ int, wait time.Duration) {
			e.retry = append(e.retry, fmt.Sprintf("%s after %v", err, wait))
		},
		Clock: e.clock.Now,
		Sleep: e.clock.Sleep,
		Rand:  func() float64 { return 0.5 },
	}
}

// window fetches one window of q as the agent does: Session.Fetch, then
// Session.Complete until Timeout after the first query. The report sums
// both calls, with the Series of the last one.
func (e *fetchEnv) window(t *testing.T, ctx context.Context, q Query, o windowOpts, sink func([]Row) error) (Report, error) {
	t.Helper()
	var plan Plan
	for _, n := range q.Nodes {
		plan.Targets = append(plan.Targets, Target{Site: q.Site, Node: n})
	}
	plan.Metrics = q.Metrics
	s, err := e.client.NewSession(plan, e.opts(o))
	require.NoError(t, err)
	timeout := o.Timeout
	if timeout == 0 {
		timeout = time.Minute
	}
	deadline := e.clock.Now().Add(timeout)
	rep, err := s.Fetch(ctx, q.Start, q.End, sink)
	if err != nil || timeout < 0 {
		return rep, err
	}
	tail, err := s.Complete(ctx, q.End, deadline, sink)
	tail.Queries += rep.Queries
	tail.Rows += rep.Rows
	tail.Retries += rep.Retries
	return tail, err
}

// fetch runs window and returns "series@time" per delivered row.
func (e *fetchEnv) fetch(t *testing.T, ctx context.Context, q Query, o windowOpts) ([]string, Report, error) {
	t.Helper()
	var got []string
	rep, err := e.window(t, ctx, q, o, func(rows []Row) error {
		for _, r := range rows {
			got = append(got, r.SeriesKey()+"@"+r.Timestamp.UTC().Format(time.RFC3339Nano))
		}
		return nil
	})
	return got, rep, err
}

// expected lists the rows of the table inside [start, end] for the given
// nodes and metrics, in the same "series@time" form.
func expected(rows []fakeRow, start, end time.Time, nodes, metrics []string) []string {
	var out []string
	for _, r := range rows {
		if r.ts.Before(start) || r.ts.After(end) || !slices.Contains(nodes, r.dev) || !slices.Contains(metrics, r.metric) {
			continue
		}
		row := Row{DeviceID: r.dev, MetricID: r.metric, DeviceOrig: r.orig}
		out = append(out, row.SeriesKey()+"@"+r.ts.UTC().Format(time.RFC3339Nano))
	}
	return out
}

func requireSameRows(t *testing.T, want, got []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, g := range got {
		require.False(t, seen[g], "row delivered twice: %s", g)
		seen[g] = true
	}
	w, g := slices.Clone(want), slices.Clone(got)
	slices.Sort(w)
	slices.Sort(g)
	require.Empty(t, cmp.Diff(w, g), "delivered rows differ")
}

func epochQuery(nodes, metrics, start, end string) string {
	return fmt.Sprintf("nodes=%s&metrics=%s&start_time=%s&end_time=%s", nodes, metrics, start, end)
}

// (a) + (g): the data is already there; one query, multi-node, FQDNs cut.
func TestFetchCompleteAtFirstQuery(t *testing.T) {
	nodes := []string{"taurus-7", "taurus-8", "taurus-9"}
	rows := standardRows(nodes...)
	env := newFetchEnv(t, tEnd.Add(30*time.Second), rows, nil)
	q := Query{Site: "lyon", Nodes: []string{"taurus-7.lyon.grid5000.fr", "taurus-8", "taurus-9"}, Metrics: []string{watt, bmc}, Start: t0, End: tEnd}
	got, cov, err := env.fetch(t, context.Background(), q, windowOpts{})
	require.NoError(t, err)
	requireSameRows(t, expected(rows, t0, tEnd, nodes, []string{watt, bmc}), got)
	require.Equal(t, []string{env.client.BaseURL() + "/sites/lyon/metrics?" +
		epochQuery("taurus-7,taurus-8,taurus-9", watt+","+bmc, "1754379876", "1754379886.734")}, env.urls)
	require.Empty(t, env.clock.Sleeps())
	require.True(t, cov.Complete())
	require.Equal(t, 1, cov.Queries)
	require.Equal(t, len(got), cov.Rows)
	require.Len(t, cov.Series, 6)
	for i, s := range cov.Series {
		wantNode, wantMetric := nodes[i/2], []string{bmc, watt}[i%2]
		require.Equal(t, wantNode, s.Node)
		require.Equal(t, wantMetric, s.Metric)
		require.True(t, s.Complete)
		if s.Metric == watt {
			require.Equal(t, 11, s.Rows)
			require.Equal(t, time.Second, s.Period)
			require.True(t, s.First.Equal(t0))
			require.True(t, s.Last.Equal(t0.Add(10*time.Second)))
			require.InDelta(t, 1.0, s.Fraction(t0, tEnd), 1e-9)
		} else {
			require.Equal(t, 3, s.Rows)
			require.Equal(t, 5*time.Second, s.Period)
		}
		require.Zero(t, s.Jitter)
	}
}

// (b): Kwollect lags; the tail is polled with growing waits, only for the
// incomplete nodes and metrics, from the watermark, and every row arrives
// exactly once.
func TestFetchLag(t *testing.T) {
	nodes := []string{"taurus-7", "taurus-8"}
	rows := standardRows(nodes...)
	lags := map[string]time.Duration{
		"taurus-7/" + watt: 4 * time.Second,
		"taurus-8/" + watt: time.Second,
		"taurus-7/" + bmc:  1500 * time.Millisecond,
		"taurus-8/" + bmc:  0,
	}
	env := newFetchEnv(t, tEnd, rows, func(dev, metric string) time.Duration { return lags[dev+"/"+metric] })
	q := Query{Site: "lyon", Nodes: nodes, Metrics: []string{watt, bmc}, Start: t0, End: tEnd}
	got, cov, err := env.fetch(t, context.Background(), q, windowOpts{})
	require.NoError(t, err)
	requireSameRows(t, expected(rows, t0, tEnd, nodes, []string{watt, bmc}), got)
	both := watt + "," + bmc
	require.Equal(t, []string{
		epochQuery("taurus-7,taurus-8", both, "1754379876", "1754379886.734"),
		// taurus-8's BMC is complete but the cross product asks for it:
		// its rows come back and are dropped as duplicates.
		epochQuery("taurus-7,taurus-8", both, "1754379881.3", "1754379886.734"),
		epochQuery("taurus-7", both, "1754379881.3", "1754379886.734"),
		// Due at the 1.5 s lag seen for the BMC: too early for the wattmetre.
		epochQuery("taurus-7", both, "1754379881.3", "1754379886.734"),
		// Only the wattmetre of taurus-7 is missing now, from its newest row.
		epochQuery("taurus-7", watt, "1754379884", "1754379886.734"),
	}, env.server.Queries())
	// Rounds due at the smallest lag seen (this clock does not advance
	// while sleeping, so the same prediction repeats), then at most 2 s.
	require.Equal(t, []time.Duration{484 * time.Millisecond, 484 * time.Millisecond, 484 * time.Millisecond, 2 * time.Second}, env.clock.Sleeps())
	require.Len(t, env.urls, 5)
	require.True(t, cov.Complete())
	require.Equal(t, 5, cov.Queries)
	require.Empty(t, env.retry)
}

// (c): one meter stops reporting; Complete gives up at the deadline
// without error and the coverage says what is missing.
func TestFetchTimeout(t *testing.T) {
	nodes := []string{"taurus-7", "taurus-8"}
	var rows []fakeRow
	for _, r := range standardRows(nodes...) {
		if r.dev == "taurus-8" && r.metric == watt && r.ts.After(t0.Add(5*time.Second)) {
			continue // dead after t0+5s
		}
		rows = append(rows, r)
	}
	env := newFetchEnv(t, tEnd.Add(time.Minute), rows, nil)
	q := Query{Site: "lyon", Nodes: nodes, Metrics: []string{watt, bmc}, Start: t0, End: tEnd}
	got, cov, err := env.fetch(t, context.Background(), q, windowOpts{Timeout: 10 * time.Second})
	require.NoError(t, err)
	requireSameRows(t, expected(rows, t0, tEnd, nodes, []string{watt, bmc}), got)
	sleeps := env.clock.Sleeps()
	require.Equal(t, []time.Duration{2 * time.Second, 2 * time.Second, 2 * time.Second, 2 * time.Second, 2 * time.Second}, sleeps,
		"a dead meter is due far away: rounds every 2s (the cap), never sleeping past the deadline")
	var total time.Duration
	for _, s := range sleeps {
		total += s
	}
	require.Equal(t, 10*time.Second, total)
	require.Equal(t, 6, cov.Queries, "a last query at the deadline")
	for _, qs := range env.server.Queries()[1:] {
		require.Equal(t, epochQuery("taurus-8", watt, "1754379881", "1754379886.734"), qs)
	}
	require.False(t, cov.Complete())
	var dead SeriesCoverage
	for _, s := range cov.Series {
		if s.Node == "taurus-8" && s.Metric == watt {
			dead = s
		} else {
			require.True(t, s.Complete, s)
		}
	}
	require.False(t, dead.Complete)
	require.Equal(t, 6, dead.Rows)
	require.True(t, dead.Last.Equal(t0.Add(5*time.Second)))
	require.InDelta(t, 6/10.734, dead.Fraction(t0, tEnd), 1e-9)
}

// (d): a node without BMC: its pair has no row at all and is given up after
// EmptyGrace, not after the full timeout.
func TestFetchEmptyGrace(t *testing.T) {
	nodes := []string{"taurus-7", "taurus-8"}
	var rows []fakeRow
	for _, r := range standardRows(nodes...) {
		if r.dev == "taurus-7" && r.metric == bmc {
			continue
		}
		rows = append(rows, r)
	}
	env := newFetchEnv(t, tEnd.Add(time.Minute), rows, nil)
	q := Query{Site: "lyon", Nodes: nodes, Metrics: []string{watt, bmc}, Start: t0, End: tEnd}
	got, cov, err := env.fetch(t, context.Background(), q, windowOpts{EmptyGrace: 3 * time.Second})
	require.NoError(t, err)
	requireSameRows(t, expected(rows, t0, tEnd, nodes, []string{watt, bmc}), got)
	require.Equal(t, []time.Duration{500 * time.Millisecond, time.Second, 1500 * time.Millisecond}, env.clock.Sleeps(),
		"the last wait stops when the grace period ends")
	require.Equal(t, 3, cov.Queries)
	for _, qs := range env.server.Queries()[1:] {
		require.Equal(t, epochQuery("taurus-7", bmc, "1754379876", "1754379886.734"), qs, "a rowless pair is asked from Start")
	}
	require.False(t, cov.Complete())
	require.Equal(t, SeriesCoverage{Site: "lyon", Node: "taurus-7", Metric: bmc, Period: time.Second,
		Missing: []Interval{{From: t0.UTC(), To: tEnd.UTC()}}}, cov.Series[0])
	require.Zero(t, cov.Series[0].Fraction(t0, tEnd))
	// EmptyGrace is capped by Timeout.
	env2 := newFetchEnv(t, tEnd.Add(time.Minute), rows, nil)
	_, cov, err = env2.fetch(t, context.Background(), q, windowOpts{Timeout: time.Second, EmptyGrace: time.Hour})
	require.NoError(t, err)
	require.Equal(t, []time.Duration{500 * time.Millisecond, 500 * time.Millisecond}, env2.clock.Sleeps())
	require.False(t, cov.Complete())
}

// (e): a 503 with Retry-After, then a body cut mid-array, then success: the
// rows of the cut body are not delivered twice.
func TestFetchRetry(t *testing.T) {
	nodes := []string{"taurus-7"}
	rows := standardRows(nodes...)
	env := newFetchEnv(t, tEnd.Add(time.Minute), rows, nil)
	env.server.script = []func(http.ResponseWriter, *http.Request){
		func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(503)
			_, _ = io.WriteString(w, "<html>Service Unavailable</html>")
		},
		func(w http.ResponseWriter, r *http.Request) {
			// The first 5 rows, then the connection drops.
			rec := httptest.NewRecorder()
			env.server.ServeHTTP(rec, r)
			body := rec.Body.String()
			cut := 0
			for i := 0; i < 5; i++ {
				cut += strings.Index(body[cut:], "}}") + 2
			}
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:cut+2])
			_ = buf.Flush()
		},
	}
	q := Query{Site: "lyon", Nodes: nodes, Metrics: []string{watt, bmc}, Start: t0, End: tEnd}
	got, cov, err := env.fetch(t, context.Background(), q, windowOpts{})
	require.NoError(t, err)
	requireSameRows(t, expected(rows, t0, tEnd, nodes, []string{watt, bmc}), got)
	require.True(t, cov.Complete())
	require.Equal(t, []time.Duration{time.Second, time.Second}, env.clock.Sleeps(), "Retry-After 1s beats the 0.5s backoff")
	require.Len(t, env.retry, 2)
	require.Contains(t, env.retry[0], "HTTP 503")
	require.Contains(t, env.retry[0], "after 1s")
	require.Contains(t, env.retry[1], "ended early after 5 rows")
	qs := env.server.Queries()
	require.Len(t, qs, 4) // 503, the cut query (re-served inside the script), the retry
	require.Equal(t, epochQuery("taurus-7", watt+","+bmc, "1754379876", "1754379886.734"), qs[0])
	// After the cut, the wattmetre has rows up to t0+3 and the BMC one row
	// at t0+0.3. The body is in time order, so every row before t0+3 was
	// read; the BMC rows before t0+3 were all visible (it had no row yet
	// and the window is a minute old, see settleAge): the retry starts at
	// t0+3, and drops the wattmetre row at t0+3 it already delivered.
	require.Equal(t, epochQuery("taurus-7", watt+","+bmc, "1754379879", "1754379886.734"), qs[3])
}

// (f): a 401 is not retried and comes back at once with its hint.
func TestFetchUnauthorizedNotRetried(t *testing.T) {
	env := newFetchEnv(t, tEnd, standardRows("taurus-7"), nil)
	env.server.script = []func(http.ResponseWriter, *http.Request){
		func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(401)
			_, _ = io.WriteString(w, "Unauthorized")
		},
	}
	q := Query{Site: "lyon", Nodes: []string{"taurus-7"}, Metrics: []string{watt}, Start: t0, End: tEnd}
	got, cov, err := env.fetch(t, context.Background(), q, windowOpts{})
	var ge *GatewayError
	require.ErrorAs(t, err, &ge)
	require.Equal(t, 401, ge.Status)
	require.Contains(t, err.Error(), "credentials")
	require.Empty(t, got)
	require.Empty(t, env.clock.Sleeps())
	require.Empty(t, env.retry)
	require.Equal(t, 1, cov.Queries)
	require.Len(t, cov.Series, 1)
	require.False(t, cov.Complete())
}

// The API never answers: the chunk fails after its attempts, and the
// error holds the last failure.
func TestFetchNeverSucceeds(t *testing.T) {
	env := newFetchEnv(t, tEnd, standardRows("taurus-7"), nil)
	for i := 0; i < 100; i++ {
		env.server.script = append(env.server.script, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(502) })
	}
	q := Query{Site: "lyon", Nodes: []string{"taurus-7"}, Metrics: []string{watt}, Start: t0, End: tEnd}
	o := env.opts(windowOpts{})
	o.Retry.MaxAttempts = 5
	s, err := env.client.NewSession(Plan{Targets: []Target{{"lyon", "taurus-7"}}, Metrics: []string{watt}}, o)
	require.NoError(t, err)
	rep, err := s.Fetch(context.Background(), q.Start, q.End, func([]Row) error { return nil })
	var pe *PartialError
	require.ErrorAs(t, err, &pe)
	require.ErrorContains(t, err, "1 chunk could not be fetched")
	require.ErrorContains(t, err, "HTTP 502")
	require.True(t, IsRetryable(err))
	require.Equal(t, 5, rep.Queries)
	require.Equal(t, 4, rep.Retries)
	require.Len(t, env.retry, 4)
	require.Equal(t, []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 2 * time.Second}, env.clock.Sleeps())
}

// Rows the server sends outside [Start, End] are dropped; a fraction-free
// end of window works.
func TestFetchDropsOutsideRows(t *testing.T) {
	rows := standardRows("taurus-7")
	env := newFetchEnv(t, tEnd.Add(time.Minute), rows, nil)
	env.server.ignoreBounds = true
	end := t0.Add(10 * time.Second)
	q := Query{Site: "lyon", Nodes: []string{"taurus-7"}, Metrics: []string{watt}, Start: t0, End: end}
	got, cov, err := env.fetch(t, context.Background(), q, windowOpts{})
	require.NoError(t, err)
	requireSameRows(t, expected(rows, t0, end, []string{"taurus-7"}, []string{watt}), got)
	require.Empty(t, env.clock.Sleeps())
	require.True(t, cov.Complete())
}

// A sink error stops the fetch at once, is not retried and comes back
// unchanged; the rows accepted before it count.
func TestFetchCallbackErrorAndCancel(t *testing.T) {
	env := newFetchEnv(t, tEnd.Add(time.Minute), standardRows("taurus-7"), nil)
	q := Query{Site: "lyon", Nodes: []string{"taurus-7"}, Metrics: []string{watt}, Start: t0, End: tEnd}
	stop := errors.New("disk full")
	n := 0
	cov, err := env.window(t, context.Background(), q, windowOpts{BatchSize: 1}, func([]Row) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 2, cov.Rows)
	require.Equal(t, 2, cov.Series[0].Rows)
	require.Equal(t, 1, cov.Queries)
	require.Empty(t, env.retry, "a sink error is not retried")

	// Cancellation during a wait returns ctx.Err() and the coverage so far.
	lagged := newFetchEnv(t, tEnd, standardRows("taurus-7"), func(string, string) time.Duration { return 3 * time.Second })
	ctx, cancel := context.WithCancel(context.Background())
	o := lagged.opts(windowOpts{})
	o.Sleep = func(ctx context.Context, d time.Duration) error { cancel(); return ctx.Err() }
	s, err := lagged.client.NewSession(Plan{Targets: []Target{{"lyon", "taurus-7"}}, Metrics: []string{watt}}, o)
	require.NoError(t, err)
	none := func([]Row) error { return nil }
	rep, err := s.Fetch(ctx, t0, tEnd, none)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Queries)
	require.Equal(t, 8, rep.Rows) // t0 .. t0+7
	tail, err := s.Complete(ctx, tEnd, lagged.clock.Now().Add(time.Minute), none)
	require.ErrorIs(t, err, context.Canceled)
	require.Zero(t, tail.Queries)
	require.False(t, tail.Complete())

	// An already-canceled context sends nothing.
	rep, err = s.Fetch(ctx, t0, tEnd, none)
	require.ErrorIs(t, err, context.Canceled)
	require.Zero(t, rep.Queries)
}

// The default Sleep really waits and honours ctx.
func TestSleepCtx(t *testing.T) {
	require.NoError(t, sleepCtx(context.Background(), time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, sleepCtx(ctx, time.Hour), context.Canceled)
	require.ErrorIs(t, sleepCtx(ctx, 0), context.Canceled)
}

// Raw devices (a PDU outlet) are targets too, sent in nodes= (Kwollect
// reads nodes and devices alike); their rows carry the device id.
func TestFetchDevices(t *testing.T) {
	var rows []fakeRow
	for s := 0; s <= 12; s++ {
		rows = append(rows, fakeRow{ts: t0.Add(time.Duration(s) * time.Second), dev: "gros-pdu3-port-1", metric: "pdu_outlet_power_watt", value: 100})
	}
	env := newFetchEnv(t, tEnd.Add(time.Minute), rows, nil)
	q := Query{Site: "nancy", Nodes: []string{"gros-pdu3-port-1"}, Metrics: []string{"pdu_outlet_power_watt"}, Start: t0, End: tEnd}
	got, cov, err := env.fetch(t, context.Background(), q, windowOpts{})
	require.NoError(t, err)
	require.Len(t, got, 11)
	require.True(t, cov.Complete())
	require.Equal(t, "gros-pdu3-port-1", cov.Series[0].Node)
	require.Equal(t, []string{"nodes=gros-pdu3-port-1&metrics=pdu_outlet_power_watt&start_time=1754379876&end_time=1754379886.734"}, env.server.Queries())
}

// Jittered timestamps: the smallest gap underestimates the period, and the
// jitter allowance keeps the fetch from waiting for a sample after End.
func TestFetchJitter(t *testing.T) {
	var rows []fakeRow
	offsets := []time.Duration{30, -40, 20, -10, 40, -30, 0, 10, -20, 30, -35} // ms around each second
	for s, off := range offsets {
		rows = append(rows, fakeRow{ts: t0.Add(time.Duration(s)*time.Second + off*time.Millisecond), dev: "n", metric: "pdu_outlet_power_watt", value: 1})
	}
	// The last sample (t0+9.965) is 0.98 s before the end: more than the
	// smallest gap (0.93 s), though the next sample (about t0+11) is after it.
	end := t0.Add(10*time.Second + 945*time.Millisecond)
	env := newFetchEnv(t, end.Add(time.Minute), rows, nil)
	q := Query{Site: "nancy", Nodes: []string{"n"}, Metrics: []string{"pdu_outlet_power_watt"}, Start: t0, End: end}
	_, cov, err := env.fetch(t, context.Background(), q, windowOpts{})
	require.NoError(t, err)
	s := cov.Series[0]
	require.Equal(t, 930*time.Millisecond, s.Period, "smallest gap")
	require.Equal(t, 130*time.Millisecond, s.Jitter, "largest regular gap 1.06 s")
	require.True(t, s.Complete)
	require.Equal(t, 1, cov.Queries)
	require.False(t, isComplete(s.Rows, s.Last, end, s.Period, 0), "without the allowance it would wait until the timeout")
}

func TestFraction(t *testing.T) {
	s := SeriesCoverage{Rows: 3, First: t0.Add(2 * time.Second), Last: t0.Add(6 * time.Second), Period: time.Second}
	require.InDelta(t, 0.5, s.Fraction(t0, t0.Add(10*time.Second)), 1e-9)
	require.InDelta(t, 1.0, SeriesCoverage{Rows: 1, First: t0.Add(-time.Second), Last: t0.Add(9 * time.Second), Period: 2 * time.Second}.Fraction(t0, t0.Add(10*time.Second)), 1e-9)
	require.Zero(t, SeriesCoverage{}.Fraction(t0, t0.Add(time.Second)))
	require.Equal(t, 1.0, s.Fraction(t0, t0))
	require.Zero(t, SeriesCoverage{Rows: 1, First: t0.Add(20 * time.Second), Last: t0.Add(20 * time.Second), Period: time.Second}.Fraction(t0, t0.Add(10*time.Second)))
}

func TestParseEpochHelper(t *testing.T) {
	for _, tm := range []time.Time{t0, tEnd, t0.Add(300 * time.Millisecond), t0.Add(time.Microsecond)} {
		got, err := parseEpoch(FormatEpoch(tm))
		require.NoError(t, err)
		require.True(t, got.Equal(tm))
	}
	_, err := url.ParseQuery("a=b")
	require.NoError(t, err)
}

// A pair with a single row in the window has no gap to infer its period
// from: SessionOptions.Periods supplies it, else 1s is assumed.
func TestFetchKnownPeriods(t *testing.T) {
	rows := standardRows("taurus-7")
	start, end := t0, t0.Add(3*time.Second) // a single BMC row, at t0+0.3
	q := Query{Site: "lyon", Nodes: []string{"taurus-7"}, Metrics: []string{bmc}, Start: start, End: end}

	env := newFetchEnv(t, end.Add(time.Minute), rows, nil)
	_, cov, err := env.fetch(t, context.Background(), q, windowOpts{Periods: map[string]time.Duration{bmc: 5 * time.Second}})
	require.NoError(t, err)
	require.True(t, cov.Complete())
	require.Equal(t, 5*time.Second, cov.Series[0].Period)
	require.Equal(t, 1, cov.Queries)

	env = newFetchEnv(t, end.Add(time.Minute), rows, nil)
	_, cov, err = env.fetch(t, context.Background(), q, windowOpts{Timeout: 2 * time.Second})
	require.NoError(t, err)
	require.False(t, cov.Complete(), "1s assumed: t0+0.3 is too old for an end at t0+3")
	require.Equal(t, time.Second, cov.Series[0].Period)
	require.Equal(t, 3, cov.Queries, "rounds 2 s apart: the row is due 2.7 s after the end")

	// Fetch alone sends one query; only Complete polls.
	env = newFetchEnv(t, end.Add(time.Minute), rows, nil)
	_, cov, err = env.fetch(t, context.Background(), q, windowOpts{Timeout: -1})
	require.NoError(t, err)
	require.Equal(t, 1, cov.Queries)
	require.Empty(t, env.clock.Sleeps())
}
