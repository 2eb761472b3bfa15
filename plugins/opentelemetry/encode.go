package opentelemetry

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/plugins/internal/lineflate"
)

// Field numbers of the OTLP protobuf messages (opentelemetry-proto v1:
// collector/metrics/v1, metrics/v1, common/v1, resource/v1). The tests
// decode what this file writes with the official Go definitions.
const (
	fRequestResourceMetrics = 1 // ExportMetricsServiceRequest.resource_metrics

	fResourceMetricsResource = 1 // ResourceMetrics.resource
	fResourceMetricsScope    = 2 // ResourceMetrics.scope_metrics

	fResourceAttributes = 1 // Resource.attributes

	fScopeMetricsScope   = 1 // ScopeMetrics.scope
	fScopeMetricsMetrics = 2 // ScopeMetrics.metrics

	fScopeName       = 1 // InstrumentationScope.name
	fScopeVersion    = 2
	fScopeAttributes = 3

	fMetricName        = 1 // Metric.name
	fMetricDescription = 2
	fMetricUnit        = 3
	fMetricGauge       = 5

	fGaugeDataPoints = 1 // Gauge.data_points

	fPointTime       = 3 // NumberDataPoint.time_unix_nano (fixed64)
	fPointAsDouble   = 4
	fPointAttributes = 7

	fKeyValueKey   = 1 // KeyValue.key
	fKeyValueValue = 2
	fAnyString     = 1 // AnyValue.string_value
)

// mapping is how points become OTLP metrics: Alumet's opentelemetry
// plugin's names and attributes.
type mapping struct {
	prefix, suffix     string
	unitDisplay        bool
	attributesToLabels bool
	version            string // the scope's version: the plugin's
}

// encoder builds ExportMetricsServiceRequest messages from data points
// whose attributes are encoded once per series (attributesOf, kept by the
// output); a request groups the points by metric, as Alumet does (one
// Metric per name, in the order the names first appear).
type encoder struct {
	m   mapping
	reg *measure.Registry

	metrics map[measure.MetricID]*metricBytes

	// The request being built: the metrics in first-seen order, each with
	// its data points.
	order []*metricBytes
	hdr   []byte // FinishFramed's envelope, reused

	// With gzip (newEncoder's gz): the lineflate writer, the series of
	// its lines by the output's series number, the stream.
	fl     *lineflate.Writer
	zser   []*lineflate.Series
	stream []byte
}

// metricBytes is a metric's name, description and unit (encoded) and the
// data points of the request being built.
type metricBytes struct {
	head []byte
	// buf is room bytes of headroom, then the data points: FinishFramed
	// writes a one-metric request's envelope into the headroom, so the
	// points are not copied.
	buf  []byte
	room int
	n    int
	// The gzip request's points (addZ) and their encoded size.
	zpoints []zPoint
	zlen    int
}

// size is the encoded size of the data points.
func (mb *metricBytes) size() int {
	if mb.zlen > 0 {
		return mb.zlen
	}
	return len(mb.points())
}

// points returns the encoded data points.
func (mb *metricBytes) points() []byte {
	if len(mb.buf) < mb.room {
		return nil
	}
	return mb.buf[mb.room:]
}

// envelopeRoom is the headroom for a request's envelope besides the
// metric's head: the resource, the scope and the nested lengths take
// about 120 bytes, a transport's frame 5.
const envelopeRoom = 192

// newEncoder returns an encoder; with gz, of gzip requests (addZ, FinishZ).
func newEncoder(m mapping, reg *measure.Registry, gz bool) *encoder {
	e := &encoder{m: m, reg: reg, metrics: map[measure.MetricID]*metricBytes{}}
	if gz {
		e.fl = &lineflate.Writer{}
	}
	return e
}

func (e *encoder) metric(id measure.MetricID) *metricBytes {
	mb := e.metrics[id]
	if mb == nil {
		name, desc, unit := "metric_"+strconv.Itoa(int(id)), "", ""
		if m, ok := e.reg.Metric(id); ok {
			name, desc = m.Name, m.Description
			unit = m.Unit.UniqueName()
			if e.m.unitDisplay {
				unit = m.Unit.DisplayName()
			}
		}
		var h []byte
		h = protowire.AppendTag(h, fMetricName, protowire.BytesType)
		h = protowire.AppendString(h, validUTF8(e.m.prefix+name+e.m.suffix))
		if desc != "" {
			h = protowire.AppendTag(h, fMetricDescription, protowire.BytesType)
			h = protowire.AppendString(h, validUTF8(desc))
		}
		if unit != "" {
			h = protowire.AppendTag(h, fMetricUnit, protowire.BytesType)
			h = protowire.AppendString(h, validUTF8(unit))
		}
		mb = &metricBytes{head: h, room: len(h) + envelopeRoom}
		e.metrics[id] = mb
	}
	if mb.n == 0 {
		e.order = append(e.order, mb)
	}
	return mb
}

// attributesOf encodes a point's attributes (NumberDataPoint.attributes,
// as Alumet: all strings, sorted by key, an empty value written "empty").
func (e *encoder) attributesOf(r measure.Resource, c measure.Consumer, attrs []measure.Attribute) []byte {
	kv := []struct{ k, v string }{
		{"resource_kind", r.Kind}, {"resource_id", r.ID},
		{"resource_consumer_kind", c.Kind}, {"resource_consumer_id", c.ID},
	}
	if e.m.attributesToLabels {
		for _, a := range attrs {
			kv = append(kv, struct{ k, v string }{a.Key, a.Value.String()})
		}
	}
	slices.SortStableFunc(kv, func(a, b struct{ k, v string }) int { return strings.Compare(a.k, b.k) })
	var b []byte
	for _, p := range kv {
		v := p.v
		if v == "" {
			v = "empty"
		}
		b = appendStringKV(b, fPointAttributes, p.k, v)
	}
	return b
}

// appendStringKV appends field f holding KeyValue{key, AnyValue{string_value: v}}.
func appendStringKV(b []byte, f protowire.Number, key, v string) []byte {
	key, v = validUTF8(key), validUTF8(v)
	av := protowire.AppendTag(nil, fAnyString, protowire.BytesType)
	av = protowire.AppendString(av, v)
	n := protowire.SizeTag(fKeyValueKey) + protowire.SizeBytes(len(key)) + protowire.SizeTag(fKeyValueValue) + protowire.SizeBytes(len(av))
	b = protowire.AppendTag(b, f, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(n))
	b = protowire.AppendTag(b, fKeyValueKey, protowire.BytesType)
	b = protowire.AppendString(b, key)
	b = protowire.AppendTag(b, fKeyValueValue, protowire.BytesType)
	return protowire.AppendBytes(b, av)
}

// addPoint adds a data point with pre-encoded attributes.
func (e *encoder) addPoint(mb *metricBytes, attrs []byte, ns int64, v float64) {
	n := len(attrs) + protowire.SizeTag(fPointTime) + 8 + protowire.SizeTag(fPointAsDouble) + 8
	b := mb.buf
	if len(b) < mb.room {
		b = append(b[:0], make([]byte, mb.room)...)
	}
	b = protowire.AppendTag(b, fGaugeDataPoints, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(n))
	b = append(b, attrs...)
	b = protowire.AppendTag(b, fPointTime, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, uint64(ns))
	b = protowire.AppendTag(b, fPointAsDouble, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, math.Float64bits(v))
	mb.buf = b
	mb.n++
}

// appendAttrKey appends the text key of a Point's attributes.
func appendAttrKey(b []byte, r measure.Resource, c measure.Consumer, attrs []measure.Attribute) []byte {
	for _, s := range []string{r.Kind, r.ID, c.Kind, c.ID} {
		b = append(b, s...)
		b = append(b, 0)
	}
	for _, a := range attrs {
		b = append(b, a.Key...)
		b = append(b, 0)
		b = a.Value.AppendText(b)
		b = append(b, 0)
	}
	return b
}

// Points is the number of data points in the request being built.
func (e *encoder) Points() int {
	n := 0
	for _, mb := range e.order {
		n += mb.n
	}
	return n
}

// Finish returns the ExportMetricsServiceRequest of the points added since
// the last Finish, appended to b, and starts a new one. The lengths of the
// nested messages are computed first, so that the data points are copied
// once.
func (e *encoder) Finish(b []byte) []byte {
	b = e.envelope(b, func(b []byte, mb *metricBytes, _ bool) []byte { return append(b, mb.points()...) })
	return e.reset(b)
}

// FinishFramed is Finish with frame bytes free before the request (a
// transport's header, for the caller to fill): the returned slice is the
// frame then the request. A request of one metric is built in place, in
// the headroom of its points, without copying them; the result is then
// valid until the next point is added. Otherwise the request is built in
// *scratch (grown as needed), after the frame.
func (e *encoder) FinishFramed(frame int, scratch *[]byte) []byte {
	if len(e.order) == 1 {
		mb := e.order[0]
		// All of the request but the points, which follow it in place.
		h := e.envelope(e.hdr[:0], func(b []byte, _ *metricBytes, _ bool) []byte { return b })
		e.hdr = h
		if start := mb.room - len(h) - frame; start >= 0 {
			copy(mb.buf[mb.room-len(h):], h)
			out := mb.buf[start:]
			mb.buf, mb.n = mb.buf[:0], 0
			e.order = e.order[:0]
			return out
		}
	}
	b := append((*scratch)[:0], make([]byte, frame)...)
	*scratch = e.Finish(b)
	return *scratch
}

// envelope appends the request to b: the resource, the scope, each metric's
// name and unit; at each metric's data points, points appends them (or
// not: it returns what the envelope continues from).
func (e *encoder) envelope(b []byte, points func(b []byte, mb *metricBytes, last bool) []byte) []byte {
	var scope []byte
	scope = protowire.AppendTag(scope, fScopeName, protowire.BytesType)
	scope = protowire.AppendString(scope, "alumet")
	scope = protowire.AppendTag(scope, fScopeVersion, protowire.BytesType)
	scope = protowire.AppendString(scope, e.m.version)
	scope = appendStringKV(scope, fScopeAttributes, "tool", "alumet")
	res := appendStringKV(nil, fResourceAttributes, "service.name", "alumet-otlp-grpc")

	metricLen := func(mb *metricBytes) int {
		return len(mb.head) + protowire.SizeTag(fMetricGauge) + protowire.SizeBytes(mb.size())
	}
	smLen := protowire.SizeTag(fScopeMetricsScope) + protowire.SizeBytes(len(scope))
	for _, mb := range e.order {
		smLen += protowire.SizeTag(fScopeMetricsMetrics) + protowire.SizeBytes(metricLen(mb))
	}
	rmLen := protowire.SizeTag(fResourceMetricsResource) + protowire.SizeBytes(len(res)) +
		protowire.SizeTag(fResourceMetricsScope) + protowire.SizeBytes(smLen)

	b = protowire.AppendTag(b, fRequestResourceMetrics, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(rmLen))
	b = protowire.AppendTag(b, fResourceMetricsResource, protowire.BytesType)
	b = protowire.AppendBytes(b, res)
	b = protowire.AppendTag(b, fResourceMetricsScope, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(smLen))
	b = protowire.AppendTag(b, fScopeMetricsScope, protowire.BytesType)
	b = protowire.AppendBytes(b, scope)
	for i, mb := range e.order {
		b = protowire.AppendTag(b, fScopeMetricsMetrics, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(metricLen(mb)))
		b = append(b, mb.head...)
		b = protowire.AppendTag(b, fMetricGauge, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(mb.size()))
		b = points(b, mb, i == len(e.order)-1)
	}
	return b
}

// The gzip requests: a collector accepts gzip, and the data points, 200
// bytes of which the attributes are 180, are most of a request's bytes
// (the loopback or the network sending them cost more than encoding them).
// lineflate writes them as a back-reference to the series' previous point
// and another to its time's high bytes (a record series), the rest as
// literals: a request eight times smaller, for a fraction of a general
// compressor's cost. A data point is written as
// addPoint writes it, the time's tag at the end of the series' prefix, so
// that the uncompressed request is Finish's, byte for byte.

// zPoint is a data point of a gzip request: its series (the output's
// number), time and value.
type zPoint struct {
	series uint32
	ns     int64
	v      float64
}

// addZ adds a data point to the gzip request being built; attrs is the
// series' encoded attributes.
func (e *encoder) addZ(metric measure.MetricID, series uint32, attrs []byte, ns int64, v float64) {
	mb := e.metric(metric)
	for int(series) >= len(e.zser) {
		e.zser = append(e.zser, nil)
	}
	zs := e.zser[series]
	if zs == nil {
		n := len(attrs) + protowire.SizeTag(fPointTime) + 8 + protowire.SizeTag(fPointAsDouble) + 8
		var p []byte
		p = protowire.AppendTag(p, fGaugeDataPoints, protowire.BytesType)
		p = protowire.AppendVarint(p, uint64(n))
		p = append(p, attrs...)
		p = protowire.AppendTag(p, fPointTime, protowire.Fixed64Type)
		zs = e.fl.NewRecordSeries(p, zRun)
		e.zser[series] = zs
	}
	mb.zpoints = append(mb.zpoints, zPoint{series, ns, v})
	mb.zlen += len(zs.Prefix()) + zTail
	mb.n++
}

// zTail is a data point's bytes after its prefix: the time, the value's
// tag, the value. From zRun on, the time's high bytes and the value's tag
// are the series' previous point's, most of the time (the time's low four
// bytes wrap every 4.3 s).
const (
	zTail = 8 + 1 + 8
	zRun  = 4
)

// FinishZ returns frame free bytes then the gzip member of the request of
// the points added by addZ since the last FinishZ, appended to (*dst)[:0]
// (grown as needed), and starts a new request.
func (e *encoder) FinishZ(frame int, dst *[]byte) ([]byte, error) {
	if e.fl == nil {
		return nil, errors.New("opentelemetry: FinishZ of an encoder without gzip")
	}
	stream := e.stream[:0]
	head := e.envelope(e.hdr[:0], func(b []byte, mb *metricBytes, _ bool) []byte {
		stream = e.fl.AppendLine(stream, nil, b)
		for _, p := range mb.zpoints {
			zs := e.zser[p.series]
			t := zs.TailBuffer()
			t = binary.LittleEndian.AppendUint64(t, uint64(p.ns))
			t = protowire.AppendTag(t, fPointAsDouble, protowire.Fixed64Type)
			t = binary.LittleEndian.AppendUint64(t, math.Float64bits(p.v))
			stream = e.fl.AppendLine(stream, zs, t)
		}
		return b[:0]
	})
	e.hdr, e.stream = head, stream
	for _, mb := range e.order {
		mb.zpoints, mb.zlen, mb.n = mb.zpoints[:0], 0, 0
	}
	e.order = e.order[:0]
	out := append((*dst)[:0], make([]byte, frame)...)
	out, err := lineflate.Finish(out, stream)
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	*dst = out
	return out, nil
}

// reset starts a new request.
func (e *encoder) reset(b []byte) []byte {
	for _, mb := range e.order {
		mb.buf, mb.n = mb.buf[:0], 0
	}
	e.order = e.order[:0]
	return b
}

// validUTF8 replaces invalid UTF-8 with U+FFFD: protobuf strings must be
// UTF-8, and a collector rejects a whole request over one bad byte.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
