package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/measure"
)

// lossErr is an output error that says what it lost.
type lossErr struct{ n int64 }

func (e lossErr) Error() string     { return fmt.Sprintf("full (%d lost)", e.n) }
func (e lossErr) LostPoints() int64 { return e.n }

// scriptedOutput fails its Write number failAt (from 1) with writeErr and
// its Close with closeErr; it counts the Writes it gets.
type scriptedOutput struct {
	mu       sync.Mutex
	writes   int
	points   int
	failAt   int
	writeErr error
	closeErr error
	report   func(error)
	wrote    chan struct{} // if set, told of every successful Write
}

func (o *scriptedOutput) Write(_ context.Context, b *measure.Buffer) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.writes++
	if o.failAt > 0 && o.writes >= o.failAt {
		return o.writeErr
	}
	o.points += len(b.Points)
	if o.wrote != nil {
		o.wrote <- struct{}{}
	}
	return nil
}

func (o *scriptedOutput) Close() error { return o.closeErr }

func (o *scriptedOutput) counts() (writes, points int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.writes, o.points
}

// reportingOutput is a scriptedOutput that fails on its own, between
// writes, when told to.
type reportingOutput struct{ scriptedOutput }

func (o *reportingOutput) ReportFailuresTo(report func(error)) { o.report = report }

// emitN is a source that emits n buffers of size points, then waits for the stop.
func emitN(n, size int, after chan<- struct{}) Source {
	return sourceFunc(func(ctx context.Context, em Emitter) error {
		for range n {
			if err := em.Emit(context.WithoutCancel(ctx), &measure.Buffer{Points: make([]measure.Point, size)}); err != nil {
				return err
			}
		}
		if after != nil {
			close(after)
		}
		<-ctx.Done()
		return nil
	})
}

func TestOutputFailures(t *testing.T) {
	disk := errors.New("disk full")
	tests := []struct {
		name      string
		out       *scriptedOutput
		wantErr   string // "" for none
		wantLost  int64
		wantKnown bool
		wantWrite int // Write calls the output got
	}{
		{name: "healthy", out: &scriptedOutput{}, wantWrite: 10},
		{name: "plain error: the failing buffer counts whole", out: &scriptedOutput{failAt: 3, writeErr: disk},
			wantErr: "output o failed: disk full: 24 points lost", wantLost: 8 * 3, wantKnown: true, wantWrite: 3},
		{name: "loss error: its count, then the dropped buffers", out: &scriptedOutput{failAt: 3, writeErr: lossErr{5}},
			wantErr: "output o failed: full (5 lost): 26 points lost", wantLost: 5 + 7*3, wantKnown: true, wantWrite: 3},
		{name: "Close error without a count", out: &scriptedOutput{closeErr: disk},
			wantErr: "output o failed: disk full: an unknown number of points may be lost", wantWrite: 10},
		{name: "Close loss error", out: &scriptedOutput{closeErr: lossErr{12345}},
			wantErr: "output o failed: full (12345 lost): 12 345 points lost", wantLost: 12345, wantKnown: true, wantWrite: 10},
		{name: "Close returns the Write error again: said once", out: &scriptedOutput{failAt: 10, writeErr: disk, closeErr: disk},
			wantErr: "output o failed: disk full: 3 points lost", wantLost: 3, wantKnown: true, wantWrite: 10},
		{name: "another Close error after the failure: both said", out: &scriptedOutput{failAt: 10, writeErr: disk, closeErr: errors.New("EIO")},
			wantErr: "output o: close: EIO\noutput o failed: disk full: 3 points lost", wantLost: 3, wantKnown: true, wantWrite: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBuilder(measure.NewRegistry(), 1, nil)
			emitted := make(chan struct{})
			require.NoError(t, b.AddSource("s", emitN(10, 3, emitted)))
			require.NoError(t, b.AddOutput("o", tt.out))
			good := &scriptedOutput{}
			require.NoError(t, b.AddOutput("good", good))
			p := b.Start(context.Background())
			<-emitted
			err := p.Stop(context.Background())
			writes, _ := tt.out.counts()
			require.Equal(t, tt.wantWrite, writes)
			_, gp := good.counts()
			require.Equal(t, 30, gp, "the other output gets everything")
			fs := p.OutputFailures()
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.Empty(t, fs)
				select {
				case <-p.OutputFailed():
					t.Fatal("OutputFailed closed without a failure")
				default:
				}
				return
			}
			require.EqualError(t, err, tt.wantErr)
			require.Len(t, fs, 1)
			require.Equal(t, "o", fs[0].Output)
			require.Equal(t, tt.wantLost, fs[0].Lost)
			require.Equal(t, tt.wantKnown, fs[0].LostKnown)
			require.ErrorIs(t, err, fs[0].Err)
			<-p.OutputFailed()
		})
	}
}

// An output that fails between writes says so at once: OutputFailed is
// closed before Stop, it gets no more Write, and what it misses is counted.
func TestOutputFailureReported(t *testing.T) {
	b := NewBuilder(measure.NewRegistry(), 1, nil)
	out := &reportingOutput{scriptedOutput{wrote: make(chan struct{}, 1)}}
	require.NoError(t, b.AddOutput("o", out))
	p := b.Start(context.Background())
	em := p.emitter("test")
	require.NoError(t, em.Emit(context.Background(), &measure.Buffer{Points: make([]measure.Point, 2)}))
	<-out.wrote
	out.report(lossErr{2}) // its background flush failed: the 2 points
	<-p.OutputFailed()
	require.Equal(t, []OutputFailure{{Output: "o", Err: lossErr{2}, Lost: 2, LostKnown: true}}, p.OutputFailures())
	for range 5 {
		require.NoError(t, em.Emit(context.Background(), &measure.Buffer{Points: make([]measure.Point, 4)}))
	}
	err := p.Stop(context.Background())
	require.EqualError(t, err, "output o failed: full (2 lost): 22 points lost")
	writes, _ := out.counts()
	require.Equal(t, 1, writes, "no Write after the failure was reported")
}

// A dead output never blocks the sources: with the smallest queues, a
// source emitting far more than they hold runs to its end.
func TestDeadOutputDoesNotBlock(t *testing.T) {
	old := MaxQueuedPoints
	MaxQueuedPoints = 4
	defer func() { MaxQueuedPoints = old }()
	b := NewBuilder(measure.NewRegistry(), 1, nil)
	emitted := make(chan struct{})
	require.NoError(t, b.AddSource("s", emitN(5000, 2, emitted)))
	require.NoError(t, b.AddOutput("dead", &scriptedOutput{failAt: 1, writeErr: errors.New("EPIPE")}))
	good := &scriptedOutput{}
	require.NoError(t, b.AddOutput("good", good))
	p := b.Start(context.Background())
	<-emitted // a deadlock would stop here (and the test time out)
	require.EqualError(t, p.Stop(context.Background()), "output dead failed: EPIPE: 10 000 points lost")
	_, n := good.counts()
	require.Equal(t, 10000, n)
}

func TestGroupDigits(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want string
	}{{0, "0"}, {7, "7"}, {999, "999"}, {1000, "1 000"}, {12345, "12 345"}, {1234567, "1 234 567"}, {-1234, "-1 234"}} {
		require.Equal(t, tt.want, GroupDigits(tt.n), "%d", tt.n)
	}
}
