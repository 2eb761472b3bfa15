// Rows to points: the sink, the series templates.

package kwollectinput

import (
	"context"
	"math"
	"slices"
	"strings"

	"github.com/alumet-go/alumet-agent/kwollect"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
)

// sink turns Kwollect rows into points and emits them batch by batch, in
// compact form (no Point per row) when every consumer reads it.
// A run index (exec --repeat) tags every point with a run attribute.
func (s *Source) sink(ctx context.Context, out pipeline.Emitter, run int) func([]kwollect.Row) error {
	conv := s.newConverter(run)
	ce, compact := out.(pipeline.CompactEmitter)
	compact = compact && ce.AcceptsCompact()
	return func(rows []kwollect.Row) error {
		if compact && inNanoRange(rows) {
			buf := measure.NewPooledCompactBuffer(len(rows))
			for i := range rows {
				r := &rows[i]
				if r.Null {
					continue
				}
				ser, err := conv.seriesOf(r)
				if err != nil {
					buf.Release()
					return err
				}
				buf.Compact = append(buf.Compact, measure.SeriesPoint{Series: ser, Time: r.Timestamp.UnixNano(), Value: measure.Float(r.Value)})
			}
			return out.Emit(ctx, buf)
		}
		buf := measure.NewPooledBuffer(len(rows)) // recycled by the pipeline once written
		for i := range rows {
			r := &rows[i]
			if r.Null {
				continue
			}
			p, err := conv.point(r)
			if err != nil {
				buf.Release()
				return err
			}
			buf.Push(p)
		}
		return out.Emit(ctx, buf)
	}
}

// inNanoRange reports whether every row's time fits in int64 Unix
// nanoseconds (years 1678 to 2262), as compact points need.
func inNanoRange(rows []kwollect.Row) bool {
	const lo, hi = math.MinInt64/1_000_000_000 + 1, math.MaxInt64/1_000_000_000 - 1
	for i := range rows {
		if sec := rows[i].Timestamp.Unix(); sec < lo || sec > hi {
			return false
		}
	}
	return true
}

// converter finds the series of rows. What a point shares with the other
// points of its series (metric id, resource, consumer, attributes) is built
// once per series: the points of a series share one attribute slice (its
// capacity is its length, so an append copies; like every buffer, points
// are read-only once emitted). This keeps the hot path to one lookup and no
// allocation per row.
type converter struct {
	s        *Source
	run      int
	byDevice map[string][]int // device id → indexes in series
	series   []seriesTemplate
	// recent maps kwollect.Row.Series to an index in series, direct-mapped
	// by Series % len: a hit skips the map and the comparisons.
	recent [64]recentSeries
}

type recentSeries struct {
	id  uint64 // kwollect.Row.Series; 0: empty
	idx int
}

// seriesTemplate is one (device, metric, origin, labels) series and what
// its points have in common.
type seriesTemplate struct {
	device, metric string
	orig           []string
	labels         []kwollect.Label
	series         *measure.Series
}

func (s *Source) newConverter(run int) *converter {
	return &converter{s: s, run: run, byDevice: map[string][]int{}}
}

func (t *seriesTemplate) matches(r *kwollect.Row) bool {
	return t.metric == r.MetricID && slices.Equal(t.orig, r.DeviceOrig) && slices.Equal(t.labels, r.Labels)
}

// seriesOf returns the series of r.
func (c *converter) seriesOf(r *kwollect.Row) (*measure.Series, error) {
	slot := &c.recent[r.Series%uint64(len(c.recent))]
	if r.Series != 0 && slot.id == r.Series {
		return c.series[slot.idx].series, nil
	}
	t, err := c.lookup(r)
	if err != nil {
		return nil, err
	}
	if r.Series != 0 {
		*slot = recentSeries{id: r.Series, idx: t}
	}
	return c.series[t].series, nil
}

// point returns the point of r.
func (c *converter) point(r *kwollect.Row) (measure.Point, error) {
	ser, err := c.seriesOf(r)
	if err != nil {
		return measure.Point{}, err
	}
	return measure.Point{Metric: ser.Metric, Timestamp: r.Timestamp.UTC(), Value: measure.Float(r.Value),
		Resource: ser.Resource, Consumer: ser.Consumer, Attributes: ser.Attributes}, nil
}

// lookup returns the index in c.series of r's series, adding it if new.
func (c *converter) lookup(r *kwollect.Row) (int, error) {
	idx := c.byDevice[r.DeviceID]
	for _, i := range idx {
		if c.series[i].matches(r) {
			return i, nil
		}
	}
	nt, err := c.s.template(r, c.run)
	if err != nil {
		return 0, err
	}
	c.series = append(c.series, nt)
	c.byDevice[r.DeviceID] = append(idx, len(c.series)-1)
	return len(c.series) - 1, nil
}

// template builds what the points of r's series share.
func (s *Source) template(r *kwollect.Row, run int) (seriesTemplate, error) {
	id, err := s.metric(r.MetricID)
	if err != nil {
		return seriesTemplate{}, err
	}
	consumer := measure.Consumer{Kind: measure.KindLocalMachine}
	if len(r.DeviceOrig) > 0 {
		consumer = measure.Consumer{Kind: "device_origin", ID: strings.Join(r.DeviceOrig, ",")}
	}
	n := 1 + len(r.Labels)
	if run > 0 {
		n++
	}
	attrs := make([]measure.Attribute, 0, n)
	attrs = append(attrs, measure.Attribute{Key: "metric_id", Value: measure.String(r.MetricID)})
	for _, l := range r.Labels {
		attrs = append(attrs, measure.Attribute{Key: l.Key, Value: measure.String(l.Value)})
	}
	if run > 0 {
		attrs = append(attrs, measure.Attribute{Key: "run", Value: measure.AttrValue{Type: measure.AttrU64, U64: uint64(run)}})
	}
	return seriesTemplate{
		device: r.DeviceID, metric: r.MetricID,
		orig: slices.Clone(r.DeviceOrig), labels: slices.Clone(r.Labels),
		series: &measure.Series{Metric: id, Resource: measure.Resource{Kind: "device_id", ID: r.DeviceID}, Consumer: consumer, Attributes: attrs},
	}, nil
}
