package energyreport

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// summaryJSON is the summary file. Every float is a pointer so that a NaN
// or an infinity is written as null, never as invalid JSON.
type summaryJSON struct {
	Start        string              `json:"start"`
	End          string              `json:"end"`
	Command      []string            `json:"command"`
	ExitCode     *int                `json:"exit_code"`
	TotalEnergyJ map[string]*float64 `json:"total_energy_j"`
	Series       []seriesJSON        `json:"series"`
}

type seriesJSON struct {
	Node           string    `json:"node"`
	Site           *string   `json:"site"`
	Metric         string    `json:"metric"`
	Samples        int       `json:"samples"`
	Coverage       float64   `json:"coverage"`
	DurationS      float64   `json:"duration_s"`
	MeanW          *float64  `json:"mean_w"`
	PeakW          *float64  `json:"peak_w"`
	EnergyJ        *float64  `json:"energy_j"`
	BaselineW      *float64  `json:"baseline_w"`
	DynamicEnergyJ *float64  `json:"dynamic_energy_j"`
	Gaps           []gapJSON `json:"gaps"`
	Method         string    `json:"method"`
	UncertaintyJ   *float64  `json:"uncertainty_j"`
}

type gapJSON struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// summary builds the summary of the rows (sorted by node, then metric).
func (r *report) summary(w window, rows []row) summaryJSON {
	dur := w.end.Sub(w.start).Seconds()
	s := summaryJSON{
		Start:        rfc3339(w.start),
		End:          rfc3339(w.end),
		Command:      w.command,
		ExitCode:     w.exitCode,
		TotalEnergyJ: map[string]*float64{},
		Series:       make([]seriesJSON, 0, len(rows)),
	}
	for _, t := range totals(rows) {
		if t.hasData {
			s.TotalEnergyJ[t.metric] = num(t.energy)
		} else {
			s.TotalEnergyJ[t.metric] = nil
		}
	}
	for _, rw := range rows {
		j := seriesJSON{
			Node:      rw.key.node,
			Metric:    rw.key.metric,
			Samples:   rw.res.Samples,
			DurationS: dur,
			Gaps:      make([]gapJSON, 0, len(rw.gaps)),
			Method:    rw.method,
		}
		if rw.site != "" {
			site := rw.site
			j.Site = &site
		}
		if c := rw.res.Coverage; finite(c) {
			j.Coverage = c
		}
		if r.hasBase {
			j.BaselineW = num(r.baseline)
		}
		if rw.hasData {
			e := float64(rw.res.Energy)
			j.MeanW = num(float64(rw.res.Mean))
			j.PeakW = num(float64(rw.res.Peak))
			j.EnergyJ = num(e)
			j.DynamicEnergyJ = num(r.dynamic(e, dur))
			j.UncertaintyJ = num(float64(rw.res.Uncertainty))
		}
		for _, g := range rw.gaps {
			j.Gaps = append(j.Gaps, gapJSON{From: rfc3339(g.From), To: rfc3339(g.To)})
		}
		s.Series = append(s.Series, j)
	}
	return s
}

// writeSummary writes s as indented JSON to path atomically: a temporary
// file in the same directory, synced, then renamed over path.
func writeSummary(path string, s summaryJSON) error {
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
