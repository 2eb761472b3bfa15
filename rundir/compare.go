package rundir

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/alumet-go/alumet-agent/plugins/energyreport"
)

// Energies are the energies of one experiment (a run directory) per node
// and metric, one per run whose command succeeded (exit code 0 or
// unknown) and whose series has data.
type Energies map[SeriesKey][]float64

// SeriesKey is a (node, metric) series.
type SeriesKey struct{ Node, Metric string }

// EnergiesOf reads the energies of an energy summary (single run or exec
// --repeat), of the whole runs or, with phase, of that phase of each run;
// runs whose command failed are left out, as the summary's own statistics
// leave them out.
func EnergiesOf(summary []byte, phase string) (Energies, error) {
	var probe struct {
		Runs json.RawMessage `json:"runs"`
	}
	if err := json.Unmarshal(summary, &probe); err != nil {
		return nil, err
	}
	var runs []energyreport.Summary
	if probe.Runs != nil {
		var rs energyreport.RepeatSummary
		if err := json.Unmarshal(summary, &rs); err != nil {
			return nil, err
		}
		for _, r := range rs.Runs {
			runs = append(runs, r.Summary)
		}
	} else {
		var s energyreport.Summary
		if err := json.Unmarshal(summary, &s); err != nil {
			return nil, err
		}
		runs = append(runs, s)
	}
	out := Energies{}
	for _, r := range runs {
		if r.ExitCode != nil && *r.ExitCode != 0 {
			continue
		}
		if phase == "" {
			for _, s := range r.Series {
				if s.EnergyJ != nil {
					k := SeriesKey{s.Node, s.Metric}
					out[k] = append(out[k], *s.EnergyJ)
				}
			}
			continue
		}
		for _, p := range r.Phases {
			if p.Name != phase {
				continue
			}
			for _, s := range p.Series {
				if s.EnergyJ != nil {
					k := SeriesKey{s.Node, s.Metric}
					out[k] = append(out[k], *s.EnergyJ)
				}
			}
		}
	}
	return out, nil
}

// Comparison is experiment B against experiment A for one series: the
// mean energies, the difference B − A with its 95 % confidence interval,
// and Welch's t-test (unequal variances).
type Comparison struct {
	Node   string `json:"node"`
	Metric string `json:"metric"`
	A      Sample `json:"a"`
	B      Sample `json:"b"`
	// DiffJ is mean(B) − mean(A); DiffPct the same relative to mean(A).
	DiffJ   float64    `json:"diff_j"`
	DiffPct *float64   `json:"diff_pct"`
	CI95    []*float64 `json:"ci95"` // [low, high] of the difference; null without two runs on each side
	T       *float64   `json:"t"`
	DF      *float64   `json:"df"`
	P       *float64   `json:"p"` // two-sided
	Note    string     `json:"note,omitempty"`
}

// Sample is the energies of one experiment for a series.
type Sample struct {
	Runs  int      `json:"runs"`
	MeanJ float64  `json:"mean_j"`
	SDJ   *float64 `json:"sd_j"`
}

func sampleOf(vs []float64) (Sample, float64) {
	var m, m2 float64
	for i, v := range vs {
		d := v - m
		m += d / float64(i+1)
		m2 += d * (v - m)
	}
	s := Sample{Runs: len(vs), MeanJ: m}
	variance := math.NaN()
	if len(vs) > 1 {
		variance = m2 / float64(len(vs)-1)
		sd := math.Sqrt(variance)
		s.SDJ = &sd
	}
	return s, variance
}

func ptr(f float64) *float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}

// Compare compares b against a for every series both have, sorted by node
// then metric.
func Compare(a, b Energies) []Comparison {
	var keys []SeriesKey
	for k := range a {
		if len(b[k]) > 0 && len(a[k]) > 0 {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(x, y SeriesKey) int {
		if c := strings.Compare(x.Node, y.Node); c != 0 {
			return c
		}
		return strings.Compare(x.Metric, y.Metric)
	})
	out := make([]Comparison, 0, len(keys))
	for _, k := range keys {
		sa, va := sampleOf(a[k])
		sb, vb := sampleOf(b[k])
		c := Comparison{Node: k.Node, Metric: k.Metric, A: sa, B: sb, DiffJ: sb.MeanJ - sa.MeanJ}
		if sa.MeanJ != 0 {
			c.DiffPct = ptr(100 * c.DiffJ / sa.MeanJ)
		}
		if sa.Runs < 2 || sb.Runs < 2 {
			c.Note = "fewer than two runs on a side: no interval, no test"
			out = append(out, c)
			continue
		}
		qa, qb := va/float64(sa.Runs), vb/float64(sb.Runs)
		se := math.Sqrt(qa + qb)
		if se == 0 {
			c.Note = "no spread on either side: no test"
			out = append(out, c)
			continue
		}
		// Welch–Satterthwaite degrees of freedom.
		df := (qa + qb) * (qa + qb) / (qa*qa/float64(sa.Runs-1) + qb*qb/float64(sb.Runs-1))
		t := c.DiffJ / se
		dist := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}
		half := dist.Quantile(0.975) * se
		c.T, c.DF = ptr(t), ptr(df)
		c.P = ptr(2 * dist.CDF(-math.Abs(t)))
		c.CI95 = []*float64{ptr(c.DiffJ - half), ptr(c.DiffJ + half)}
		out = append(out, c)
	}
	return out
}

// FormatComparisons is the comparisons as a text table.
func FormatComparisons(labelA, labelB string, cs []Comparison) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Comparison: B = %s against A = %s (energy per run, J; runs whose command failed left out)\n", labelB, labelA)
	rows := [][]string{{"node", "metric", "runs A", "mean A", "sd A", "runs B", "mean B", "sd B", "B − A", "%", "95 % CI of B − A", "Welch t", "df", "p"}}
	f := func(p *float64, prec int) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprintf("%.*f", prec, *p)
	}
	for _, c := range cs {
		ci := "-"
		if len(c.CI95) == 2 && c.CI95[0] != nil && c.CI95[1] != nil {
			ci = fmt.Sprintf("[%.2f, %.2f]", *c.CI95[0], *c.CI95[1])
		}
		p := "-"
		if c.P != nil {
			p = fmt.Sprintf("%.3g", *c.P)
		}
		rows = append(rows, []string{c.Node, c.Metric, fmt.Sprint(c.A.Runs), fmt.Sprintf("%.2f", c.A.MeanJ), f(c.A.SDJ, 2),
			fmt.Sprint(c.B.Runs), fmt.Sprintf("%.2f", c.B.MeanJ), f(c.B.SDJ, 2), fmt.Sprintf("%+.2f", c.DiffJ), f(c.DiffPct, 1), ci, f(c.T, 2), f(c.DF, 1), p})
	}
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, cell := range r {
			widths[i] = max(widths[i], len([]rune(cell)))
		}
	}
	for _, r := range rows {
		for i, cell := range r {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := widths[i] - len([]rune(cell))
			if i < 2 {
				b.WriteString(cell + strings.Repeat(" ", pad))
			} else {
				b.WriteString(strings.Repeat(" ", pad) + cell)
			}
		}
		b.WriteString("\n")
	}
	for _, c := range cs {
		if c.Note != "" {
			fmt.Fprintf(&b, "%s %s: %s\n", c.Node, c.Metric, c.Note)
		}
	}
	if len(cs) == 0 {
		b.WriteString("no series in common\n")
	}
	return strings.TrimRight(b.String(), " ")
}
