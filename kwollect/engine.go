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

// The fetch engine behind Session.
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
// the pair; that is why a stream of more than one chunk starts with a
// probe: a small query of its newest seconds whose rows are not delivered
// (they come again, in order, with the last chunk) but which records the
// newest row of each pair and the periods seen. A pair that never returned
// any row is taken as empty up to settleAge before the query. The verified
// spans (pair.cov) drive deduplication, the planning of later calls and
// Watermark.
//
// Order: the rows of each series are delivered in time order. A stream's
// chunks run one at a time, oldest first (with its splits before what
// follows them); the concurrency comes from lanes: before its first chunk,
// a stream of several chunks is split into up to Concurrency streams of
// disjoint nodes, which run side by side. The regions of a site (holes
// left by earlier calls) run one after the other.
//
// Prefetch: when fewer streams run than Concurrency (one node, fewer nodes
// than Concurrency), the free query slots send the GETs of a running
// stream's next chunks ahead of their turn, in order (stream.pre): the
// server builds their results meanwhile, and each response waits unread
// (in the socket and the server, not in memory) until every earlier chunk
// of its stream is delivered; its stall and query timeouts start then.
// Running and prefetched chunks share the Concurrency slots of the site.
// A stream prefetches only after its probe (which sizes the chunks and
// proves them) and outside Complete (tail rounds, a deadline). A
// prefetched chunk is a chunk like any other at its turn: a failure is
// retried then, a refusal's halves run before the chunks that follow, and
// the split halves of an earlier chunk run before it. The verified spans a
// prefetched query snapshots at send stay valid: the chunks before it only
// verify their own, earlier, ranges.

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
	// lo..hi is what is left to cut into chunks, from lo.
	lo, hi int64
	region int  // index of its region in the plan: regions run in order
	probed bool // its probe ran (or none was needed)
	laned  bool // split into lanes (or left whole)
	// running is its chunk in flight (0 or 1), queued its split halves.
	running int
	queued  int
	// pre are the chunks taken after the running one (and its halves)
	// whose queries were sent ahead (prefetch), oldest first.
	pre []*chunk
}

// done: nothing of the stream is left to run.
func (st *stream) done() bool {
	return st.lo > st.hi && st.running == 0 && st.queued == 0 && len(st.pre) == 0
}

type chunk struct {
	st     *stream
	nodes  []*target // the stream's, or a half after a node split
	lo, hi int64
	resume int64 // start of the next attempt
	// probe: the rows are read for the proof and the periods, not
	// delivered (see the top of this file).
	probe bool
	// giveBack: refused on a guessed estimate; its range goes back to the
	// front of its stream, to be cut again with the fast periods.
	giveBack bool
	est      int64 // estimated rows when it started (progress)
	// pf is its query sent ahead of its turn (prefetch), until used.
	pf *query
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
	for i, r := range regions {
		for _, sm := range s.regionStreams(st, r) {
			sm.region = i
			out = append(out, sm)
		}
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
	bytes                           int64
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
	ready   []*chunk // split halves, oldest first per stream
	running int
	// parked counts the chunks in the streams' pre: sent ahead or being
	// sent, their query slots taken.
	parked int
	// runningEst is the estimated rows of the chunks running.
	runningEst int64
	done       int
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
		r := &siteRun{x: x, streams: streams}
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
	// Aborted: close the responses still waiting for their turn.
	for _, r := range runs {
		for _, st := range r.streams {
			for _, c := range st.pre {
				c.dropPrefetch()
			}
			st.pre = nil
		}
	}
}

func (r *siteRun) work() {
	for {
		c, ahead := r.next()
		if c == nil {
			return
		}
		if ahead != nil {
			// c may be at its turn in another worker already, waiting
			// for ahead.done: only ahead is ours.
			r.x.begin(c, ahead, true)
			close(ahead.done)
			continue
		}
		splits := r.x.runChunk(c)
		r.finish(c, splits)
		r.x.progress()
	}
}

// next returns the next chunk to fetch, waiting while the chunks it must
// follow run; nil when everything is done. ahead: send the chunk's query
// ahead of its turn (prefetch) into it (its pf).
func (r *siteRun) next() (c *chunk, ahead *query) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		if r.x.aborted() {
			return nil, nil
		}
		if c := r.pick(); c != nil {
			c.st.running++
			r.running++
			if !c.probe && c.pf == nil {
				c.est = r.x.s.chunkRows(c, c.resume, c.hi)
				r.runningEst += c.est
			}
			return c, nil
		}
		if c := r.pickAhead(); c != nil {
			return c, c.pf
		}
		if r.running == 0 && r.parked == 0 && len(r.ready) == 0 {
			r.cond.Broadcast()
			return nil, nil
		}
		r.cond.Wait()
	}
}

// pickAhead takes the next chunk of a running stream to send ahead, when a
// query slot is free. Called with r.mu held.
func (r *siteRun) pickAhead() *chunk {
	s := r.x.s
	if s.o.NoPrefetch || !r.x.deadline.IsZero() || r.running+r.parked >= s.o.Concurrency {
		return nil
	}
	var best *stream
	for _, st := range r.streams {
		// laned: its probe ran and its first chunk was taken. A stream
		// with chunks left and no prefetch to use is running (pick).
		if st.done() || !st.laned || st.lo > st.hi || st.running == 0 {
			continue
		}
		if best != nil && best.region != st.region {
			break
		}
		if best == nil || len(st.pre) < len(best.pre) {
			best = st
		}
	}
	if best == nil {
		return nil
	}
	c := s.takeFront(best)
	c.pf = &query{done: make(chan struct{})}
	c.est = s.chunkRows(c, c.resume, c.hi)
	r.runningEst += c.est
	best.pre = append(best.pre, c)
	r.parked++
	return c
}

// pick chooses a chunk that keeps every series in time order: one chunk
// per stream at a time, its split halves before its next chunk, the
// regions in order. Called with r.mu held.
func (r *siteRun) pick() *chunk {
	s := r.x.s
	region := -1 // the oldest region not done
	for _, st := range r.streams {
		if !st.done() {
			region = st.region
			break
		}
	}
	// A new query needs a free slot; a prefetched chunk has its own.
	free := r.running+r.parked < s.o.Concurrency
	for i := 0; i < len(r.streams); i++ {
		st := r.streams[i]
		if st.region != region || st.running > 0 {
			continue
		}
		if st.queued > 0 {
			if !free {
				continue
			}
			for j, c := range r.ready {
				if c.st == st {
					r.ready = slices.Delete(r.ready, j, j+1)
					st.queued--
					return c
				}
			}
		}
		if len(st.pre) > 0 {
			c := st.pre[0]
			st.pre = slices.Delete(st.pre, 0, 1)
			r.parked--
			return c
		}
		if st.lo > st.hi || !free {
			continue
		}
		if !st.probed {
			st.probed = true
			if c := s.takeProbe(st); c != nil {
				return c
			}
		}
		if !st.laned {
			st.laned = true
			if lanes := s.lanes(st); len(lanes) > 1 {
				r.streams = slices.Replace(r.streams, i, i+1, lanes...)
				st = lanes[0]
			}
		}
		return s.takeFront(st)
	}
	return nil
}

func (r *siteRun) finish(c *chunk, splits []*chunk) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running--
	r.runningEst -= c.est
	c.st.running--
	r.done++
	if c.giveBack {
		c.giveBack = false
		if c.hi+1 == c.st.lo && c.st.queued == 0 {
			// The stream's chunks run one at a time: c was its front.
			c.st.lo = c.resume
		} else {
			// Rows after c are planned already: keep c whole (a refusal
			// again halves it).
			splits = []*chunk{c}
		}
	}
	c.st.queued += len(splits)
	r.ready = append(splits, r.ready...)
	r.cond.Broadcast()
}

// tiny is the remainder a chunk absorbs rather than leaving it alone.
func tiny(l int64) int64 { return min(minChunk.Microseconds(), l/10) }

// probeShare: a probe's estimated rows are at most the budget divided by
// it (its rows are read twice).
const probeShare = 8

// maxProbe bounds a probe's duration: enough to reach past a short
// ingestion lag, small enough to cost little.
const maxProbe = time.Minute

// takeProbe returns the probe of a stream that has more than one chunk to
// run, nil if it needs none. The probe is the newest part of the stream.
func (s *Session) takeProbe(st *stream) *chunk {
	whole := st.hi - st.lo + 1
	if s.chunkLen(st, st.nodes) >= whole {
		return nil // one chunk: it is the newest
	}
	rate := s.streamRate(st, st.nodes)
	s.mu.Lock()
	budget := s.budget
	s.mu.Unlock()
	l := min(int64(float64(budget)/probeShare/max(rate, 1e-9)*1e6), maxProbe.Microseconds(), whole)
	l = max(l, min(minChunk.Microseconds(), whole))
	lo := st.hi - l + 1
	return &chunk{st: st, nodes: st.nodes, lo: lo, hi: st.hi, resume: lo, probe: true}
}

// lanes splits a stream of more than one chunk into up to Concurrency
// streams of disjoint nodes with about the same rate, so that chunks run
// side by side while each series is fetched in order.
func (s *Session) lanes(st *stream) []*stream {
	n := s.o.Concurrency
	if st.job || len(st.nodes) < 2 || n < 2 {
		return nil
	}
	l := s.chunkLen(st, st.nodes)
	chunks := (st.hi - st.lo + l) / l
	n = min(n, len(st.nodes), int(chunks))
	if n < 2 {
		return nil
	}
	out := make([]*stream, n)
	for i := range out {
		a, b := i*len(st.nodes)/n, (i+1)*len(st.nodes)/n
		out[i] = &stream{site: st.site, nodes: st.nodes[a:b:b], metrics: st.metrics, lo: st.lo, hi: st.hi,
			region: st.region, probed: true, laned: true}
	}
	return out
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
	pr := Progress{Rows: x.rows, Queries: x.queries, Retries: x.retries, FailedChunks: len(x.failed), Bytes: x.bytes}
	runs := x.runs
	x.mu.Unlock()
	est := int64(pr.Rows)
	for _, r := range runs {
		r.mu.Lock()
		pr.ChunksDone += r.done
		pr.ChunksTotal += r.done + r.running + r.parked + len(r.ready)
		est += r.runningEst
		for _, c := range r.ready {
			est += s.chunkRows(c, c.resume, c.hi)
		}
		for _, st := range r.streams {
			if st.lo <= st.hi {
				l := s.chunkLen(st, st.nodes)
				pr.ChunksTotal += int((st.hi - st.lo + l) / l)
				est += int64(s.streamRate(st, st.nodes) * float64(st.hi-st.lo+1) / 1e6)
			}
		}
		r.mu.Unlock()
	}
	pr.EstimatedRows = int(est)
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

// runChunk fetches one chunk with its retries (the session's retrier). It
// returns the halves of a chunk split after "too much data".
func (x *execution) runChunk(c *chunk) []*chunk {
	s := x.s
	x.mu.Lock()
	x.chunks++
	x.mu.Unlock()
	defer c.dropPrefetch() // aborted before its turn used it
	var halves []*chunk
	r := s.retrier(func() {
		x.mu.Lock()
		x.retries++
		x.mu.Unlock()
	})
	err, exhausted := r.run(x.ctx, x.deadline, func(attempt int) (string, error, bool) {
		if x.aborted() {
			return "", nil, false
		}
		if attempt > 1 && !s.resume(c) {
			return "", nil, false // everything verified after all
		}
		u, err, sinkErr := x.attempt(c)
		switch {
		case err == nil:
		case sinkErr:
			x.abort(err)
		case x.aborted():
			if errors.Is(x.ctx.Err(), context.DeadlineExceeded) {
				x.fail(c, err) // the caller's deadline: say what is missing
			}
		case isTooMuchData(err):
			if halves = x.split(c); halves == nil {
				x.fail(c, err)
			}
		case !IsRetryable(err):
			x.abort(err)
		default:
			return u, err, true
		}
		return u, nil, false
	})
	if exhausted && !x.aborted() {
		x.fail(c, err) // out of attempts or time, or a Sleep that failed on its own
	}
	return halves
}

// fail records a chunk that could not be fetched.
func (x *execution) fail(c *chunk, err error) {
	if c.probe {
		return // nothing was to be delivered: the chunks that follow fetch it
	}
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
	if c.probe {
		return nil
	}
	lo, hi := c.resume, c.hi
	if s.trusted(c) {
		// The estimate rests on periods seen in the data: a budget of half
		// of it should pass. (A guessed estimate would compound with the
		// periods learned later.)
		est := float64(s.chunkRows(c, lo, hi))
		s.mu.Lock()
		s.budget = max(min(s.budget, int(est/2)), minBudget)
		s.mu.Unlock()
	} else if s.firstRefusal() && len(c.nodes) == len(c.st.nodes) {
		// A guess was wrong: the series are faster than the periods said
		// (a monitor job). Size what no query has answered yet for the
		// fastest frames from now on, and cut this range again: its first
		// piece teaches the real periods, so one refusal is all it costs.
		{
			c.giveBack = true
			x.mu.Lock()
			x.splits++
			x.mu.Unlock()
			return []*chunk{}
		}
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

// firstRefusal reports whether no guessed estimate was refused before,
// and makes the session size unanswered pairs with fastestPeriod.
func (s *Session) firstRefusal() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := !s.assumeFast
	s.assumeFast = true
	return first
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
