package prometheusexporter

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/alumet-go/alumet-agent/measure"
)

const benchPoints = 1_000_000

// benchBuffer is the reference workload's shape: 1 M points of 16 series
// (16 nodes at 50 Hz), compact as kwollect-input emits them, or expanded.
func benchBuffer(b *testing.B, reg *measure.Registry, compact bool, nseries int) *measure.Buffer {
	id := wattmetre(b, reg)
	series := make([]measure.Series, nseries)
	for i := range series {
		series[i] = measure.Series{Metric: id, Resource: measure.Resource{Kind: "device_id", ID: fmt.Sprintf("taurus-%d", i)},
			Consumer:   measure.Consumer{Kind: "device_origin", ID: fmt.Sprintf("wattmetre1-port%d", i)},
			Attributes: []measure.Attribute{str("metric_id", "wattmetre_power_watt")}}
	}
	buf := &measure.Buffer{}
	for i := range benchPoints {
		sp := measure.SeriesPoint{Series: &series[i%nseries], Time: pTime + int64(i/nseries)*20e6, Value: measure.Float(130 + float64(i%100)/100)}
		if compact {
			buf.Compact = append(buf.Compact, sp)
		} else {
			buf.Points = append(buf.Points, sp.Point())
		}
	}
	return buf
}

// BenchmarkWrite records 1 M points per op.
func BenchmarkWrite(b *testing.B) {
	for _, compact := range []bool{true, false} {
		b.Run(map[bool]string{true: "compact", false: "points"}[compact], func(b *testing.B) {
			x, reg, _ := testExporter(b, DefaultConfig())
			buf := benchBuffer(b, reg, compact, 16)
			b.ReportAllocs()
			for b.Loop() {
				if err := x.Write(context.Background(), buf); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*benchPoints)/b.Elapsed().Seconds(), "points/s")
		})
	}
}

// BenchmarkRender renders the exposition of 1 000 and 100 000 series.
func BenchmarkRender(b *testing.B) {
	for _, n := range []int{1000, 100_000} {
		for _, om := range []bool{true, false} {
			b.Run(fmt.Sprintf("series=%d/openmetrics=%v", n, om), func(b *testing.B) {
				x, reg, _ := testExporter(b, DefaultConfig())
				id := wattmetre(b, reg)
				buf := &measure.Buffer{}
				for i := range n {
					buf.Points = append(buf.Points, pPoint(id, fmt.Sprintf("node-%d", i), pTime, float64(i)+0.25))
				}
				if err := x.Write(context.Background(), buf); err != nil {
					b.Fatal(err)
				}
				out := x.Render(nil, om)
				b.ReportAllocs()
				b.SetBytes(int64(len(out)))
				for b.Loop() {
					out = x.Render(out[:0], om)
				}
				b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "series/s")
			})
		}
	}
}

// BenchmarkSeriesMemory reports the heap held per series, Kwollect-shaped
// (the basis of max_series' bound), with 100 000 series.
func BenchmarkSeriesMemory(b *testing.B) {
	const n = 100_000
	for b.Loop() {
		reg := measure.NewRegistry()
		id := wattmetre(b, reg)
		series := make([]measure.Series, n)
		buf := &measure.Buffer{}
		for i := range series {
			series[i] = measure.Series{Metric: id, Resource: measure.Resource{Kind: "device_id", ID: fmt.Sprintf("node-%d", i)},
				Consumer: measure.Consumer{Kind: "device_origin", ID: fmt.Sprintf("wattmetre1-port%d", i)}, Attributes: []measure.Attribute{str("metric_id", "wattmetre_power_watt")}}
			buf.Compact = append(buf.Compact, measure.SeriesPoint{Series: &series[i], Time: pTime, Value: measure.Float(1)})
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		x, _, _ := testExporter(b, DefaultConfig())
		x.reg = reg
		if err := x.Write(context.Background(), buf); err != nil {
			b.Fatal(err)
		}
		_ = x.Render(nil, true) // sorts the series
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/series")
		runtime.KeepAlive(x)
		runtime.KeepAlive(buf)
	}
}

// BenchmarkSnapshot is what a scrape does under the table's lock: copy the
// values of 100 000 series out.
func BenchmarkSnapshot(b *testing.B) {
	x, reg, clk := testExporter(b, DefaultConfig())
	id := wattmetre(b, reg)
	buf := &measure.Buffer{}
	for i := range 100_000 {
		buf.Points = append(buf.Points, pPoint(id, fmt.Sprintf("node-%d", i), pTime, float64(i)))
	}
	if err := x.Write(context.Background(), buf); err != nil {
		b.Fatal(err)
	}
	s := x.t.snapshot(clk.now(), nil)
	b.ReportAllocs()
	for b.Loop() {
		s = x.t.snapshot(clk.now(), s.samples)
	}
}
