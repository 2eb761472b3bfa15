package energy

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrNotAdjacent is returned by Merge for results that do not join.
var ErrNotAdjacent = errors.New("energy: results do not join")

// Merge joins the results of one series over two adjacent windows, a over
// [a.Start, a.End] and b over [b.Start, b.End] with a.End == b.Start,
// integrated with the same options and cut at a sample: a's integrator held
// the samples up to and including the one at the cut, b's that one and the
// later ones. The result is the whole window's, to floating-point rounding
// (1 ns on the coverage): this is how a long series is integrated piece by
// piece, keeping only its recent samples.
func Merge(a, b Result) (Result, error) {
	switch {
	case !a.End.Equal(b.Start):
		return Result{}, fmt.Errorf("%w: %v then %v", ErrNotAdjacent, a.End, b.Start)
	case a.Using != b.Using || a.Period != b.Period:
		return Result{}, fmt.Errorf("%w: integrated differently (%s, %s)", ErrNotAdjacent, a.Method, b.Method)
	}
	dur := b.End.Sub(a.Start)
	covered := coveredNs(a) + coveredNs(b)
	r := Result{
		Start:         a.Start,
		End:           b.End,
		Duration:      dur,
		Period:        a.Period,
		Samples:       a.Samples + b.Samples,
		Energy:        a.Energy + b.Energy,
		Peak:          Watts(math.Max(float64(a.Peak), float64(b.Peak))),
		Coverage:      float64(covered) / float64(dur),
		Gaps:          append(append([]Gap(nil), a.Gaps...), b.Gaps...),
		BridgedEnergy: a.BridgedEnergy + b.BridgedEnergy,
		Uncertainty:   a.Uncertainty + b.Uncertainty,
		Method:        a.Method,
		Using:         a.Using,
		Resets:        a.Resets + b.Resets,
	}
	if a.Using == Trapezoid {
		// The sample at the cut is inside both windows: counted once.
		r.Samples--
	}
	r.Mean = Watts(float64(r.Energy) / dur.Seconds())
	r.Bridged = 1 - r.Coverage
	return r, nil
}

// coveredNs is the part of r's window covered by real data, in ns.
func coveredNs(r Result) int64 {
	return int64(math.Round(r.Coverage * float64(r.Duration/time.Nanosecond)))
}
