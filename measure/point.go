// Package measure holds the data model shared by every plugin: measurement
// points, their values, resources, consumers and attributes, and the metric
// registry with units.
package measure

import (
	"math"
	"slices"
	"strconv"
	"sync"
	"time"
)

// ValueType is the type of a point's value, fixed per metric.
type ValueType uint8

// Value types, named as Alumet prints them in its startup summary.
const (
	F64 ValueType = iota
	U64
)

func (t ValueType) String() string {
	if t == U64 {
		return "U64"
	}
	return "F64"
}

// ParseValueType is the inverse of ValueType.String.
func ParseValueType(s string) (ValueType, bool) {
	switch s {
	case "F64":
		return F64, true
	case "U64":
		return U64, true
	}
	return F64, false
}

// Value is a u64 or an f64, without boxing.
type Value struct {
	typ ValueType
	u   uint64
	f   float64
}

// Float returns an f64 value.
func Float(v float64) Value { return Value{typ: F64, f: v} }

// Uint returns a u64 value.
func Uint(v uint64) Value { return Value{typ: U64, u: v} }

// Type reports whether the value is a u64 or an f64.
func (v Value) Type() ValueType { return v.typ }

// Float64 returns the value as a float64, converting a u64.
func (v Value) Float64() float64 {
	if v.typ == U64 {
		return float64(v.u)
	}
	return v.f
}

// Uint64 returns a u64 value (0 for an f64 value).
func (v Value) Uint64() uint64 { return v.u }

// AppendText appends the value in Alumet's text form: u64 in decimal, f64 in
// the shortest round-trip form without exponent, NaN, inf and -inf.
func (v Value) AppendText(b []byte) []byte {
	if v.typ == U64 {
		return strconv.AppendUint(b, v.u, 10)
	}
	return AppendFloat(b, v.f)
}

// String returns the text form of AppendText.
func (v Value) String() string { return string(v.AppendText(nil)) }

// AppendFloat appends f the way Alumet writes floats.
func AppendFloat(b []byte, f float64) []byte {
	switch {
	case f != f:
		return append(b, "NaN"...)
	case f > maxFloat:
		return append(b, "inf"...)
	case f < -maxFloat:
		return append(b, "-inf"...)
	}
	if out, ok := appendShortDecimal(b, f); ok {
		return out
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

// appendShortDecimal is the fast path of AppendFloat for the readings of
// meters: magnitudes in [1e-3, 1e9) with at most 4 decimals, which it
// writes exactly as strconv.AppendFloat(b, f, 'f', -1, 64) does, at a
// fraction of the cost.
//
// Why the bytes are the same: for the smallest k in 0..4 such that some
// integer m gives m/10^k == |f| (both operands exact float64s, so the
// division is the correctly rounded value of the decimal m/10^k, i.e. what
// parsing it gives), the decimal m/10^k is the shortest one that round
// trips, which is what strconv prints. Such an m exists for some k ≤ 4 iff
// it does for k = 4 (m·10^(4-k)/10^4 is the same decimal, so the same
// double), and then m4 = round(|f|×10^4): in that range |f|×10^4, computed
// in floating point, is within 2e-3 of m4, so m4 is the only candidate.
// The smallest k is then 4 minus the trailing zeros of m4. ok is false
// when f is not of that kind.
//
// The steps are cheap ones: floor(x+0.5) for math.Round (the same integer
// whenever either passes the check: x is then within 2e-3 of it), int64
// conversions (one instruction each way), the digits from a table.
func appendShortDecimal(b []byte, f float64) ([]byte, bool) {
	a := math.Abs(f)
	if !(a >= 1e-3 && a < 1e9) {
		return b, false
	}
	m := int64(a*1e4 + 0.5)
	if float64(m)/1e4 != a {
		return b, false
	}
	if f < 0 {
		b = append(b, '-')
	}
	b = appendSmall(b, uint64(m)/10000)
	frac := uint64(m) % 10000
	if frac == 0 {
		return b, true
	}
	hi, lo := frac/100, frac%100
	switch {
	case lo == 0 && hi%10 == 0:
		return append(b, '.', twoDigits[2*hi]), true
	case lo == 0:
		return append(b, '.', twoDigits[2*hi], twoDigits[2*hi+1]), true
	case lo%10 == 0:
		return append(b, '.', twoDigits[2*hi], twoDigits[2*hi+1], twoDigits[2*lo]), true
	}
	return append(b, '.', twoDigits[2*hi], twoDigits[2*hi+1], twoDigits[2*lo], twoDigits[2*lo+1]), true
}

// appendSmall appends u in decimal, the common integer parts of a reading
// without strconv's loop.
func appendSmall(b []byte, u uint64) []byte {
	switch {
	case u < 10:
		return append(b, byte('0'+u))
	case u < 100:
		return append(b, twoDigits[2*u], twoDigits[2*u+1])
	case u < 1000:
		r := u % 100
		return append(b, byte('0'+u/100), twoDigits[2*r], twoDigits[2*r+1])
	}
	return strconv.AppendUint(b, u, 10)
}

const maxFloat = 1.7976931348623157e308

// Resource is what is measured (a node, a CPU package, a device).
type Resource struct {
	Kind string
	ID   string
}

// Consumer is who consumes the resource (a process, a cgroup, a wattmeter port).
type Consumer struct {
	Kind string
	ID   string
}

// Well-known kinds. Custom kinds (device_id, device_origin) are plain strings.
const (
	KindLocalMachine = "local_machine"
	KindProcess      = "process"
)

// LocalMachine is the resource or consumer standing for the whole host; its id is empty.
var LocalMachine = Resource{Kind: KindLocalMachine}

// AttrType is the type of an attribute value.
type AttrType uint8

// Attribute value types.
const (
	AttrString AttrType = iota
	AttrU64
	AttrF64
	AttrBool
	AttrU64List
)

// AttrValue is a typed attribute value.
type AttrValue struct {
	Type AttrType
	Str  string
	U64  uint64
	F64  float64
	Bool bool
	List []uint64
}

// String returns a string attribute value.
func String(s string) AttrValue { return AttrValue{Type: AttrString, Str: s} }

// AppendText appends the text form used by the CSV output.
func (a AttrValue) AppendText(b []byte) []byte {
	switch a.Type {
	case AttrU64:
		return strconv.AppendUint(b, a.U64, 10)
	case AttrF64:
		return AppendFloat(b, a.F64)
	case AttrBool:
		return strconv.AppendBool(b, a.Bool)
	case AttrU64List:
		// Alumet prints "[12, 3, ]"; we print the list correctly.
		b = append(b, '[')
		for i, u := range a.List {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = strconv.AppendUint(b, u, 10)
		}
		return append(b, ']')
	default:
		return append(b, a.Str...)
	}
}

// String returns the text form of the value.
func (a AttrValue) String() string { return string(a.AppendText(nil)) }

// Attribute is a key and a typed value attached to a point.
type Attribute struct {
	Key   string
	Value AttrValue
}

// Point is one measurement.
type Point struct {
	Metric     MetricID
	Timestamp  time.Time
	Value      Value
	Resource   Resource
	Consumer   Consumer
	Attributes []Attribute
}

// Series is what the points of one series share: everything but their
// timestamp and value. It must not be modified once a point refers to it
// (outputs may keep what they derived from it, keyed by its address).
type Series struct {
	Metric     MetricID
	Resource   Resource
	Consumer   Consumer
	Attributes []Attribute
}

// SeriesPoint is a point given by its series: the compact form in which a
// source that emits many points of few series (kwollect-input) hands them
// to the outputs that read it, without building a Point per row.
type SeriesPoint struct {
	Series *Series
	Time   int64 // Unix nanoseconds, UTC
	Value  Value
}

// Point returns the point p stands for.
func (p *SeriesPoint) Point() Point {
	s := p.Series
	return Point{Metric: s.Metric, Timestamp: time.Unix(0, p.Time).UTC(), Value: p.Value,
		Resource: s.Resource, Consumer: s.Consumer, Attributes: s.Attributes}
}

// Buffer is a batch of points moving through the pipeline. Stages after the
// transforms must treat it as read-only: it is shared by every output.
type Buffer struct {
	Points []Point
	// Compact holds more points, after those of Points, in compact form.
	// Only a source told that every consumer reads it emits it (see
	// pipeline.CompactEmitter); anywhere else, Expand turns it into Points.
	Compact []SeriesPoint
	pooled  bool // from NewPooledBuffer: Release recycles it
}

// bufferPool holds released buffers: a source that emits a few thousand
// points per buffer reuses their memory instead of allocating (and the
// garbage collector scanning) about 150 bytes per point.
var bufferPool = sync.Pool{New: func() any { return &Buffer{pooled: true} }}

// NewPooledBuffer returns an empty buffer with room for capacity points,
// from a pool: whoever consumes it last (the pipeline, once every output
// has written it) calls Release, after which nobody may touch it.
func NewPooledBuffer(capacity int) *Buffer {
	b := bufferPool.Get().(*Buffer)
	if cap(b.Points) < capacity {
		b.Points = make([]Point, 0, capacity)
	}
	return b
}

// NewPooledCompactBuffer is NewPooledBuffer with room for capacity
// compact points.
func NewPooledCompactBuffer(capacity int) *Buffer {
	b := bufferPool.Get().(*Buffer)
	if cap(b.Compact) < capacity {
		b.Compact = make([]SeriesPoint, 0, capacity)
	}
	return b
}

// Release gives a buffer from NewPooledBuffer back to the pool; it does
// nothing for other buffers. The points' strings are not cleared: they
// are overwritten when the buffer is refilled.
func (b *Buffer) Release() {
	if b == nil || !b.pooled {
		return
	}
	b.Points = b.Points[:0]
	b.Compact = b.Compact[:0]
	bufferPool.Put(b)
}

// Len returns the number of points, compact ones included.
func (b *Buffer) Len() int { return len(b.Points) + len(b.Compact) }

// Push appends a point.
func (b *Buffer) Push(p Point) { b.Points = append(b.Points, p) }

// Expand moves the compact points to Points, in order.
func (b *Buffer) Expand() {
	if b == nil || len(b.Compact) == 0 {
		return
	}
	b.Points = slices.Grow(b.Points, len(b.Compact))
	for i := range b.Compact {
		b.Points = append(b.Points, b.Compact[i].Point())
	}
	b.Compact = b.Compact[:0]
}

// AttributeKeys returns the distinct attribute keys of the buffer, sorted bytewise.
func (b *Buffer) AttributeKeys() []string {
	seen := map[string]struct{}{}
	var keys []string
	add := func(attrs []Attribute) {
		for _, a := range attrs {
			if _, ok := seen[a.Key]; !ok {
				seen[a.Key] = struct{}{}
				keys = append(keys, a.Key)
			}
		}
	}
	for i := range b.Points {
		add(b.Points[i].Attributes)
	}
	var last *Series
	for i := range b.Compact {
		if s := b.Compact[i].Series; s != last {
			add(s.Attributes)
			last = s
		}
	}
	slices.Sort(keys)
	return keys
}
