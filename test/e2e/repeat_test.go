package e2e

import (
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/testkit"
	"github.com/alumet-go/alumet-agent/plugins/energyreport"
)

// repeatSummary is the summary file of exec --repeat.
type repeatSummary = energyreport.RepeatSummary

func readRepeatSummary(t *testing.T, path string) repeatSummary {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var s repeatSummary
	require.NoError(t, json.Unmarshal(b, &s), string(b))
	return s
}

// TestExecRepeatPhasesBaseline: the full picture on a node drawing
// a constant 150 W. exec --repeat 3 runs the command three times, each its
// own window; the baseline is the median of the 10 s before the first run
// (150 W, so the cooldown ends at once and the dynamic energy is ~0); the
// command marks phases on its stdout and with alumet-agent mark; the
// summary has the runs, their phases (adding up to each run) and the
// statistics; the CSV tags every row with its run; the plot is a PNG of
// the default size.
func TestExecRepeatPhasesBaseline(t *testing.T) {
	t.Parallel()
	const watts = 150.0
	api := startEmulator(t, "--lag", "1s", "--signal", fmt.Sprintf("nodes=taurus-7;kind=constant;watts=%g", watts))
	dir := t.TempDir()
	writeConfig(t, dir, seedConfig("", "", api)+`
[plugins.energy-report]
summary_file = "energy.json"
plot_file = "power.png"
baseline = "before:10s"
`)
	agentBin := filepath.Join(binDir, "alumet-agent")
	script := fmt.Sprintf("echo ALUMET_PHASE load; sleep 1; %s mark store; sleep 0.6; echo done", agentBin)
	res := runAgent(t, dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input,energy-report",
		"exec", "--phases", "--repeat", "3", "--cooldown-max", "20s", "--", "sh", "-c", script)
	require.Equal(t, 0, res.code, res.stderr)
	require.Equal(t, strings.Repeat("ALUMET_PHASE load\ndone\n", 3), res.stdout, "the command's stdout passes through unchanged")
	require.Equal(t, 2, strings.Count(res.stderr, "Cooldown: the power is back to idle (at most 5 % above the idle level)"), res.stderr)
	require.Contains(t, res.stderr, "rows of history fetched for the idle baseline")

	s := readRepeatSummary(t, filepath.Join(dir, "energy.json"))
	require.Equal(t, []string{"sh", "-c", script}, s.Command)
	require.Len(t, s.Runs, 3)
	var prevEnd time.Time
	for i, run := range s.Runs {
		require.Equal(t, i+1, run.Run)
		start, end := parseRFC3339(t, run.Start), parseRFC3339(t, run.End)
		require.True(t, start.After(prevEnd), "run %d starts after the previous one ends", run.Run)
		prevEnd = end
		require.Len(t, run.Series, 1)
		sr := run.Series[0]
		require.Equal(t, 1.0, sr.Coverage)
		require.InDelta(t, watts*sr.DurationS, *sr.EnergyJ, 1e-6*watts*sr.DurationS, "constant power: exact energy")
		require.NotNil(t, sr.BaselineW)
		require.Equal(t, watts, *sr.BaselineW, "the median of the history")
		require.InDelta(t, 0, *sr.DynamicEnergyJ, 1e-6*watts*sr.DurationS)
		// Phases: the moment before the first line, load, store; their
		// energies add up to the run's.
		var names []string
		var sum float64
		for _, ph := range run.Phases {
			names = append(names, ph.Name)
			sum += *ph.TotalEnergyJ["wattmetre_power_watt"]
		}
		require.Equal(t, []string{"(before the first mark)", "load", "store"}, names)
		require.InDelta(t, *run.TotalEnergyJ["wattmetre_power_watt"], sum, 1e-9)
		store := run.Phases[2]
		d := parseRFC3339(t, store.End).Sub(parseRFC3339(t, store.Start))
		require.InDelta(t, 0.6, d.Seconds(), 0.3, "store lasts from the mark to the end")
	}
	require.Len(t, s.Stats, 1)
	st := s.Stats[0]
	require.Equal(t, 3, st.Runs)
	var energies []float64
	for _, run := range s.Runs {
		energies = append(energies, *run.Series[0].EnergyJ)
	}
	mean := (energies[0] + energies[1] + energies[2]) / 3
	require.InDelta(t, mean, *st.Mean, 1e-9)
	var ss float64
	for _, e := range energies {
		ss += (e - mean) * (e - mean)
	}
	sd := math.Sqrt(ss / 2)
	require.InDelta(t, sd, *st.SD, 1e-9)
	require.InDelta(t, mean-4.303*sd/math.Sqrt(3), *st.CI95[0], 1e-9)
	require.InDelta(t, mean+4.303*sd/math.Sqrt(3), *st.CI95[1], 1e-9)

	// The CSV: a run column, 1 to 3, on the power rows and the energy rows.
	lines := readLines(t, filepath.Join(dir, "out.csv"))
	require.Equal(t, "metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;metric_id;run;__late_attributes", lines[0])
	runsSeen := map[string]int{}
	for _, l := range lines[1:] {
		c := strings.Split(l, ";")
		require.Len(t, c, 10, l)
		runsSeen[c[0]+" "+c[8]]++
	}
	for _, r := range []string{"1", "2", "3"} {
		require.Greater(t, runsSeen["wattmetre_power_watt_W "+r], 0, "power rows of run %s", r)
		require.Equal(t, 1, runsSeen["wattmetre_power_watt_energy_J "+r], "energy row of run %s", r)
	}

	// The plot.
	f, err := os.Open(filepath.Join(dir, "power.png"))
	require.NoError(t, err)
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	require.NoError(t, err)
	require.Equal(t, 1600, cfg.Width)
	require.Equal(t, 900, cfg.Height)
}

// TestExecRepeatStops: a failing run stops the series (its code is the
// agent's) and is left out of the statistics, which say so; a fixed
// cooldown separates the runs, and the socket of alumet-agent mark is gone
// once the agent has stopped.
func TestExecRepeatStops(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s")
	dir := t.TempDir()
	writeConfig(t, dir, seedConfig("", "", api)+"\n[plugins.energy-report]\nsummary_file = \"energy.json\"\n")
	runtimeDir := t.TempDir()
	env := []string{"XDG_RUNTIME_DIR=" + runtimeDir}
	// Runs 1 and 2 succeed, run 3 fails: run 4 is never started.
	script := `n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; [ $n -lt 3 ] || exit 4`
	res := runAgent(t, dir, env, "--plugins", "kwollect-input,energy-report",
		"exec", "--repeat", "4", "--cooldown", "1500ms", "--", "sh", "-c", script)
	require.Equal(t, 4, res.code, res.stderr)
	require.Contains(t, res.stderr, "Run 3 failed (exit code 4): the remaining 1 runs are not started")
	count, err := os.ReadFile(filepath.Join(dir, "count"))
	require.NoError(t, err)
	require.Equal(t, "3\n", string(count))
	s := readRepeatSummary(t, filepath.Join(dir, "energy.json"))
	require.Len(t, s.Runs, 3)
	require.Equal(t, 4, *s.Runs[2].ExitCode)
	// The failed run is left out of the statistics, and they say so.
	const left = "run 3 failed (exit code 4): left out of the statistics; no run was started after it"
	require.Equal(t, []int{1, 2}, s.StatsRuns)
	require.Len(t, s.Warnings, 1)
	require.Contains(t, s.Warnings[0], left)
	require.NotEmpty(t, s.Stats)
	for _, st := range s.Stats {
		require.Equal(t, 2, st.Runs, "%s %s: runs 1 and 2 only", st.Node, st.Metric)
	}
	require.Contains(t, res.stderr, "note: the statistics are over runs 1 and 2\nnote: "+left)
	gap := parseRFC3339(t, s.Runs[1].Start).Sub(parseRFC3339(t, s.Runs[0].End))
	require.GreaterOrEqual(t, gap, 1500*time.Millisecond, "the fixed cooldown")
	entries, err := os.ReadDir(filepath.Join(runtimeDir, "alumet-agent"))
	require.NoError(t, err)
	require.Empty(t, entries, "the mark socket is removed")

	// Usage errors.
	for _, args := range [][]string{
		{"exec", "--repeat", "0", "true"},
		{"exec", "--cooldown", "1s", "true"},
		{"exec", "--repeat", "2", "--cooldown", "soon", "true"},
	} {
		res := runAgent(t, dir, env, append([]string{"--plugins", "kwollect-input,energy-report"}, args...)...)
		require.Equal(t, 2, res.code, "%v: %s", args, res.stderr)
	}
	res = runAgent(t, dir, env, "mark", "x")
	require.Equal(t, 1, res.code)
	require.Contains(t, res.stderr, "no alumet-agent exec is running for this user")
}

// TestExecStdoutClosed: when the agent's stdout, which it copies the
// command's to (--phases), goes away (| head), the command meets the
// broken pipe as it would without the agent (SIGPIPE: 141), and the agent
// survives to write the data.
func TestExecStdoutClosed(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s")
	dir := t.TempDir()
	writeConfig(t, dir, seedConfig("", "", api)+"\n[plugins.energy-report]\nsummary_file = \"energy.json\"\nplot_file = \"\"\n")
	cmd := agentCmd(dir, nil, "--output-file", "out.csv", "--plugins", "csv,kwollect-input,energy-report",
		"exec", "--phases", "--", "sh", "-c", "for i in 1 2 3 4 5 6; do echo line $i; sleep 0.3; done; exit 3")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr testkit.LockedBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	first := make([]byte, len("line 1\n"))
	_, err = io.ReadFull(out, first)
	require.NoError(t, err)
	require.Equal(t, "line 1\n", string(first))
	require.NoError(t, out.Close()) // | head -1
	err = cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, stderr.String())
	require.Equal(t, 141, ee.ExitCode(), stderr.String())
	require.Contains(t, stderr.String(), "The agent's stdout is closed")
	require.Greater(t, len(readLines(t, filepath.Join(dir, "out.csv"))), 1, "the data is written")
	_, err = os.Stat(filepath.Join(dir, "energy.json"))
	require.NoError(t, err)
}

// TestExecRepeatCutBySignal: SIGTERM during a cooldown stops the series:
// what was measured is written and the agent exits 143, so that a script
// does not take a partial series for a complete one.
func TestExecRepeatCutBySignal(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s")
	dir := t.TempDir()
	writeConfig(t, dir, seedConfig("", "", api)+"\n[plugins.energy-report]\nsummary_file = \"energy.json\"\nplot_file = \"\"\n")
	cmd := agentCmd(dir, nil, "--plugins", "kwollect-input,energy-report", "exec", "--repeat", "3", "--cooldown", "30s", "--", "true")
	var stderr testkit.LockedBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "Cooling down before run 2 of 3") }, time.Minute, 20*time.Millisecond)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	err := cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, stderr.String())
	require.Equal(t, 143, ee.ExitCode(), stderr.String())
	require.Contains(t, stderr.String(), "SIGTERM received during the cooldown: the remaining runs are not started.")
	require.Contains(t, stderr.String(), "The series of runs was cut short by SIGTERM: exiting with 143.")
	s := readRepeatSummary(t, filepath.Join(dir, "energy.json"))
	require.Len(t, s.Runs, 1)
}
