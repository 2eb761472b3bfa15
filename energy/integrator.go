package energy

import (
	"errors"
	"math"
	"slices"
	"time"
)

// DefaultGapFactor is the GapFactor used when Options.GapFactor is not positive.
const DefaultGapFactor = 2

// fallbackPeriod is the period assumed when Options.Period is 0 and it
// cannot be inferred (fewer than two distinct samples).
const fallbackPeriod = time.Second

// Errors returned by Result and Integrate.
var (
	ErrEmptyWindow = errors.New("energy: empty window (end is not after start)")
	ErrNoSamples   = errors.New("energy: no valid sample")
	ErrBadOptions  = errors.New("energy: invalid options")
)

// Options configures an Integrator.
type Options struct {
	// Method says what the samples are (StepAverage or Trapezoid).
	Method Method
	// Period is the nominal sampling period; 0 means inferred from the data
	// (the median gap between consecutive distinct timestamps, 1 s with
	// fewer than two samples). Negative is an error.
	Period time.Duration
	// GapFactor: a gap is missing data longer than GapFactor × Period
	// (default 2 when ≤ 0 or NaN).
	GapFactor float64
	// Resolution is the meter resolution, for the uncertainty. The caller
	// decides (ResolutionFor gives 0.1 W for wattmetres, 1 W otherwise);
	// 0 leaves the resolution term out.
	Resolution Watts
	// Wrap is where a Counter wraps (J): a decrease of the readings is a
	// wrap of this much. 0: unknown, a decrease is a reset to zero.
	Wrap float64
}

// Sample is one power reading: W watts at T.
type Sample struct {
	T time.Time
	W float64
}

// sample is the stored form: 16 bytes.
type sample struct {
	t int64 // Unix ns
	w float64
}

// Integrator accumulates the samples of one series, in any order (rows of a
// series can arrive out of order across fetch chunks), in 16 bytes per
// sample, and integrates them over windows. Samples are sorted once, when
// first needed (Result or Len) after an out-of-order Add; in-order input is
// never sorted. NaN and ±Inf values are dropped (the time they would have
// covered is missing data); of several samples with one timestamp the last
// added is kept.
//
// An Integrator is not safe for concurrent use (Result and Len may reorder
// the stored samples).
type Integrator struct {
	opt      Options
	s        []sample
	unsorted bool // some sample is earlier than the one added before it
	dups     bool // some sample has the timestamp of the one added before it
	invalid  int
	period   time.Duration // inferred period cache, 0 = not computed
}

// NewIntegrator returns an empty Integrator; the options are checked by Result.
func NewIntegrator(o Options) *Integrator {
	return &Integrator{opt: o}
}

// Reset empties the integrator and sets its options, keeping the memory
// of its samples for the next ones: a caller that integrates many pieces
// one after the other reuses one integrator.
func (in *Integrator) Reset(o Options) {
	*in = Integrator{opt: o, s: in.s[:0]}
}

// Grow makes room for n more samples.
func (in *Integrator) Grow(n int) { in.s = slices.Grow(in.s, n) }

// Add records the power w (W) at t. NaN and ±Inf values are ignored (and
// counted by Invalid). Monotonic clock readings in t are ignored.
func (in *Integrator) Add(t time.Time, w float64) {
	if math.IsNaN(w) || math.IsInf(w, 0) {
		in.invalid++
		return
	}
	ns := t.UnixNano()
	if n := len(in.s); n > 0 {
		switch last := in.s[n-1].t; {
		case ns < last:
			in.unsorted = true
		case ns == last:
			in.dups = true
		}
	}
	in.s = append(in.s, sample{ns, w})
	in.period = 0
}

// Len is the number of distinct valid samples held.
func (in *Integrator) Len() int {
	in.normalize()
	return len(in.s)
}

// Invalid is the number of NaN or infinite samples Add ignored.
func (in *Integrator) Invalid() int { return in.invalid }

// Integrate integrates samples over [start, end]; see Integrator.Result.
func Integrate(samples []Sample, start, end time.Time, o Options) (Result, error) {
	in := NewIntegrator(o)
	in.Grow(len(samples))
	for _, s := range samples {
		in.Add(s.T, s.W)
	}
	return in.Result(start, end)
}

// normalize sorts the samples by time (stable: the order of addition is
// kept among equal timestamps) and keeps the last of each timestamp.
func (in *Integrator) normalize() {
	if !in.unsorted && !in.dups {
		return
	}
	if in.unsorted {
		stableSort(in.s)
	}
	w := 0
	for _, x := range in.s {
		if w > 0 && in.s[w-1].t == x.t {
			in.s[w-1] = x
			continue
		}
		in.s[w] = x
		w++
	}
	clear(in.s[w:])
	in.s = in.s[:w]
	in.unsorted, in.dups = false, false
}

// inferPeriod is the median gap between consecutive (distinct) samples.
func (in *Integrator) inferPeriod() time.Duration {
	if in.period > 0 {
		return in.period
	}
	if len(in.s) < 2 {
		return fallbackPeriod
	}
	d := make([]int64, len(in.s)-1)
	for i := range d {
		d[i] = in.s[i+1].t - in.s[i].t
	}
	slices.Sort(d)
	in.period = time.Duration(d[len(d)/2])
	return in.period
}

const minRun = 32

// stableSort sorts s by t, keeping the order of equal elements: natural
// runs (extended to minRun by insertion sort) merged pairwise. Data that
// arrives as a few sorted chunks costs a few linear merges.
func stableSort(s []sample) {
	n := len(s)
	var runs []int
	for i := 0; i < n; {
		runs = append(runs, i)
		j := i + 1
		for j < n && s[j].t >= s[j-1].t {
			j++
		}
		if j-i < minRun && j < n {
			end := min(i+minRun, n)
			insertionSort(s[i:end], j-i)
			j = end
		}
		i = j
	}
	runs = append(runs, n)
	if len(runs) <= 2 {
		return
	}
	buf := make([]sample, n)
	src, dst := s, buf
	for len(runs) > 2 {
		next := make([]int, 0, len(runs)/2+2)
		for k := 0; k+1 < len(runs); k += 2 {
			lo := runs[k]
			next = append(next, lo)
			if k+2 >= len(runs) { // odd run out: carry over
				copy(dst[lo:runs[k+1]], src[lo:runs[k+1]])
				continue
			}
			mid, hi := runs[k+1], runs[k+2]
			merge(dst[lo:hi], src[lo:mid], src[mid:hi])
		}
		runs = append(next, n)
		src, dst = dst, src
	}
	if &src[0] != &s[0] {
		copy(s, src)
	}
}

// insertionSort sorts s whose first k elements are already sorted; stable.
func insertionSort(s []sample, k int) {
	for i := max(k, 1); i < len(s); i++ {
		x := s[i]
		j := i
		for j > 0 && s[j-1].t > x.t {
			s[j] = s[j-1]
			j--
		}
		s[j] = x
	}
}

// merge merges the sorted a and b into dst (len(a)+len(b)); ties take a first.
func merge(dst, a, b []sample) {
	if len(a) > 0 && len(b) > 0 && a[len(a)-1].t <= b[0].t {
		copy(dst, a)
		copy(dst[len(a):], b)
		return
	}
	i, j, k := 0, 0, 0
	for i < len(a) && j < len(b) {
		if b[j].t < a[i].t {
			dst[k] = b[j]
			j++
		} else {
			dst[k] = a[i]
			i++
		}
		k++
	}
	k += copy(dst[k:], a[i:])
	copy(dst[k:], b[j:])
}
