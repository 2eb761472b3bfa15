package kwollect

import (
	"context"
	"net/http"
	"time"
)

// attempt is one GET of a chunk.
type attempt struct {
	x      *execution
	s      *Session
	site   *siteState
	job    bool
	lo, hi int64
	probe  bool // read for the proof and the periods only (chunk.probe)
	loT    time.Time
	hiT    time.Time
	sentAt time.Time

	pairs  map[pairKey]*attPair
	list   []*attPair
	recent [lookupCache]lookupEntry // direct-mapped cache of the pair lookup
	keyBuf []byte

	batch []Row
	spare Row // the decoder's place for a row when the batch has none
	bser  []*attSeries

	lastTS  int64 // newest in-window row read (the body is in time order)
	hasLast bool
	doneTS  int64 // every row before it is delivered or dropped
	hasDone bool
	anyFP   int64 // newest row of any pair (job coverage)
	hasAny  bool
	jobVis  int64
	hasJVis bool
	sinkErr error

	delivered, dropped, duplicates int
	stats                          streamStats
}

// lookupCache is the size of attempt.recent (a power of two): the rows of
// the nodes of a query come interleaved, one node after the other.
const lookupCache = 32

type lookupEntry struct {
	dev, met string
	ap       *attPair
}

// lookupSlot picks the cache slot of a row from its device id: node names
// differ in their length and last characters.
func lookupSlot(dev string) int {
	n := len(dev)
	if n == 0 {
		return 0
	}
	return (n*7 + int(dev[n-1])*31 + int(dev[(n-1)*3/4])*5) & (lookupCache - 1)
}

// attPair is a pair's state within one attempt.
type attPair struct {
	p      *pair // nil: rows dropped (not asked for by this query)
	spans  []span
	si     int
	extras []extra
	vis    int64 // proof snapshot at send (see pair.seenMax)
	hasVis bool
	fp     int64 // newest row read
	hasFP  bool
	series []*attSeries
}

// attSeries is a series' state within one attempt: what was delivered
// (committed once the sink accepted it).
type attSeries struct {
	// The identity of the series, as in its first row (the decoder never
	// reuses a row's slices).
	dev, metric string
	orig        []string
	labels      []Label

	info        *seriesInfo
	rows        int
	first, last time.Time
	lastUS      int64
	prev        int64 // previous delivered row, for gaps
	hasPrev     bool
	gaps        gapStats
	queued      int64 // newest row batched by this attempt
	hasQueued   bool
	// data: runs of delivered rows closer than tol (twice the period, as
	// configured or seen), in time order; merged into pair.data.
	data []span
	tol  int64
}

// matches reports whether r belongs to the series (same SeriesKey),
// without building the key.
func (a *attSeries) matches(r *Row) bool {
	if r.DeviceID != a.dev || r.MetricID != a.metric || len(r.DeviceOrig) != len(a.orig) ||
		(r.DeviceOrig == nil) != (a.orig == nil) || len(r.Labels) != len(a.labels) {
		return false
	}
	for i, o := range a.orig {
		if r.DeviceOrig[i] != o {
			return false
		}
	}
	for i, l := range a.labels {
		if r.Labels[i] != l {
			return false
		}
	}
	return true
}

func (a *attSeries) commit(t time.Time) {
	us := usOf(t)
	if a.hasPrev && us > a.prev {
		a.gaps.addGap(time.Duration(us-a.prev) * time.Microsecond)
	}
	a.prev, a.hasPrev = us, true
	tol := max(a.tol, 2*a.gaps.gap.Microseconds())
	if n := len(a.data); n > 0 && us >= a.data[n-1].lo && us-a.data[n-1].hi <= tol {
		a.data[n-1].hi = max(a.data[n-1].hi, us)
	} else {
		a.data = append(a.data, span{us, us})
	}
	if a.rows == 0 || t.Before(a.first) {
		a.first = t
	}
	if a.rows == 0 || us > a.lastUS {
		a.last, a.lastUS = t, us
	}
	a.rows++
}

// newAttempt snapshots, under the lock, the verified spans and proofs of
// the pairs the query covers.
func (x *execution) newAttempt(c *chunk) *attempt {
	s := x.s
	a := &attempt{x: x, s: s, site: c.st.site, job: c.st.job, lo: c.resume, hi: c.hi, probe: c.probe,
		pairs: map[pairKey]*attPair{}, keyBuf: make([]byte, 0, 128)}
	a.loT, a.hiT = timeOf(a.lo), timeOf(a.hi)
	a.batch = make([]Row, 0, s.o.BatchSize)
	a.stats.slot = a.slot
	s.mu.Lock()
	defer s.mu.Unlock()
	a.sentAt = s.o.Clock()
	if a.job {
		for _, p := range a.site.order {
			if !p.explicit {
				a.addPair(p, true)
			}
		}
		switch {
		case a.site.jobHasSeen:
			a.jobVis, a.hasJVis = a.site.jobSeen, true
		default:
			a.jobVis, a.hasJVis = usOf(a.sentAt.Add(-settleAge)), true
		}
	} else {
		for _, p := range s.queriedPairs(a.site, c.nodes, c.st.metrics) {
			a.addPair(p, true)
		}
	}
	return a
}

// addPair registers a pair; withVis takes the proof snapshot (only valid
// at send time). Called with s.mu held.
func (a *attempt) addPair(p *pair, withVis bool) *attPair {
	ap := &attPair{p: p, spans: p.cov.clip(a.lo, a.hi)}
	for _, e := range p.extras {
		if e.ts >= a.lo && e.ts <= a.hi {
			ap.extras = append(ap.extras, e)
		}
	}
	if withVis {
		switch {
		case p.hasSeen:
			ap.vis, ap.hasVis = p.seenMax, true
		case p.rows == 0:
			// Never any row: rows older than settleAge would have shown.
			ap.vis, ap.hasVis = usOf(a.sentAt.Add(-settleAge)), true
		}
	}
	a.pairs[p.key] = ap
	a.list = append(a.list, ap)
	return ap
}

// lookup finds the pair of a row; a job query discovers new nodes.
func (a *attempt) lookup(r *Row) *attPair {
	e := &a.recent[lookupSlot(r.DeviceID)]
	if e.ap != nil && r.DeviceID == e.dev && r.MetricID == e.met {
		return e.ap
	}
	k := pairKey{cutAtDot(r.DeviceID), r.MetricID}
	ap, ok := a.pairs[k]
	if !ok {
		ap = a.discover(k)
	}
	*e = lookupEntry{r.DeviceID, r.MetricID, ap}
	return ap
}

func (a *attempt) discover(k pairKey) *attPair {
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	var p *pair
	if a.job && k.node != "" && isPlanMetric(s.metrics, k.metric) {
		p = a.site.pairs[k]
		if p == nil {
			if a.site.byName[k.node] == nil {
				// A node of the job that is not a target.
				known := false
				for _, t := range a.site.jobs {
					known = known || t.name == k.node
				}
				if !known {
					a.site.jobs = append(a.site.jobs, &target{name: k.node})
				}
				p = a.site.newPair(k.node, k.metric, false)
			}
		} else if p.explicit {
			p = nil // fetched by its own node queries
		}
	}
	if p == nil {
		ap := &attPair{}
		a.pairs[k] = ap
		return ap
	}
	return a.addPair(p, false)
}

func isPlanMetric(metrics []string, m string) bool {
	for _, x := range metrics {
		if x == m {
			return true
		}
	}
	return false
}

// seriesOf finds the row's series among the pair's (usually one, a few
// with labels), most recent first.
func (a *attempt) seriesOf(ap *attPair, r *Row) *attSeries {
	for i := len(ap.series) - 1; i >= 0; i-- {
		if ser := ap.series[i]; ser.matches(r) {
			if i != len(ap.series)-1 {
				// Keep the latest at the end: rows of one series come in runs.
				copy(ap.series[i:], ap.series[i+1:])
				ap.series[len(ap.series)-1] = ser
			}
			return ser
		}
	}
	a.keyBuf = r.appendSeriesKey(a.keyBuf[:0])
	key := string(a.keyBuf)
	s := a.s
	s.mu.Lock()
	info := ap.p.series[key]
	if info == nil {
		info = &seriesInfo{key: key, id: nextSeriesID.Add(1)}
		ap.p.series[key] = info
	}
	per := s.o.Periods[r.MetricID]
	if per <= 0 {
		per = defaultPeriod
	}
	ser := &attSeries{dev: r.DeviceID, metric: r.MetricID, orig: r.DeviceOrig, labels: r.Labels, info: info,
		tol: 2 * per.Microseconds()}
	// The previous delivered row is the one just before this attempt's
	// first row if the attempt started at or before it.
	if info.hasLast && a.lo <= info.last && !a.probe {
		ser.prev, ser.hasPrev = info.last, true
	}
	s.mu.Unlock()
	ap.series = append(ap.series, ser)
	return ser
}

// isDup: the row is in a verified span, or is a delivered edge row.
func (ap *attPair) isDup(t int64, key string) bool {
	for ap.si < len(ap.spans) && ap.spans[ap.si].hi < t {
		ap.si++
	}
	if ap.si < len(ap.spans) && ap.spans[ap.si].lo <= t {
		return true
	}
	for _, e := range ap.extras {
		if e.ts == t && e.key == key {
			return true
		}
	}
	return false
}

// onRow filters one streamed row and batches it for the sink.
func (a *attempt) onRow(r *Row) error {
	t := usOf(r.Timestamp)
	if t < a.lo || t > a.hi {
		a.dropped++
		return nil
	}
	a.lastTS, a.hasLast = t, true
	// A row decoded by a template is of the template's series: the pair
	// and series found for its first row serve all the others.
	hit := a.stats.tmHit
	var ap *attPair
	var ser *attSeries
	if hit != nil && hit.ser != nil {
		ap, ser = hit.ap, hit.ser
	} else {
		if ap = a.lookup(r); ap.p == nil {
			a.dropped++
			return nil
		}
	}
	ap.fp, ap.hasFP = t, true
	a.anyFP, a.hasAny = t, true
	if ser == nil {
		ser = a.seriesOf(ap, r)
		if hit != nil {
			hit.ap, hit.ser = ap, ser
		}
	}
	if a.probe {
		// Only the periods: the rows come again with the last chunk.
		if ser.hasPrev && t > ser.prev {
			ser.gaps.addGap(time.Duration(t-ser.prev) * time.Microsecond)
		}
		ser.prev, ser.hasPrev = t, true
		return nil
	}
	if ap.isDup(t, ser.info.key) {
		a.dropped++
		return nil
	}
	if ser.hasQueued && t == ser.queued {
		// The body repeats the series' previous row (the body is in time
		// order, so a repeat follows it).
		a.duplicates++
		return nil
	}
	ser.queued, ser.hasQueued = t, true
	r.Series = ser.info.id
	if n := len(a.batch); n < cap(a.batch) && r == &a.batch[:n+1][n] {
		a.batch = a.batch[:n+1] // decoded in place (see slot)
	} else {
		a.batch = append(a.batch, *r)
	}
	a.bser = append(a.bser, ser)
	if len(a.batch) >= cap(a.batch) {
		return a.flush()
	}
	return nil
}

// slot is where the decoder puts the next row: the batch's next free
// place, so that onRow keeps it without a copy.
func (a *attempt) slot() *Row {
	if n := len(a.batch); n < cap(a.batch) {
		return &a.batch[:n+1][n]
	}
	return &a.spare
}

// flush hands the batch to the sink (one call at a time) and commits what
// it accepted.
func (a *attempt) flush() error {
	if len(a.batch) == 0 {
		a.doneTS, a.hasDone = a.lastTS, a.hasLast
		return nil
	}
	s := a.s
	s.sinkMu.Lock()
	n, err := a.x.deliver(a.batch)
	s.sinkMu.Unlock()
	n = min(max(n, 0), len(a.batch))
	for i := 0; i < n; i++ {
		a.bser[i].commit(a.batch[i].Timestamp)
	}
	a.delivered += n
	if err != nil {
		a.sinkErr = err
		if n > 0 {
			a.doneTS, a.hasDone = usOf(a.batch[n-1].Timestamp), true
		}
		return err
	}
	a.doneTS, a.hasDone = a.lastTS, a.hasLast
	if s.o.ReuseBatches {
		a.batch = a.batch[:0]
	} else {
		a.batch = make([]Row, 0, s.o.BatchSize)
	}
	clear(a.bser)
	a.bser = a.bser[:0]
	return nil
}

// query is one GET of a chunk, sent by begin: at the chunk's turn, or
// ahead of it (prefetch, see engine.go), its response then waiting unread.
type query struct {
	done chan struct{} // closed once begin returned (prefetch)
	a    *attempt      // nil: not sent (err says why)
	u    string
	resp *http.Response // a 2xx response, body unread
	err  error
	// stop ends the query's context; timer (prefetch) is its timeout,
	// restarted at the chunk's turn.
	stop    func()
	timer   *time.Timer
	timeout time.Duration
}

// begin sends the GET of the chunk's next attempt, up to its headers.
// parked: a prefetch, whose body and query timeout wait for the chunk's
// turn (the stall and query timeouts start then).
func (x *execution) begin(c *chunk, qr *query, parked bool) {
	s := x.s
	a := x.newAttempt(c)
	q := Query{Site: c.st.site.name, Metrics: c.st.metrics, Start: a.loT, End: a.hiT}
	if c.st.job {
		q.JobID = c.st.site.jobID
	}
	for _, t := range c.nodes {
		q.Nodes = append(q.Nodes, t.name)
	}
	u := s.c.URL(q)
	qr.u = u
	if err := x.ctx.Err(); err != nil {
		qr.err = err
		return
	}
	// One budget for all the attempts: each ends by Complete's deadline
	// (plus tailGrace: a round may start at the deadline), and none starts
	// after it; ctx's deadline bounds them through qctx.
	timeout := s.o.QueryTimeout
	var cause error = &TimeoutError{Wait: WaitQuery, After: timeout}
	if !x.deadline.IsZero() {
		left := x.deadline.Add(s.tailGrace).Sub(s.o.Clock())
		if left <= 0 {
			qr.err = &NetworkError{URL: u, Err: errDeadline}
			return
		}
		if left < timeout {
			timeout, cause = left, errDeadline
		}
	}
	if s.o.OnQuery != nil {
		s.hooksMu.Lock()
		s.o.OnQuery(u)
		s.hooksMu.Unlock()
	}
	x.mu.Lock()
	x.queries++
	x.mu.Unlock()
	qr.a = a
	var qctx context.Context
	if parked {
		ctx, cancel := context.WithCancelCause(x.ctx)
		qr.timer = time.AfterFunc(timeout, func() { cancel(cause) })
		qr.timeout = timeout
		qr.stop = func() {
			qr.timer.Stop()
			cancel(nil)
		}
		qctx = ctx
	} else {
		ctx, cancel := context.WithTimeoutCause(x.ctx, timeout, cause)
		qr.stop = cancel
		qctx = ctx
	}
	qr.resp, qr.err = s.c.get(qctx, u, parked)
}

// close ends a query whose response is not to be read.
func (qr *query) close() {
	if qr.stop != nil {
		qr.stop()
	}
	if qr.resp != nil {
		_ = qr.resp.Body.Close()
		qr.resp = nil
	}
}

// dropPrefetch closes the chunk's prefetched query if it was not used.
func (c *chunk) dropPrefetch() {
	if c.pf != nil {
		<-c.pf.done
		c.pf.close()
		c.pf = nil
	}
}

// attempt runs one GET for the chunk (its prefetched one, if any). It
// returns the URL, the error, and whether the error is the sink's.
func (x *execution) attempt(c *chunk) (string, error, bool) {
	s := x.s
	qr := c.pf
	if qr != nil {
		c.pf = nil
		<-qr.done
		if qr.timer != nil {
			qr.timer.Reset(qr.timeout) // its time counts from its turn
		}
	} else {
		qr = &query{}
		x.begin(c, qr, false)
	}
	if qr.a == nil {
		return qr.u, qr.err, false
	}
	a, u, err := qr.a, qr.u, qr.err
	if err == nil {
		_, err = s.c.decodeBody(qr.resp, u, &a.stats, a.onRow)
		qr.resp = nil
	}
	qr.close()
	if a.sinkErr == nil {
		if ferr := a.flush(); ferr != nil && err == nil {
			err = ferr
		}
	}
	if a.sinkErr != nil {
		err = a.sinkErr
	}
	s.finishAttempt(a, err == nil)
	x.mu.Lock()
	x.rows += a.delivered
	x.dropped += a.dropped
	x.duplicates += a.duplicates
	x.oversized += a.stats.oversized
	x.bytes += a.stats.bytes
	if a.stats.trailing {
		x.trailing++
	}
	x.mu.Unlock()
	return u, err, a.sinkErr != nil
}

// finishAttempt records what the attempt verified and delivered.
func (s *Session) finishAttempt(a *attempt, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queries++
	s.rows += a.delivered
	if ok {
		s.anyOK = true
	}
	// Nothing is verified past the last row fully handled when the body
	// broke off.
	limit := a.hi
	if !ok {
		limit = a.lo - 1
		if a.hasDone {
			limit = min(a.hi, a.doneTS-1)
		}
	}
	if a.probe {
		s.finishProbe(a, ok)
		return
	}
	for _, ap := range a.list {
		p := ap.p
		top := a.lo - 1
		if ap.hasFP {
			top = ap.fp - 1
		}
		if ap.hasVis {
			top = max(top, ap.vis)
		}
		top = min(top, limit)
		p.cov.add(a.lo, top)
		for _, ser := range ap.series {
			if ser.rows == 0 {
				continue
			}
			if ser.lastUS > top && !p.isExtra(ser.lastUS, ser.info.key) {
				p.extras = append(p.extras, extra{ts: ser.lastUS, key: ser.info.key})
			}
			if !ser.info.hasLast || ser.lastUS > ser.info.last {
				ser.info.last, ser.info.hasLast = ser.lastUS, true
			}
			if p.rows == 0 || ser.first.Before(p.first) {
				p.first = ser.first
			}
			if p.rows == 0 || ser.last.After(p.last) {
				p.last = ser.last
			}
			p.rows += ser.rows
			tol := max(ser.tol, 2*ser.gaps.gap.Microseconds())
			for _, d := range ser.data {
				p.data.addNear(d.lo, d.hi, tol)
			}
			p.gaps.addGap(ser.gaps.gap)
			p.gaps.addGap(ser.gaps.maxRegular)
			if g := ser.gaps.gap; g > 0 {
				if l := s.learned[p.key.metric]; l == 0 || g < l {
					s.learned[p.key.metric] = g
				}
			}
		}
		p.pruneExtras()
		// A query reaching the window's end that got less than the end:
		// Kwollect is behind by the time from the newest sample's end to
		// the query.
		if ok && p.rows > 0 && a.hi >= usOf(a.x.to) {
			per := s.period(p)
			if end := p.last.Add(per); !end.Add(p.gaps.jitter()).After(a.x.to) {
				p.lag = max(p.lag, a.sentAt.Sub(end))
			}
		}
		if ap.hasFP && (!p.hasSeen || ap.fp > p.seenMax) {
			p.seenMax, p.hasSeen = ap.fp, true
		}
		if ok && p.firstOK.IsZero() {
			p.firstOK = a.sentAt
		}
	}
	if a.job {
		st := a.site
		top := a.lo - 1
		if a.hasAny {
			top = a.anyFP - 1
		}
		if a.hasJVis {
			top = max(top, a.jobVis)
		}
		st.jobCov.add(a.lo, min(top, limit))
		if a.hasAny && (!st.jobHasSeen || a.anyFP > st.jobSeen) {
			st.jobSeen, st.jobHasSeen = a.anyFP, true
		}
	}
}

// finishProbe records what a probe saw: the newest row of each pair (the
// proof for the older chunks) and the periods. Nothing was delivered, so
// nothing is verified. Called with s.mu held.
func (s *Session) finishProbe(a *attempt, ok bool) {
	for _, ap := range a.list {
		p := ap.p
		for _, ser := range ap.series {
			p.gaps.addGap(ser.gaps.gap)
			p.gaps.addGap(ser.gaps.maxRegular)
			if g := ser.gaps.gap; g > 0 {
				if l := s.learned[p.key.metric]; l == 0 || g < l {
					s.learned[p.key.metric] = g
				}
			}
		}
		// Rows read from a body that broke off were visible all the same.
		if ap.hasFP && (!p.hasSeen || ap.fp > p.seenMax) {
			p.seenMax, p.hasSeen = ap.fp, true
		}
	}
	if a.job && a.hasAny && (!a.site.jobHasSeen || a.anyFP > a.site.jobSeen) {
		a.site.jobSeen, a.site.jobHasSeen = a.anyFP, true
	}
}
