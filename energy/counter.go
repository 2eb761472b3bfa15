package energy

import "math"

// span is one reading interval of an energy series: (a, b] held the energy
// of power w (W) times its length.
type span struct {
	a, b int64
	w    float64
	// decreased: a Counter went down over it (a wrap or a reset); reset:
	// no known wrap explains it, so its energy is the new reading, a
	// lower bound.
	decreased, reset bool
}

// spanAt is the interval that ends at sample i (ok false for a Counter's
// first reading, which only sets its origin).
func spanAt(s []sample, i int, m Method, p int64, wrap float64) (sp span, ok bool) {
	if m == IntervalMean {
		a := s[i].t - p
		if i > 0 {
			a = s[i-1].t
		}
		return span{a: a, b: s[i].t, w: s[i].w}, true
	}
	if i == 0 {
		return span{}, false
	}
	sp = span{a: s[i-1].t, b: s[i].t}
	d := s[i].w - s[i-1].w
	if d < 0 {
		sp.decreased = true
		if wrap > 0 && s[i-1].w <= wrap {
			d += wrap
		} else {
			d, sp.reset = s[i].w, true
		}
	}
	sp.w = d / (float64(sp.b-sp.a) / 1e9)
	return sp, true
}

// counter integrates energy readings (Counter, IntervalMean): each reading
// interval (a, b] holds a known energy, spread evenly over it (constant
// power: a Counter's difference over the interval's length, an
// IntervalMean's value); the window takes the clipped share of each. Before the first
// interval and after the last one the nearest interval's power is
// extrapolated, as for the power methods.
//
// What is bridged (not real data): the edge stretches; an interval over
// which a Counter decreased without a known wrap (a reset: its energy, the
// new reading, is a lower bound); and the part inside the window of an
// interval longer than the gap threshold that the window cuts (its energy
// is known only for the whole interval). A long interval entirely inside
// the window is real data: the counter measured all of it.
func (c *acc) counter(s []sample, m Method, p int64, wrap float64) {
	n := len(s)
	lo := 0
	if m == Counter {
		lo = 1
	}
	if n <= lo {
		return
	}
	at := func(i int) span { sp, _ := spanAt(s, i, m, p, wrap); return sp }
	if f := at(lo); c.s < f.a {
		c.edge(c.s, f.a, f.w)
	}
	i0 := max(first(s, c.s), lo)
	prev := math.NaN()
	if i0 > lo {
		prev = at(i0 - 1).w
	}
	for i := i0; i < n; i++ {
		sp := at(i)
		if sp.a >= c.e {
			break
		}
		long := float64(sp.b-sp.a) > c.gap
		cut := sp.a < c.s || sp.b > c.e
		bridged := sp.reset || long && cut
		if l, h, ok := c.piece(sp.a, sp.b, sp.w, sp.w, bridged); ok {
			c.samples++
			if sp.decreased {
				c.resets++
			}
			if bridged && float64(h-l) > c.gap || sp.reset && long {
				c.addGap(l, h)
			}
			if cut && !bridged {
				// A cut interval's share assumes a constant power over
				// it: bounded by the powers of its neighbours.
				vlo, vhi := sp.w, sp.w
				for _, v := range []float64{prev, nextPower(s, i, m, p, wrap)} {
					if !math.IsNaN(v) {
						vlo, vhi = min(vlo, v), max(vhi, v)
					}
				}
				c.unc += 0.5 * (vhi - vlo) * float64(h-l) / 1e9
			}
		}
		prev = sp.w
	}
	if l := at(n - 1); l.b < c.e {
		c.edge(l.b, c.e, l.w)
	}
}

func nextPower(s []sample, i int, m Method, p int64, wrap float64) float64 {
	if i+1 >= len(s) {
		return math.NaN()
	}
	sp, _ := spanAt(s, i+1, m, p, wrap)
	return sp.w
}
