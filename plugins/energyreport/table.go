package energyreport

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/alumet-go/alumet-agent/energy"
)

// tableHeader is the table's columns; the first three are text (left
// aligned), the others numbers (right aligned).
var tableHeader = []string{"node", "site", "metric", "samples", "coverage %", "duration s", "mean W", "peak W", "energy J", "dynamic J"}

const textColumns = 3

// maxGapLines bounds the gap lines under the table; the JSON lists them all.
const maxGapLines = 10

func fixed(v float64, prec int) string {
	if !finite(v) {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// coveragePct is the coverage in % floored to 0.1, so that 100.0 means
// complete data.
func coveragePct(c float64) string {
	if !finite(c) {
		return "-"
	}
	return fixed(math.Floor(1000*c+1e-9)/10, 1)
}

// commandText writes a command line, quoting the arguments a shell would need quoted.
func commandText(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`*?[]{}()<>|&;#~") {
			a = strconv.Quote(a)
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// table renders the report for stderr: for one run, a line on the window,
// the table (one row per series, then one total row per metric), the
// phases, the method, the uncertainty, the baseline, the gaps; with exec
// --repeat, the same for each run, then the statistics over the runs.
func (r *report) table(runs []runReport) string {
	var b strings.Builder
	for _, rr := range runs {
		r.runTable(&b, rr)
	}
	if repeated(runs) {
		statsTable(&b, selectRuns(runs))
	}
	return b.String()
}

func (r *report) runTable(b *strings.Builder, rr runReport) {
	w, rows := rr.win, rr.rows
	dur := w.end.Sub(w.start).Seconds()
	title := "Energy report"
	if w.run > 0 {
		title = fmt.Sprintf("Energy report, run %d", w.run)
	}
	fmt.Fprintf(b, "%s: [%s, %s] (%s s", title, rfc3339(w.start), rfc3339(w.end), fixed(dur, 3))
	if w.startFromAgentTime {
		b.WriteString(", from the agent's start")
	}
	if w.jobSpan != 0 {
		fmt.Fprintf(b, ", OAR job %d: from its first row to its last", w.jobSpan)
	}
	b.WriteString(")")
	if len(w.command) > 0 {
		fmt.Fprintf(b, ", command: %s", commandText(w.command))
	}
	if w.exitCode != nil {
		fmt.Fprintf(b, ", exit code %d", *w.exitCode)
	}
	b.WriteString("\n")

	cells := [][]string{tableHeader}
	for _, rw := range rows {
		c := []string{rw.key.node, orDash(rw.site), rw.key.metric, strconv.Itoa(rw.res.Samples), coveragePct(rw.res.Coverage), fixed(dur, 3)}
		if rw.hasData {
			e := float64(rw.res.Energy)
			c = append(c, fixed(float64(rw.res.Mean), 2), fixed(float64(rw.res.Peak), 2), fixed(e, 2), fixed(rw.dynamic(), 2))
		} else {
			c = append(c, "-", "-", "-", "-")
		}
		cells = append(cells, c)
	}
	tots := totals(rows)
	for _, t := range tots {
		c := []string{"total", "-", t.metric, strconv.Itoa(t.samples), "-", fixed(dur, 3)}
		if t.hasData {
			c = append(c, fixed(t.energy/dur, 2), "-", fixed(t.energy, 2), fixed(t.dynamic, 2))
		} else {
			c = append(c, "-", "-", "-", "-")
		}
		cells = append(cells, c)
	}
	if len(rows) == 0 {
		b.WriteString("(no power series reached energy-report)\n")
	} else {
		b.WriteString(renderColumns(cells, textColumns))
	}
	phaseTable(b, rr)
	for _, msg := range w.warnings {
		fmt.Fprintf(b, "warning: %s\n", msg)
	}

	for _, t := range tots {
		for _, m := range t.methods {
			fmt.Fprintf(b, "method (%s): %s; edges clipped to the window, missing data bridged linearly, gaps over %d periods listed\n",
				t.metric, m, energy.DefaultGapFactor)
		}
		if t.hasData {
			fmt.Fprintf(b, "uncertainty (%s): ± %s J in total (a bound: meter resolution × duration, plus the bridged data)\n", t.metric, fixed(t.uncertainty, 2))
		}
	}
	switch r.base.Kind {
	case ConstantBaseline:
		fmt.Fprintf(b, "baseline: %s W per series; dynamic J = energy J − %s W × duration s\n", fixed(r.base.Watts, -1), fixed(r.base.Watts, -1))
	case HistoryBaseline:
		var parts []string
		for _, rw := range rows {
			parts = append(parts, fmt.Sprintf("%s %s %s W", rw.key.node, rw.key.metric, fixed(rw.baseline, 2)))
		}
		fmt.Fprintf(b, "baseline: median power over the %v before the first run (%s); dynamic J = energy J − baseline W × duration s\n", r.base.Before, strings.Join(parts, ", "))
	case AfterBaseline:
		var parts []string
		for _, rw := range rows {
			parts = append(parts, fmt.Sprintf("%s %s %s W", rw.key.node, rw.key.metric, fixed(rw.baseline, 2)))
		}
		fmt.Fprintf(b, "baseline: median power over the %v after the last run (%s); dynamic J = energy J − baseline W × duration s\n", r.base.After, strings.Join(parts, ", "))
	}
	gapLines := 0
	for _, rw := range rows {
		if !rw.hasData {
			fmt.Fprintf(b, "no sample in the window: %s %s\n", rw.key.node, rw.key.metric)
			continue
		}
		for _, g := range rw.gaps {
			gapLines++
			if gapLines <= maxGapLines {
				fmt.Fprintf(b, "gap: %s %s %s – %s (%v, bridged)\n", rw.key.node, rw.key.metric, rfc3339(g.From), rfc3339(g.To), g.Duration())
			}
		}
	}
	if gapLines > maxGapLines {
		fmt.Fprintf(b, "… and %d more gaps\n", gapLines-maxGapLines)
	}
	comparisonTable(b, rr)
	carbonLines(b, rr)
}

// comparisonTable sets the sources of each node side by side.
func comparisonTable(b *strings.Builder, rr runReport) {
	for _, c := range rr.compared {
		ref := "no wattmeter: no reference for the ratios"
		if c.reference != nil {
			ref = "ratios to the wattmeter, " + c.reference.key.metric
		}
		fmt.Fprintf(b, "comparison, %s (%s):\n", c.node, ref)
		cells := [][]string{{"source", "metric", "coverage %", "mean W", "energy J", "± J", "ratio", "± ratio"}}
		for _, s := range c.sources {
			res := s.row.res
			cells = append(cells, []string{s.src.label, s.row.key.metric, coveragePct(res.Coverage), fixed(float64(res.Mean), 2),
				fixed(float64(res.Energy), 2), fixed(float64(res.Uncertainty), 2), fixed(s.ratio, 3), fixed(s.ratioUnc, 3)})
		}
		b.WriteString(renderColumns(cells, 2))
		for _, sh := range c.rapl {
			fmt.Fprintf(b, "RAPL %s (%s): %s J, %s W", raplDomainsText(sh.metrics), sh.origin, fixed(sh.energy, 2), fixed(sh.mean, 2))
			if finite(sh.ratio) {
				fmt.Fprintf(b, ", %s %% of the wall energy; not seen by RAPL: %s J (%s %%)", fixed(100*sh.ratio, 1), fixed(sh.unseen, 2), fixed(100*(1-sh.ratio), 1))
			}
			b.WriteString("\n")
		}
		if k := c.clock; k != nil {
			if k.ok {
				fmt.Fprintf(b, "clock (%s): the on-node clock is %s Kwollect's timestamps (correlation %.2f of RAPL package and wattmeter power, ± %s s)\n",
					c.node, offsetText(k.offset), k.correlation, fixed(clockStep.Seconds(), 1))
			} else {
				fmt.Fprintf(b, "clock (%s): not checked: %s\n", c.node, k.note)
			}
		}
		for _, w := range c.warnings {
			fmt.Fprintf(b, "warning (%s): %s\n", c.node, w)
		}
	}
}

func raplDomainsText(metrics []string) string {
	var ds []string
	for _, m := range metrics {
		if s, ok := sourceOf(m); ok {
			ds = append(ds, s.rapl)
		}
	}
	return strings.Join(ds, "+")
}

// offsetText says how the on-node clock stands to Kwollect's.
func offsetText(d time.Duration) string {
	switch {
	case d > 0:
		return fixed(d.Seconds(), 2) + " s ahead of"
	case d < 0:
		return fixed(-d.Seconds(), 2) + " s behind"
	}
	return "in step with"
}

// carbonLines gives the emissions of each metric's total at the
// energy-to-carbon transform's intensity.
func carbonLines(b *strings.Builder, rr runReport) {
	c := rr.carbon
	if c == nil {
		return
	}
	tots := totals(rr.rows)
	for _, t := range tots {
		if t.hasData {
			fmt.Fprintf(b, "carbon (%s): %s gCO₂e for %s J, at %s gCO₂e/kWh (%s)\n", t.metric, fixed(grams(t.energy, c.GramsPerKWh), 3), fixed(t.energy, 2), fixed(c.GramsPerKWh, -1), c.Source)
		}
	}
	if len(tots) > 1 {
		b.WriteString("carbon: each line is one meter's view of the same nodes' energy, not a part of a sum: quote one (the wattmeter's, the wall's)\n")
	}
}

// phaseTable lists the phases of a run: when each starts (seconds from the
// run's start), how long it lasts, and its energy per metric over the nodes.
func phaseTable(b *strings.Builder, rr runReport) {
	if len(rr.phases) == 0 {
		return
	}
	cells := [][]string{{"phase", "metric", "from s", "duration s", "mean W", "energy J", "share %"}}
	tots := map[string]float64{}
	for _, t := range totals(rr.rows) {
		tots[t.metric] = t.energy
	}
	for i, ph := range rr.phases {
		d := ph.end.Sub(ph.start).Seconds()
		from := fixed(ph.start.Sub(rr.win.start).Seconds(), 3)
		pts := phaseTotals(rr.rows, i)
		if len(pts) == 0 {
			cells = append(cells, []string{ph.name, "-", from, fixed(d, 3), "-", "-", "-"})
		}
		for _, t := range pts {
			cells = append(cells, []string{ph.name, t.metric, from, fixed(d, 3), fixed(t.energy/d, 2), fixed(t.energy, 2), fixed(100*t.energy/tots[t.metric], 1)})
		}
	}
	b.WriteString("phases:\n")
	b.WriteString(renderColumns(cells, 2))
}

// statsTable is the spread of the energy over the runs, then, when some
// runs are left out, over which runs it is and why.
func statsTable(b *strings.Builder, sel statsSelection) {
	if len(sel.stats) > 0 {
		cells := [][]string{{"node", "site", "metric", "runs", "mean J", "sd J", "min J", "max J", "95 % CI J"}}
		for _, s := range sel.stats {
			ci := "-"
			if finite(s.sd) {
				ci = "[" + fixed(s.ciLow, 2) + ", " + fixed(s.ciHigh, 2) + "]"
			}
			cells = append(cells, []string{s.node, orDash(s.site), s.metric, strconv.Itoa(s.n), fixed(s.mean, 2), fixed(s.sd, 2), fixed(s.min, 2), fixed(s.max, 2), ci})
		}
		b.WriteString("Energy over the runs (95 % confidence interval of the mean, Student's t):\n")
		b.WriteString(renderColumns(cells, textColumns))
	}
	if len(sel.notes) == 0 {
		return // every run is in: nothing to add
	}
	fmt.Fprintf(b, "note: %s\n", sel.overText())
	for _, n := range sel.notes {
		fmt.Fprintf(b, "note: %s\n", n)
	}
}

// renderColumns aligns cells in columns two spaces apart: the first
// textCols columns left aligned, the others right aligned.
func renderColumns(cells [][]string, textCols int) string {
	var widths []int
	for _, row := range cells {
		for i, c := range row {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, row := range cells {
		var line strings.Builder
		for i, c := range row {
			if i > 0 {
				line.WriteString("  ")
			}
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if i < textCols {
				line.WriteString(c + pad)
			} else {
				line.WriteString(pad + c)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteByte('\n')
	}
	return b.String()
}
