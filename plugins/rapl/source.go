package rapl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
)

// maxWarningsPerCounter bounds the reset warnings of one counter.
const maxWarningsPerCounter = 5

// Source polls the RAPL counters every poll_interval and emits their
// energy since the previous poll every flush_interval.
type Source struct {
	chans  []*channel
	metric measure.MetricID
	poll   time.Duration
	flush  time.Duration
	log    *slog.Logger
	now    func() time.Time
	iface  string // perf_events or powercap

	buf      *measure.Buffer
	last     time.Time // the previous poll (monotonic)
	polled   bool
	totals   [numDomains]float64
	hasTotal [numDomains]bool
}

// ErrAllCountersLost is returned when every counter stopped answering.
var ErrAllCountersLost = errors.New("every RAPL counter became unreadable: nothing left to measure")

// pollOnce reads every counter at t and adds the points of this poll (none
// at the first): one per counter, then the totals per domain.
func (s *Source) pollOnce(t time.Time) error {
	dt := t.Sub(s.last)
	first := !s.polled
	s.last, s.polled = t, true
	ts := t.UTC()
	if s.buf == nil {
		s.buf = measure.NewPooledBuffer(len(s.chans) * 2 * max(1, int(s.flush/max(s.poll, time.Millisecond))))
	}
	s.hasTotal = [numDomains]bool{}
	alive := 0
	for _, c := range s.chans {
		if c.lost {
			continue
		}
		v, err := c.read()
		if err != nil {
			c.lost = true
			c.energy.has = false
			s.log.Warn(fmt.Sprintf("RAPL %s cannot be read any more (%v): its points stop here, and the %s total leaves it out", c.label, err, c.domain.total()))
			continue
		}
		alive++
		j, ok, err := c.energy.update(v, dt)
		if err != nil {
			if c.warnings++; c.warnings <= maxWarningsPerCounter {
				s.log.Warn(fmt.Sprintf("RAPL %s: %v", c.label, err))
			} else if c.warnings == maxWarningsPerCounter+1 {
				s.log.Warn(fmt.Sprintf("RAPL %s: more resets, not reporting them any more", c.label))
			}
			continue
		}
		if !ok || first {
			continue
		}
		s.buf.Push(measure.Point{Metric: s.metric, Timestamp: ts, Value: measure.Float(j),
			Resource: c.resource, Consumer: localMachine, Attributes: c.attrs})
		if s.hasTotal[c.domain] {
			s.totals[c.domain] += j
		} else {
			s.totals[c.domain], s.hasTotal[c.domain] = j, true
		}
	}
	for d := domain(0); d < numDomains; d++ {
		if s.hasTotal[d] {
			s.buf.Push(measure.Point{Metric: s.metric, Timestamp: ts, Value: measure.Float(s.totals[d]),
				Resource: measure.LocalMachine, Consumer: localMachine, Attributes: totalAttrs[d]})
		}
	}
	if alive == 0 && len(s.chans) > 0 {
		return ErrAllCountersLost
	}
	return nil
}

var localMachine = measure.Consumer{Kind: measure.KindLocalMachine}

var totalAttrs = func() (a [numDomains][]measure.Attribute) {
	for d := domain(0); d < numDomains; d++ {
		a[d] = []measure.Attribute{{Key: "domain", Value: measure.String(d.total())}}
	}
	return a
}()

// take returns the points held and forgets them.
func (s *Source) take() *measure.Buffer {
	b := s.buf
	s.buf = nil
	return b
}

func (s *Source) emit(ctx context.Context, out pipeline.Emitter) error {
	b := s.take()
	if b == nil || b.Len() == 0 {
		b.Release()
		return nil
	}
	return out.Emit(ctx, b)
}

// Run polls until ctx is cancelled, then polls once more (the energy up to
// the stop) and emits what it holds.
func (s *Source) Run(ctx context.Context, out pipeline.Emitter) error {
	defer closeAll(s.chans)
	if err := s.pollOnce(s.now()); err != nil {
		return err
	}
	tick := time.NewTicker(s.poll)
	defer tick.Stop()
	lastFlush := s.last
	for {
		select {
		case <-ctx.Done():
			perr := s.pollOnce(s.now())
			return errors.Join(perr, s.emit(ctx, out))
		case <-tick.C:
			t := s.now()
			if err := s.pollOnce(t); err != nil {
				return errors.Join(err, s.emit(ctx, out))
			}
			if t.Sub(lastFlush) >= s.flush {
				lastFlush = t
				if err := s.emit(ctx, out); err != nil {
					return err
				}
			}
		}
	}
}
