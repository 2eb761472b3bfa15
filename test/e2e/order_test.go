package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMonitoredWindowInOrder: about 1 M rows of 50 Hz frames (10 monitored
// nodes, 2000 s) from a server that refuses, like Kwollect's statement
// timeout, any query over 250,000 rows. The agent sizes its queries from the
// fastest period the catalogue gives: at most one refusal; every row comes
// once, and every series is in time order in the CSV.
func TestMonitoredWindowInOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("fetches 1 M rows")
	}
	t.Parallel()
	var nodes []string
	for i := 1; i <= 10; i++ {
		nodes = append(nodes, fmt.Sprintf("taurus-%d", i))
	}
	args := []string{"--lag", "0s", "--row-limit", "250000"}
	for _, n := range nodes {
		args = append(args, "--monitor", n)
	}
	api := startEmulator(t, args...)
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(`[plugins.kwollect-input]
site = "lyon"
nodes = [%s]
metrics = "wattmetre_power_watt"
api_url = %q
`, `"`+strings.Join(nodes, `", "`)+`"`, api))
	end := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	start := end.Add(-2000 * time.Second)
	res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input",
		"fetch", "--from", start.Format(time.RFC3339), "--to", end.Format(time.RFC3339))
	require.Equal(t, 0, res.code, res.stderr)
	require.LessOrEqual(t, strings.Count(res.stderr, "too much data"), 1, res.stderr)

	f, err := os.Open(filepath.Join(dir, "out.csv"))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	require.True(t, sc.Scan())
	header := strings.Split(sc.Text(), ";")
	require.Equal(t, "timestamp", header[1])
	last := map[string]time.Time{}
	n, disorder := 0, 0
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ";")
		ts, err := time.Parse(time.RFC3339Nano, fields[1])
		require.NoError(t, err)
		key := fields[0] + ";" + strings.Join(fields[3:], ";")
		if prev, ok := last[key]; ok && !ts.After(prev) {
			disorder++
		}
		last[key] = ts
		n++
	}
	require.NoError(t, sc.Err())
	require.Len(t, last, 10, "one series per node")
	require.Greater(t, n, 990_000)
	require.Zero(t, disorder, "every series in time order")
	assertNoDuplicateLines(t, filepath.Join(dir, "out.csv"))
}
