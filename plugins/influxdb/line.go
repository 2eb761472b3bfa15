package influxdb

import (
	"math"
	"strconv"
	"unsafe"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/plugins/internal/lineflate"
)

// The fixed tags, in Alumet's order, and the names an attribute takes when
// it would collide with them or with the value field.
const (
	tagResourceKind = "resource_kind"
	tagResourceID   = "resource_id"
	tagConsumerKind = "resource_consumer_kind"
	tagConsumerID   = "resource_consumer_id"
	valueField      = "value"
	reservedPrefix  = "alumet_attribute__"
)

func reserved(key string) bool {
	switch key {
	case tagResourceKind, tagResourceID, tagConsumerKind, tagConsumerID:
		return true
	}
	return false
}

// encoder writes points as InfluxDB line protocol, byte-compatible with
// Alumet's influxdb plugin (spec §1.2): the measurement is the metric's
// bare name; the tags are resource_kind, resource_id,
// resource_consumer_kind, resource_consumer_id, then the attribute tags in
// the point's order, a tag with an empty value omitted; the fields are the
// attribute fields, then value; then the timestamp in ns.
//
// Differences from Alumet: a NaN or infinite value is not written (Alumet
// writes "NaN"/"inf", which the server rejects with the whole batch): the
// point is skipped and counted; an attribute field holding one is left
// out. A CR or LF in a name or tag (which would end the line) is written
// as an escaped space. In v1 mode, integers are written InfluxDB 1.x's way
// (123i, and a float beyond int64) since 1.x rejects 123u.
//
// With gzip, the lines go to a lineflate stream instead (appendCompactZ,
// appendPointZ): the same bytes, compressed as they are written, each
// point's prefix never copied.
type encoder struct {
	asTag func(key string) bool
	v1    bool
	reg   *measure.Registry
	names []string // metric names by id, "" when not yet looked up

	series map[*measure.Series]*cached // compact series
	recent [64]struct {
		s *measure.Series
		c *cached
	}
	scratch []byte
	ns      nanos

	fl     *lineflate.Writer            // with gzip
	points map[string]*lineflate.Series // the prefixes of Points, with gzip
	pre    []byte                       // a Point's prefix
}

// cached is what the encoder keeps of a compact series: its line prefix up
// to and including "value=", or, with gzip, its lineflate series.
type cached struct {
	prefix []byte
	z      *lineflate.Series
}

// newEncoder returns an encoder; with gzip, it writes lineflate streams.
func newEncoder(reg *measure.Registry, asTag func(string) bool, v1, gzip bool) *encoder {
	e := &encoder{asTag: asTag, v1: v1, reg: reg, series: map[*measure.Series]*cached{}}
	if gzip {
		e.fl, e.points = &lineflate.Writer{}, map[string]*lineflate.Series{}
	}
	return e
}

// maxSeriesCache bounds the prefixes kept for compact series.
const maxSeriesCache = 1 << 14

func (e *encoder) metricName(id measure.MetricID) (string, bool) {
	if int(id) < len(e.names) && e.names[id] != "" {
		return e.names[id], true
	}
	m, ok := e.reg.Metric(id)
	if !ok {
		return "", false
	}
	for int(id) >= len(e.names) {
		e.names = append(e.names, "")
	}
	e.names[id] = m.Name
	return m.Name, true
}

// appendPrefix appends everything of a point's line before its value:
// "measurement,tags fields,value=". ok is false for an unknown metric.
func (e *encoder) appendPrefix(b []byte, metric measure.MetricID, r measure.Resource, c measure.Consumer, attrs []measure.Attribute) ([]byte, bool) {
	name, ok := e.metricName(metric)
	if !ok {
		return b, false
	}
	b = appendEscaped(b, name, false)
	b = appendTag(b, tagResourceKind, r.Kind)
	b = appendTag(b, tagResourceID, r.ID)
	b = appendTag(b, tagConsumerKind, c.Kind)
	b = appendTag(b, tagConsumerID, c.ID)
	for i := range attrs {
		a := &attrs[i]
		if !e.asTag(a.Key) {
			continue
		}
		key := a.Key
		if reserved(key) {
			key = reservedPrefix + key
		}
		e.scratch = appendTagText(e.scratch[:0], a.Value)
		if len(e.scratch) == 0 {
			continue
		}
		b = append(b, ',')
		b = appendEscaped(b, key, true)
		b = append(b, '=')
		b = appendEscapedBytes(b, e.scratch)
	}
	b = append(b, ' ')
	for i := range attrs {
		a := &attrs[i]
		if e.asTag(a.Key) {
			continue
		}
		key := a.Key
		if reserved(key) || key == valueField {
			key = reservedPrefix + key
		}
		if a.Value.Type == measure.AttrF64 && !finite(a.Value.F64) {
			continue
		}
		b = appendEscaped(b, key, true)
		b = append(b, '=')
		b = e.appendFieldValue(b, a.Value)
		b = append(b, ',')
	}
	return append(b, valueField+"="...), true
}

// appendValue appends the value, the timestamp and '\n'. ok is false for a
// NaN or infinite value (nothing appended).
func (e *encoder) appendValue(b []byte, v measure.Value, ns int64) ([]byte, bool) {
	if v.Type() == measure.U64 {
		b = e.appendUint(b, v.Uint64())
	} else {
		f := v.Float64()
		if !finite(f) {
			return b, false
		}
		b = measure.AppendFloat(b, f)
	}
	b = append(b, ' ')
	b = e.ns.append(b, ns)
	return append(b, '\n'), true
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func (e *encoder) appendUint(b []byte, u uint64) []byte {
	if !e.v1 {
		return append(strconv.AppendUint(b, u, 10), 'u')
	}
	if u <= math.MaxInt64 {
		return append(strconv.AppendUint(b, u, 10), 'i')
	}
	return measure.AppendFloat(b, float64(u))
}

// result of encoding one point.
type result int

const (
	written result = iota
	unknownMetric
	notFinite
)

// appendPoint appends the line of p.
func (e *encoder) appendPoint(b []byte, p *measure.Point) ([]byte, result) {
	start := len(b)
	b, ok := e.appendPrefix(b, p.Metric, p.Resource, p.Consumer, p.Attributes)
	if !ok {
		return b[:start], unknownMetric
	}
	b, ok = e.appendValue(b, p.Value, p.Timestamp.UnixNano())
	if !ok {
		return b[:start], notFinite
	}
	return b, written
}

// compact returns the cached prefix of a compact point's series (nil for
// an unknown metric).
func (e *encoder) compact(s *measure.Series) *cached {
	// A direct-mapped cache first, by the series' address: the map's
	// lookup (hash, probe, compare) was a tenth of the output's cost. The
	// address only picks the slot (the pointers are compared), so that a
	// collision is only a miss.
	slot := &e.recent[(uintptr(unsafe.Pointer(s))>>4^uintptr(unsafe.Pointer(s))>>10)%uintptr(len(e.recent))]
	if slot.s == s {
		return slot.c
	}
	c := e.series[s]
	if c == nil {
		prefix, good := e.appendPrefix(nil, s.Metric, s.Resource, s.Consumer, s.Attributes)
		if !good {
			return nil
		}
		if len(e.series) >= maxSeriesCache {
			clear(e.series)
			clear(e.recent[:])
		}
		c = &cached{prefix: prefix}
		if e.fl != nil {
			c.z = e.fl.NewSeries(prefix)
		}
		e.series[s] = c
	}
	slot.s, slot.c = s, c
	return c
}

// appendCompact appends the line of a compact point, its series' prefix
// cached.
func (e *encoder) appendCompact(b []byte, p *measure.SeriesPoint) ([]byte, result) {
	c := e.compact(p.Series)
	if c == nil {
		return b, unknownMetric
	}
	start := len(b)
	b = append(b, c.prefix...)
	b, ok := e.appendValue(b, p.Value, p.Time)
	if !ok {
		return b[:start], notFinite
	}
	return b, written
}

// appendCompactZ appends the line of a compact point to the lineflate
// stream b.
func (e *encoder) appendCompactZ(b []byte, p *measure.SeriesPoint) ([]byte, result) {
	c := e.compact(p.Series)
	if c == nil {
		return b, unknownMetric
	}
	tail, ok := e.appendValue(c.z.TailBuffer(), p.Value, p.Time)
	if !ok {
		return b, notFinite
	}
	return e.fl.AppendLine(b, c.z, tail), written
}

// appendPointZ appends the line of p to the lineflate stream b; the
// lines of equal prefixes make a series.
func (e *encoder) appendPointZ(b []byte, p *measure.Point) ([]byte, result) {
	pre, ok := e.appendPrefix(e.pre[:0], p.Metric, p.Resource, p.Consumer, p.Attributes)
	e.pre = pre
	if !ok {
		return b, unknownMetric
	}
	z := e.points[string(pre)]
	if z == nil {
		if len(e.points) >= maxSeriesCache {
			clear(e.points)
		}
		z = e.fl.NewSeries(pre)
		e.points[string(pre)] = z
	}
	tail, ok := e.appendValue(z.TailBuffer(), p.Value, p.Timestamp.UnixNano())
	if !ok {
		return b, notFinite
	}
	return e.fl.AppendLine(b, z, tail), written
}

func appendTag(b []byte, key, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, ',')
	b = append(b, key...)
	b = append(b, '=')
	return appendEscaped(b, value, true)
}

// appendEscaped escapes ',' and ' ' (and '=' when eq: tag keys, tag
// values and field keys); CR and LF become an escaped space; a backslash
// is doubled where it would escape what follows (a special byte, or the
// end: "a\" then a ',' would hide the ','), and kept as it is elsewhere,
// as Alumet writes it.
func appendEscaped(b []byte, s string, eq bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ',' || c == ' ' || (eq && c == '='):
			b = append(b, '\\', c)
		case c == '\n' || c == '\r':
			b = append(b, '\\', ' ')
		case c == '\\' && (i+1 == len(s) || special(s[i+1], eq)):
			b = append(b, '\\', '\\')
		default:
			b = append(b, c)
		}
	}
	return b
}

func special(c byte, eq bool) bool {
	return c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\\' || (eq && c == '=')
}

func appendEscapedBytes(b, s []byte) []byte {
	return appendEscaped(b, string(s), true)
}

// appendTagText appends an attribute's value as a tag value.
func appendTagText(b []byte, v measure.AttrValue) []byte {
	switch v.Type {
	case measure.AttrU64List:
		return appendList(b, v.List)
	case measure.AttrBool:
		return strconv.AppendBool(b, v.Bool)
	}
	return v.AppendText(b)
}

func appendList(b []byte, l []uint64) []byte {
	for i, u := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, u, 10)
	}
	return b
}

// appendFieldValue appends an attribute as a field value: a string quoted
// ('"' and '\' escaped), u64 as 123u (123i in v1), f64, bool as T/F, a
// list as the string "1,2,3".
func (e *encoder) appendFieldValue(b []byte, v measure.AttrValue) []byte {
	switch v.Type {
	case measure.AttrU64:
		return e.appendUint(b, v.U64)
	case measure.AttrF64:
		return measure.AppendFloat(b, v.F64)
	case measure.AttrBool:
		if v.Bool {
			return append(b, 'T')
		}
		return append(b, 'F')
	case measure.AttrU64List:
		b = append(b, '"')
		b = appendList(b, v.List)
		return append(b, '"')
	}
	b = append(b, '"')
	for i := 0; i < len(v.Str); i++ {
		c := v.Str[i]
		if c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, c)
	}
	return append(b, '"')
}
