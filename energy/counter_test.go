package energy_test

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/energy"
)

// readings is a series of (seconds after t0, value).
func readings(pairs ...float64) []energy.Sample {
	var out []energy.Sample
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, energy.Sample{T: at(pairs[i]), W: pairs[i+1]})
	}
	return out
}

// counterOf is the readings of a counter of power g every period s from
// 0 to n periods, starting at base and wrapping at wrap (0: never).
func counterOf(g signal, period float64, n int, base, wrap float64) []energy.Sample {
	var out []energy.Sample
	for i := 0; i <= n; i++ {
		s := float64(i) * period
		v := base + g.F(s)
		if wrap > 0 {
			v = math.Mod(v, wrap)
		}
		out = append(out, energy.Sample{T: at(s), W: v})
	}
	return out
}

func TestCounterAndIntervalMean(t *testing.T) {
	for _, tc := range []struct {
		name       string
		samples    []energy.Sample
		opt        energy.Options
		from, to   float64
		energy     float64
		coverage   float64
		gaps       [][2]float64
		samplesIn  int
		resets     int
		unc        float64 // at least this much uncertainty (0: exactly 0)
		uncNonZero bool
	}{
		{
			name:    "constant 100 W counter, window cutting the edge intervals",
			samples: counterOf(constant100, 1, 10, 5000, 0),
			opt:     energy.Options{Method: energy.Counter},
			from:    0.5, to: 9.5, energy: 900, coverage: 1, samplesIn: 10,
		},
		{
			name:    "ramp counter over whole intervals is exact",
			samples: counterOf(ramp, 15, 8, 0, 0),
			opt:     energy.Options{Method: energy.Counter},
			from:    15, to: 105, energy: ramp.exact(15, 105), coverage: 1, samplesIn: 6,
		},
		{
			name:    "a wrap is corrected from Options.Wrap",
			samples: readings(0, 900, 1, 950, 2, 0, 3, 50),
			opt:     energy.Options{Method: energy.Counter, Wrap: 1000},
			from:    0, to: 3, energy: 150, coverage: 1, samplesIn: 3, resets: 1,
		},
		{
			name:    "a decrease without a known wrap is a reset: the new reading, bridged",
			samples: readings(0, 900, 1, 950, 2, 20, 3, 70),
			opt:     energy.Options{Method: energy.Counter},
			from:    0, to: 3, energy: 120, coverage: 2.0 / 3, samplesIn: 3, resets: 1, uncNonZero: true,
		},
		{
			name:    "a reading above the wrap is not a wrap",
			samples: readings(0, 1900, 1, 1950, 2, 20, 3, 70),
			opt:     energy.Options{Method: energy.Counter, Wrap: 1000},
			from:    0, to: 3, energy: 120, coverage: 2.0 / 3, samplesIn: 3, resets: 1, uncNonZero: true,
		},
		{
			name: "a long interval inside the window is measured (the counter counted it)",
			// 100 W throughout; the readings at 3..11 are missing.
			samples: readings(0, 0, 1, 100, 2, 200, 12, 1200, 13, 1300),
			opt:     energy.Options{Method: energy.Counter},
			from:    0, to: 13, energy: 1300, coverage: 1, samplesIn: 4,
		},
		{
			name:    "a long interval cut by the window is bridged and listed",
			samples: readings(0, 0, 1, 100, 2, 200, 12, 1200, 13, 1300),
			opt:     energy.Options{Method: energy.Counter},
			from:    0, to: 7, energy: 700, coverage: 2.0 / 7, gaps: [][2]float64{{2, 7}}, samplesIn: 3, uncNonZero: true,
		},
		{
			name:    "edges are extrapolated with the nearest interval's power",
			samples: readings(2, 0, 3, 100, 4, 200),
			opt:     energy.Options{Method: energy.Counter},
			from:    -1, to: 7, energy: 800, coverage: 2.0 / 8, gaps: [][2]float64{{-1, 2}, {4, 7}}, samplesIn: 2, uncNonZero: true,
		},
		{
			name:    "interval means: each covers the interval ending at it",
			samples: readings(1, 100, 2, 100, 3, 200, 4, 100),
			opt:     energy.Options{Method: energy.IntervalMean},
			from:    0, to: 4, energy: 500, coverage: 1, samplesIn: 4,
		},
		{
			name:    "interval means: a late reading covers the whole interval",
			samples: readings(1, 100, 2, 100, 5, 100, 6, 100),
			opt:     energy.Options{Method: energy.IntervalMean},
			from:    0, to: 6, energy: 600, coverage: 1, samplesIn: 4,
		},
		{
			name:    "interval means: window cutting an interval takes its share",
			samples: readings(1, 100, 2, 200, 3, 100),
			opt:     energy.Options{Method: energy.IntervalMean},
			from:    1.5, to: 2.5, energy: 150, coverage: 1, samplesIn: 2, uncNonZero: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := energy.Integrate(tc.samples, at(tc.from), at(tc.to), tc.opt)
			require.NoError(t, err)
			require.InDelta(t, tc.energy, float64(r.Energy), 1e-6)
			require.InDelta(t, tc.coverage, r.Coverage, 1e-9)
			require.Equal(t, tc.samplesIn, r.Samples)
			require.Equal(t, tc.resets, r.Resets)
			require.Equal(t, tc.opt.Method, r.Using)
			var gaps [][2]float64
			for _, g := range r.Gaps {
				gaps = append(gaps, [2]float64{g.From.Sub(t0).Seconds(), g.To.Sub(t0).Seconds()})
			}
			require.Equal(t, tc.gaps, gaps)
			if tc.uncNonZero {
				require.Positive(t, float64(r.Uncertainty))
			} else {
				require.Zero(t, float64(r.Uncertainty))
			}
		})
	}
}

// A counter's energy is additive over adjacent windows and merges as one
// integration, whatever the cut, wraps included.
func TestCounterAdditiveAndMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, m := range []energy.Method{energy.Counter, energy.IntervalMean} {
		var s []energy.Sample
		v, tt := 250000.0, 0.0
		for i := 0; i < 400; i++ {
			tt += 0.5 + rng.Float64()
			if rng.IntN(50) == 0 {
				tt += 10 // a hole
			}
			inc := 50 + 200*rng.Float64()
			if m == energy.Counter {
				v = math.Mod(v+inc, 262143.328850)
				s = append(s, energy.Sample{T: at(tt), W: v})
			} else {
				s = append(s, energy.Sample{T: at(tt), W: inc})
			}
		}
		opt := energy.Options{Method: m, Wrap: 262143.328850}
		a, b, c := at(-3), at(97.3), at(tt+2)
		whole, err := energy.Integrate(s, a, c, opt)
		require.NoError(t, err)
		left, err := energy.Integrate(s, a, b, opt)
		require.NoError(t, err)
		right, err := energy.Integrate(s, b, c, opt)
		require.NoError(t, err)
		require.InDelta(t, float64(whole.Energy), float64(left.Energy+right.Energy), 1e-6, m.String())
		if m == energy.Counter {
			require.Positive(t, whole.Resets)
			require.Equal(t, whole.Resets, left.Resets+right.Resets)
		}

		// Merge at a sample, as energy-report's compaction does.
		k := 150
		cut := s[k].T
		in1 := energy.NewIntegrator(opt)
		for _, x := range s[:k+1] {
			in1.Add(x.T, x.W)
		}
		in2 := energy.NewIntegrator(opt)
		for _, x := range s[k:] {
			in2.Add(x.T, x.W)
		}
		opt.Period = whole.Period
		in1.Reset(opt)
		for _, x := range s[:k+1] {
			in1.Add(x.T, x.W)
		}
		in2.Reset(opt)
		for _, x := range s[k:] {
			in2.Add(x.T, x.W)
		}
		p1, err := in1.Result(a, cut)
		require.NoError(t, err)
		p2, err := in2.Result(cut, c)
		require.NoError(t, err)
		merged, err := energy.Merge(p1, p2)
		require.NoError(t, err)
		require.InDelta(t, float64(whole.Energy), float64(merged.Energy), 1e-6, m.String())
		require.Equal(t, whole.Samples, merged.Samples, m.String())
	}
}

func TestCounterNeedsTwoReadings(t *testing.T) {
	_, err := energy.Integrate(readings(1, 100), at(0), at(2), energy.Options{Method: energy.Counter})
	require.ErrorIs(t, err, energy.ErrNoSamples)
	r, err := energy.Integrate(readings(1, 100), at(0), at(2), energy.Options{Method: energy.IntervalMean, Period: time.Second})
	require.NoError(t, err)
	require.InDelta(t, 200, float64(r.Energy), 1e-9)
}
