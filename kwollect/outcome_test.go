package kwollect

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/kwollect/emulator"
)

// The missing intervals and coverage of a series: a meter outage inside
// the window, a meter that stops before the end, a node without data.
func TestSessionMissingIntervals(t *testing.T) {
	from := emuNow.Add(-10 * time.Minute)
	to := emuNow.Add(-5 * time.Minute) // long ingested
	env := newTestEnv(t, emulator.Config{Gaps: []emulator.Gap{
		{Nodes: []string{"taurus-7"}, Metrics: []string{watt}, Start: from.Add(time.Minute), Stop: from.Add(2 * time.Minute)},
		{Nodes: []string{"taurus-8"}, Metrics: []string{watt}, Start: to.Add(-time.Minute)},
		{Nodes: []string{"taurus-9"}, Metrics: []string{watt}, Start: from.Add(-time.Hour)},
	}}, nil)
	s, err := env.client.NewSession(Plan{Targets: []Target{{"lyon", "taurus-7"}, {"lyon", "taurus-8"}, {"lyon", "taurus-9"}, {"lyon", "taurus-10"}}, Metrics: []string{watt}}, env.opts(SessionOptions{}))
	require.NoError(t, err)
	_, err = s.Fetch(context.Background(), from, to, newCollector().sink)
	require.NoError(t, err)
	got := map[string]SeriesCoverage{}
	for _, sc := range s.Coverage(from, to) {
		got[sc.Node] = sc
	}
	window := to.Sub(from).Seconds()
	tests := []struct {
		node     string
		complete bool
		missing  []Interval
		coverage float64
	}{
		// Samples at each second, each covering its second: the last before
		// the gap is at from+59s, the first after it at from+2m.
		{"taurus-7", true, []Interval{{from.Add(time.Minute), from.Add(2 * time.Minute)}}, 1 - 60/window},
		{"taurus-8", false, []Interval{{to.Add(-time.Minute), to}}, 1 - 60/window},
		{"taurus-9", false, []Interval{{from, to}}, 0},
		{"taurus-10", true, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.node, func(t *testing.T) {
			sc := got[tt.node]
			require.Equal(t, tt.complete, sc.Complete)
			require.Empty(t, cmp.Diff(tt.missing, sc.Missing))
			require.InDelta(t, tt.coverage, sc.Coverage, 1e-9)
		})
	}
}

// The lag observed while completing the tail: the time from the end of
// the newest sample to the query that found Kwollect behind.
func TestSessionObservedLag(t *testing.T) {
	env := newTestEnv(t, emulator.Config{Lag: 20 * time.Second}, nil)
	o := env.opts(SessionOptions{})
	o.Sleep = env.clock.Sleep // sleeping advances the emulator's clock
	s, err := env.client.NewSession(Plan{Targets: []Target{{"lyon", "taurus-7"}}, Metrics: []string{watt}}, o)
	require.NoError(t, err)
	to := emuNow
	from := to.Add(-2 * time.Minute)
	col := newCollector()
	_, err = s.Fetch(context.Background(), from, to, col.sink)
	require.NoError(t, err)
	tail, err := s.Complete(context.Background(), to, to.Add(time.Minute), col.sink)
	require.NoError(t, err)
	require.True(t, tail.Complete())
	lag := tail.Series[0].Lag
	// The 1 Hz mean of second S shows at S + 1 s + 20 s: at the first
	// query the newest sample ended 20 to 21 s before.
	require.GreaterOrEqual(t, lag, 20*time.Second)
	require.Less(t, lag, 21*time.Second+time.Millisecond)
}

// SetPeriod gives a short window the period of a 5 s series: one row in
// it is complete; Abandon stops the wait for a series known to have no
// meter.
func TestSessionPriorAndAbandon(t *testing.T) {
	env := newTestEnv(t, emulator.Config{Lag: time.Second}, nil)
	o := env.opts(SessionOptions{})
	o.Sleep = env.clock.Sleep
	s, err := env.client.NewSession(Plan{Targets: []Target{{"lyon", "taurus-7"}, {"lyon", "taurus-8"}}, Metrics: []string{bmc}}, o)
	require.NoError(t, err)
	// taurus-7's BMC every 5 s; a 4 s window holding one of its samples,
	// 3 s before the end.
	rows, err := env.emu.Expected("lyon", []string{"taurus-7"}, []string{bmc}, emuNow.Add(-time.Minute), emuNow.Add(-30*time.Second))
	require.NoError(t, err)
	require.NotEmpty(t, rows)
	sample := rows[len(rows)-1].Timestamp
	from, to := sample.Add(-time.Second), sample.Add(3*time.Second)
	s.SetPeriod("taurus-7", bmc, 5*time.Second)
	s.Abandon("taurus-8", bmc)
	col := newCollector()
	_, err = s.Fetch(context.Background(), from, to, col.sink)
	require.NoError(t, err)
	tail, err := s.Complete(context.Background(), to, emuNow.Add(time.Hour), col.sink)
	require.NoError(t, err)
	require.Empty(t, env.clock.Sleeps(), "nothing to wait for")
	require.Zero(t, tail.Queries)
	cov := s.Coverage(from, to)
	require.True(t, cov[0].Complete, "taurus-7: its next sample is expected after the window")
	require.Equal(t, 5*time.Second, cov[0].Period)
	require.Empty(t, cov[0].Missing)
	require.True(t, cov[1].Abandoned)
	require.False(t, cov[1].Complete)
}

// A command of a few milliseconds: the 1 Hz mean of its second, stamped
// before the window's start, covers it all.
func TestSessionMissingShortWindow(t *testing.T) {
	env := newTestEnv(t, emulator.Config{}, nil)
	s, err := env.client.NewSession(Plan{Targets: []Target{{"lyon", "taurus-7"}}, Metrics: []string{watt}}, env.opts(SessionOptions{}))
	require.NoError(t, err)
	second := emuNow.Add(-time.Minute)
	from, to := second.Add(544*time.Millisecond), second.Add(546*time.Millisecond)
	_, err = s.Fetch(context.Background(), second, to, newCollector().sink) // queries start at the second
	require.NoError(t, err)
	sc := s.Coverage(from, to)[0]
	require.True(t, sc.Complete)
	require.Empty(t, sc.Missing)
	require.InDelta(t, 1, sc.Coverage, 1e-9)
}

// Successive polls (run mode) extend one span of samples per pair rather
// than adding one each: memory and Coverage stay flat over days.
func TestSessionSampleSpansStayFew(t *testing.T) {
	env := newTestEnv(t, emulator.Config{}, nil)
	s, err := env.client.NewSession(Plan{Targets: []Target{{"lyon", "taurus-7"}}, Metrics: []string{watt}}, env.opts(SessionOptions{}))
	require.NoError(t, err)
	start := emuNow.Add(-time.Hour)
	for end := start.Add(10 * time.Second); !end.After(emuNow.Add(-time.Minute)); end = end.Add(10 * time.Second) {
		_, err := s.Fetch(context.Background(), start, end, newCollector().sink)
		require.NoError(t, err)
	}
	p := s.bySite["lyon"].pairs[pairKey{"taurus-7", watt}]
	require.Len(t, p.data, 1, "one span for an hour of polls")
	require.Empty(t, s.Coverage(start, emuNow.Add(-time.Minute))[0].Missing)
}
