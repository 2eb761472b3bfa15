package rapl

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCounterUpdate(t *testing.T) {
	tests := []struct {
		name     string
		max      uint64
		readings []uint64
		diffs    []uint64
		kinds    []updateKind
	}{
		{"first then up", alumetMax, []uint64{100, 150, 150}, []uint64{0, 50, 0}, []updateKind{first, difference, difference}},
		// Alumet's test (core/alumet/src/plugin/util.rs): 50000.908523 J.
		{"Alumet's wrap", alumetMax, []uint64{212143328850, 908522}, []uint64{0, 50000908523}, []updateKind{first, wrapped}},
		{"wrap to zero", 10, []uint64{10, 0}, []uint64{0, 1}, []updateKind{first, wrapped}},
		{"perf wraps at 2^64", math.MaxUint64, []uint64{math.MaxUint64 - 9, 5}, []uint64{0, 15}, []updateKind{first, wrapped}},
		{"above max: no correction", 100, []uint64{150, 20}, []uint64{0, 0}, []updateKind{first, badMax}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := counter{max: tt.max}
			for i, v := range tt.readings {
				d, k := c.update(v)
				require.Equal(t, tt.diffs[i], d, "reading %d", i)
				require.Equal(t, tt.kinds[i], k, "reading %d", i)
			}
		})
	}
}

func TestEnergyPlausibility(t *testing.T) {
	tests := []struct {
		name     string
		max      uint64
		scale    float64
		prev, v  uint64
		dt       time.Duration
		joules   float64
		errorMsg string
	}{
		{name: "Alumet's wrap over 20 s", max: alumetMax, scale: 1e-6, prev: 212143328850, v: 908522, dt: 20 * time.Second, joules: 50000.908523},
		// The same readings 1 s apart would be 50 kW: a reset, not energy.
		{name: "Alumet's wrap over 1 s is a reset", max: alumetMax, scale: 1e-6, prev: 212143328850, v: 908522, dt: time.Second,
			errorMsg: "the counter went back from 212143328850 to 908522: 50000.9 J in 1s would be 50001 W, above 5000 W, so it was reset rather than consumed; this interval is not counted"},
		{name: "reset to a small value", max: alumetMax, scale: 1e-6, prev: 100_000_000_000, v: 5_000, dt: time.Second, errorMsg: "so it was reset"},
		{name: "wrap just past the max", max: alumetMax, scale: 1e-6, prev: alumetMax - 100_000_000, v: 50_000_000, dt: time.Second, joules: 150.000001},
		{name: "jump up", max: alumetMax, scale: 1e-6, prev: 1_000, v: 200_000_000_000, dt: time.Second, errorMsg: "the counter jumped from 1000 to 200000000000"},
		{name: "above max", max: 1000, scale: 1e-6, prev: 5000, v: 10, dt: time.Second, errorMsg: "above its maximum: taken for a reset"},
		{name: "perf wrap", max: math.MaxUint64, scale: math.Ldexp(1, -32), prev: math.MaxUint64 - (1<<32 - 1), v: 1 << 32, dt: time.Second, joules: 2},
		{name: "same instant", max: alumetMax, scale: 1e-6, prev: 10, v: 20, dt: 0, joules: 1e-5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := energy{counter: counter{max: tt.max}, scale: tt.scale}
			_, ok, err := e.update(tt.prev, 0)
			require.NoError(t, err)
			require.False(t, ok, "the first reading gives nothing")
			j, ok, err := e.update(tt.v, tt.dt)
			if tt.errorMsg != "" {
				require.ErrorContains(t, err, tt.errorMsg)
				require.False(t, ok)
				// The next interval is measured from the new value.
				j, ok, err = e.update(tt.v+1000, time.Second)
				require.NoError(t, err)
				require.True(t, ok)
				require.InDelta(t, 1000*tt.scale, j, 1e-12)
				return
			}
			require.NoError(t, err)
			require.True(t, ok)
			require.InDelta(t, tt.joules, j, 1e-9)
		})
	}
}
