package energy

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMergeEqualsWhole: integrating a series in two pieces cut at one of its
// samples, then merging, gives the whole window's result, for both methods,
// with gaps, holes and windows starting and ending between samples.
func TestMergeEqualsWhole(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	for iter := range 400 {
		method := StepAverage
		period := time.Second
		if iter%2 == 1 {
			method, period = Trapezoid, 20*time.Millisecond
		}
		var samples []Sample
		ts := t0
		for range 20 + rng.IntN(200) {
			step := period
			switch rng.IntN(20) {
			case 0:
				step = period * time.Duration(3+rng.IntN(10)) // a gap
			case 1:
				step = period + time.Duration(rng.IntN(int(period/2))) // a hole
			}
			ts = ts.Add(step)
			samples = append(samples, Sample{T: ts, W: 50 + 200*rng.Float64()})
		}
		n := len(samples)
		cut := 1 + rng.IntN(n-2)
		start := samples[0].T.Add(-time.Duration(rng.IntN(int(2 * period))))
		end := samples[n-1].T.Add(time.Duration(rng.IntN(int(2 * period))))
		o := Options{Method: method, Period: period, GapFactor: DefaultGapFactor, Resolution: 0.1}
		whole, err := Integrate(samples, start, end, o)
		require.NoError(t, err)
		T := samples[cut].T
		a, err := Integrate(samples[:cut+1], start, T, o)
		require.NoError(t, err)
		b, err := Integrate(samples[cut:], T, end, o)
		require.NoError(t, err)
		m, err := Merge(a, b)
		require.NoError(t, err)
		require.InDelta(t, float64(whole.Energy), float64(m.Energy), 1e-9*math.Abs(float64(whole.Energy)), "iteration %d", iter)
		require.Equal(t, whole.Samples, m.Samples, "iteration %d (%v)", iter, method)
		require.Equal(t, whole.Peak, m.Peak)
		require.InDelta(t, whole.Coverage, m.Coverage, 2e-9)
		require.Equal(t, len(whole.Gaps), len(m.Gaps), "iteration %d", iter)
		for i := range whole.Gaps {
			require.True(t, whole.Gaps[i].From.Equal(m.Gaps[i].From) && whole.Gaps[i].To.Equal(m.Gaps[i].To), "gap %d", i)
		}
		require.InDelta(t, float64(whole.BridgedEnergy), float64(m.BridgedEnergy), 1e-9*math.Abs(float64(whole.Energy))+1e-12)
		require.InDelta(t, float64(whole.Uncertainty), float64(m.Uncertainty), 1e-9*math.Abs(float64(whole.Uncertainty))+1e-12)
		require.InDelta(t, float64(whole.Mean), float64(m.Mean), 1e-9*float64(whole.Mean))
		require.Equal(t, whole.Method, m.Method)
		require.Equal(t, whole.Duration, m.Duration)
	}
	_, err := Merge(Result{End: t0}, Result{Start: t0.Add(1)})
	require.ErrorIs(t, err, ErrNotAdjacent)
	_, err = Merge(Result{End: t0, Using: StepAverage}, Result{Start: t0, Using: Trapezoid})
	require.ErrorIs(t, err, ErrNotAdjacent)
}
