package kwollectoutput

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/plugins/internal/push"
)

const benchRows = 1000

// benchBuffer is 1000 points of an on-node source (the rapl source's 11
// series, polled together), in compact form.
func benchBuffer(tb testing.TB, reg *measure.Registry) *measure.Buffer {
	id, err := reg.Register(measure.Metric{Name: "rapl_consumed_energy", Unit: measure.Plain(measure.Joule), Type: measure.F64, Semantics: measure.Delta, Plugin: "rapl"})
	if err != nil {
		tb.Fatal(err)
	}
	ts := time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC)
	series := make([]*measure.Series, 11)
	for i := range series {
		series[i] = &measure.Series{Metric: id, Resource: measure.Resource{Kind: "cpu_package", ID: fmt.Sprint(i % 2)},
			Consumer: measure.Consumer{Kind: measure.KindLocalMachine}, Attributes: []measure.Attribute{{Key: "domain", Value: measure.String(fmt.Sprintf("d%d", i))}}}
	}
	buf := &measure.Buffer{}
	for i := range benchRows {
		buf.Compact = append(buf.Compact, measure.SeriesPoint{Series: series[i%11], Time: ts.Add(time.Duration(i/11) * time.Second).UnixNano(),
			Value: measure.Float(40 + float64(i%100)/64)})
	}
	return buf
}

// BenchmarkOutput is Write through the queue to a local server that reads
// and discards the JSON arrays: rows/s of the whole output (the sender and
// Close included), and the heap in use at the end (-benchtime 1000x: the
// reference's 1 M rows).
func BenchmarkOutput(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	reg := measure.NewRegistry()
	buf := benchBuffer(b, reg)
	c := DefaultConfig()
	c.URL, c.Hostname = srv.URL+"/stable/sites/lyon/metrics", "taurus-7"
	out, err := newOutput(c, reg, nil, push.Options{Wait: true, BufferBytes: 64 << 20}, "", "")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	start := time.Now()
	n := 0
	for b.Loop() {
		if err := out.Write(context.Background(), buf); err != nil {
			b.Fatal(err)
		}
		n++
	}
	if err := out.q.Close(); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	if s := out.q.Stats(); s.Lost() != 0 || s.Sent != int64(n*benchRows) {
		b.Fatalf("stats %+v, want %d sent", s, n*benchRows)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(n*benchRows)/elapsed.Seconds(), "rows/s")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
}
