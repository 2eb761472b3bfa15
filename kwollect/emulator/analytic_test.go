package emulator

import (
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// epoch0 is a whole multiple of every test period (10 s, 1.5 s, 300 ms...).
var epoch0 = time.Unix(1_736_931_600, 0) // 2025-01-15T09:00:00Z

var (
	sigConst  = Signal{Kind: SignalConstant, Watts: 150}
	sigRamp   = Signal{Kind: SignalRamp, From: 100, To: 200, Period: 10 * time.Second}
	sigDown   = Signal{Kind: SignalRamp, From: 250, To: 50, Period: 1500 * time.Millisecond}
	sigSquare = Signal{Kind: SignalSquare, Low: 100, High: 200, Period: 10 * time.Second, Duty: 0.25}
	sigHalf   = Signal{Kind: SignalSquare, Low: 80, High: 180, Period: 300 * time.Millisecond}
	sigFull   = Signal{Kind: SignalSquare, Low: 0, High: 90, Period: time.Second, Duty: 1}
	sigOrigin = Signal{Kind: SignalRamp, From: 0, To: 1000, Period: 7 * time.Second, Origin: epoch0.Add(1234567 * time.Microsecond)}
)

// riemann integrates At over [a, b] with n midpoint steps.
func riemann(s Signal, a, b time.Time, n int) float64 {
	h := b.Sub(a) / time.Duration(n)
	rest := b.Sub(a) - h*time.Duration(n)
	sum := 0.0
	t := a
	for i := 0; i < n; i++ {
		sum += s.At(t.Add(h/2)) * h.Seconds()
		t = t.Add(h)
	}
	if rest > 0 {
		sum += s.At(t.Add(rest/2)) * rest.Seconds()
	}
	return sum
}

func TestSignalEnergyExact(t *testing.T) {
	at := func(sec float64) time.Time { return epoch0.Add(time.Duration(sec * float64(time.Second))) }
	tests := []struct {
		name  string
		sig   Signal
		a, b  float64 // seconds after epoch0
		want  float64 // J
		after float64 // expected P at a
	}{
		{"constant", sigConst, 0.3, 2.8, 375, 150},
		{"ramp second half then first half", sigRamp, 5, 15, 1500, 150},
		{"ramp one second", sigRamp, 3, 4, 135, 130},
		{"ramp whole periods", sigRamp, -20, 30, 7500, 100},
		{"square across two periods", sigSquare, 1.25, 13.75, 1625, 200},
		{"square low part", sigSquare, 2.5, 10, 750, 100},
		{"square second 2 (half high)", sigSquare, 2, 3, 150, 200},
		{"duty 1 is always high", sigFull, 0.1, 3.6, 315, 90},
		{"reversed window", sigConst, 2, 1, -150, 150},
		{"empty window", sigRamp, 7, 7, 0, 170},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.InDelta(t, tc.want, tc.sig.Energy(at(tc.a), at(tc.b)), 1e-9)
			require.Equal(t, tc.after, tc.sig.At(at(tc.a)))
			if tc.a != tc.b {
				require.InDelta(t, tc.want/(tc.b-tc.a), tc.sig.Mean(at(tc.a), at(tc.b)), 1e-9)
			} else {
				require.Equal(t, tc.after, tc.sig.Mean(at(tc.a), at(tc.b)))
			}
		})
	}
}

func TestSignalEnergyMatchesRiemann(t *testing.T) {
	sigs := map[string]Signal{"constant": sigConst, "ramp": sigRamp, "ramp down 1.5s": sigDown, "square duty .25": sigSquare,
		"square 300ms": sigHalf, "square duty 1": sigFull, "ramp with origin": sigOrigin}
	// Windows start and end mid-second and mid-period, with sub-µs parts.
	windows := []struct{ a, b time.Duration }{
		{1234567891 * time.Nanosecond, 3765432109 * time.Nanosecond},
		{-7*time.Second - 333*time.Millisecond, 12*time.Second + 777777*time.Microsecond},
		{4*time.Second + 999999*time.Microsecond, 5*time.Second + 1*time.Microsecond},
		{250 * time.Millisecond, 37*time.Second + 125*time.Millisecond},
	}
	for name, s := range sigs {
		for _, w := range windows {
			a, b := epoch0.Add(w.a), epoch0.Add(w.b)
			got := s.Energy(a, b)
			// 400k midpoint steps: error at most jump × step per
			// discontinuity (≤ 1000 W × 0.11 ms × 10), exact for linear parts.
			want := riemann(s, a, b, 400_000)
			require.InDelta(t, want, got, 0.05+1e-9*math.Abs(want), "%s over [%v, %v]", name, w.a, w.b)
			// Additivity at an arbitrary split point.
			m := a.Add(b.Sub(a) / 3)
			require.InDelta(t, got, s.Energy(a, m)+s.Energy(m, b), 1e-6)
			require.InDelta(t, got/b.Sub(a).Seconds(), s.Mean(a, b), 1e-9)
		}
	}
}

func TestSignalAt(t *testing.T) {
	tests := []struct {
		sig  Signal
		off  time.Duration
		want float64
	}{
		{sigRamp, 0, 100},
		{sigRamp, 2500 * time.Millisecond, 125},
		{sigRamp, 10*time.Second - time.Microsecond, 100 + 100*(1-1e-7)},
		{sigRamp, -2 * time.Second, 180}, // periods before epoch0 too
		{sigSquare, 2499999 * time.Microsecond, 200},
		{sigSquare, 2500 * time.Millisecond, 100},
		{sigSquare, 10 * time.Second, 200},
		{sigHalf, 149 * time.Millisecond, 180},
		{sigHalf, 150 * time.Millisecond, 80},
		{sigOrigin, 1234567 * time.Microsecond, 0},
		{sigOrigin, 1234567*time.Microsecond + 3500*time.Millisecond, 500},
	}
	for _, tc := range tests {
		require.InDelta(t, tc.want, tc.sig.At(epoch0.Add(tc.off)), 1e-9, "%v at %v", tc.sig, tc.off)
	}
	// Before 1970 as well.
	old := time.Date(1960, 1, 1, 0, 0, 5, 0, time.UTC)
	require.Equal(t, 150.0, sigRamp.At(old))
}

func TestParseSignal(t *testing.T) {
	base := epoch0.Add(123456789 * time.Nanosecond)
	tests := []struct {
		spec string
		want SignalSpec
	}{
		{"nodes=taurus-7,taurus-8;kind=constant;watts=150", SignalSpec{Nodes: []string{"taurus-7", "taurus-8"}, Signal: sigConst}},
		{" nodes = taurus-7 ; KIND=Ramp;from=100;to=200;period=10s;", SignalSpec{Nodes: []string{"taurus-7"}, Signal: sigRamp}},
		{"nodes=gemini-1;kind=square;low=100;high=200;period=10s;duty=0.25;start=-5m;stop=+5m",
			SignalSpec{Nodes: []string{"gemini-1"}, Signal: sigSquare, Start: epoch0.Add(-5*time.Minute + 123457*time.Microsecond).UTC(), Stop: epoch0.Add(5*time.Minute + 123457*time.Microsecond).UTC()}},
		{"nodes=x;kind=square;low=0;high=1e6;period=1us", SignalSpec{Nodes: []string{"x"}, Signal: Signal{Kind: SignalSquare, High: 1e6, Period: time.Microsecond, Duty: 0.5}}},
		{"nodes=x;kind=ramp;from=1;to=2;period=1s;start=1736931600;origin=start", SignalSpec{Nodes: []string{"x"},
			Signal: Signal{Kind: SignalRamp, From: 1, To: 2, Period: time.Second, Origin: epoch0.UTC()}, Start: epoch0.UTC()}},
		{"nodes=x;kind=ramp;from=1;to=2;period=1s;origin=2025-01-15T10:00:00.5+01:00", SignalSpec{Nodes: []string{"x"},
			Signal: Signal{Kind: SignalRamp, From: 1, To: 2, Period: time.Second, Origin: epoch0.Add(500 * time.Millisecond).UTC()}}},
	}
	for _, tc := range tests {
		got, err := ParseSignal(tc.spec, base)
		require.NoError(t, err, tc.spec)
		require.Empty(t, cmp.Diff(tc.want, got), tc.spec)
		back, err := ParseSignal(got.String(), base)
		require.NoError(t, err, got.String())
		require.Empty(t, cmp.Diff(got, back), got.String())
	}
	bad := map[string]string{
		"kind=constant;watts=1":                                "no nodes",
		"nodes=x;watts=1":                                      "no kind",
		"nodes=x;kind=sine;watts=1":                            "unknown kind",
		"nodes=x;kind=constant":                                "watts missing",
		"nodes=x;kind=constant;watts=-1":                       "want watts",
		"nodes=x;kind=constant;watts=NaN":                      "not a number",
		"nodes=x;kind=constant;watts=1e7":                      "want watts",
		"nodes=x;kind=constant;watts=1;period=1s":              "does not apply",
		"nodes=x;kind=constant;watts=1;origin=0":               "does not apply",
		"nodes=x;kind=ramp;from=1;to=2":                        "period missing",
		"nodes=x;kind=ramp;from=1;to=2;period=0s":              "period",
		"nodes=x;kind=ramp;from=1;to=2;period=1500ns":          "whole microseconds",
		"nodes=x;kind=ramp;from=1;to=2;period=1s;duty=0.5":     "does not apply",
		"nodes=x;kind=square;low=1;high=2;period=1s;duty=0":    "duty",
		"nodes=x;kind=square;low=1;high=2;period=1s;duty=2":    "duty",
		"nodes=x;kind=constant;watts=1;start=+5m;stop=-5m":     "stop must be after start",
		"nodes=x;kind=constant;watts=1;start=later":            "start=",
		"nodes=x;kind=constant;watts=1;watts=2":                "twice",
		"nodes=x;kind=constant;watts=1;util=1":                 "unknown key",
		"nodes=x;kind=constant;watts":                          "not key=value",
		"nodes=x;kind=ramp;from=1;to=2;period=1s;origin=start": "without start",
	}
	for spec, msg := range bad {
		_, err := ParseSignal(spec, base)
		require.ErrorContains(t, err, msg, spec)
	}
}

func TestParseGap(t *testing.T) {
	base := epoch0
	g, err := ParseGap("nodes=taurus-7, gemini-1;start=-5m;stop=-4m;metrics=wattmetre_power_watt,bmc_node_power_watt", base)
	require.NoError(t, err)
	require.Empty(t, cmp.Diff(Gap{Nodes: []string{"taurus-7", "gemini-1"}, Metrics: []string{wpw, "bmc_node_power_watt"},
		Start: base.Add(-5 * time.Minute).UTC(), Stop: base.Add(-4 * time.Minute).UTC()}, g))
	back, err := ParseGap(g.String(), base)
	require.NoError(t, err)
	require.Empty(t, cmp.Diff(g, back))
	g, err = ParseGap("nodes=taurus-7", base)
	require.NoError(t, err)
	require.Empty(t, cmp.Diff(Gap{Nodes: []string{"taurus-7"}, Start: base.UTC()}, g))
	for spec, msg := range map[string]string{
		"start=0":                     "no nodes",
		"nodes=x;start=+1m;stop=+1m":  "stop must be after start",
		"nodes=x;kind=constant":       "unknown key",
		"nodes=x;stop=yesterday-ish":  "stop=",
		"nodes=x;metrics=a;metrics=b": "twice",
		"nodes=x;stop":                "not key=value",
	} {
		_, err := ParseGap(spec, base)
		require.ErrorContains(t, err, msg, spec)
	}
}

// sigRows returns the values of the rows of one series over [a, b].
func sigRows(t *testing.T, e *Emulator, site string, params url.Values) ([]time.Time, []float64) {
	t.Helper()
	var ts []time.Time
	var vs []float64
	for _, r := range rowsOf(t, e, site, params) {
		ts = append(ts, r.time(t))
		vs = append(vs, r.float(t))
	}
	return ts, vs
}

func TestSignalOneHertzRows(t *testing.T) {
	now := epoch0.Add(time.Minute)
	a := epoch0 // a period boundary of every signal
	b := a.Add(9 * time.Second)
	tests := []struct {
		name, site, id string
		sig            Signal
		want           []float64
	}{
		{"constant", "lyon", "taurus-7", sigConst, []float64{150, 150, 150, 150, 150, 150, 150, 150, 150, 150}},
		{"ramp", "lyon", "taurus-7", sigRamp, []float64{105, 115, 125, 135, 145, 155, 165, 175, 185, 195}},
		{"square", "lyon", "taurus-7", sigSquare, []float64{200, 200, 150, 100, 100, 100, 100, 100, 100, 100}},
		// 150 ms high every 300 ms: 0.55 s, 0.5 s, 0.45 s high per second.
		{"square 300ms", "lyon", "taurus-7", sigHalf, []float64{135, 130, 125, 135, 130, 125, 135, 130, 125, 135}},
		// ramp 250 → 50 over 1.5 s: the 1 s means repeat every 3 s.
		{"ramp 1.5s", "nancy", "gros-41", sigDown, []float64{183.33, 150, 116.67, 183.33, 150, 116.67, 183.33, 150, 116.67, 183.33}},
		// Multi-PSU: port 30 draws 48 %, port 31 52 %.
		{"gemini port 30", "lyon", "wattmetrev3-1-port30", sigConst, []float64{72, 72, 72, 72, 72, 72, 72, 72, 72, 72}},
		{"gemini port 31", "lyon", "wattmetrev3-1-port31", sigRamp, []float64{54.6, 59.8, 65, 70.2, 75.4, 80.6, 85.8, 91, 96.2, 101.4}},
		{"gemini sum", "lyon", "gemini-1", sigConst, []float64{150, 150, 150, 150, 150, 150, 150, 150, 150, 150}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			node := tc.id
			if strings.HasPrefix(node, "wattmetre") {
				node = "gemini-1"
			}
			e, _ := newEmu(t, Config{Seed: 3, Signals: []SignalSpec{{Nodes: []string{node}, Signal: tc.sig}}}, now)
			ts, vs := sigRows(t, e, tc.site, vals("nodes", tc.id, "metrics", wpw, "start_time", epoch(a), "end_time", epoch(b)))
			require.Empty(t, cmp.Diff(tc.want, vs, cmp.Comparer(func(x, y float64) bool { return math.Abs(x-y) < 1e-9 })))
			for i, tm := range ts {
				require.True(t, tm.Equal(a.Add(time.Duration(i)*time.Second)))
			}
			if node == tc.id && node != "gemini-1" {
				// Single port: the 1 Hz row is the exact mean, rounded.
				for i, tm := range ts {
					require.Equal(t, round2(tc.sig.Mean(tm, tm.Add(time.Second))), vs[i])
				}
			}
		})
	}
}

func TestSignalRawFramesAndOtherMetrics(t *testing.T) {
	now := epoch0.Add(time.Minute)
	a := epoch0.Add(2*time.Second + 300*time.Millisecond)
	b := a.Add(5*time.Second - time.Microsecond)
	for _, sig := range []Signal{sigRamp, sigSquare, sigHalf, sigDown} {
		t.Run(sig.String(), func(t *testing.T) {
			e, _ := newEmu(t, Config{Seed: 4, Monitored: []string{"taurus-7", "gros-41", "gemini-1"},
				Signals: []SignalSpec{{Nodes: []string{"taurus-7", "gros-41", "gemini-1"}, Signal: sig}}}, now)
			// Raw frames: P at the (jittered) frame timestamp, 2 decimals.
			ts, vs := sigRows(t, e, "lyon", vals("nodes", "taurus-7", "metrics", wpw, "start_time", epoch(a), "end_time", epoch(b)))
			require.Len(t, ts, 5*50)
			jittered := 0
			for i, tm := range ts {
				require.Equal(t, round2(sig.At(tm)), vs[i], "frame %v", tm)
				if tm.UnixMicro()%20_000 != 0 {
					jittered++
				}
			}
			require.Greater(t, jittered, 200, "timestamps keep their jitter")
			// Multi-PSU raw frames: each port its share, 100 Hz.
			for dev, share := range map[string]float64{"wattmetrev3-1-port30": 0.48, "wattmetrev3-1-port31": 0.52} {
				ts, vs := sigRows(t, e, "lyon", vals("devices", dev, "metrics", wpw, "start_time", epoch(a), "end_time", epoch(b)))
				require.Len(t, ts, 5*100)
				for i, tm := range ts {
					require.Equal(t, round2(share*sig.At(tm)), vs[i], "%s frame %v", dev, tm)
				}
			}
			// BMC and PDU: P(ts) rounded to the watt, no noise.
			for _, m := range []string{"bmc_node_power_watt", "pdu_outlet_power_watt"} {
				ts, vs := sigRows(t, e, "nancy", vals("nodes", "gros-41", "metrics", m, "start_time", epoch(a), "end_time", epoch(b.Add(10*time.Second))))
				require.NotEmpty(t, ts, m)
				for i, tm := range ts {
					require.Equal(t, math.Round(sig.At(tm)), vs[i], "%s at %v", m, tm)
				}
			}
			// The Wh counter integrates P.
			ts, vs = sigRows(t, e, "nancy", vals("nodes", "gros-41", "metrics", "bmc_node_power_watthour_total", "start_time", epoch(a), "end_time", epoch(a.Add(50*time.Second))))
			require.Len(t, ts, 10)
			wh := sig.Energy(ts[0], ts[9]) / 3600
			require.InDelta(t, wh, vs[9]-vs[0], 1)
		})
	}
}

func TestSignalBounds(t *testing.T) {
	now := epoch0.Add(time.Minute)
	a, b := epoch0, epoch0.Add(20*time.Second)
	start, stop := epoch0.Add(5*time.Second), epoch0.Add(12*time.Second+500*time.Millisecond)
	plain, _ := newEmu(t, Config{Seed: 6}, now)
	e, _ := newEmu(t, Config{Seed: 6, Signals: []SignalSpec{{Nodes: []string{"taurus-7"}, Start: start, Stop: stop, Signal: sigConst},
		{Nodes: []string{"taurus-7"}, Start: stop, Signal: Signal{Kind: SignalConstant, Watts: 10}}}}, now)
	q := vals("nodes", "taurus-7", "metrics", wpw, "start_time", epoch(a), "end_time", epoch(b))
	pts, pvs := sigRows(t, plain, "lyon", q)
	ts, vs := sigRows(t, e, "lyon", q)
	require.Len(t, ts, 21)
	require.Equal(t, pts, ts)
	for i, tm := range ts {
		switch {
		case tm.Before(start):
			require.Equal(t, pvs[i], vs[i], "model before start")
		case tm.Before(stop.Add(-time.Second)):
			require.Equal(t, 150.0, vs[i])
		case tm.Before(stop):
			require.Equal(t, 80.0, vs[i], "half 150 W, half 10 W (frame means)")
		default:
			require.Equal(t, 10.0, vs[i])
		}
	}
	// Overlapping signals on a node are refused.
	_, err := New(Config{Signals: []SignalSpec{{Nodes: []string{"taurus-7"}, Signal: sigConst},
		{Nodes: []string{"taurus-7"}, Start: start, Signal: sigConst}}})
	require.ErrorContains(t, err, "overlapping")
	_, err = New(Config{Signals: []SignalSpec{{Nodes: []string{"nope-1"}, Signal: sigConst}}})
	require.ErrorContains(t, err, "unknown node")
	_, err = New(Config{Signals: []SignalSpec{{Nodes: []string{"taurus-7"}, Signal: Signal{Kind: SignalRamp, From: 1, To: 2}}}})
	require.ErrorContains(t, err, "period")
}

func TestGaps(t *testing.T) {
	now := epoch0.Add(time.Hour)
	a, b := epoch0, epoch0.Add(30*time.Second)
	gs, ge := epoch0.Add(4*time.Second+500*time.Millisecond), epoch0.Add(11*time.Second+250*time.Millisecond)
	tests := []struct {
		name    string
		mon     []string
		gap     Gap
		site    string
		ids     []string
		metrics []string
		removed func(Row) bool // rows of the plain emulator the gap removes
	}{
		{"1 Hz by node", nil, Gap{Nodes: []string{"taurus-7"}, Metrics: []string{wpw}, Start: gs, Stop: ge}, "lyon", []string{"taurus-7", "taurus-8"}, nil,
			func(r Row) bool { return r.DeviceID == "taurus-7" && r.MetricID == wpw }},
		{"every metric", nil, Gap{Nodes: []string{"taurus-7"}, Start: gs, Stop: ge}, "lyon", []string{"taurus-7", "taurus-8"}, nil,
			func(r Row) bool { return r.DeviceID == "taurus-7" }},
		{"raw device", nil, Gap{Nodes: []string{"taurus-7"}, Start: gs, Stop: ge}, "lyon", []string{"wattmetre1-port6", "sw-taurus-port-7"}, nil,
			func(Row) bool { return true }},
		{"raw frames", []string{"taurus-7"}, Gap{Nodes: []string{"taurus-7.lyon.grid5000.fr"}, Metrics: []string{wpw}, Start: gs, Stop: ge}, "lyon", []string{"taurus-7"}, []string{wpw},
			func(Row) bool { return true }},
		{"multi-PSU sum", []string{"gemini-1"}, Gap{Nodes: []string{"gemini-1"}, Metrics: []string{wpw}, Start: gs, Stop: ge}, "lyon", []string{"gemini-1"}, []string{wpw},
			func(Row) bool { return true }},
		{"multi-PSU 1 Hz ports", nil, Gap{Nodes: []string{"gemini-1"}, Start: gs, Stop: ge}, "lyon", []string{"wattmetrev3-1-port30", "wattmetrev3-1-port31", "gemini-1"}, nil,
			func(Row) bool { return true }},
		{"PDU and BMC", []string{"gros-41"}, Gap{Nodes: []string{"gros-41"}, Metrics: []string{"pdu_outlet_power_watt", "bmc_node_power_watt"}, Start: gs, Stop: ge}, "nancy", []string{"gros-41"}, nil,
			func(r Row) bool { return r.MetricID == "pdu_outlet_power_watt" || r.MetricID == "bmc_node_power_watt" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plain, _ := newEmu(t, Config{Seed: 8, Monitored: tc.mon}, now)
			e, _ := newEmu(t, Config{Seed: 8, Monitored: tc.mon, Gaps: []Gap{tc.gap}}, now)
			all, err := plain.Expected(tc.site, tc.ids, tc.metrics, a, b)
			require.NoError(t, err)
			got, err := e.Expected(tc.site, tc.ids, tc.metrics, a, b)
			require.NoError(t, err)
			var want []Row
			removed := 0
			for _, r := range all {
				if tc.removed(r) && !r.Timestamp.Before(gs) && r.Timestamp.Before(ge) {
					removed++
					continue
				}
				want = append(want, r)
			}
			require.Greater(t, removed, 0)
			require.Empty(t, cmp.Diff(want, got))
			// The HTTP endpoint agrees.
			q := vals("nodes", strings.Join(tc.ids, ","), "start_time", epoch(a), "end_time", epoch(b))
			if tc.metrics != nil {
				q.Set("metrics", strings.Join(tc.metrics, ","))
			}
			require.Len(t, rowsOf(t, e, tc.site, q), len(want))
		})
	}
}

func TestGapBoundsAndSummary(t *testing.T) {
	now := epoch0.Add(2 * time.Hour)
	a := epoch0
	b := a.Add(30*time.Minute - time.Microsecond)
	// One bucket entirely in a gap, one partly, and an open-ended gap from
	// minute 25.
	g1 := Gap{Nodes: []string{"gemini-1"}, Metrics: []string{wpw}, Start: a.Add(5 * time.Minute), Stop: a.Add(10 * time.Minute)}
	g2 := Gap{Nodes: []string{"gemini-1"}, Metrics: []string{wpw}, Start: a.Add(12 * time.Minute), Stop: a.Add(13 * time.Minute)}
	g3 := Gap{Nodes: []string{"gemini-1"}, Metrics: []string{wpw}, Start: a.Add(25 * time.Minute)}
	e, _ := newEmu(t, Config{Seed: 2, Gaps: []Gap{g1, g2, g3}}, now)
	rows, err := e.Expected("lyon", []string{"gemini-1"}, []string{wpw}, a, b)
	require.NoError(t, err)
	require.Len(t, rows, (5+2+12)*60)
	for _, g := range []Gap{g1, g2, g3} {
		for _, r := range rows {
			require.False(t, !r.Timestamp.Before(g.Start) && (g.Stop.IsZero() || r.Timestamp.Before(g.Stop)), "row at %v in a gap", r.Timestamp)
		}
	}
	sum, err := e.ExpectedQuery("lyon", vals("nodes", "gemini-1", "metrics", wpw, "start_time", epoch(a), "end_time", epoch(b), "summary", "true"))
	require.NoError(t, err)
	var buckets []time.Duration
	for _, r := range sum {
		buckets = append(buckets, r.Timestamp.Sub(a))
	}
	require.Equal(t, []time.Duration{0, 10 * time.Minute, 15 * time.Minute, 20 * time.Minute}, buckets, "buckets with no row disappear")
	// The partly covered bucket averages what is left (sum of the ports'
	// averages, as with PostgreSQL).
	port := func(dev string) float64 {
		raw, err := e.Expected("lyon", []string{dev}, []string{wpw}, a.Add(10*time.Minute), a.Add(15*time.Minute-time.Microsecond))
		require.NoError(t, err)
		require.Len(t, raw, 4*60)
		s := 0.0
		for _, r := range raw {
			s += r.Value
		}
		return s / float64(len(raw))
	}
	require.InDelta(t, port("wattmetrev3-1-port30")+port("wattmetrev3-1-port31"), sum[1].Value, 1e-9)

	_, err = New(Config{Gaps: []Gap{{Nodes: []string{"taurus-7"}, Metrics: []string{"wattmetre_power_wat"}}}})
	require.ErrorContains(t, err, `no series of metric "wattmetre_power_wat"`)
	_, err = New(Config{Gaps: []Gap{{Nodes: []string{"taurus-7"}, Metrics: []string{"pdu_outlet_power_watt"}}}})
	require.ErrorContains(t, err, "no series")
	_, err = New(Config{Gaps: []Gap{{Nodes: []string{"nope"}}}})
	require.ErrorContains(t, err, "unknown node")
}

func FuzzParseSignal(f *testing.F) {
	for _, s := range []string{
		"nodes=taurus-7,taurus-8;kind=constant;watts=150",
		"nodes=taurus-7;kind=ramp;from=100;to=200;period=10s;start=-5m;stop=+5m",
		"nodes=taurus-7;kind=square;low=100;high=200;period=1.5s;duty=0.25;origin=2025-01-15T10:00:00.25+01:00",
		"nodes=x;kind=ramp;from=0;to=1e6;period=1us;start=now;origin=start",
		"nodes=x;kind=square;low=1;high=2;period=292y",
		"nodes=;kind=constant", ";;;", "nodes=x;kind=constant;watts=1e-320",
	} {
		f.Add(s, int64(3_500_000))
	}
	f.Fuzz(func(t *testing.T, spec string, offUs int64) {
		s, err := ParseSignal(spec, epoch0)
		if err != nil {
			return
		}
		require.NoError(t, s.Validate())
		require.NotEmpty(t, s.Nodes)
		back, err := ParseSignal(s.String(), epoch0.Add(time.Hour))
		require.NoError(t, err, "%q -> %q", spec, s.String())
		require.Empty(t, cmp.Diff(s, back), "%q -> %q", spec, s.String())
		// P stays within the levels; energy is finite, additive and
		// non-negative.
		lo, hi := s.Watts, s.Watts
		switch s.Kind {
		case SignalRamp:
			lo, hi = min(s.From, s.To), max(s.From, s.To)
		case SignalSquare:
			lo, hi = min(s.Low, s.High), max(s.Low, s.High)
		}
		offUs %= 1_000_000_000_000
		t0 := epoch0.Add(time.Duration(offUs) * time.Microsecond)
		t1 := t0.Add(2500*time.Millisecond + 7)
		p := s.At(t0)
		require.True(t, p >= lo && p <= hi, "P=%v not in [%v, %v]", p, lo, hi)
		en := s.Energy(t0, t1)
		require.False(t, math.IsNaN(en) || math.IsInf(en, 0))
		d := t1.Sub(t0).Seconds()
		tol := 1e-9*hi*d + 1e-6
		require.GreaterOrEqual(t, en, -tol)
		require.InDelta(t, en, s.Energy(t0, t0.Add(time.Second))+s.Energy(t0.Add(time.Second), t1), tol)
		m := s.Mean(t0, t1)
		require.True(t, m >= lo-tol && m <= hi+tol, "mean %v not in [%v, %v]", m, lo, hi)
	})
}

func FuzzParseGap(f *testing.F) {
	for _, s := range []string{
		"nodes=taurus-7;start=-5m;stop=-4m;metrics=wattmetre_power_watt",
		"nodes=a,b;start=2025-01-15 10:00", "nodes=x;stop=1736931600.5", "metrics=;nodes=,",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		g, err := ParseGap(spec, epoch0)
		if err != nil {
			return
		}
		require.NoError(t, g.Validate())
		back, err := ParseGap(g.String(), epoch0.Add(time.Hour))
		require.NoError(t, err, "%q -> %q", spec, g.String())
		require.Empty(t, cmp.Diff(g, back), "%q -> %q", spec, g.String())
	})
}
