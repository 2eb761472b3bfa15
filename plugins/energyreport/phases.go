package energyreport

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// unmarkedPhase names the part of a run before its first mark.
const unmarkedPhase = "(before the first mark)"

// phase is a part of a run: from a mark to the next one or the run's end.
type phase struct {
	name       string
	start, end time.Time
}

// phasesOf splits the run's window at its marks: the phases partition the
// window exactly (so their energies add up to the run's). A mark before the
// start counts from the start; one after the end is ignored; of several
// marks at one instant the last wins. No mark, no phase.
func phasesOf(w window) []phase {
	if len(w.marks) == 0 {
		return nil
	}
	marks := slices.Clone(w.marks)
	slices.SortStableFunc(marks, func(a, b mark) int { return a.at.Compare(b.at) })
	var out []phase
	cur := phase{name: unmarkedPhase, start: w.start}
	for _, m := range marks {
		at := m.at
		if at.Before(w.start) {
			at = w.start
		}
		if !at.Before(w.end) {
			break
		}
		if at.After(cur.start) {
			cur.end = at
			out = append(out, cur)
		}
		cur = phase{name: m.name, start: at}
	}
	cur.end = w.end
	return append(out, cur)
}

// phaseTotal is the energy of one phase for one metric, summed over the nodes.
type phaseTotal struct {
	metric string
	series int // with data
	energy float64
}

// phaseTotals sums, for phase i, the energy of every series with data,
// per metric in name order.
func phaseTotals(rows []row, i int) []phaseTotal {
	by := map[string]*phaseTotal{}
	for _, rw := range rows {
		if !rw.hasData || i >= len(rw.phases) {
			continue
		}
		t := by[rw.key.metric]
		if t == nil {
			t = &phaseTotal{metric: rw.key.metric}
			by[rw.key.metric] = t
		}
		e := float64(rw.phases[i].Energy)
		if math.IsNaN(e) {
			continue
		}
		t.series++
		t.energy += e
	}
	out := make([]phaseTotal, 0, len(by))
	for _, t := range by {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b phaseTotal) int { return cmp.Compare(a.metric, b.metric) })
	return out
}
