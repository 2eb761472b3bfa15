package emulator

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// scriptedStat returns /proc/stat counters following a utilisation script:
// each call advances total by 100 jiffies and busy by 100 × the next value.
type scriptedStat struct {
	mu          sync.Mutex
	busy, total uint64
	utils       []float64
	fail        bool
}

func (s *scriptedStat) read() (uint64, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return 0, 0, errors.New("no /proc/stat here")
	}
	u := 0.0
	if len(s.utils) > 0 {
		u, s.utils = s.utils[0], s.utils[1:]
	}
	s.total += 100
	s.busy += uint64(100 * u)
	return s.busy, s.total, nil
}

func TestParseProcStat(t *testing.T) {
	busy, total, err := parseProcStat([]byte("cpu  10 20 30 400 50 6 7 8 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1\n"))
	require.NoError(t, err)
	require.Equal(t, uint64(531), total)
	require.Equal(t, uint64(81), busy)
	_, _, err = parseProcStat([]byte("intr 1\n"))
	require.Error(t, err)
	_, _, err = parseProcStat([]byte("cpu  a b c d\n"))
	require.Error(t, err)
	// The real file, when there is one.
	if b, tot, err := readProcStat(); err == nil {
		require.LessOrEqual(t, b, tot)
	}
}

func TestCPUSamplerRing(t *testing.T) {
	st := &scriptedStat{utils: []float64{0, 0.5, 1, 1, 0.25, 0.25, 0.25}}
	s := newCPUSampler(st.read, 3, nil)
	t0 := winterNow // on a 100 ms slot boundary
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	us := func(ms int) int64 { return at(ms).UnixMicro() }
	require.Equal(t, 0.0, s.util(us(0)))
	s.sample(at(0)) // baseline
	require.Equal(t, 0.0, s.util(us(50)))
	s.sample(at(100)) // slot [0,100) = 0.5
	require.Equal(t, 0.5, s.util(us(50)))
	require.Equal(t, 0.0, s.util(us(-1)), "before the sampler: idle")
	require.Equal(t, 0.5, s.util(us(5000)), "after the newest sample: newest value")
	s.sample(at(300)) // slots [100,300) = 1
	require.Equal(t, 1.0, s.util(us(250)))
	require.InDelta(t, 0.0, s.cumUtil(us(0)), 1e-12)
	require.InDelta(t, 0.05, s.cumUtil(us(100)), 1e-12)
	require.InDelta(t, 0.25, s.cumUtil(us(300)), 1e-12)
	require.InDelta(t, 0.35, s.cumUtil(us(400)), 1e-12, "extrapolated with the newest value")
	s.sample(at(400)) // slot [300,400) = 1; capacity 3 evicts slot 0
	require.Equal(t, 0.0, s.util(us(50)), "evicted: idle")
	require.InDelta(t, 0.05, s.cumUtil(us(50)), 1e-12, "evicted: constant, still monotone")
	require.InDelta(t, 0.35, s.cumUtil(us(400)), 1e-12)
	// A long stall keeps only the last capacity slots.
	s.sample(at(2000))
	require.Equal(t, 0.25, s.util(us(1950)))
	require.Equal(t, 0.0, s.util(us(1500)))
	prev := -1.0
	for ms := -100; ms <= 2500; ms += 10 {
		c := s.cumUtil(us(ms))
		require.GreaterOrEqual(t, c, prev, "cumUtil monotone at %d ms", ms)
		prev = c
	}
}

func TestCPUSamplerUnreadable(t *testing.T) {
	var logs bytes.Buffer
	st := &scriptedStat{fail: true}
	s := newCPUSampler(st.read, 10, slog.New(slog.NewTextHandler(&logs, nil)))
	for i := 0; i < 5; i++ {
		s.sample(winterNow.Add(time.Duration(i) * 100 * time.Millisecond))
	}
	require.Equal(t, 1, strings.Count(logs.String(), "cannot read CPU statistics"))
	require.Equal(t, 0.0, s.util(winterNow.UnixMicro()))
	require.Equal(t, 0.0, s.cumUtil(winterNow.Add(time.Second).UnixMicro()))
}

func TestCPULoadNodes(t *testing.T) {
	now := winterNow
	// Idle for the first 10 s of sampling, then fully busy for 10 s.
	utils := make([]float64, 0, 201)
	for i := 0; i <= 200; i++ {
		u := 0.0
		if i > 100 {
			u = 1
		}
		utils = append(utils, u)
	}
	st := &scriptedStat{utils: utils}
	s := newCPUSampler(st.read, 1000, nil)
	start := now.Add(-30 * time.Second)
	for i := 0; i <= 200; i++ {
		s.sample(start.Add(time.Duration(i) * 100 * time.Millisecond))
	}
	cfg := Config{Seed: 5, CPULoadNodes: []string{"taurus-10"}, Monitored: []string{"taurus-10"}, cpuSampler: s}
	e, _ := newEmu(t, cfg, now)
	plain, _ := newEmu(t, Config{Seed: 5, Monitored: []string{"taurus-10"}}, now)
	q := vals("nodes", "taurus-10", "metrics", "bmc_node_power_watt,bmc_node_power_watthour_total", "start_time", epoch(start.Add(-time.Minute)), "end_time", epoch(now))
	got, base := rowsOf(t, e, "lyon", q), rowsOf(t, plain, "lyon", q)
	require.Equal(t, len(base), len(got))
	busy := 0
	for i := range got {
		if got[i].MetricID != "bmc_node_power_watt" {
			continue
		}
		ts := got[i].time(t)
		diff := got[i].float(t) - base[i].float(t)
		switch {
		case ts.Before(start.Add(10 * time.Second)):
			require.InDelta(t, 0, diff, 1, "idle before/early in sampling at %s", ts)
		case ts.After(start.Add(10*time.Second + 100*time.Millisecond)):
			require.InDelta(t, 1.04*120, diff, 2, "busy at %s", ts)
			busy++
		}
	}
	require.Greater(t, busy, 3)
	// Energy: exec -- busy loop shows clearly more than exec -- sleep.
	energy := func(rows []jsonRow) float64 {
		wh := filter(rows, "bmc_node_power_watthour_total", "")
		return wh[len(wh)-1].float(t) - wh[0].float(t)
	}
	require.Greater(t, energy(got), energy(base))
}

func TestCPUSamplerGoroutine(t *testing.T) {
	// The real sampler starts and stops cleanly (no sleep: Close waits).
	e, err := New(Config{CPULoadNodes: []string{"taurus-1"}})
	require.NoError(t, err)
	e.Close()
	e.Close()
}
