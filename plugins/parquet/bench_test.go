package parquet

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/plugins/csv"
)

// referenceRows is the reference workload: 1,000,000 rows, 10 nodes at
// 50 Hz for 2000 s (docs/performance.md).
const referenceRows = 1_000_000

// workload yields n rows of 10 nodes at 50 Hz as kwollect-input gives
// them (compact points, one series per node, buffers of 4096), the
// values a random walk with two decimals as the wattmeters'. It calls
// emit with each buffer, reused.
func workload(tb testing.TB, reg *measure.Registry, n int, emit func(*measure.Buffer)) {
	id, err := reg.Register(measure.Metric{Name: "wattmetre_power_watt", Unit: measure.Plain(measure.Watt), Type: measure.F64})
	if err != nil {
		tb.Fatal(err)
	}
	const nodes = 10
	series := make([]*measure.Series, nodes)
	level := make([]float64, nodes)
	for i := range series {
		series[i] = &measure.Series{Metric: id,
			Resource:   measure.Resource{Kind: "device_id", ID: fmt.Sprintf("taurus-%d", i+1)},
			Consumer:   measure.Consumer{Kind: "device_origin", ID: fmt.Sprintf("wattmetre1-port%d", i)},
			Attributes: []measure.Attribute{str("metric_id", "wattmetre_power_watt")}}
		level[i] = 120 + 10*float64(i)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2025, 7, 22, 11, 5, 26, 0, time.UTC).UnixNano()
	buf := &measure.Buffer{Compact: make([]measure.SeriesPoint, 0, 4096)}
	for i := range n {
		node := i % nodes
		level[node] += float64(rng.IntN(41)-20) / 100
		v := float64(int64(level[node]*100+0.5)) / 100
		ts := start + int64(i/nodes)*20e6 + int64(rng.IntN(50))*1000
		buf.Compact = append(buf.Compact, measure.SeriesPoint{Series: series[node], Time: ts, Value: measure.Float(v)})
		if len(buf.Compact) == cap(buf.Compact) {
			emit(buf)
			buf.Compact = buf.Compact[:0]
		}
	}
	if len(buf.Compact) > 0 {
		emit(buf)
	}
}

// cpuTime is the CPU time of the process so far (user and system, every
// thread: the garbage collector's too).
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkReference writes the reference workload to a Parquet file (and,
// for the size ratio, the CSV plugin's file of the same rows): rows/s,
// the file size and the CSV's, and the CPU time per million rows of the
// writer alone (writer-cpu-s/M: the process's CPU time in the loop less
// that of generating the same points without writing them).
func BenchmarkReference(b *testing.B) {
	dir := b.TempDir()
	var size, csvSize int64
	rows := 0
	cpu0 := cpuTime(b)
	for b.Loop() {
		reg := measure.NewRegistry()
		cfg := testConfig(dir)
		o, err := Open(cfg, reg, nil, false)
		if err != nil {
			b.Fatal(err)
		}
		workload(b, reg, referenceRows, func(buf *measure.Buffer) {
			if err := o.Write(context.Background(), buf); err != nil {
				b.Fatal(err)
			}
		})
		if err := o.Close(); err != nil {
			b.Fatal(err)
		}
		rows += referenceRows
		st, err := os.Stat(cfg.OutputPath)
		if err != nil {
			b.Fatal(err)
		}
		size = st.Size()
	}
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	gen0 := cpuTime(b)
	for range b.N {
		workload(b, measure.NewRegistry(), referenceRows, func(*measure.Buffer) {})
	}
	cpu -= cpuTime(b) - gen0
	{
		reg := measure.NewRegistry()
		c := csv.DefaultConfig()
		c.OutputPath = filepath.Join(dir, "out.csv")
		c.ForceFlush = false
		o, err := csv.OpenFile(c, reg, nil)
		if err != nil {
			b.Fatal(err)
		}
		workload(b, reg, referenceRows, func(buf *measure.Buffer) {
			if err := o.Write(context.Background(), buf); err != nil {
				b.Fatal(err)
			}
		})
		if err := o.Close(); err != nil {
			b.Fatal(err)
		}
		st, _ := os.Stat(c.OutputPath)
		csvSize = st.Size()
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(cpu.Seconds()/float64(rows)*1e6, "writer-cpu-s/M")
	b.ReportMetric(float64(size)/1e6, "parquet-MB")
	b.ReportMetric(float64(csvSize)/1e6, "csv-MB")
}

// BenchmarkPlainPoints writes the reference workload as plain points (what
// an output gets when another one does not read compact points): rows/s.
func BenchmarkPlainPoints(b *testing.B) {
	reg := measure.NewRegistry()
	var bufs []*measure.Buffer
	workload(b, reg, referenceRows/4, func(buf *measure.Buffer) {
		c := &measure.Buffer{Compact: append([]measure.SeriesPoint(nil), buf.Compact...)}
		c.Expand()
		bufs = append(bufs, c)
	})
	dir := b.TempDir()
	rows := 0
	for b.Loop() {
		o, err := Open(testConfig(dir), reg, nil, false)
		if err != nil {
			b.Fatal(err)
		}
		for _, buf := range bufs {
			if err := o.Write(context.Background(), buf); err != nil {
				b.Fatal(err)
			}
			rows += buf.Len()
		}
		if err := o.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
