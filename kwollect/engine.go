package kwollect

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// The fetch engine behind Session (and FetchWindow).
//
// Planning: per site, the parts of the window each (node, metric) still
// needs are cut into segments (maximal time ranges needed by the same set
// of pairs), and neighbouring segments are merged when one query is
// estimated cheaper than two (queryOverheadRows). Each merged region
// becomes one or more streams: a job stream (job_id, no nodes) when the
// job needs the region, and a node stream (nodes=..., all the metrics)
// for the other pairs, split into node groups when one second of all of
// them exceeds the row budget. Streams are cut into chunks lazily, so
// that periods learned from earlier chunks size the later ones.
//
// Verification: a query proves that every row of a pair up to its newest
// row in the response (exclusive: rows sharing that timestamp may be split
// across ingestion batches) has been delivered, because Kwollect ingests
// the rows of one (device, metric) in time order. It proves the rest of its
// window when an earlier, finished query had already seen a newer row of
// the pair; that is why each stream's newest chunk runs first. A pair
// that never returned any row is taken as empty up to settleAge before the
// query. The verified spans (pair.cov) drive deduplication, the
// planning of later calls and Watermark.

const (
	minChunk = time.Second
	// queryOverheadRows is the cost of one more query, in rows: two
	// neighbouring needs are fetched by one query unless that re-reads
	// more rows than this.
	queryOverheadRows = 2000
	// defaultJobNodes is the node count assumed for a job whose nodes
	// have not been seen yet.
	defaultJobNodes = 16
	// minBudget bounds the budget learned from "too much data" errors.
	minBudget = 1000
	// settleAge: Kwollect ingests within seconds (spec §6), so a query
	// that returns no row at all for a pair proves it has none older than
	// this before the query. Without it, a pair without a meter would keep
	// every later Fetch asking for the whole window.
	settleAge = time.Minute
)

// stream is a range of one site to fetch for one node group (or the job).
type stream struct {
	site    *siteState
	job     bool
	nodes   []*target
	metrics []string
	// lo..hi is what is left to cut into chunks: the newest chunk is taken
	// from hi, the others from lo.
	lo, hi      int64
	newestTaken bool
}

type chunk struct {
	st       *stream
	nodes    []*target // the stream's, or a half after a node split
	lo, hi   int64
	resume   int64 // start of the next attempt
	barrier  bool
	attempts int
}

// planFetch plans [lo, hi] minus what is verified. Called with s.mu held.
func (s *Session) planFetch(lo, hi int64) [][]*stream {
	var out [][]*stream
	for _, st := range s.sites {
		// Job pairs are fetched by the job query where the job itself
		// needs it (see regionStreams); elsewhere (holes) by node queries.
		var items []planItem
		for _, p := range st.order {
			items = append(items, planItem{pair: p, need: p.cov.missing(lo, hi)})
		}
		if st.jobID != 0 {
			items = append(items, planItem{job: true, need: st.jobCov.missing(lo, hi)})
		}
		out = append(out, s.streams(st, items))
	}
	return out
}

// planTail plans Complete's round: for each pending pair, from its newest
// row (or the session's origin) to to. Called with s.mu held.
func (s *Session) planTail(pending []*pair, to int64) [][]*stream {
	bySite := map[*siteState][]planItem{}
	for _, p := range pending {
		from := s.origin
		if p.rows > 0 {
			from = usOf(p.last)
		}
		if from > to {
			continue
		}
		bySite[p.site] = append(bySite[p.site], planItem{pair: p, need: []span{{from, to}}})
	}
	var out [][]*stream
	for _, st := range s.sites {
		if items := bySite[st]; len(items) > 0 {
			out = append(out, s.streams(st, items))
		}
	}
	return out
}

type planItem struct {
	pair *pair // nil for the job
	job  bool
	need []span
}

type region struct {
	lo, hi int64
	pairs  map[*pair]bool
	job    bool
}

// streams turns a site's needs into streams. Called with s.mu held.
func (s *Session) streams(st *siteState, items []planItem) []*stream {
	// Elementary segments between all the need boundaries.
	var bounds []int64
	for _, it := range items {
		for _, n := range it.need {
			bounds = append(bounds, n.lo, n.hi+1)
		}
	}
	if len(bounds) == 0 {
		return nil
	}
	slices.Sort(bounds)
	bounds = slices.Compact(bounds)
	var regions []*region
	for i := 0; i+1 < len(bounds); i++ {
		seg := &region{lo: bounds[i], hi: bounds[i+1] - 1, pairs: map[*pair]bool{}}
		for _, it := range items {
			if !needs(it.need, seg.lo) {
				continue
			}
			if it.job {
				seg.job = true
			} else {
				seg.pairs[it.pair] = true
			}
		}
		if len(seg.pairs) == 0 && !seg.job {
			continue
		}
		if n := len(regions); n > 0 && s.mergeable(st, regions[n-1], seg) {
			last := regions[n-1]
			last.hi = seg.hi
			last.job = last.job || seg.job
			for p := range seg.pairs {
				last.pairs[p] = true
			}
			continue
		}
		regions = append(regions, seg)
	}
	var out []*stream
	for _, r := range regions {
		out = append(out, s.regionStreams(st, r)...)
	}
	return out
}

func needs(need []span, t int64) bool {
	for _, n := range need {
		if n.lo <= t && t <= n.hi {
			return true
		}
	}
	return false
}

// mergeable: one query over both (and between) is estimated cheaper than two.
func (s *Session) mergeable(st *siteState, a, b *region) bool {
	u := &region{lo: a.lo, hi: b.hi, pairs: map[*pair]bool{}, job: a.job || b.job}
	for p := range a.pairs {
		u.pairs[p] = true
	}
	for p := range b.pairs {
		u.pairs[p] = true
	}
	return s.regionRows(st, u) <= s.regionRows(st, a)+s.regionRows(st, b)+queryOverheadRows
}

// regionRows estimates the rows the queries of a region return.
func (s *Session) regionRows(st *siteState, r *region) float64 {
	secs := float64(r.hi-r.lo+1) / 1e6
	nodes, metrics := crossNames(r.pairs)
	rate := 0.0
	for _, n := range nodes {
		for _, m := range metrics {
			if p := st.pairs[pairKey{n, m}]; p != nil && (!r.job || p.explicit) {
				rate += s.rate(p)
			}
		}
	}
	if r.job {
		rate += s.jobRate(st)
	}
	return rate * secs
}

// crossNames returns the nodes and metrics of a set of pairs, sorted.
func crossNames(pairs map[*pair]bool) (nodes, metrics []string) {
	ns, ms := map[string]bool{}, map[string]bool{}
	for p := range pairs {
		ns[p.key.node] = true
		ms[p.key.metric] = true
	}
	for n := range ns {
		nodes = append(nodes, n)
	}
	for m := range ms {
		metrics = append(metrics, m)
	}
	sort.Strings(nodes)
	sort.Strings(metrics)
	return nodes, metrics
}

// jobRate estimates the rows per second of a job query.
func (s *Session) jobRate(st *siteState) float64 {
	rate := 0.0
	n := 0
	for _, p := range st.order {
		if !p.explicit {
			rate += s.rate(p)
			n++
		}
	}
	if n > 0 {
		return rate
	}
	for _, m := range s.metrics {
		d := s.o.Periods[m]
		if d <= 0 {
			d = defaultPeriod
		}
		if g := s.learned[m]; g > 0 && 4*g < 3*d {
			d = g
		}
		rate += defaultJobNodes / d.Seconds()
	}
	return rate
}

// regionStreams builds the streams of a merged region.
func (s *Session) regionStreams(st *siteState, r *region) []*stream {
	var out []*stream
	if r.job {
		out = append(out, &stream{site: st, job: true, metrics: s.metrics, lo: r.lo, hi: r.hi})
	}
	var nodeNames []string
	metricSet := map[string]bool{}
	for p := range r.pairs {
		if r.job && !p.explicit {
			continue // the job query returns it
		}
		if !slices.Contains(nodeNames, p.key.node) {
			nodeNames = append(nodeNames, p.key.node)
		}
		metricSet[p.key.metric] = true
	}
	if len(nodeNames) == 0 {
		return out
	}
	// Targets in plan order, then job nodes in discovery order.
	var nodes []*target
	for _, t := range append(slices.Clone(st.targets), st.jobs...) {
		if slices.Contains(nodeNames, t.name) {
			nodes = append(nodes, t)
		}
	}
	var metrics []string
	for _, m := range s.metrics {
		if metricSet[m] {
			metrics = append(metrics, m)
		}
	}
	// Node groups: one second of a group must fit the budget.
	var group []*target
	groupRate := 0.0
	flush := func() {
		if len(group) > 0 {
			out = append(out, &stream{site: st, nodes: group, metrics: metrics, lo: r.lo, hi: r.hi})
		}
		group, groupRate = nil, 0
	}
	for _, t := range nodes {
		nr := 0.0
		for _, m := range metrics {
			if p := st.pairs[pairKey{t.name, m}]; p != nil {
				nr += s.rate(p)
			}
		}
		if len(group) > 0 && (groupRate+nr)*minChunk.Seconds() > float64(s.budget) {
			flush()
		}
		group = append(group, t)
		groupRate += nr
	}
	flush()
	return out
}

func (s *Session) queriedPairs(st *siteState, nodes []*target, metrics []string) []*pair {
	var out []*pair
	for _, t := range nodes {
		for _, m := range metrics {
			if p := st.pairs[pairKey{t.name, m}]; p != nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// streamRate estimates the rows per second of a stream's query for nodes.
func (s *Session) streamRate(c *stream, nodes []*target) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.job {
		return s.jobRate(c.site)
	}
	rate := 0.0
	for _, t := range nodes {
		for _, m := range c.metrics {
			if p := c.site.pairs[pairKey{t.name, m}]; p != nil {
				rate += s.rate(p)
			}
		}
	}
	return rate
}

// chunkLen is the duration of the next chunk of a stream, in µs: the
// budget's worth of rows, at least minChunk, at most what is left.
func (s *Session) chunkLen(c *stream, nodes []*target) int64 {
	rate := s.streamRate(c, nodes)
	s.mu.Lock()
	budget := s.budget
	s.mu.Unlock()
	whole := max(c.hi-c.lo+1, 1)
	l := float64(budget) / rate * 1e6
	if rate <= 0 || l >= float64(whole) {
		return whole
	}
	return max(int64(l), minChunk.Microseconds())
}

// execution runs the streams of one call.
type execution struct {
	s        *Session
	ctx      context.Context
	cancel   context.CancelFunc
	deadline time.Time // retry deadline (zero: none)
	to       time.Time // for Progress.Incomplete
	deliver  deliverFunc

	mu      sync.Mutex
	fatal   error
	failed  []ChunkFailure
	queries int
	retries int
	rows    int
	dropped int
	chunks  int

	duplicates, oversized, trailing int
	splits                          int
	runs                            []*siteRun
}

func (s *Session) newExecution(ctx context.Context, deadline, to time.Time, deliver deliverFunc) *execution {
	cctx, cancel := context.WithCancel(ctx)
	return &execution{s: s, ctx: cctx, cancel: cancel, deadline: deadline, to: to, deliver: deliver}
}

func (x *execution) fill(r *Report) {
	x.mu.Lock()
	defer x.mu.Unlock()
	r.Queries += x.queries
	r.Retries += x.retries
	r.Rows += x.rows
	r.Dropped += x.dropped
	r.Duplicates += x.duplicates
	r.Oversized += x.oversized
	r.Trailing += x.trailing
	r.Chunks += x.chunks
	r.Splits += x.splits
	r.FailedChunks = append(r.FailedChunks, x.failed...)
}

func (x *execution) err(parent context.Context) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	switch {
	case x.fatal != nil:
		return x.fatal
	case parent.Err() != nil:
		return parent.Err()
	case len(x.failed) > 0:
		return &PartialError{Failed: slices.Clone(x.failed)}
	}
	return nil
}

func (x *execution) abort(err error) {
	x.mu.Lock()
	if x.fatal == nil {
		x.fatal = err
	}
	runs := x.runs
	x.mu.Unlock()
	x.cancel()
	for _, r := range runs {
		r.mu.Lock()
		r.cond.Broadcast()
		r.mu.Unlock()
	}
}

func (x *execution) aborted() bool { return x.ctx.Err() != nil }

// siteRun schedules the chunks of one site.
type siteRun struct {
	x       *execution
	streams []*stream
	mu      sync.Mutex
	cond    *sync.Cond
	ready   []*chunk
	barrier bool // newest chunks first
	waiting int  // barrier chunks not finished
	running int
	done    int
}

// run executes the streams (one slice per site) and returns when all are
// done or the execution was aborted.
func (x *execution) run(plans [][]*stream) {
	defer x.cancel()
	var runs []*siteRun
	for _, streams := range plans {
		if len(streams) == 0 {
			continue
		}
		r := &siteRun{x: x, streams: streams, barrier: true}
		r.cond = sync.NewCond(&r.mu)
		runs = append(runs, r)
	}
	x.mu.Lock()
	x.runs = runs
	x.mu.Unlock()
	var workers []*siteRun
	for _, r := range runs {
		for i := 0; i < x.s.o.Concurrency; i++ {
			workers = append(workers, r)
		}
	}
	if len(workers) == 0 {
		return
	}
	var wg sync.WaitGroup
	for _, r := range workers[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.work()
		}()
	}
	workers[0].work() // in the caller's goroutine: one site, one worker = no goroutine
	wg.Wait()
}

func (r *siteRun) work() {
	for {
		c := r.next()
		if c == nil {
			return
		}
		splits := r.x.runChunk(c)
		r.finish(c, splits)
		r.x.progress()
	}
}

// next returns the next chunk to fetch, waiting while the newest chunks
// run; nil when everything is done.
func (r *siteRun) next() *chunk {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		if r.x.aborted() {
			return nil
		}
		if len(r.ready) > 0 {
			c := r.ready[0]
			r.ready = r.ready[1:]
			r.running++
			return c
		}
		if r.barrier {
			for _, st := range r.streams {
				if !st.newestTaken && st.lo <= st.hi {
					c := r.x.s.takeNewest(st)
					c.barrier = true
					r.waiting++
					r.running++
					return c
				}
			}
			if r.waiting > 0 {
				r.cond.Wait()
				continue
			}
			r.barrier = false
		}
		for _, st := range r.streams {
			if st.lo <= st.hi {
				c := r.x.s.takeFront(st)
				r.running++
				return c
			}
		}
		if r.running == 0 {
			r.cond.Broadcast()
			return nil
		}
		r.cond.Wait()
	}
}

func (r *siteRun) finish(c *chunk, splits []*chunk) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running--
	r.done++
	if c.barrier {
		r.waiting--
	}
	for _, h := range splits {
		h.barrier = c.barrier
		if h.barrier {
			r.waiting++
		}
	}
	r.ready = append(splits, r.ready...)
	r.cond.Broadcast()
}

// tiny is the remainder a chunk absorbs rather than leaving it alone.
func tiny(l int64) int64 { return min(minChunk.Microseconds(), l/10) }

func (s *Session) takeNewest(st *stream) *chunk {
	l := s.chunkLen(st, st.nodes)
	lo := max(st.lo, st.hi-l+1)
	if lo-st.lo < tiny(l) {
		lo = st.lo
	}
	c := &chunk{st: st, nodes: st.nodes, lo: lo, hi: st.hi, resume: lo}
	st.hi = lo - 1
	st.newestTaken = true
	return c
}

func (s *Session) takeFront(st *stream) *chunk {
	l := s.chunkLen(st, st.nodes)
	hi := min(st.hi, st.lo+l-1)
	if st.hi-hi < tiny(l) {
		hi = st.hi
	}
	c := &chunk{st: st, nodes: st.nodes, lo: st.lo, hi: hi, resume: st.lo}
	st.lo = hi + 1
	return c
}

// progress reports to OnProgress.
func (x *execution) progress() {
	s := x.s
	if s.o.OnProgress == nil {
		return
	}
	// Computed and reported under hooksMu, so reports arrive in order.
	s.hooksMu.Lock()
	defer s.hooksMu.Unlock()
	x.mu.Lock()
	pr := Progress{Rows: x.rows, Queries: x.queries, Retries: x.retries, FailedChunks: len(x.failed)}
	runs := x.runs
	x.mu.Unlock()
	for _, r := range runs {
		r.mu.Lock()
		pr.ChunksDone += r.done
		pr.ChunksTotal += r.done + r.running + len(r.ready)
		for _, st := range r.streams {
			if st.lo <= st.hi {
				l := s.chunkLen(st, st.nodes)
				pr.ChunksTotal += int((st.hi - st.lo + l) / l)
			}
		}
		r.mu.Unlock()
	}
	s.mu.Lock()
	for _, p := range s.allPairs() {
		if !p.abandoned && !isComplete(p.rows, p.last, x.to, s.period(p), p.gaps.jitter()) {
			pr.Incomplete++
		}
	}
	s.mu.Unlock()
	s.o.OnProgress(pr)
}

// isTooMuchData recognises Kwollect's statement timeout.
func isTooMuchData(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && strings.Contains(ae.Message, "too much data")
}

// runChunk fetches one chunk with its retries. It returns the halves of a
// chunk split after "too much data".
func (x *execution) runChunk(c *chunk) []*chunk {
	s := x.s
	x.mu.Lock()
	x.chunks++
	x.mu.Unlock()
	for {
		if x.aborted() {
			return nil
		}
		c.attempts++
		u, err, sinkErr := x.attempt(c)
		switch {
		case err == nil:
			return nil
		case sinkErr:
			x.abort(err)
			return nil
		case x.aborted():
			if errors.Is(x.ctx.Err(), context.DeadlineExceeded) {
				x.fail(c, err) // the caller's deadline: say what is missing
			}
			return nil
		case isTooMuchData(err):
			if halves := x.split(c); halves != nil {
				return halves
			}
			x.fail(c, err)
			return nil
		case !IsRetryable(err):
			x.abort(err)
			return nil
		}
		pol := s.o.Retry
		if pol.MaxAttempts > 0 && c.attempts >= pol.MaxAttempts {
			x.fail(c, err)
			return nil
		}
		s.hooksMu.Lock()
		r := s.o.Rand()
		s.hooksMu.Unlock()
		wait := max(pol.wait(c.attempts, r), retryAfterOf(err))
		if !x.deadline.IsZero() {
			remaining := x.deadline.Sub(s.o.Clock())
			if remaining <= 0 {
				x.fail(c, err)
				return nil
			}
			wait = min(wait, remaining)
		}
		x.mu.Lock()
		x.retries++
		x.mu.Unlock()
		if s.o.OnRetry != nil {
			s.hooksMu.Lock()
			s.o.OnRetry(u, err, c.attempts, wait)
			s.hooksMu.Unlock()
		}
		if err := s.o.Sleep(x.ctx, wait); err != nil {
			if !x.aborted() {
				x.fail(c, err) // a Sleep that failed on its own
			}
			return nil
		}
		if !s.resume(c) {
			return nil // everything verified after all
		}
	}
}

// fail records a chunk that could not be fetched.
func (x *execution) fail(c *chunk, err error) {
	f := ChunkFailure{Site: c.st.site.name, Metrics: slices.Clone(c.st.metrics), From: timeOf(c.resume), To: timeOf(c.hi), Err: err}
	if c.st.job {
		f.JobID = c.st.site.jobID
	}
	for _, t := range c.nodes {
		f.Nodes = append(f.Nodes, t.name)
	}
	x.mu.Lock()
	x.failed = append(x.failed, f)
	x.mu.Unlock()
}

// split halves a chunk after "too much data": in time down to
// splitMinChunk, then its node list. It lowers the budget to half the
// chunk's estimate.
func (x *execution) split(c *chunk) []*chunk {
	s := x.s
	lo, hi := c.resume, c.hi
	if s.trusted(c) {
		// The estimate rests on periods seen in the data: a budget of half
		// of it should pass. (A guessed estimate would compound with the
		// periods learned later.)
		est := float64(s.chunkRows(c, lo, hi))
		s.mu.Lock()
		s.budget = max(min(s.budget, int(est/2)), minBudget)
		s.mu.Unlock()
	}
	var out []*chunk
	switch {
	case hi-lo+1 >= 2*s.splitMinChunk.Microseconds():
		mid := lo + (hi-lo+1)/2
		out = []*chunk{
			{st: c.st, nodes: c.nodes, lo: lo, hi: mid - 1, resume: lo},
			{st: c.st, nodes: c.nodes, lo: mid, hi: hi, resume: mid},
		}
	case len(c.nodes) > 1:
		h := len(c.nodes) / 2
		out = []*chunk{
			{st: c.st, nodes: c.nodes[:h], lo: lo, hi: hi, resume: lo},
			{st: c.st, nodes: c.nodes[h:], lo: lo, hi: hi, resume: lo},
		}
	default:
		return nil
	}
	x.mu.Lock()
	x.splits++
	x.mu.Unlock()
	return out
}

// trusted reports whether the row estimate of a chunk rests on data: each
// of its pairs has a period seen in the data or is known to be empty.
func (s *Session) trusted(c *chunk) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	var pairs []*pair
	if c.st.job {
		for _, p := range c.st.site.order {
			if !p.explicit {
				pairs = append(pairs, p)
			}
		}
	} else {
		pairs = s.queriedPairs(c.st.site, c.nodes, c.st.metrics)
	}
	for _, p := range pairs {
		if p.gaps.gap == 0 && (p.rows > 0 || p.firstOK.IsZero()) {
			return false
		}
	}
	return len(pairs) > 0
}

func (s *Session) chunkRows(c *chunk, lo, hi int64) int64 {
	return int64(s.streamRate(c.st, c.nodes) * float64(hi-lo+1) / 1e6)
}

// resume moves the chunk's next attempt past what is verified; false if
// nothing is left.
func (s *Session) resume(c *chunk) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := c.hi + 1
	if c.st.job {
		r = min(r, c.st.site.jobCov.firstGap(c.lo))
		for _, p := range c.st.site.order {
			if !p.explicit {
				r = min(r, p.cov.firstGap(c.lo))
			}
		}
	} else {
		for _, p := range s.queriedPairs(c.st.site, c.nodes, c.st.metrics) {
			r = min(r, p.cov.firstGap(c.lo))
		}
	}
	c.resume = max(c.resume, r)
	return c.resume <= c.hi
}
