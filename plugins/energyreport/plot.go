package energyreport

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/alumet-go/alumet-agent/energy"
	"github.com/alumet-go/alumet-agent/internal/powerplot"
)

// plot draws the power of every series over the runs to plot_file: one
// line per (node, metric) across the runs, the window (all the runs)
// shaded, each run and phase shaded, the baselines dashed, and the total
// energy in the title.
func (r *report) plot(runs []runReport, baselines map[nodeMetric]float64) error {
	f := powerplot.Figure{
		Window: powerplot.Span{Start: runs[0].win.start, End: runs[len(runs)-1].win.end},
	}
	lines := map[nodeMetric]*powerplot.Line{}
	line := func(k nodeMetric) *powerplot.Line {
		l := lines[k]
		if l == nil {
			l = &powerplot.Line{Node: k.node, Metric: k.metric}
			lines[k] = l
		}
		return l
	}
	// The history (baseline = before:D) first, the evidence of the idle
	// level, then the runs in order: each line is built in time order.
	r.mu.Lock()
	for k, samples := range r.hist {
		l := line(k)
		for _, x := range samples {
			l.Times = append(l.Times, x.t)
			l.Watts = append(l.Watts, x.w)
		}
	}
	r.mu.Unlock()
	keys := slices.SortedFunc(maps.Keys(r.series), func(a, b seriesKey) int {
		return cmp.Or(strings.Compare(a.node, b.node), strings.Compare(a.metric, b.metric), cmp.Compare(a.run, b.run))
	})
	for _, k := range keys {
		s := r.series[k]
		l := line(k.nodeMetric())
		if s.done != nil {
			for _, x := range s.done.plot {
				l.Times = append(l.Times, x.t)
				l.Watts = append(l.Watts, x.w)
			}
		}
		l.Times = slices.Grow(l.Times, s.samples.n)
		l.Watts = slices.Grow(l.Watts, s.samples.n)
		s.samples.all(func(x rawSample) {
			l.Times = append(l.Times, x.t)
			l.Watts = append(l.Watts, x.w)
		})
		s.samples = sampleStore{} // integrated already: only the line needs them now
	}
	for _, k := range slices.SortedFunc(maps.Keys(lines), func(a, b nodeMetric) int {
		return cmp.Or(strings.Compare(a.node, b.node), strings.Compare(a.metric, b.metric))
	}) {
		f.Lines = append(f.Lines, *lines[k])
		if b, ok := r.baselineOf(k, baselines); ok {
			f.Baselines = append(f.Baselines, powerplot.Level{Node: k.node, Metric: k.metric, Watts: b})
		}
	}
	rep := repeated(runs)
	totalBy := map[string]float64{}
	nodes := map[string]bool{}
	for _, rr := range runs {
		if rep {
			f.Runs = append(f.Runs, powerplot.Span{Label: fmt.Sprintf("run %d", rr.win.run), Start: rr.win.start, End: rr.win.end})
		}
		for _, ph := range rr.phases {
			if ph.name == unmarkedPhase && ph.end.Sub(ph.start) < rr.win.end.Sub(rr.win.start)/50 {
				continue // the instant before the command's first mark: only clutter on a plot
			}
			f.Phases = append(f.Phases, powerplot.Span{Label: ph.name, Start: ph.start, End: ph.end})
		}
		for _, t := range totals(rr.rows) {
			if t.hasData {
				totalBy[t.metric] += t.energy
			}
		}
		for _, rw := range rr.rows {
			nodes[rw.key.node] = true
		}
	}
	var parts []string
	for _, m := range slices.Sorted(maps.Keys(totalBy)) {
		parts = append(parts, fmt.Sprintf("%v (%s)", energy.Joules(totalBy[m]), m))
	}
	title := fmt.Sprintf("%d node", len(nodes))
	if len(nodes) != 1 {
		title += "s"
	}
	if len(nodes) == 1 {
		for n := range nodes {
			title = n
		}
	}
	if rep {
		title += fmt.Sprintf(", %d runs", len(runs))
	}
	if len(parts) > 0 {
		title += " — " + strings.Join(parts, ", ")
	}
	f.Title = title
	return powerplot.Write(r.cfg.PlotFile, f)
}
