package energyreport

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/alumet-go/alumet-agent/energy"
)

// In run mode the agent may measure for days: a series keeps at most
// compactAt samples. Past that, the settled part (all but the latest
// compactKeep samples) is integrated over [previous cut, cut], merged into
// the series' partial result (energy.Merge: the same result as one
// integration at the end) and dropped, keeping a min/max reduction for the
// plot. Run mode delivers each series in time order (polls of what is not
// verified yet); a sample older than the cut that still comes is counted
// as late, and not integrated.
var (
	compactAt   = 4096
	compactKeep = 1024
	plotKeep    = 2048 // points of a series' reduced plot copy
)

// compacted is the part of a series that was integrated already.
type compacted struct {
	partial energy.Result
	opts    energy.Options
	cut     int64       // ns: the partial result ends here, at a kept sample
	late    int         // samples older than cut that came after it
	plot    []rawSample // the dropped samples, reduced to min/max per bucket
}

// maybeCompact compacts s when it holds too many samples (run mode only:
// elsewhere the window is short, and chunks can come in any order).
func (r *report) maybeCompact(s *series) {
	if !r.compact || s.samples.n < max(compactAt, s.retryAt) {
		return
	}
	// When nothing can be cut (all the samples are recent, or before the
	// window), try again a while later, not at every sample.
	s.retryAt = s.samples.n + compactAt/4
	start := r.agentStart.UnixNano()
	all := make([]rawSample, 0, s.samples.n)
	s.samples.all(func(x rawSample) { all = append(all, x) })
	// Time order; of equal timestamps the last added wins, as in the
	// integrator.
	slices.SortStableFunc(all, func(a, b rawSample) int { return cmp.Compare(a.t, b.t) })
	all = dedupeLast(all)
	from := start
	if c := s.done; c != nil {
		all = c.dropLate(all)
		from = c.cut
	}
	cutIdx := len(all) - compactKeep
	if cutIdx < 1 || all[cutIdx].t <= start {
		s.samples = storeOf(all)
		return
	}
	if s.done == nil {
		probe := energy.NewIntegrator(energy.Options{Method: energy.Trapezoid})
		for _, x := range all {
			probe.Add(time.Unix(0, x.t), x.w)
		}
		r0, err := probe.Result(time.Unix(0, from), time.Unix(0, all[len(all)-1].t))
		if err != nil {
			s.samples = storeOf(all)
			return
		}
		s.done = &compacted{opts: energy.OptionsFor(s.key.metric, r0.Period)}
	}
	c := s.done
	part, err := integrateSamples(all[:cutIdx+1], from, all[cutIdx].t, c.opts)
	if err != nil {
		s.samples = storeOf(all)
		return
	}
	if c.cut == 0 {
		c.partial = part
	} else if c.partial, err = energy.Merge(c.partial, part); err != nil {
		r.log.Warn(fmt.Sprintf("%s %s: %v", s.key.node, s.key.metric, err))
	}
	c.cut = all[cutIdx].t
	c.plot = reduce(append(c.plot, all[:cutIdx]...), plotKeep)
	s.samples = storeOf(all[cutIdx:])
	s.retryAt = 0
}

// dropLate removes from sorted samples those older than the cut (their
// time is integrated already) and counts them.
func (c *compacted) dropLate(sorted []rawSample) []rawSample {
	i, _ := slices.BinarySearchFunc(sorted, c.cut, func(x rawSample, t int64) int { return cmp.Compare(x.t, t) })
	c.late += i
	return sorted[i:]
}

// finalResult is the result of a compacted series over [start, end]: its
// partial result merged with the integration of what it still holds.
func (r *report) finalResult(s *series, start, end time.Time) (energy.Result, error) {
	c := s.done
	var rest []rawSample
	s.samples.all(func(x rawSample) { rest = append(rest, x) })
	slices.SortStableFunc(rest, func(a, b rawSample) int { return cmp.Compare(a.t, b.t) })
	rest = c.dropLate(dedupeLast(rest))
	if c.late > 0 {
		r.log.Warn(fmt.Sprintf("%s %s: %d samples came after their time was integrated: they are not in the energy", s.key.node, s.key.metric, c.late))
	}
	if !start.Equal(c.partial.Start) || !end.After(time.Unix(0, c.cut)) {
		return energy.Result{}, fmt.Errorf("window [%s, %s] does not extend the integrated part [%s, %s]", rfc3339(start), rfc3339(end), rfc3339(c.partial.Start), rfc3339(time.Unix(0, c.cut)))
	}
	tail, err := integrateSamples(rest, c.cut, end.UnixNano(), c.opts)
	if err != nil {
		return energy.Result{}, err
	}
	return energy.Merge(c.partial, tail)
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

func storeOf(s []rawSample) sampleStore {
	var st sampleStore
	for _, x := range s {
		st.push(x)
	}
	return st
}

// reduce bounds sorted points to about max: beyond it, the min and the max
// of each of max/2 equal time buckets, in time order (peaks stay visible).
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
	out := make([]rawSample, 0, max)
	i := 0
	for i < len(p) {
		b := (p[i].t - t0) / width
		lo, hi := p[i], p[i]
		j := i + 1
		for ; j < len(p) && (p[j].t-t0)/width == b; j++ {
			if p[j].w < lo.w {
				lo = p[j]
			}
			if p[j].w > hi.w {
				hi = p[j]
			}
		}
		if lo.t > hi.t {
			lo, hi = hi, lo
		}
		out = append(out, lo)
		if hi != lo {
			out = append(out, hi)
		}
		i = j
	}
	return out
}
