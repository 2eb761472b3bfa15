package rapl

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline/pipelinetest"
	"github.com/alumet-go/alumet-agent/plugins/csv"
)

// The CSV rows of a bi-socket tree with psys, through the csv plugin's
// writer: Alumet's metric, resources, domains and totals.
func TestGoldenCSV(t *testing.T) {
	zones := append(twoSockets(), fakeZone{dir: "intel-rapl:2", name: "psys", energy: 9_000_000})
	root := powercapTree(t, zones...)
	src, reg := powercapSource(t, root)
	var out bytes.Buffer
	w := csv.NewWriter(&out, reg, csv.DefaultOptions())
	dirs := []string{"intel-rapl:0", "intel-rapl:0/intel-rapl:0:0", "intel-rapl:0/intel-rapl:0:1",
		"intel-rapl:1", "intel-rapl:1/intel-rapl:1:0", "intel-rapl:1/intel-rapl:1:1", "intel-rapl:2"}
	watts := []uint64{65_250_000, 40_125_000, 8_000_001, 70_500_000, 44_000_000, 7_999_999, 180_000_000} // µJ per second
	for i := range 4 {
		at := time.Duration(i)*time.Second + 250*time.Millisecond
		if i > 0 {
			for k, d := range dirs {
				setEnergy(t, root, d, zones[k].energy+uint64(i)*watts[k])
			}
		}
		require.NoError(t, src.pollOnce(t0.Add(at)))
	}
	require.NoError(t, w.WriteBuffer(src.take()))
	require.NoError(t, w.Flush())
	checkGolden(t, "rapl.csv", out.Bytes())
}

// Run: a poll at once, then every poll_interval, the points sent every
// flush_interval and at the stop, after one more poll.
func TestRun(t *testing.T) {
	root := powercapTree(t, twoSockets()[:2]...)
	src, _ := powercapSource(t, root)
	src.poll, src.flush = 10*time.Millisecond, 30*time.Millisecond
	rec := &pipelinetest.Recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, rec) }()
	rec.WaitFor(t, 8, 5*time.Second) // 2 polls of 2 counters and 2 totals
	cancel()
	require.NoError(t, <-done)
	ps := rec.Points()
	require.Zero(t, len(ps)%4, "whole polls")
	require.GreaterOrEqual(t, len(rec.Buffers()), 2)
	var last time.Time
	for i, p := range ps {
		require.Equal(t, measure.Float(0), p.Value, "the counters did not move")
		if i%4 == 0 {
			require.True(t, p.Timestamp.After(last), "one timestamp per poll, increasing")
			last = p.Timestamp
		} else {
			require.Equal(t, last, p.Timestamp)
		}
		require.Equal(t, time.UTC, p.Timestamp.Location())
	}
	for _, c := range src.chans {
		_, err := c.read()
		require.Error(t, err, "the files are closed")
	}
}
