package emulator

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Held connections: the black hole (fault kind blackhole, Config.Blackhole)
// and stall keep a connection open without sending anything (more). A held
// connection is taken over from net/http (hijacked), so neither
// http.Server.Shutdown nor httptest.Server.Close waits for it; it is
// released, and closed, when the client goes away or Close is called, which
// waits for every holder to return. Nothing outlives Close.

// holdSet tracks the held connections.
type holdSet struct {
	mu      sync.Mutex
	closed  bool
	wg      sync.WaitGroup
	closing chan struct{} // closed by Close
	// ctx is cancelled by Close (waits of a paused stall).
	ctx    context.Context
	cancel context.CancelFunc
	// onHold and onRelease, set by tests before serving, are called when a
	// connection starts and stops being held.
	onHold, onRelease func()
}

func newHoldSet() *holdSet {
	ctx, cancel := context.WithCancel(context.Background())
	return &holdSet{closing: make(chan struct{}), ctx: ctx, cancel: cancel}
}

// enter registers a holder; false once Close has begun.
func (h *holdSet) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.wg.Add(1)
	return true
}

func (h *holdSet) leave() {
	if h.onRelease != nil {
		h.onRelease()
	}
	h.wg.Done()
}

// close releases every holder and waits for them.
func (h *holdSet) close() {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.closing)
		h.cancel()
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// blackhole is the whole-server black-hole switch (Config.Blackhole,
// SetBlackhole, the control endpoint).
type blackhole struct{ on atomic.Bool }

// SetBlackhole turns the whole-server black hole on or off: every request
// but the control endpoint's is accepted and never answered (see
// Config.Blackhole). Turning it off does not release the connections
// already held; Close does.
func (e *Emulator) SetBlackhole(on bool) { e.blackhole.on.Store(on) }

// Blackhole tells whether the whole-server black hole is on.
func (e *Emulator) Blackhole() bool { return e.blackhole.on.Load() }

// hold keeps the request's connection open, sending nothing more, until
// the client goes away or the emulator closes, then closes it. What the
// handler wrote is flushed first (nothing if it wrote nothing). Without a connection to take over
// (HTTP/2, a ResponseRecorder) it blocks the handler as long and then
// aborts it (http.ErrAbortHandler).
func (e *Emulator) hold(w http.ResponseWriter, r *http.Request) {
	if !e.holds.enter() {
		cutConnection(w, false, false) // closing: no more holding (Hijack flushes a stall prefix)
		return
	}
	defer e.holds.leave()
	e.stats.update(func(s *Stats) { s.Held++ })
	defer e.stats.update(func(s *Stats) { s.Held-- })
	// Hijack sends the headers if they were written (a stall has flushed
	// its prefix); a black hole has written nothing, so nothing is sent.
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		if rec := recorder(w); rec != nil && rec.status == 0 {
			rec.count(0)
		}
		if e.holds.onHold != nil {
			e.holds.onHold()
		}
		select {
		case <-r.Context().Done():
		case <-e.holds.closing:
		}
		panic(http.ErrAbortHandler)
	}
	if rec := recorder(w); rec != nil {
		rec.hijacked = true
		if rec.status == 0 {
			rec.count(0)
		}
	}
	// The client going away is an EOF (or error) on the connection; what it
	// sends meanwhile (the rest of a body, more requests) is discarded.
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		_, _ = io.Copy(io.Discard, buf.Reader)
	}()
	if e.holds.onHold != nil {
		e.holds.onHold()
	}
	select {
	case <-gone:
	case <-e.holds.closing:
	}
	_ = conn.Close()
	<-gone
}

// pauseHeld waits d (a stall's pause) as a held connection: false if the
// client went away or the emulator closed first.
func (e *Emulator) pauseHeld(ctx context.Context, d time.Duration) bool {
	if !e.holds.enter() {
		return false
	}
	defer e.holds.leave()
	e.stats.update(func(s *Stats) { s.Held++ })
	defer e.stats.update(func(s *Stats) { s.Held-- })
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(e.holds.ctx, cancel)
	defer stop()
	if e.holds.onHold != nil {
		e.holds.onHold()
	}
	return e.sleep(ctx, d) == nil
}
