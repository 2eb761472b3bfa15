package pipeline

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/measure"
)

func TestHistory(t *testing.T) {
	var h History
	require.Zero(t, h.Wanted())
	h.Want(30 * time.Second)
	h.Want(10 * time.Second)
	require.Equal(t, 30*time.Second, h.Wanted(), "the longest request wins")

	var got []int
	h.Subscribe(func(b *measure.Buffer) { got = append(got, len(b.Points)) })
	h.Subscribe(func(b *measure.Buffer) { got = append(got, -len(b.Points)) })
	h.Deliver(nil)
	h.Deliver(&measure.Buffer{})
	h.Deliver(&measure.Buffer{Points: make([]measure.Point, 3)})
	require.Equal(t, []int{3, -3}, got, "empty buffers are not delivered")

	_, err := h.Recent(context.Background(), time.Time{}, time.Time{})
	require.ErrorIs(t, err, ErrNoRecent)
	first := func(context.Context, time.Time, time.Time) (*measure.Buffer, error) {
		return &measure.Buffer{Points: make([]measure.Point, 1)}, nil
	}
	h.ProvideRecent(first)
	h.ProvideRecent(func(context.Context, time.Time, time.Time) (*measure.Buffer, error) { return nil, errors.New("second") })
	b, err := h.Recent(context.Background(), time.Time{}, time.Time{})
	require.NoError(t, err)
	require.Len(t, b.Points, 1, "the first provider wins")
}

// idleTransform is a transform that judges the idle level.
type idleTransform struct {
	handled bool
	err     error
	calls   int
}

func (i *idleTransform) Apply(*measure.Buffer) error { return nil }
func (i *idleTransform) WaitIdle(context.Context, float64, time.Duration) (bool, error) {
	i.calls++
	return i.handled, i.err
}

func TestWaitIdle(t *testing.T) {
	tests := []struct {
		name      string
		element   *idleTransform
		fallback  time.Duration
		cancel    bool
		wantIdle  bool
		wantErr   string
		wantSleep bool
	}{
		{name: "no judge, no fallback"},
		{name: "no judge: the fallback", fallback: 20 * time.Millisecond, wantSleep: true},
		{name: "judged", element: &idleTransform{handled: true}, fallback: time.Hour, wantIdle: true},
		{name: "cannot judge: the fallback", element: &idleTransform{}, fallback: 20 * time.Millisecond, wantSleep: true},
		{name: "judge fails", element: &idleTransform{err: errors.New("boom")}, fallback: time.Hour, wantErr: "transform idle: boom"},
		{name: "cancelled during the fallback", fallback: time.Hour, cancel: true, wantErr: "context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBuilder(measure.NewRegistry(), 0, nil)
			if tt.element != nil {
				require.NoError(t, b.AddTransform("idle", tt.element))
			}
			p := b.Start(context.Background())
			defer func() { require.NoError(t, p.Stop(context.Background())) }()
			ctx, cancel := context.WithCancel(context.Background())
			if tt.cancel {
				cancel()
			}
			defer cancel()
			begin := time.Now()
			idle, err := p.WaitIdle(ctx, 0.05, time.Minute, tt.fallback)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantIdle, idle)
			if tt.wantSleep {
				require.GreaterOrEqual(t, time.Since(begin), tt.fallback)
			}
			if tt.element != nil {
				require.Equal(t, 1, tt.element.calls)
			}
		})
	}
}

// TestPooledBuffersReleased: a pooled buffer goes back to its pool once
// every output has written it (here emptied by Release), and outputs saw
// its points.
func TestPooledBuffersReleased(t *testing.T) {
	b := NewBuilder(measure.NewRegistry(), 0, nil)
	src := &emitOnce{}
	require.NoError(t, b.AddSource("src", src))
	outA, outB := &countOutput{}, &countOutput{}
	require.NoError(t, b.AddOutput("a", outA))
	require.NoError(t, b.AddOutput("b", outB))
	p := b.Start(context.Background())
	require.NoError(t, p.Stop(context.Background()))
	require.Equal(t, 3, outA.n)
	require.Equal(t, 3, outB.n)
	require.Equal(t, 0, src.buf.Len(), "released after both outputs wrote it")
}

type emitOnce struct{ buf *measure.Buffer }

func (e *emitOnce) Run(ctx context.Context, out Emitter) error {
	<-ctx.Done()
	e.buf = measure.NewPooledBuffer(3)
	for range 3 {
		e.buf.Push(measure.Point{Value: measure.Float(1)})
	}
	return out.Emit(ctx, e.buf)
}

type countOutput struct{ n int }

func (c *countOutput) Write(_ context.Context, buf *measure.Buffer) error {
	c.n += buf.Len()
	return nil
}
func (c *countOutput) Close() error { return nil }

// TestHistorySpans: a subscriber gets the span it asked for, whatever
// another asked the sources for; a tap gets all of it with its end.
func TestHistorySpans(t *testing.T) {
	end := time.Date(2026, 12, 2, 22, 0, 0, 0, time.UTC)
	buf := &measure.Buffer{}
	for s := 120; s > 0; s-- {
		buf.Push(measure.Point{Timestamp: end.Add(-time.Duration(s) * time.Second)})
	}
	var h History
	h.Want(10 * time.Second)
	h.Want(2 * time.Minute)
	require.Equal(t, 2*time.Minute, h.Wanted())
	var all, ten, none int
	var tapped time.Time
	h.Subscribe(func(b *measure.Buffer) { all += b.Len() })
	var first time.Time
	h.SubscribeSpan(10*time.Second, func(b *measure.Buffer) {
		if ten == 0 {
			first = b.Points[0].Timestamp
		}
		ten += b.Len()
	})
	h.SubscribeSpan(time.Nanosecond, func(b *measure.Buffer) { none += b.Len() })
	h.Tap(func(b *measure.Buffer, e time.Time) { tapped = e })
	h.DeliverBefore(buf, end)
	require.Equal(t, 120, all)
	require.Equal(t, 10, ten, "the 10 s before the end, its first second included")
	require.Equal(t, end.Add(-10*time.Second), first)
	require.Equal(t, 0, none, "nothing in its span: not called")
	require.Equal(t, end, tapped)
	h.Deliver(buf) // no end: everything, to everyone
	require.Equal(t, 240, all)
	require.Equal(t, 130, ten)
}
