package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestJSONLOutput: exec with the csv and jsonl outputs writes the same
// points to both files, with the emulator's data for the window queried.
func TestJSONLOutput(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "0s")
	dir := t.TempDir()
	cfg := seedConfig("", "", api) + `
[plugins.csv]
output_path = "out.csv"

[plugins.jsonl]
output_path = "out.jsonl"
force_flush = false
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(cfg), 0o600))
	res := runAgent(t, dir, nil, "--plugins", "csv,jsonl,kwollect-input", "exec", "--", "sleep", "1")
	require.Equal(t, 0, res.code, res.stderr)
	checkCSV(t, filepath.Join(dir, "out.csv"), res.stderr, 1)

	csvRows := readLines(t, filepath.Join(dir, "out.csv"))[1:]
	lines := readLines(t, filepath.Join(dir, "out.jsonl"))
	require.Len(t, lines, len(csvRows))
	for i, line := range lines {
		var p struct {
			Metric, Unit, Timestamp string
			Value                   json.Number
			ResourceKind            string `json:"resource_kind"`
			ResourceID              string `json:"resource_id"`
			ConsumerKind            string `json:"consumer_kind"`
			ConsumerID              string `json:"consumer_id"`
			Attributes              map[string]string
		}
		d := json.NewDecoder(strings.NewReader(line))
		d.UseNumber()
		d.DisallowUnknownFields()
		require.NoError(t, d.Decode(&p), "line %d: %s", i+1, line)
		row := fmt.Sprintf("%s_%s;%s;%s;%s;%s;%s;%s;%s;", p.Metric, p.Unit, p.Timestamp, p.Value, p.ResourceKind, p.ResourceID,
			p.ConsumerKind, p.ConsumerID, p.Attributes["metric_id"])
		require.Equal(t, csvRows[i], row, "line %d", i+1)
	}
}
