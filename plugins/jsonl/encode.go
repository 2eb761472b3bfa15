package jsonl

import (
	"math"
	"strconv"
	"unicode/utf8"

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
	h := append([]byte(`{"metric":`), appendString(nil, name)...)
	h = append(h, `,"unit":`...)
	h = appendString(h, unit)
	h = append(h, `,"timestamp":"`...)
	e.heads[id] = h
	return h
}

// appendTail appends what follows the value: the resource, the consumer,
// the attributes, the closing brace and the newline.
func appendTail(b []byte, r measure.Resource, c measure.Consumer, attrs []measure.Attribute) []byte {
	b = append(b, `,"resource_kind":`...)
	b = appendString(b, r.Kind)
	b = append(b, `,"resource_id":`...)
	b = appendString(b, r.ID)
	b = append(b, `,"consumer_kind":`...)
	b = appendString(b, c.Kind)
	b = append(b, `,"consumer_id":`...)
	b = appendString(b, c.ID)
	b = append(b, `,"attributes":{`...)
	for i, a := range attrs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, a.Key)
		b = append(b, ':')
		b = appendAttr(b, a.Value)
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

func appendAttr(b []byte, a measure.AttrValue) []byte {
	switch a.Type {
	case measure.AttrU64:
		return strconv.AppendUint(b, a.U64, 10)
	case measure.AttrF64:
		return appendFloat(b, a.F64)
	case measure.AttrBool:
		return strconv.AppendBool(b, a.Bool)
	case measure.AttrU64List:
		b = append(b, '[')
		for i, u := range a.List {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, u, 10)
		}
		return append(b, ']')
	default:
		return appendString(b, a.Str)
	}
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped as encoding/json does
// (without its HTML escaping): '"', '\\' and control characters escaped,
// invalid UTF-8 replaced by U+FFFD, U+2028 and U+2029 escaped (some
// JavaScript parsers reject them raw).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, `\n`...)
			case '\r':
				b = append(b, `\r`...)
			case '\t':
				b = append(b, `\t`...)
			default:
				b = append(b, `\u00`...)
				b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
