package kwollect

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
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
	Site         string
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
	// Complete: Last > End - Period - Jitter, i.e. the next sample,
	// expected one period (plus jitter) after Last, falls after End.
	Complete bool
	// Unverified is the time between the window start and Last that no
	// successful query has verified (a chunk that failed, see
	// Session.Coverage); 0 normally.
	Unverified time.Duration
	// Missing lists the intervals of the window without samples (see
	// Session.Coverage); Coverage is the share of the window its samples
	// cover, 0..1.
	Missing  []Interval
	Coverage float64
	// Lag is the largest ingestion lag observed for the pair: at a query
	// covering the window's end, the time it was sent minus the end of
	// the pair's newest sample (Last + Period), when that sample was short
	// of the end. 0 if Kwollect was never seen behind.
	Lag time.Duration
	// Abandoned says Complete did not wait for the pair (Abandon).
	Abandoned bool
}

// Interval is a span of time, [From, To].
type Interval struct{ From, To time.Time }

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
//
// The inequality is strict: with 1 Hz samples on whole seconds and End on a
// whole second, the sample stamped End belongs to the window and is waited
// for.
func isComplete(rows int, last, end time.Time, period, jitter time.Duration) bool {
	return rows > 0 && last.Add(period+jitter).After(end)
}

// FetchWindow fetches q (Site, Start, End, Metrics and Nodes or Devices
// required; Summary and AsRate are refused) and delivers every row in
// [Start, End] to fn exactly once, as it streams in. It is a one-site
// Session (see NewSession) with one query at a time and no row budget.
//
// Kwollect ingests with a lag of a few seconds, so the first query (sent
// after Delay) usually misses the tail of a window that just ended. While a
// requested (node, metric) has no sample within one period of End (see
// SeriesCoverage.Complete), FetchWindow waits 0.5s, 1s, then 2s between polls and re-queries only the
// missing tail: the incomplete nodes and metrics, from the oldest of their
// newest timestamps (inclusive, because rows sharing a timestamp can be
// split across ingestion batches) to End. Rows already delivered and rows
// outside [Start, End] are dropped. A pair with no row at all is given up
// after EmptyGrace.
//
// Retryable errors (IsRetryable) are retried with the same waits (0.5s,
// 1s, 2s...), honouring Retry-After; a body cut mid-array keeps its rows and
// the retry asks only for what is still missing. Kwollect's "too much data"
// error splits the window in halves. Returns:
//   - nil when every pair is complete or given up, or at the deadline
//     (Timeout after the first query) with whatever arrived: check
//     Coverage.Complete and warn;
//   - the last error if the deadline passes before any query succeeded;
//   - a non-retryable error (4xx, ...) or fn's error at once;
//   - a *PartialError if part of a split window could not be fetched;
//   - ctx.Err() if ctx ends.
//
// The Coverage is valid in every case, and rows delivered stay delivered.
// The *Row passed to fn is reused as with Stream.
func (c *Client) FetchWindow(ctx context.Context, q Query, o FetchOptions, fn func(*Row) error) (Coverage, error) {
	cov := Coverage{Start: q.Start, End: q.End}
	if err := validateWindow(q); err != nil {
		return cov, err
	}
	o = o.withDefaults()
	s, err := c.windowSession(q, o)
	if err != nil {
		return cov, err
	}
	coverage := func() Coverage {
		s.mu.Lock()
		defer s.mu.Unlock()
		return Coverage{Start: q.Start, End: q.End, Series: s.coverage(q.Start, q.End), Queries: s.queries, Rows: s.rows}
	}
	if o.Delay > 0 {
		if err := o.Sleep(ctx, o.Delay); err != nil {
			return coverage(), ctxErr(ctx, err)
		}
	}
	deliver := func(rows []Row) (int, error) {
		for i := range rows {
			if err := fn(&rows[i]); err != nil {
				return i, err
			}
		}
		return len(rows), nil
	}
	begin := o.Clock()
	deadline := begin.Add(o.Timeout)
	_, err = s.fetch(ctx, q.Start, q.End, deadline, deliver)
	var partial *PartialError
	switch {
	case err == nil:
	case !errors.As(err, &partial):
		return coverage(), err
	case !s.anyOK:
		cv := coverage()
		return cv, fmt.Errorf("kwollect: giving up after %d queries in %s: %w",
			cv.Queries, o.Clock().Sub(begin).Round(time.Millisecond), partial.Failed[len(partial.Failed)-1].Err)
	}
	// Failed tail queries are retried until the deadline; what is still
	// missing then shows in the coverage.
	if _, err := s.complete(ctx, q.End, deadline, deliver); err != nil && !errors.As(err, new(*PartialError)) {
		return coverage(), err
	}
	if partial != nil {
		return coverage(), partial
	}
	return coverage(), nil
}

func validateWindow(q Query) error {
	if err := q.validate(); err != nil {
		return err
	}
	switch {
	case q.Start.IsZero() || q.End.IsZero():
		return errors.New("kwollect: FetchWindow needs both Start and End")
	case len(NormalizeNodes(q.Nodes))+len(normalizeList(q.Devices, false)) == 0:
		return fmt.Errorf("%w: FetchWindow needs Nodes or Devices", ErrNoTarget)
	case len(normalizeList(q.Metrics, false)) == 0:
		return errors.New("kwollect: FetchWindow needs Metrics (without them every metric of the nodes comes back)")
	case q.Summary || q.AsRate:
		// Summaries lag 10-15 min and rates restart at every tail query:
		// neither fits the tail-polling scheme.
		return errors.New("kwollect: FetchWindow does not support Summary or AsRate; use Stream")
	}
	return nil
}

// windowSession is FetchWindow's Session: one site, one query at a time
// (fn sees the rows in the order of the response), no row budget (one
// query for the window unless Kwollect finds it too large), the polling
// backoff for retries until the deadline.
func (c *Client) windowSession(q Query, o FetchOptions) (*Session, error) {
	site := strings.TrimSpace(q.Site)
	p := Plan{Metrics: q.Metrics}
	devices := map[string]map[string]bool{site: {}}
	for _, n := range NormalizeNodes(q.Nodes) {
		p.Targets = append(p.Targets, Target{Site: site, Node: n})
	}
	for _, d := range normalizeList(q.Devices, false) {
		if slices.Contains(NormalizeNodes(q.Nodes), cutAtDot(d)) {
			continue
		}
		devices[site][d] = true
		p.Targets = append(p.Targets, Target{Site: site, Node: d})
	}
	so := SessionOptions{
		RowBudget:    math.MaxInt,
		Concurrency:  1,
		Periods:      o.Periods,
		BatchSize:    defaultBatchSize,
		Retry:        RetryPolicy{Base: firstBackoff, Max: maxBackoff, Multiplier: 2},
		EmptyGrace:   o.EmptyGrace,
		QueryTimeout: o.QueryTimeout,
		OnQuery:      o.OnQuery,
		Clock:        o.Clock,
		Sleep:        o.Sleep,
	}
	if o.OnRetry != nil {
		so.OnRetry = func(_ string, err error, _ int, wait time.Duration) { o.OnRetry(err, wait) }
	}
	s, err := c.newSession(p, so, devices)
	if err != nil {
		return nil, err
	}
	s.reuseBatch = true
	s.pollDeadline = true // Timeout is a polling budget (see QueryTimeout)
	return s, nil
}

func ctxErr(ctx context.Context, err error) error {
	if e := ctx.Err(); e != nil {
		return e
	}
	return err
}
