package emulator

import (
	"encoding/json"
	"math"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

var raplMetrics = raplPackageMetric + "," + raplDRAMMetric

// promIDs returns the id list of a cluster's prom_default_metrics entry as
// served by the cluster document.
func promIDs(t *testing.T, e *Emulator, site, cluster string) []string {
	t.Helper()
	res := get(t, e, "/stable/sites/"+site+"/clusters/"+cluster)
	require.Equal(t, http.StatusOK, res.status, res.body)
	var doc struct {
		Metrics []MetricDesc `json:"metrics"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.body), &doc))
	for _, md := range doc.Metrics {
		if md.Name == "prom_default_metrics" {
			return sourceIDs(md.Source.ID)
		}
	}
	t.Fatalf("%s/%s: no prom_default_metrics", site, cluster)
	return nil
}

func TestRAPLCatalogue(t *testing.T) {
	clusters := []struct{ site, cluster string }{
		{"lyon", "taurus"}, {"lyon", "orion"}, {"lyon", "gemini"}, {"nancy", "gros"},
		{"grenoble", "yeti"}, {"rennes", "paradoxe"}, {"toulouse", "montcalm"},
	}
	for _, tc := range []struct {
		mode   RAPLMode
		listed func(cluster string) bool
	}{
		{RAPLDefault, func(c string) bool { return c != "taurus" }},
		{RAPLAll, func(string) bool { return true }},
		{RAPLOff, func(string) bool { return false }},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			e, _ := newEmu(t, Config{RAPL: tc.mode}, winterNow)
			for _, c := range clusters {
				ids := promIDs(t, e, c.site, c.cluster)
				for _, id := range raplIDs {
					require.Equal(t, tc.listed(c.cluster), contains(ids, id), "%s/%s %s", c.site, c.cluster, id)
				}
				// The node_* names stay sorted, kwollect_custom last.
				require.Equal(t, "kwollect_custom", ids[len(ids)-1], c.cluster)
				require.True(t, sort.StringsAreSorted(ids[:len(ids)-1]), "%s: %v", c.cluster, ids)
				require.Len(t, ids, 23+2*btoi(tc.listed(c.cluster)), c.cluster)
			}
		})
	}
	t.Run("the caller's topology is left alone", func(t *testing.T) {
		topo := DefaultTopology()
		before := DefaultTopology()
		for _, mode := range []RAPLMode{RAPLAll, RAPLOff} {
			_, err := New(Config{Topology: topo, RAPL: mode})
			require.NoError(t, err)
		}
		require.Empty(t, cmp.Diff(before, topo))
	})
	t.Run("modes", func(t *testing.T) {
		for _, m := range []RAPLMode{RAPLDefault, RAPLAll, RAPLOff} {
			got, err := ParseRAPLMode(" " + strings.ToUpper(m.String()))
			require.NoError(t, err)
			require.Equal(t, m, got)
		}
		_, err := ParseRAPLMode("on")
		require.ErrorContains(t, err, "want default, all or off")
		_, err = New(Config{RAPL: RAPLMode(7)})
		require.ErrorContains(t, err, "unknown RAPL mode 7")
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestRAPLSeries(t *testing.T) {
	now := winterNow
	a, b := now.Add(-2*time.Minute), now.Add(-time.Second)
	for _, tc := range []struct {
		name    string
		mode    RAPLMode
		site    string
		node    string
		sockets int // 0 = no RAPL rows
	}{
		{"two sockets", RAPLDefault, "lyon", "orion-3", 2},
		{"two PSUs", RAPLDefault, "lyon", "gemini-2", 2},
		{"one socket", RAPLDefault, "nancy", "gros-41", 1},
		{"four sockets", RAPLDefault, "grenoble", "yeti-1", 4},
		{"BMC-only cluster", RAPLDefault, "toulouse", "montcalm-2", 2},
		{"reference catalogue", RAPLDefault, "lyon", "taurus-7", 0},
		{"reference catalogue, all", RAPLAll, "lyon", "taurus-7", 2},
		{"off", RAPLOff, "lyon", "orion-3", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := newEmu(t, Config{Seed: 5, RAPL: tc.mode, Monitored: []string{tc.node}}, now)
			rows := rowsOf(t, e, tc.site, vals("nodes", tc.node, "metrics", raplMetrics+",prom_node_load1", "start_time", epoch(a), "end_time", epoch(b)))
			var load []time.Time
			series := map[string][]jsonRow{}
			for _, r := range rows {
				if r.MetricID == "prom_node_load1" {
					load = append(load, r.time(t))
					continue
				}
				require.Equal(t, tc.node, r.DeviceID)
				require.Len(t, r.Labels, 1, r.Labels)
				series[r.MetricID+"/"+r.Labels["index"].(string)] = append(series[r.MetricID+"/"+r.Labels["index"].(string)], r)
			}
			require.True(t, len(load) == 8 || len(load) == 7, len(load)) // every 15 s
			require.Len(t, series, 2*tc.sockets)
			for s := 0; s < tc.sockets; s++ {
				for _, m := range []string{raplPackageMetric, raplDRAMMetric} {
					rs := series[m+"/"+sprint(s)]
					require.Len(t, rs, len(load), "%s socket %d", m, s)
					for i, r := range rs {
						// One scrape: the timestamps of node_load1.
						require.Equal(t, load[i], r.time(t))
						v := r.float(t)
						require.True(t, v >= 0 && v < RAPLMaxJoules, "%v", v)
						// energy_uj / 1e6: at most 6 decimals.
						frac := string(r.Value)
						if _, f, ok := strings.Cut(frac, "."); ok {
							require.LessOrEqual(t, len(f), 6, frac)
						}
						if i > 0 {
							require.Greater(t, v, rs[i-1].float(t), "%s socket %d row %d (no wrap expected in 2 min)", m, s, i)
						}
					}
				}
			}
			// Not monitored: no rows (period 0, like every prom_* metric).
			e2, _ := newEmu(t, Config{Seed: 5, RAPL: tc.mode}, now)
			require.Empty(t, rowsOf(t, e2, tc.site, vals("nodes", tc.node, "metrics", raplMetrics, "start_time", epoch(a), "end_time", epoch(b))))
		})
	}
	t.Run("wire format", func(t *testing.T) {
		e, _ := newEmu(t, Config{Seed: 5, Monitored: []string{"orion-3"}}, now)
		res := get(t, e, "/stable/sites/lyon/metrics?nodes=orion-3&metrics="+raplPackageMetric+"&start_time="+epoch(now.Add(-15*time.Second))+"&end_time="+epoch(now))
		require.Equal(t, http.StatusOK, res.status)
		require.Contains(t, res.body, `"metric_id":"prom_node_rapl_package_joules_total","value":`)
		require.Contains(t, res.body, `"labels":{"index": "0"}}`)
		require.Contains(t, res.body, `"labels":{"index": "1"}}]`)
	})
	t.Run("monitor=<regexp> job", func(t *testing.T) {
		e, _ := newEmu(t, Config{Seed: 5, Jobs: []Job{{ID: 1, Nodes: []string{"orion-1"}, Start: now.Add(-time.Hour), Types: []string{"monitor=prom_node_rapl_package"}}}}, now)
		rows := rowsOf(t, e, "lyon", vals("nodes", "orion-1", "metrics", raplMetrics+",prom_node_load1", "start_time", epoch(a), "end_time", epoch(b)))
		require.NotEmpty(t, rows)
		require.Equal(t, map[string]int{raplPackageMetric: len(rows)}, countBy(rows, func(r jsonRow) string { return r.MetricID }))
	})
}

func TestRAPLCounter(t *testing.T) {
	maxUJ := float64(raplMaxUJ)
	for _, tc := range []struct {
		name   string
		base   float64
		joules float64
		want   float64
	}{
		{"zero", 0, 0, 0},
		{"whole µJ", 0, 1.0000019, 1.000001},
		{"base", 123456789, 1, 124.456789},
		{"just below the wrap", maxUJ - 1, 0, 262143.328849},
		{"wraps to 0", maxUJ - 1, 1e-6, 0},
		{"past the wrap", maxUJ - 1, 2.5e-6, 0.000001},
		{"many wraps", 0, 3*RAPLMaxJoules + 10, 10},
		{"ten years at 400 W", 5, 400 * 86400 * 3653, float64((5+400*86400*3653*1_000_000)%raplMaxUJ) / 1e6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.InDelta(t, tc.want, raplCounter(tc.base, tc.joules), 1.5e-6)
		})
	}
}

// TestRAPLZeroLevel checks that the RAPL energy never steps back, even over
// a signal's 0 W level, where a rounding error would look like a wrap.
func TestRAPLZeroLevel(t *testing.T) {
	start := winterNow.Add(-time.Hour)
	for _, sig := range []Signal{
		{Kind: SignalConstant, Watts: 0},
		{Kind: SignalSquare, Low: 0, High: 300, Period: 20 * time.Second, Duty: 0.3},
		{Kind: SignalRamp, From: 0, To: 250, Period: 7 * time.Second},
		{Kind: SignalConstant, Watts: 20}, // below the static part
	} {
		t.Run(sig.String(), func(t *testing.T) {
			n := newNodeModel(3, "orion-2", 120)
			require.NoError(t, n.addSignal(SignalSpec{Nodes: []string{"orion-2"}, Start: start, Stop: start.Add(10 * time.Minute), Signal: sig}))
			t0 := start.Add(-time.Minute).UnixMicro()
			zero := func(ts int64) bool { return n.signalAt(ts) != nil && sig.At(time.UnixMicro(ts)) == 0 }
			const step = 37_003 // µs
			prevP, prevD := n.raplEnergy(t0)
			stills := 0
			for ts := t0 + step; ts < t0+12*60*usPerSec; ts += step {
				p, d := n.raplEnergy(ts)
				require.GreaterOrEqual(t, p, prevP, "package at %d", ts)
				require.GreaterOrEqual(t, d, prevD, "dram at %d", ts)
				if zero(ts) && zero(ts-step) {
					require.Equal(t, prevP, p, "0 W: the counters stand still")
					require.Equal(t, prevD, d)
					stills++
				}
				prevP, prevD = p, d
			}
			if sig.Kind != SignalRamp && sig.lowest() == 0 {
				require.Greater(t, stills, 1000, "0 W stretches checked")
			}
		})
	}
}

// TestRAPLConsistency integrates the wattmetre's 1 Hz rows and the RAPL
// counters (with wrap handling) over the same window: package and DRAM
// energies follow the model's fractions of the wall energy.
func TestRAPLConsistency(t *testing.T) {
	now := winterNow
	const seed = 11
	for _, tc := range []struct {
		name     string
		site     string
		node     string
		load     float64 // utilisation over the window
		sig      *Signal
		ratio    [2]float64 // (package + DRAM) / wall
		minWraps int        // per series
	}{
		{name: "idle", site: "lyon", node: "orion-3", ratio: [2]float64{0.55, 0.70}},
		{name: "idle, two PSUs", site: "lyon", node: "gemini-1", ratio: [2]float64{0.55, 0.70}},
		{name: "idle, v3, one socket", site: "nancy", node: "gros-50", ratio: [2]float64{0.55, 0.70}},
		{name: "loaded", site: "lyon", node: "nova-2", load: 0.9, ratio: [2]float64{0.70, 0.85}},
		{name: "square with a 0 W level", site: "rennes", node: "paradoxe-1",
			sig: &Signal{Kind: SignalSquare, Low: 0, High: 400, Period: 20 * time.Second}, ratio: [2]float64{0.92, 0.94}},
		// Per socket, ~6.5 kW of package (~98 kJ per scrape, under half the
		// wrap) and 600 W of DRAM: every counter wraps within the window.
		{name: "15 kW: the counters wrap", site: "lille", node: "chirop-1",
			sig: &Signal{Kind: SignalConstant, Watts: 15000}, ratio: [2]float64{0.92, 0.93}, minWraps: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Seed: seed, Jobs: []Job{{ID: 1, Nodes: []string{tc.node}, Start: now.Add(-time.Hour), Types: []string{"monitor=prom_"}}}}
			if tc.load > 0 {
				cfg.Load = []LoadPhase{{Nodes: []string{tc.node}, Start: now.Add(-time.Hour), Util: tc.load}}
			}
			if tc.sig != nil {
				cfg.Signals = []SignalSpec{{Nodes: []string{tc.node}, Start: now.Add(-time.Hour), Signal: *tc.sig}}
			}
			e, _ := newEmu(t, cfg, now)
			a, b := now.Add(-11*time.Minute), now.Add(-time.Minute)
			rows := rowsOf(t, e, tc.site, vals("nodes", tc.node, "metrics", raplMetrics+","+wpw, "start_time", epoch(a), "end_time", epoch(b)))

			// Counter energy, per domain, from the differences of each series.
			type series struct {
				first, last time.Time
				v           float64
				started     bool
			}
			st := map[string]*series{}
			energy := map[string]float64{}
			wraps := map[string]int{}
			var r0, rN time.Time
			var watt []jsonRow
			for _, r := range rows {
				if r.MetricID == wpw {
					watt = append(watt, r)
					continue
				}
				key := r.MetricID + "/" + r.Labels["index"].(string)
				s := st[key]
				if s == nil {
					s = &series{}
					st[key] = s
				}
				v, ts := r.float(t), r.time(t)
				if s.started {
					d := v - s.v
					if d < 0 {
						require.Greater(t, -d, RAPLMaxJoules/2, "%s steps back at %s", key, r.Timestamp)
						d += RAPLMaxJoules
						wraps[key]++
					}
					energy[r.MetricID] += d
				} else {
					s.first = ts
				}
				s.started, s.v, s.last = true, v, ts
				r0, rN = s.first, s.last
			}
			require.NotEmpty(t, st)
			for key, s := range st {
				require.Equal(t, r0, s.first, key)
				require.Equal(t, rN, s.last, key)
				require.GreaterOrEqual(t, wraps[key], tc.minWraps, key)
			}

			// Wall energy over [r0, rN]: each 1 Hz row is its second's mean.
			wall := 0.0
			for _, r := range watt {
				s := r.time(t)
				lo, hi := maxTime(s, r0), minTime(s.Add(time.Second), rN)
				if hi.After(lo) {
					wall += r.float(t) * hi.Sub(lo).Seconds()
				}
			}
			T := rN.Sub(r0).Seconds()
			require.Greater(t, T, 500.0)

			static := raplStaticFrac * newNodeModel(seed, tc.node, 120).idle
			if tc.sig != nil {
				static = min(static, tc.sig.lowest()/2)
			}
			wantPkg := raplPackageFrac * (wall - static*T)
			wantDRAM := raplDRAMFrac * wall
			require.InEpsilon(t, wantPkg, energy[raplPackageMetric], 0.005, "package: counters %.0f J, model %.0f J", energy[raplPackageMetric], wantPkg)
			require.InEpsilon(t, wantDRAM, energy[raplDRAMMetric], 0.005, "dram")
			ratio := (energy[raplPackageMetric] + energy[raplDRAMMetric]) / wall
			t.Logf("wall %.0f J over %.0f s, package %.0f J (model %.0f), dram %.0f J (model %.0f), ratio %.3f, wraps %v", wall, T, energy[raplPackageMetric], wantPkg, energy[raplDRAMMetric], wantDRAM, ratio, wraps)
			require.True(t, ratio >= tc.ratio[0] && ratio <= tc.ratio[1], "RAPL / wall = %.3f", ratio)
			dram := energy[raplDRAMMetric] / wall
			require.True(t, dram >= 0.06 && dram <= 0.10, "DRAM / wall = %.3f", dram)
		})
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// TestRAPLAsRate: as_rate turns the counters into watts; under a constant
// signal each socket's package power is constant, except at a wrap, where
// Kwollect's running max (not the true range) gives a lower rate.
func TestRAPLAsRate(t *testing.T) {
	now := winterNow
	const seed, node, watts = 2, "chirop-2", 15000.0
	e, _ := newEmu(t, Config{Seed: seed, Monitored: []string{node},
		Signals: []SignalSpec{{Nodes: []string{node}, Signal: Signal{Kind: SignalConstant, Watts: watts}}}}, now)
	rows := rowsOf(t, e, "lille", vals("nodes", node, "metrics", raplPackageMetric, "as_rate", "true",
		"start_time", epoch(now.Add(-20*time.Minute)), "end_time", epoch(now)))
	static := min(raplStaticFrac*newNodeModel(seed, node, 120).idle, watts/2)
	for _, tc := range []struct {
		index string
		share float64
	}{{"0", raplShare(0, 2, 0.06)}, {"1", raplShare(1, 2, 0.06)}} {
		want := raplPackageFrac * (watts - static) * tc.share
		var exact, low int
		for i, r := range rows {
			if r.Labels["index"] != tc.index || string(r.Value) == "null" {
				continue
			}
			v := r.float(t)
			switch {
			case math.Abs(v-want) < 1e-3*want:
				exact++
			case v < want:
				low++ // a wrap
			default:
				t.Fatalf("row %d: %v W, want %v W", i, v, want)
			}
		}
		// ~6.5 kW per socket: a wrap every ~40 s, ~30 of the 80 scrapes.
		require.Greater(t, exact, 40, "socket %s", tc.index)
		require.Greater(t, low, 20, "socket %s", tc.index)
	}
}
