package pipeline

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/alumet-go/alumet-agent/measure"
)

// benchSource emits total points in buffers of size points, taken from a
// pool the output gives them back to: the benchmark measures the pipeline,
// not the allocation of the source's buffers.
type benchSource struct {
	total, size int
	pool        *sync.Pool
}

func (s *benchSource) Run(ctx context.Context, out Emitter) error {
	for sent := 0; sent < s.total; {
		n := min(s.size, s.total-sent)
		buf := s.pool.Get().(*measure.Buffer)
		buf.Points = buf.Points[:n]
		if err := out.Emit(ctx, buf); err != nil {
			return err
		}
		sent += n
	}
	return nil
}

// scaleTransform touches every point, like a unit conversion.
type scaleTransform struct{}

func (scaleTransform) Apply(buf *measure.Buffer) error {
	for i := range buf.Points {
		p := &buf.Points[i]
		p.Value = measure.Float(p.Value.Float64() * 1)
	}
	return nil
}

// discardOutput counts the points and recycles the buffers.
type discardOutput struct {
	points int
	done   chan struct{}
	want   int
	pool   *sync.Pool
}

func (o *discardOutput) Write(_ context.Context, buf *measure.Buffer) error {
	o.points += len(buf.Points)
	o.pool.Put(buf)
	if o.points == o.want {
		close(o.done)
	}
	return nil
}

func (o *discardOutput) Close() error { return nil }

// BenchmarkPipeline measures points/s from a source to a discarding output
// through one transform, for several buffer sizes. Run it with -cpu 1 for
// the one-core figure.
func BenchmarkPipeline(b *testing.B) {
	for _, size := range []int{1, 16, 256, 4096} {
		b.Run(fmt.Sprintf("buf=%d", size), func(b *testing.B) {
			const total = 1 << 20
			ts := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
			pool := &sync.Pool{New: func() any {
				buf := &measure.Buffer{Points: make([]measure.Point, size)}
				for i := range buf.Points {
					buf.Points[i] = measure.Point{Timestamp: ts, Value: measure.Float(float64(i))}
				}
				return buf
			}}
			b.ReportAllocs()
			points := 0
			for b.Loop() {
				reg := measure.NewRegistry()
				bl := NewBuilder(reg, 0, nil)
				out := &discardOutput{done: make(chan struct{}), want: total, pool: pool}
				_ = bl.AddSource("bench", &benchSource{total: total, size: size, pool: pool})
				_ = bl.AddTransform("scale", scaleTransform{})
				_ = bl.AddOutput("discard", out)
				p := bl.Start(context.Background())
				<-out.done
				if err := p.Stop(context.Background()); err != nil {
					b.Fatal(err)
				}
				points += out.points
			}
			b.ReportMetric(float64(points)/b.Elapsed().Seconds(), "points/s")
		})
	}
}
