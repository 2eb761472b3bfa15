package energyreport

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/testkit"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
)

// TestCompactionEqualsWhole: in run mode a long series is integrated piece
// by piece and its memory stays bounded, and the report is the one the
// whole series gives (energy, samples, coverage, gaps, peak), for 1 Hz
// means and 50 Hz readings with gaps and holes.
func TestCompactionEqualsWhole(t *testing.T) {
	oldAt, oldKeep, oldPlot := compactAt, compactKeep, plotKeep
	compactAt, compactKeep, plotKeep = 300, 50, 64
	defer func() { compactAt, compactKeep, plotKeep = oldAt, oldKeep, oldPlot }()

	for _, tt := range []struct {
		name   string
		metric string
		period time.Duration
	}{
		{"1 Hz means", watt, time.Second},
		{"50 Hz BMC-like readings", "bmc_node_power_watt", 20 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 9))
			var pts []measure.Point
			reg := measure.NewRegistry()
			ids := registerMetrics(t, reg)
			ts := t0.Add(300 * time.Millisecond)
			for i := range 5000 {
				step := tt.period
				if rng.IntN(200) == 0 {
					step *= 7 // a gap
				}
				ts = ts.Add(step)
				for _, node := range []string{"a", "b"} {
					pts = append(pts, measure.Point{Metric: ids[tt.metric], Timestamp: ts, Value: measure.Float(100 + 50*math.Sin(float64(i)/40) + 10*rng.Float64()),
						Resource: measure.Resource{Kind: "device_id", ID: node}})
				}
			}
			end := ts.Add(tt.period / 3)
			summary := func(compact bool) map[string]any {
				dir := t.TempDir()
				cfg := quietConfig()
				cfg.SummaryFile = filepath.Join(dir, "e.json")
				var logBuf testkit.LockedBuffer
				r, err := newReport(cfg, reg, slogTo(&logBuf), nil, t0)
				require.NoError(t, err)
				r.compact = compact
				r.keepAll = !compact // the whole: every sample until the end
				tr := &Transform{r: r}
				for i := 0; i < len(pts); i += 97 { // buffers of 97 points, in order
					require.NoError(t, tr.Apply(&measure.Buffer{Points: pts[i:min(i+97, len(pts))]}))
				}
				if compact {
					for _, s := range r.series {
						require.NotNil(t, s.done, "compacted")
						require.Less(t, s.samples.n, compactAt+1, "bounded memory")
						require.LessOrEqual(t, len(s.done.plot), plotKeep+plotKeep/2+2)
					}
				}
				require.NoError(t, (&Transform{r: r}).OnEvent(context.Background(), pipeline.Event{Kind: pipeline.EndConsumerMeasurement, Time: end}))
				_, err = tr.Finish()
				require.NoError(t, err, logBuf.String())
				b, err := os.ReadFile(cfg.SummaryFile)
				require.NoError(t, err)
				var m map[string]any
				require.NoError(t, json.Unmarshal(b, &m))
				return m
			}
			whole, pieces := summary(false), summary(true)
			ws, ps := whole["series"].([]any), pieces["series"].([]any)
			require.Len(t, ps, 2)
			for i := range ws {
				w, p := ws[i].(map[string]any), ps[i].(map[string]any)
				require.InDelta(t, w["energy_j"], p["energy_j"], 1e-9*w["energy_j"].(float64))
				require.Equal(t, w["samples"], p["samples"])
				require.InDelta(t, w["coverage"], p["coverage"], 1e-9)
				require.Equal(t, w["gaps"], p["gaps"])
				require.Equal(t, w["peak_w"], p["peak_w"])
				require.Equal(t, w["method"], p["method"])
				require.InDelta(t, w["uncertainty_j"], p["uncertainty_j"], 1e-9*w["uncertainty_j"].(float64))
				require.NotEmpty(t, w["gaps"])
			}
		})
	}
}

// TestCompactionLateSamples: a sample older than the integrated part that
// still comes is not integrated, and said.
func TestCompactionLateSamples(t *testing.T) {
	oldAt, oldKeep := compactAt, compactKeep
	compactAt, compactKeep = 100, 10
	defer func() { compactAt, compactKeep = oldAt, oldKeep }()
	reg := measure.NewRegistry()
	ids := registerMetrics(t, reg)
	var logBuf testkit.LockedBuffer
	cfg := quietConfig()
	cfg.SummaryFile = filepath.Join(t.TempDir(), "energy.json")
	r, err := newReport(cfg, reg, slogTo(&logBuf), nil, t0)
	require.NoError(t, err)
	r.compact = true
	point := func(s float64) measure.Point {
		return measure.Point{Metric: ids[watt], Timestamp: at(s), Value: measure.Float(100), Resource: measure.Resource{Kind: "device_id", ID: "a"}}
	}
	for i := range 150 {
		r.add(&measure.Buffer{Points: []measure.Point{point(float64(i))}})
	}
	r.add(&measure.Buffer{Points: []measure.Point{point(5.5)}}) // long integrated
	for i := 150; i < 250; i++ {
		r.add(&measure.Buffer{Points: []measure.Point{point(float64(i))}})
	}
	require.NoError(t, (&Transform{r: r}).OnEvent(context.Background(), pipeline.Event{Kind: pipeline.EndConsumerMeasurement, Time: at(250)}))
	_, err = r.finish()
	require.NoError(t, err)
	require.Contains(t, logBuf.String(), "a wattmetre_power_watt: 1 samples came after their time was integrated")
	// The summary says so too: the energy is doubtful, not a measurement.
	data, err := os.ReadFile(cfg.SummaryFile)
	require.NoError(t, err)
	var sum struct{ Warnings []string }
	require.NoError(t, json.Unmarshal(data, &sum))
	require.Contains(t, sum.Warnings, "1 samples came after their time was integrated and are not in the energy (a/wattmetre_power_watt 1): the energy of those series may be off")
}

func slogTo(w *testkit.LockedBuffer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// Compact points (pipeline.CompactReader) give the report the same energy
// as the same points given as Points: same table, same summary.
func TestCompactPointsSameReport(t *testing.T) {
	samples := append(constant100("a"), ramp("b")...)
	report := func(compact bool) (string, string) {
		reg := measure.NewRegistry()
		ids := registerMetrics(t, reg)
		var table testkit.LockedBuffer
		cfg := quietConfig()
		cfg.Table = true
		cfg.SummaryFile = filepath.Join(t.TempDir(), "energy.json")
		r, err := newReport(cfg, reg, slog.New(slog.DiscardHandler), &table, t0)
		require.NoError(t, err)
		tr := &Transform{r: r}
		ctx := context.Background()
		require.NoError(t, tr.OnEvent(ctx, pipeline.Event{Kind: pipeline.StartConsumerMeasurement, Time: at(0.5)}))
		series := map[string]*measure.Series{}
		buf := &measure.Buffer{}
		for _, s := range samples {
			p := measure.Point{Metric: ids[s.metric], Timestamp: at(s.t), Value: measure.Float(s.w),
				Resource: measure.Resource{Kind: "device_id", ID: s.node}, Consumer: measure.Consumer{Kind: "device_origin", ID: "port-" + s.node},
				Attributes: []measure.Attribute{{Key: "metric_id", Value: measure.String(s.metric)}}}
			if !compact {
				buf.Push(p)
				continue
			}
			ser := series[s.node]
			if ser == nil {
				ser = &measure.Series{Metric: p.Metric, Resource: p.Resource, Consumer: p.Consumer, Attributes: p.Attributes}
				series[s.node] = ser
			}
			buf.Compact = append(buf.Compact, measure.SeriesPoint{Series: ser, Time: p.Timestamp.UnixNano(), Value: p.Value})
		}
		require.NoError(t, tr.Apply(buf))
		require.NoError(t, tr.OnEvent(ctx, pipeline.Event{Kind: pipeline.EndConsumerMeasurement, Time: at(10.5)}))
		_, err = tr.Finish()
		require.NoError(t, err)
		b, err := os.ReadFile(cfg.SummaryFile)
		require.NoError(t, err)
		return table.String(), string(b)
	}
	wantTable, wantSummary := report(false)
	gotTable, gotSummary := report(true)
	require.Contains(t, wantTable, "wattmetre_power_watt")
	require.Equal(t, wantTable, gotTable)
	require.Equal(t, wantSummary, gotSummary)
}
