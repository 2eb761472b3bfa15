package e2e

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/plugins/energyreport"
)

// compareConfig measures orion-3 (a wattmetre, a BMC, and in the emulator
// node_exporter's RAPL counters) with the rapl source on a fake tree, and
// converts the energy to carbon at France's intensity.
func compareConfig(api, root string, metrics ...string) string {
	return fmt.Sprintf(`[plugins.csv]
output_path = "out.csv"

[plugins.kwollect-input]
site = "lyon"
hostname = "orion-3"
metrics = [%s]
api_url = %q

[plugins.rapl]
poll_interval = "200ms"
flush_interval = "500ms"
no_perf_events = true
sysfs_root = %q

[plugins.energy-report]
summary_file = "energy.json"

[plugins.energy-to-carbon]
mode = "country"

[plugins.energy-to-carbon.country]
code = "FRA"
`, `"`+strings.Join(metrics, `", "`)+`"`, api, root)
}

func comparisonOf(t *testing.T, s energySummary, node string) energyreport.NodeComparisonSummary {
	t.Helper()
	for _, c := range s.Comparison {
		if c.Node == node {
			return c
		}
	}
	t.Fatalf("no comparison of %s in %+v", node, s.Comparison)
	return energyreport.NodeComparisonSummary{}
}

func sourceIn(t *testing.T, c energyreport.NodeComparisonSummary, metric string) energyreport.ComparedSourceSummary {
	t.Helper()
	for _, s := range c.Sources {
		if s.Metric == metric {
			return s
		}
	}
	t.Fatalf("no source %s in %+v", metric, c.Sources)
	return energyreport.ComparedSourceSummary{}
}

// TestCompareExecRAPL: the issue's command, `--plugins
// csv,kwollect-input,rapl,energy-report exec`, on a fake powercap tree
// that the command itself advances (package 30 W + 20 W, dram 5 W + 5 W),
// with the emulator's wattmetre for the same node: the report
// compares them, RAPL under the node kwollect-input measures. Then the
// same with energy-to-carbon: gCO₂e at France's intensity.
func TestCompareExecRAPL(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s")
	watts := []float64{30, 0, 5, 20, 0, 5, 0} // per zone of raplZones
	for _, withCarbon := range []bool{false, true} {
		root := raplTree(t, []uint64{1e9, 1e9, 1e9, 1e9, 1e9, 1e9, 1e9})
		dir := t.TempDir()
		writeConfig(t, dir, compareConfig(api, root, "wattmetre_power_watt"))
		// 16 steps of 0.25 s: the counters at the given powers.
		var script strings.Builder
		for step := 1; step <= 16; step++ {
			for i, w := range watts {
				if w > 0 {
					fmt.Fprintf(&script, "printf '%%020d\\n' %d 1<> %s\n", uint64(1e9+w*0.25e6*float64(step)), filepath.Join(raplZoneDir(root, raplZones[i].dir), "energy_uj"))
				}
			}
			script.WriteString("sleep 0.25\n")
		}
		plugins := "csv,kwollect-input,rapl,energy-report"
		if withCarbon {
			plugins += ",energy-to-carbon"
		}
		res := runAgent(t, dir, nil, "--plugins", plugins, "exec", "--", "sh", "-c", script.String())
		require.Equal(t, 0, res.code, res.stderr)

		s := readEnergySummary(t, filepath.Join(dir, "energy.json"))
		c := comparisonOf(t, s, "orion-3")
		require.NotNil(t, c.Reference)
		require.Equal(t, "wattmetre_power_watt", *c.Reference)
		wm := sourceIn(t, c, "wattmetre_power_watt")
		require.Equal(t, 1.0, *wm.RatioToReference)
		pkg := sourceIn(t, c, "rapl_consumed_energy.package_total")
		dram := sourceIn(t, c, "rapl_consumed_energy.dram_total")
		require.Equal(t, "RAPL package (on-node)", pkg.Source)
		// The command's writes go on for ~4 s of its ~4.1 s: the mean power
		// is the counters' (timing on a loaded machine aside).
		require.InDelta(t, 50, *pkg.MeanW, 15, "package: 30 W + 20 W")
		require.InDelta(t, 10, *dram.MeanW, 4, "dram: 5 W + 5 W")
		require.Len(t, c.RAPL, 1)
		require.Equal(t, "on-node", c.RAPL[0].Origin)
		require.InDelta(t, *pkg.EnergyJ+*dram.EnergyJ, *c.RAPL[0].EnergyJ, 1e-6)
		require.InDelta(t, *wm.EnergyJ-*c.RAPL[0].EnergyJ, *c.RAPL[0].UnseenEnergyJ, 1e-6)
		require.NotNil(t, c.Clock, "the on-node clock is checked")
		require.Contains(t, res.stderr, "comparison, orion-3 (ratios to the wattmeter, wattmetre_power_watt):")
		require.Regexp(t, `(?m)^RAPL package\+dram \(on-node\): [0-9.]+ J, [0-9.]+ W, [0-9.]+ % of the wall energy; not seen by RAPL: `, res.stderr)
		require.Regexp(t, `(?m)^clock \(orion-3\): `, res.stderr)
		for _, sr := range s.Series {
			require.NotEqual(t, "local_machine", sr.Node, "RAPL is under the node kwollect-input measures")
		}

		if !withCarbon {
			require.Nil(t, s.Carbon)
			require.NotContains(t, res.stderr, "gCO₂e")
			continue
		}
		require.NotNil(t, s.Carbon)
		require.Equal(t, 56.039, s.Carbon.IntensityGPerKWh)
		require.Equal(t, "country", s.Carbon.Mode)
		require.Contains(t, s.Carbon.Source, "FRA")
		require.InDelta(t, *s.TotalEnergyJ["wattmetre_power_watt"]/3.6e6*56.039, *s.Carbon.TotalG["wattmetre_power_watt"], 1e-9)
		require.Regexp(t, `(?m)^carbon \(wattmetre_power_watt\): [0-9.]+ gCO₂e for [0-9.]+ J, at 56\.039 gCO₂e/kWh \(`, res.stderr)
		carbonRows := 0
		for _, l := range readLines(t, filepath.Join(dir, "out.csv")) {
			if strings.HasPrefix(l, "carbon_emission_gCO₂;") {
				carbonRows++
			}
		}
		require.Positive(t, carbonRows, "the transform's points in the CSV")
	}
}

// TestCompareFetchKwollectRAPL: fetch of a past window of a monitored
// node: Kwollect's own view, the wattmetre's 50 Hz frames, the BMC's power
// and watt-hour counter, node_exporter's RAPL counters (one per socket,
// summed), compared without anything on the node.
func TestCompareFetchKwollectRAPL(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--monitor", "orion-3")
	dir := t.TempDir()
	writeConfig(t, dir, compareConfig(api, t.TempDir(), "wattmetre_power_watt", "bmc_node_power_watt", "bmc_node_power_watthour_total",
		"prom_node_rapl_package_joules_total", "prom_node_rapl_dram_joules_total"))
	to := time.Now().Add(-2 * time.Minute).Truncate(time.Second)
	from := to.Add(-5 * time.Minute)
	res := runAgent(t, dir, nil, "--plugins", "csv,kwollect-input,energy-report", "fetch", "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339))
	require.Equal(t, 0, res.code, res.stderr)
	s := readEnergySummary(t, filepath.Join(dir, "energy.json"))
	c := comparisonOf(t, s, "orion-3")
	wm := sourceIn(t, c, "wattmetre_power_watt")
	require.GreaterOrEqual(t, wm.Coverage, 0.999)
	// The emulator's BMC reads 4 % high; its watt-hour counter steps by
	// 3600 J, which the ratio's bound must cover.
	for _, m := range []string{"bmc_node_power_watt", "bmc_node_power_watthour_total"} {
		src := sourceIn(t, c, m)
		require.InDelta(t, 1.04, *src.RatioToReference, *src.RatioUncertainty+0.02, m)
	}
	require.Greater(t, *sourceIn(t, c, "bmc_node_power_watthour_total").RatioUncertainty, 3600 / *wm.EnergyJ)
	pkg := sourceIn(t, c, "prom_node_rapl_package_joules_total")
	require.Equal(t, "RAPL package (Kwollect)", pkg.Source)
	require.GreaterOrEqual(t, pkg.Coverage, 0.999, "15 s readings, the one before the window and the one after it read too: no edge bridged")
	require.Len(t, c.RAPL, 1)
	require.Equal(t, "Kwollect", c.RAPL[0].Origin)
	// The emulator's model: RAPL (package + dram) is 55-80 % of the wall.
	require.Greater(t, *c.RAPL[0].ShareOfReference, 0.5)
	require.Less(t, *c.RAPL[0].ShareOfReference, 0.85)
	require.Nil(t, c.Clock, "no on-node clock in a fetch")
	for _, sr := range s.Series {
		if sr.Metric == "prom_node_rapl_package_joules_total" {
			require.Contains(t, sr.Method, "the sum of 2 counters (index=0; index=1)")
		}
	}
}

// TestAlumetRaplCarbonSections: a configuration with Alumet's
// kwollect-input (the seed README's), rapl and energy-to-carbon sections,
// as Alumet writes them, runs unchanged (sysfs_root from an override, as
// this machine has no RAPL): carbon points at the world average, 475
// g/kWh, for every joule point (rapl's), as Alumet.
func TestAlumetRaplCarbonSections(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s")
	root := raplTree(t, []uint64{1, 2, 3, 4, 5, 6, 7})
	dir := t.TempDir()
	cfg := "[plugins.csv]\noutput_path = \"out.csv\"\n\n" + seedConfig("", "", api) +
		"\n[plugins.rapl]\npoll_interval = \"1s\"\nflush_interval = \"5s\"\nno_perf_events = false\n" +
		"\n[plugins.energy-to-carbon]\nmode = \"world_avg\"\n"
	writeConfig(t, dir, cfg)
	script := fmt.Sprintf("sleep 0.5; printf '%%020d\\n' 2000001 1<> %s; sleep 1", filepath.Join(raplZoneDir(root, raplZones[0].dir), "energy_uj"))
	res := runAgent(t, dir, nil, "--config-override", "plugins.rapl.sysfs_root='"+root+"'", "exec", "--", "sh", "-c", script)
	require.Equal(t, 0, res.code, res.stderr)
	var joules, carbon []float64
	for _, l := range readLines(t, filepath.Join(dir, "out.csv"))[1:] {
		c := strings.Split(l, ";")
		v, err := strconv.ParseFloat(c[2], 64)
		require.NoError(t, err, l)
		// The CSV's columns come from its first row (a wattmetre one):
		// domain is a late attribute.
		pkg := c[8] == "domain=package"
		switch {
		case c[0] == "rapl_consumed_energy_J" && pkg:
			joules = append(joules, v)
		case c[0] == "carbon_emission_gCO₂" && pkg:
			carbon = append(carbon, v)
		}
	}
	require.NotEmpty(t, joules)
	require.Len(t, carbon, len(joules), "one carbon point per joule point")
	for i := range joules {
		require.InDelta(t, joules[i]/3.6e6*475, carbon[i], 1e-12)
	}
	require.Contains(t, res.stderr, "wattmetre_power_watt", "kwollect-input measured too")
}
