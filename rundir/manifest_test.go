package rundir

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/pipeline"
)

func TestWindowsOf(t *testing.T) {
	for _, tc := range []struct {
		name   string
		events []EventRecord
		want   []Window
	}{
		{"none", nil, nil},
		{"exec", []EventRecord{{Kind: "start", TimeNs: 10}, {Kind: "end", TimeNs: 20}},
			[]Window{{Start: nsTime(10), StartNs: 10, End: nsTime(20), EndNs: 20}}},
		{"phases", []EventRecord{{Kind: "start", TimeNs: 10, Run: 1}, {Kind: "phase", TimeNs: 12, Phase: "a", Run: 1}, {Kind: "phase", TimeNs: 15, Phase: "b", Run: 1},
			{Kind: "end", TimeNs: 20, Run: 1}, {Kind: "start", TimeNs: 30, Run: 2}, {Kind: "end", TimeNs: 40, Run: 2}},
			[]Window{{Run: 1, Start: nsTime(10), StartNs: 10, End: nsTime(20), EndNs: 20, Phases: []Phase{{"a", 12, 15}, {"b", 15, 20}}},
				{Run: 2, Start: nsTime(30), StartNs: 30, End: nsTime(40), EndNs: 40}}},
		{"job id: an end only", []EventRecord{{Kind: "end", TimeNs: 20, JobID: 7}}, []Window{{End: nsTime(20), EndNs: 20}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Empty(t, cmp.Diff(tc.want, windowsOf(tc.events)))
		})
	}
}

func TestOutcomeRoundTrip(t *testing.T) {
	t0 := time.Unix(1753182326, 468000).UTC()
	for _, o := range []pipeline.Outcome{
		{Run: 2, Node: "taurus-7", Site: "lyon", Metric: "wattmetre_power_watt", Window: pipeline.Interval{From: t0, To: t0.Add(time.Minute)},
			Status: pipeline.StatusComplete, Samples: 60, First: t0, Last: t0.Add(59 * time.Second), Coverage: 1, Lag: 900 * time.Millisecond, LagKnown: true,
			Period: time.Second},
		{Node: "taurus-8", Metric: "wattmetre_power_watt", Window: pipeline.Interval{From: t0, To: t0.Add(time.Minute)}, Status: pipeline.StatusEmpty,
			Missing: []pipeline.Interval{{From: t0, To: t0.Add(time.Minute)}}, Reason: "no data", FetchedLaterOK: true, Anomalies: "x"},
	} {
		require.Empty(t, cmp.Diff(o, outcomeOf(o).Outcome(), timeCmp))
	}
}

func writeRun(t *testing.T, m *Manifest, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
		n, sum, err := hashFile(p)
		require.NoError(t, err)
		m.Files = append(m.Files, File{Name: name, Role: "output", Bytes: n, SHA256: sum})
	}
	require.NoError(t, writeManifest(dir, m))
	return dir
}

func TestOpenVerify(t *testing.T) {
	good := func() *Manifest {
		return &Manifest{Schema: Schema, Version: SchemaVersion, Agent: AgentInfo{Version: "1.2.3"}}
	}
	t.Run("whole", func(t *testing.T) {
		dir := writeRun(t, good(), map[string]string{"a.csv": "x;y\n", "raw/points.jsonl.zst": "zz"})
		run, err := Open(dir)
		require.NoError(t, err)
		require.NoError(t, run.Verify())
		st, err := os.Stat(filepath.Join(dir, ManifestName))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o644), st.Mode().Perm())
	})
	t.Run("damaged and missing", func(t *testing.T) {
		dir := writeRun(t, good(), map[string]string{"a.csv": "x;y\n", "b.json": "{}"})
		require.NoError(t, os.WriteFile(filepath.Join(dir, "a.csv"), []byte("x;z\n"), 0o644))
		require.NoError(t, os.Remove(filepath.Join(dir, "b.json")))
		run, err := Open(dir)
		require.NoError(t, err)
		err = run.Verify()
		require.ErrorContains(t, err, filepath.Join(dir, "a.csv")+": damaged: 4 bytes, SHA-256 ")
		require.ErrorContains(t, err, filepath.Join(dir, "b.json")+": missing (the manifest lists it: output, 2 bytes)")
	})
	for _, tc := range []struct {
		name, manifest, want string
	}{
		{"no manifest", "", "not a run directory: it has no manifest.json"},
		{"corrupted", "{", "manifest.json: corrupted"},
		{"other schema", `{"schema":"x","version":1}`, `schema "x", want "alumet-agent/run-dir"`},
		{"newer", `{"schema":"alumet-agent/run-dir","version":9,"agent":{"version":"9.0"}}`, "schema version 9; this agent reads version 1: use the agent version that wrote it (9.0)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.manifest != "" {
				require.NoError(t, os.WriteFile(filepath.Join(dir, ManifestName), []byte(tc.manifest), 0o644))
			}
			_, err := Open(dir)
			require.ErrorContains(t, err, tc.want)
		})
	}
	t.Run("no directory", func(t *testing.T) {
		_, err := Open(filepath.Join(t.TempDir(), "nope"))
		require.ErrorContains(t, err, "no such file or directory")
	})
}

func TestCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "runs", "a")
	r, err := Create(dir)
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(dir, "raw", "points.jsonl.zst"))
	require.NoError(t, r.Finish(FinishInfo{Mode: "fetch"}))
	run, err := Open(dir)
	require.NoError(t, err)
	require.NoError(t, run.Verify())
	require.Equal(t, "fetch", run.Manifest.Mode)
	require.NotEmpty(t, run.Manifest.Agent.GoVersion)

	_, err = Create(dir)
	require.ErrorContains(t, err, "run directory "+dir+" is not empty (it holds manifest.json): a run directory keeps one run")

	empty := t.TempDir()
	_, err = Create(empty)
	require.NoError(t, err, "an empty directory is fine")
}
