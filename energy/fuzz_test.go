package energy_test

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/alumet-go/alumet-agent/energy"
)

// FuzzIntegrate turns random bytes into samples (3-byte records: a time in
// 10 ms steps, possibly out of order or repeated, and a value in W, some NaN)
// and checks the invariants: no panic, errors only for no sample or an empty
// window, Coverage and Bridged in [0, 1] summing to 1, finite Energy and
// Uncertainty, Mean ≤ Peak, gaps ordered inside the window, and additivity
// over a split window. Every method is fuzzed, Counter with and without a wrap. With raw set, values are arbitrary float64 bits and
// only the value-independent invariants are checked.
func FuzzIntegrate(f *testing.F) {
	f.Add([]byte{0, 10, 100, 1, 10, 100, 2, 10, 120, 9, 10, 90}, uint8(0), uint16(1000), int16(-5), uint16(300), uint16(7), uint8(20), false)
	f.Add([]byte{5, 0, 1, 4, 0, 2, 3, 0, 3, 3, 0, 4, 0x80, 0, 0}, uint8(1), uint16(0), int16(1), uint16(3), uint16(0), uint8(0), false)
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24}, uint8(1), uint16(20), int16(100), uint16(100), uint16(999), uint8(255), true)
	f.Add([]byte{0, 0, 100, 1, 0, 120, 2, 0, 5, 3, 0, 30}, uint8(6), uint16(10), int16(-5), uint16(300), uint16(7), uint8(20), false)
	f.Add([]byte{0, 0, 100, 1, 0, 120, 2, 0, 5, 3, 0, 30}, uint8(3), uint16(0), int16(50), uint16(30), uint16(7), uint8(20), false)
	f.Add([]byte{}, uint8(0), uint16(0), int16(0), uint16(0), uint16(0), uint8(0), false)
	f.Fuzz(func(t *testing.T, data []byte, method uint8, periodMs uint16, start int16, length uint16, startNs uint16, gapTenth uint8, raw bool) {
		o := energy.Options{
			Method:     energy.Method(method % 4),
			Period:     time.Duration(periodMs) * time.Millisecond,
			GapFactor:  float64(gapTenth) / 10,
			Resolution: 0.1,
		}
		if method&4 != 0 {
			o.Wrap = 200 // Counter: some decreases are wraps
		}
		in := energy.NewIntegrator(o)
		bounded := true
		if raw {
			for len(data) >= 10 {
				w := math.Float64frombits(binary.LittleEndian.Uint64(data[2:]))
				in.Add(t0.Add(time.Duration(int16(binary.LittleEndian.Uint16(data)))*10*time.Millisecond), w)
				if !(math.Abs(w) < 1e100) {
					bounded = false
				}
				data = data[10:]
			}
		} else {
			for len(data) >= 3 {
				w := float64(int8(data[2])) * 1.7
				if data[2] == 0x80 {
					w = math.NaN()
				}
				in.Add(t0.Add(time.Duration(int16(binary.LittleEndian.Uint16(data)))*10*time.Millisecond), w)
				data = data[3:]
			}
		}
		a := t0.Add(time.Duration(start)*10*time.Millisecond + time.Duration(startNs))
		c := a.Add(time.Duration(length) * 10 * time.Millisecond)
		r, err := in.Result(a, c)
		if err != nil {
			if !errors.Is(err, energy.ErrNoSamples) && !errors.Is(err, energy.ErrEmptyWindow) {
				t.Fatalf("unexpected error %v", err)
			}
			if errors.Is(err, energy.ErrEmptyWindow) != (length == 0) {
				t.Fatalf("empty window error %v for length %d", err, length)
			}
			return
		}
		if !(r.Coverage >= 0 && r.Coverage <= 1 && r.Bridged >= 0 && r.Bridged <= 1) {
			t.Fatalf("coverage %v, bridged %v", r.Coverage, r.Bridged)
		}
		if math.Abs(r.Coverage+r.Bridged-1) > 1e-15 {
			t.Fatalf("coverage %v + bridged %v != 1", r.Coverage, r.Bridged)
		}
		if r.Samples < 0 || r.Samples > in.Len() {
			t.Fatalf("samples %d of %d", r.Samples, in.Len())
		}
		last := a
		for _, g := range r.Gaps {
			if !g.From.Before(g.To) || g.From.Before(last) || g.To.After(c) {
				t.Fatalf("bad gap %v in [%v, %v] after %v", g, a, c, last)
			}
			last = g.To
		}
		if !bounded {
			return
		}
		for _, v := range []float64{float64(r.Energy), float64(r.Mean), float64(r.Peak), float64(r.Uncertainty), float64(r.BridgedEnergy)} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("non-finite result %+v", r)
			}
		}
		if r.Uncertainty < 0 {
			t.Fatalf("negative uncertainty %v", r.Uncertainty)
		}
		if float64(r.Mean) > float64(r.Peak)+1e-9*math.Abs(float64(r.Peak))+1e-12 {
			t.Fatalf("mean %v above peak %v", r.Mean, r.Peak)
		}
		if length < 2 {
			return
		}
		b := a.Add(time.Duration(length/2) * 10 * time.Millisecond)
		ab, err1 := in.Result(a, b)
		bc, err2 := in.Result(b, c)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		sum := float64(ab.Energy + bc.Energy)
		scale := math.Abs(float64(ab.Energy)) + math.Abs(float64(bc.Energy)) + 1e-9
		if math.Abs(float64(r.Energy)-sum) > 1e-9*scale {
			t.Fatalf("not additive: E[a,c]=%v, E[a,b]+E[b,c]=%v", r.Energy, sum)
		}
	})
}
