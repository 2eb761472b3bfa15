package pipeline

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/measure"
)

// countingSource emits n buffers of one point when it starts, and one more
// at stop, to prove that points emitted while stopping are written.
type countingSource struct {
	n      int
	events []EventKind
	mu     sync.Mutex
}

func (s *countingSource) Run(ctx context.Context, out Emitter) error {
	for i := 0; i < s.n; i++ {
		if err := out.Emit(ctx, buf(float64(i))); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return out.Emit(context.Background(), buf(-1))
}

func (s *countingSource) HandleEvent(ctx context.Context, ev Event, out Emitter) error {
	s.mu.Lock()
	s.events = append(s.events, ev.Kind)
	s.mu.Unlock()
	return out.Emit(ctx, buf(100+float64(ev.Kind)))
}

func buf(v float64) *measure.Buffer {
	return &measure.Buffer{Points: []measure.Point{{Value: measure.Float(v)}}}
}

type recordingOutput struct {
	mu     sync.Mutex
	values []float64
	closed bool
	failAt int
}

func (o *recordingOutput) Write(_ context.Context, b *measure.Buffer) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return errors.New("write after close")
	}
	if o.failAt > 0 && len(o.values)+1 >= o.failAt {
		return errors.New("disk full")
	}
	for _, p := range b.Points {
		o.values = append(o.values, p.Value.Float64())
	}
	return nil
}

func (o *recordingOutput) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	return nil
}

type doubler struct{}

func (doubler) Apply(b *measure.Buffer) error {
	for i := range b.Points {
		b.Points[i].Value = measure.Float(2 * b.Points[i].Value.Float64())
	}
	return nil
}

type emptier struct{}

func (emptier) Apply(b *measure.Buffer) error { b.Points = b.Points[:0]; return nil }

func TestPipelineOrderAndFlush(t *testing.T) {
	tests := []struct {
		name       string
		transforms []Transform
		want       []float64
	}{
		{"plain", nil, []float64{0, 1, 2, 100, 101, -1}},
		{"transformed", []Transform{doubler{}}, []float64{0, 2, 4, 200, 202, -2}},
		{"emptied", []Transform{emptier{}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBuilder(measure.NewRegistry(), 1, nil)
			src := &countingSource{n: 3}
			require.NoError(t, b.AddSource("s", src))
			require.Error(t, b.AddSource("s", src), "duplicate names are refused")
			for i, tr := range tt.transforms {
				require.NoError(t, b.AddTransform(string(rune('a'+i)), tr))
			}
			o1, o2 := &recordingOutput{}, &recordingOutput{}
			require.NoError(t, b.AddOutput("o1", o1))
			require.NoError(t, b.AddOutput("o2", o2))
			p := b.Start(context.Background())
			require.NoError(t, p.Publish(context.Background(), Event{Kind: StartConsumerMeasurement}))
			require.NoError(t, p.Publish(context.Background(), Event{Kind: EndConsumerMeasurement}))
			require.NoError(t, p.Stop(context.Background()))
			for _, o := range []*recordingOutput{o1, o2} {
				require.True(t, o.closed)
				require.ElementsMatch(t, tt.want, o.values)
			}
			require.Equal(t, []EventKind{StartConsumerMeasurement, EndConsumerMeasurement}, src.events)
			// Stop is idempotent, and emitting afterwards fails cleanly.
			require.NoError(t, p.Stop(context.Background()))
			require.ErrorIs(t, p.emitter("late").Emit(context.Background(), buf(1)), ErrStopped)
		})
	}
}

func TestPipelineOutputFailureIsReported(t *testing.T) {
	b := NewBuilder(measure.NewRegistry(), 4, nil)
	require.NoError(t, b.AddSource("s", &countingSource{n: 5}))
	bad, good := &recordingOutput{failAt: 2}, &recordingOutput{}
	require.NoError(t, b.AddOutput("bad", bad))
	require.NoError(t, b.AddOutput("good", good))
	p := b.Start(context.Background())
	<-p.OutputFailed() // closed at the failure, before Stop
	err := p.Stop(context.Background())
	require.EqualError(t, err, "output bad failed: disk full: 5 points lost")
	require.Len(t, good.values, 6, "one failing output does not starve the others")
	require.Equal(t, []float64{0}, bad.values)
	fs := p.OutputFailures()
	require.Len(t, fs, 1)
	require.Equal(t, "bad", fs[0].Output)
	require.Equal(t, int64(5), fs[0].Lost, "the failing buffer and every later one")
	require.True(t, fs[0].LostKnown)
}

type stuckSource struct{ release chan struct{} }

func (s stuckSource) Run(ctx context.Context, out Emitter) error {
	<-ctx.Done()
	<-s.release
	return nil
}

type slowCloser struct {
	recordingOutput
	delay time.Duration
}

func (o *slowCloser) Close() error {
	time.Sleep(o.delay)
	return o.recordingOutput.Close()
}

func TestPipelineShutdownTimeout(t *testing.T) {
	b := NewBuilder(measure.NewRegistry(), 4, nil)
	release := make(chan struct{})
	defer close(release)
	require.NoError(t, b.AddSource("stuck", stuckSource{release}))
	require.NoError(t, b.AddSource("ok", &countingSource{n: 2}))
	out := &slowCloser{delay: 100 * time.Millisecond}
	require.NoError(t, b.AddOutput("o", out))
	p := b.Start(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := p.Stop(ctx)
	require.ErrorContains(t, err, "some sources did not stop in time")
	require.NotContains(t, err.Error(), "outputs did not finish", "outputs get a grace period after a source timeout")
	out.mu.Lock()
	defer out.mu.Unlock()
	require.True(t, out.closed, "the output was closed (flushed) before Stop returned")
	require.Len(t, out.values, 3)
}

type failingSource struct{}

func (failingSource) Run(context.Context, Emitter) error { return errors.New("boom") }

func TestPipelineSourceError(t *testing.T) {
	b := NewBuilder(measure.NewRegistry(), 4, nil)
	require.NoError(t, b.AddSource("f", failingSource{}))
	p := b.Start(context.Background())
	require.ErrorContains(t, p.Stop(context.Background()), "source f: boom")
}

// summer counts the points it sees and adds their sum at the end.
type summer struct{ sum float64 }

func (s *summer) Apply(b *measure.Buffer) error {
	for _, p := range b.Points {
		s.sum += p.Value.Float64()
	}
	return nil
}

func (s *summer) Finish() (*measure.Buffer, error) {
	return &measure.Buffer{Points: []measure.Point{{Value: measure.Float(s.sum)}}}, nil
}

func TestFinisherRunsAfterEverything(t *testing.T) {
	b := NewBuilder(measure.NewRegistry(), 1, nil)
	require.NoError(t, b.AddSource("s", &countingSource{n: 3}))
	require.NoError(t, b.AddTransform("sum", &summer{}))
	require.NoError(t, b.AddTransform("double", doubler{}))
	out := &recordingOutput{}
	require.NoError(t, b.AddOutput("o", out))
	p := b.Start(context.Background())
	require.NoError(t, p.Publish(context.Background(), Event{Kind: EndConsumerMeasurement}))
	require.NoError(t, p.Stop(context.Background()))
	// 0+1+2+101-1 = 103 seen by the summer, then doubled like every point.
	require.Equal(t, 206.0, out.values[len(out.values)-1])
	require.Len(t, out.values, 6)
}

// gateOutput blocks its writes until the gate opens.
type gateOutput struct {
	gate    chan struct{}
	written chan int
}

func (o *gateOutput) Write(_ context.Context, b *measure.Buffer) error {
	<-o.gate
	o.written <- len(b.Points)
	return nil
}

func (o *gateOutput) Close() error { return nil }

// The points between the sources and the end of the writes are bounded
// (MaxQueuedPoints), whatever the number of buffers the queue may hold;
// an aborted shutdown releases a blocked Emit.
func TestQueuedPointsBounded(t *testing.T) {
	old := MaxQueuedPoints
	MaxQueuedPoints = 100
	defer func() { MaxQueuedPoints = old }()
	b := NewBuilder(measure.NewRegistry(), 1000, nil)
	out := &gateOutput{gate: make(chan struct{}), written: make(chan int, 100)}
	require.NoError(t, b.AddOutput("gate", out))
	p := b.Start(context.Background())
	em := p.emitter("test")
	points := func(n int) *measure.Buffer { return &measure.Buffer{Points: make([]measure.Point, n)} }
	// A buffer larger than the bound passes when nothing is queued.
	require.NoError(t, em.Emit(context.Background(), points(150)))
	emitted := make(chan error, 1)
	go func() { emitted <- em.Emit(context.Background(), points(10)) }()
	select {
	case err := <-emitted:
		t.Fatalf("Emit returned (%v) while 150 points were queued", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(out.gate) // the output writes: the budget frees
	require.NoError(t, <-emitted)
	require.Equal(t, 150, <-out.written)
	require.Equal(t, 10, <-out.written)
	require.NoError(t, p.Stop(context.Background()))

	// A blocked Emit fails once the shutdown times out.
	b = NewBuilder(measure.NewRegistry(), 1000, nil)
	out = &gateOutput{gate: make(chan struct{}), written: make(chan int, 100)}
	require.NoError(t, b.AddOutput("gate", out))
	blocked := make(chan error, 1)
	require.NoError(t, b.AddSource("src", sourceFunc(func(ctx context.Context, em Emitter) error {
		if err := em.Emit(ctx, points(100)); err != nil {
			return err
		}
		err := em.Emit(ctx, points(1))
		blocked <- err
		return err
	})))
	p = b.Start(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	old2 := OutputGrace
	OutputGrace = 10 * time.Millisecond
	defer func() { OutputGrace = old2 }()
	require.Error(t, p.Stop(ctx))
	require.ErrorIs(t, <-blocked, ErrStopped)
	close(out.gate)
}

type sourceFunc func(ctx context.Context, em Emitter) error

func (f sourceFunc) Run(ctx context.Context, em Emitter) error { return f(ctx, em) }
