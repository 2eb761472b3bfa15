package e2e

import (
	"encoding/json"
	"image/png"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/energy"
	"github.com/alumet-go/alumet-agent/plugins/energyreport"
)

// energySummary is the summary file of energy-report: the product's own
// type; readEnergySummary checks the file's keys independently of it.
type energySummary = energyreport.Summary

// readEnergySummary decodes the summary and checks it has exactly the
// documented keys, at the top level and in every series.
func readEnergySummary(t *testing.T, path string) energySummary {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(b, &raw), string(b))
	keys := slices.DeleteFunc(slices.Collect(maps.Keys(raw)), func(k string) bool { return k == "warnings" || k == "comparison" || k == "carbon" }) // only when they apply
	require.ElementsMatch(t, []string{"start", "end", "command", "exit_code", "total_energy_j", "series"}, keys)
	for _, s := range raw["series"].([]any) {
		require.ElementsMatch(t, []string{"node", "site", "metric", "samples", "coverage", "duration_s", "mean_w", "peak_w",
			"energy_j", "baseline_w", "dynamic_energy_j", "gaps", "method", "uncertainty_j", "outcome", "outcome_reason", "lag_s"}, slices.Collect(maps.Keys(s.(map[string]any))))
	}
	var s energySummary
	require.NoError(t, json.Unmarshal(b, &s))
	return s
}

// csvPower reads the CSV: the wattmetre samples of node, and the energy rows.
func csvPower(t *testing.T, path, node string) (samples []energy.Sample, energyRows [][]string, lastPowerRow, firstEnergyRow int) {
	t.Helper()
	lines := readLines(t, path)
	require.Equal(t, "metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;metric_id;__late_attributes", lines[0])
	firstEnergyRow = -1
	for i, l := range lines[1:] {
		c := strings.Split(l, ";")
		require.Len(t, c, 9, l)
		switch c[0] {
		case "wattmetre_power_watt_W":
			lastPowerRow = i
			if c[4] != node {
				continue
			}
			ts, err := time.Parse(time.RFC3339Nano, c[1])
			require.NoError(t, err)
			w, err := strconv.ParseFloat(c[2], 64)
			require.NoError(t, err)
			samples = append(samples, energy.Sample{T: ts, W: w})
		case "wattmetre_power_watt_energy_J":
			if firstEnergyRow < 0 {
				firstEnergyRow = i
			}
			energyRows = append(energyRows, c)
		default:
			t.Fatalf("unexpected row %q", l)
		}
	}
	return samples, energyRows, lastPowerRow, firstEnergyRow
}

// recompute integrates the CSV's samples as energy-report does: the period
// inferred from the data, then the options it calls for.
func recompute(t *testing.T, samples []energy.Sample, start, end time.Time) energy.Result {
	t.Helper()
	probe, err := energy.Integrate(samples, start, end, energy.Options{Method: energy.Trapezoid})
	require.NoError(t, err)
	r, err := energy.Integrate(samples, start, end, energy.OptionsFor("wattmetre_power_watt", probe.Period))
	require.NoError(t, err)
	return r
}

func parseRFC3339(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err, s)
	return ts
}

// TestEnergyReportExec: the command; the report's window is the
// measured one, its energy is the energy package's over the CSV's rows, and
// the CSV holds it too.
func TestEnergyReportExec(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s")
	dir := t.TempDir()
	writeConfig(t, dir, seedConfig("", "", api)+"\n[plugins.energy-report]\nsummary_file = \"energy.json\"\n")
	res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input,energy-report", "exec", "--", "sleep", "2")
	require.Equal(t, 0, res.code, res.stderr)

	// The table on stderr.
	require.Regexp(t, `(?m)^node\s+site\s+metric\s+samples\s+coverage %\s+duration s\s+mean W\s+peak W\s+energy J\s+dynamic J$`, res.stderr)
	require.Regexp(t, `(?m)^taurus-7\s+lyon\s+wattmetre_power_watt\s+\d+\s+100\.0\s+\d+\.\d{3}\s+\d+\.\d\d\s+\d+\.\d\d\s+\d+\.\d\d\s+-$`, res.stderr)
	require.Regexp(t, `(?m)^total\s+-\s+wattmetre_power_watt\s+`, res.stderr)
	require.Contains(t, res.stderr, "method (wattmetre_power_watt): step integration of 1 s averages")
	require.Contains(t, res.stderr, "INFO  plugin_energy_report] Energy summary written to energy.json")

	// The summary: the measured window (kwollect-input floors its start to
	// the second and sends the end at µs precision).
	s := readEnergySummary(t, filepath.Join(dir, "energy.json"))
	start, end := parseRFC3339(t, s.Start), parseRFC3339(t, s.End)
	qStart, qEnd := fetchWindow(t, res.stderr)
	require.True(t, start.Truncate(time.Second).Equal(qStart), "start %v, query start %v", start, qStart)
	require.Less(t, qEnd.Sub(end).Abs(), time.Microsecond, "end %v, query end %v", end, qEnd)
	require.Equal(t, []string{"sleep", "2"}, s.Command)
	require.NotNil(t, s.ExitCode)
	require.Equal(t, 0, *s.ExitCode)
	require.Len(t, s.Series, 1)
	sr := s.Series[0]
	require.Equal(t, "taurus-7", sr.Node)
	require.NotNil(t, sr.Site)
	require.Equal(t, "lyon", *sr.Site, "the site kwollect-input knows the node on")
	require.Equal(t, "wattmetre_power_watt", sr.Metric)
	require.Equal(t, 1.0, sr.Coverage, "Kwollect's tail was completed")
	require.Empty(t, sr.Gaps)
	require.Nil(t, sr.BaselineW)
	require.Nil(t, sr.DynamicEnergyJ)
	require.InDelta(t, end.Sub(start).Seconds(), sr.DurationS, 1e-9)
	require.NotNil(t, sr.EnergyJ)

	// The energy package over the CSV's rows for [start, end].
	samples, energyRows, lastPower, firstEnergy := csvPower(t, filepath.Join(dir, "out.csv"), "taurus-7")
	require.GreaterOrEqual(t, len(samples), 2)
	want := recompute(t, samples, start, end)
	require.Equal(t, time.Second, want.Period)
	require.Equal(t, want.Method, sr.Method)
	require.Equal(t, want.Samples, sr.Samples)
	require.LessOrEqual(t, math.Abs(*sr.EnergyJ-float64(want.Energy)), 1e-9*math.Abs(float64(want.Energy)),
		"report %v J, recomputed %v J", *sr.EnergyJ, float64(want.Energy))
	require.InDelta(t, float64(want.Uncertainty), *sr.UncertaintyJ, 1e-9)
	require.Equal(t, *sr.EnergyJ, *s.TotalEnergyJ["wattmetre_power_watt"])

	// One energy row in the CSV, after the power rows, with the summary's value.
	require.Len(t, energyRows, 1)
	require.Greater(t, firstEnergy, lastPower)
	row := energyRows[0]
	require.Equal(t, end.UTC().Format(time.RFC3339Nano), row[1])
	require.Equal(t, strconv.FormatFloat(*sr.EnergyJ, 'f', -1, 64), row[2])
	require.Equal(t, []string{"device_id", "taurus-7", "device_origin"}, row[3:6])
	require.Equal(t, "wattmetre_power_watt_energy", row[7])
	require.Equal(t, "", row[8])

	// The plot, at its default path.
	f, err := os.Open(filepath.Join(dir, "alumet-power.png"))
	require.NoError(t, err, "the default plot_file")
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	require.NoError(t, err)
	require.Equal(t, [2]int{1600, 900}, [2]int{cfg.Width, cfg.Height})
	require.Contains(t, res.stderr, "Power plot written to alumet-power.png")
}

// TestEnergyReportBaselineAndExitCode: a constant baseline gives the dynamic
// energy, the exit code of a failing command is in the summary, and
// table = false prints no table.
func TestEnergyReportBaselineAndExitCode(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s")
	dir := t.TempDir()
	writeConfig(t, dir, seedConfig("", "", api)+"\n[plugins.energy-report]\nsummary_file = \"e.json\"\nbaseline = \"80.5 W\"\ntable = false\n")
	res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input,energy-report", "exec", "--", "sh", "-c", "sleep 1; exit 3")
	require.Equal(t, 3, res.code, res.stderr)
	require.NotContains(t, res.stderr, "coverage %")
	s := readEnergySummary(t, filepath.Join(dir, "e.json"))
	require.Equal(t, []string{"sh", "-c", "sleep 1; exit 3"}, s.Command)
	require.NotNil(t, s.ExitCode)
	require.Equal(t, 3, *s.ExitCode)
	require.Len(t, s.Series, 1)
	sr := s.Series[0]
	require.NotNil(t, sr.BaselineW)
	require.Equal(t, 80.5, *sr.BaselineW)
	require.NotNil(t, sr.DynamicEnergyJ)
	require.InDelta(t, *sr.EnergyJ-80.5*sr.DurationS, *sr.DynamicEnergyJ, 1e-9)
}

// TestEnergyReportBadBaseline: a bad baseline is refused at load time,
// naming the file, line and key.
func TestEnergyReportBadBaseline(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeConfig(t, dir, seedConfig("", "", "http://127.0.0.1:1/stable")+"\n[plugins.energy-report]\nbaseline = \"before:soon\"\n")
	res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input,energy-report", "exec", "true")
	require.Equal(t, 1, res.code, res.stderr)
	require.Contains(t, res.stderr, "alumet-config.toml:10: plugins.energy-report: baseline")
	require.Contains(t, res.stderr, `"before:soon"`)
}
