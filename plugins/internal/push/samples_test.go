package push

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/pipeline"
)

func TestSampleRecords(t *testing.T) {
	var b []byte
	in := []struct {
		id uint32
		ns int64
		v  float64
	}{{0, 1753182326000468000, 88.9}, {MaxSeries - 1, -1, math.Inf(-1)}, {7, math.MaxInt64, 0}}
	for _, s := range in {
		b = AppendSample(b, s.id, s.ns, s.v)
	}
	require.LessOrEqual(t, len(b), len(in)*SampleSize)
	for _, s := range in {
		id, ns, v, rest, ok := NextSample(b)
		require.True(t, ok)
		require.Equal(t, s.id, id)
		require.Equal(t, s.ns, ns)
		require.Equal(t, s.v, v)
		b = rest
	}
	require.Empty(t, b)
	for _, bad := range [][]byte{{0x80}, {1, 2, 3}, AppendSample(nil, MaxSeries, 0, 0)} {
		_, _, _, _, ok := NextSample(bad)
		require.False(t, ok, "%x", bad)
	}
}

func TestExtraLoss(t *testing.T) {
	e := &ExtraLoss{Name: "x", Why: "rejected by the collector", N: 3}
	require.Equal(t, int64(3), e.LostPoints())
	require.Equal(t, "x: 3 points rejected by the collector", e.Error())
	inner := &LossError{Name: "x", Target: "http://h", Stats: Stats{Dropped: 1000}}
	e.Err = inner
	var le pipeline.LossError
	require.True(t, errors.As(e, &le))
	require.Equal(t, int64(1003), e.LostPoints())
	require.Contains(t, e.Error(), "; x: 3 points rejected")
}
