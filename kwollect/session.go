package kwollect

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Target is one node (or raw device id, e.g. a wattmetre port) on one site.
type Target struct{ Site, Node string }

// Plan is what a Session fetches: nodes on one or more sites, and/or the
// nodes of an OAR job, for a fixed list of metrics.
type Plan struct {
	// Targets are grouped per site; names are trimmed and cut at their
	// first '.' (FQDNs work). A node name must not appear on two sites.
	Targets []Target
	// Metrics are exact metric ids (required).
	Metrics []string
	// JobSite and JobID name an OAR job whose nodes Kwollect resolves: the
	// job is queried with job_id and no node list, and the rows' device_id
	// tell which nodes it has. Nodes that are also Targets are fetched
	// through their node queries only.
	JobSite string
	JobID   int64
}

// SessionOptions tunes a Session. Zero values select the defaults.
type SessionOptions struct {
	// RowBudget is the largest estimated number of rows of one response
	// (default 200 000). The estimate is duration / period × series.
	RowBudget int
	// Concurrency is the number of queries run at the same time on each
	// site (default 4).
	Concurrency int
	// Periods gives the expected sampling period per metric id, for chunk
	// sizing and the completeness test (e.g. 20ms for raw wattmetre frames
	// in a monitor job; see the Periods function); default 1s. A smaller
	// period seen in the data is learned and used for later chunks.
	Periods map[string]time.Duration
	// FastPeriods gives, per metric id, the shortest period it can have
	// (the catalogue's optional_period: a node in a monitor job). A
	// (node, metric) that no query has answered yet is sized with it, so
	// that the first query of a monitored node is not 50 times over the
	// budget; the periods seen in the data then size the rest.
	FastPeriods map[string]time.Duration
	// BatchSize is the number of rows per sink call (default 4096).
	BatchSize int
	// ReuseBatches says that the sink keeps neither the slice it is given
	// nor the rows in it once it returns (it may keep what the rows point
	// to: their strings, DeviceOrig and Labels are never reused). The
	// session then refills the same slice instead of allocating one per
	// batch. Default false: the sink owns each slice.
	ReuseBatches bool
	// Retry is the backoff of failed queries (zero value:
	// DefaultRetryPolicy).
	Retry RetryPolicy
	// EmptyGrace, if positive, is how long Complete keeps asking for a
	// (node, metric) that never returned any row; 0 (the default) waits for
	// it until the deadline like any other pair: Kwollect's ingestion lag
	// can exceed any fixed grace, and a pair known to have no meter is
	// better given up explicitly (Abandon).
	EmptyGrace time.Duration
	// QueryTimeout bounds one GET, body included (default 5 min, Kwollect's
	// statement timeout): it fails with a *TimeoutError (WaitQuery) and is
	// retried. The call's deadline (ctx's, and Complete's) bounds every GET
	// as well: all the attempts share it (see Fetch).
	QueryTimeout time.Duration
	// NoPrefetch turns the prefetch off: by default, when fewer node
	// groups than Concurrency run on a site (one node over a long window),
	// the free query slots send the queries of their next chunks ahead,
	// so that the server works on them meanwhile; each response is read
	// at its turn, in order (rows are never buffered ahead).
	NoPrefetch bool
	// OnQuery is called with the URL before each GET.
	OnQuery func(url string)
	// OnRetry is called when a query failed with a retryable error and is
	// repeated after wait; attempt is the number of the failed attempt.
	OnRetry func(url string, err error, attempt int, wait time.Duration)
	// OnProgress is called after each chunk (or tail query) ends.
	OnProgress func(Progress)
	// Clock, Sleep and Rand default to time.Now, a context-aware sleep and
	// math/rand/v2; tests inject fakes. The hooks above and Rand are called
	// from worker goroutines, one at a time.
	Clock func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	Rand  func() float64
}

const (
	defaultRowBudget   = 200_000
	defaultConcurrency = 4
	defaultBatchSize   = 4096
)

func (o SessionOptions) withDefaults() SessionOptions {
	if o.RowBudget <= 0 {
		o.RowBudget = defaultRowBudget
	}
	if o.Concurrency <= 0 {
		o.Concurrency = defaultConcurrency
	}
	if o.BatchSize <= 0 {
		o.BatchSize = defaultBatchSize
	}
	o.Retry = o.Retry.withDefaults()
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = defaultQueryTimeout
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleepCtx
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	return o
}

// Progress is passed to SessionOptions.OnProgress.
type Progress struct {
	Rows    int // rows delivered by the current call so far
	Queries int // GETs sent by the current call, retries included
	Retries int
	// Bytes counts the response bytes read by the current call (after any
	// gzip inflation).
	Bytes int64
	// EstimatedRows is the engine's estimate of the rows of the whole call
	// (delivered + still planned, from the periods seen in the data); 0 when
	// it has no estimate yet. It can change as periods are learned.
	EstimatedRows int
	// ChunksDone counts the chunks finished (fetched, failed or split);
	// ChunksTotal is done + running + still planned, an estimate that can
	// grow when a chunk is split.
	ChunksDone, ChunksTotal int
	FailedChunks            int
	// Incomplete is the number of (node, metric) pairs without a row within
	// one period of the end of the call's window.
	Incomplete int
}

// Done reports whether every planned chunk of the call has finished.
func (p Progress) Done() bool { return p.ChunksDone >= p.ChunksTotal }

func (p Progress) String() string {
	pct := 100.0
	if p.ChunksTotal > 0 {
		pct = 100 * float64(p.ChunksDone) / float64(p.ChunksTotal)
	}
	s := fmt.Sprintf("Kwollect: %d/%d chunks (%.0f%%), %d rows, %d queries", p.ChunksDone, p.ChunksTotal, pct, p.Rows, p.Queries)
	if p.Retries > 0 {
		s += fmt.Sprintf(", %d retries", p.Retries)
	}
	if p.FailedChunks > 0 {
		s += fmt.Sprintf(", %d chunks FAILED", p.FailedChunks)
	}
	if p.Incomplete > 0 {
		s += fmt.Sprintf(", %d series not yet complete", p.Incomplete)
	}
	return s
}

// ChunkFailure is a query that still failed after its retries.
type ChunkFailure struct {
	Site     string
	Nodes    []string // empty for a job query
	JobID    int64    // set for a job query
	Metrics  []string
	From, To time.Time // inclusive
	Err      error
}

func (f ChunkFailure) String() string {
	who := strings.Join(f.Nodes, ",")
	if f.JobID != 0 {
		who = fmt.Sprintf("job %d", f.JobID)
	}
	return fmt.Sprintf("%s on %s, %s, [%s, %s]: %v", who, f.Site, strings.Join(f.Metrics, ","),
		f.From.UTC().Format(time.RFC3339Nano), f.To.UTC().Format(time.RFC3339Nano), f.Err)
}

// PartialError is returned when some chunks could not be fetched after
// their retries while the others were: the rows of the others were
// delivered, and a later Fetch of the same window fetches only what is
// missing.
type PartialError struct {
	Failed []ChunkFailure
}

func (e *PartialError) Error() string {
	if len(e.Failed) == 1 {
		return "kwollect: 1 chunk could not be fetched: " + e.Failed[0].String()
	}
	return fmt.Sprintf("kwollect: %d chunks could not be fetched, first: %s", len(e.Failed), e.Failed[0])
}

// Unwrap returns the chunks' errors, for errors.Is and errors.As.
func (e *PartialError) Unwrap() []error {
	out := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		out[i] = f.Err
	}
	return out
}

// Report is the outcome of one Fetch or Complete call.
type Report struct {
	From, To time.Time
	// Queries counts GETs (retries included), Rows the rows delivered,
	// Retries the repeated queries, Dropped the rows received but not
	// delivered (delivered before, outside the window, or of a device or
	// metric that was not asked for).
	Queries, Rows, Retries, Dropped int
	// Anomalies of the responses, none of which fails a query:
	// Duplicates counts the rows dropped because the body repeated the
	// previous row of their series (same series and timestamp; not in
	// Dropped), Oversized the elements skipped for exceeding
	// Options.MaxRowBytes (each reported to Options.OnBadRow with its
	// index and size), and Trailing the responses with data after their
	// array (whose rows were kept).
	Duplicates, Oversized, Trailing int
	// Chunks counts the chunks run (a chunk split after Kwollect's "too
	// much data" error counts, and so do its halves); Splits counts those
	// splits.
	Chunks, Splits int
	// Series has one entry per requested (node, metric), plus one per
	// (node, metric) seen for the job of a job plan, sorted by node then
	// metric; it describes the session's state for [From, To].
	Series       []SeriesCoverage
	FailedChunks []ChunkFailure
}

// Complete reports whether every series reached To.
func (r Report) Complete() bool {
	for _, s := range r.Series {
		if !s.Complete {
			return false
		}
	}
	return true
}

// target is one name to query on a site.
type target struct {
	name string // as sent, and as rows carry it in device_id (cut at '.')
}

type pairKey struct{ node, metric string }

// gapStats infers a series' period and jitter from the gaps between its
// consecutive rows.
type gapStats struct {
	gap        time.Duration // smallest positive gap; 0 = unknown
	maxRegular time.Duration // largest gap below 1.5 gap: measures jitter
}

func (p *gapStats) addGap(g time.Duration) {
	if g <= 0 {
		return
	}
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

func (p *gapStats) jitter() time.Duration {
	if p.gap == 0 || p.maxRegular <= p.gap {
		return 0
	}
	return min(p.maxRegular-p.gap, p.gap/4)
}

// seriesInfo is the session's state of one series (device, metric, labels).
type seriesInfo struct {
	key     string
	id      uint64 // Row.Series: from nextSeriesID, unique in the process
	last    int64  // newest delivered row, µs
	hasLast bool
}

// nextSeriesID numbers the series of every session of the process, so that
// a Row.Series never names two series, even for a consumer that outlives a
// session.
var nextSeriesID atomic.Uint64

// extra is a delivered row at the top of a coverage span that is not
// covered yet: rows sharing that timestamp may still be missing.
type extra struct {
	ts  int64
	key string
}

// pair is the session's state of one (node, metric) on one site.
type pair struct {
	site     *siteState
	key      pairKey
	explicit bool // a Plan target (else discovered through the job)

	// cov holds the verified spans: every row of the pair in them has been
	// delivered. Rows at the top edge of the newest data are in extras.
	cov    spanSet
	extras []extra
	series map[string]*seriesInfo

	// seenMax is the newest row seen by a finished query: by in-order
	// ingestion, every older row was visible from then on, which proves
	// later queries of older ranges complete.
	seenMax int64
	hasSeen bool
	firstOK time.Time // first successful query that included the pair

	rows        int
	first, last time.Time
	gaps        gapStats

	// data holds the spans with samples (consecutive rows closer than the
	// merge tolerance of their attempt), for the missing intervals.
	data spanSet
	// lag is the largest ingestion lag seen: at a query that covered the
	// window's end, its send time minus the end of the newest sample.
	lag time.Duration
	// abandoned pairs are not waited for by Complete (Abandon).
	abandoned bool
}

func (p *pair) isExtra(ts int64, key string) bool {
	for _, e := range p.extras {
		if e.ts == ts && e.key == key {
			return true
		}
	}
	return false
}

func (p *pair) pruneExtras() {
	out := p.extras[:0]
	for _, e := range p.extras {
		if !p.cov.contains(e.ts) {
			out = append(out, e)
		}
	}
	p.extras = out
}

// siteState groups the pairs of one site.
type siteState struct {
	name    string
	targets []*target // explicit targets, in plan order
	byName  map[string]*target
	jobID   int64
	jobs    []*target // nodes discovered through the job, not targets
	pairs   map[pairKey]*pair
	order   []*pair
	// The job's own coverage (which windows were scanned for job nodes),
	// with the same proof rules as a pair.
	jobCov     spanSet
	jobSeen    int64
	jobHasSeen bool
}

// Session fetches a Plan over windows, remembering per (node, metric) and per
// series what was delivered, so that successive or overlapping Fetch calls
// deliver every row exactly once. Its methods must be called one at a time
// (Coverage and Watermark may also be called from the hooks).
type Session struct {
	c       *Client
	o       SessionOptions
	metrics []string
	sites   []*siteState // sorted by name
	bySite  map[string]*siteState

	callMu sync.Mutex // one Fetch/Complete at a time

	mu        sync.Mutex
	hasOrigin bool
	origin    int64 // earliest window start asked for
	maxTo     int64 // latest window end asked for
	budget    int   // RowBudget, lowered after "too much data" errors
	// assumeFast: a query sized on guessed periods was refused; pairs no
	// query has answered are sized with fastestPeriod.
	assumeFast bool
	learned    map[string]time.Duration
	queries    int // session totals
	rows       int
	anyOK      bool

	hooksMu sync.Mutex
	sinkMu  sync.Mutex

	// tailRound is the round of the tail completion of tailTo, for its
	// backoff across Complete calls.
	tailTo    time.Time
	tailRound int

	// Internal settings (tests shorten them).
	tailGrace     time.Duration // Complete's queries end by its deadline plus this
	splitMinChunk time.Duration // smallest chunk split on "too much data"
}

// NewSession checks the plan and options and returns a Session. Nothing is
// queried yet.
func (c *Client) NewSession(p Plan, o SessionOptions) (*Session, error) {
	s := &Session{c: c, o: o.withDefaults(), bySite: map[string]*siteState{}, learned: map[string]time.Duration{},
		splitMinChunk: minChunk, tailGrace: TailGrace}
	s.budget = s.o.RowBudget
	s.metrics = normalizeList(p.Metrics, false)
	if len(s.metrics) == 0 {
		return nil, errors.New("kwollect: the plan needs Metrics (without them every metric of the nodes comes back)")
	}
	site := func(name string) *siteState {
		st := s.bySite[name]
		if st == nil {
			st = &siteState{name: name, byName: map[string]*target{}, pairs: map[pairKey]*pair{}}
			s.bySite[name] = st
			s.sites = append(s.sites, st)
		}
		return st
	}
	where := map[string]string{} // node -> site
	for _, t := range p.Targets {
		sn := strings.TrimSpace(t.Site)
		name := cutAtDot(strings.TrimSpace(t.Node))
		if sn == "" {
			return nil, fmt.Errorf("kwollect: target %q has no site (one of %s)", t.Node, strings.Join(Sites, ", "))
		}
		if name == "" {
			continue
		}
		if other, ok := where[name]; ok && other != sn {
			return nil, fmt.Errorf("kwollect: node %q is listed on two sites (%s and %s)", name, other, sn)
		}
		where[name] = sn
		st := site(sn)
		if st.byName[name] != nil {
			continue
		}
		tg := &target{name: name}
		st.byName[name] = tg
		st.targets = append(st.targets, tg)
		for _, m := range s.metrics {
			st.newPair(name, m, true)
		}
	}
	switch js := strings.TrimSpace(p.JobSite); {
	case p.JobID != 0 && js == "":
		return nil, fmt.Errorf("kwollect: job %d needs JobSite (the site of the OAR job)", p.JobID)
	case p.JobID == 0 && js != "":
		return nil, fmt.Errorf("kwollect: JobSite %q given without JobID", js)
	case p.JobID < 0:
		return nil, fmt.Errorf("kwollect: bad job id %d", p.JobID)
	case p.JobID != 0:
		site(js).jobID = p.JobID
	}
	if len(s.sites) == 0 {
		return nil, fmt.Errorf("%w: the plan has no target and no job", ErrNoTarget)
	}
	slices.SortFunc(s.sites, func(a, b *siteState) int { return cmp.Compare(a.name, b.name) })
	return s, nil
}

func (st *siteState) newPair(node, metric string, explicit bool) *pair {
	p := &pair{site: st, key: pairKey{node, metric}, explicit: explicit, series: map[string]*seriesInfo{}}
	st.pairs[p.key] = p
	st.order = append(st.order, p)
	return p
}

// allPairs lists the pairs of every site, in site then creation order.
func (s *Session) allPairs() []*pair {
	var out []*pair
	for _, st := range s.sites {
		out = append(out, st.order...)
	}
	return out
}

// period is the period of the completeness test: the smallest gap seen in
// the data, else Periods, else 1s.
func (s *Session) period(p *pair) time.Duration {
	if p.gaps.gap > 0 {
		return p.gaps.gap
	}
	if d := s.o.Periods[p.key.metric]; d > 0 {
		return d
	}
	return defaultPeriod
}

// estPeriod is the period used to size chunks: Periods (or 1s), unless the
// data showed a clearly smaller one (below 3/4 of it: jitter does not
// count) for this pair, or for any pair of the metric; FastPeriods for a
// pair no query has answered yet (fastestPeriod once a guess was refused).
func (s *Session) estPeriod(p *pair) time.Duration {
	conf := s.o.Periods[p.key.metric]
	if conf <= 0 {
		conf = defaultPeriod
	}
	if g := p.gaps.gap; g > 0 && 4*g < 3*conf {
		return g
	}
	if p.gaps.gap == 0 && p.rows == 0 && p.firstOK.IsZero() {
		// Nothing seen yet: the node may be in a monitor job whatever the
		// catalogue's period, so size for the fastest frames rather than
		// send a query Kwollect refuses after its statement timeout.
		if d := s.o.FastPeriods[p.key.metric]; d > 0 {
			return min(conf, d)
		}
		if s.assumeFast {
			return min(conf, fastestPeriod)
		}
	}
	if g := s.learned[p.key.metric]; g > 0 && p.gaps.gap == 0 && 4*g < 3*conf {
		return g
	}
	return conf
}

// rate is the estimated rows per second of a pair.
func (s *Session) rate(p *pair) float64 {
	n := max(len(p.series), 1)
	return float64(n) / s.estPeriod(p).Seconds()
}

// Coverage returns the current state of every (node, metric), with
// Complete evaluated against to, sorted by node then metric. Rows, First
// and Last count everything the session delivered; Unverified is the time
// within [from, min(Last, to)] that no successful query has verified yet
// (failed chunks, or chunk edges not proven yet).
func (s *Session) Coverage(from, to time.Time) []SeriesCoverage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.coverage(from, to)
}

func (s *Session) coverage(from, to time.Time) []SeriesCoverage {
	var out []SeriesCoverage
	for _, p := range s.allPairs() {
		per, jit := s.period(p), p.gaps.jitter()
		sc := SeriesCoverage{
			Site:      p.site.name,
			Node:      p.key.node,
			Metric:    p.key.metric,
			Rows:      p.rows,
			First:     p.first,
			Last:      p.last,
			Period:    per,
			Jitter:    jit,
			Complete:  isComplete(p.rows, p.last, to, per, jit),
			Lag:       p.lag,
			Abandoned: p.abandoned,
		}
		if p.rows > 0 {
			hi := min(usOf(p.last), usOf(to)) - 1
			for _, m := range p.cov.missing(ceilUS(from), hi) {
				sc.Unverified += m.dur()
			}
		}
		sc.Missing, sc.Coverage = p.missing(from, to, per, jit, sc.Complete)
		out = append(out, sc)
	}
	slices.SortFunc(out, func(a, b SeriesCoverage) int {
		return cmp.Or(cmp.Compare(a.Node, b.Node), cmp.Compare(a.Metric, b.Metric), cmp.Compare(a.Site, b.Site))
	})
	return out
}

// missing returns the intervals of [from, to] without samples: before the
// first sample if it comes more than a period (plus jitter) after from,
// between samples more than two periods apart (one missing sample at 1 Hz
// is jitter, not a gap), and after the last one unless the pair is
// complete. An interval starts one period after the sample before it
// (that sample covers its period) and ends at the sample after it, or at
// the window's edges: it is the time no sample covers. coverage is the
// share of the window the samples cover, 0..1.
func (p *pair) missing(from, to time.Time, per, jit time.Duration, complete bool) ([]Interval, float64) {
	lo, hi := ceilUS(from), usOf(to)
	window := hi - lo
	if window <= 0 {
		if complete {
			return nil, 1
		}
		return nil, 0
	}
	perUS, jitUS := per.Microseconds(), jit.Microseconds()
	var out []Interval
	var lost int64
	add := func(a, b int64) {
		if b <= a {
			return
		}
		out = append(out, Interval{From: timeOf(a), To: timeOf(b)})
		lost += b - a
	}
	prev, hasPrev := int64(0), false
	// From one period before from: a sample there covers the window's
	// start (a 1 Hz mean of the second a short command ran in).
	for _, sp := range p.data.clip(lo-perUS, hi) {
		switch {
		case !hasPrev && sp.lo-lo > perUS+jitUS:
			add(lo, sp.lo)
		case hasPrev && sp.lo-prev > 2*perUS:
			add(max(prev+perUS, lo), sp.lo)
		}
		prev, hasPrev = sp.hi, true
	}
	switch {
	case !hasPrev:
		add(lo, hi)
	case !complete:
		add(max(min(prev+perUS, hi), lo), hi)
	}
	cov := 1 - float64(lost)/float64(window)
	return out, min(max(cov, 0), 1)
}

// fastestPeriod is the shortest period of Kwollect's metrics (raw
// wattmetre frames at 100 Hz in a monitor job).
const fastestPeriod = 10 * time.Millisecond

// SetPeriod tells the session the sampling period of a (node, metric)
// known from outside its windows (a pre-flight query, rows just before
// the window): it counts as if seen in the data, so a 5 s series is
// complete 5 s before the end even with a single row in the window.
func (s *Session) SetPeriod(node, metric string, period time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.sites {
		if p := st.pairs[pairKey{cutAtDot(node), metric}]; p != nil {
			p.gaps.addGap(period)
		}
	}
}

// Abandon stops Complete from waiting for a (node, metric) that is known
// to have no data (the catalogue says the node has no such meter).
func (s *Session) Abandon(node, metric string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.sites {
		if p := st.pairs[pairKey{cutAtDot(node), metric}]; p != nil {
			p.abandoned = true
		}
	}
}

// Watermark returns the oldest, across the (node, metric) pairs that have
// data, of the first instant not verified yet: normally the pair's newest
// row, earlier if a chunk failed; at most the end of the latest window
// fetched. Zero if no pair has data yet. Run mode polls
// Fetch(ctx, max(windowStart, Watermark()), now, sink): the window overlaps
// what was delivered, and the session neither asks for the verified part
// again nor delivers its rows twice.
func (s *Session) Watermark() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.hasOrigin {
		return time.Time{}
	}
	var w int64
	found := false
	for _, p := range s.allPairs() {
		if p.rows == 0 {
			continue
		}
		g := p.cov.firstGap(s.origin)
		if !found || g < w {
			w, found = g, true
		}
	}
	if !found {
		return time.Time{}
	}
	return timeOf(min(w, s.maxTo))
}

// Fetch delivers every row of [from, to] (inclusive) that the session has
// not delivered before, for all targets and metrics, to sink.
//
// Queries are grouped per site (one query carries many nodes and all the
// metrics); the window is split into time chunks [a, b-1µs] whose estimated
// rows stay within RowBudget (the node list is split too when one second of
// all of them exceeds it). A window of more than one chunk starts with a
// probe of its newest seconds (rows not delivered: they prove the older
// chunks complete and give the periods that size them), and is split into
// up to Concurrency lanes of disjoint nodes that run side by side, each
// lane's chunks one after the other. Only the parts of [from, to] not
// verified by earlier calls are queried.
//
// sink receives the rows in batches of at most BatchSize, one call at a
// time, from worker goroutines; it owns the slices it gets. The rows of
// each series come in time order, through chunks, splits, retries and
// Complete; the series of different lanes interleave. (A later call that
// fills a hole left by a failed chunk delivers rows older than those
// delivered after the hole.) An error from sink
// stops the fetch and is returned unchanged; the batch it refused counts as
// not delivered.
//
// A query failing with a retryable error (IsRetryable) is retried with
// backoff; its retry resumes after what was delivered and drops what was
// already delivered. Kwollect's "too much data" error splits the chunk in
// halves (down to one second, then the node list) and lowers the budget.
// A non-retryable error (401, 4xx, ...) stops everything and is returned
// as is. A chunk still failing after its retries is reported in
// Report.FailedChunks while the others go on; Fetch then returns a
// *PartialError. Rows delivered stay delivered in every case, and the
// session state says what is verified.
//
// Deadlines: a deadline of ctx is the budget of the whole call. Every GET
// ends by it (its timeout is min(QueryTimeout, time left)), no GET or
// retry starts after it, and Fetch returns at most about a second after it
// (measured: a few ms), plus the time a sink call in progress takes,
// whatever the server does (no answer, a stalled or trickling body). The
// chunks not fetched by then are in Report.FailedChunks. Client options
// detect a dead server without a deadline too: HeaderTimeout and
// StallTimeout.
//
// The error tells the caller why the call ended early:
// errors.Is(err, context.Canceled) when ctx was cancelled (Fetch returns
// at once; the rows given to sink are counted in Report.Rows and the
// coverage verifies only up to them), errors.Is(err,
// context.DeadlineExceeded) when the deadline passed, and otherwise the
// server's failures (*APIError, *GatewayError, *NetworkError,
// *TruncatedError, *TimeoutError inside them, in a *PartialError).
func (s *Session) Fetch(ctx context.Context, from, to time.Time, sink func([]Row) error) (Report, error) {
	if sink == nil {
		return Report{From: from, To: to}, errors.New("kwollect: Fetch needs a sink")
	}
	s.callMu.Lock()
	defer s.callMu.Unlock()
	return s.fetch(ctx, from, to, time.Time{}, batchSink(sink))
}

// Complete fetches the tail that Kwollect had not ingested yet: while a
// (node, metric) has no row within one period (plus its jitter) of to, it
// waits until rows are due (to plus the smallest ingestion lag seen among
// the pending pairs, plus 50 ms; at least 250 ms after a miss, at most 2 s) or,
// when a pending pair has no lag seen yet, 0.5s, 1s, then 2s between
// rounds, and queries, per site, only the
// incomplete nodes and metrics from the oldest of their newest rows (from
// the start of the session's first window for a pair without rows, which is
// given up EmptyGrace after its first successful query when EmptyGrace is
// set). Abandoned pairs are not waited for. The backoff goes on across
// Complete calls for the same window (a caller may wait in steps). It
// stops when every pair is complete or given up, or at deadline, which is not an
// error: the report's Series say what is missing. It returns a
// *PartialError if the last round had failed queries, and non-retryable or
// sink errors at once. Fetch must have been called first.
//
// deadline is when Complete stops polling: a round due at it still sends
// its queries, and every query Complete sends ends by deadline + TailGrace
// (5s), none (retries included) starting after deadline; so Complete
// returns at most about TailGrace after deadline whatever the server does
// (measured against a server that never answers: a few ms after
// deadline + TailGrace). A deadline of ctx is a strict budget as for
// Fetch: callers that must end by a time should put it in ctx (Complete
// then returns within about a second of it). A query cut by either makes a
// *PartialError for which errors.Is(err, context.DeadlineExceeded) holds
// (or ctx's error); a cancelled ctx gives context.Canceled.
func (s *Session) Complete(ctx context.Context, to, deadline time.Time, sink func([]Row) error) (Report, error) {
	if sink == nil {
		return Report{To: to}, errors.New("kwollect: Complete needs a sink")
	}
	s.callMu.Lock()
	defer s.callMu.Unlock()
	return s.complete(ctx, to, deadline, batchSink(sink))
}

// retrier returns the session's retry loop (see retrier.run). counted,
// if not nil, is called at each retry, before OnRetry.
func (s *Session) retrier(counted func()) *retrier {
	return &retrier{policy: s.o.Retry, clock: s.o.Clock, sleep: s.o.Sleep, rand: s.o.Rand, hooks: &s.hooksMu,
		onRetry: func(u string, err error, attempt int, wait time.Duration) {
			if counted != nil {
				counted()
			}
			if s.o.OnRetry != nil {
				s.o.OnRetry(u, err, attempt, wait)
			}
		}}
}

// TailGrace is how long after its deadline a query sent by Complete may
// run (see Complete).
const TailGrace = 5 * time.Second

// deliverFunc hands rows to the caller and says how many it accepted.
type deliverFunc func(rows []Row) (int, error)

func batchSink(sink func([]Row) error) deliverFunc {
	return func(rows []Row) (int, error) {
		if err := sink(rows); err != nil {
			return 0, err
		}
		return len(rows), nil
	}
}

func (s *Session) fetch(ctx context.Context, from, to, deadline time.Time, deliver deliverFunc) (Report, error) {
	rep := Report{From: from, To: to}
	if to.Before(from) {
		return rep, fmt.Errorf("kwollect: end %s is before start %s", to.UTC().Format(time.RFC3339Nano), from.UTC().Format(time.RFC3339Nano))
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	lo, hi := ceilUS(from), usOf(to)
	s.mu.Lock()
	if !s.hasOrigin || lo < s.origin {
		s.origin = lo
	}
	if !s.hasOrigin || hi > s.maxTo {
		s.maxTo = hi
	}
	s.hasOrigin = true
	plans := s.planFetch(lo, hi)
	s.mu.Unlock()
	x := s.newExecution(ctx, deadline, to, deliver)
	x.run(plans)
	x.fill(&rep)
	rep.Series = s.Coverage(from, to)
	return rep, x.err(ctx)
}

func (s *Session) complete(ctx context.Context, to, deadline time.Time, deliver deliverFunc) (Report, error) {
	s.mu.Lock()
	origin, ok := s.origin, s.hasOrigin
	s.mu.Unlock()
	rep := Report{From: timeOf(origin), To: to}
	if !ok {
		return rep, errors.New("kwollect: Complete needs a Fetch first (it only fetches the tail)")
	}
	var lastFailed []ChunkFailure
	finish := func(err error) (Report, error) {
		rep.Series = s.Coverage(rep.From, to)
		rep.FailedChunks = lastFailed
		if err == nil && len(lastFailed) > 0 {
			err = &PartialError{Failed: lastFailed}
		}
		return rep, err
	}
	toUS := usOf(to)
	s.mu.Lock()
	if !s.tailTo.Equal(to) {
		s.tailTo, s.tailRound = to, 0
	}
	s.mu.Unlock()
	for ; ; s.nextTailRound() {
		step := s.tailRoundNow()
		if err := ctx.Err(); err != nil {
			return finish(err)
		}
		now := s.o.Clock()
		pending, grace := s.pending(to, now)
		if len(pending) == 0 {
			return finish(nil)
		}
		remaining := deadline.Sub(now)
		if remaining <= 0 {
			return finish(nil)
		}
		wait := backoff(step)
		if due, ok := s.due(pending, to); ok {
			// Sleep until the rows are due at the lag seen, not in fixed
			// steps: exec ends about when Kwollect has the last second.
			floor := tailMinWait
			if step > 0 {
				floor = tailRetryWait // due already passed once: do not hammer
			}
			wait = min(max(due.Sub(now)+tailMinWait, floor), maxBackoff)
		}
		if grace > 0 {
			// Only rowless pairs are left: no point sleeping past the
			// moment they are given up.
			wait = min(wait, grace)
		}
		wait = min(wait, remaining)
		if err := s.o.Sleep(ctx, wait); err != nil {
			return finish(ctxErr(ctx, err))
		}
		// A rowless pair may have passed its grace period during the sleep.
		pending, _ = s.pending(to, s.o.Clock())
		if len(pending) == 0 {
			return finish(nil)
		}
		s.mu.Lock()
		plans := s.planTail(pending, toUS)
		s.mu.Unlock()
		x := s.newExecution(ctx, deadline, to, deliver)
		x.run(plans)
		x.fill(&rep)
		lastFailed = x.failed
		if x.fatal != nil || ctx.Err() != nil {
			return finish(x.err(ctx))
		}
	}
}

// Waits of the tail completion when the rows' arrival can be predicted
// (see due): a margin after the predicted time, and at least
// tailRetryWait between rounds once a prediction missed.
const (
	tailMinWait   = 50 * time.Millisecond
	tailRetryWait = 250 * time.Millisecond
)

// due predicts when the last rows of the first pending pair will be
// visible: the end of the window plus the ingestion lag seen for it (a
// meter that died has a huge lag and does not hold back the others).
// False when a pending pair has no rows or no lag yet.
func (s *Session) due(pending []*pair, to time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var due time.Time
	for _, p := range pending {
		if p.rows == 0 || p.lag <= 0 {
			return time.Time{}, false
		}
		if d := to.Add(p.lag); due.IsZero() || d.Before(due) {
			due = d
		}
	}
	return due, !due.IsZero()
}

func (s *Session) nextTailRound() {
	s.mu.Lock()
	s.tailRound++
	s.mu.Unlock()
}

func (s *Session) tailRoundNow() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tailRound
}

// pending returns the pairs Complete still waits for and, when they all
// have no row at all, the time until the last of them is given up (else 0).
func (s *Session) pending(to, now time.Time) ([]*pair, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*pair
	var grace time.Duration
	allRowless := true
	for _, p := range s.allPairs() {
		if isComplete(p.rows, p.last, to, s.period(p), p.gaps.jitter()) {
			continue
		}
		if p.abandoned {
			continue
		}
		if p.rows == 0 {
			if !p.firstOK.IsZero() && s.o.EmptyGrace > 0 {
				left := s.o.EmptyGrace - now.Sub(p.firstOK)
				if left <= 0 {
					continue
				}
				grace = max(grace, left)
			} else {
				allRowless = false // never asked successfully, or no grace: none running
			}
		} else {
			allRowless = false
		}
		out = append(out, p)
	}
	if !allRowless {
		grace = 0
	}
	return out, grace
}
