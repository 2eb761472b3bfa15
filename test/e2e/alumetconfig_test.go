package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAlumetGeneratedConfig: the configuration Alumet generates with its
// outputs (kwollect-output, influxdb, prometheus-exporter, opentelemetry)
// loads and runs unchanged; only kwollect-input is pointed at the
// emulator with overrides. Nothing listens where influxdb and
// opentelemetry point: the CSV is still whole, each says what it could not
// deliver, and the run ends INCOMPLETE (exit 1) within the close
// deadlines, never hanging; kwollect-output sends nothing back.
func TestAlumetGeneratedConfig(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "0s")
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("testdata", "alumet-generated.toml"))
	require.NoError(t, err)
	// The exporter's port: any free one (9091 may be taken here).
	cfg := strings.Replace(string(b), "port = 9091", "port = 0", 1)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(cfg), 0o600))
	res := runAgent(t, dir, nil,
		"--config-override", fmt.Sprintf("plugins.kwollect-input.api_url='%s'", api),
		"--config-override", "plugins.kwollect-input.site='lyon'",
		"--config-override", "plugins.kwollect-input.hostname='taurus-7'",
		"--config-override", "plugins.kwollect-input.metrics=['wattmetre_power_watt']",
		"--config-override", "plugins.kwollect-input.login=''",
		"--config-override", "plugins.kwollect-input.password=''",
		"--config-override", "plugins.kwollect-output.close_timeout='2s'",
		"--config-override", "plugins.influxdb.close_timeout='2s'",
		"--config-override", "plugins.opentelemetry.close_timeout='2s'",
		"exec", "--", "sleep", "1")
	require.Equal(t, 1, res.code, res.stderr)
	checkCSV(t, filepath.Join(dir, "alumet-output.csv"), res.stderr, 1)
	require.Contains(t, res.stderr, "Measurement INCOMPLETE")
	for _, name := range []string{"influxdb", "opentelemetry"} {
		require.Contains(t, res.stderr, "output "+name+" failed", "%s says what it lost", name)
	}
	// kwollect-output has nothing to send: the rows are kwollect-input's own.
	require.Contains(t, res.stderr, "kwollect-input's own rows are not sent back to Kwollect")
	require.Contains(t, res.stderr, "Prometheus metrics exporter available on http://")
}
