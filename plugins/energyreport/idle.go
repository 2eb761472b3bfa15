package energyreport

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
)

// Cooldown probing: every idlePoll, the last idleLookback of power is read
// from the source; each series' mean over its latest idleSpan of samples
// must be within the tolerance of its baseline.
var (
	idlePoll     = 2 * time.Second
	idleLookback = 20 * time.Second
	idleSpan     = 5 * time.Second
)

// idleFloor is the smallest excess over the baseline that counts as busy.
const idleFloor = 1.0 // W

// waitIdle is the cooldown between repeated runs when a baseline is known:
// it polls the recent power (pipeline.History.Recent) until every series
// with a baseline is back within tolerance above it, for at most limit (then
// it warns and lets the next run start). handled is false without a
// baseline (or a source of recent readings): the agent then waits its
// fixed cooldown.
func (r *report) waitIdle(ctx context.Context, tolerance float64, limit time.Duration) (handled bool, err error) {
	if r.base.Kind == NoBaseline || r.base.Kind == AfterBaseline {
		return false, nil // after:D: the idle level is known only after the last run
	}
	r.mu.Lock()
	var hist map[nodeMetric]float64
	if r.base.Kind == HistoryBaseline {
		hist = r.historyBaselines()
	}
	r.mu.Unlock()
	if r.base.Kind == HistoryBaseline && len(hist) == 0 {
		r.log.Warn("Cooldown: no idle level known (no history before the first run): waiting the fixed --cooldown instead.")
		return false, nil
	}
	begin := time.Now()
	deadline := begin.Add(limit)
	var last string
	for {
		now := time.Now()
		// The query too is bounded by the limit (its retries included).
		qctx, cancel := context.WithDeadline(ctx, deadline.Add(time.Second))
		buf, err := r.history.Recent(qctx, now.Add(-idleLookback), now)
		cancel()
		if errors.Is(err, pipeline.ErrNoRecent) {
			return false, nil
		}
		if ctx.Err() != nil {
			return true, ctx.Err()
		}
		if err == nil {
			var ok bool
			ok, last = r.idleNow(buf.Points, hist, tolerance)
			if ok {
				r.log.Info(fmt.Sprintf("Cooldown: the power is back to idle (at most %.0f %% above the idle level) after %v", 100*tolerance, time.Since(begin).Round(100*time.Millisecond)))
				return true, nil
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			r.log.Warn(fmt.Sprintf("Cooldown: the power is still more than %.0f %% above the idle level after %v (%s): starting the next run anyway.", 100*tolerance, limit, last))
			return true, nil
		}
		t := time.NewTimer(idlePoll)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return true, ctx.Err()
		}
	}
}

// idleNow says whether every power series of the recent points is within
// tolerance of its baseline (hist, or the constant baseline), and if not,
// which are not (for the warning at the limit).
func (r *report) idleNow(points []measure.Point, hist map[nodeMetric]float64, tolerance float64) (bool, string) {
	type acc struct {
		ts []int64
		ws []float64
	}
	by := map[nodeMetric]*acc{}
	for i := range points {
		p := &points[i]
		m, ok := r.reg.Metric(p.Metric)
		if !ok || !r.selects(m) {
			continue
		}
		k := nodeMetric{nodeOf(p.Resource), m.Name}
		a := by[k]
		if a == nil {
			a = &acc{}
			by[k] = a
		}
		a.ts = append(a.ts, p.Timestamp.UnixNano())
		a.ws = append(a.ws, p.Value.Float64())
	}
	if len(by) == 0 {
		return false, "no recent power sample"
	}
	var far []string
	for k, a := range by {
		base := r.base.Watts
		if hist != nil {
			b, ok := hist[k]
			if !ok {
				continue // no idle level for this series
			}
			base = b
		}
		latest := slices.Max(a.ts)
		var sum float64
		n := 0
		for i, t := range a.ts {
			if t > latest-idleSpan.Nanoseconds() && finite(a.ws[i]) {
				sum += a.ws[i]
				n++
			}
		}
		if n == 0 {
			continue
		}
		mean := sum / float64(n)
		// Back to idle: not above the idle level by more than the
		// tolerance (a node idling below its baseline is idle too); 1 W
		// at least, for a baseline near 0 W.
		if mean-base > max(tolerance*math.Abs(base), idleFloor) {
			far = append(far, fmt.Sprintf("%s %s at %.1f W, idle %.1f W", k.node, k.metric, mean, base))
		}
	}
	slices.Sort(far)
	return len(far) == 0, strings.Join(far, "; ")
}
