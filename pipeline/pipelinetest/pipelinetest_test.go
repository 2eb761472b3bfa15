package pipelinetest

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
)

var (
	t0       = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)
	cmpPoint = cmp.AllowUnexported(measure.Value{})
)

var series = &measure.Series{Metric: 1, Resource: measure.Resource{Kind: "device_id", ID: "taurus-7"},
	Consumer: measure.Consumer{Kind: measure.KindLocalMachine}, Attributes: []measure.Attribute{{Key: "metric_id", Value: measure.String("m")}}}

// points are n points of series, from value first on.
func points(first, n int) []measure.Point {
	var pts []measure.Point
	for i := first; i < first+n; i++ {
		pts = append(pts, measure.Point{Metric: series.Metric, Timestamp: t0.Add(time.Duration(i) * time.Second), Value: measure.Float(float64(i)),
			Resource: series.Resource, Consumer: series.Consumer, Attributes: slices.Clone(series.Attributes)})
	}
	return pts
}

// buffer holds n points from first on, compact if compact.
func buffer(first, n int, compact bool) *measure.Buffer {
	if !compact {
		return &measure.Buffer{Points: points(first, n)}
	}
	b := &measure.Buffer{}
	for _, p := range points(first, n) {
		b.Compact = append(b.Compact, measure.SeriesPoint{Series: series, Time: p.Timestamp.UnixNano(), Value: p.Value})
	}
	return b
}

// source emits two buffers of 3 points, compact when its emitter takes
// them, then waits for the stop.
type source struct{}

func (source) Run(ctx context.Context, out pipeline.Emitter) error {
	ce, ok := out.(pipeline.CompactEmitter)
	compact := ok && ce.AcceptsCompact()
	for i := range 2 {
		if err := out.Emit(context.WithoutCancel(ctx), buffer(3*i, 3, compact)); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return nil
}

// The recorder as the output of a real pipeline: every point in order, the
// events, closed once at the stop; a CompactRecorder gets compact points.
func TestRecorderAsOutput(t *testing.T) {
	tests := []struct {
		name        string
		out         interface{ rec() *Recorder }
		wantCompact bool
	}{
		{"recorder", plainOut{&Recorder{}}, false},
		{"compact recorder", compactOut{&CompactRecorder{}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := tt.out.rec()
			b := pipeline.NewBuilder(measure.NewRegistry(), 4, slog.New(slog.DiscardHandler))
			require.NoError(t, b.AddSource("src", source{}))
			require.NoError(t, b.AddOutput("rec", tt.out.(pipeline.Output)))
			p := b.Start(context.Background())
			got := rec.WaitFor(t, 6, 30*time.Second)
			require.Empty(t, cmp.Diff(points(0, 6), got, cmpPoint))
			ev := pipeline.Event{Kind: pipeline.PhaseMark, Time: t0, Phase: "warm-up"}
			require.NoError(t, p.Publish(context.Background(), ev))
			require.False(t, rec.Closed())
			require.NoError(t, p.Stop(context.Background()))
			require.True(t, rec.Closed())
			require.Empty(t, cmp.Diff([]pipeline.Event{ev}, rec.Events()))
			bufs := rec.Buffers()
			require.Len(t, bufs, 2)
			for _, buf := range bufs {
				require.Equal(t, 3, buf.Len())
				require.Equal(t, tt.wantCompact, len(buf.Compact) == 3, "compact points as given")
			}
			require.Equal(t, 6, rec.Len())
		})
	}
}

type plainOut struct{ *Recorder }

func (o plainOut) rec() *Recorder { return o.Recorder }

type compactOut struct{ *CompactRecorder }

func (o compactOut) rec() *Recorder { return &o.Recorder }

// The recorder as the emitter of a source under test: buffers as given
// (empty ones too), Points expanded, AcceptsCompact as configured.
func TestRecorderAsEmitter(t *testing.T) {
	tests := []struct {
		name    string
		accept  bool
		emit    []*measure.Buffer
		wantLen []int // Len of each recorded buffer
	}{
		{"plain", false, []*measure.Buffer{buffer(0, 2, false), buffer(2, 4, false)}, []int{2, 4}},
		{"compact", true, []*measure.Buffer{buffer(0, 3, true), buffer(3, 3, true)}, []int{3, 3}},
		{"mixed and empty", true, []*measure.Buffer{{}, nil, {Points: points(0, 1), Compact: buffer(1, 5, true).Compact}}, []int{0, 0, 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &Recorder{AcceptCompact: tt.accept}
			require.Equal(t, tt.accept, rec.AcceptsCompact())
			require.Nil(t, rec.Points())
			total := 0
			for _, b := range tt.emit {
				require.NoError(t, rec.Emit(context.Background(), b))
				if b != nil {
					total += b.Len()
				}
			}
			require.Equal(t, total, rec.Len())
			require.Empty(t, cmp.Diff(points(0, total), rec.Points(), cmpPoint))
			var lens []int
			for _, b := range rec.Buffers() {
				lens = append(lens, b.Len())
			}
			require.Equal(t, tt.wantLen, lens)
		})
	}
}

// What the recorder keeps is a copy: the pipeline reuses a buffer's memory
// after Write, and a test may change what Buffers returns.
func TestRecorderCopies(t *testing.T) {
	rec := &Recorder{}
	buf := buffer(0, 2, false)
	require.NoError(t, rec.Write(context.Background(), buf))
	buf.Points[0].Value = measure.Float(99)
	buf.Points[1].Attributes[0] = measure.Attribute{Key: "changed"}
	got := rec.Buffers()
	got[0].Points[1].Timestamp = time.Time{}
	require.Empty(t, cmp.Diff(points(0, 2), rec.Points(), cmpPoint))
}

func TestRecorderClose(t *testing.T) {
	rec := &Recorder{}
	require.NoError(t, rec.Close())
	require.ErrorIs(t, rec.Write(context.Background(), buffer(0, 1, false)), ErrClosed)
	require.ErrorIs(t, rec.Close(), ErrClosed)
	require.Zero(t, rec.Len())
}

// WaitFor returns once points written from other goroutines are there.
func TestRecorderWaitFor(t *testing.T) {
	rec := &Recorder{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				time.Sleep(time.Millisecond)
				require.NoError(t, rec.Write(context.Background(), buffer(100*w+i, 1, false)))
				_ = rec.Points()
			}
		}()
	}
	got := rec.WaitFor(t, 100, 30*time.Second)
	require.Len(t, got, 100)
	wg.Wait()
}

// fatalTB records Fatalf instead of stopping the test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
}

func TestRecorderWaitForTimeout(t *testing.T) {
	rec := &Recorder{}
	require.NoError(t, rec.Write(context.Background(), buffer(0, 2, false)))
	tb := &fatalTB{TB: t}
	start := time.Now()
	require.Nil(t, rec.WaitFor(tb, 3, 50*time.Millisecond))
	require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)
	require.Equal(t, "pipelinetest: 2 points recorded within 50ms, want at least 3", tb.msg)
}
