package powerplot

import (
	"math"
	"strconv"

	"gonum.org/v1/plot"
)

// niceTicks is a plot.Ticker placing about n labelled ticks at multiples of
// 1, 2 or 5 times a power of ten, with unlabelled minor ticks between.
type niceTicks struct{ n int }

// Ticks implements plot.Ticker.
func (t niceTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		return nil
	}
	n := max(t.n, 2)
	step, minor := niceStep((hi - lo) / float64(n))
	if step <= 0 || math.IsInf(step, 0) || math.IsNaN(step) {
		return nil
	}
	dec := 0
	if step < 1 {
		dec = int(math.Ceil(-math.Log10(step) - 1e-9))
	}
	var ticks []plot.Tick
	sub := step / float64(minor)
	first := math.Ceil(lo/sub - 1e-9)
	last := math.Floor(hi/sub + 1e-9)
	if last-first > 2000 { // cannot happen with a sane n; guards a huge loop
		return nil
	}
	for k := first; k <= last; k++ {
		v := k * sub
		tk := plot.Tick{Value: v}
		if math.Mod(k, float64(minor)) == 0 {
			if v == 0 {
				v = 0 // no "-0"
			}
			tk.Label = strconv.FormatFloat(v, 'f', dec, 64)
		}
		ticks = append(ticks, tk)
	}
	return ticks
}

// niceStep rounds raw up to 1, 2 or 5 times a power of ten and returns it
// with the number of minor intervals per step.
func niceStep(raw float64) (step float64, minor int) {
	if !(raw > 0) {
		return 0, 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	switch norm := raw / mag; {
	case norm <= 1:
		return mag, 5
	case norm <= 2:
		return 2 * mag, 4
	case norm <= 5:
		return 5 * mag, 5
	default:
		return 10 * mag, 5
	}
}
