// Package pipelinetest is the pipeline's test kit, in the manner of
// Telegraf's testutil.Accumulator and the OpenTelemetry Collector's
// consumertest.Sink: a Recorder that stands for the rest of the pipeline,
// whichever side of it a test is on. A source under test emits to it (it
// is a pipeline.Emitter), a transform's points reach it as an output of a
// real pipeline (it is a pipeline.Output and a pipeline.EventListener).
// It records every buffer it is given, as given, and the measurement
// events it hears; it is safe for concurrent use, and WaitFor waits for
// points that arrive from other goroutines.
//
// It imports nothing but the pipeline and the data model, so that every
// package's tests may use it.
package pipelinetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
)

// Recorder records the buffers and events it receives. The zero value is
// ready to use; it must not be copied after first use.
type Recorder struct {
	// AcceptCompact is what AcceptsCompact answers: whether a source that
	// emits to the recorder may send compact points (Buffer.Compact).
	// Points expands them either way. As an output of a pipeline the
	// recorder gets Points only; use a CompactRecorder to get compact
	// points there.
	AcceptCompact bool

	mu      sync.Mutex
	bufs    []*measure.Buffer // clones of what Emit and Write were given
	points  int               // Len of every recorded buffer
	events  []pipeline.Event
	closed  bool
	changed chan struct{} // closed and replaced at every new buffer
}

var (
	_ pipeline.CompactEmitter = (*Recorder)(nil)
	_ pipeline.Output         = (*Recorder)(nil)
	_ pipeline.EventListener  = (*Recorder)(nil)
	_ pipeline.CompactWriter  = (*CompactRecorder)(nil)
)

// CompactRecorder is a Recorder that, as an output, reads compact points
// (a pipeline.CompactWriter): when every other consumer reads them too,
// the pipeline gives it buffers with Buffer.Compact as the source emitted
// them. Buffers shows them so, Points expanded.
type CompactRecorder struct{ Recorder }

// WritesCompact marks the recorder as a pipeline.CompactWriter.
func (*CompactRecorder) WritesCompact() {}

// ErrClosed is returned by Write after Close, and by a second Close.
var ErrClosed = errors.New("pipelinetest: recorder closed")

// clone copies buf, attributes included: the pipeline reuses a buffer's
// memory once its outputs have written it. Series of compact points are
// shared (sources do not change a series once emitted).
func clone(buf *measure.Buffer) *measure.Buffer {
	c := &measure.Buffer{}
	if buf == nil {
		return c
	}
	c.Points = slices.Clone(buf.Points)
	for i := range c.Points {
		c.Points[i].Attributes = slices.Clone(c.Points[i].Attributes)
	}
	c.Compact = slices.Clone(buf.Compact)
	return c
}

func (r *Recorder) record(buf *measure.Buffer) {
	c := clone(buf)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bufs = append(r.bufs, c)
	r.points += c.Len()
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
}

// Emit records a copy of buf (a nil buf as an empty buffer). Unlike the
// pipeline it keeps empty buffers, so that a test sees them. It never
// fails and never releases buf to its pool.
func (r *Recorder) Emit(_ context.Context, buf *measure.Buffer) error {
	r.record(buf)
	return nil
}

// AcceptsCompact returns AcceptCompact.
func (r *Recorder) AcceptsCompact() bool { return r.AcceptCompact }

// Write records a copy of buf; after Close it fails with ErrClosed.
func (r *Recorder) Write(_ context.Context, buf *measure.Buffer) error {
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return ErrClosed
	}
	r.record(buf)
	return nil
}

// Close marks the recorder closed; a second Close fails with ErrClosed.
func (r *Recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	r.closed = true
	return nil
}

// Closed reports whether Close was called.
func (r *Recorder) Closed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// OnEvent records ev. It never fails.
func (r *Recorder) OnEvent(_ context.Context, ev pipeline.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	return nil
}

// Events returns the events heard so far, in order.
func (r *Recorder) Events() []pipeline.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// Len returns the number of points recorded so far, compact ones included.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.points
}

// Buffers returns copies of the buffers recorded so far, in arrival order,
// as they were given (compact points not expanded): a test may change them.
func (r *Recorder) Buffers() []*measure.Buffer {
	r.mu.Lock()
	bufs := slices.Clone(r.bufs)
	r.mu.Unlock()
	for i, b := range bufs {
		bufs[i] = clone(b)
	}
	return bufs
}

// Points returns every point recorded so far, in arrival order, with the
// compact points expanded (each buffer's Points, then its Compact, as
// Buffer.Expand orders them). It is nil when nothing was recorded.
func (r *Recorder) Points() []measure.Point {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.points == 0 {
		return nil
	}
	pts := make([]measure.Point, 0, r.points)
	for _, b := range r.bufs {
		pts = append(pts, b.Points...)
		for i := range b.Compact {
			pts = append(pts, b.Compact[i].Point())
		}
	}
	return pts
}

// WaitFor waits until at least n points were recorded and returns Points;
// it fails t if they do not come within timeout.
func (r *Recorder) WaitFor(t testing.TB, n int, timeout time.Duration) []measure.Point {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		got := r.points
		if got >= n {
			r.mu.Unlock()
			return r.Points()
		}
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("pipelinetest: %d points recorded within %v, want at least %d", got, timeout, n)
			return nil
		}
	}
}
