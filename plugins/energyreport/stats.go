package energyreport

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// runStats is the spread of the energy of one (node, metric) over the runs
// of exec --repeat.
type runStats struct {
	node, site, metric string
	n                  int // runs with data
	mean, sd, min, max float64
	ciLow, ciHigh      float64 // 95 % confidence interval of the mean
}

// statsOf summarises the energy of each (node, metric) over the runs (those
// with data), in node then metric order. sd, and so the interval, is NaN
// with fewer than two runs.
func statsOf(runs []runReport) []runStats {
	type acc struct {
		site string
		vals []float64
	}
	by := map[nodeMetric]*acc{}
	for _, rr := range runs {
		for _, rw := range rr.rows {
			e := float64(rw.res.Energy)
			if !rw.hasData || !finite(e) {
				continue
			}
			k := rw.key.nodeMetric()
			a := by[k]
			if a == nil {
				a = &acc{}
				by[k] = a
			}
			if a.site == "" {
				a.site = rw.site
			}
			a.vals = append(a.vals, e)
		}
	}
	out := make([]runStats, 0, len(by))
	for k, a := range by {
		s := runStats{node: k.node, site: a.site, metric: k.metric, n: len(a.vals)}
		s.mean, s.sd = meanSD(a.vals)
		s.min, s.max = slices.Min(a.vals), slices.Max(a.vals)
		half := tQuantile975(s.n-1) * s.sd / math.Sqrt(float64(s.n))
		s.ciLow, s.ciHigh = s.mean-half, s.mean+half
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b runStats) int {
		return cmp.Or(strings.Compare(a.node, b.node), strings.Compare(a.metric, b.metric))
	})
	return out
}

// meanSD is the mean and the sample standard deviation (n−1), by Welford's
// recurrence; sd is NaN for fewer than two values.
func meanSD(vs []float64) (mean, sd float64) {
	var m, m2 float64
	for i, v := range vs {
		d := v - m
		m += d / float64(i+1)
		m2 += d * (v - m)
	}
	if len(vs) < 2 {
		return m, math.NaN()
	}
	return m, math.Sqrt(m2 / float64(len(vs)-1))
}

// t975 is the 0.975 quantile of Student's t distribution for 1 to 30
// degrees of freedom (the two-sided 95 % interval).
var t975 = [...]float64{
	12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
	2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
	2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
}

// tQuantile975 is the 0.975 quantile of Student's t with df degrees of
// freedom: the table up to 30, then interpolated in 1/df between the
// known values at 30, 40, 60, 120 and infinity (1.960), which is exact to
// the table's 3 decimals. NaN for df < 1.
func tQuantile975(df int) float64 {
	switch {
	case df < 1:
		return math.NaN()
	case df <= len(t975):
		return t975[df-1]
	}
	knots := []struct{ df, t float64 }{{30, 2.042}, {40, 2.021}, {60, 2.000}, {120, 1.980}, {math.Inf(1), 1.960}}
	x := 1 / float64(df)
	for i := 0; i+1 < len(knots); i++ {
		a, b := knots[i], knots[i+1]
		xa, xb := 1/a.df, 1/b.df
		if x <= xa && x >= xb {
			return a.t + (b.t-a.t)*(xa-x)/(xa-xb)
		}
	}
	return 1.960
}

// statsSelection is which runs of exec --repeat the statistics are over,
// and why the others are not: a run whose command failed measured
// something else than the workload (it stopped early, or did not do its
// work), so its energy would bias the mean and widen the interval.
type statsSelection struct {
	stats []runStats
	used  []int // run indexes, ascending
	// notes say which runs are left out and why; the table prints them
	// under the statistics and the JSON has them as top-level warnings.
	notes []string
}

// selectRuns computes the statistics over the runs (sorted by index)
// whose command exited with 0, or whose exit code is unknown. The events
// carry neither --ignore-exit-code nor the N of --repeat N, so a failed
// run is left out whatever the flags, and what is missing is inferred: a
// failed run followed by another means --ignore-exit-code (without it exec
// stops at the first failure); a failed last run may have cut the series
// short; an index missing between two is a run without a window.
func selectRuns(runs []runReport) statsSelection {
	var (
		sel  statsSelection
		kept []runReport
	)
	present := map[int]bool{}
	last := 0
	for i, rr := range runs {
		present[rr.win.run] = true
		last = max(last, rr.win.run)
		if c := rr.win.exitCode; c != nil && *c != 0 {
			msg := fmt.Sprintf("run %d failed (exit code %d): left out of the statistics", rr.win.run, *c)
			if i == len(runs)-1 {
				msg += fmt.Sprintf("; no run was started after it (exec stops at a failed run unless --ignore-exit-code), "+
					"so any run that --repeat asked for after run %d is missing", rr.win.run)
			} else {
				msg += " (--ignore-exit-code kept the series going, but a failed run did not do the measured work)"
			}
			sel.notes = append(sel.notes, msg)
			continue
		}
		kept = append(kept, rr)
		sel.used = append(sel.used, rr.win.run)
	}
	var missing []int
	for i := 1; i < last; i++ {
		if !present[i] {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		verb := "have"
		if len(missing) == 1 {
			verb = "has"
		}
		sel.notes = append(sel.notes, fmt.Sprintf("%s %s %s no complete measurement window: left out of the statistics",
			runWord(missing), runList(missing), verb))
	}
	sel.stats = statsOf(kept)
	return sel
}

// overText says over which runs the statistics are, for the table.
func (sel statsSelection) overText() string {
	if len(sel.used) == 0 {
		return "no run exited with code 0: no statistics"
	}
	return "the statistics are over " + runWord(sel.used) + " " + runList(sel.used)
}

func runWord(runs []int) string {
	if len(runs) == 1 {
		return "run"
	}
	return "runs"
}

// runList writes run indexes (ascending) briefly: "3", "1 and 3",
// "1 to 3 and 5", "1, 3 and 5".
func runList(runs []int) string {
	var parts []string
	for i := 0; i < len(runs); {
		j := i
		for j+1 < len(runs) && runs[j+1] == runs[j]+1 {
			j++
		}
		switch {
		case j == i:
			parts = append(parts, strconv.Itoa(runs[i]))
		case j == i+1:
			parts = append(parts, strconv.Itoa(runs[i]), strconv.Itoa(runs[j]))
		default:
			parts = append(parts, fmt.Sprintf("%d to %d", runs[i], runs[j]))
		}
		i = j + 1
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}
