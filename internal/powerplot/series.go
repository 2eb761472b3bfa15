package powerplot

import (
	"cmp"
	"math"
	"slices"
)

// xy is one point in plot coordinates: seconds since the origin, watts.
type xy struct{ x, y float64 }

// series is one Line reduced for drawing.
type series struct {
	segs       [][]xy  // unbroken runs of points; a gap separates two
	ymin, ymax float64 // over the finite samples; NaN when there are none
	points     int     // finite samples before reduction
}

// sortedCopy returns times and watts ordered by time, stably; the inputs
// are returned as they are when already ascending.
func sortedCopy(ts []int64, ws []float64) ([]int64, []float64) {
	if slices.IsSorted(ts) {
		return ts, ws
	}
	idx := make([]int, len(ts))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(ts[a], ts[b]) })
	t2 := make([]int64, len(ts))
	w2 := make([]float64, len(ws))
	for i, j := range idx {
		t2[i], w2[i] = ts[j], ws[j]
	}
	return t2, w2
}

// maxStepSamples bounds the number of steps looked at to estimate the
// median step of a line (evenly spread over the line).
const maxStepSamples = 4095

// gapThreshold returns the step (ns) above which two consecutive samples
// of ts are not joined: twice the median of the positive steps, estimated
// on at most maxStepSamples evenly spread steps. It returns MaxInt64 (no
// gaps) when there are fewer than two distinct times.
func gapThreshold(ts []int64) int64 {
	n := len(ts) - 1 // number of steps
	if n < 1 {
		return math.MaxInt64
	}
	stride := max(1, n/maxStepSamples)
	steps := make([]int64, 0, min(n, maxStepSamples+1))
	for i := 0; i < n; i += stride {
		if d := ts[i+1] - ts[i]; d > 0 {
			steps = append(steps, d)
		}
	}
	if len(steps) == 0 {
		return math.MaxInt64
	}
	slices.Sort(steps)
	med := steps[len(steps)/2]
	if med > math.MaxInt64/2 {
		return math.MaxInt64
	}
	return 2 * med
}

// reduce turns one line into drawable segments. Times are converted to
// seconds since origin (Unix ns). Samples with a non-finite power are
// dropped and break the line, as does a step longer than gap (ns).
//
// When bucket > 0, the x axis is cut into columns of that width (seconds)
// starting at x0, and each segment keeps, per column, only its lowest and
// its highest sample, in time order (one point when they coincide). So the
// minimum and maximum of every column, hence of the whole line, survive,
// and a segment has at most two points per column it crosses. bucket <= 0
// keeps every sample. ts must be ascending and as long as ws.
func reduce(ts []int64, ws []float64, origin int64, gap int64, x0, bucket float64) series {
	s := series{ymin: math.NaN(), ymax: math.NaN()}
	var (
		seg      []xy
		prevT    int64
		havePrev bool // a sample of the current segment was seen
		// current column of the current segment
		col            int64
		loI, hiI       int // indices of the lowest and highest samples
		colOpen        bool
		invBucket      float64
		downsampleCols = bucket > 0 && !math.IsInf(bucket, 0)
	)
	if downsampleCols {
		invBucket = 1 / bucket
	}
	toX := func(t int64) float64 { return float64(t-origin) / 1e9 }
	flush := func() {
		if !colOpen {
			return
		}
		a, b := loI, hiI
		if a > b {
			a, b = b, a
		}
		seg = append(seg, xy{toX(ts[a]), ws[a]})
		if b != a {
			seg = append(seg, xy{toX(ts[b]), ws[b]})
		}
		colOpen = false
	}
	endSeg := func() {
		flush()
		if len(seg) > 0 {
			s.segs = append(s.segs, seg)
			seg = nil
		}
		havePrev = false
	}
	first := true
	for i, w := range ws {
		if math.IsNaN(w) || math.IsInf(w, 0) {
			endSeg()
			continue
		}
		t := ts[i]
		if havePrev && t-prevT > gap {
			endSeg()
		}
		prevT, havePrev = t, true
		s.points++
		if first {
			s.ymin, s.ymax, first = w, w, false
		} else if w < s.ymin {
			s.ymin = w
		} else if w > s.ymax {
			s.ymax = w
		}
		if !downsampleCols {
			seg = append(seg, xy{toX(t), w})
			continue
		}
		c := int64(math.Floor((toX(t) - x0) * invBucket))
		if colOpen && c == col {
			if w < ws[loI] {
				loI = i
			} else if w > ws[hiI] {
				hiI = i
			}
			continue
		}
		flush()
		col, loI, hiI, colOpen = c, i, i, true
	}
	endSeg()
	return s
}
