package agent

import (
	"bytes"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/logging"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
)

func TestEpochArg(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Unix(1796165089, 0), "1796165089"},
		{time.Unix(1796165096, 122230499), "1796165096.122230499"},
		{time.Unix(1796165096, 500_000_000), "1796165096.5"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, EpochArg(tt.t))
	}
}

// The last lines of the log and the agent's own exit code, from the
// outcomes the sources recorded.
func TestFinishTellsOutcomes(t *testing.T) {
	from, to := time.Unix(1796165089, 0), time.Unix(1796165096, 122230499)
	complete := pipeline.Outcome{Node: "taurus-7", Metric: "wattmetre_power_watt", Window: pipeline.Interval{From: from, To: to},
		Status: pipeline.StatusComplete, Samples: 8, Coverage: 1, Lag: 4200 * time.Millisecond, LagKnown: true}
	partial := pipeline.Outcome{Node: "taurus-8", Metric: "wattmetre_power_watt", Window: pipeline.Interval{From: from, To: to},
		Status: pipeline.StatusPartial, Samples: 4, Coverage: 0.561, Reason: "the meter stopped", FetchedLaterOK: true,
		Missing: []pipeline.Interval{{From: from.Add(3 * time.Second), To: to}}}
	tests := []struct {
		name     string
		outcomes []pipeline.Outcome
		failed   bool
		code     int
		want     []string
		not      []string
		doubts   []string // of a transform (pipeline.Doubter)
	}{
		{"nothing recorded", nil, false, 0, []string{"All plugins have stopped."}, []string{"Measurement", "all data written", "All plugins stopped"}, nil},
		{"complete", []pipeline.Outcome{complete}, false, 0,
			[]string{"All plugins have stopped.\n", "All plugins stopped, all data written.", "Measurement complete: taurus-7/wattmetre_power_watt covers the whole window (8 samples). Kwollect was behind by at most: taurus-7 4.2 s."},
			[]string{"INCOMPLETE", "fetch --from"}, nil},
		{"complete, but the agent failed", []pipeline.Outcome{complete}, true, 1, []string{"Measurement complete"}, nil, nil},
		{"partial", []pipeline.Outcome{complete, partial}, false, ExitIncomplete,
			[]string{"some series are incomplete (below)",
				"Measurement INCOMPLETE: 1 of 2 series are not complete (1 partial, 1 complete); what was fetched is written.",
				"  taurus-8/wattmetre_power_watt: PARTIAL, 56.1 % covered, 4 samples, missing [22:44:52Z, 22:44:56.122Z]: the meter stopped",
				"later (Kwollect may have ingested the rest by then):\n  resume 1796165089 1796165096.122230499"},
			[]string{"all data written", "taurus-7/wattmetre_power_watt: complete"}, nil},
		{"partial and failed: incomplete wins over the failure", []pipeline.Outcome{partial}, true, ExitIncomplete, []string{"INCOMPLETE"}, nil, nil},
		{"complete, but a result is doubtful: the last line says it", []pipeline.Outcome{complete}, false, 0,
			[]string{"WARN  alumet_agent] Measurement complete: taurus-7/wattmetre_power_watt covers the whole window (8 samples). Kwollect was behind by at most: taurus-7 4.2 s. But a result is doubtful: doubter: x has no energy"},
			[]string{"INFO  alumet_agent] Measurement complete"}, []string{"x has no energy"}},
		{"partial and doubtful: the doubt before the outcome", []pipeline.Outcome{partial}, false, ExitIncomplete,
			[]string{"Doubtful result: doubter: x has no energy\n", "Measurement INCOMPLETE"}, nil, []string{"x has no energy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(logging.NewHandler(&logs, logging.Filter{Default: slog.LevelInfo}, false))
			b := pipeline.NewBuilder(measure.NewRegistry(), 0, log)
			for _, oc := range tt.outcomes {
				b.Outcomes().Record(oc)
			}
			if tt.doubts != nil {
				require.NoError(t, b.AddTransform("doubter", doubter(tt.doubts)))
			}
			a := &Agent{log: log, pipeline: b.Start(t.Context()), shutdownTimeout: time.Second, outputs: 1}
			a.SetResume(func(_ int, from, to time.Time) string { return "resume " + EpochArg(from) + " " + EpochArg(to) })
			require.Equal(t, tt.code, a.Finish(tt.failed))
			for _, w := range tt.want {
				require.Contains(t, logs.String(), w)
			}
			for _, n := range tt.not {
				require.NotContains(t, logs.String(), n)
			}
		})
	}
}

// doubter is a transform with doubts.
type doubter []string

func (d doubter) Apply(*measure.Buffer) error { return nil }
func (d doubter) Doubts() []string            { return d }

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Empty(t, cmp.Diff(string(want), got), "%s (go test -update rewrites it)", path)
}

// Alumet's startup message (alumet-dev/alumet core/alumet/src/agent/builder.rs,
// print_stats, at afb0aa127162f0ec3bcbeddd83cf51df08002984, the same in v0.9.5),
// with its singulars ("1 plugin", "0 transform")
// and its empty lists.
func TestStartupSummary(t *testing.T) {
	w, err := measure.ParseUnit("W")
	require.NoError(t, err)
	tests := []struct {
		name                         string
		started, disabled            []string
		metrics                      []measure.Metric
		sources, transforms, outputs int
	}{
		{"startup-summary-kwollect.txt", []string{"csv v0.2.0", "kwollect-input v1.0.0"}, []string{"energy-report v0.1.0"},
			[]measure.Metric{{Name: "wattmetre_power_watt", Type: measure.F64, Unit: w}}, 1, 0, 1},
		{"startup-summary-empty.txt", []string{"csv v0.2.0"}, nil, nil, 0, 0, 1},
		{"startup-summary-plural.txt", []string{"csv v0.2.0", "kwollect-input v1.0.0", "energy-report v0.1.0"}, nil,
			[]measure.Metric{{Name: "wattmetre_power_watt", Type: measure.F64, Unit: w}, {Name: "bmc_node_power_watt", Type: measure.F64, Unit: w}}, 2, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			golden(t, tt.name, startupSummary(tt.started, tt.disabled, tt.metrics, tt.sources, tt.transforms, tt.outputs))
		})
	}
}

// Stop says Alumet's lines, in the plugins' start order, then ours.
func TestStopLines(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(logging.NewHandler(&logs, logging.Filter{Default: slog.LevelInfo}, false))
	b := pipeline.NewBuilder(measure.NewRegistry(), 0, log)
	a := &Agent{log: log, pipeline: b.Start(t.Context()), shutdownTimeout: time.Second, outputs: 1,
		started: []string{"csv v0.2.0", "kwollect-input v1.0.0"}}
	require.NoError(t, a.Stop())
	var msgs []string
	for _, l := range strings.Split(strings.TrimSuffix(logs.String(), "\n"), "\n") {
		_, m, ok := strings.Cut(l, " alumet::agent::builder] ")
		require.True(t, ok, l)
		msgs = append(msgs, m)
	}
	require.Empty(t, cmp.Diff([]string{"Stopping the plugins...", "Stopping plugin csv v0.2.0", "Stopping plugin kwollect-input v1.0.0", StoppedLine}, msgs))
}
