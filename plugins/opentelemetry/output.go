package opentelemetry

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
	"github.com/alumet-go/alumet-agent/plugins/internal/push"
)

var (
	_ pipeline.Output          = (*Output)(nil)
	_ pipeline.CompactWriter   = (*Output)(nil)
	_ pipeline.FailureReporter = (*Output)(nil)
)

// Output exports the points through a push.Queue: Write only records each
// point as (series, time, value) in the batch being filled; the queue's
// sender builds each OTLP request from a batch, grouped by metric, and
// sends it. A slow or absent collector never holds the pipeline back.
type Output struct {
	q   *push.Queue
	log *slog.Logger
	x   *exporter
	enc *encoder // the sender's (Send is sequential)

	// Series are numbered by Write and read by Send.
	mu       sync.RWMutex
	series   []seriesEntry
	bySeries map[*measure.Series]uint32 // Write's only
	byKey    map[string]uint32          // Write's only
	keyBuf   []byte
	rejected atomic.Int64 // points the collector refused in partial successes
	over     atomic.Int64 // points of series beyond push.MaxSeries
	msg      []byte       // the sender's request buffer
}

type seriesEntry struct {
	metric measure.MetricID
	attrs  []byte // encoded data point attributes
}

func newOutput(c *Config, reg *measure.Registry, logger *slog.Logger, o push.Options) (*Output, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h, err := c.header()
	if err != nil {
		return nil, err
	}
	x, err := newExporter(c.protocol(), c.CollectorHost, http.Header(h), c.gzip(), c.RequestTimeout())
	if err != nil {
		return nil, err
	}
	out := &Output{log: logger, x: x, bySeries: map[*measure.Series]uint32{}, byKey: map[string]uint32{},
		enc: newEncoder(mapping{prefix: c.Prefix, suffix: c.Suffix, unitDisplay: c.UseUnitDisplayName,
			attributesToLabels: c.AddAttributesToLabels, version: Version}, reg, c.gzip())}
	o.Name, o.Target, o.Logger, o.Send = Name, push.RedactedURL(x.url), logger, out.send
	if o.BatchBytes == 0 {
		o.BatchBytes = push.SampleBatchBytes(o.BatchPoints)
	}
	if out.q, err = push.New(o); err != nil {
		return nil, err
	}
	return out, nil
}

// WritesCompact says Write reads Buffer.Compact (pipeline.CompactWriter).
func (o *Output) WritesCompact() {}

// ReportFailuresTo implements pipeline.FailureReporter.
func (o *Output) ReportFailuresTo(report func(error)) { o.q.ReportFailuresTo(report) }

func (o *Output) add(metric measure.MetricID, attrs func() []byte) (uint32, bool) {
	if len(o.series) >= push.MaxSeries {
		return 0, false
	}
	o.mu.Lock()
	o.series = append(o.series, seriesEntry{metric, attrs()})
	id := uint32(len(o.series) - 1)
	o.mu.Unlock()
	return id, true
}

func (o *Output) pointSeries(p *measure.Point) (uint32, bool) {
	o.keyBuf = strconv.AppendUint(o.keyBuf[:0], uint64(p.Metric), 10)
	o.keyBuf = appendAttrKey(append(o.keyBuf, 0), p.Resource, p.Consumer, p.Attributes)
	if id, ok := o.byKey[string(o.keyBuf)]; ok {
		return id, true
	}
	id, ok := o.add(p.Metric, func() []byte { return o.enc.attributesOf(p.Resource, p.Consumer, p.Attributes) })
	if ok {
		o.byKey[string(o.keyBuf)] = id
	}
	return id, ok
}

func (o *Output) compactSeries(s *measure.Series) (uint32, bool) {
	if id, ok := o.bySeries[s]; ok {
		return id, true
	}
	id, ok := o.add(s.Metric, func() []byte { return o.enc.attributesOf(s.Resource, s.Consumer, s.Attributes) })
	if ok {
		o.bySeries[s] = id
	}
	return id, ok
}

// Write records buf's points in the queue.
func (o *Output) Write(_ context.Context, buf *measure.Buffer) error {
	over, err := push.AppendSamples(o.q, buf, o.pointSeries, o.compactSeries)
	if over > 0 && o.over.Add(over) == over {
		o.log.Error(fmt.Sprintf("%s: more than %d series: the points of new series are left out (counted as lost)", Name, push.MaxSeries))
	}
	return err
}

// send builds the request of a batch of records and exports it.
func (o *Output) send(ctx context.Context, body []byte, points int) error {
	o.mu.RLock()
	for len(body) > 0 {
		id, ns, v, rest, ok := push.NextSample(body)
		if !ok || int(id) >= len(o.series) {
			o.mu.RUnlock()
			return &push.PermanentError{Err: push.ErrCorruptBatch}
		}
		s := o.series[id]
		if o.x.gzip {
			o.enc.addZ(s.metric, id, s.attrs, ns, v)
		} else {
			o.enc.addPoint(o.enc.metric(s.metric), s.attrs, ns, v)
		}
		body = rest
	}
	o.mu.RUnlock()
	var msg []byte
	if o.x.gzip {
		var err error
		if msg, err = o.enc.FinishZ(frameLen, &o.msg); err != nil {
			return &push.PermanentError{Err: err}
		}
	} else {
		msg = o.enc.FinishFramed(frameLen, &o.msg)
	}
	res, err := o.x.export(ctx, msg)
	if err == nil && res.Rejected > 0 {
		o.rejected.Add(res.Rejected)
		o.log.Error(fmt.Sprintf("%s: the collector rejected %d of %d points: %s", Name, res.Rejected, points, res.Message))
	}
	return err
}

// Close delivers what is buffered, within the queue's close timeout.
func (o *Output) Close() error {
	err := o.q.Close()
	if n := o.over.Load(); n > 0 {
		err = &push.ExtraLoss{Name: Name, Why: fmt.Sprintf("of series beyond %d left out", push.MaxSeries), N: n, Err: err}
	}
	if r := o.rejected.Load(); r > 0 {
		err = &push.ExtraLoss{Name: Name, Why: "rejected by the collector", N: r, Err: err}
	}
	return err
}
