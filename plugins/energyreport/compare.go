package energyreport

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/alumet-go/alumet-agent/energy"
)

// The comparison sets, per node, the energy every source gave for the same
// window side by side: the wattmeter (the reference, when there is one),
// the BMC (its power readings and its watt-hour counter), the PDU, and
// RAPL, read by the node itself (the rapl source) or by Kwollect from its
// Prometheus exporter (prom_node_rapl_*_joules_total). A node gets one
// when two sources or more have data in the run.

// source is what a metric measures, for the comparison.
type source struct {
	label string // "wattmeter", "BMC", "BMC energy counter", "PDU", "RAPL …"
	order int
	// rapl is the RAPL domain ("package", "dram", …), "" for wall power;
	// onNode says the node read it itself (the rapl source).
	rapl   string
	onNode bool
}

// sourceOf classifies a series' metric; false for a metric the comparison
// does not know.
func sourceOf(metric string) (source, bool) {
	switch metric {
	case energy.WattmetreMetric:
		return source{label: "wattmeter", order: 0}, true
	case "bmc_node_power_watt":
		return source{label: "BMC", order: 1}, true
	case "bmc_node_power_watthour_total":
		return source{label: "BMC energy counter", order: 2}, true
	case "pdu_outlet_power_watt":
		return source{label: "PDU", order: 3}, true
	}
	if d, ok := strings.CutPrefix(metric, "prom_node_rapl_"); ok {
		if d, ok = strings.CutSuffix(d, "_joules_total"); ok {
			return source{label: "RAPL " + d + " (Kwollect)", order: 10 + raplOrder(d), rapl: d}, true
		}
	}
	if d, ok := strings.CutPrefix(metric, raplMetric+"."); ok {
		d = strings.TrimSuffix(d, "_total")
		return source{label: "RAPL " + d + " (on-node)", order: 20 + raplOrder(d), rapl: d, onNode: true}, true
	}
	return source{}, false
}

func raplOrder(domain string) int {
	switch domain {
	case "package":
		return 0
	case "dram":
		return 1
	}
	return 2
}

// nodeComparison is the comparison of one node in one run.
type nodeComparison struct {
	node      string
	reference *row // the wattmeter's row, nil without one
	sources   []comparedRow
	rapl      []raplShare
	clock     *clockCheck
	warnings  []string
}

type comparedRow struct {
	row      row
	src      source
	ratio    float64 // to the reference, NaN without one
	ratioUnc float64
}

// raplShare is what RAPL saw of the wall energy: package + dram, read
// on-node or by Kwollect.
type raplShare struct {
	origin   string   // "on-node", "Kwollect"
	metrics  []string // the series summed
	energy   float64
	unc      float64
	mean     float64
	ratio    float64 // to the reference (NaN without one)
	unseen   float64 // reference − RAPL
	coverage float64
}

// clockCheck is the on-node clock against Kwollect's timestamps: the lag
// that best aligns the node's RAPL power with the wattmeter's.
type clockCheck struct {
	offset      time.Duration // on-node clock minus Kwollect's timestamps
	correlation float64
	ok          bool
	note        string // why it is not known, when !ok
}

// minComparableCoverage is the coverage below which a source's ratio is
// flagged: it rests on too much bridged data to compare meters.
const minComparableCoverage = 0.95

// comparisons builds the comparison of every node of rr with two sources or
// more.
func (r *report) comparisons(rr runReport) []nodeComparison {
	byNode := map[string][]comparedRow{}
	for _, rw := range rr.rows {
		src, ok := sourceOf(rw.key.metric)
		if !ok || !rw.hasData || !finite(float64(rw.res.Energy)) {
			continue
		}
		byNode[rw.key.node] = append(byNode[rw.key.node], comparedRow{row: rw, src: src, ratio: math.NaN(), ratioUnc: math.NaN()})
	}
	var out []nodeComparison
	for _, node := range slices.Sorted(maps.Keys(byNode)) {
		rows := byNode[node]
		if len(rows) < 2 {
			continue
		}
		slices.SortFunc(rows, func(a, b comparedRow) int { return cmp.Compare(a.src.order, b.src.order) })
		nc := nodeComparison{node: node}
		if rows[0].src.order == 0 {
			nc.reference = &rows[0].row
		}
		for i := range rows {
			cr := &rows[i]
			switch {
			case i == 0 && nc.reference != nil:
				cr.ratio, cr.ratioUnc = 1, 0 // the reference itself
			case nc.reference != nil:
				cr.ratio, cr.ratioUnc = ratioOf(cr.row.res, nc.reference.res)
			}
			if c := cr.row.res.Coverage; c < minComparableCoverage {
				nc.warnings = append(nc.warnings, fmt.Sprintf("%s (%s) covers %s %% of the window: the rest is extrapolated or bridged, compare with care", cr.src.label, cr.row.key.metric, coveragePct(c)))
			}
		}
		nc.sources = rows
		for _, onNode := range []bool{true, false} {
			if sh, ok := raplShareOf(rows, onNode, nc.reference); ok {
				nc.rapl = append(nc.rapl, sh)
			}
		}
		nc.clock = r.clockOf(node, rr, rows)
		out = append(out, nc)
	}
	return out
}

// ratioOf is a/b with a bound on its error from the two uncertainties
// (relative bounds added, as the uncertainties are bounds).
func ratioOf(a, b energy.Result) (ratio, unc float64) {
	ea, eb := float64(a.Energy), float64(b.Energy)
	if eb == 0 || !finite(ea) || !finite(eb) {
		return math.NaN(), math.NaN()
	}
	ratio = ea / eb
	unc = math.Abs(ratio) * (math.Abs(float64(a.Uncertainty)/ea) + math.Abs(float64(b.Uncertainty)/eb))
	if ea == 0 {
		unc = math.Abs(float64(a.Uncertainty) / eb)
	}
	return ratio, unc
}

// raplShareOf sums the RAPL package and dram series of one origin.
func raplShareOf(rows []comparedRow, onNode bool, ref *row) (raplShare, bool) {
	sh := raplShare{origin: "Kwollect", ratio: math.NaN(), unseen: math.NaN(), coverage: 1}
	if onNode {
		sh.origin = "on-node"
	}
	dur := 0.0
	for _, cr := range rows {
		if cr.src.rapl == "" || cr.src.onNode != onNode || cr.src.rapl != "package" && cr.src.rapl != "dram" {
			continue
		}
		sh.metrics = append(sh.metrics, cr.row.key.metric)
		sh.energy += float64(cr.row.res.Energy)
		sh.unc += float64(cr.row.res.Uncertainty)
		sh.coverage = min(sh.coverage, cr.row.res.Coverage)
		dur = cr.row.res.Duration.Seconds()
	}
	if len(sh.metrics) == 0 {
		return raplShare{}, false
	}
	if dur > 0 {
		sh.mean = sh.energy / dur
	}
	if ref != nil {
		e := float64(ref.res.Energy)
		if e != 0 {
			sh.ratio = sh.energy / e
		}
		sh.unseen = e - sh.energy
	}
	return sh, true
}

// Clock alignment: the node's own RAPL power against the wattmeter's, on
// a grid of clockStep, over lags of ±clockMaxLag; the lag of the highest
// correlation is the on-node clock's offset (plus the meters' own delays,
// which are well under a second for both).
const (
	clockStep        = 100 * time.Millisecond
	clockMaxLag      = 10 * time.Second
	clockMinCorr     = 0.6
	clockMinSwingW   = 2.0 // the wall power must vary by more than this (sd, W)
	clockMaxGridSize = 36000
)

// clockOf checks the on-node clock of node with its RAPL package series
// and the wattmeter, when it has both.
func (r *report) clockOf(node string, rr runReport, rows []comparedRow) *clockCheck {
	var dev, ref *series
	for _, cr := range rows {
		k := seriesKey{node: node, metric: cr.row.key.metric, run: rr.win.run}
		switch {
		case cr.src.onNode && cr.src.rapl == "package":
			if p := r.partsOf(k); len(p) == 1 {
				dev = p[0]
			}
		case cr.src.order == 0:
			if p := r.partsOf(k); len(p) == 1 {
				ref = p[0]
			}
		}
	}
	if dev == nil || ref == nil {
		return nil
	}
	from, to := rr.win.start.UnixNano(), rr.win.end.UnixNano()
	refPts := centred(ref, false)
	devPts := centred(dev, true)
	c := estimateOffset(refPts, devPts, from, to)
	return &c
}

// centred returns the samples of s at the middle of what each covers: a
// wattmetre 1 s mean covers [t, t+1 s), an interval mean (t_prev, t], an
// instantaneous reading its instant.
func centred(s *series, intervalMean bool) []rawSample {
	var xs []rawSample
	s.samples.all(func(x rawSample) { xs = append(xs, x) })
	slices.SortStableFunc(xs, func(a, b rawSample) int { return cmp.Compare(a.t, b.t) })
	if len(xs) < 2 {
		return xs
	}
	out := make([]rawSample, 0, len(xs))
	for i, x := range xs {
		var d int64
		switch {
		case intervalMean && i > 0:
			d = -(x.t - xs[i-1].t) / 2
		case intervalMean:
			d = -(xs[1].t - xs[0].t) / 2
		case s.key.metric == energy.WattmetreMetric && i+1 < len(xs) && xs[i+1].t-x.t >= int64(900*time.Millisecond):
			d = int64(500 * time.Millisecond)
		}
		if math.IsNaN(x.w) {
			continue
		}
		out = append(out, rawSample{t: x.t + d, w: x.w})
	}
	return out
}

// estimateOffset finds the lag L (on the grid) maximising the correlation
// of ref(t) with dev(t+L) over [from, to].
func estimateOffset(ref, dev []rawSample, from, to int64) clockCheck {
	step := clockStep.Nanoseconds()
	if (to-from)/step > clockMaxGridSize {
		from = to - clockMaxGridSize*step // the latest part of a long window
	}
	n := int((to - from) / step)
	if n < 60 || len(ref) < 10 || len(dev) < 10 {
		return clockCheck{note: "too few samples to align the clocks"}
	}
	lags := int(clockMaxLag / clockStep)
	a := resample(ref, from, step, n)
	b := resample(dev, from-int64(lags)*step, step, n+2*lags)
	if sd := stddev(a); !(sd > clockMinSwingW) {
		return clockCheck{note: fmt.Sprintf("the wall power hardly varied (sd %s W): no feature to align the clocks on", fixed(sd, 2))}
	}
	best, bestL := math.Inf(-1), 0
	corrs := make([]float64, 2*lags+1)
	for l := -lags; l <= lags; l++ {
		c := pearson(a, b[l+lags:l+lags+n])
		corrs[l+lags] = c
		if c > best {
			best, bestL = c, l
		}
	}
	if !(best >= clockMinCorr) {
		return clockCheck{correlation: best, note: fmt.Sprintf("RAPL and the wattmeter correlate at most %.2f over ±%v: the offset is not determined", best, clockMaxLag)}
	}
	// A parabola through the peak and its neighbours refines it.
	off := float64(bestL)
	if i := bestL + lags; i > 0 && i < len(corrs)-1 {
		y0, y1, y2 := corrs[i-1], corrs[i], corrs[i+1]
		if den := y0 - 2*y1 + y2; den < 0 {
			off += 0.5 * (y0 - y2) / den
		}
	}
	return clockCheck{offset: time.Duration(off * float64(step)).Round(10 * time.Millisecond), correlation: best, ok: true}
}

// resample is xs (sorted, centred) interpolated linearly at from + i·step,
// i < n; NaN outside the samples.
func resample(xs []rawSample, from, step int64, n int) []float64 {
	out := make([]float64, n)
	j := 0
	for i := range out {
		t := from + int64(i)*step
		for j+1 < len(xs) && xs[j+1].t <= t {
			j++
		}
		switch {
		case len(xs) == 0 || t < xs[0].t || t > xs[len(xs)-1].t:
			out[i] = math.NaN()
		case j+1 >= len(xs) || xs[j].t == t:
			out[i] = xs[j].w
		default:
			a, b := xs[j], xs[j+1]
			out[i] = a.w + (b.w-a.w)*float64(t-a.t)/float64(b.t-a.t)
		}
	}
	return out
}

// pearson is the correlation of a and b over the indexes where both are
// known; NaN with fewer than 30.
func pearson(a, b []float64) float64 {
	var n, sa, sb, saa, sbb, sab float64
	for i := range a {
		x, y := a[i], b[i]
		if math.IsNaN(x) || math.IsNaN(y) {
			continue
		}
		n++
		sa += x
		sb += y
		saa += x * x
		sbb += y * y
		sab += x * y
	}
	if n < 30 {
		return math.NaN()
	}
	cov := sab/n - sa/n*sb/n
	va, vb := saa/n-sa/n*sa/n, sbb/n-sb/n*sb/n
	if va <= 0 || vb <= 0 {
		return math.NaN()
	}
	return cov / math.Sqrt(va*vb)
}

func stddev(a []float64) float64 {
	var n, s, ss float64
	for _, x := range a {
		if !math.IsNaN(x) {
			n++
			s += x
			ss += x * x
		}
	}
	if n < 2 {
		return math.NaN()
	}
	v := ss/n - s/n*s/n
	return math.Sqrt(max(v, 0))
}
