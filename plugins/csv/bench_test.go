package csv

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/alumet-go/alumet-agent/measure"
)

const benchRows = 1000

// benchBuffers returns a buffer that decides the header (metric_id, domain)
// and a buffer of benchRows points to write repeatedly. late adds two
// attributes without a column; escape puts delimiters and quotes in cells.
func benchBuffers(tb testing.TB, reg *measure.Registry, late, escape bool) (first, buf *measure.Buffer) {
	id := register(tb, reg, "wattmetre_power_watt", measure.Plain(measure.Watt), measure.F64)
	ts := time.Date(2025, 7, 22, 11, 5, 26, 0, time.UTC)
	first = &measure.Buffer{Points: []measure.Point{{Metric: id, Timestamp: ts, Value: measure.Float(1),
		Attributes: []measure.Attribute{str("metric_id", "x"), str("domain", "y")}}}}
	buf = &measure.Buffer{}
	cons := "wattmetre1-port6"
	if escape {
		cons = `port;6 "main"`
	}
	for i := range benchRows {
		attrs := []measure.Attribute{str("metric_id", "wattmetre_power_watt")}
		if late {
			attrs = append(attrs, str("labels", "a,b"), measure.Attribute{Key: "cpu", Value: measure.AttrValue{Type: measure.AttrU64, U64: uint64(i % 64)}})
		}
		buf.Push(measure.Point{
			Metric:     id,
			Timestamp:  ts.Add(time.Duration(i) * 20 * time.Millisecond),
			Value:      measure.Float(130 + float64(i%100)/100),
			Resource:   measure.Resource{Kind: "device_id", ID: fmt.Sprintf("taurus-%d", i%16)},
			Consumer:   measure.Consumer{Kind: "device_origin", ID: cons},
			Attributes: attrs,
		})
	}
	return first, buf
}

// BenchmarkWriteBuffer measures the row formatting (to io.Discard): rows/s,
// and allocs/op per buffer of 1000 rows (the target is 0).
func BenchmarkWriteBuffer(b *testing.B) {
	for _, bc := range []struct {
		name         string
		late, escape bool
	}{
		{"columns", false, false},
		{"late", true, false},
		{"escape", false, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			reg := measure.NewRegistry()
			first, buf := benchBuffers(b, reg, bc.late, bc.escape)
			w := NewWriter(io.Discard, reg, DefaultOptions())
			if err := w.WriteBuffer(first); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				if err := w.WriteBuffer(buf); err != nil {
					b.Fatal(err)
				}
				n++
			}
			rows := float64(n * len(buf.Points))
			b.ReportMetric(rows/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/rows, "ns/row")
		})
	}
}
