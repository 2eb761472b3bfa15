package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alumet-go/alumet-agent/pipeline"
)

// DuplicateWindow is how close a second delivery of the same signal must
// follow the first to count as the same signal: GNU timeout, for one,
// sends its signal to the agent and then to the agent's process group.
const DuplicateWindow = 100 * time.Millisecond

// Interrupts is the one intake of SIGINT, SIGTERM and SIGHUP that every
// command uses: a signal must never kill the agent before what it fetched
// is written (SIGHUP too: an ssh disconnection must not lose the data).
// Duplicate deliveries (DuplicateWindow) are merged.
type Interrupts struct {
	raw  chan os.Signal
	out  chan os.Signal
	stop chan struct{}
	once sync.Once
	now  func() time.Time
	got  atomic.Bool // a signal was caught
}

// NotifyInterrupts starts catching SIGINT, SIGTERM and SIGHUP.
func NotifyInterrupts() *Interrupts {
	in := newInterrupts(time.Now)
	signal.Notify(in.raw, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	return in
}

func newInterrupts(now func() time.Time) *Interrupts {
	in := &Interrupts{raw: make(chan os.Signal, 8), out: make(chan os.Signal, 8), stop: make(chan struct{}), now: now}
	go in.dedupe()
	return in
}

func (in *Interrupts) dedupe() {
	var last os.Signal
	var lastAt time.Time
	for {
		select {
		case sig := <-in.raw:
			in.got.Store(true)
			at := in.now()
			if sig == last && at.Sub(lastAt) < DuplicateWindow {
				continue
			}
			last, lastAt = sig, at
			select {
			case in.out <- sig:
			default: // a flood of signals: one pending is enough
			}
		case <-in.stop:
			return
		}
	}
}

// C delivers the signals, duplicates merged.
func (in *Interrupts) C() <-chan os.Signal {
	if in == nil {
		return nil
	}
	return in.out
}

// Stop stops catching the signals: the default action is restored, but
// once a signal was caught they are ignored instead, so that the same
// signal sent twice (a terminal's SIGHUP to the process group and the
// shell's) cannot kill the agent while it exits with the first one's code.
func (in *Interrupts) Stop() {
	if in == nil {
		return
	}
	in.once.Do(func() {
		if in.got.Load() {
			signal.Ignore(os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
		}
		signal.Stop(in.raw)
		close(in.stop)
	})
}

// Interrupted is the cause of a context cancelled by a signal.
type Interrupted = pipeline.Interrupted

// InterruptedBy returns the signal that cancelled ctx, if one did.
func InterruptedBy(ctx context.Context) *Interrupted {
	var it *Interrupted
	if errors.As(context.Cause(ctx), &it) {
		return it
	}
	return nil
}

// Until returns a context cancelled, with an *Interrupted cause, by the
// next signal; said is called with that signal (to log it). release stops
// watching; it must be called, and returns the signal that cancelled the
// context (nil if none did). Signals that arrive after the context is
// cancelled, until release, are passed to later (nil: ignored).
func (in *Interrupts) Until(parent context.Context, said func(os.Signal), later func(os.Signal)) (ctx context.Context, release func() os.Signal) {
	ctx, cancel := context.WithCancelCause(parent)
	done := make(chan struct{})
	var got os.Signal
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case sig := <-in.C():
				if got != nil {
					if later != nil {
						later(sig)
					}
					continue
				}
				got = sig
				if said != nil {
					said(sig)
				}
				cancel(&Interrupted{Signal: sig, Name: signalName(sig)})
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	return ctx, func() os.Signal {
		once.Do(func() {
			close(done)
			<-finished
			cancel(nil)
		})
		return got
	}
}

// interruptNote says what a signal that cut a fetch short does.
func interruptNote(sig os.Signal) string {
	return fmt.Sprintf("%s received: no more waiting nor retrying; writing what was fetched, then exiting (SIGKILL would lose it).", signalName(sig))
}

// laterNote says a signal after the one that cut the fetch is not needed.
func laterNote(sig os.Signal) string {
	return fmt.Sprintf("%s received: already stopping, writing what was fetched (SIGKILL would lose it).", signalName(sig))
}
