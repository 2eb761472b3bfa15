package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/kwollect/emulator/emutest"
	"github.com/alumet-go/alumet-agent/rundir"
)

// stopEmulator kills the emulator and waits until its port refuses
// connections: what follows runs without Kwollect.
func stopEmulator(t *testing.T, p *emutest.Process) {
	t.Helper()
	require.NoError(t, p.Cmd.Process.Kill())
	require.Eventually(t, func() bool {
		resp, err := http.Get(p.URL + "/sites")
		if err == nil {
			resp.Body.Close()
		}
		return err != nil
	}, 10*time.Second, 20*time.Millisecond)
}

func readManifest(t *testing.T, dir string) rundir.Manifest {
	t.Helper()
	run, err := rundir.Open(dir)
	require.NoError(t, err)
	require.NoError(t, run.Verify())
	return run.Manifest
}

// TestRunDirExecRepeatReport is issue 15's loop: exec --repeat 3 with phases
// and a baseline leaves a run directory; with the emulator stopped, report
// reproduces the live summary byte for byte, recomputes it with another
// baseline, never overwrites a file without --force, and refuses a damaged
// directory, naming the file.
func TestRunDirExecRepeatReport(t *testing.T) {
	t.Parallel()
	const password = "s3cret-Pa55"
	p := startEmulatorProcess(t, "--lag", "1s", "--user", "alice:"+password)
	dir := t.TempDir()
	writeConfig(t, dir, seedConfig("alice", password, p.URL)+`
[plugins.csv]
output_path = "elsewhere.csv"

[plugins.energy-report]
baseline = "before:10s"
`)
	script := "echo ALUMET_PHASE load; sleep 1; echo ALUMET_PHASE store; sleep 0.5"
	res := runAgent(t, dir, nil, "--plugins", "csv,kwollect-input,energy-report",
		"exec", "--run-dir", "runs/{name}-{start}", "--phases", "--repeat", "3", "--cooldown-max", "3s", "--", "sh", "-c", script)
	require.Equal(t, 0, res.code, res.stderr)
	matches, err := filepath.Glob(filepath.Join(dir, "runs", "sh-*"))
	require.NoError(t, err)
	require.Len(t, matches, 1, "one run directory, its name expanded")
	run := matches[0]
	require.Contains(t, res.stderr, "Run directory "+filepath.Join("runs", filepath.Base(run))+" complete")
	require.NoFileExists(t, filepath.Join(dir, "elsewhere.csv"), "the CSV goes into the run directory")
	require.NoFileExists(t, filepath.Join(dir, "alumet-energy.json"))

	m := readManifest(t, run)
	require.Equal(t, rundir.Schema, m.Schema)
	require.Equal(t, "exec", m.Mode)
	require.Equal(t, []string{"sh", "-c", script}, m.Command.Program)
	require.NotNil(t, m.Command.ExitCode)
	require.Equal(t, 0, *m.Command.ExitCode)
	require.Len(t, m.Windows, 3)
	for i, w := range m.Windows {
		require.Equal(t, i+1, w.Run)
		require.Less(t, w.StartNs, w.EndNs)
		require.Len(t, w.Phases, 2, "load, store")
		require.Equal(t, "load", w.Phases[0].Name)
		require.Equal(t, w.EndNs, w.Phases[1].EndNs, "the last phase ends with the run")
	}
	require.Equal(t, "lyon", m.Sites["taurus-7"])
	require.NotEmpty(t, m.Series)
	for _, sr := range m.Series {
		require.Equal(t, "wattmetre_power_watt", sr.Metric)
		require.Equal(t, [2]string{"device_id", "taurus-7"}, sr.Resource)
		require.Equal(t, "device_origin", sr.Consumer[0], "the wattmeter port")
		require.Positive(t, sr.Points+sr.History)
	}
	require.Len(t, m.Outcomes, 3, "one per run")
	require.Len(t, m.Fetches, 3, "one per run")
	for i, f := range m.Fetches {
		require.Equal(t, "kwollect-input", f.Source)
		require.Equal(t, i+1, f.Run)
		require.Positive(t, f.Rows)
		require.Positive(t, f.Queries)
	}
	require.Positive(t, m.Stream.Points)
	require.Positive(t, m.Stream.History, "history is kept for a later baseline")
	names := map[string]bool{}
	for _, f := range m.Files {
		names[f.Name] = true
		require.Len(t, f.SHA256, 64)
	}
	for _, n := range []string{"config.toml", "raw/points.jsonl.zst", "measurements.csv", "measurements.parquet", "energy.json", "power.png", "agent.log", "runs.csv"} {
		require.True(t, names[n], "%s in the manifest: %v", n, names)
	}
	cfgText, err := os.ReadFile(filepath.Join(run, "config.toml"))
	require.NoError(t, err)
	require.NotContains(t, string(cfgText), password)
	require.Contains(t, string(cfgText), `password = "<redacted>"`)
	for _, f := range []string{"agent.log", "manifest.json"} {
		b, err := os.ReadFile(filepath.Join(run, f))
		require.NoError(t, err)
		require.NotContains(t, string(b), password, f)
	}
	logText, err := os.ReadFile(filepath.Join(run, "agent.log"))
	require.NoError(t, err)
	require.Contains(t, string(logText), "Child process exited")
	require.NotContains(t, string(logText), "\x1b[", "no colours in the log file")

	table := readLines(t, filepath.Join(run, "runs.csv"))
	require.Equal(t, strings.Join(rundir.RunTableHeader, ","), table[0])
	require.Len(t, table, 1+3*(1+3), "per run: the whole run, then its phases: the moment before the first mark, load, store")
	require.True(t, strings.HasPrefix(table[1], "1,,taurus-7,lyon,wattmetre_power_watt,"), table[1])
	require.True(t, strings.HasPrefix(table[3], "1,load,taurus-7,lyon,wattmetre_power_watt,"), table[3])
	require.True(t, strings.HasSuffix(table[4], ",0"), "the exit code: %s", table[4])

	stopEmulator(t, p)

	// The same options: the live summary, byte for byte.
	res = runAgent(t, dir, nil, "report", "--json", "again.json", "--csv", "again.csv", "--no-plot", run)
	require.Equal(t, 0, res.code, res.stderr)
	require.Equal(t, table, readLines(t, filepath.Join(dir, "again.csv")), "the same run table")
	live, err := os.ReadFile(filepath.Join(run, "energy.json"))
	require.NoError(t, err)
	again, err := os.ReadFile(filepath.Join(dir, "again.json"))
	require.NoError(t, err)
	require.Equal(t, string(live), string(again))

	// Another baseline: dynamic energy = energy - 100 W x duration.
	res = runAgent(t, dir, nil, "report", "--baseline", "100W", "--json", "b100.json", "--no-table", run)
	require.Equal(t, 0, res.code, res.stderr)
	s := readRepeatSummary(t, filepath.Join(dir, "b100.json"))
	require.Len(t, s.Runs, 3)
	for _, r := range s.Runs {
		sr := r.Series[0]
		require.Equal(t, 100.0, *sr.BaselineW)
		require.InDelta(t, *sr.EnergyJ-100*sr.DurationS, *sr.DynamicEnergyJ, 1e-9)
	}
	// Without the first run, and without the first 0.5 s of each run.
	res = runAgent(t, dir, nil, "report", "--exclude-runs", "1", "--trim-start", "500ms", "--json", "trim.json", "--no-plot", "--no-table", run)
	require.Equal(t, 0, res.code, res.stderr)
	trimmed := readRepeatSummary(t, filepath.Join(dir, "trim.json"))
	require.Len(t, trimmed.Runs, 2)
	require.Equal(t, []int{2, 3}, trimmed.StatsRuns)
	for i, r := range trimmed.Runs {
		require.Equal(t, i+2, r.Run)
		full := s.Runs[i+1].Series[0]
		require.InDelta(t, full.DurationS-0.5, r.Series[0].DurationS, 1e-9)
		require.Less(t, *r.Series[0].EnergyJ, *full.EnergyJ)
	}
	res = runAgent(t, dir, nil, "report", "--trim-start", "10s", "--json", "none.json", run)
	require.Equal(t, 1, res.code, res.stderr)
	require.Contains(t, res.stderr, "trimming 10s at the start and 0s at the end leaves nothing of run 1 (1.5")
	require.NoFileExists(t, filepath.Join(dir, "none.json"))
	res = runAgent(t, dir, nil, "report", "--exclude-runs", "4", "--json", "none.json", run)
	require.Equal(t, 1, res.code, res.stderr)
	require.Contains(t, res.stderr, "--exclude-runs: the run directory has no run 4")

	plots, _ := filepath.Glob(filepath.Join(run, "power.report-*.png"))
	require.Len(t, plots, 1, "the plot next to the live one, under a new name")

	res = runAgent(t, dir, nil, "report", "--phase", "load", run)
	require.Equal(t, 2, res.code, res.stderr)
	require.Contains(t, res.stderr, "--phase goes with several RUN_DIRs")

	// Never overwritten without --force.
	res = runAgent(t, dir, nil, "report", "--json", "b100.json", "--no-plot", run)
	require.Equal(t, 2, res.code, res.stderr)
	require.Contains(t, res.stderr, "b100.json exists: not overwritten (--force overwrites it)")
	res = runAgent(t, dir, nil, "report", "--json", "b100.json", "--no-plot", "--force", run)
	require.Equal(t, 0, res.code, res.stderr)
	b, err := os.ReadFile(filepath.Join(dir, "b100.json"))
	require.NoError(t, err)
	require.Equal(t, string(live), string(b), "--force: the run's own baseline again")

	// A damaged directory: a clear error naming the file.
	raw := filepath.Join(run, "raw", "points.jsonl.zst")
	data, err := os.ReadFile(raw)
	require.NoError(t, err)
	data[len(data)/2] ^= 0xff
	require.NoError(t, os.WriteFile(raw, data, 0o644))
	require.NoError(t, os.Remove(filepath.Join(run, "measurements.csv")))
	res = runAgent(t, dir, nil, "report", "--json", "broken.json", run)
	require.Equal(t, 1, res.code, res.stderr)
	require.Contains(t, res.stderr, raw+": damaged")
	require.Contains(t, res.stderr, filepath.Join(run, "measurements.csv")+": missing")
	require.NoFileExists(t, filepath.Join(dir, "broken.json"))
}

// TestRunDirFetch: fetch --run-dir keeps a past window the same way.
func TestRunDirFetch(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "0s", "--job", "id=42;site=lyon;nodes=taurus-7;start=-10m;stop=-8m")
	dir := t.TempDir()
	writeConfig(t, dir, seedConfig("", "", api)+"\n[plugins.energy-report]\n")

	// A finished OAR job: its window is the span of its rows.
	res := runAgent(t, dir, nil, "--plugins", "csv,kwollect-input,energy-report", "fetch", "--job-id", "42", "--run-dir", "job")
	require.Equal(t, 0, res.code, res.stderr)
	jm := readManifest(t, filepath.Join(dir, "job"))
	require.Len(t, jm.JobSpans, 1)
	require.Equal(t, []rundir.Window{{Start: jm.Windows[0].Start, StartNs: jm.JobSpans[0].FirstNs, End: jm.Windows[0].End, EndNs: jm.JobSpans[0].LastNs}}, jm.Windows)
	res = runAgent(t, dir, nil, "report", "--json", "job.json", "--no-plot", "job")
	require.Equal(t, 0, res.code, res.stderr)
	jobLive, err := os.ReadFile(filepath.Join(dir, "job", "energy.json"))
	require.NoError(t, err)
	jobAgain, err := os.ReadFile(filepath.Join(dir, "job.json"))
	require.NoError(t, err)
	require.Equal(t, string(jobLive), string(jobAgain))

	res = runAgent(t, dir, nil, "--plugins", "csv,kwollect-input,energy-report", "fetch", "--from", "-2m", "--to", "-1m", "--run-dir", "past")
	require.Equal(t, 0, res.code, res.stderr)
	m := readManifest(t, filepath.Join(dir, "past"))
	require.Equal(t, "fetch", m.Mode)
	require.Len(t, m.Windows, 1)
	require.Equal(t, int64(time.Minute), m.Windows[0].EndNs-m.Windows[0].StartNs)
	live := reportReproduces(t, dir, "past")
	var sum struct{ Series []struct{ Samples int } }
	require.NoError(t, json.Unmarshal(live, &sum))
	require.GreaterOrEqual(t, sum.Series[0].Samples, 60, "a minute of 1 Hz data")

	// Damaged: the raw stream flipped, the summary and the log gone.
	// --refetch fetches the windows again and rebuilds what derives from
	// them: the emulator gives the same rows, so the same summary.
	raw := filepath.Join(dir, "past", "raw", "points.jsonl.zst")
	data, err := os.ReadFile(raw)
	require.NoError(t, err)
	data[len(data)/3] ^= 0x55
	require.NoError(t, os.WriteFile(raw, data, 0o644))
	require.NoError(t, os.Remove(filepath.Join(dir, "past", "energy.json")))
	require.NoError(t, os.Remove(filepath.Join(dir, "past", "agent.log")))
	res = runAgent(t, dir, nil, "report", "--json", "bad.json", "past")
	require.Equal(t, 1, res.code, res.stderr)
	require.Contains(t, res.stderr, "`alumet-agent report --refetch past` rebuilds the raw data")
	res = runAgent(t, dir, nil, "report", "--refetch", "--json", "fixed.json", "--no-plot", "past")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stderr, "past repaired")
	m = readManifest(t, filepath.Join(dir, "past"))
	require.Len(t, m.Refetches, 1)
	rf := m.Refetches[0]
	require.Len(t, rf.Reason, 3)
	require.NotEmpty(t, rf.KeptAs)
	require.FileExists(t, filepath.Join(dir, "past", filepath.FromSlash(rf.KeptAs)), "the damaged stream is kept")
	require.Len(t, rf.Lost, 1)
	require.Equal(t, "agent.log", rf.Lost[0].Name, "nothing rebuilds the live run's log")
	rebuilt, err := os.ReadFile(filepath.Join(dir, "past", "energy.json"))
	require.NoError(t, err)
	require.Equal(t, string(live), string(rebuilt), "the same rows again: the same summary")
	fixed, err := os.ReadFile(filepath.Join(dir, "fixed.json"))
	require.NoError(t, err)
	require.Equal(t, string(live), string(fixed))
	res = runAgent(t, dir, nil, "report", "--refetch", "--json", "again2.json", "--no-plot", "past")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stderr, "nothing to refetch")

	// A run directory is never reused.
	res = runAgent(t, dir, nil, "--plugins", "csv,kwollect-input", "fetch", "--from", "-2m", "--to", "-1m", "--run-dir", "past")
	require.Equal(t, 1, res.code, res.stderr)
	require.Contains(t, res.stderr, "run directory past is not empty")
	require.True(t, strings.Contains(res.stderr, "choose a new one"), res.stderr)
}

// TestRunDirCompare: two experiments (a node at 100 W, then at 150 W), three
// runs each, compared offline: the difference per run is 50 W × the run's
// length, with Welch's test; --runs concatenates their run tables.
func TestRunDirCompare(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, exp := range []struct {
		name  string
		watts int
	}{{"slow", 100}, {"fast", 150}} {
		api := startEmulator(t, "--lag", "1s", "--signal", "nodes=taurus-7;kind=constant;watts="+strconv.Itoa(exp.watts))
		writeConfig(t, dir, seedConfig("", "", api)+"\n[plugins.energy-report]\n")
		res := runAgent(t, dir, nil, "--plugins", "csv,kwollect-input,energy-report",
			"exec", "--run-dir", exp.name, "--phases", "--repeat", "3", "--cooldown", "100ms", "--", "sh", "-c", "sleep 0.2; echo ALUMET_PHASE work; sleep 1")
		require.Equal(t, 0, res.code, res.stderr)
	}
	res := runAgent(t, dir, nil, "report", "--json", "cmp.json", "--csv", "cmp.csv", "slow", "fast")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stdout, "Comparison: B = fast against A = slow")
	var out struct {
		Comparisons []struct {
			A, B   string
			Series []rundir.Comparison
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "cmp.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &out))
	require.Len(t, out.Comparisons, 1)
	c := out.Comparisons[0].Series[0]
	require.Equal(t, "taurus-7", c.Node)
	require.Equal(t, 3, c.A.Runs)
	require.Equal(t, 3, c.B.Runs)
	// Runs last about 1.2 s: 150 W − 100 W over ~1.2 s.
	require.InDelta(t, 60, c.DiffJ, 20)
	require.InDelta(t, 50, *c.DiffPct, 15)
	require.NotNil(t, c.P)
	require.Less(t, *c.CI95[0], c.DiffJ)
	require.Greater(t, *c.CI95[1], c.DiffJ)
	require.Len(t, readLines(t, filepath.Join(dir, "cmp.csv")), 2)

	// The phase only: ~1 s of it.
	res = runAgent(t, dir, nil, "report", "--phase", "work", "--json", "work.json", "slow", "fast")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stdout, "B = fast (phase work) against A = slow (phase work)")
	b, err = os.ReadFile(filepath.Join(dir, "work.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &out))
	w := out.Comparisons[0].Series[0]
	require.Less(t, w.DiffJ, c.DiffJ, "a part of each run")
	require.InDelta(t, 50, w.DiffJ, 15)

	res = runAgent(t, dir, nil, "report", "--runs", "slow", "fast")
	require.Equal(t, 0, res.code, res.stderr)
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	require.Equal(t, "run_dir,"+strings.Join(rundir.RunTableHeader, ","), lines[0])
	require.Len(t, lines, 1+6*3, "per run: the run, the moment before the mark, the phase")
	require.True(t, strings.HasPrefix(lines[1], "slow,1,,taurus-7,"), lines[1])
	require.True(t, strings.HasPrefix(lines[3], "slow,1,work,taurus-7,"), lines[3])
	require.True(t, strings.HasPrefix(lines[18], "fast,3,work,taurus-7,"), lines[18])

	// A recomputed comparison: a baseline of 100 W leaves fast's dynamic
	// energy; the energies themselves do not change.
	res = runAgent(t, dir, nil, "report", "--baseline", "100W", "slow", "fast")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stdout, "taurus-7")
}

// TestRunDirWatch: watch --run-dir, {name} being the watched process's.
func TestRunDirWatch(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s")
	dir := t.TempDir()
	writeConfig(t, dir, seedConfig("", "", api)+"\n[plugins.energy-report]\n")
	sleeper := exec.Command("sleep", "2")
	require.NoError(t, sleeper.Start())
	go func() { _ = sleeper.Wait() }()
	res := runAgent(t, dir, nil, "--plugins", "csv,kwollect-input,energy-report", "watch", "--run-dir", "w-{name}", strconv.Itoa(sleeper.Process.Pid))
	require.Equal(t, 0, res.code, res.stderr)
	m := readManifest(t, filepath.Join(dir, "w-sleep"))
	require.Equal(t, "watch", m.Mode)
	require.Len(t, m.Windows, 1)
	reportReproduces(t, dir, "w-sleep")
}

// TestRunDirKey: energy-report's run_dir key keeps an exec as --run-dir
// does, {name} expanded; the flag wins over it.
func TestRunDirKey(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s")
	dir := t.TempDir()
	writeConfig(t, dir, seedConfig("", "", api)+"\n[plugins.energy-report]\nrun_dir = \"kept-{name}\"\n")
	res := runAgent(t, dir, nil, "--plugins", "csv,kwollect-input,energy-report", "exec", "--", "sleep", "1")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stderr, "(energy-report's run_dir)")
	m := readManifest(t, filepath.Join(dir, "kept-sleep"))
	require.Equal(t, "exec", m.Mode)
	require.Len(t, m.Windows, 1)
	reportReproduces(t, dir, "kept-sleep")

	// Another method, offline: the 1 Hz means integrated as readings.
	res = runAgent(t, dir, nil, "report", "--method", "trapezoid", "--json", "trap.json", "--no-plot", "kept-sleep")
	require.Equal(t, 0, res.code, res.stderr)
	s := readEnergySummary(t, filepath.Join(dir, "trap.json"))
	require.Equal(t, "trapezoidal integration of instantaneous samples", s.Series[0].Method)
	res = runAgent(t, dir, nil, "report", "--method", "simpson", "--no-plot", "kept-sleep")
	require.Equal(t, 2, res.code, res.stderr)
	require.Contains(t, res.stderr, `--method: method: expected "auto", "step-average" or "trapezoid", got "simpson"`)

	res = runAgent(t, dir, nil, "--plugins", "csv,kwollect-input,energy-report", "exec", "--run-dir", "flag-{name}", "--", "true")
	require.Equal(t, 0, res.code, res.stderr)
	readManifest(t, filepath.Join(dir, "flag-true"))
	_, err := os.Stat(filepath.Join(dir, "kept-true"))
	require.True(t, os.IsNotExist(err), "the flag wins over the key")
}

// TestBaselineAfter: baseline = "after:D" waits the D after the command
// and takes each series' median there; a run directory keeps that span,
// so that report reproduces it offline and can change it (the stream's
// span is the longest asked).
func TestBaselineAfter(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s")
	dir := t.TempDir()
	writeConfig(t, dir, seedConfig("", "", api)+"\n[plugins.energy-report]\nbaseline = \"after:4s\"\n")
	res := runAgent(t, dir, nil, "--plugins", "csv,kwollect-input,energy-report", "exec", "--run-dir", "a", "--", "sleep", "1")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stderr, "for the 4.0 s after the run (the baseline after the run)")
	require.Regexp(t, `Kwollect: [1-9]\d* rows fetched for the baseline after the run`, res.stderr)
	require.Contains(t, res.stderr, "baseline: median power over the 4s after the last run (taurus-7 wattmetre_power_watt ")
	s := readEnergySummary(t, filepath.Join(dir, "a", "energy.json"))
	require.NotNil(t, s.Series[0].BaselineW)
	require.NotNil(t, s.Series[0].DynamicEnergyJ)

	reportReproduces(t, dir, "a")

	res = runAgent(t, dir, nil, "report", "--baseline", "after:2s", "--json", "two.json", "--no-plot", "a")
	require.Equal(t, 0, res.code, res.stderr)
	s2 := readEnergySummary(t, filepath.Join(dir, "two.json"))
	require.NotNil(t, s2.Series[0].BaselineW, "2 s of the 4 s kept")
}

// TestRunDirFetchStart: with fetch, {start} is the window's start, not
// the agent's: a past window's directory says which window it holds.
func TestRunDirFetchStart(t *testing.T) {
	t.Parallel()
	api := startEmulator(t, "--lag", "1s")
	dir := t.TempDir()
	writeConfig(t, dir, seedConfig("", "", api))
	from := time.Now().Add(-20 * time.Minute).UTC().Truncate(time.Second)
	res := runAgent(t, dir, nil, "--plugins", "csv,kwollect-input", "fetch", "--from", from.Format(time.RFC3339), "--to", from.Add(10*time.Second).Format(time.RFC3339), "--run-dir", "w-{start}")
	require.Equal(t, 0, res.code, res.stderr)
	readManifest(t, filepath.Join(dir, "w-"+from.Format("2006-01-02T15-04-05Z")))
}

// reportReproduces runs report on the run directory run (in dir), offline,
// and checks that it gives the live energy.json back, byte for byte; it
// returns that summary.
func reportReproduces(t *testing.T, dir, run string) []byte {
	t.Helper()
	res := runAgent(t, dir, nil, "report", "--json", run+"-re.json", "--no-plot", run)
	require.Equal(t, 0, res.code, res.stderr)
	live, err := os.ReadFile(filepath.Join(dir, run, "energy.json"))
	require.NoError(t, err)
	again, err := os.ReadFile(filepath.Join(dir, run+"-re.json"))
	require.NoError(t, err)
	require.Equal(t, string(live), string(again), "report %s gives the live summary back", run)
	return live
}
