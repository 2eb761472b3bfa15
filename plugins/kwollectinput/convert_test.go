package kwollectinput

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/kwollect"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline/pipelinetest"
)

// The points of rows that carry a kwollect.Row.Series are those of the same
// rows without it: the converter's cache by Series (slots shared by ids 64
// apart, a series seen again after another took its slot) only skips work.
func TestConverterSeriesHint(t *testing.T) {
	t0 := time.Date(2025, 7, 22, 11, 5, 26, 468000, time.UTC)
	series := []kwollect.Row{
		{DeviceID: "taurus-3", MetricID: "wattmetre_power_watt", DeviceOrig: []string{"wattmetre1-port2"}},
		{DeviceID: "taurus-3", MetricID: "bmc_node_power_watt"},
		{DeviceID: "taurus-7", MetricID: "wattmetre_power_watt", DeviceOrig: []string{"wattmetre1-port6"}},
		{DeviceID: "taurus-7", MetricID: "wattmetre_power_watt", DeviceOrig: []string{"wattmetre1-port6"},
			Labels: []kwollect.Label{{Key: "_ext", Value: "x"}}},
	}
	// Ids 5 and 69 share slot 5, 6 and 134 slot 6.
	ids := []uint64{5, 69, 6, 134}
	var rows []kwollect.Row
	for i := range 40 {
		k := (i * 7 / 3) % len(series)
		r := series[k]
		r.Timestamp = t0.Add(time.Duration(i) * 20 * time.Millisecond)
		r.Value = float64(100 + i)
		r.Series = ids[k]
		rows = append(rows, r)
	}
	convert := func(rows []kwollect.Row, hint bool) []measure.Point {
		s := &Source{cfg: DefaultConfig(), reg: measure.NewRegistry(), ids: map[string]measure.MetricID{}}
		c := s.newConverter(2)
		var out []measure.Point
		for _, r := range rows {
			if !hint {
				r.Series = 0
			}
			p, err := c.point(&r)
			require.NoError(t, err)
			out = append(out, p)
		}
		return out
	}
	want, got := convert(rows, false), convert(rows, true)
	require.Empty(t, cmp.Diff(want, got, cmp.AllowUnexported(measure.Value{}, measure.AttrValue{})))
	seen := map[string]bool{}
	for _, p := range got {
		seen[fmt.Sprint(p.Resource.ID, p.Metric, p.Consumer.ID, len(p.Attributes))] = true
	}
	require.Len(t, seen, len(series), "every series was converted")
}

// The sink emits compact points to a consumer that takes them, the same
// points as Points otherwise; null rows are skipped either way, and a
// batch with a time past 2262 goes as Points.
func TestSinkCompact(t *testing.T) {
	t0 := time.Date(2025, 7, 22, 11, 5, 26, 468000, time.FixedZone("CEST", 7200))
	var rows []kwollect.Row
	for i := range 30 {
		r := kwollect.Row{DeviceID: fmt.Sprintf("taurus-%d", i%3), MetricID: "wattmetre_power_watt",
			DeviceOrig: []string{fmt.Sprintf("wattmetre1-port%d", i%3)}, Timestamp: t0.Add(time.Duration(i) * 20 * time.Millisecond),
			Value: float64(100 + i), Series: uint64(1 + i%3), Null: i == 7}
		rows = append(rows, r)
	}
	far := rows[0]
	far.Timestamp = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	emit := func(compact bool, batches ...[]kwollect.Row) []*measure.Buffer {
		s := &Source{cfg: DefaultConfig(), reg: measure.NewRegistry(), ids: map[string]measure.MetricID{}}
		em := &pipelinetest.Recorder{AcceptCompact: compact}
		sink := s.sink(context.Background(), em, 1)
		for _, b := range batches {
			require.NoError(t, sink(b))
		}
		return em.Buffers()
	}
	plain := emit(false, rows, []kwollect.Row{far})
	compact := emit(true, rows, []kwollect.Row{far})
	require.Len(t, compact, 2)
	require.Empty(t, compact[0].Points)
	require.Len(t, compact[0].Compact, 29, "the null row is skipped")
	require.Empty(t, compact[1].Compact, "2300 does not fit in int64 nanoseconds")
	for i := range plain {
		require.Empty(t, plain[i].Compact)
		compact[i].Expand()
		require.Empty(t, cmp.Diff(plain[i].Points, compact[i].Points, cmp.AllowUnexported(measure.Value{}, measure.AttrValue{})))
	}
}
