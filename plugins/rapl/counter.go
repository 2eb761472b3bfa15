package rapl

import (
	"fmt"
	"time"
)

// MaxPlausiblePower is the power, in W, above which an energy difference is
// taken for a counter reset rather than for energy: no RAPL domain of a
// server (packages below 500 W, a psys below 2 kW) comes near it.
const MaxPlausiblePower = 5000.0

// minPlausibleInterval floors the interval the plausibility check divides
// by (two polls at the same instant).
const minPlausibleInterval = time.Millisecond

// counter turns the successive readings of an energy counter into
// differences, Alumet's CounterDiff: the counter counts from 0 to max and
// then starts again at 0, so a reading below the previous one is a wrap,
// corrected as max − prev + new + 1 (one wrap: nobody can tell more than
// one from the readings).
type counter struct {
	max  uint64 // the largest value the counter takes (max_energy_range_uj, or 2^64−1)
	prev uint64
	has  bool
}

// update outcomes.
type updateKind uint8

const (
	first      updateKind = iota // the first reading: no difference yet
	difference                   // the counter went up
	wrapped                      // the counter wrapped, the difference is corrected
	badMax                       // it went down but prev or new is above max: no correction possible
)

// update records a reading and returns the difference with the previous
// one, in counter units.
func (c *counter) update(v uint64) (uint64, updateKind) {
	prev, had := c.prev, c.has
	c.prev, c.has = v, true
	switch {
	case !had:
		return 0, first
	case v >= prev:
		return v - prev, difference
	case prev > c.max || v > c.max:
		return 0, badMax
	}
	// max − prev + new + 1, in uint64: max=2^64−1 gives the natural
	// modular difference.
	return c.max - prev + v + 1, wrapped
}

// resetError says why a difference is not emitted: the counter was reset
// (or jumped), not consumed energy.
type resetError struct {
	prev, cur uint64
	joules    float64
	dt        time.Duration
	kind      updateKind
}

func (e *resetError) Error() string {
	if e.kind == badMax {
		return fmt.Sprintf("the counter went from %d down to %d, above its maximum: taken for a reset, this interval is not counted", e.prev, e.cur)
	}
	how := "jumped"
	if e.kind == wrapped {
		how = "went back"
	}
	return fmt.Sprintf("the counter %s from %d to %d: %.6g J in %s would be %.0f W, above %.0f W, so it was reset rather than consumed; this interval is not counted",
		how, e.prev, e.cur, e.joules, e.dt, e.joules/max(e.dt, minPlausibleInterval).Seconds(), MaxPlausiblePower)
}

// energy is a counter with its scale: update gives joules, or nothing for
// the first reading, or a *resetError when the difference cannot be energy
// consumed over dt (a reset, a counter that jumped).
type energy struct {
	counter
	scale float64 // joules per counter unit
}

func (e *energy) update(v uint64, dt time.Duration) (float64, bool, error) {
	prev := e.prev
	d, kind := e.counter.update(v)
	switch kind {
	case first:
		return 0, false, nil
	case badMax:
		return 0, false, &resetError{prev: prev, cur: v, kind: kind}
	}
	j := float64(d) * e.scale
	if j > MaxPlausiblePower*max(dt, minPlausibleInterval).Seconds() {
		return 0, false, &resetError{prev: prev, cur: v, joules: j, dt: dt, kind: kind}
	}
	return j, true, nil
}
