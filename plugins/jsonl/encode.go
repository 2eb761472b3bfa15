package jsonl

import (
	"math"
	"strconv"

	"github.com/alumet-go/alumet-agent/internal/jsontext"
	"github.com/alumet-go/alumet-agent/measure"
)

// encoder appends the JSON line of a point. Everything but the timestamp
// and the value is the same for the points of one series: it is encoded
// once per series (compact points) or metric (the head of Points).
type encoder struct {
	reg    *measure.Registry
	ts     measure.Timestamps
	heads  map[measure.MetricID][]byte     // `{"metric":"…","unit":"…","timestamp":"`
	series map[*measure.Series]seriesBytes // of compact points
}

type seriesBytes struct {
	head, tail []byte
}

func newEncoder(reg *measure.Registry) *encoder {
	return &encoder{reg: reg, heads: map[measure.MetricID][]byte{}, series: map[*measure.Series]seriesBytes{}}
}

// head is the start of the line of a point of metric id, up to the
// timestamp's opening quote.
func (e *encoder) head(id measure.MetricID) []byte {
	if h, ok := e.heads[id]; ok {
		return h
	}
	name, unit := "", ""
	if m, ok := e.reg.Metric(id); ok {
		name, unit = m.Name, m.Unit.DisplayName()
	} else {
		name = "metric#" + strconv.Itoa(int(id))
	}
	h := append([]byte(`{"metric":`), jsontext.AppendString(nil, name)...)
	h = append(h, `,"unit":`...)
	h = jsontext.AppendString(h, unit)
	h = append(h, `,"timestamp":"`...)
	e.heads[id] = h
	return h
}

// appendTail appends what follows the value: the resource, the consumer,
// the attributes, the closing brace and the newline.
func appendTail(b []byte, r measure.Resource, c measure.Consumer, attrs []measure.Attribute) []byte {
	b = append(b, `,"resource_kind":`...)
	b = jsontext.AppendString(b, r.Kind)
	b = append(b, `,"resource_id":`...)
	b = jsontext.AppendString(b, r.ID)
	b = append(b, `,"consumer_kind":`...)
	b = jsontext.AppendString(b, c.Kind)
	b = append(b, `,"consumer_id":`...)
	b = jsontext.AppendString(b, c.ID)
	b = append(b, `,"attributes":{`...)
	for i, a := range attrs {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsontext.AppendString(b, a.Key)
		b = append(b, ':')
		b = jsontext.AppendAttr(b, a.Value, appendFloat)
	}
	return append(b, "}}\n"...)
}

// appendPoint appends the line of p.
func (e *encoder) appendPoint(b []byte, p *measure.Point) []byte {
	b = append(b, e.head(p.Metric)...)
	b = e.ts.AppendTime(b, p.Timestamp)
	b = append(b, `","value":`...)
	b = appendValue(b, p.Value)
	return appendTail(b, p.Resource, p.Consumer, p.Attributes)
}

// appendCompact appends the line of p.
func (e *encoder) appendCompact(b []byte, p *measure.SeriesPoint) []byte {
	sb, ok := e.series[p.Series]
	if !ok {
		s := p.Series
		sb = seriesBytes{head: e.head(s.Metric), tail: appendTail(nil, s.Resource, s.Consumer, s.Attributes)}
		e.series[p.Series] = sb
	}
	b = append(b, sb.head...)
	b = e.ts.AppendNanos(b, p.Time)
	b = append(b, `","value":`...)
	b = appendValue(b, p.Value)
	return append(b, sb.tail...)
}

// appendValue appends v as a JSON number; JSON has no NaN or infinities,
// which are written as the strings Kwollect itself uses: "NaN",
// "Infinity" and "-Infinity".
func appendValue(b []byte, v measure.Value) []byte {
	if v.Type() == measure.U64 {
		return strconv.AppendUint(b, v.Uint64(), 10)
	}
	return appendFloat(b, v.Float64())
}

func appendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Infinity"`...)
	}
	// The CSV's text (Rust's Display: no exponent) is a valid JSON number
	// for every finite value.
	return measure.AppendFloat(b, f)
}
