package kwollectinput

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/kwollect"
)

// A meter is judged down or stopped only when its newest sample stays the
// same while time passes and another node of its site is complete; a
// series with a sample after the window and none in it is empty at once.
func TestAbandonDead(t *testing.T) {
	const watt = "wattmetre_power_watt"
	t0 := time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC)
	complete := kwollect.SeriesCoverage{Site: "lyon", Node: "taurus-7", Metric: watt, Rows: 60, Last: t0, Period: time.Second, Complete: true}
	short := kwollect.SeriesCoverage{Site: "lyon", Node: "taurus-8", Metric: watt, Rows: 10, Last: t0.Add(-50 * time.Second), Period: time.Second}
	rowless := kwollect.SeriesCoverage{Site: "lyon", Node: "taurus-8", Metric: watt, Period: time.Second}
	tests := []struct {
		name string
		// rounds: the taurus-8 coverage seen at each round, 5 s apart
		rounds  []kwollect.SeriesCoverage
		peer    bool
		after   bool // a taurus-8 sample after the window is visible
		abandon int  // the round (1-based) taurus-8 is given up at; 0: never
		reason  string
	}{
		{name: "stopped: its newest sample does not move", rounds: repeat(short, 6), peer: true, abandon: 5, reason: "the meter stopped: no sample after 21:59:10Z, and none came in 20 s of waiting while taurus-7"},
		{name: "lagging: its newest sample moves", rounds: moving(short, 8), peer: true, abandon: 0},
		{name: "no complete peer: cannot tell", rounds: repeat(short, 8), peer: false, abandon: 0},
		{name: "down: no sample at all", rounds: repeat(rowless, 6), peer: true, abandon: 5, reason: "the meter is down: no sample in the window nor in the 10m0s before it, and none came in 20 s of waiting while taurus-7"},
		{name: "no sample falls in the window", rounds: repeat(rowless, 2), peer: false, after: true, abandon: 1, reason: "no sample falls in the window: the first one after it is at 22:00:03Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, err := kwollect.NewClient(kwollect.Options{BaseURL: "http://127.0.0.1:1/stable"})
			require.NoError(t, err)
			sess, err := client.NewSession(kwollect.Plan{Targets: []kwollect.Target{{Site: "lyon", Node: "taurus-7"}, {Site: "lyon", Node: "taurus-8"}}, Metrics: []string{watt}}, kwollect.SessionOptions{})
			require.NoError(t, err)
			now := t0.Add(time.Second)
			s := &Source{cfg: DefaultConfig(), log: slog.New(slog.DiscardHandler), clock: func() time.Time { return now }}
			if tt.after {
				s.prior.noteAfter("taurus-8", watt, t0.Add(3*time.Second), 0)
			}
			peer := complete
			if !tt.peer {
				peer.Complete = false
			}
			fz := &frozenSeries{m: map[string]frozenSince{}}
			abandonedAt := 0
			for i, sc := range tt.rounds {
				sc.Abandoned = sess.Coverage(t0.Add(-time.Minute), t0)[1].Abandoned // as the session says
				s.abandonDead(sess, []kwollect.SeriesCoverage{peer, sc}, fz)
				if abandonedAt == 0 && sess.Coverage(t0.Add(-time.Minute), t0)[1].Abandoned {
					abandonedAt = i + 1
				}
				now = now.Add(5 * time.Second)
			}
			require.Equal(t, tt.abandon, abandonedAt)
			if tt.reason != "" {
				require.Contains(t, s.prior.deadReason("taurus-8", watt), tt.reason)
			}
		})
	}
}

func repeat(sc kwollect.SeriesCoverage, n int) []kwollect.SeriesCoverage {
	out := make([]kwollect.SeriesCoverage, n)
	for i := range out {
		out[i] = sc
	}
	return out
}

// moving is sc with its newest sample 5 s later at each round.
func moving(sc kwollect.SeriesCoverage, n int) []kwollect.SeriesCoverage {
	out := repeat(sc, n)
	for i := range out {
		out[i].Last = sc.Last.Add(time.Duration(i) * 5 * time.Second)
		out[i].Rows = sc.Rows + 5*i
	}
	return out
}
