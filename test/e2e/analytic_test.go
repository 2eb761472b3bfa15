package e2e

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/kwollect/emulator"
)

// TestEnergyAnalyticSignals: the emulator draws exact analytic signals
// (constant, ramp, square wave, with a meter outage), the agent fetches a
// past window whose bounds fall mid-second, and energy-report's energy,
// coverage and gaps are compared with the signal's exact integral. The
// window lies inside one 600 s period (origin: the Unix epoch), 15 minutes
// ago, so Kwollect has ingested it.
func TestEnergyAnalyticSignals(t *testing.T) {
	t.Parallel()
	base := time.Now().Add(-15 * time.Minute).Truncate(600 * time.Second).Add(100 * time.Second)
	from, to := base.Add(300*time.Millisecond), base.Add(20*time.Second+850*time.Millisecond)
	dur := to.Sub(from).Seconds()
	tests := []struct {
		name    string
		node    string
		signal  string
		extra   []string // more emulator flags
		relTol  float64
		wantCov float64
		wantGap [2]time.Time
		method  string
	}{
		{name: "constant, 1 Hz means", node: "taurus-7", signal: "kind=constant;watts=150", relTol: 1e-9, wantCov: 1,
			method: "step integration of 1 s averages"},
		// The 1 Hz rows are the exact means of each second, rounded to
		// 0.01 W: the error is the rounding plus, at each clipped edge,
		// slope × f(1−f)/2 (a ramp is not constant within a second).
		{name: "ramp, 1 Hz means", node: "taurus-7", signal: "kind=ramp;from=100;to=220;period=600s", relTol: 1e-4, wantCov: 1,
			method: "step integration of 1 s averages"},
		{name: "square wave, 1 Hz means", node: "taurus-7", signal: "kind=square;low=100;high=250;period=4s;duty=0.25", relTol: 1e-5, wantCov: 1,
			method: "step integration of 1 s averages"},
		// Raw 50 Hz frames of a monitored node: instantaneous readings,
		// trapezoids, exact on a line. The query ends at the window's end,
		// so the stretch after the last frame is extrapolated: the
		// coverage is computed from the CSV's frames (wantCov -1).
		{name: "ramp, raw 50 Hz frames", node: "taurus-8", signal: "kind=ramp;from=100;to=220;period=600s", extra: []string{"--monitor", "taurus-8"}, relTol: 1e-4, wantCov: -1,
			method: "trapezoidal integration"},
		// 4 s without data in the middle: listed, bridged (exactly, the
		// power being constant), and the coverage is the rest.
		{name: "constant with a 4 s outage", node: "taurus-7", signal: "kind=constant;watts=150",
			extra:  []string{"--gap", fmt.Sprintf("nodes=taurus-7;start=%s;stop=%s", base.Add(8*time.Second).Format(time.RFC3339), base.Add(12*time.Second).Format(time.RFC3339))},
			relTol: 1e-9, wantCov: (dur - 4) / dur, wantGap: [2]time.Time{base.Add(8 * time.Second), base.Add(12 * time.Second)},
			method: "step integration of 1 s averages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec := "nodes=" + tt.node + ";" + tt.signal
			sig, err := emulator.ParseSignal(spec, time.Now())
			require.NoError(t, err)
			want := sig.Energy(from, to)
			api := startEmulator(t, append([]string{"--lag", "1s", "--signal", spec}, tt.extra...)...)
			dir := t.TempDir()
			writeConfig(t, dir, fmt.Sprintf(`[plugins.kwollect-input]
site = "lyon"
hostname = %q
metrics = "wattmetre_power_watt"
api_url = %q

[plugins.energy-report]
summary_file = "energy.json"
`, tt.node, api))
			res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input,energy-report",
				"fetch", "--from", from.Format(time.RFC3339Nano), "--to", to.Format(time.RFC3339Nano))
			// A meter outage makes the measurement partial: exit code 3.
			wantCode := 0
			if !tt.wantGap[0].IsZero() {
				wantCode = 3
				require.Contains(t, res.stderr, "taurus-7/wattmetre_power_watt: PARTIAL")
			}
			require.Equal(t, wantCode, res.code, res.stderr)
			s := readEnergySummary(t, filepath.Join(dir, "energy.json"))
			require.Equal(t, from.UTC().Format("2006-01-02T15:04:05.000000000Z"), s.Start)
			require.Equal(t, to.UTC().Format("2006-01-02T15:04:05.000000000Z"), s.End)
			require.Len(t, s.Series, 1)
			sr := s.Series[0]
			require.True(t, strings.HasPrefix(sr.Method, tt.method), sr.Method)
			require.InDelta(t, dur, sr.DurationS, 1e-9)
			got := *sr.EnergyJ
			t.Logf("%s: %.6f J, exact %.6f J, relative error %.1e, coverage %.6f", tt.name, got, want, math.Abs(got-want)/want, sr.Coverage)
			require.LessOrEqual(t, math.Abs(got-want), tt.relTol*want, "energy %v J, exact %v J (error %.2e)", got, want, math.Abs(got-want)/want)
			require.Less(t, math.Abs(got-want)/want, 1e-3, "the issue's bound: 0.1 %")
			wantCov := tt.wantCov
			if wantCov < 0 {
				samples, _, _, _ := csvPower(t, filepath.Join(dir, "out.csv"), tt.node)
				require.True(t, samples[0].T.Before(from), "a frame before the window interpolates its start")
				last := samples[len(samples)-1].T
				require.False(t, last.After(to))
				wantCov = 1 - to.Sub(last).Seconds()/dur
				require.Greater(t, wantCov, 1-0.021/dur, "less than a frame is missing")
			}
			require.InDelta(t, wantCov, sr.Coverage, 1e-9, "coverage")
			require.LessOrEqual(t, math.Abs(got-want), *sr.UncertaintyJ, "the uncertainty bounds the error")
			if tt.wantGap[0].IsZero() {
				require.Empty(t, sr.Gaps)
				return
			}
			require.Len(t, sr.Gaps, 1)
			require.Equal(t, tt.wantGap[0].UTC(), parseRFC3339(t, sr.Gaps[0].From).UTC())
			require.Equal(t, tt.wantGap[1].UTC(), parseRFC3339(t, sr.Gaps[0].To).UTC())
			require.Contains(t, res.stderr, "gap: "+tt.node+" wattmetre_power_watt")
		})
	}
}

// TestEnergyBaselineFromHistory: the node draws 100 W until the window
// starts and 180 W in it: baseline = "before:20s" finds 100 W in the
// history (not written to the CSV), and the dynamic energy is 80 W × the
// duration, exactly.
func TestEnergyBaselineFromHistory(t *testing.T) {
	t.Parallel()
	from := time.Now().Add(-15 * time.Minute).Truncate(time.Second)
	to := from.Add(10*time.Second + 500*time.Millisecond)
	api := startEmulator(t, "--lag", "1s",
		"--signal", "nodes=taurus-7;kind=constant;watts=100;stop="+from.Format(time.RFC3339),
		"--signal", "nodes=taurus-7;kind=constant;watts=180;start="+from.Format(time.RFC3339))
	dir := t.TempDir()
	writeConfig(t, dir, seedConfig("", "", api)+"\n[plugins.energy-report]\nsummary_file = \"energy.json\"\nbaseline = \"before:20s\"\nplot_file = \"power.svg\"\n")
	res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input,energy-report",
		"fetch", "--from", from.Format(time.RFC3339Nano), "--to", to.Format(time.RFC3339Nano))
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stderr, "Kwollect: 20 rows of history fetched for the idle baseline")
	s := readEnergySummary(t, filepath.Join(dir, "energy.json"))
	sr := s.Series[0]
	require.Equal(t, 100.0, *sr.BaselineW)
	require.InDelta(t, 180*10.5, *sr.EnergyJ, 1e-9)
	require.InDelta(t, 80*10.5, *sr.DynamicEnergyJ, 1e-9)
	// The CSV holds the window's rows only: 180 W, never the history's 100 W.
	for _, l := range readLines(t, filepath.Join(dir, "out.csv"))[1:] {
		c := strings.Split(l, ";")
		if c[0] == "wattmetre_power_watt_W" {
			require.Equal(t, "180", c[2], l)
			require.False(t, parseRFC3339(t, c[1]).Before(from), l)
		}
	}
	svg := strings.Join(readLines(t, filepath.Join(dir, "power.svg")), "\n")
	require.Contains(t, svg, "baseline 100")
	require.Regexp(t, `<svg[^>]* width="1200pt" height="675pt"`, svg, "the default size: 1600x900 px at 96 dpi")
}
