package kwollectinput

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/config"
	"github.com/alumet-go/alumet-agent/kwollect"
	"github.com/alumet-go/alumet-agent/pipeline"
)

// The outcome of a series from its coverage: lag told from a dead meter,
// a meter that stopped told from Kwollect's lag by the other nodes of the
// site, failed queries.
func TestReportOutcomes(t *testing.T) {
	start := time.Date(2026, 12, 1, 22, 44, 49, 0, time.UTC)
	end := start.Add(7 * time.Second)
	now := end.Add(10 * time.Second)
	full := kwollect.SeriesCoverage{Site: "lyon", Metric: "wattmetre_power_watt", Rows: 8, First: start, Last: end.Add(-500 * time.Millisecond),
		Period: time.Second, Complete: true, Coverage: 1}
	stopped := full
	stopped.Rows, stopped.Last, stopped.Complete, stopped.Coverage = 4, start.Add(3*time.Second), false, 0.56
	stopped.Missing = []kwollect.Interval{{From: start.Add(3 * time.Second), To: end}}
	empty := kwollect.SeriesCoverage{Site: "lyon", Metric: "wattmetre_power_watt", Period: time.Second, Missing: []kwollect.Interval{{From: start, To: end}}}
	with := func(sc kwollect.SeriesCoverage, node string) kwollect.SeriesCoverage { sc.Node = node; return sc }
	tests := []struct {
		name    string
		cov     []kwollect.SeriesCoverage
		prior   map[string]time.Time
		dead    map[string]string
		failed  []kwollect.ChunkFailure
		want    map[string]pipeline.Status
		reasons map[string]string
		later   map[string]bool
	}{
		{name: "complete", cov: []kwollect.SeriesCoverage{with(full, "taurus-7")},
			want: map[string]pipeline.Status{"taurus-7": pipeline.StatusComplete}},
		{name: "short while the site is up to date, not judged stopped", cov: []kwollect.SeriesCoverage{with(full, "taurus-7"), with(stopped, "taurus-8")},
			want:    map[string]pipeline.Status{"taurus-7": pipeline.StatusComplete, "taurus-8": pipeline.StatusPartial},
			reasons: map[string]string{"taurus-8": "Kwollect is behind by more than fetch_timeout (2m0s), or the meter stopped"},
			later:   map[string]bool{"taurus-8": true}},
		{name: "judged stopped", cov: []kwollect.SeriesCoverage{with(full, "taurus-7"), with(stopped, "taurus-8")},
			dead:    map[string]string{"taurus-8": "the meter stopped: no sample after 22:44:52Z"},
			want:    map[string]pipeline.Status{"taurus-7": pipeline.StatusComplete, "taurus-8": pipeline.StatusPartial},
			reasons: map[string]string{"taurus-8": "the meter stopped: no sample after 22:44:52Z"},
			later:   map[string]bool{"taurus-8": false}},
		{name: "short alone: lag or a stopped meter", cov: []kwollect.SeriesCoverage{with(stopped, "taurus-8")},
			want:    map[string]pipeline.Status{"taurus-8": pipeline.StatusPartial},
			reasons: map[string]string{"taurus-8": "Kwollect is behind by more than fetch_timeout (2m0s), or the meter stopped"},
			later:   map[string]bool{"taurus-8": true}},
		{name: "empty but had data before: lagging", cov: []kwollect.SeriesCoverage{with(empty, "taurus-7")},
			prior:   map[string]time.Time{"taurus-7": start.Add(-30 * time.Second)},
			want:    map[string]pipeline.Status{"taurus-7": pipeline.StatusEmpty},
			reasons: map[string]string{"taurus-7": "Kwollect is 46 s behind: its last sample (22:44:19Z) is from before the window"},
			later:   map[string]bool{"taurus-7": true}},
		{name: "empty, never seen", cov: []kwollect.SeriesCoverage{with(empty, "taurus-7")},
			want:    map[string]pipeline.Status{"taurus-7": pipeline.StatusEmpty},
			reasons: map[string]string{"taurus-7": "no data from Kwollect in the window"}},
		{name: "failed queries", cov: []kwollect.SeriesCoverage{with(empty, "taurus-7")},
			failed:  []kwollect.ChunkFailure{{Site: "lyon", Nodes: []string{"taurus-7"}, Metrics: []string{"wattmetre_power_watt"}, From: start, To: end, Err: &kwollect.GatewayError{Status: 503}}},
			want:    map[string]pipeline.Status{"taurus-7": pipeline.StatusFailed},
			reasons: map[string]string{"taurus-7": "its queries failed (HTTP 503 Service Unavailable)"},
			later:   map[string]bool{"taurus-7": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.FetchTimeout = config.Duration(2 * time.Minute)
			s := &Source{cfg: cfg, log: slog.New(slog.DiscardHandler), clock: func() time.Time { return now }, outcomes: &pipeline.Outcomes{}}
			for node, last := range tt.prior {
				s.prior.note(node, "wattmetre_power_watt", last, 0)
			}
			for node, why := range tt.dead {
				s.prior.markDead(node, "wattmetre_power_watt", why)
			}
			out := s.report(start, end, 0, kwollect.Report{FailedChunks: tt.failed}, kwollect.Report{}, tt.cov)
			require.Len(t, out, len(tt.want))
			for _, oc := range out {
				require.Equal(t, tt.want[oc.Node], oc.Status, oc.Describe())
				if r, ok := tt.reasons[oc.Node]; ok {
					require.Contains(t, oc.Reason, r)
				}
				if l, ok := tt.later[oc.Node]; ok {
					require.Equal(t, l, oc.FetchedLaterOK, oc.Describe())
				}
				got, ok := s.outcomes.Of(0, oc.Node, oc.Metric)
				require.True(t, ok)
				require.Equal(t, oc.Status, got.Status)
			}
		})
	}
}

// A job whose nodes Kwollect resolves has series only through their rows:
// a job without any row still gets an outcome per metric, empty (or
// failed when its query failed).
func TestReportJobWithoutRows(t *testing.T) {
	start := time.Date(2026, 12, 1, 22, 44, 49, 0, time.UTC)
	end := start.Add(time.Second)
	tests := []struct {
		name   string
		failed []kwollect.ChunkFailure
		want   pipeline.Status
		reason string
	}{
		{"no row", nil, pipeline.StatusEmpty, "no node of OAR job 42 had a row in the window"},
		{"query failed", []kwollect.ChunkFailure{{Site: "nancy", JobID: 42, Metrics: []string{"wattmetre_power_watt"}, Err: &kwollect.GatewayError{Status: 502}}},
			pipeline.StatusFailed, "its queries failed (HTTP 502 Bad Gateway)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Source{cfg: DefaultConfig(), log: slog.New(slog.DiscardHandler), clock: func() time.Time { return end }, outcomes: &pipeline.Outcomes{},
				targets: targets{JobID: 42, JobSite: "nancy"}}
			out := s.report(start, end, 0, kwollect.Report{FailedChunks: tt.failed}, kwollect.Report{}, nil)
			require.Len(t, out, 1)
			require.Equal(t, "OAR job 42", out[0].Node)
			require.Equal(t, tt.want, out[0].Status)
			require.Contains(t, out[0].Reason, tt.reason)
			require.Len(t, s.outcomes.Bad(), 1)
		})
	}
}
