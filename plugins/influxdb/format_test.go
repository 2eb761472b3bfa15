package influxdb

import (
	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
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

func BenchmarkFormat(b *testing.B) {
	buf := make([]byte, 0, 64)
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
