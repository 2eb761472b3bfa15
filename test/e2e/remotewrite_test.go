package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/servertest"
)

// TestRemoteWriteOutput: exec with csv and prometheus-remote-write stores
// in VictoriaMetrics every CSV row as a sample with its own time (ms).
func TestRemoteWriteOutput(t *testing.T) {
	t.Parallel()
	vm := servertest.VictoriaMetrics(t)
	api := startEmulator(t, "--lag", "0s")
	dir := t.TempDir()
	cfg := seedConfig("", "", api) + fmt.Sprintf(`
[plugins.csv]
output_path = "out.csv"

[plugins.prometheus-remote-write]
url = "%s/api/v1/write"
`, vm.URL)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(cfg), 0o600))
	res := runAgent(t, dir, nil, "--plugins", "csv,prometheus-remote-write,kwollect-input", "exec", "--", "sleep", "1")
	require.Equal(t, 0, res.code, res.stderr)
	checkCSV(t, filepath.Join(dir, "out.csv"), res.stderr, 1)

	var want []string
	for _, row := range readLines(t, filepath.Join(dir, "out.csv"))[1:] {
		c := strings.Split(row, ";")
		ts, err := time.Parse(time.RFC3339Nano, c[1])
		require.NoError(t, err)
		want = append(want, fmt.Sprintf("%d;%s;%s;%s", ts.UnixMilli(), c[2], c[4], c[6]))
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(string(vm.VMExport(t, `{__name__="wattmetre_power_watt"}`))), "\n") {
		var s struct {
			Metric     map[string]string
			Values     []float64
			Timestamps []int64
		}
		require.NoError(t, json.Unmarshal([]byte(line), &s))
		for i := range s.Values {
			got = append(got, fmt.Sprintf("%d;%s;%s;%s", s.Timestamps[i], strconv.FormatFloat(s.Values[i], 'f', -1, 64),
				s.Metric["resource_id"], s.Metric["resource_consumer_id"]))
		}
	}
	sort.Strings(want)
	sort.Strings(got)
	require.Equal(t, want, got)
}
