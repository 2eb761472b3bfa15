package promremotewrite

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/plugins/internal/push"
)

// BenchmarkRequest is the sender's cost of a default batch (5000 points,
// 10 wattmeter series at 50 Hz, interleaved as kwollect-input delivers a
// multi-node window): decoding the records, grouping by series, snappy.
func BenchmarkRequest(b *testing.B) {
	reg := measure.NewRegistry()
	out, err := newOutput(DefaultConfig(), reg, nil, push.Options{})
	require.NoError(b, err)
	defer out.Close()
	w, err := reg.Register(measure.Metric{Name: "wattmetre_power_watt", Unit: measure.Plain(measure.Watt), Type: measure.F64})
	require.NoError(b, err)
	var series []uint32
	for n := range 10 {
		s := &measure.Series{Metric: w, Resource: measure.Resource{Kind: "device_id", ID: fmt.Sprintf("taurus-%d", n+1)},
			Consumer: measure.Consumer{Kind: "device_origin", ID: fmt.Sprintf("wattmetre1-port%d", n)}, Attributes: []measure.Attribute{{Key: "metric_id", Value: measure.String("wattmetre_power_watt")}}}
		id, ok := out.enc.compactSeries(s)
		require.True(b, ok)
		series = append(series, id)
	}
	start := time.Date(2025, 7, 22, 11, 5, 26, 468000, time.UTC).UnixNano()
	batch := func(k int) []byte {
		var body []byte
		for i := range push.DefaultBatchPoints {
			j := k*push.DefaultBatchPoints + i
			ns := start + int64(j/10)*20e6 + int64(j%10)*4e6
			body = push.AppendSample(body, series[j%10], ns, 80+float64(j%997)/100)
		}
		return body
	}
	bodies := make([][]byte, 200) // 1 M points
	for k := range bodies {
		bodies[k] = batch(k)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		_, err := out.request(bodies[i%len(bodies)])
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*push.DefaultBatchPoints), "ns/point")
}
