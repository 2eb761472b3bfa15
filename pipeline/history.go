package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/alumet-go/alumet-agent/measure"
)

// History is a side channel of the pipeline for the data around the
// measured window that must not reach the outputs: the idle level before
// the run (energy-report's baseline = "before:D"), and the recent power
// while the agent waits for the nodes to cool down between repeated runs.
//
// A consumer (a transform) asks for a span with Want and receives the points
// through the function it gives to Subscribe; a source that can look back
// (kwollect-input) reads Wanted and calls Deliver once it has fetched that
// span, and offers ProvideRecent for fresh readings. It is safe for
// concurrent use.
//
// The span after a run (energy-report's baseline = "after:D", an energy
// counter's first reading after the window) goes the same way: WantAfter,
// WantedAfter, DeliverAfter, SubscribeAfter, TapAfter.
type History struct {
	mu        sync.Mutex
	want      time.Duration
	subs      []historySub
	taps      []func(buf *measure.Buffer, end time.Time)
	recent    RecentFunc
	wantAfter time.Duration
	subsAfter []func(buf *measure.Buffer, from time.Time)
	tapsAfter []func(buf *measure.Buffer, from time.Time)
}

// historySub is a subscriber and the span it asked for (0: everything).
type historySub struct {
	span time.Duration
	fn   func(*measure.Buffer)
}

// RecentFunc returns the points a source has between from and to,
// fetched now (not from the pipeline).
type RecentFunc func(ctx context.Context, from, to time.Time) (*measure.Buffer, error)

// ErrNoRecent is returned by Recent when no source provides fresh readings.
var ErrNoRecent = errors.New("no source provides recent readings")

// Want asks the sources for the d before the measured window; the longest
// request wins.
func (h *History) Want(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.want = max(h.want, d)
}

// Wanted is the span before the measured window the sources should fetch
// and Deliver; 0 when nobody asked.
func (h *History) Wanted() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.want
}

// Subscribe registers fn to receive the history, all of it; fn must not
// keep buf after it returns, nor modify it.
func (h *History) Subscribe(fn func(buf *measure.Buffer)) { h.SubscribeSpan(0, fn) }

// SubscribeSpan registers fn to receive the points of the history in the
// span d before its end (what it asked with Want(d)): another element may
// have asked the sources for a longer history. d = 0 is everything.
func (h *History) SubscribeSpan(d time.Duration, fn func(buf *measure.Buffer)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs = append(h.subs, historySub{span: d, fn: fn})
}

// Tap registers fn to receive the history as delivered, with its end (a
// run directory records both, so that a replay delivers the same).
func (h *History) Tap(fn func(buf *measure.Buffer, end time.Time)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.taps = append(h.taps, fn)
}

// Deliver hands buf to every subscriber, synchronously, without an end
// (SubscribeSpan's subscribers get all of it).
func (h *History) Deliver(buf *measure.Buffer) { h.DeliverBefore(buf, time.Time{}) }

// DeliverBefore hands buf, the history before end (the start of the
// measured window as the source fetched it), to every subscriber,
// synchronously: a SubscribeSpan subscriber gets only its span.
func (h *History) DeliverBefore(buf *measure.Buffer, end time.Time) {
	if buf == nil || buf.Len() == 0 {
		return
	}
	buf.Expand() // the subscribers read Points
	h.mu.Lock()
	subs, taps := h.subs, h.taps
	h.mu.Unlock()
	for _, fn := range taps {
		fn(buf, end)
	}
	for _, s := range subs {
		if s.span <= 0 || end.IsZero() {
			s.fn(buf)
			continue
		}
		from := end.Add(-s.span)
		part := &measure.Buffer{}
		for _, p := range buf.Points {
			if !p.Timestamp.Before(from) {
				part.Points = append(part.Points, p)
			}
		}
		if part.Len() > 0 {
			s.fn(part)
		}
	}
}

// WantAfter asks the sources for the d after each measured window (they
// wait for it in exec and watch); the longest request wins.
func (h *History) WantAfter(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.wantAfter = max(h.wantAfter, d)
}

// WantedAfter is the span after each measured window the sources should
// fetch and DeliverAfter; 0 when nobody asked.
func (h *History) WantedAfter() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.wantAfter
}

// SubscribeAfter registers fn to receive the spans after the windows,
// each with the window's end (from); fn must not keep buf nor modify it.
func (h *History) SubscribeAfter(fn func(buf *measure.Buffer, from time.Time)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subsAfter = append(h.subsAfter, fn)
}

// TapAfter registers fn to receive the spans after the windows as
// delivered (a run directory records them).
func (h *History) TapAfter(fn func(buf *measure.Buffer, from time.Time)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tapsAfter = append(h.tapsAfter, fn)
}

// DeliverAfter hands buf, the data after a window that ended at from, to
// the taps and the subscribers, synchronously.
func (h *History) DeliverAfter(buf *measure.Buffer, from time.Time) {
	if buf == nil || buf.Len() == 0 {
		return
	}
	buf.Expand()
	h.mu.Lock()
	subs, taps := h.subsAfter, h.tapsAfter
	h.mu.Unlock()
	for _, fn := range taps {
		fn(buf, from)
	}
	for _, fn := range subs {
		fn(buf, from)
	}
}

// ProvideRecent registers the source of fresh readings (the first one wins).
func (h *History) ProvideRecent(fn RecentFunc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.recent == nil {
		h.recent = fn
	}
}

// Recent fetches the readings between from and to from the source that
// provides them, or returns ErrNoRecent.
func (h *History) Recent(ctx context.Context, from, to time.Time) (*measure.Buffer, error) {
	h.mu.Lock()
	fn := h.recent
	h.mu.Unlock()
	if fn == nil {
		return nil, ErrNoRecent
	}
	return fn(ctx, from, to)
}

// IdleWaiter is implemented by elements that know the idle level of the
// measured nodes and can tell when they are back to it (energy-report with
// a baseline). WaitIdle blocks until the power is back within tolerance of
// that level, for at most limit; handled is false when the element cannot
// judge (no baseline known), and the agent then just waits its cooldown.
type IdleWaiter interface {
	WaitIdle(ctx context.Context, tolerance float64, limit time.Duration) (handled bool, err error)
}

// WaitIdle is the cooldown between repeated runs: it asks the elements
// that know the idle level to wait until the nodes are back to it (within
// tolerance, at most limit), and otherwise sleeps fallback. It returns
// early with ctx's error when ctx is cancelled.
func (p *Pipeline) WaitIdle(ctx context.Context, tolerance float64, limit, fallback time.Duration) (waitedForIdle bool, err error) {
	for _, t := range p.b.transforms {
		w, ok := t.t.(IdleWaiter)
		if !ok {
			continue
		}
		handled, err := w.WaitIdle(ctx, tolerance, limit)
		if err != nil {
			return handled, fmt.Errorf("transform %s: %w", t.name, err)
		}
		if handled {
			return true, nil
		}
	}
	if fallback <= 0 {
		return false, nil
	}
	tm := time.NewTimer(fallback)
	defer tm.Stop()
	select {
	case <-tm.C:
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}
