package energy_test

import (
	"math"
	"time"

	"github.com/alumet-go/alumet-agent/energy"
)

// t0 is the origin of every test series, in Europe/Paris summer time like Kwollect's timestamps.
var t0 = time.Date(2024, 10, 3, 8, 12, 0, 0, time.FixedZone("CEST", 2*3600))

// at is t0 + sec seconds, rounded to the ns.
func at(sec float64) time.Time { return t0.Add(time.Duration(math.Round(sec * 1e9))) }

// signal is an analytic power signal with its antiderivative.
type signal struct {
	f func(s float64) float64 // W at s seconds after t0
	F func(s float64) float64 // ∫ f, J
}

// exact is ∫_a^b f in J.
func (g signal) exact(a, b float64) float64 { return g.F(b) - g.F(a) }

var (
	constant100 = signal{
		f: func(float64) float64 { return 100 },
		F: func(s float64) float64 { return 100 * s },
	}
	// ramp is P(t) = 100 + 10 t.
	ramp = signal{
		f: func(s float64) float64 { return 100 + 10*s },
		F: func(s float64) float64 { return 100*s + 5*s*s },
	}
	// square is 100 W on [2k, 2k+1), 200 W on [2k+1, 2k+2).
	square = signal{
		f: func(s float64) float64 {
			if r := s - 2*math.Floor(s/2); r >= 1 {
				return 200
			}
			return 100
		},
		F: func(s float64) float64 {
			k := math.Floor(s / 2)
			r := s - 2*k
			if r < 1 {
				return 300*k + 100*r
			}
			return 300*k + 100 + 200*(r-1)
		},
	}
	// sine is 150 + 50 sin(2π t / 60).
	sine = signal{
		f: func(s float64) float64 { return 150 + 50*math.Sin(2*math.Pi*s/60) },
		F: func(s float64) float64 { return 150*s - 50*60/(2*math.Pi)*math.Cos(2*math.Pi*s/60) },
	}
)

// instant samples g every period from `from` to `to` (s after t0,
// inclusive), as instantaneous readings.
func instant(g signal, period time.Duration, from, to float64) []energy.Sample {
	var out []energy.Sample
	for d := at(from).Sub(t0); d <= at(to).Sub(t0); d += period {
		out = append(out, energy.Sample{T: t0.Add(d), W: g.f(d.Seconds())})
	}
	return out
}

// means samples g like Kwollect's 1 Hz rows: the mean of g over [t, t+period),
// stamped at t, every period from `from` to `to` (s after t0, inclusive).
func means(g signal, period time.Duration, from, to float64) []energy.Sample {
	var out []energy.Sample
	p := period.Seconds()
	for d := at(from).Sub(t0); d <= at(to).Sub(t0); d += period {
		s := d.Seconds()
		out = append(out, energy.Sample{T: t0.Add(d), W: g.exact(s, s+p) / p})
	}
	return out
}

// without drops the samples in [from, to] (seconds after t0, inclusive).
func without(in []energy.Sample, from, to float64) []energy.Sample {
	var out []energy.Sample
	for _, s := range in {
		if !s.T.Before(at(from)) && !s.T.After(at(to)) {
			continue
		}
		out = append(out, s)
	}
	return out
}

func relErr(got, want float64) float64 {
	if want == 0 {
		return math.Abs(got)
	}
	return math.Abs(got-want) / math.Abs(want)
}
