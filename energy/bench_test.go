package energy_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/alumet-go/alumet-agent/energy"
)

// BenchmarkIntegrate integrates 1M samples (about 2.8 h of 100 Hz raw
// wattmetre frames, or 11.6 days of 1 Hz rows): adding them to an
// Integrator and computing the Result over the whole span, for input in
// order, as fetch chunks arriving newest first, and shuffled.
func BenchmarkIntegrate(b *testing.B) {
	const n = 1_000_000
	for _, c := range []struct {
		name   string
		period time.Duration
		method energy.Method
		order  string
	}{
		{"trapezoid-100Hz/sorted", 10 * time.Millisecond, energy.Trapezoid, "sorted"},
		{"trapezoid-100Hz/chunks", 10 * time.Millisecond, energy.Trapezoid, "chunks"},
		{"trapezoid-100Hz/shuffled", 10 * time.Millisecond, energy.Trapezoid, "shuffled"},
		{"step-1Hz/sorted", time.Second, energy.StepAverage, "sorted"},
		{"step-1Hz/inferred-period", 0, energy.StepAverage, "sorted"},
	} {
		b.Run(c.name, func(b *testing.B) {
			p := c.period
			if p == 0 {
				p = time.Second
			}
			samples := make([]energy.Sample, n)
			rng := rand.New(rand.NewPCG(3, 5))
			for i := range samples {
				samples[i] = energy.Sample{T: t0.Add(time.Duration(i) * p), W: 100 + 50*rng.Float64()}
			}
			switch c.order {
			case "chunks": // 100 chunks of 10k rows, newest chunk first
				const k = 10_000
				chunked := make([]energy.Sample, 0, n)
				for j := n - k; j >= 0; j -= k {
					chunked = append(chunked, samples[j:j+k]...)
				}
				samples = chunked
			case "shuffled":
				rng.Shuffle(n, func(i, j int) { samples[i], samples[j] = samples[j], samples[i] })
			}
			start, end := t0.Add(p/3), t0.Add(time.Duration(n-1)*p-p/3)
			o := energy.Options{Method: c.method, Period: c.period, Resolution: 0.1}
			b.ReportAllocs()
			for b.Loop() {
				r, err := energy.Integrate(samples, start, end, o)
				if err != nil || r.Samples < n-2 {
					b.Fatal(err, r.Samples)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
