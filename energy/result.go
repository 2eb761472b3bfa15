package energy

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Gap is a stretch of missing data (clipped to the window), bridged by
// interpolation or extrapolation.
type Gap struct {
	From, To time.Time
}

// Duration is the length of the gap.
func (g Gap) Duration() time.Duration { return g.To.Sub(g.From) }

// Result is the energy of one series over one window.
type Result struct {
	Start, End time.Time     // the window integrated over (exactly as given)
	Duration   time.Duration // End − Start
	Period     time.Duration // the sampling period used (given or inferred)
	// Samples is the number of samples that contributed real data: for
	// StepAverage those whose interval overlaps the window; for Trapezoid
	// those inside [Start, End] plus the outer neighbour used to interpolate
	// the value at an edge that falls between two samples.
	Samples int
	Energy  Joules
	Mean    Watts // Energy / Duration
	// Peak is the maximum of the reconstructed power over the window: the
	// sample values that count in it and the values at the window edges.
	Peak Watts
	// Coverage is the share (0..1) of the window covered by real data (not
	// bridged, not extrapolated).
	Coverage float64
	// Gaps lists the missing stretches longer than GapFactor × Period,
	// clipped to the window, in time order.
	Gaps []Gap
	// Bridged is the share of the window bridged by interpolation or
	// extrapolation (listed gaps and shorter holes): 1 − Coverage.
	Bridged float64
	// BridgedEnergy is the part of Energy that comes from bridging.
	BridgedEnergy Joules
	// Uncertainty is a bound on the error of Energy (see the package doc):
	// Resolution × Duration + Σ over bridged stretches of
	// (½ |w_a − w_b| × length + 5 % of the bridged energy).
	Uncertainty Joules
	// Method is Describe() of the method used.
	Method string
	// Using is the method used.
	Using Method
	// Resets counts, for a Counter, the reading intervals in the window
	// over which it decreased (wraps, corrected with Options.Wrap, and
	// resets, bridged).
	Resets int
}

// Result integrates the samples over the window [start, end] (ns edges).
// It fails when end is not after start, when no valid sample was added, or
// when the options are invalid (negative Period, unknown Method).
func (in *Integrator) Result(start, end time.Time) (Result, error) {
	s, e := start.UnixNano(), end.UnixNano()
	if e <= s {
		return Result{}, ErrEmptyWindow
	}
	o := in.opt
	if o.Period < 0 {
		return Result{}, fmt.Errorf("%w: negative period %v", ErrBadOptions, o.Period)
	}
	if o.Method < StepAverage || o.Method > IntervalMean {
		return Result{}, fmt.Errorf("%w: unknown method %d", ErrBadOptions, int(o.Method))
	}
	in.normalize()
	if len(in.s) == 0 {
		return Result{}, ErrNoSamples
	}
	p := o.Period
	if p == 0 {
		p = in.inferPeriod()
	}
	gf := o.GapFactor
	if !(gf > 0) {
		gf = DefaultGapFactor
	}
	res := float64(o.Resolution)
	if !(res > 0) || math.IsInf(res, 0) {
		res = 0
	}
	a := acc{s: s, e: e, gap: gf * float64(p), peak: math.Inf(-1), loc: start.Location()}
	switch o.Method {
	case StepAverage:
		a.step(in.s, int64(p))
	case Trapezoid:
		a.trapezoid(in.s)
	default:
		if o.Method == Counter && len(in.s) < 2 {
			return Result{}, ErrNoSamples
		}
		a.counter(in.s, o.Method, int64(p), o.Wrap)
	}

	d := time.Duration(e - s)
	sec := float64(e-s) / 1e9
	covered := (e - s) - a.bridgedNs
	r := Result{
		Start:         start,
		End:           end,
		Duration:      d,
		Period:        p,
		Samples:       a.samples,
		Energy:        Joules(a.energy),
		Mean:          Watts(a.energy / sec),
		Peak:          Watts(a.peak),
		Coverage:      float64(covered) / float64(e-s),
		Gaps:          a.gaps,
		BridgedEnergy: Joules(a.bridgedE),
		Uncertainty:   Joules(res*sec + a.unc),
		Method:        o.Method.Describe(p),
		Using:         o.Method,
		Resets:        a.resets,
	}
	r.Bridged = 1 - r.Coverage
	return r, nil
}

// acc integrates the reconstructed power signal over [s, e] piece by piece.
type acc struct {
	s, e      int64   // window, Unix ns
	gap       float64 // gap threshold, ns
	loc       *time.Location
	energy    float64 // J
	bridgedNs int64
	bridgedE  float64 // J
	unc       float64 // bridged term of the uncertainty, J
	peak      float64
	samples   int
	resets    int
	gaps      []Gap
}

// piece adds the part within the window of the stretch [a, b] over which
// the power goes linearly from va (at a) to vb (at b). It returns the
// clipped stretch [lo, hi] and whether it is not empty.
func (c *acc) piece(a, b int64, va, vb float64, bridged bool) (lo, hi int64, ok bool) {
	lo, hi = max(a, c.s), min(b, c.e)
	if hi <= lo {
		return lo, hi, false
	}
	vlo, vhi := va, vb
	if va != vb {
		vlo, vhi = interp(a, b, va, vb, lo), interp(a, b, va, vb, hi)
	}
	l := float64(hi-lo) / 1e9
	en := (0.5*vlo + 0.5*vhi) * l
	c.energy += en
	c.peak = max(c.peak, vlo, vhi)
	if bridged {
		c.bridgedNs += hi - lo
		c.bridgedE += en
		c.unc += 0.5*math.Abs(va-vb)*l + 0.05*math.Abs(en)
	}
	return lo, hi, true
}

// interp is the value at x of the line from (a, va) to (b, vb).
func interp(a, b int64, va, vb float64, x int64) float64 {
	switch x {
	case a:
		return va
	case b:
		return vb
	}
	return va + (vb-va)*(float64(x-a)/float64(b-a))
}

// addGap lists [lo, hi]. Two gaps can touch only at a Trapezoid sample,
// which is real data, so they are not merged.
func (c *acc) addGap(lo, hi int64) {
	c.gaps = append(c.gaps, Gap{From: time.Unix(0, lo).In(c.loc), To: time.Unix(0, hi).In(c.loc)})
}

// edge adds a constant extrapolation over [a, b] (clipped), listed as a gap
// when its clipped length exceeds the threshold.
func (c *acc) edge(a, b int64, v float64) {
	if lo, hi, ok := c.piece(a, b, v, v, true); ok && float64(hi-lo) > c.gap {
		c.addGap(lo, hi)
	}
}

// first is the index of the last sample at or before t, or 0.
func first(s []sample, t int64) int {
	i := sort.Search(len(s), func(i int) bool { return s[i].t > t }) - 1
	return max(i, 0)
}

// addSat is a + b saturated at MaxInt64 (b ≥ 0).
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// step: sample i holds w_i over [t_i, e_i), e_i = min(t_i + P, t_{i+1});
// a hole [e_i, t_{i+1}) is bridged linearly from w_i to w_{i+1}; before the
// first sample and after the last one's interval the nearest value is
// extrapolated.
func (c *acc) step(s []sample, p int64) {
	n := len(s)
	if c.s < s[0].t {
		c.edge(c.s, s[0].t, s[0].w)
	}
	for i := first(s, c.s); i < n && s[i].t < c.e; i++ {
		ei := addSat(s[i].t, p)
		if i+1 < n {
			ei = min(ei, s[i+1].t)
		}
		if _, _, ok := c.piece(s[i].t, ei, s[i].w, s[i].w, false); ok {
			c.samples++
		}
		switch {
		case i+1 < n && ei < s[i+1].t:
			if lo, hi, ok := c.piece(ei, s[i+1].t, s[i].w, s[i+1].w, true); ok && float64(s[i+1].t-ei) > c.gap {
				c.addGap(lo, hi)
			}
		case i+1 == n && ei < c.e:
			c.edge(ei, c.e, s[i].w)
		}
	}
}

// trapezoid: the power is linear between consecutive samples; a stretch
// longer than the gap threshold is bridged (the same line) and listed;
// before the first and after the last sample the nearest value is
// extrapolated.
func (c *acc) trapezoid(s []sample) {
	n := len(s)
	if c.s < s[0].t {
		c.edge(c.s, s[0].t, s[0].w)
	}
	for i := first(s, c.s); i+1 < n && s[i].t < c.e; i++ {
		gap := float64(s[i+1].t-s[i].t) > c.gap
		if lo, hi, ok := c.piece(s[i].t, s[i+1].t, s[i].w, s[i+1].w, gap); ok && gap {
			c.addGap(lo, hi)
		}
	}
	if last := s[n-1]; last.t < c.e {
		c.edge(last.t, c.e, last.w)
	}
	// Samples inside [s, e], plus the outer neighbour of an edge that falls
	// strictly between two samples (its value is interpolated from it).
	lo := sort.Search(n, func(i int) bool { return s[i].t >= c.s })
	hi := sort.Search(n, func(i int) bool { return s[i].t > c.e })
	c.samples = hi - lo
	if lo > 0 && lo < n && s[lo].t > c.s {
		c.samples++
	}
	if hi < n && hi > 0 && s[hi-1].t < c.e {
		c.samples++
	}
}
