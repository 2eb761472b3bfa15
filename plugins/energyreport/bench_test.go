package energyreport

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
)

// BenchmarkReportMemory feeds n in-order samples of 10 series at 50 Hz
// (raw wattmetre-like readings, in buffers of 1000 points, the series
// interleaved) through the report in exec's order of events, and computes
// the report with its summary and plot files. It reports the peak of the
// heap in use (runtime.MemStats.HeapInuse, sampled every 16 buffers and
// every millisecond during the report) as peak-heap-MB; keep-all is the
// code before streaming (every sample kept until the end).
//
//	go test -run - -bench ReportMemory -benchtime 1x ./plugins/energyreport/
func BenchmarkReportMemory(b *testing.B) {
	for _, bc := range []struct {
		n       int
		keepAll bool
	}{
		{1_000_000, false},
		{10_000_000, false},
		{1_000_000, true},
	} {
		name := fmt.Sprintf("%dM", bc.n/1_000_000)
		if bc.keepAll {
			name += "-keep-all"
		}
		b.Run(name, func(b *testing.B) {
			var peak, feed uint64
			for b.Loop() {
				f, p := feedReport(b, bc.n, bc.keepAll)
				peak, feed = max(peak, p), max(feed, f)
			}
			b.ReportMetric(float64(peak)/1e6, "peak-heap-MB")
			b.ReportMetric(float64(feed)/1e6, "feed-heap-MB")
			b.ReportMetric(float64(bc.n), "samples")
		})
	}
}

// feedReport runs one report over n samples and returns the peak heap
// while the samples come (feed) and over the whole (peak).
func feedReport(b *testing.B, n int, keepAll bool) (feed, peak uint64) {
	const nodes = 10
	const period = 20 * time.Millisecond
	reg := measure.NewRegistry()
	id, err := reg.Register(measure.Metric{Name: "wattmetre_power_watt", Unit: measure.Plain(measure.Watt), Type: measure.F64, Semantics: measure.Gauge})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	cfg := quietConfig()
	cfg.SummaryFile = filepath.Join(dir, "e.json")
	cfg.PlotFile = filepath.Join(dir, "p.png")
	cfg.Table = false
	r, err := newReport(cfg, reg, nil, nil, t0)
	if err != nil {
		b.Fatal(err)
	}
	r.keepAll = keepAll
	tr := &Transform{r: r}
	src := tr
	steps := n / nodes
	end := t0.Add(time.Duration(steps) * period)
	ctx := context.Background()
	if err := src.OnEvent(ctx, pipeline.Event{Kind: pipeline.StartConsumerMeasurement, Time: t0.Add(period / 3)}); err != nil {
		b.Fatal(err)
	}
	res := make([]measure.Resource, nodes)
	for i := range res {
		res[i] = measure.Resource{Kind: "device_id", ID: fmt.Sprintf("node-%d", i)}
	}
	runtime.GC()
	// The peak: sampled every 16 buffers and, during the report at the
	// end (plot included), every millisecond by a goroutine.
	var ms runtime.MemStats
	sample := func() {
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
	}
	buf := &measure.Buffer{Points: make([]measure.Point, 0, 1000)}
	for k, nb := 0, 0; k < steps; nb++ {
		buf.Points = buf.Points[:0]
		for ; k < steps && len(buf.Points)+nodes <= cap(buf.Points); k++ {
			ts := t0.Add(time.Duration(k) * period)
			for i := range nodes {
				w := 100 + 10*float64(i) + 30*math.Sin(float64(k)/500)
				buf.Points = append(buf.Points, measure.Point{Metric: id, Timestamp: ts, Value: measure.Float(w), Resource: res[i]})
			}
		}
		if err := tr.Apply(buf); err != nil {
			b.Fatal(err)
		}
		if nb%16 == 0 {
			sample()
		}
	}
	sample()
	feed = peak
	if err := src.OnEvent(ctx, pipeline.Event{Kind: pipeline.EndConsumerMeasurement, Time: end}); err != nil {
		b.Fatal(err)
	}
	stop, done := make(chan struct{}), make(chan uint64)
	go func() {
		var ms runtime.MemStats
		var p uint64
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			p = max(p, ms.HeapInuse)
			select {
			case <-stop:
				done <- p
				return
			case <-t.C:
			}
		}
	}()
	_, err = tr.Finish()
	close(stop)
	peak = max(peak, <-done)
	if err != nil {
		b.Fatal(err)
	}
	sample()
	return feed, peak
}
