package kwollectinput

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/kwollect"
	"github.com/alumet-go/alumet-agent/measure"
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
