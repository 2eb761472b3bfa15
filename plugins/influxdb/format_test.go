package influxdb

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/measure"
)

// nanos writes what strconv does, in and out of its cached second.
func TestNanos(t *testing.T) {
	for _, tc := range []struct {
		name string
		ns   []int64
	}{
		{"small and negative", []int64{0, 5, 999_999_999, -1, -1_000_000_000, math.MinInt64}},
		{"one second, then the next", []int64{1753182326000468000, 1753182326004657000, 1753182326999999999, 1753182327000000000, 1753182327000000001}},
		{"back in time", []int64{1753182327000000000, 1753182326000000000, 1_000_000_000, 1_000_000_001, 999_999_999}},
		{"extremes", []int64{math.MaxInt64, math.MaxInt64 - 1, 1_000_000_000, 9_999_999_999, 10_000_000_000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n nanos
			for _, ns := range tc.ns {
				require.Equal(t, strconv.FormatInt(ns, 10), string(n.append([]byte("x"), ns)[1:]))
			}
		})
	}
}

// appendFloat writes what measure.AppendFloat does.
func TestAppendFloat(t *testing.T) {
	cases := []float64{0, math.Copysign(0, -1), 1, -1, 0.001, -0.001, 0.00099999, 0.0015, 0.00015, 1e-7,
		130, 130.5, 130.25, 130.125, 130.0625, 130.03125, 112.73, 88.9, 142.28, 0.1, 0.2, 0.3, 1.0001, 1.00001,
		999999999.9999, 999999999.99995, 1e9, 1e9 - 1, 123456789.123, 1e21, 1.7976931348623157e308, 5e-324,
		12.5, -12.5, 0.5, 2.675, 1.005, 4.35, 99.99, 100, 1000, 1e6 + 0.01}
	r := rand.New(rand.NewPCG(7, 7))
	for range 20000 {
		// Readings of two or four decimals, and any double.
		cases = append(cases, float64(r.Int64N(1e8))/100, float64(r.Int64N(1e12))/1e4-5e7,
			math.Float64frombits(r.Uint64()), r.Float64()*1e3)
	}
	for _, f := range cases {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		require.Equal(t, string(measure.AppendFloat(nil, f)), string(appendFloat(nil, f)), "%v (%x)", f, math.Float64bits(f))
	}
}

func FuzzAppendFloat(f *testing.F) {
	f.Add(112.73)
	f.Add(0.001)
	f.Add(999999999.99995)
	f.Fuzz(func(t *testing.T, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return
		}
		require.Equal(t, string(measure.AppendFloat(nil, v)), string(appendFloat(nil, v)))
	})
}

func BenchmarkFormat(b *testing.B) {
	vals := make([]float64, 1000)
	r := rand.New(rand.NewPCG(1, 1))
	for i := range vals {
		vals[i] = float64(r.Int64N(15000)) / 100
	}
	buf := make([]byte, 0, 64)
	b.Run("appendFloat", func(b *testing.B) {
		for b.Loop() {
			for _, v := range vals {
				buf = appendFloat(buf[:0], v)
			}
		}
	})
	b.Run("measure.AppendFloat", func(b *testing.B) {
		for b.Loop() {
			for _, v := range vals {
				buf = measure.AppendFloat(buf[:0], v)
			}
		}
	})
	var n nanos
	b.Run("nanos", func(b *testing.B) {
		for b.Loop() {
			for i := range 1000 {
				buf = n.append(buf[:0], 1753182326000468000+int64(i)*2_000_000)
			}
		}
	})
	b.Run("strconv.AppendInt", func(b *testing.B) {
		for b.Loop() {
			for i := range 1000 {
				buf = strconv.AppendInt(buf[:0], 1753182326000468000+int64(i)*2_000_000, 10)
			}
		}
	})
}
