package energyreport

import (
	"fmt"
	"math"
	"strconv"
	"strings"
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

// dynamic is the energy above the baseline of one series, NaN without baseline.
func (r *report) dynamic(energyJ, seconds float64) float64 {
	if !r.hasBase {
		return math.NaN()
	}
	return energyJ - r.baseline*seconds
}

// table renders the report for stderr: a line on the window, the table
// (one row per series, then one total row per metric), the method, the
// uncertainty, the gaps.
func (r *report) table(w window, rows []row) string {
	var b strings.Builder
	dur := w.end.Sub(w.start).Seconds()
	fmt.Fprintf(&b, "Energy report: [%s, %s] (%s s", rfc3339(w.start), rfc3339(w.end), fixed(dur, 3))
	if w.startFromAgentTime {
		b.WriteString(", from the agent's start")
	}
	b.WriteString(")")
	if len(w.command) > 0 {
		fmt.Fprintf(&b, ", command: %s", commandText(w.command))
	}
	if w.exitCode != nil {
		fmt.Fprintf(&b, ", exit code %d", *w.exitCode)
	}
	b.WriteString("\n")

	cells := [][]string{tableHeader}
	for _, rw := range rows {
		c := []string{rw.key.node, orDash(rw.site), rw.key.metric, strconv.Itoa(rw.res.Samples), coveragePct(rw.res.Coverage), fixed(dur, 3)}
		if rw.hasData {
			e := float64(rw.res.Energy)
			c = append(c, fixed(float64(rw.res.Mean), 2), fixed(float64(rw.res.Peak), 2), fixed(e, 2), fixed(r.dynamic(e, dur), 2))
		} else {
			c = append(c, "-", "-", "-", "-")
		}
		cells = append(cells, c)
	}
	tots := totals(rows)
	for _, t := range tots {
		c := []string{"total", "-", t.metric, strconv.Itoa(t.samples), "-", fixed(dur, 3)}
		if t.hasData {
			c = append(c, fixed(t.energy/dur, 2), "-", fixed(t.energy, 2), fixed(r.dynamic(t.energy, dur*float64(t.series)), 2))
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

	for _, t := range tots {
		for _, m := range t.methods {
			fmt.Fprintf(&b, "method (%s): %s; edges clipped to the window, missing data bridged linearly, gaps over %d periods listed\n",
				t.metric, m, energy.DefaultGapFactor)
		}
		if t.hasData {
			fmt.Fprintf(&b, "uncertainty (%s): ± %s J in total (a bound: meter resolution × duration, plus the bridged data)\n", t.metric, fixed(t.uncertainty, 2))
		}
	}
	if r.hasBase {
		fmt.Fprintf(&b, "baseline: %s W per series; dynamic J = energy J − %s W × duration s\n", fixed(r.baseline, -1), fixed(r.baseline, -1))
	}
	gapLines := 0
	for _, rw := range rows {
		if !rw.hasData {
			fmt.Fprintf(&b, "no sample in the window: %s %s\n", rw.key.node, rw.key.metric)
			continue
		}
		for _, g := range rw.gaps {
			gapLines++
			if gapLines <= maxGapLines {
				fmt.Fprintf(&b, "gap: %s %s %s – %s (%v, bridged)\n", rw.key.node, rw.key.metric, rfc3339(g.From), rfc3339(g.To), g.Duration())
			}
		}
	}
	if gapLines > maxGapLines {
		fmt.Fprintf(&b, "… and %d more gaps\n", gapLines-maxGapLines)
	}
	return b.String()
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
