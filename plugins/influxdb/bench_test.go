package influxdb

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/plugin"
)

const benchRows = 1000

// benchBuffer is 1000 points of 16 nodes at 50 Hz in compact form, as
// kwollect-input emits them.
func benchBuffer(tb testing.TB, reg *measure.Registry) *measure.Buffer {
	id := register(tb, reg, "wattmetre_power_watt", measure.F64)
	ts := time.Date(2025, 7, 22, 11, 5, 26, 0, time.UTC)
	series := make([]*measure.Series, 16)
	for i := range series {
		series[i] = &measure.Series{Metric: id, Resource: measure.Resource{Kind: "device_id", ID: fmt.Sprintf("taurus-%d", i)},
			Consumer: measure.Consumer{Kind: "device_origin", ID: "wattmetre1-port6"}, Attributes: []measure.Attribute{str("metric_id", "wattmetre_power_watt")}}
	}
	buf := &measure.Buffer{}
	for i := range benchRows {
		buf.Compact = append(buf.Compact, measure.SeriesPoint{Series: series[i%16], Time: ts.Add(time.Duration(i) * 20 * time.Millisecond).UnixNano(),
			Value: measure.Float(130 + float64(i%100)/100)})
	}
	return buf
}

// BenchmarkEncode is the line formatting alone: rows/s and allocs per
// buffer of 1000 rows.
func BenchmarkEncode(b *testing.B) {
	reg := measure.NewRegistry()
	buf := benchBuffer(b, reg)
	enc := newEncoder(reg, DefaultConfig().asTag(), false, false)
	out := make([]byte, 0, 1<<20)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		out = out[:0]
		for i := range buf.Compact {
			out, _ = enc.appendCompact(out, &buf.Compact[i])
		}
		n++
	}
	rows := float64(n * benchRows)
	b.ReportMetric(rows/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(len(out))/benchRows, "bytes/row")
}

// cpuTime is the user+system CPU time of the process so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkOutput is Write through the Queue to a local server that reads
// and discards the gzip bodies: rows/s of the whole output, sender
// included (Close is in the timing).
func BenchmarkOutput(b *testing.B) {
	for _, gz := range []bool{true, false} {
		b.Run(fmt.Sprintf("gzip=%v", gz), func(b *testing.B) {
			var sent atomic.Int64 // the bodies' bytes, as sent (compressed with gzip)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n, _ := io.Copy(io.Discard, r.Body)
				sent.Add(n)
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			reg := measure.NewRegistry()
			buf := benchBuffer(b, reg)
			c := DefaultConfig()
			c.Host, c.Token, c.Org, c.Bucket, c.Gzip = srv.URL, "t", "o", "b", &gz
			// fetch's options: a full buffer waits for the sender, so that
			// every point is sent (the throughput, not the drops).
			opts := c.queueOptions(plugin.ModeFetch)
			out, err := open(context.Background(), c, reg, nil, plugin.ModeFetch, nil, &opts)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			sent.Store(0)
			start, cpu0 := time.Now(), cpuTime(b)
			n := 0
			for b.Loop() {
				if err := out.Write(context.Background(), buf); err != nil {
					b.Fatal(err)
				}
				n++
			}
			if err := out.Close(); err != nil {
				b.Fatal(err)
			}
			elapsed, cpu := time.Since(start), cpuTime(b)-cpu0
			s := out.Stats()
			if s.Lost() != 0 || s.Sent != int64(n*benchRows) {
				b.Fatalf("stats %+v, want %d sent", s, n*benchRows)
			}
			rows := float64(n * benchRows)
			b.ReportMetric(rows/elapsed.Seconds(), "rows/s")
			// The process's CPU (the in-process server's reading included):
			// what the output costs beside the pipeline, whatever the wall.
			b.ReportMetric(float64(cpu.Nanoseconds())/rows, "cpu-ns/row")
			b.ReportMetric(float64(sent.Load())/rows, "sent-bytes/row")
		})
	}
}
