package rundir

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/alumet-go/alumet-agent/plugins/energyreport"
)

// RunTableName is the run table of a run directory.
const RunTableName = "runs.csv"

// RunTableHeader is the run table's header: one row per run, phase, node
// and metric (phase empty for the whole run), for pandas and R.
var RunTableHeader = []string{"run", "phase", "node", "site", "metric", "start", "end", "duration_s", "samples", "coverage",
	"energy_j", "baseline_w", "dynamic_j", "mean_w", "exit_code"}

// RunTable builds the run table of an energy summary (alumet-energy.json,
// single run or exec --repeat).
func RunTable(summary []byte) ([][]string, error) {
	var probe struct {
		Runs json.RawMessage `json:"runs"`
	}
	if err := json.Unmarshal(summary, &probe); err != nil {
		return nil, err
	}
	var runs []energyreport.RunSummary
	if probe.Runs != nil {
		var rs energyreport.RepeatSummary
		if err := json.Unmarshal(summary, &rs); err != nil {
			return nil, err
		}
		runs = rs.Runs
	} else {
		var s energyreport.Summary
		if err := json.Unmarshal(summary, &s); err != nil {
			return nil, err
		}
		runs = []energyreport.RunSummary{{Run: 0, Summary: s}}
	}
	rows := [][]string{RunTableHeader}
	for _, r := range runs {
		exit := ""
		if r.ExitCode != nil {
			exit = strconv.Itoa(*r.ExitCode)
		}
		baselines := map[[2]string]*float64{}
		for _, s := range r.Series {
			baselines[[2]string{s.Node, s.Metric}] = s.BaselineW
			rows = append(rows, []string{strconv.Itoa(r.Run), "", s.Node, str(s.Site), s.Metric, r.Start, r.End, num(&s.DurationS),
				strconv.Itoa(s.Samples), num(&s.Coverage), num(s.EnergyJ), num(s.BaselineW), num(s.DynamicEnergyJ), num(s.MeanW), exit})
		}
		sites := map[string]*string{}
		for _, s := range r.Series {
			sites[s.Node] = s.Site
		}
		for _, p := range r.Phases {
			for _, s := range p.Series {
				base := baselines[[2]string{s.Node, s.Metric}]
				var dyn *float64
				if base != nil && s.EnergyJ != nil {
					d := *s.EnergyJ - *base*p.DurationS
					dyn = &d
				}
				rows = append(rows, []string{strconv.Itoa(r.Run), p.Name, s.Node, str(sites[s.Node]), s.Metric, p.Start, p.End, num(&p.DurationS),
					strconv.Itoa(s.Samples), num(&s.Coverage), num(s.EnergyJ), num(base), num(dyn), num(s.MeanW), exit})
			}
		}
	}
	return rows, nil
}

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func num(f *float64) string {
	if f == nil {
		return ""
	}
	return strconv.FormatFloat(*f, 'g', -1, 64)
}

// WriteRunTable writes the run table of the summary file at summaryPath to
// path (atomically).
func WriteRunTable(summaryPath, path string) error {
	b, err := os.ReadFile(summaryPath)
	if err != nil {
		return err
	}
	rows, err := RunTable(b)
	if err != nil {
		return fmt.Errorf("%s: %w", summaryPath, err)
	}
	var out bytes.Buffer
	w := csv.NewWriter(&out)
	if err := w.WriteAll(rows); err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+"."+strconv.FormatInt(time.Now().UnixNano(), 36))
	if err := os.WriteFile(tmp, out.Bytes(), 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
