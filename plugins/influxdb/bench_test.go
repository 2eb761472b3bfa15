package influxdb

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
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

// refBuffer is 1000 points like the reference workload's (bench/compare.sh:
// 10 nodes at 50 Hz, the timestamps in µs with a jitter, readings of two
// decimals), in compact form; the next call continues them.
type refBuffer struct {
	series []*measure.Series
	vals   []float64
	ts     int64
	r      *rand.Rand
}

func newRefBuffer(tb testing.TB, reg *measure.Registry) *refBuffer {
	id := register(tb, reg, "wattmetre_power_watt", measure.F64)
	rb := &refBuffer{ts: time.Date(2025, 7, 22, 11, 5, 26, 0, time.UTC).UnixNano(), r: rand.New(rand.NewPCG(1, 1))}
	for i := range 10 {
		rb.series = append(rb.series, &measure.Series{Metric: id, Resource: measure.Resource{Kind: "device_id", ID: fmt.Sprintf("taurus-%d", i+1)},
			Consumer: measure.Consumer{Kind: "device_origin", ID: fmt.Sprintf("wattmetre1-port%d", i)}, Attributes: []measure.Attribute{str("metric_id", "wattmetre_power_watt")}})
		rb.vals = append(rb.vals, 90+50*rb.r.Float64())
	}
	return rb
}

func (rb *refBuffer) next(buf *measure.Buffer) {
	buf.Compact = buf.Compact[:0]
	for i := range benchRows {
		s := i % len(rb.series)
		rb.vals[s] += rb.r.Float64() - 0.5
		rb.ts += 2_000_000 + rb.r.Int64N(2000)*1000 - 1_000_000
		buf.Compact = append(buf.Compact, measure.SeriesPoint{Series: rb.series[s], Time: rb.ts,
			Value: measure.Float(math.Round(rb.vals[s]*100) / 100)})
	}
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
func BenchmarkOutput(b *testing.B) { benchOutput(b, false) }

// BenchmarkOutputReference is BenchmarkOutput with points like the
// reference workload's (refBuffer), new ones for each Write.
func BenchmarkOutputReference(b *testing.B) { benchOutput(b, true) }

func benchOutput(b *testing.B, ref bool) {
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
			var buf *measure.Buffer
			var rb *refBuffer
			if ref {
				rb, buf = newRefBuffer(b, reg), &measure.Buffer{}
				rb.next(buf)
			} else {
				buf = benchBuffer(b, reg)
			}
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
			var gen time.Duration // making the reference points, not the output's
			for b.Loop() {
				if err := out.Write(context.Background(), buf); err != nil {
					b.Fatal(err)
				}
				n++
				if rb != nil {
					t0 := cpuTime(b)
					rb.next(buf)
					gen += cpuTime(b) - t0
				}
			}
			if err := out.Close(); err != nil {
				b.Fatal(err)
			}
			elapsed, cpu := time.Since(start), cpuTime(b)-cpu0-gen
			s := out.Stats()
			if s.Lost() != 0 || s.Sent != int64(n*benchRows) {
				b.Fatalf("stats %+v, want %d sent", s, n*benchRows)
			}
			rows := float64(n * benchRows)
			b.ReportMetric(rows/(elapsed-gen).Seconds(), "rows/s")
			// The process's CPU (the in-process server's reading included):
			// what the output costs beside the pipeline, whatever the wall.
			b.ReportMetric(float64(cpu.Nanoseconds())/rows, "cpu-ns/row")
			b.ReportMetric(float64(sent.Load())/rows, "sent-bytes/row")
		})
	}
}
