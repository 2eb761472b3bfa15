package kwollect

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// FetchOptions tunes FetchWindow. Zero values select the defaults.
type FetchOptions struct {
	// Timeout bounds how long FetchWindow keeps polling for the tail of the
	// window, counted from the first query (default 60s). A negative value
	// means a single query, no polling (retries included).
	Timeout time.Duration
	// Delay is waited before the first query (default 0). Polling makes a
	// fixed delay unnecessary; it only spares a first query that is known
	// to be too early.
	Delay time.Duration
	// QueryTimeout bounds one GET, body included (default 5 min, the order
	// of the gateway's own timeout). It is separate from Timeout so that a
	// large first query is never cut by a short polling budget.
	QueryTimeout time.Duration
	// Periods gives the known sampling period per metric id (see Periods).
	// A period seen in the data (the smallest gap between two rows of one
	// series) takes precedence; the fallback is 1s.
	Periods map[string]time.Duration
	// EmptyGrace is how long a requested (node, metric) that has returned
	// no row at all is still waited for (default 15s, at most Timeout): such
	// a pair most likely has no meter, rather than lag.
	EmptyGrace time.Duration
	// OnQuery is called with the URL before each GET (the agent logs
	// "API request should be triggered with URL: <url>").
	OnQuery func(url string)
	// OnRetry is called when a query failed with a retryable error and
	// will be repeated after wait.
	OnRetry func(err error, wait time.Duration)
	// Clock and Sleep default to time.Now and a context-aware sleep; tests
	// inject fakes so that lag scenarios run instantly.
	Clock func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

const (
	defaultFetchTimeout = 60 * time.Second
	defaultEmptyGrace   = 15 * time.Second
	defaultQueryTimeout = 5 * time.Minute
	defaultPeriod       = time.Second
	firstBackoff        = 500 * time.Millisecond
	maxBackoff          = 2 * time.Second
)

func (o FetchOptions) withDefaults() FetchOptions {
	if o.Timeout == 0 {
		o.Timeout = defaultFetchTimeout
	}
	if o.Timeout < 0 {
		o.Timeout = 0
	}
	if o.EmptyGrace <= 0 {
		o.EmptyGrace = defaultEmptyGrace
	}
	o.EmptyGrace = min(o.EmptyGrace, o.Timeout)
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = defaultQueryTimeout
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleepCtx
	}
	return o
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// backoff returns the wait before poll number step+1: 0.5s, 1s, 2s, 2s...
func backoff(step int) time.Duration {
	if step >= 2 {
		return maxBackoff
	}
	return firstBackoff << step
}

// SeriesCoverage tells how much of the window one requested (node, metric)
// pair covers. A pair may hold several series (labels, ports).
type SeriesCoverage struct {
	Node, Metric string
	Rows         int
	First, Last  time.Time // zero if no row
	// Period is the sampling period used for the completeness test: the
	// smallest gap seen in the data, else FetchOptions.Periods, else 1s.
	Period time.Duration
	// Jitter is the spread of the regular gaps seen (largest gap below
	// 1.5 Period, minus Period), at most Period/4; 0 for evenly spaced data
	// or when the period is not inferred from the data.
	Jitter time.Duration
	// Complete: Last >= End - Period - Jitter, i.e. no further sample can
	// be expected inside the window.
	Complete bool
}

// Fraction is the share of [start, end] covered by the pair, 0..1: from
// max(First, start) to min(Last+Period, end). It is 0 without rows.
func (s SeriesCoverage) Fraction(start, end time.Time) float64 {
	if s.Rows == 0 {
		return 0
	}
	span := end.Sub(start)
	if span <= 0 {
		return 1
	}
	lo := s.First
	if lo.Before(start) {
		lo = start
	}
	hi := s.Last.Add(s.Period)
	if hi.After(end) {
		hi = end
	}
	f := float64(hi.Sub(lo)) / float64(span)
	return min(max(f, 0), 1)
}

// Coverage is the outcome of FetchWindow.
type Coverage struct {
	Start, End time.Time
	Series     []SeriesCoverage // one per requested (node, metric), sorted by node then metric
	Queries    int              // GET requests sent, failed ones included
	Rows       int              // rows delivered to the callback
}

// Complete reports whether every requested (node, metric) reached the end
// of the window.
func (c Coverage) Complete() bool {
	for _, s := range c.Series {
		if !s.Complete {
			return false
		}
	}
	return true
}

// isComplete is the completeness test. The jitter allowance matters
// because Period is the SMALLEST gap: with jittered timestamps the last
// sample of the window can land slightly more than that before End, and the
// pair would otherwise wait, until the timeout, for a next sample that lies
// after End. Evenly spaced data gets no allowance, so no sample is lost.
func isComplete(rows int, last, end time.Time, period, jitter time.Duration) bool {
	return rows > 0 && !last.Before(end.Add(-period-jitter))
}

// FetchWindow fetches q (Site, Start, End, Metrics and Nodes or Devices
// required; Summary and AsRate are refused) and delivers every row in
// [Start, End] to fn exactly once, as it streams in.
//
// Kwollect ingests with a lag of a few seconds, so the first query (sent
// after Delay) usually misses the tail of a window that just ended. While a
// requested (node, metric) has no sample within one period of End (see
// SeriesCoverage.Complete), FetchWindow waits 0.5s, 1s, then 2s between polls and re-queries only the
// missing tail: the incomplete nodes and metrics, from the oldest of their
// newest timestamps (inclusive, because rows sharing a timestamp can be
// split across ingestion batches) to End. Rows already delivered (not newer
// than their series' newest delivered row) and rows outside [Start, End]
// are dropped. A pair with no row at all is given up after EmptyGrace.
//
// Retryable errors (IsRetryable) are retried on the same schedule, honouring
// Retry-After; a body cut mid-array keeps its rows and the retry asks only
// for what is still missing. Returns:
//   - nil when every pair is complete or given up, or at the deadline
//     (Timeout after the first query) with whatever arrived: check
//     Coverage.Complete and warn;
//   - the last error if the deadline passes before any query succeeded;
//   - a non-retryable error (4xx, ...) or fn's error at once;
//   - ctx.Err() if ctx ends.
//
// The Coverage is valid in every case, and rows delivered stay delivered.
// The *Row passed to fn is reused as with Stream.
func (c *Client) FetchWindow(ctx context.Context, q Query, o FetchOptions, fn func(*Row) error) (Coverage, error) {
	st, err := newFetchState(q, o)
	if err != nil {
		return Coverage{Start: q.Start, End: q.End}, err
	}
	o = st.o
	if o.Delay > 0 {
		if err := o.Sleep(ctx, o.Delay); err != nil {
			return st.coverage(), ctxErr(ctx, err)
		}
	}
	begin := o.Clock()
	deadline := begin.Add(o.Timeout)
	tq := q
	var firstOK time.Time // when the first successful query started; zero until then
	for step := 0; ; step++ {
		if err := ctx.Err(); err != nil {
			return st.coverage(), err
		}
		sent := o.Clock()
		err := c.fetchOnce(ctx, tq, st, fn)
		switch {
		case err == nil:
			if firstOK.IsZero() {
				firstOK = sent
			}
		case st.fnErr != nil:
			return st.coverage(), err
		case ctx.Err() != nil:
			return st.coverage(), ctx.Err()
		case !IsRetryable(err):
			return st.coverage(), err
		}
		now := o.Clock()
		if len(st.pending(sinceOK(firstOK, now))) == 0 {
			return st.coverage(), nil
		}
		remaining := deadline.Sub(now)
		if remaining <= 0 {
			if firstOK.IsZero() {
				return st.coverage(), fmt.Errorf("kwollect: giving up after %d queries in %s: %w",
					st.queries, now.Sub(begin).Round(time.Millisecond), err)
			}
			return st.coverage(), nil
		}
		wait := backoff(step)
		if err != nil {
			wait = max(wait, retryAfterOf(err))
		} else if g := st.graceLeft(now.Sub(firstOK)); g > 0 {
			// Only rowless pairs are left: no point sleeping past the
			// moment they are given up.
			wait = min(wait, g)
		}
		wait = min(wait, remaining)
		if err != nil && o.OnRetry != nil {
			o.OnRetry(err, wait)
		}
		if err := o.Sleep(ctx, wait); err != nil {
			return st.coverage(), ctxErr(ctx, err)
		}
		// A rowless pair may have passed its grace period during the sleep.
		pending := st.pending(sinceOK(firstOK, o.Clock()))
		if len(pending) == 0 {
			return st.coverage(), nil
		}
		tq = st.tailQuery(q, pending)
	}
}

// sinceOK is the time elapsed since the first successful query, 0 before
// it: EmptyGrace only runs once the API has answered.
func sinceOK(firstOK, now time.Time) time.Duration {
	if firstOK.IsZero() {
		return 0
	}
	return now.Sub(firstOK)
}

func ctxErr(ctx context.Context, err error) error {
	if e := ctx.Err(); e != nil {
		return e
	}
	return err
}

func (c *Client) fetchOnce(ctx context.Context, q Query, st *fetchState, fn func(*Row) error) error {
	u := c.URL(q)
	if st.o.OnQuery != nil {
		st.o.OnQuery(u)
	}
	st.queries++
	qctx, cancel := context.WithTimeout(ctx, st.o.QueryTimeout)
	defer cancel()
	_, err := c.stream(qctx, u, func(r *Row) error { return st.accept(r, fn) })
	return err
}

type pairKey struct{ node, metric string }

type pairState struct {
	key         pairKey
	rows        int
	first, last time.Time
	gap         time.Duration // smallest positive gap between rows of one series; 0 = unknown
	maxRegular  time.Duration // largest gap below 1.5 gap: measures jitter
}

// addGap records the gap between two consecutive rows of one series.
func (p *pairState) addGap(g time.Duration) {
	if p.gap == 0 || g < p.gap {
		p.gap = g
		if 2*p.maxRegular >= 3*p.gap {
			p.maxRegular = 0 // no longer "regular" against the new minimum
		}
	}
	// Gaps of 1.5 periods or more are missing samples, not jitter.
	if 2*g < 3*p.gap && g > p.maxRegular {
		p.maxRegular = g
	}
}

func (p *pairState) jitter() time.Duration {
	if p.gap == 0 || p.maxRegular <= p.gap {
		return 0
	}
	return min(p.maxRegular-p.gap, p.gap/4)
}

type seriesState struct {
	last time.Time
	pair *pairState // nil for rows of an unrequested device or metric
}

type fetchState struct {
	o          FetchOptions
	start, end time.Time
	nodes      []string // requested nodes (normalised), in order
	devices    []string // requested raw devices, in order
	metrics    []string
	isDevice   map[string]bool // target name -> came from Devices
	pairs      map[pairKey]*pairState
	series     map[string]*seriesState
	queries    int
	rows       int
	fnErr      error
}

func newFetchState(q Query, o FetchOptions) (*fetchState, error) {
	if err := q.validate(); err != nil {
		return nil, err
	}
	st := &fetchState{
		o:        o.withDefaults(),
		start:    q.Start,
		end:      q.End,
		nodes:    NormalizeNodes(q.Nodes),
		devices:  normalizeList(q.Devices, false),
		metrics:  normalizeList(q.Metrics, false),
		isDevice: map[string]bool{},
		pairs:    map[pairKey]*pairState{},
		series:   map[string]*seriesState{},
	}
	switch {
	case q.Start.IsZero() || q.End.IsZero():
		return nil, errors.New("kwollect: FetchWindow needs both Start and End")
	case len(st.nodes)+len(st.devices) == 0:
		return nil, fmt.Errorf("%w: FetchWindow needs Nodes or Devices", ErrNoTarget)
	case len(st.metrics) == 0:
		return nil, errors.New("kwollect: FetchWindow needs Metrics (without them every metric of the nodes comes back)")
	case q.Summary || q.AsRate:
		// Summaries lag 10-15 min and rates restart at every tail query:
		// neither fits the tail-polling scheme.
		return nil, errors.New("kwollect: FetchWindow does not support Summary or AsRate; use Stream")
	}
	for _, d := range st.devices {
		st.isDevice[cutAtDot(d)] = true
	}
	for _, name := range st.targets() {
		for _, m := range st.metrics {
			k := pairKey{name, m}
			st.pairs[k] = &pairState{key: k}
		}
	}
	return st, nil
}

// targets are the names rows carry in device_id: nodes, then devices (cut
// at the first '.', as the server does).
func (st *fetchState) targets() []string {
	out := slices.Clone(st.nodes)
	for _, d := range st.devices {
		if d := cutAtDot(d); !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

func (st *fetchState) period(p *pairState) time.Duration {
	if p.gap > 0 {
		return p.gap
	}
	if d := st.o.Periods[p.key.metric]; d > 0 {
		return d
	}
	return defaultPeriod
}

// accept filters one streamed row and hands it to fn.
func (st *fetchState) accept(r *Row, fn func(*Row) error) error {
	ts := r.Timestamp
	if ts.Before(st.start) || ts.After(st.end) {
		return nil
	}
	key := r.SeriesKey()
	s := st.series[key]
	if s != nil && !ts.After(s.last) {
		return nil // already delivered: bounds are inclusive and tails overlap
	}
	if err := fn(r); err != nil {
		st.fnErr = err
		return err
	}
	st.rows++
	if s == nil {
		s = &seriesState{pair: st.pairs[pairKey{cutAtDot(r.DeviceID), r.MetricID}]}
		st.series[key] = s
	} else if p := s.pair; p != nil {
		if gap := ts.Sub(s.last); gap > 0 {
			p.addGap(gap)
		}
	}
	s.last = ts
	if p := s.pair; p != nil {
		p.rows++
		if p.rows == 1 || ts.Before(p.first) {
			p.first = ts
		}
		if ts.After(p.last) {
			p.last = ts
		}
	}
	return nil
}

// pending returns the pairs still worth polling for, elapsed time after the
// first query: incomplete ones, except rowless ones past EmptyGrace.
func (st *fetchState) pending(elapsed time.Duration) []*pairState {
	var out []*pairState
	for _, p := range st.pairs {
		if isComplete(p.rows, p.last, st.end, st.period(p), p.jitter()) {
			continue
		}
		if p.rows == 0 && elapsed >= st.o.EmptyGrace {
			continue
		}
		out = append(out, p)
	}
	return out
}

// graceLeft returns, when every pending pair is rowless, the time until
// they are all given up; 0 otherwise.
func (st *fetchState) graceLeft(elapsed time.Duration) time.Duration {
	pending := st.pending(elapsed)
	for _, p := range pending {
		if p.rows > 0 {
			return 0
		}
	}
	if len(pending) == 0 {
		return 0
	}
	return st.o.EmptyGrace - elapsed
}

// tailQuery asks for the pending pairs from the oldest of their newest
// timestamps (or Start for a pair without rows) to End.
func (st *fetchState) tailQuery(q Query, pending []*pairState) Query {
	names := map[string]bool{}
	metrics := map[string]bool{}
	from := st.end
	for _, p := range pending {
		names[p.key.node] = true
		metrics[p.key.metric] = true
		t := st.start
		if p.rows > 0 {
			t = p.last
		}
		if t.Before(from) {
			from = t
		}
	}
	tq := q
	tq.Nodes, tq.Devices, tq.Metrics = nil, nil, nil
	for _, n := range st.nodes {
		if names[n] {
			tq.Nodes = append(tq.Nodes, n)
		}
	}
	for _, d := range st.devices {
		if names[cutAtDot(d)] && !slices.Contains(tq.Nodes, cutAtDot(d)) {
			tq.Devices = append(tq.Devices, d)
		}
	}
	for _, m := range st.metrics {
		if metrics[m] {
			tq.Metrics = append(tq.Metrics, m)
		}
	}
	tq.Start, tq.End = from, st.end
	return tq
}

func (st *fetchState) coverage() Coverage {
	cov := Coverage{Start: st.start, End: st.end, Queries: st.queries, Rows: st.rows}
	for _, p := range st.pairs {
		per, jit := st.period(p), p.jitter()
		cov.Series = append(cov.Series, SeriesCoverage{
			Node:     p.key.node,
			Metric:   p.key.metric,
			Rows:     p.rows,
			First:    p.first,
			Last:     p.last,
			Period:   per,
			Jitter:   jit,
			Complete: isComplete(p.rows, p.last, st.end, per, jit),
		})
	}
	slices.SortFunc(cov.Series, func(a, b SeriesCoverage) int {
		return cmp.Or(cmp.Compare(a.Node, b.Node), cmp.Compare(a.Metric, b.Metric))
	})
	return cov
}
