package parquet

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/racetest"
	"github.com/alumet-go/alumet-agent/measure"
)

// TestPeakRSSHelper is run by TestPeakRSSBounded in a child process: it
// writes $ALUMET_PARQUET_RSS_ROWS rows of the reference workload to
// $ALUMET_PARQUET_RSS_FILE.
func TestPeakRSSHelper(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv("ALUMET_PARQUET_RSS_ROWS"))
	if err != nil {
		t.Skip("run by TestPeakRSSBounded")
	}
	reg := measure.NewRegistry()
	cfg := DefaultConfig()
	cfg.OutputPath = os.Getenv("ALUMET_PARQUET_RSS_FILE")
	if g, err := strconv.ParseInt(os.Getenv("ALUMET_PARQUET_RSS_GROUP"), 10, 64); err == nil {
		cfg.RowGroupRows = g
	}
	o, err := Open(cfg, reg, nil, false)
	require.NoError(t, err)
	workload(t, reg, n, func(buf *measure.Buffer) { require.NoError(t, o.Write(context.Background(), buf)) })
	require.NoError(t, o.Close())
}

// peakRSS runs TestPeakRSSHelper for rows rows and returns its peak RSS in bytes.
func peakRSS(t *testing.T, rows int, group int64) int64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPeakRSSHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		"ALUMET_PARQUET_RSS_ROWS="+strconv.Itoa(rows),
		"ALUMET_PARQUET_RSS_GROUP="+strconv.FormatInt(group, 10),
		"ALUMET_PARQUET_RSS_FILE="+filepath.Join(t.TempDir(), "rss.parquet"))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss * 1024
}

// Memory is bounded by the row group, not by the window: ten times the
// rows, about the same peak RSS. ALUMET_PARQUET_RSS_SCALE=10 gives the
// 1 M / 10 M rows figures of docs/performance.md.
func TestPeakRSSBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: writes 1.1 M rows in child processes")
	}
	scale := 1
	if s, err := strconv.Atoi(os.Getenv("ALUMET_PARQUET_RSS_SCALE")); err == nil && s > 0 {
		scale = s
	}
	small, large := 100_000*scale, 1_000_000*scale
	if racetest.Enabled && scale == 1 {
		small, large = 20_000, 200_000 // the detector makes each row ten times slower
	}
	group := int64(16384)
	if scale > 1 {
		group = DefaultRowGroupRows
	}
	a := peakRSS(t, small, group)
	b := peakRSS(t, large, group)
	t.Logf("peak RSS: %d rows %.1f MB, %d rows %.1f MB (row groups of %d rows)", small, float64(a)/1e6, large, float64(b)/1e6, group)
	require.Less(t, b, a+a/2+16<<20, "ten times the rows must not need much more memory")
}
