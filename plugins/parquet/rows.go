package parquet

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	pq "github.com/parquet-go/parquet-go"

	"github.com/alumet-go/alumet-agent/measure"
)

// Options shape the rows.
type Options struct {
	AppendUnitToMetricName bool
	UseUnitDisplayName     bool
	// AttributeColumns are the attributes with a column of their own.
	AttributeColumns []string
}

// rowBuilder turns points into Parquet rows of the schema of
// Schema(opts.AttributeColumns, …). It is not safe for concurrent use.
//
// The values of a row refer to the points' strings and to its own caches
// without copying: a row is valid until the writer that receives it
// returns (parquet.Writer.WriteRows copies what it keeps).
type rowBuilder struct {
	reg     *measure.Registry
	opts    Options
	cols    map[string]int // attribute key → its column (nFixed + i)
	kinds   []attrKind     // per attribute column
	late    int            // the late column's index
	nCols   int
	metrics []metricName // cache by MetricID

	// tails caches, per series of compact points, the values from
	// resource_kind to the late column.
	tails map[*measure.Series][]pq.Value

	// scratch, reused from point to point
	which   []int // attribute index per attribute column, -1 for none
	lateIdx []int
}

type metricName struct {
	name  []byte
	known bool
}

// maxTails bounds rowBuilder.tails: past it, the cache starts afresh.
const maxTails = 4096

func newRowBuilder(reg *measure.Registry, opts Options) *rowBuilder {
	b := &rowBuilder{
		reg:   reg,
		opts:  opts,
		cols:  make(map[string]int, len(opts.AttributeColumns)),
		kinds: make([]attrKind, len(opts.AttributeColumns)),
		which: make([]int, len(opts.AttributeColumns)),
	}
	for i, k := range opts.AttributeColumns {
		b.cols[k] = nFixed + i
		b.kinds[i] = kindOf(k)
	}
	b.late = nFixed + len(opts.AttributeColumns)
	b.nCols = b.late + 1
	return b
}

// metricName returns the metric column of id: the CSV's metric cell
// (name_unit by default), unescaped.
func (b *rowBuilder) metricName(id measure.MetricID) ([]byte, bool) {
	if int(id) < len(b.metrics) && b.metrics[id].known {
		return b.metrics[id].name, true
	}
	m, ok := b.reg.Metric(id)
	if !ok {
		return nil, false
	}
	name := m.Name
	if b.opts.AppendUnitToMetricName {
		unit := m.Unit.UniqueName()
		if b.opts.UseUnitDisplayName {
			unit = m.Unit.DisplayName()
		}
		if unit != "" {
			name += "_" + unit
		}
	}
	if int(id) >= len(b.metrics) {
		b.metrics = append(b.metrics, make([]metricName, int(id)+1-len(b.metrics))...)
	}
	b.metrics[id] = metricName{name: []byte(name), known: true}
	return b.metrics[id].name, true
}

// head appends the metric, timestamp and value of a row.
func head(row pq.Row, metric []byte, ns int64, v measure.Value) pq.Row {
	return append(row,
		pq.ByteArrayValue(metric).Level(0, 0, colMetric),
		pq.Int64Value(ns).Level(0, 0, colTimestamp),
		pq.DoubleValue(v.Float64()).Level(0, 0, colValue))
}

// pointRow appends the row of p to row, false when its metric is unknown.
func (b *rowBuilder) pointRow(row pq.Row, p *measure.Point) (pq.Row, bool) {
	metric, ok := b.metricName(p.Metric)
	if !ok {
		return row, false
	}
	row = head(row, metric, p.Timestamp.UnixNano(), p.Value)
	return b.appendTail(row, p.Resource, p.Consumer, p.Attributes, false), true
}

// compactRow appends the row of p to row, false when its metric is unknown.
func (b *rowBuilder) compactRow(row pq.Row, p *measure.SeriesPoint) (pq.Row, bool) {
	s := p.Series
	metric, ok := b.metricName(s.Metric)
	if !ok {
		return row, false
	}
	row = head(row, metric, p.Time, p.Value)
	if tail, ok := b.tails[s]; ok {
		return append(row, tail...), true
	}
	start := len(row)
	row = b.appendTail(row, s.Resource, s.Consumer, s.Attributes, true)
	if b.tails == nil || len(b.tails) >= maxTails {
		b.tails = make(map[*measure.Series][]pq.Value)
	}
	b.tails[s] = slices.Clone(row[start:])
	return row, true
}

// bytesOf is s's bytes, not copied: the values are read-only.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// appendTail appends resource, consumer, attribute and late values. own
// makes the values own their bytes (they are cached past the point's life).
func (b *rowBuilder) appendTail(row pq.Row, r measure.Resource, c measure.Consumer, attrs []measure.Attribute, own bool) pq.Row {
	str := bytesOf
	if own {
		str = func(s string) []byte { return []byte(s) }
	}
	row = append(row,
		pq.ByteArrayValue(str(r.Kind)).Level(0, 0, colResourceKind),
		pq.ByteArrayValue(str(r.ID)).Level(0, 0, colResourceID),
		pq.ByteArrayValue(str(c.Kind)).Level(0, 0, colConsumerKind),
		pq.ByteArrayValue(str(c.ID)).Level(0, 0, colConsumerID))

	for i := range b.which {
		b.which[i] = -1
	}
	b.lateIdx = b.lateIdx[:0]
	for j := range attrs {
		col, ok := b.cols[attrs[j].Key]
		if ok && b.fits(b.kinds[col-nFixed], attrs[j].Value) {
			b.which[col-nFixed] = j // a repeated key: the last one wins
			continue
		}
		b.lateIdx = append(b.lateIdx, j)
	}
	// A repeated key whose last value went to the late column: the column
	// stays empty, so that the key has one value in the row.
	for _, j := range b.lateIdx {
		if col, ok := b.cols[attrs[j].Key]; ok && b.which[col-nFixed] >= 0 && b.which[col-nFixed] < j {
			b.which[col-nFixed] = -1
		}
	}
	for i, j := range b.which {
		col := nFixed + i
		switch {
		case j < 0:
			row = append(row, pq.NullValue().Level(0, 0, col))
		case b.kinds[i] == attrInt64:
			row = append(row, pq.Int64Value(int64(attrs[j].Value.U64)).Level(0, 1, col))
		case attrs[j].Value.Type == measure.AttrString:
			row = append(row, pq.ByteArrayValue(str(attrs[j].Value.Str)).Level(0, 1, col))
		default:
			row = append(row, pq.ByteArrayValue(attrs[j].Value.AppendText(nil)).Level(0, 1, col))
		}
	}
	if len(b.lateIdx) == 0 {
		return append(row, pq.NullValue().Level(0, 0, b.late))
	}
	j := b.lateJSON(attrs)
	return append(row, pq.ByteArrayValue(j).Level(0, 1, b.late))
}

// fits reports whether v can go to a column of kind k.
func (b *rowBuilder) fits(k attrKind, v measure.AttrValue) bool {
	if k == attrInt64 {
		return v.Type == measure.AttrU64 && v.U64 <= math.MaxInt64
	}
	return true
}

// lateJSON returns the JSON object of the attributes b.lateIdx, keys sorted
// bytewise, the last of a repeated key winning (a new slice).
func (b *rowBuilder) lateJSON(attrs []measure.Attribute) []byte {
	late := b.lateIdx
	slices.SortStableFunc(late, func(x, y int) int { return strings.Compare(attrs[x].Key, attrs[y].Key) })
	out := make([]byte, 0, 32*len(late))
	out = append(out, '{')
	first := true
	for i, j := range late {
		if i+1 < len(late) && attrs[late[i+1]].Key == attrs[j].Key {
			continue
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		out = appendJSONString(out, attrs[j].Key)
		out = append(out, ':')
		out = appendJSONValue(out, attrs[j].Value)
	}
	return append(out, '}')
}

// appendJSONValue appends v as JSON: strings as strings, integers and
// finite floats as numbers, NaN and ±Inf as the strings "NaN", "inf" and
// "-inf" (the CSV's text; JSON has no such numbers), booleans, lists.
func appendJSONValue(out []byte, v measure.AttrValue) []byte {
	switch v.Type {
	case measure.AttrU64:
		return strconv.AppendUint(out, v.U64, 10)
	case measure.AttrF64:
		if math.IsNaN(v.F64) || math.IsInf(v.F64, 0) {
			return appendJSONString(out, v.String())
		}
		return measure.AppendFloat(out, v.F64)
	case measure.AttrBool:
		return strconv.AppendBool(out, v.Bool)
	case measure.AttrU64List:
		out = append(out, '[')
		for i, u := range v.List {
			if i > 0 {
				out = append(out, ',')
			}
			out = strconv.AppendUint(out, u, 10)
		}
		return append(out, ']')
	default:
		return appendJSONString(out, v.Str)
	}
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string: '"', '\\' and control
// characters escaped, invalid UTF-8 replaced by U+FFFD (as encoding/json).
func appendJSONString(out []byte, s string) []byte {
	out = append(out, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			out = append(out, s[start:i]...)
			switch c {
			case '"', '\\':
				out = append(out, '\\', c)
			case '\n':
				out = append(out, '\\', 'n')
			case '\r':
				out = append(out, '\\', 'r')
			case '\t':
				out = append(out, '\\', 't')
			default:
				out = append(out, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			out = append(out, s[start:i]...)
			out = append(out, "\ufffd"...)
			i += size
			start = i
			continue
		}
		i += size
	}
	out = append(out, s[start:]...)
	return append(out, '"')
}
