package energyreport

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// The summary file's schema (alumet-energy.json), declared once: the agent
// writes it, the end-to-end tests and `report` read it.

// Summary is the summary of one run (the whole file without --repeat).
// Every float is a pointer so that a NaN or an infinity is written as
// null, never as invalid JSON.
type Summary struct {
	Start        string              `json:"start"`
	End          string              `json:"end"`
	Command      []string            `json:"command"`
	ExitCode     *int                `json:"exit_code"`
	TotalEnergyJ map[string]*float64 `json:"total_energy_j"`
	Series       []SeriesSummary     `json:"series"`
	// Phases is there when the command marked phases.
	Phases []PhaseSummary `json:"phases,omitempty"`
	// Warnings is there when the agent found the run's measurement wrong
	// (phase marks that arrived in a burst at the command's exit): the
	// phases, at least, must not be taken for good then.
	Warnings []string `json:"warnings,omitempty"`
	// Comparison is there when a node has two sources or more (wattmeter,
	// BMC, PDU, RAPL): their energies side by side.
	Comparison []NodeComparisonSummary `json:"comparison,omitempty"`
	// Carbon is there when the energy-to-carbon transform runs.
	Carbon *CarbonSummary `json:"carbon,omitempty"`
}

// NodeComparisonSummary sets the sources of one node side by side.
type NodeComparisonSummary struct {
	Node string `json:"node"`
	// Reference is the metric the ratios are to (the wattmeter's), null
	// when the node has none.
	Reference *string                 `json:"reference"`
	Sources   []ComparedSourceSummary `json:"sources"`
	// RAPL is what RAPL (package + dram) saw, per origin, and the part of
	// the reference's energy it did not see.
	RAPL     []RAPLShareSummary `json:"rapl"`
	Clock    *ClockSummary      `json:"clock"`
	Warnings []string           `json:"warnings,omitempty"`
}

// ComparedSourceSummary is one source of a node in the comparison.
type ComparedSourceSummary struct {
	Source           string   `json:"source"`
	Metric           string   `json:"metric"`
	EnergyJ          *float64 `json:"energy_j"`
	UncertaintyJ     *float64 `json:"uncertainty_j"`
	Coverage         float64  `json:"coverage"`
	MeanW            *float64 `json:"mean_w"`
	RatioToReference *float64 `json:"ratio_to_reference"`
	// RatioUncertainty bounds the ratio's error from the two energies'
	// uncertainties.
	RatioUncertainty *float64 `json:"ratio_uncertainty"`
}

// RAPLShareSummary is RAPL's package + dram energy of one origin
// ("on-node": the rapl source; "Kwollect": prom_node_rapl_*).
type RAPLShareSummary struct {
	Origin           string   `json:"origin"`
	Metrics          []string `json:"metrics"`
	EnergyJ          *float64 `json:"energy_j"`
	UncertaintyJ     *float64 `json:"uncertainty_j"`
	MeanW            *float64 `json:"mean_w"`
	Coverage         float64  `json:"coverage"`
	ShareOfReference *float64 `json:"share_of_reference"`
	UnseenEnergyJ    *float64 `json:"unseen_energy_j"`
	UnseenShare      *float64 `json:"unseen_share"`
}

// ClockSummary is the on-node clock checked against Kwollect's
// timestamps (offset_s: on-node minus Kwollect, null when not determined,
// with note saying why).
type ClockSummary struct {
	OffsetS     *float64 `json:"offset_s"`
	Correlation *float64 `json:"correlation"`
	ResolutionS float64  `json:"resolution_s"`
	Method      string   `json:"method"`
	Note        *string  `json:"note"`
}

// CarbonSummary is the run's emissions at the energy-to-carbon
// transform's intensity.
type CarbonSummary struct {
	IntensityGPerKWh float64             `json:"intensity_g_per_kwh"`
	Mode             string              `json:"mode"`
	Source           string              `json:"source"`
	TotalG           map[string]*float64 `json:"total_g"`
	Series           []CarbonSeries      `json:"series"`
}

// CarbonSeries is one series' emissions.
type CarbonSeries struct {
	Node   string   `json:"node"`
	Metric string   `json:"metric"`
	G      *float64 `json:"g"`
}

// clockMethod says how the clock offset is found.
var clockMethod = fmt.Sprintf("the lag (±%v, %v steps) that best correlates the node's RAPL package power with the wattmeter's; it includes the meters' own delays", clockMaxLag, clockStep)

// grams is the carbon of e joules at intensity g/kWh.
func grams(e, intensity float64) float64 { return e / 3.6e6 * intensity }

func comparisonSummaries(cs []nodeComparison) []NodeComparisonSummary {
	var out []NodeComparisonSummary
	for _, c := range cs {
		j := NodeComparisonSummary{Node: c.node, Sources: []ComparedSourceSummary{}, RAPL: []RAPLShareSummary{}, Warnings: c.warnings}
		if c.reference != nil {
			m := c.reference.key.metric
			j.Reference = &m
		}
		for _, s := range c.sources {
			j.Sources = append(j.Sources, ComparedSourceSummary{
				Source: s.src.label, Metric: s.row.key.metric,
				EnergyJ: num(float64(s.row.res.Energy)), UncertaintyJ: num(float64(s.row.res.Uncertainty)),
				Coverage: s.row.res.Coverage, MeanW: num(float64(s.row.res.Mean)),
				RatioToReference: num(s.ratio), RatioUncertainty: num(s.ratioUnc),
			})
		}
		for _, r := range c.rapl {
			j.RAPL = append(j.RAPL, RAPLShareSummary{Origin: r.origin, Metrics: r.metrics, EnergyJ: num(r.energy), UncertaintyJ: num(r.unc),
				MeanW: num(r.mean), Coverage: r.coverage, ShareOfReference: num(r.ratio), UnseenEnergyJ: num(r.unseen), UnseenShare: num(1 - r.ratio)})
		}
		if k := c.clock; k != nil {
			cs := ClockSummary{ResolutionS: clockStep.Seconds(), Method: clockMethod, Correlation: num(k.correlation)}
			if k.ok {
				cs.OffsetS = num(k.offset.Seconds())
			} else {
				note := k.note
				cs.Note = &note
			}
			j.Clock = &cs
		}
		out = append(out, j)
	}
	return out
}

func carbonSummary(rr runReport) *CarbonSummary {
	c := rr.carbon
	if c == nil {
		return nil
	}
	out := &CarbonSummary{IntensityGPerKWh: c.GramsPerKWh, Mode: c.Mode, Source: c.Source, TotalG: map[string]*float64{}, Series: []CarbonSeries{}}
	for _, t := range totals(rr.rows) {
		if t.hasData {
			out.TotalG[t.metric] = num(grams(t.energy, c.GramsPerKWh))
		} else {
			out.TotalG[t.metric] = nil
		}
	}
	for _, rw := range rr.rows {
		cs := CarbonSeries{Node: rw.key.node, Metric: rw.key.metric}
		if rw.hasData {
			cs.G = num(grams(float64(rw.res.Energy), c.GramsPerKWh))
		}
		out.Series = append(out.Series, cs)
	}
	return out
}

// SeriesSummary is one series (node, metric) over the run's window.
type SeriesSummary struct {
	Node           string       `json:"node"`
	Site           *string      `json:"site"`
	Metric         string       `json:"metric"`
	Samples        int          `json:"samples"`
	Coverage       float64      `json:"coverage"`
	DurationS      float64      `json:"duration_s"`
	MeanW          *float64     `json:"mean_w"`
	PeakW          *float64     `json:"peak_w"`
	EnergyJ        *float64     `json:"energy_j"`
	BaselineW      *float64     `json:"baseline_w"`
	DynamicEnergyJ *float64     `json:"dynamic_energy_j"`
	Gaps           []GapSummary `json:"gaps"`
	Method         string       `json:"method"`
	UncertaintyJ   *float64     `json:"uncertainty_j"`
	// Outcome is the source's verdict on the series over the window:
	// complete, partial, empty or failed (null if no source said), why
	// when not complete, and the ingestion lag it observed (null: Kwollect
	// was never seen behind).
	Outcome       *string  `json:"outcome"`
	OutcomeReason *string  `json:"outcome_reason"`
	LagS          *float64 `json:"lag_s"`
}

// GapSummary is a stretch of the window without samples (RFC 3339 bounds).
type GapSummary struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// PhaseSummary is one phase: its window, the energy per metric summed over
// the nodes, and each series' share.
type PhaseSummary struct {
	Name         string               `json:"name"`
	Start        string               `json:"start"`
	End          string               `json:"end"`
	DurationS    float64              `json:"duration_s"`
	TotalEnergyJ map[string]*float64  `json:"total_energy_j"`
	Series       []PhaseSeriesSummary `json:"series"`
}

// PhaseSeriesSummary is one series over a phase.
type PhaseSeriesSummary struct {
	Node     string   `json:"node"`
	Metric   string   `json:"metric"`
	Samples  int      `json:"samples"`
	Coverage float64  `json:"coverage"`
	MeanW    *float64 `json:"mean_w"`
	EnergyJ  *float64 `json:"energy_j"`
}

// RepeatSummary is the file with exec --repeat: the span of all the runs,
// each run as a Summary with its index, and the statistics with the
// runs they are over.
type RepeatSummary struct {
	Start   string       `json:"start"`
	End     string       `json:"end"`
	Command []string     `json:"command"`
	Runs    []RunSummary `json:"runs"`
	// StatsRuns are the indexes of the runs the statistics are over: those
	// whose command exited with 0.
	StatsRuns []int          `json:"stats_runs"`
	Stats     []StatsSummary `json:"stats"`
	// Warnings is there when some runs are left out of the statistics (a
	// failed command, no window), each saying which and why, so that the
	// statistics are never taken for those of every run asked for.
	Warnings []string `json:"warnings,omitempty"`
}

// RunSummary is one run of exec --repeat.
type RunSummary struct {
	Run int `json:"run"`
	Summary
}

// StatsSummary is the spread of energy_j over the runs of one (node, metric);
// Runs counts the runs of stats_runs where the series has data.
type StatsSummary struct {
	Node   string     `json:"node"`
	Site   *string    `json:"site"`
	Metric string     `json:"metric"`
	Runs   int        `json:"runs"`
	Mean   *float64   `json:"mean"`
	SD     *float64   `json:"sd"`
	Min    *float64   `json:"min"`
	Max    *float64   `json:"max"`
	CI95   []*float64 `json:"ci95"` // [low, high], null with fewer than two runs
}

// summary is the summary file's content: a Summary for a single run,
// a RepeatSummary with exec --repeat.
func (r *report) summary(runs []runReport) any {
	if !repeated(runs) {
		return runSummary(runs[0])
	}
	out := RepeatSummary{
		Start:   rfc3339(runs[0].win.start),
		End:     rfc3339(runs[len(runs)-1].win.end),
		Command: runs[0].win.command,
		Runs:    make([]RunSummary, 0, len(runs)),
	}
	for _, rr := range runs {
		out.Runs = append(out.Runs, RunSummary{Run: rr.win.run, Summary: runSummary(rr)})
	}
	sel := selectRuns(runs)
	out.StatsRuns = append(make([]int, 0, len(sel.used)), sel.used...)
	out.Warnings = sel.notes
	out.Stats = make([]StatsSummary, 0, len(sel.stats))
	for _, s := range sel.stats {
		j := StatsSummary{Node: s.node, Site: optString(s.site), Metric: s.metric, Runs: s.n,
			Mean: num(s.mean), SD: num(s.sd), Min: num(s.min), Max: num(s.max)}
		if finite(s.sd) {
			j.CI95 = []*float64{num(s.ciLow), num(s.ciHigh)}
		}
		out.Stats = append(out.Stats, j)
	}
	return out
}

// repeated reports whether the runs come from exec --repeat.
func repeated(runs []runReport) bool {
	return len(runs) > 1 || (len(runs) == 1 && runs[0].win.run > 0)
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// runSummary builds the summary of one run (rows sorted by node, then metric).
func runSummary(rr runReport) Summary {
	w, rows := rr.win, rr.rows
	dur := w.end.Sub(w.start).Seconds()
	s := Summary{
		Start:        rfc3339(w.start),
		End:          rfc3339(w.end),
		Command:      w.command,
		ExitCode:     w.exitCode,
		TotalEnergyJ: map[string]*float64{},
		Series:       make([]SeriesSummary, 0, len(rows)),
	}
	for _, t := range totals(rows) {
		if t.hasData {
			s.TotalEnergyJ[t.metric] = num(t.energy)
		} else {
			s.TotalEnergyJ[t.metric] = nil
		}
	}
	for _, rw := range rows {
		j := SeriesSummary{
			Node:      rw.key.node,
			Site:      optString(rw.site),
			Metric:    rw.key.metric,
			Samples:   rw.res.Samples,
			DurationS: dur,
			Gaps:      make([]GapSummary, 0, len(rw.gaps)),
			Method:    rw.method,
			BaselineW: num(rw.baseline),
		}
		if c := rw.res.Coverage; finite(c) {
			j.Coverage = c
		}
		if rw.hasData {
			e := float64(rw.res.Energy)
			j.MeanW = num(float64(rw.res.Mean))
			j.PeakW = num(float64(rw.res.Peak))
			j.EnergyJ = num(e)
			j.DynamicEnergyJ = num(rw.dynamic())
			j.UncertaintyJ = num(float64(rw.res.Uncertainty))
		}
		for _, g := range rw.gaps {
			j.Gaps = append(j.Gaps, GapSummary{From: rfc3339(g.From), To: rfc3339(g.To)})
		}
		if rw.hasOutcome {
			st := string(rw.outcome.Status)
			j.Outcome = &st
			if r := rw.outcome.Reason; r != "" {
				j.OutcomeReason = &r
			}
			if rw.outcome.LagKnown {
				j.LagS = num(rw.outcome.Lag.Seconds())
			}
		}
		s.Series = append(s.Series, j)
	}
	for i, ph := range rr.phases {
		pj := PhaseSummary{
			Name: ph.name, Start: rfc3339(ph.start), End: rfc3339(ph.end),
			DurationS:    ph.end.Sub(ph.start).Seconds(),
			TotalEnergyJ: map[string]*float64{},
			Series:       []PhaseSeriesSummary{},
		}
		for _, t := range phaseTotals(rows, i) {
			pj.TotalEnergyJ[t.metric] = num(t.energy)
		}
		for _, rw := range rows {
			if !rw.hasData || i >= len(rw.phases) {
				continue
			}
			pr := rw.phases[i]
			ps := PhaseSeriesSummary{Node: rw.key.node, Metric: rw.key.metric, Samples: pr.Samples,
				MeanW: num(float64(pr.Mean)), EnergyJ: num(float64(pr.Energy))}
			if finite(pr.Coverage) {
				ps.Coverage = pr.Coverage
			}
			pj.Series = append(pj.Series, ps)
		}
		s.Phases = append(s.Phases, pj)
	}
	if len(w.warnings) > 0 {
		s.Warnings = slices.Clone(w.warnings)
	}
	s.Comparison = comparisonSummaries(rr.compared)
	s.Carbon = carbonSummary(rr)
	return s
}

// writeSummary writes s as indented JSON to path atomically: a temporary
// file in the same directory, synced, then renamed over path.
func writeSummary(path string, s any) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	return writeAtomic(path, data)
}

func writeAtomic(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err = os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}
