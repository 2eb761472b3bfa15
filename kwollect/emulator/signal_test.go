package emulator

import (
	"math"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// secondOf is the whole Paris second of a row timestamp.
func secondOf(t *testing.T, r jsonRow) int64 { return r.time(t).Unix() }

func TestRawFramesPerSecond(t *testing.T) {
	tests := []struct {
		node, site string
		perSecond  int
		frameMs    int64
	}{
		{"taurus-7", "lyon", 50, 20},      // wattmetre1, v2
		{"orion-3", "lyon", 50, 20},       // wattmetre1, v2
		{"gemini-1", "lyon", 100, 10},     // wattmetrev3-1, v3, two PSUs
		{"gros-41", "nancy", 50, 20},      // gros-wattmetre2
		{"yeti-2", "grenoble", 50, 20},    // v2
		{"paradoxe-1", "rennes", 100, 10}, // v3
		{"chirop-3", "lille", 100, 10},    // v3
	}
	for _, tc := range tests {
		t.Run(tc.node, func(t *testing.T) {
			e, _ := newEmu(t, Config{Seed: 9, Monitored: []string{tc.node}}, winterNow)
			a := winterNow.Add(-10 * time.Second)
			rows := rowsOf(t, e, tc.site, vals("nodes", tc.node, "metrics", wpw, "start_time", epoch(a), "end_time", epoch(a.Add(3*time.Second-time.Microsecond))))
			perSec := countBy(rows, func(r jsonRow) string { return sprint(secondOf(t, r)) })
			require.Len(t, perSec, 3)
			for s, n := range perSec {
				require.Equal(t, tc.perSecond, n, "second %s", s)
			}
			seen := map[string]bool{}
			for i, r := range rows {
				require.False(t, seen[r.Timestamp], "duplicate timestamp %s", r.Timestamp)
				seen[r.Timestamp] = true
				us := r.time(t).UnixMicro()
				grid := us / (tc.frameMs * 1000) * (tc.frameMs * 1000)
				require.Less(t, us-grid, int64(maxJitterUs), "jitter of %s", r.Timestamp)
				if i > 0 {
					require.True(t, r.time(t).After(rows[i-1].time(t)))
				}
			}
		})
	}
}

func TestOneHertzIsMeanOfRawFrames(t *testing.T) {
	a := winterNow.Add(-20 * time.Second)
	b := a.Add(4*time.Second - time.Microsecond)
	for _, tc := range []struct{ site, id string }{
		{"lyon", "wattmetre1-port6"}, {"lyon", "wattmetrev3-1-port30"}, {"lyon", "wattmetrev3-1-port31"}, {"nancy", "gros-wattmetre2-port30"},
	} {
		t.Run(tc.id, func(t *testing.T) {
			mon, _ := newEmu(t, Config{Seed: 5, Monitored: []string{"taurus-7", "gemini-1", "gros-41"}}, winterNow)
			plain, _ := newEmu(t, Config{Seed: 5}, winterNow)
			raw := rowsOf(t, mon, tc.site, vals("devices", tc.id, "start_time", epoch(a), "end_time", epoch(b)))
			hz := rowsOf(t, plain, tc.site, vals("devices", tc.id, "start_time", epoch(a), "end_time", epoch(b)))
			require.Len(t, hz, 4)
			sums := map[int64]float64{}
			counts := map[int64]int{}
			for _, r := range raw {
				v := r.float(t)
				require.Equal(t, v, math.Round(v*100)/100, "raw values have 2 decimals")
				sums[secondOf(t, r)] += v
				counts[secondOf(t, r)]++
			}
			for _, r := range hz {
				s := secondOf(t, r)
				require.Equal(t, r.time(t).UnixMicro(), s*1_000_000, "1 Hz rows on whole seconds")
				mean := sums[s] / float64(counts[s])
				require.InDelta(t, mean, r.float(t), 0.005+1e-9, "second %d", s)
				require.Equal(t, r.float(t), math.Round(r.float(t)*100)/100)
			}
		})
	}
}

func TestMultiPSUSum(t *testing.T) {
	for _, monitored := range []bool{false, true} {
		t.Run(sprint("monitored=", monitored), func(t *testing.T) {
			cfg := Config{Seed: 6}
			if monitored {
				cfg.Monitored = []string{"gemini-2"}
			}
			e, _ := newEmu(t, cfg, winterNow)
			a, b := epoch(winterNow.Add(-10*time.Second)), epoch(winterNow.Add(-8*time.Second))
			node := rowsOf(t, e, "lyon", vals("nodes", "gemini-2", "metrics", wpw, "start_time", a, "end_time", b))
			p32 := rowsOf(t, e, "lyon", vals("devices", "wattmetrev3-1-port32", "metrics", wpw, "start_time", a, "end_time", b))
			p33 := rowsOf(t, e, "lyon", vals("devices", "wattmetrev3-1-port33", "metrics", wpw, "start_time", a, "end_time", b))
			require.NotEmpty(t, node)
			require.Equal(t, len(node), len(p32))
			require.Equal(t, len(node), len(p33))
			for i := range node {
				require.Equal(t, "gemini-2", node[i].DeviceID)
				require.Equal(t, map[string]any{"_device_orig": []any{"wattmetrev3-1-port32", "wattmetrev3-1-port33"}}, node[i].Labels)
				require.Equal(t, p32[i].Timestamp, node[i].Timestamp)
				require.Equal(t, p33[i].Timestamp, node[i].Timestamp)
				require.Equal(t, p32[i].float(t)+p33[i].float(t), node[i].float(t))
			}
		})
	}
	// The reference documents agree: gemini-1 on ports 30, 31.
	e, _ := newEmu(t, Config{}, winterNow)
	res := get(t, e, "/stable/sites/lyon/clusters/gemini/nodes/gemini-1")
	require.Equal(t, http.StatusOK, res.status)
	require.Contains(t, res.body, `"pdu":[{"uid":"wattmetrev3-1","port":30,"kind":"wattmetre-only"},{"uid":"wattmetrev3-1","port":31,"kind":"wattmetre-only"}]`)
}

func TestOnlyForAndPDU(t *testing.T) {
	e, _ := newEmu(t, Config{Seed: 7}, winterNow)
	a, b := epoch(winterNow.Add(-10*time.Second)), epoch(winterNow.Add(-1*time.Second))
	require.Empty(t, rowsOf(t, e, "nancy", vals("nodes", "gros-40", "metrics", wpw, "start_time", a, "end_time", b)))
	w41 := rowsOf(t, e, "nancy", vals("nodes", "gros-41", "metrics", wpw, "start_time", a, "end_time", b))
	require.Len(t, w41, 10)
	require.Equal(t, []any{"gros-wattmetre2-port30"}, w41[0].Labels["_device_orig"])
	for _, node := range []string{"gros-40", "gros-41"} {
		pdu := rowsOf(t, e, "nancy", vals("nodes", node, "metrics", "pdu_outlet_power_watt", "start_time", a, "end_time", b))
		require.Len(t, pdu, 9, node)
		want := map[string][]any{"gros-40": {"gros-pdu2-port-20"}, "gros-41": {"gros-pdu3-port-1"}}[node]
		for _, r := range pdu {
			require.Equal(t, want, r.Labels["_device_orig"])
			require.NotContains(t, string(r.Value), ".", "integer watts")
			require.NotEqual(t, 0, r.time(t).Nanosecond(), "fractional timestamps")
		}
	}
}

func TestBMCAndPeriodZero(t *testing.T) {
	a, b := winterNow.Add(-60*time.Second), winterNow.Add(-time.Second)
	t.Run("bmc power every 5 s, integer, sub-second phase", func(t *testing.T) {
		e, _ := newEmu(t, Config{Seed: 8}, winterNow)
		rows := rowsOf(t, e, "lyon", vals("nodes", "taurus-3", "metrics", "bmc_node_power_watt", "start_time", epoch(a), "end_time", epoch(b)))
		require.True(t, len(rows) == 11 || len(rows) == 12, len(rows))
		for i, r := range rows {
			require.Equal(t, map[string]any{}, r.Labels)
			require.NotContains(t, string(r.Value), ".")
			if i > 0 {
				require.Equal(t, 5*time.Second, r.time(t).Sub(rows[i-1].time(t)))
			}
		}
	})
	t.Run("period 0 needs a monitor job", func(t *testing.T) {
		e, _ := newEmu(t, Config{Seed: 8, Monitored: []string{"taurus-4", "paradoxe-2", "gemini-1"}}, winterNow)
		q := func(site, node, metric string) []jsonRow {
			return rowsOf(t, e, site, vals("nodes", node, "metrics", metric, "start_time", epoch(a), "end_time", epoch(b)))
		}
		require.Empty(t, q("lyon", "taurus-3", "bmc_node_power_watthour_total"))
		require.Empty(t, q("rennes", "paradoxe-1", "bmc_node_power_watt"))
		require.Empty(t, q("lyon", "taurus-3", "bmc_cpu_temp_celsius"))
		require.Empty(t, q("lyon", "taurus-3", "prom_node_load1"))
		wh := q("lyon", "taurus-4", "bmc_node_power_watthour_total")
		require.True(t, len(wh) >= 11, len(wh))
		for i := 1; i < len(wh); i++ {
			require.GreaterOrEqual(t, wh[i].float(t), wh[i-1].float(t), "monotone counter")
		}
		require.NotEmpty(t, q("rennes", "paradoxe-2", "bmc_node_power_watt"))
		temps := q("lyon", "taurus-4", "bmc_cpu_temp_celsius")
		require.Equal(t, map[string]int{"1": len(temps) / 2, "2": len(temps) / 2}, countBy(temps, func(r jsonRow) string { return r.Labels["cpu"].(string) }))
		load := q("lyon", "taurus-4", "prom_node_load1")
		require.True(t, len(load) == 4 || len(load) == 3, len(load)) // every 15 s
		gpus := q("lyon", "gemini-1", "prom_DCGM_FI_DEV_POWER_USAGE")
		require.Len(t, countBy(gpus, func(r jsonRow) string { return r.Labels["gpu"].(string) }), 8)
	})
}

func TestMonitorJobTypes(t *testing.T) {
	now := winterNow
	jobs := []Job{
		{ID: 1, Site: "lyon", Nodes: []string{"taurus-3"}, Start: now.Add(-30 * time.Second), Stop: now.Add(-20 * time.Second), Types: []string{"deploy", "monitor=wattmetre"}},
		{ID: 2, Site: "lyon", Nodes: []string{"taurus-4"}, Start: now.Add(-30 * time.Second), Types: []string{"monitor"}},
		{ID: 3, Site: "lyon", Nodes: []string{"taurus-5"}, Start: now.Add(-30 * time.Second), Types: []string{"monitor='bmc_node_power_watthour'"}},
	}
	e, _ := newEmu(t, Config{Seed: 10, Jobs: jobs}, now)
	a, b := epoch(now.Add(-40*time.Second)), epoch(now.Add(-10*time.Second-time.Microsecond))
	rows := rowsOf(t, e, "lyon", vals("nodes", "taurus-3", "metrics", wpw, "start_time", a, "end_time", b))
	perSec := countBy(rows, func(r jsonRow) string { return sprint(secondOf(t, r) - now.Unix()) })
	for s := -40; s < -10; s++ {
		want := 1
		if s >= -30 && s < -20 {
			want = 50
		}
		require.Equal(t, want, perSec[sprint(s)], "second %d", s)
	}
	// monitor=wattmetre does not enable the counter.
	require.Empty(t, rowsOf(t, e, "lyon", vals("nodes", "taurus-3", "metrics", "bmc_node_power_watthour_total", "start_time", a, "end_time", b)))
	// "monitor" enables everything from the job start.
	wh := rowsOf(t, e, "lyon", vals("nodes", "taurus-4", "metrics", "bmc_node_power_watthour_total", "start_time", a, "end_time", b))
	require.Len(t, wh, 4)
	require.False(t, wh[0].time(t).Before(now.Add(-30*time.Second)))
	// The regexp is anchored at the start and may match a prefix.
	require.Len(t, rowsOf(t, e, "lyon", vals("nodes", "taurus-5", "metrics", "bmc_node_power_watthour_total", "start_time", a, "end_time", b)), 4)
	require.Len(t, rowsOf(t, e, "lyon", vals("nodes", "taurus-5", "metrics", wpw, "start_time", a, "end_time", b)), 30)
	// A bad regexp is a configuration error.
	_, err := New(Config{Jobs: []Job{{ID: 1, Nodes: []string{"taurus-1"}, Types: []string{"monitor=("}}}})
	require.Error(t, err)
}

func TestDeterminism(t *testing.T) {
	q := "/stable/sites/lyon/metrics?nodes=taurus-7,gemini-1,orion-3&start_time=" + epoch(winterNow.Add(-30*time.Second)) + "&end_time=" + epoch(winterNow)
	body := func(seed int64) string {
		e, _ := newEmu(t, Config{Seed: seed, Monitored: []string{"orion-3"}}, winterNow)
		res := get(t, e, q)
		require.Equal(t, http.StatusOK, res.status)
		return res.body
	}
	b1 := body(11)
	require.Equal(t, b1, body(11))
	require.NotEqual(t, b1, body(12))
	// The data of a time does not depend on the query window or the clock.
	e1, clk := newEmu(t, Config{Seed: 11}, winterNow)
	w1 := rowsOf(t, e1, "lyon", vals("nodes", "taurus-7", "start_time", epoch(winterNow.Add(-30*time.Second)), "end_time", epoch(winterNow.Add(-20*time.Second))))
	clk.Add(time.Hour)
	w2 := rowsOf(t, e1, "lyon", vals("nodes", "taurus-7", "start_time", epoch(winterNow.Add(-40*time.Second)), "end_time", epoch(winterNow.Add(-10*time.Second))))
	idx := map[string]string{}
	for _, r := range w2 {
		idx[r.Timestamp+r.MetricID] = string(r.Value)
	}
	for _, r := range w1 {
		require.Equal(t, string(r.Value), idx[r.Timestamp+r.MetricID])
	}
}

func TestNodePowerLevels(t *testing.T) {
	e, _ := newEmu(t, Config{Seed: 1}, winterNow)
	var idles []float64
	for _, n := range []string{"taurus-1", "taurus-2", "taurus-3", "orion-1", "nova-2"} {
		rows := rowsOf(t, e, "lyon", vals("nodes", n, "metrics", wpw, "start_time", epoch(winterNow.Add(-60*time.Second)), "end_time", epoch(winterNow.Add(-time.Second))))
		require.Len(t, rows, 60)
		sum := 0.0
		for _, r := range rows {
			v := r.float(t)
			require.True(t, v > 80 && v < 200, v)
			sum += v
		}
		idles = append(idles, sum/60)
	}
	sort.Float64s(idles)
	require.Greater(t, idles[len(idles)-1]-idles[0], 5.0, "nodes have different idle levels")
}

func TestLoadPhases(t *testing.T) {
	now := winterNow
	load := []LoadPhase{{Nodes: []string{"taurus-9"}, Start: now.Add(-60 * time.Second), Stop: now.Add(-30 * time.Second), Util: 1}}
	e, _ := newEmu(t, Config{Seed: 2, Load: load, Monitored: []string{"taurus-9"}}, now)
	plain, _ := newEmu(t, Config{Seed: 2, Monitored: []string{"taurus-9"}}, now)
	q := vals("nodes", "taurus-9", "metrics", "bmc_node_power_watt", "start_time", epoch(now.Add(-55*time.Second)), "end_time", epoch(now.Add(-35*time.Second)))
	busy, idle := rowsOf(t, e, "lyon", q), rowsOf(t, plain, "lyon", q)
	require.Equal(t, len(busy), len(idle))
	for i := range busy {
		require.InDelta(t, 1.04*120, busy[i].float(t)-idle[i].float(t), 2, busy[i].Timestamp)
	}
	// Outside the phase, same values.
	q.Set("start_time", epoch(now.Add(-25*time.Second)))
	q.Set("end_time", epoch(now.Add(-5*time.Second)))
	require.Equal(t, rowsOf(t, plain, "lyon", q), rowsOf(t, e, "lyon", q))
	// The energy counter grows faster while busy.
	wh := func(em *Emulator) float64 {
		rows := rowsOf(t, em, "lyon", vals("nodes", "taurus-9", "metrics", "bmc_node_power_watthour_total", "start_time", epoch(now.Add(-65*time.Second)), "end_time", epoch(now.Add(-25*time.Second))))
		return rows[len(rows)-1].float(t) - rows[0].float(t)
	}
	require.GreaterOrEqual(t, wh(e)-wh(plain), 0.0)
}

func TestBMCNaN(t *testing.T) {
	e, _ := newEmu(t, Config{Seed: 3, BMCNaNRate: 0.3}, winterNow)
	res := get(t, e, "/stable/sites/lyon/metrics?nodes=taurus-1&metrics=bmc_node_power_watt&start_time="+epoch(winterNow.Add(-10*time.Minute))+"&end_time="+epoch(winterNow))
	require.Equal(t, http.StatusOK, res.status)
	require.Contains(t, res.body, `"value":"NaN","labels":{"value_str": "N/A"}}`)
	rows := decodeRows(t, res.body)
	nan := 0
	for _, r := range rows {
		if strings.Contains(string(r.Value), "NaN") {
			nan++
			require.Equal(t, map[string]any{"value_str": "N/A"}, r.Labels)
		} else {
			require.Equal(t, map[string]any{}, r.Labels)
		}
	}
	require.Greater(t, nan, 10)
	require.Less(t, nan, 110)
}
