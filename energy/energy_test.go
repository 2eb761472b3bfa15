package energy_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/energy"
)

var (
	step1s = energy.Options{Method: energy.StepAverage, Period: time.Second}
	trap   = energy.Options{Method: energy.Trapezoid}
)

func TestConstantStepClipsEdges(t *testing.T) {
	o := step1s
	o.Resolution = 0.1
	r, err := energy.Integrate(instant(constant100, time.Second, 0, 10), at(0.3), at(10.7), o)
	require.NoError(t, err)
	want := energy.Result{
		Start:       at(0.3),
		End:         at(10.7),
		Duration:    10400 * time.Millisecond,
		Period:      time.Second,
		Samples:     11, // 0.7 s of the first, 9 whole, 0.7 s of the last
		Energy:      1040,
		Mean:        100,
		Peak:        100,
		Coverage:    1,
		Uncertainty: 0.1 * 10.4,
		Method:      "step integration of 1 s averages (each sample covers [t, t+1s))",
	}
	require.Empty(t, cmp.Diff(want, r, cmp.Comparer(func(a, b energy.Joules) bool { return math.Abs(float64(a-b)) < 1e-9 })))
}

// TestAnalytic integrates analytic signals whose exact energy is known.
func TestAnalytic(t *testing.T) {
	tests := []struct {
		name    string
		samples []energy.Sample
		o       energy.Options
		a, b    float64 // window, s after t0
		g       signal
		tol     float64 // relative
	}{
		{"constant step, mid-second edges", means(constant100, time.Second, 0, 10), step1s, 0.3, 10.7, constant100, 1e-12},
		{"constant trapezoid BMC 5 s", instant(constant100, 5*time.Second, 0, 60), trap, 1.2, 58.9, constant100, 1e-12},
		{"ramp trapezoid 100 Hz, mid-sample edges", instant(ramp, 10*time.Millisecond, 0, 60), trap, 0.0031, 59.9957, ramp, 1e-12},
		{"ramp trapezoid 50 Hz, ns edges", instant(ramp, 20*time.Millisecond, 0, 60), trap, 1.000000001, 42.123456789, ramp, 1e-12},
		{"ramp step 1 Hz, whole seconds", means(ramp, time.Second, 0, 59), step1s, 0, 60, ramp, 1e-12},
		{"ramp step 1 Hz, mid-second edges", means(ramp, time.Second, 0, 59), step1s, 0.3, 59.6, ramp, 1e-3},
		{"square trapezoid 50 Hz, whole periods", instant(square, 20*time.Millisecond, 0, 60), trap, 0, 60, square, 1e-12},
		{"square trapezoid 50 Hz, mid-sample edges", instant(square, 20*time.Millisecond, 0, 60), trap, 0.37, 59.41, square, 1e-3},
		{"square step 1 Hz, mid-second edges", means(square, time.Second, 0, 59), step1s, 0.25, 59.75, square, 1e-12},
		{"sine trapezoid 100 Hz", instant(sine, 10*time.Millisecond, 0, 120), trap, 0.005, 119.995, sine, 1e-6},
		{"sine step 1 Hz, whole seconds", means(sine, time.Second, 0, 119), step1s, 0, 120, sine, 1e-12},
		{"sine step 1 Hz, mid-second edges", means(sine, time.Second, 0, 119), step1s, 0.5, 119.5, sine, 1e-3},
		{"sine step 1 Hz, inferred period", means(sine, time.Second, 0, 119), energy.Options{Method: energy.StepAverage}, 0, 120, sine, 1e-12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := energy.Integrate(tt.samples, at(tt.a), at(tt.b), tt.o)
			require.NoError(t, err)
			// the window as Integrate saw it, to the ns
			a, b := at(tt.a).Sub(t0).Seconds(), at(tt.b).Sub(t0).Seconds()
			want := tt.g.exact(a, b)
			require.LessOrEqual(t, relErr(float64(r.Energy), want), tt.tol, "energy %v, exact %v J", float64(r.Energy), want)
			require.Less(t, relErr(float64(r.Energy), want), 1e-3) // the bar
			require.InDelta(t, want/(b-a), float64(r.Mean), tt.tol*want/(b-a)+1e-9)
			require.Equal(t, 1.0, r.Coverage)
			require.Zero(t, r.Bridged)
			require.Nil(t, r.Gaps)
			require.GreaterOrEqual(t, float64(r.Peak), float64(r.Mean))
		})
	}
}

func TestSquarePeakAndSamples(t *testing.T) {
	r, err := energy.Integrate(instant(square, 20*time.Millisecond, 0, 60), at(0), at(0.99), trap)
	require.NoError(t, err)
	// the 200 W sample at 1 s is outside, but the signal at the end (0.99 s)
	// is interpolated between 100 W at 0.98 s and 200 W at 1 s
	require.Equal(t, energy.Watts(150), r.Peak)
	require.Equal(t, 51, r.Samples) // 0, 0.02 … 0.98 inside (50), and 1.00 to interpolate the end
	require.Equal(t, 20*time.Millisecond, r.Period)
}

func TestGaps(t *testing.T) {
	type gap struct{ from, to float64 }
	tests := []struct {
		name          string
		samples       []energy.Sample
		o             energy.Options
		a, b          float64
		wantE         float64 // J
		wantGaps      []gap
		wantCoverage  float64
		wantSamples   int
		wantBridgedE  float64
		wantUncertain float64 // with Resolution 0.1 W
	}{
		{
			name:    "step ramp, 10 s removed: bridged exactly",
			samples: without(means(ramp, time.Second, 0, 59), 20, 29), o: step1s, a: 0, b: 60,
			wantE: ramp.exact(0, 60), wantGaps: []gap{{20, 30}}, wantCoverage: 50.0 / 60, wantSamples: 50,
			wantBridgedE: 3500,
			// 0.1 × 60 + ½ |f(19.5) − f(30.5)| × 10 + 5 % × 3500
			wantUncertain: 6 + 0.5*110*10 + 175,
		},
		{
			name:    "trapezoid ramp 100 Hz, 10 s removed: bridged exactly",
			samples: without(instant(ramp, 10*time.Millisecond, 0, 60), 20.005, 29.995), o: trap, a: 0, b: 60,
			wantE: ramp.exact(0, 60), wantGaps: []gap{{20, 30}}, wantCoverage: 50.0 / 60, wantSamples: 2001 + 3001,
			wantBridgedE:  ramp.exact(20, 30),
			wantUncertain: 6 + 0.5*100*10 + 0.05*ramp.exact(20, 30),
		},
		{
			name:    "step, window starts inside the gap",
			samples: without(means(ramp, time.Second, 0, 59), 20, 29), o: step1s, a: 25, b: 40,
			// the bridge goes from f(19.5)=295 at 20 s to f(30.5)=405 at 30 s: 350 W at 25 s
			wantE: 5*(350+405)/2.0 + ramp.exact(30, 40), wantGaps: []gap{{25, 30}}, wantCoverage: 10.0 / 15, wantSamples: 10,
			wantBridgedE:  5 * (350 + 405) / 2.0,
			wantUncertain: 1.5 + 0.5*110*5 + 0.05*5*(350+405)/2.0,
		},
		{
			name: "step, 1.5-period hole is bridged but not a gap",
			samples: append(means(constant100, time.Second, 0, 9),
				instant(constant100, time.Second, 11.5, 58.5)...), // shifted grid: hole [10, 11.5)
			o: step1s, a: 0, b: 59.5,
			wantE: 5950, wantCoverage: 58.0 / 59.5, wantSamples: 58, wantBridgedE: 150,
			wantUncertain: 5.95 + 0.05*150,
		},
		{
			name:    "step, hole of exactly 2 periods is not a gap",
			samples: without(means(constant100, time.Second, 0, 59), 10, 11), o: step1s, a: 0, b: 60,
			wantE: 6000, wantCoverage: 58.0 / 60, wantSamples: 58, wantBridgedE: 200, wantUncertain: 6 + 10,
		},
		{
			name: "step, hole of 2 periods + 1 ns is a gap",
			samples: append(means(constant100, time.Second, 0, 9),
				instant(constant100, time.Second, 12.000000001, 59.000000001)...),
			o: step1s, a: 0, b: 60,
			wantE: 6000, wantGaps: []gap{{10, 12.000000001}}, wantCoverage: 57.999999999 / 60, wantSamples: 58,
			wantBridgedE: 200.0000001, wantUncertain: 6 + 0.05*200.0000001,
		},
		{
			name: "trapezoid, 1.5-period interval is not a gap and is covered",
			samples: append(instant(constant100, 10*time.Millisecond, 0, 1),
				instant(constant100, 10*time.Millisecond, 1.015, 2.005)...),
			o: trap, a: 0, b: 2,
			wantE: 200, wantCoverage: 1, wantSamples: 101 + 99 + 1, wantUncertain: 0.2, // 2.005 s interpolates the end
		},
		{
			name:    "step, NaN rows are missing data",
			samples: nanOut(means(ramp, time.Second, 0, 59), 20, 29), o: step1s, a: 0, b: 60,
			wantE: ramp.exact(0, 60), wantGaps: []gap{{20, 30}}, wantCoverage: 50.0 / 60, wantSamples: 50,
			wantBridgedE: 3500, wantUncertain: 6 + 0.5*110*10 + 175,
		},
		{
			name: "trapezoid BMC, two gaps",
			samples: []energy.Sample{
				{T: at(0), W: 100}, {T: at(5), W: 100}, {T: at(20), W: 200}, {T: at(25), W: 200}, {T: at(30), W: 200}, {T: at(50), W: 100}, {T: at(55), W: 100},
			},
			o: energy.Options{Method: energy.Trapezoid, Period: 5 * time.Second}, a: 0, b: 55,
			wantE: 500 + 15*150 + 10*200 + 20*150 + 500, wantGaps: []gap{{5, 20}, {30, 50}}, wantCoverage: 20.0 / 55, wantSamples: 7,
			wantBridgedE:  15*150 + 20*150,
			wantUncertain: 5.5 + 0.5*100*15 + 0.05*15*150 + 0.5*100*20 + 0.05*20*150,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.o
			o.Resolution = 0.1
			r, err := energy.Integrate(tt.samples, at(tt.a), at(tt.b), o)
			require.NoError(t, err)
			require.InDelta(t, tt.wantE, float64(r.Energy), 1e-9*tt.wantE)
			var want []energy.Gap
			for _, g := range tt.wantGaps {
				want = append(want, energy.Gap{From: at(g.from), To: at(g.to)})
			}
			require.Empty(t, cmp.Diff(want, r.Gaps))
			require.Equal(t, tt.wantCoverage, r.Coverage) // exact
			require.InDelta(t, 1-tt.wantCoverage, r.Bridged, 1e-15)
			require.Equal(t, tt.wantSamples, r.Samples)
			require.InDelta(t, tt.wantBridgedE, float64(r.BridgedEnergy), 1e-9*(tt.wantBridgedE+1))
			require.InDelta(t, tt.wantUncertain, float64(r.Uncertainty), 1e-9*tt.wantUncertain)
		})
	}
}

// nanOut replaces the values of the samples in [from, to] by NaN or ±Inf.
func nanOut(in []energy.Sample, from, to float64) []energy.Sample {
	out := append([]energy.Sample(nil), in...)
	bad := []float64{math.NaN(), math.Inf(1), math.Inf(-1)}
	for i, s := range out {
		if !s.T.Before(at(from)) && !s.T.After(at(to)) {
			out[i].W = bad[i%len(bad)]
		}
	}
	return out
}

func TestEdges(t *testing.T) {
	type gap struct{ from, to float64 }
	rising := func(from, to float64) []energy.Sample { // 1 Hz, value 100 + k at k s
		var out []energy.Sample
		for k := from; k <= to; k++ {
			out = append(out, energy.Sample{T: at(k), W: 100 + k})
		}
		return out
	}
	tests := []struct {
		name         string
		samples      []energy.Sample
		o            energy.Options
		a, b         float64
		wantE        float64
		wantGaps     []gap
		wantCoverage float64
		wantSamples  int
		wantPeak     float64
	}{
		{"step window inside one sample", rising(0, 10), step1s, 3.2, 3.7, 103 * 0.5, nil, 1, 1, 103},
		{"step window across one boundary", rising(0, 10), step1s, 3.75, 4.5, 103*0.25 + 104*0.5, nil, 1, 2, 104},
		{"step window ends on a sample", rising(0, 10), step1s, 2, 4, 102 + 103, nil, 1, 2, 103},
		{"step next sample early: the interval stops there",
			[]energy.Sample{{T: at(0), W: 100}, {T: at(0.6), W: 200}, {T: at(1.6), W: 300}},
			step1s, 0, 2.6, 0.6*100 + 200 + 300, nil, 1, 3, 300},
		{"trapezoid window between two samples",
			[]energy.Sample{{T: at(0), W: 100}, {T: at(5), W: 200}, {T: at(10), W: 100}},
			energy.Options{Method: energy.Trapezoid, Period: 5 * time.Second}, 1, 2, 130, nil, 1, 2, 140},
		{"trapezoid window across a sample, mid-interval edges",
			[]energy.Sample{{T: at(0), W: 100}, {T: at(5), W: 200}, {T: at(10), W: 100}},
			energy.Options{Method: energy.Trapezoid, Period: 5 * time.Second}, 4, 7.5, (180+200)/2.0 + 2.5*(200+150)/2, nil, 1, 3, 200},
		{"step start before the first sample, long: listed", rising(0, 9), step1s, -5, 10,
			5*100 + 1045, []gap{{-5, 0}}, 10.0 / 15, 10, 109},
		{"step start before the first sample, short: bridged, not listed", rising(0, 9), step1s, -1.5, 10,
			1.5*100 + 1045, nil, 10.0 / 11.5, 10, 109},
		{"step end after the last sample", rising(0, 9), step1s, 0, 15,
			1045 + 5*109, []gap{{10, 15}}, 10.0 / 15, 10, 109},
		{"trapezoid start before the first sample", rising(0, 10), trap, -3, 5,
			3*100 + 5*(100+105)/2.0, []gap{{-3, 0}}, 5.0 / 8, 6, 105},
		{"trapezoid end after the last sample, short", rising(0, 10), trap, 9, 10.5,
			(109+110)/2.0 + 0.5*110, nil, 1 / 1.5, 2, 110},
		{"step window entirely after the data", rising(0, 9), step1s, 20, 30, 10 * 109, []gap{{20, 30}}, 0, 0, 109},
		{"trapezoid window entirely before the data", rising(0, 9), trap, -30, -29.5, 0.5 * 100, nil, 0, 0, 100},
		{"single sample, step", rising(4, 4), step1s, 3.5, 5.5, 2 * 104, nil, 0.5, 1, 104},
		{"single sample, trapezoid, inferred period", rising(4, 4), trap, 3.5, 5.5, 2 * 104, nil, 0, 1, 104},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := energy.Integrate(tt.samples, at(tt.a), at(tt.b), tt.o)
			require.NoError(t, err)
			require.InDelta(t, tt.wantE, float64(r.Energy), 1e-9*math.Abs(tt.wantE))
			var want []energy.Gap
			for _, g := range tt.wantGaps {
				want = append(want, energy.Gap{From: at(g.from), To: at(g.to)})
			}
			require.Empty(t, cmp.Diff(want, r.Gaps))
			require.InDelta(t, tt.wantCoverage, r.Coverage, 1e-15)
			require.Equal(t, tt.wantSamples, r.Samples)
			require.InDelta(t, tt.wantPeak, float64(r.Peak), 1e-9)
			require.True(t, r.Start.Equal(at(tt.a)) && r.End.Equal(at(tt.b)))
			require.Equal(t, at(tt.b).Sub(at(tt.a)), r.Duration)
		})
	}
}

func TestGapTimesInWindowZone(t *testing.T) {
	utc := at(-5).UTC()
	r, err := energy.Integrate(instant(constant100, time.Second, 0, 9), utc, at(10), step1s)
	require.NoError(t, err)
	require.Len(t, r.Gaps, 1)
	require.Equal(t, time.UTC, r.Gaps[0].From.Location())
	require.Equal(t, 5*time.Second, r.Gaps[0].Duration())
}

// TestOrderDuplicatesNaN: out-of-order rows, duplicate timestamps (the last
// added wins) and NaN rows give the result of the clean sorted input.
func TestOrderDuplicatesNaN(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 2))
	series := []struct {
		name    string
		samples []energy.Sample
		o       energy.Options
		a, b    float64
	}{
		{"step 1 Hz", without(means(sine, time.Second, 0, 299), 100, 120), step1s, 0.4, 299.6},
		{"trapezoid 100 Hz", without(instant(sine, 10*time.Millisecond, 0, 60), 10, 12), trap, 0.0042, 59.9871},
		{"trapezoid BMC jittered", jitter(rng, instant(ramp, 5*time.Second, 0, 600)), energy.Options{Method: energy.Trapezoid}, 3, 597},
	}
	for _, s := range series {
		t.Run(s.name, func(t *testing.T) {
			want, err := energy.Integrate(s.samples, at(s.a), at(s.b), s.o)
			require.NoError(t, err)

			// bogus values first (overridden later), NaN/Inf anywhere, the true rows in random order
			in := energy.NewIntegrator(s.o)
			for _, x := range s.samples {
				if rng.IntN(4) == 0 {
					in.Add(x.T, -1e6)
				}
			}
			order := rng.Perm(len(s.samples))
			nans := 0
			for _, i := range order {
				x := s.samples[i]
				in.Add(x.T, x.W)
				if rng.IntN(10) == 0 {
					in.Add(x.T, math.NaN()) // ignored: does not override
					in.Add(x.T.Add(time.Duration(rng.Int64N(int64(time.Second)))), math.Inf(1))
					nans += 2
				}
			}
			require.Equal(t, len(s.samples), in.Len())
			require.Equal(t, nans, in.Invalid())
			got, err := in.Result(at(s.a), at(s.b))
			require.NoError(t, err)
			require.Empty(t, cmp.Diff(want, got))

			// a second call, and more rows added after a Result, behave the same
			again, err := in.Result(at(s.a), at(s.b))
			require.NoError(t, err)
			require.Empty(t, cmp.Diff(want, again))
			for _, i := range order[:len(order)/3] {
				in.Add(s.samples[i].T, s.samples[i].W)
			}
			again, err = in.Result(at(s.a), at(s.b))
			require.NoError(t, err)
			require.Empty(t, cmp.Diff(want, again))
		})
	}
}

// jitter moves each timestamp by up to ±100 ms, as BMC readings do.
func jitter(rng *rand.Rand, in []energy.Sample) []energy.Sample {
	out := append([]energy.Sample(nil), in...)
	for i := range out {
		out[i].T = out[i].T.Add(time.Duration(rng.Int64N(int64(200*time.Millisecond))) - 100*time.Millisecond)
	}
	return out
}

func TestErrors(t *testing.T) {
	ok := instant(constant100, time.Second, 0, 10)
	tests := []struct {
		name    string
		samples []energy.Sample
		o       energy.Options
		a, b    float64
		want    error
	}{
		{"no sample", nil, step1s, 0, 10, energy.ErrNoSamples},
		{"only NaN", []energy.Sample{{T: at(1), W: math.NaN()}, {T: at(2), W: math.Inf(-1)}}, trap, 0, 10, energy.ErrNoSamples},
		{"end equals start", ok, step1s, 5, 5, energy.ErrEmptyWindow},
		{"end before start", ok, trap, 5, 4, energy.ErrEmptyWindow},
		{"end 1 ns before start", ok, trap, 5, 4.999999999, energy.ErrEmptyWindow},
		{"negative period", ok, energy.Options{Method: energy.Trapezoid, Period: -time.Second}, 0, 10, energy.ErrBadOptions},
		{"unknown method", ok, energy.Options{Method: 7}, 0, 10, energy.ErrBadOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := energy.Integrate(tt.samples, at(tt.a), at(tt.b), tt.o)
			require.ErrorIs(t, err, tt.want)
		})
	}
	// 1 ns is a valid window
	r, err := energy.Integrate(ok, at(5), at(5.000000001), step1s)
	require.NoError(t, err)
	require.InDelta(t, 100e-9, float64(r.Energy), 1e-18)
}

func TestStrings(t *testing.T) {
	tests := []struct {
		got  string
		want string
	}{
		{energy.Joules(41300).String(), "41.3 kJ"},
		{energy.Joules(41312.7).String(), "41.31 kJ"},
		{energy.Joules(1040).String(), "1.04 kJ"},
		{energy.Joules(812).String(), "812 J"},
		{energy.Joules(2.5e6).String(), "2.5 MJ"},
		{energy.Joules(-2500).String(), "-2.5 kJ"},
		{energy.Joules(0).String(), "0 J"},
		{energy.Joules(0.25).String(), "250 mJ"},
		{energy.Joules(math.NaN()).String(), "NaN J"},
		{energy.Watts(129.7).String(), "129.7 W"},
		{energy.Watts(129.74).String(), "129.7 W"},
		{energy.Watts(999.96).String(), "1 kW"},
		{energy.Watts(0.0123).String(), "12.3 mW"},
		{energy.Watts(1234.5).String(), "1.234 kW"},
		{energy.Watts(math.Inf(1)).String(), "+Inf W"},
		{energy.StepAverage.Describe(time.Second), "step integration of 1 s averages (each sample covers [t, t+1s))"},
		{energy.StepAverage.Describe(5 * time.Second), "step integration of 5 s averages (each sample covers [t, t+5s))"},
		{energy.StepAverage.Describe(1500 * time.Millisecond), "step integration of 1.5 s averages (each sample covers [t, t+1.5s))"},
		{energy.StepAverage.Describe(500 * time.Millisecond), "step integration of 500 ms averages (each sample covers [t, t+500ms))"},
		{energy.Trapezoid.Describe(20 * time.Millisecond), "trapezoidal integration of instantaneous samples"},
		{energy.StepAverage.String(), "step-average"},
		{energy.Trapezoid.String(), "trapezoid"},
		{energy.Method(9).String(), "Method(9)"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, tt.got)
	}
}

func TestMethodFor(t *testing.T) {
	tests := []struct {
		metric string
		period time.Duration
		want   energy.Method
	}{
		{"wattmetre_power_watt", time.Second, energy.StepAverage},
		{"wattmetre_power_watt", 5 * time.Second, energy.StepAverage},
		{"wattmetre_power_watt", 20 * time.Millisecond, energy.Trapezoid},
		{"wattmetre_power_watt", 10 * time.Millisecond, energy.Trapezoid},
		{"wattmetre_power_watt", 0, energy.Trapezoid},
		{"bmc_node_power_watt", 5 * time.Second, energy.Trapezoid},
		{"pdu_outlet_power_watt", time.Second, energy.Trapezoid},
		{"prom_DCGM_FI_DEV_POWER_USAGE", 15 * time.Second, energy.Trapezoid},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, energy.MethodFor(tt.metric, tt.period), "%s %v", tt.metric, tt.period)
	}
	require.Equal(t, energy.Options{Method: energy.StepAverage, Period: time.Second, GapFactor: 2, Resolution: 0.1},
		energy.OptionsFor("wattmetre_power_watt", time.Second))
	require.Equal(t, energy.Watts(1), energy.ResolutionFor("bmc_node_power_watt"))
}

// TestGapFactor: the threshold follows GapFactor; 0 means 2.
func TestGapFactor(t *testing.T) {
	samples := without(means(constant100, time.Second, 0, 59), 10, 12) // hole of 3 s
	for _, tt := range []struct {
		factor float64
		gaps   int
	}{{0, 1}, {math.NaN(), 1}, {2, 1}, {2.9, 1}, {3, 0}, {5, 0}} {
		o := step1s
		o.GapFactor = tt.factor
		r, err := energy.Integrate(samples, at(0), at(60), o)
		require.NoError(t, err)
		require.Len(t, r.Gaps, tt.gaps, "factor %v", tt.factor)
		require.Equal(t, 57.0/60, r.Coverage)
	}
}

// TestAdditive is a property test: for random series (jitter, holes, gaps,
// duplicates, out of order) energy, covered time and uncertainty are
// additive over adjacent windows, E[a,c] = E[a,b] + E[b,c], for both methods.
func TestAdditive(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for iter := range 500 {
		o := energy.Options{Method: energy.Method(rng.IntN(2)), GapFactor: 1 + 3*rng.Float64(), Resolution: energy.Watts(rng.Float64())}
		period := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, time.Second, 5 * time.Second}[rng.IntN(4)]
		if rng.IntN(2) == 0 {
			o.Period = period
		}
		in := energy.NewIntegrator(o)
		n := 1 + rng.IntN(400)
		var ts time.Duration
		for range n {
			switch k := rng.IntN(20); {
			case k == 0: // gap
				ts += time.Duration(3+rng.IntN(10)) * period
			case k == 1: // duplicate timestamp
			default: // jittered period
				ts += period + time.Duration(rng.NormFloat64()*float64(period)/20)
			}
			in.Add(t0.Add(ts), 50+200*rng.Float64())
		}
		span := ts + 10*period
		pick := func() time.Time {
			return t0.Add(-5*period + time.Duration(rng.Int64N(int64(span))))
		}
		a, b, c := pick(), pick(), pick()
		if a.After(b) {
			a, b = b, a
		}
		if b.After(c) {
			b, c = c, b
		}
		if a.After(b) {
			a, b = b, a
		}
		if !a.Before(b) || !b.Before(c) {
			continue
		}
		ac, err1 := in.Result(a, c)
		ab, err2 := in.Result(a, b)
		bc, err3 := in.Result(b, c)
		require.NoError(t, errors.Join(err1, err2, err3))
		sum := float64(ab.Energy + bc.Energy)
		require.LessOrEqual(t, relErr(float64(ac.Energy), sum), 1e-9, "iter %d (%v): E[a,c]=%v, E[a,b]+E[b,c]=%v", iter, o.Method, ac.Energy, sum)
		cov := func(r energy.Result) float64 { return r.Coverage * float64(r.Duration) }
		require.InDelta(t, cov(ac), cov(ab)+cov(bc), 1e-6*float64(ac.Duration), "iter %d coverage", iter)
		require.LessOrEqual(t, relErr(float64(ac.Uncertainty), float64(ab.Uncertainty+bc.Uncertainty)), 1e-9, "iter %d uncertainty", iter)
		require.LessOrEqual(t, relErr(float64(ac.BridgedEnergy), float64(ab.BridgedEnergy+bc.BridgedEnergy)), 1e-9, "iter %d bridged", iter)
		require.GreaterOrEqual(t, float64(ac.Peak)*(1+1e-12), float64(ac.Mean))
		require.Equal(t, max(ab.Peak, bc.Peak), ac.Peak)
	}
}

// TestDuplicatesInOrder: rows in order with repeated timestamps keep the last.
func TestDuplicatesInOrder(t *testing.T) {
	in := energy.NewIntegrator(step1s)
	for k := range 10 {
		in.Add(at(float64(k)), 999)
		in.Add(at(float64(k)), 100)
	}
	require.Equal(t, 10, in.Len())
	r, err := in.Result(at(0), at(10))
	require.NoError(t, err)
	require.InDelta(t, 1000, float64(r.Energy), 1e-9)
	require.Equal(t, energy.Watts(100), r.Peak)
}

// TestReset: a reset integrator gives what a new one gives, with its new
// options, and forgets its samples and counts.
func TestReset(t *testing.T) {
	start, end := time.Unix(100, 0), time.Unix(110, 0)
	fresh := energy.NewIntegrator(energy.Options{Method: energy.Trapezoid, Period: time.Second})
	reused := energy.NewIntegrator(energy.Options{Method: energy.StepAverage, Period: 2 * time.Second})
	for i := range 20 {
		reused.Add(time.Unix(int64(90+i), 0), 500)
		reused.Add(time.Unix(int64(95-i), 0), math.NaN())
	}
	reused.Reset(energy.Options{Method: energy.Trapezoid, Period: time.Second})
	require.Zero(t, reused.Len())
	require.Zero(t, reused.Invalid())
	for i := range 12 {
		w := 100 + 10*float64(i)
		fresh.Add(time.Unix(int64(99+i), 0), w)
		reused.Add(time.Unix(int64(99+i), 0), w)
	}
	a, err := fresh.Result(start, end)
	require.NoError(t, err)
	b, err := reused.Result(start, end)
	require.NoError(t, err)
	require.Equal(t, a, b)
}
