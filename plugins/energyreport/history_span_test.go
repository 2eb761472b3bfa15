package energyreport

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
)

// TestHistoryLongerThanAsked: another element (a run directory) may ask the
// sources for more history than the baseline's D; the baseline is still
// the median over the D before the run, not over all that came.
func TestHistoryLongerThanAsked(t *testing.T) {
	for _, tc := range []struct {
		name     string
		baseline string
		want     float64
	}{
		{"10 s: 100 W only", "before:10s", 100},
		{"90 s: 30 at 300 W, 60 at 100 W", "before:90s", 100},
		{"the whole 2 min: 60 and 60", "before:2m", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := measure.NewRegistry()
			ids := registerMetrics(t, reg)
			cfg := DefaultConfig()
			cfg.Baseline = tc.baseline
			r, err := newReport(cfg, reg, nil, nil, t0)
			require.NoError(t, err)
			b := pipeline.NewBuilder(reg, 4, nil)
			require.NoError(t, install(b, nil, r))
			b.History().Want(2 * time.Minute) // another element asks for more
			// 2 min of history: 300 W from 2 min to 1 min before, then 100 W.
			buf := &measure.Buffer{}
			for s := 120; s > 0; s-- {
				w := 100.0
				if s > 60 {
					w = 300
				}
				buf.Push(measure.Point{Metric: ids[watt], Timestamp: t0.Add(-time.Duration(s) * time.Second), Value: measure.Float(w),
					Resource: measure.Resource{Kind: "device_id", ID: "taurus-7"}})
			}
			b.History().DeliverBefore(buf, t0)
			got := r.historyBaselines()
			require.Len(t, got, 1)
			for _, v := range got {
				require.Equal(t, tc.want, v)
			}
		})
	}
}
