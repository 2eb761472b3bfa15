package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/plugins/energyreport"
)

// TestKwollectOutputRoundTrip: exec with energy-report and kwollect-output
// POSTs the run's energy to Kwollect (the emulator), not kwollect-input's
// rows; a later fetch reads it back with kwollect-input, equal to the
// summary's.
func TestKwollectOutputRoundTrip(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "0s")
	dir := t.TempDir()
	cfg := seedConfig("", "", api) + fmt.Sprintf(`
[plugins.energy-report]
summary_file = "energy.json"
plot_file = ""

[plugins.kwollect-output]
url = "%s/sites/lyon/metrics"
hostname = "flyon"
`, api)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(cfg), 0o600))
	res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input,energy-report,kwollect-output", "exec", "--", "sleep", "2")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stderr, "kwollect-input's own rows are not sent back to Kwollect")
	start, end := fetchWindow(t, res.stderr)
	time.Sleep(time.Until(end.Add(1100 * time.Millisecond))) // fetch --to must be in the past

	var sum energyreport.Summary
	b, err := os.ReadFile(filepath.Join(dir, "energy.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &sum), string(b))

	// Read it back, as any Kwollect metric.
	back := fmt.Sprintf(`[plugins.kwollect-input]
site = "lyon"
hostname = "taurus-7"
metrics = "wattmetre_power_watt_energy_J"
api_url = %q
`, api)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "back.toml"), []byte(back), 0o600))
	res = runAgent(t, dir, nil, "--config", "back.toml", "--output-file", "back.csv", "--plugins", "csv,kwollect-input",
		"fetch", "--from", strconv.FormatInt(start.Unix()-1, 10), "--to", strconv.FormatInt(end.Unix()+1, 10))
	// One point is not a sampled series: kwollect-input calls it partial (3).
	require.Contains(t, []int{0, 3}, res.code, res.stderr)
	rows := readLines(t, filepath.Join(dir, "back.csv"))
	require.Len(t, rows, 2, "one energy point: %v", rows)
	c := strings.Split(rows[1], ";")
	require.Equal(t, "wattmetre_power_watt_energy_J_J", c[0]) // kwollect-input's metric cell: <id>_<unit>
	require.Equal(t, "taurus-7", c[4], "on the node it measures, not on the hostname")
	got, err := strconv.ParseFloat(c[2], 64)
	require.NoError(t, err)
	require.Len(t, sum.Series, 1)
	require.Equal(t, "wattmetre_power_watt", sum.Series[0].Metric)
	require.NotNil(t, sum.Series[0].EnergyJ)
	require.InEpsilon(t, *sum.Series[0].EnergyJ, got, 1e-12)
}
