package energyreport

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/alumet-go/alumet-agent/energy"
)

// Energy-report holds a bounded number of samples per series, in every
// mode (exec, watch, fetch, run): the sources deliver the rows of each
// series in time order, so a series keeps at most compactAt samples. Past
// that, the settled part (all but the latest compactKeep samples, and all
// but the last cutMargin of time) is integrated over [previous cut, cut],
// for the window and for each phase the marks known then delimit, merged
// into the series' partial results (energy.Merge: the same result as one
// integration at the end, to rounding) and dropped, keeping a min/max
// reduction for the plot. The window's start is known when the samples
// come (exec, watch, fetch --from/--to: the start event comes first; run:
// the agent's start); its end is not (kwollect-input fetches on the end
// event, before energy-report sees it), hence the margin: the end is
// within a second or so of a series' last row. Without a known start
// (fetch --job-id, whose window is the span of the job's rows), a series
// keeps its first samples (at most compactKeep, over at most cutMargin)
// and is integrated from the last of them; the stretch from the window's
// start (before them or among them) is integrated with them at the end.
//
// A sample older than the cut that still comes is counted as late, not
// integrated, and reported (its series' energy may be off); one that is
// only older than others still held is put in its place, exactly.
var (
	compactAt   = 4096
	compactKeep = 1024
	plotKeep    = 8192 // points of a series' reduced plot copy: 4096 buckets, 2.5 per pixel column of the 1600 px PNG
	cutMargin   = 5 * time.Second
)

// compacted is the part of a series that was integrated already.
type compacted struct {
	partial energy.Result // over [from, cut]
	opts    energy.Options
	from    int64 // ns: where the integration starts
	// fromFirst: no window start was known: the first samples of the
	// series (head: at most compactKeep of them, over at most cutMargin)
	// are kept, from is the last of them, and the stretch from the
	// window's start to it is integrated at the end.
	fromFirst bool
	head      []rawSample
	cut       int64       // ns: the partial result ends here, at a kept sample
	late      int         // samples older than cut that came after it
	plot      []rawSample // the dropped samples, reduced to min/max per bucket, NaN at gaps
	plotLast  int64       // the time of the last sample added to plot
	// parts are the partial results of the phases: parts[j] covers
	// [parts[j].start, parts[j+1].start) ∩ [from, cut]. parts[0] starts
	// at from; the others at the marks known when the cut passed them.
	parts []phasePart
	// phasesLost: a mark came after its instant was integrated: the
	// phases of this series cannot be told.
	phasesLost bool
}

// phasePart is the partial result of one phase of a compacted series.
type phasePart struct {
	start int64
	res   energy.Result
	has   bool
}

// windowInfo is what a series' compaction needs of its run's window.
type windowInfo struct {
	known    bool // the start is known
	start    int64
	hasEnd   bool
	end      int64
	boundary []int64 // the marks' instants after start, sorted, distinct
}

// windowOf returns what is known now of run's window (r.mu is taken).
func (r *report) windowOf(run int) windowInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	var wi windowInfo
	w := r.wins[run]
	switch {
	case w != nil && w.hasStart:
		wi.known, wi.start = true, w.start.UnixNano()
		if w.hasEnd {
			wi.hasEnd, wi.end = true, w.end.UnixNano()
		}
		for _, m := range w.marks {
			if t := m.at.UnixNano(); t > wi.start && (!wi.hasEnd || t < wi.end) {
				wi.boundary = append(wi.boundary, t)
			}
		}
		slices.Sort(wi.boundary)
		wi.boundary = slices.Compact(wi.boundary)
	case r.compact:
		// Run mode: the window starts at the agent's start.
		wi.known, wi.start = true, r.agentStart.UnixNano()
		if w != nil {
			for _, m := range w.marks {
				if t := m.at.UnixNano(); t > wi.start {
					wi.boundary = append(wi.boundary, t)
				}
			}
			slices.Sort(wi.boundary)
			wi.boundary = slices.Compact(wi.boundary)
		}
	}
	return wi
}

// maybeCompact compacts s when it holds too many samples.
func (r *report) maybeCompact(s *series) {
	if r.keepAll || s.samples.n < max(compactAt, s.retryAt) {
		return
	}
	// When nothing can be cut (all the samples are recent, or before the
	// window), try again a while later, not at every sample.
	s.retryAt = s.samples.n + compactAt/4
	all := r.scratch[:0]
	s.samples.all(func(x rawSample) { all = append(all, x) })
	r.scratch = all[:0] // reused by the next compaction: all is copied before then
	// Time order; of equal timestamps the last added wins, as in the
	// integrator.
	slices.SortStableFunc(all, func(a, b rawSample) int { return cmp.Compare(a.t, b.t) })
	all = dedupeLast(all)
	c := s.done
	if c != nil {
		all = c.dropLate(all)
	}
	wi := r.windowOf(s.key.run)
	from := wi.start
	switch {
	case c != nil:
		from = c.cut
	case !wi.known:
		h := 0
		for h+1 < len(all) && h+1 < compactKeep && all[h+1].t <= all[0].t+cutMargin.Nanoseconds() {
			h++
		}
		from = all[h].t
	}
	// The cut: a sample after from, before the last compactKeep samples,
	// cutMargin before the latest one and before the end when known.
	cutIdx := len(all) - compactKeep
	latest := all[len(all)-1].t
	for cutIdx > 0 && (all[cutIdx].t > latest-cutMargin.Nanoseconds() || wi.hasEnd && all[cutIdx].t >= wi.end) {
		cutIdx--
	}
	if cutIdx < 1 || all[cutIdx].t <= from {
		s.samples.refill(all)
		return
	}
	if c == nil {
		probe := energy.NewIntegrator(energy.Options{Method: energy.Trapezoid})
		probe.Grow(len(all))
		for _, x := range all {
			probe.Add(time.Unix(0, x.t), x.w)
		}
		r0, err := probe.Result(time.Unix(0, from), time.Unix(0, latest))
		if err != nil {
			s.samples.refill(all)
			return
		}
		c = &compacted{opts: s.options(r0.Period, r.forced), from: from, cut: from, fromFirst: !wi.known}
		if c.fromFirst {
			i, _ := slices.BinarySearchFunc(all, from, func(x rawSample, t int64) int { return cmp.Compare(x.t, t) })
			c.head = slices.Clone(all[:i+1])
		}
		c.parts = []phasePart{{start: from}}
		s.done = c
	}
	cut := all[cutIdx].t
	c.addBoundaries(wi.boundary)
	settled := all[:cutIdx+1]
	part, err := r.integrate(settled, c.cut, cut, c.opts)
	if err != nil {
		s.samples.refill(all)
		return
	}
	if c.cut == c.from {
		c.partial = part
	} else if c.partial, err = energy.Merge(c.partial, part); err != nil {
		r.log.Warn(fmt.Sprintf("%s %s: %v", s.key.node, s.key.metric, err))
	}
	if !c.phasesLost && len(c.parts) > 1 {
		for j := range c.parts {
			a, b := c.parts[j].start, int64(math.MaxInt64)
			if j+1 < len(c.parts) {
				b = c.parts[j+1].start
			}
			lo, hi := max(a, c.cut), min(b, cut)
			if hi <= lo {
				continue
			}
			pp := &c.parts[j]
			pr, err := r.integrate(settled, lo, hi, c.opts)
			if err == nil && pp.has {
				pr, err = energy.Merge(pp.res, pr)
			}
			if err != nil {
				c.phasesLost = true
				break
			}
			pp.res, pp.has = pr, true
		}
	}
	c.cut = cut
	c.plot = reduce(appendMarked(c.plot, all[:cutIdx], &c.plotLast, c.plotGap()), plotKeep)
	s.samples.refill(all[cutIdx:])
	s.retryAt = 0
}

// addBoundaries splits the phase parts at the marks' instants: a mark
// after the cut starts a new part; one at or before it, not known when
// its instant was integrated, loses the phases of the series.
func (c *compacted) addBoundaries(bs []int64) {
	for _, b := range bs {
		if b <= c.from {
			continue
		}
		i, found := slices.BinarySearchFunc(c.parts, b, func(p phasePart, t int64) int { return cmp.Compare(p.start, t) })
		if found {
			continue
		}
		if b <= c.cut {
			c.phasesLost = true
			return
		}
		if len(c.parts) == 1 && !c.parts[0].has && c.cut > c.from {
			// Part 0 was the whole: its result is the partial one.
			c.parts[0].res, c.parts[0].has = c.partial, true
		}
		c.parts = slices.Insert(c.parts, i, phasePart{start: b})
	}
}

// dropLate removes from sorted samples those older than the cut (their
// time is integrated already) and counts them.
func (c *compacted) dropLate(sorted []rawSample) []rawSample {
	i, _ := slices.BinarySearchFunc(sorted, c.cut, func(x rawSample, t int64) int { return cmp.Compare(x.t, t) })
	c.late += i
	return sorted[i:]
}

// rest is what a compacted series still holds, sorted, late samples
// counted and dropped.
func (s *series) rest() []rawSample {
	var rest []rawSample
	s.samples.all(func(x rawSample) { rest = append(rest, x) })
	slices.SortStableFunc(rest, func(a, b rawSample) int { return cmp.Compare(a.t, b.t) })
	return s.done.dropLate(dedupeLast(rest))
}

// finalResult is the result of a compacted series over [start, end]: its
// partial result merged with the integration of what it still holds
// (rest, from s.rest), after the stretch from start to its first sample
// when it was integrated from there.
func (r *report) finalResult(s *series, rest []rawSample, start, end time.Time) (energy.Result, error) {
	c := s.done
	if !end.After(time.Unix(0, c.cut)) {
		return energy.Result{}, fmt.Errorf("window [%s, %s] does not extend the integrated part [%s, %s]", rfc3339(start), rfc3339(end), rfc3339(time.Unix(0, c.from)), rfc3339(time.Unix(0, c.cut)))
	}
	tail, err := integrateSamples(rest, c.cut, end.UnixNano(), c.opts)
	if err != nil {
		return energy.Result{}, err
	}
	res, err := energy.Merge(c.partial, tail)
	if err != nil {
		return energy.Result{}, err
	}
	switch s0 := start.UnixNano(); {
	case s0 == c.from:
	case c.fromFirst && s0 < c.from:
		lead, err := integrateSamples(c.head, s0, c.from, c.opts)
		if err != nil {
			return energy.Result{}, err
		}
		if res, err = energy.Merge(lead, res); err != nil {
			return energy.Result{}, err
		}
	default:
		return energy.Result{}, fmt.Errorf("window [%s, %s] does not extend the integrated part [%s, %s]", rfc3339(start), rfc3339(end), rfc3339(time.Unix(0, c.from)), rfc3339(time.Unix(0, c.cut)))
	}
	res.Start, res.End = start, end
	return res, nil
}

// phaseResult is the result of a compacted series over the phase [ps,
// pe]: the phase's partial result merged with the integration of what the
// series still holds; false when it cannot be told (a mark came late).
func (r *report) phaseResult(s *series, rest []rawSample, ps, pe time.Time) (energy.Result, bool) {
	c := s.done
	a, b := ps.UnixNano(), pe.UnixNano()
	if c.phasesLost {
		return energy.Result{}, false
	}
	if a >= c.cut {
		res, err := integrateSamples(rest, a, b, c.opts)
		return res, err == nil
	}
	i, found := slices.BinarySearchFunc(c.parts, a, func(p phasePart, t int64) int { return cmp.Compare(p.start, t) })
	if !found {
		return energy.Result{}, false
	}
	if len(c.parts) == 1 {
		// No mark was known at the cuts: the partial result is the
		// phase's up to the cut.
		if b <= c.cut {
			return energy.Result{}, false
		}
		res, err := r.finalResult(s, rest, ps, pe)
		return res, err == nil
	}
	pp := c.parts[i]
	if !pp.has || pp.res.Start.UnixNano() != a {
		return energy.Result{}, false
	}
	if end := pp.res.End.UnixNano(); b <= c.cut {
		return pp.res, end == b
	} else if end != c.cut {
		return energy.Result{}, false
	}
	tail, err := integrateSamples(rest, c.cut, b, c.opts)
	if err != nil {
		return energy.Result{}, false
	}
	res, err := energy.Merge(pp.res, tail)
	if err != nil {
		return energy.Result{}, false
	}
	res.Start, res.End = ps, pe
	return res, true
}

// plotGap is the step (ns) past which the plot breaks a compacted
// series' line: GapFactor periods, as the gaps of its result.
func (c *compacted) plotGap() int64 {
	gf := c.opts.GapFactor
	if !(gf > 0) {
		gf = energy.DefaultGapFactor
	}
	return int64(gf * float64(c.opts.Period))
}

// appendMarked appends the sorted samples xs to dst, with a NaN sample
// (which breaks the plotted line) before each one more than gap after the
// previous one (*last, updated; 0: none yet).
func appendMarked(dst, xs []rawSample, last *int64, gap int64) []rawSample {
	for _, x := range xs {
		if *last != 0 && x.t-*last > gap {
			dst = append(dst, rawSample{t: *last + (x.t-*last)/2, w: math.NaN()})
		}
		dst = append(dst, x)
		*last = x.t
	}
	return dst
}

func integrateSamples(s []rawSample, from, to int64, o energy.Options) (energy.Result, error) {
	in := energy.NewIntegrator(o)
	in.Grow(len(s))
	for _, x := range s {
		in.Add(time.Unix(0, x.t), x.w)
	}
	return in.Result(time.Unix(0, from), time.Unix(0, to))
}

// dedupeLast keeps, of sorted samples with one timestamp, the last one.
func dedupeLast(s []rawSample) []rawSample {
	out := s[:0]
	for i, x := range s {
		if i+1 < len(s) && s[i+1].t == x.t {
			continue
		}
		out = append(out, x)
	}
	return out
}

// refill replaces the samples of st with xs, reusing its blocks (those
// left over stay spare, for push).
func (st *sampleStore) refill(xs []rawSample) {
	st.blocks, st.n = st.blocks[:0], 0
	for _, x := range xs {
		st.push(x)
	}
}

// integrate is integrateSamples with the report's integrator, reused.
func (r *report) integrate(s []rawSample, from, to int64, o energy.Options) (energy.Result, error) {
	if r.scratchIn == nil {
		r.scratchIn = energy.NewIntegrator(o)
	}
	in := r.scratchIn
	in.Reset(o)
	in.Grow(len(s))
	for _, x := range s {
		in.Add(time.Unix(0, x.t), x.w)
	}
	return in.Result(time.Unix(0, from), time.Unix(0, to))
}

// reduce bounds sorted points to about max: beyond it, the min and the max
// of each of max/2 equal time buckets, in time order (peaks stay visible),
// and a NaN sample after them when the bucket had one (a gap, that breaks
// the plotted line). It reduces in place: a bucket gives at most as many
// points as it has.
func reduce(p []rawSample, max int) []rawSample {
	if len(p) <= max || len(p) < 2 {
		return p
	}
	buckets := max / 2
	t0, t1 := p[0].t, p[len(p)-1].t
	width := (t1 - t0) / int64(buckets)
	if width <= 0 {
		width = 1
	}
	out := p[:0]
	i := 0
	for i < len(p) {
		b := (p[i].t - t0) / width
		var lo, hi, gap rawSample
		have, hasGap := false, false
		j := i
		for ; j < len(p) && (p[j].t-t0)/width == b; j++ {
			switch x := p[j]; {
			case math.IsNaN(x.w):
				if !hasGap {
					gap, hasGap = x, true
				}
			case !have:
				lo, hi, have = x, x, true
			case x.w < lo.w:
				lo = x
			case x.w > hi.w:
				hi = x
			}
		}
		if lo.t > hi.t {
			lo, hi = hi, lo
		}
		k := len(out)
		if have {
			out = append(out, lo)
			if hi != lo {
				out = append(out, hi)
			}
		}
		if hasGap {
			out = append(out, gap)
			// In time order: the gap between the points before and after it.
			for m := len(out) - 1; m > k && out[m-1].t > out[m].t; m-- {
				out[m-1], out[m] = out[m], out[m-1]
			}
		}
		i = j
	}
	return out
}
