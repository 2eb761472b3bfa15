package promremotewrite

import (
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/plugins/internal/push"
)

// Field numbers of Prometheus' remote write 1.0 protobuf (prompb):
// WriteRequest{timeseries = 1}, TimeSeries{labels = 1, samples = 2},
// Label{name = 1, value = 2}, Sample{value = 1 (double), timestamp = 2
// (int64, ms)}.
const (
	fWriteTimeseries = 1
	fSeriesLabels    = 1
	fSeriesSamples   = 2
	fLabelName       = 1
	fLabelValue      = 2
	fSampleValue     = 1
	fSampleTimestamp = 2
)

// label is one label of a series.
type label struct{ name, value string }

// seriesLabels returns a point's labels, sorted by name as remote write
// requires: __name__ (the bare metric name, as influxdb's measurement),
// then the exporter's labels (resource_kind, resource_id,
// resource_consumer_kind, resource_consumer_id) and the attributes when
// asked. Empty values are left out (Prometheus treats an empty label as
// absent), and two attributes that sanitise to one name keep the first.
func seriesLabels(name string, r measure.Resource, c measure.Consumer, attrs []measure.Attribute, withAttrs bool) []label {
	ls := []label{{"__name__", metricName(name)}, {"resource_kind", r.Kind}, {"resource_id", r.ID},
		{"resource_consumer_kind", c.Kind}, {"resource_consumer_id", c.ID}}
	if withAttrs {
		for _, a := range attrs {
			ls = append(ls, label{labelName(a.Key), a.Value.String()})
		}
	}
	slices.SortStableFunc(ls, func(a, b label) int { return strings.Compare(a.name, b.name) })
	ls = slices.CompactFunc(ls, func(a, b label) bool { return a.name == b.name })
	return slices.DeleteFunc(ls, func(l label) bool { return l.value == "" })
}

// metricName makes s a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), each
// other character (code point) replaced by '_'.
func metricName(s string) string { return sanitize(s, true) }

// labelName makes s a valid label name ([a-zA-Z_][a-zA-Z0-9_]*); a name
// starting with "__" (reserved) gets a prefix.
func labelName(s string) string {
	n := sanitize(s, false)
	if strings.HasPrefix(n, "__") {
		n = "attr" + n
	}
	return n
}

func sanitize(s string, colon bool) string {
	ok := func(c byte, first bool) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || colon && c == ':' || !first && c >= '0' && c <= '9'
	}
	valid := s != ""
	for i := 0; valid && i < len(s); i++ {
		valid = ok(s[i], i == 0)
	}
	if valid {
		return s
	}
	if s == "" {
		return "_"
	}
	var b strings.Builder
	first := true
	for _, r := range s {
		if r < utf8.RuneSelf && ok(byte(r), first) {
			b.WriteByte(byte(r))
		} else {
			b.WriteByte('_')
		}
		first = false
	}
	return b.String()
}

// validUTF8: a label value must be UTF-8 (Prometheus rejects the whole
// request otherwise).
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func appendLabels(b []byte, ls []label) []byte {
	for _, l := range ls {
		v := validUTF8(l.value)
		n := protowire.SizeTag(fLabelName) + protowire.SizeBytes(len(l.name)) + protowire.SizeTag(fLabelValue) + protowire.SizeBytes(len(v))
		b = protowire.AppendTag(b, fSeriesLabels, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		b = protowire.AppendTag(b, fLabelName, protowire.BytesType)
		b = protowire.AppendString(b, l.name)
		b = protowire.AppendTag(b, fLabelValue, protowire.BytesType)
		b = protowire.AppendString(b, v)
	}
	return b
}

// encoder numbers the series (Write's side: seriesOf) and builds the
// WriteRequests (the sender's side: add, Finish): one TimeSeries per
// series with its samples in the order they came (kwollect-input gives
// each series in time order), the series in first-seen order.
type encoder struct {
	reg       *measure.Registry
	withAttrs bool

	// Write's side.
	names  map[measure.MetricID]string
	series map[*measure.Series]uint32 // of compact points
	byKey  map[string]uint32          // of Points, by their labels
	keyBuf []byte

	mu    sync.RWMutex
	table []*seriesBytes // by number; an entry's labels never change

	// The sender's side.
	seen   []*seriesBytes // a snapshot of table
	order  []*seriesBytes
	sameMs int64 // samples left out: in the millisecond of the previous one
}

// seriesBytes is a series' encoded labels and, for the sender, the
// samples of the request being built.
type seriesBytes struct {
	labels  []byte
	samples []byte
	n       int
	lastMs  int64 // the series' last sample, across requests
	hasLast bool
}

func newEncoder(reg *measure.Registry, withAttrs bool) *encoder {
	return &encoder{reg: reg, withAttrs: withAttrs, names: map[measure.MetricID]string{},
		series: map[*measure.Series]uint32{}, byKey: map[string]uint32{}}
}

func (e *encoder) name(id measure.MetricID) string {
	n, ok := e.names[id]
	if !ok {
		if m, found := e.reg.Metric(id); found {
			n = m.Name
		} else {
			n = "unknown_metric"
		}
		e.names[id] = n
	}
	return n
}

func (e *encoder) newSeries(ls []label) (uint32, bool) {
	if len(e.table) >= push.MaxSeries {
		return 0, false
	}
	e.mu.Lock()
	e.table = append(e.table, &seriesBytes{labels: appendLabels(nil, ls)})
	id := uint32(len(e.table) - 1)
	e.mu.Unlock()
	return id, true
}

// pointSeries numbers p's series; false beyond maxSeries.
func (e *encoder) pointSeries(p *measure.Point) (uint32, bool) {
	ls := seriesLabels(e.name(p.Metric), p.Resource, p.Consumer, p.Attributes, e.withAttrs)
	e.keyBuf = e.keyBuf[:0]
	for _, l := range ls {
		e.keyBuf = append(e.keyBuf, l.name...)
		e.keyBuf = append(e.keyBuf, 0)
		e.keyBuf = append(e.keyBuf, l.value...)
		e.keyBuf = append(e.keyBuf, 0)
	}
	if id, ok := e.byKey[string(e.keyBuf)]; ok {
		return id, true
	}
	id, ok := e.newSeries(ls)
	if ok {
		e.byKey[string(e.keyBuf)] = id
	}
	return id, ok
}

// compactSeries numbers s; false beyond maxSeries.
func (e *encoder) compactSeries(s *measure.Series) (uint32, bool) {
	if id, ok := e.series[s]; ok {
		return id, true
	}
	id, ok := e.newSeries(seriesLabels(e.name(s.Metric), s.Resource, s.Consumer, s.Attributes, e.withAttrs))
	if ok {
		e.series[s] = id
	}
	return id, ok
}

// lookup returns series id (the sender's side). The table only grows and
// its entries never change, so the sender reads a snapshot and takes the
// lock only for a series newer than it (a lock per sample was a fifth of
// the sender's time).
func (e *encoder) lookup(id uint32) (*seriesBytes, bool) {
	if int(id) < len(e.seen) {
		return e.seen[id], true
	}
	e.mu.RLock()
	e.seen = e.table
	e.mu.RUnlock()
	if int(id) >= len(e.seen) {
		return nil, false
	}
	return e.seen[id], true
}

// Tags of a sample, precomputed: TimeSeries.samples (bytes), then
// Sample.value (fixed64) and Sample.timestamp (varint).
var (
	tagSeriesSample   = byte(protowire.EncodeTag(fSeriesSamples, protowire.BytesType))
	tagSampleValue    = byte(protowire.EncodeTag(fSampleValue, protowire.Fixed64Type))
	tagSampleTimestmp = byte(protowire.EncodeTag(fSampleTimestamp, protowire.VarintType))
)

// add adds a sample to sb. Remote write has millisecond timestamps: a
// sample in the same millisecond as the series' previous one is left out
// (Prometheus would refuse it as a duplicate) and counted.
func (e *encoder) add(sb *seriesBytes, ns int64, v float64) {
	ms := floorMillis(ns)
	if sb.hasLast && ms == sb.lastMs {
		e.sameMs++
		return
	}
	sb.lastMs, sb.hasLast = ms, true
	if sb.n == 0 {
		e.order = append(e.order, sb)
	}
	// A Sample is at most 1+8+1+10 bytes, so its length is one byte.
	n := 1 + 8 + 1 + protowire.SizeVarint(uint64(ms))
	b := append(sb.samples, tagSeriesSample, byte(n), tagSampleValue)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	b = append(b, tagSampleTimestmp)
	sb.samples = binary.AppendUvarint(b, uint64(ms))
	sb.n++
}

// floorMillis: remote write's timestamps are milliseconds.
func floorMillis(ns int64) int64 {
	ms := ns / 1e6
	if ns%1e6 < 0 {
		ms--
	}
	return ms
}

// Samples is the number of samples in the request being built.
func (e *encoder) Samples() int {
	n := 0
	for _, sb := range e.order {
		n += sb.n
	}
	return n
}

// Finish appends the WriteRequest of the samples added since the last
// Finish to b (uncompressed) and starts a new one.
func (e *encoder) Finish(b []byte) []byte {
	for _, sb := range e.order {
		n := len(sb.labels) + len(sb.samples)
		b = protowire.AppendTag(b, fWriteTimeseries, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		b = append(b, sb.labels...)
		b = append(b, sb.samples...)
		sb.samples, sb.n = sb.samples[:0], 0
	}
	e.order = e.order[:0]
	return b
}
