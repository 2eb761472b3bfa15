package parquet

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/alumet-go/alumet-agent/measure"
)

// Options shape the rows.
type Options struct {
	AppendUnitToMetricName bool
	UseUnitDisplayName     bool
	// AttributeColumns are the attributes with a column of their own.
	AttributeColumns []string
}

// rowBuilder computes the cells of a series: what every row of its points
// holds besides the timestamp and the value. It is not safe for
// concurrent use.
type rowBuilder struct {
	reg     *measure.Registry
	opts    Options
	cols    map[string]int // attribute key → its attribute column (0, 1, …)
	kinds   []attrKind     // per attribute column
	metrics []metricName   // cache by MetricID

	// scratch, reused from series to series
	which   []int // attribute index per attribute column, -1 for none
	lateIdx []int
}

type metricName struct {
	name  string
	known bool
}

// cells are the values of a series' row but its timestamp and value.
type cells struct {
	metric string
	fixed  [4]string  // resource_kind, resource_id, consumer_kind, consumer_id
	attrs  []attrCell // per attribute column
	late   string     // the late column's JSON, when hasLate
	// hasLate is false when the series has no late attribute (null).
	hasLate bool
}

// attrCell is the cell of an attribute column: null unless ok.
type attrCell struct {
	ok  bool
	str string // a string column's text
	i64 int64  // an integer column's value
}

func newRowBuilder(reg *measure.Registry, opts Options) *rowBuilder {
	b := &rowBuilder{
		reg:   reg,
		opts:  opts,
		cols:  make(map[string]int, len(opts.AttributeColumns)),
		kinds: make([]attrKind, len(opts.AttributeColumns)),
		which: make([]int, len(opts.AttributeColumns)),
	}
	for i, k := range opts.AttributeColumns {
		b.cols[k] = i
		b.kinds[i] = kindOf(k)
	}
	return b
}

// metricName returns the metric column of id: the CSV's metric cell
// (name_unit by default), unescaped.
func (b *rowBuilder) metricName(id measure.MetricID) (string, bool) {
	if int(id) < len(b.metrics) && b.metrics[id].known {
		return b.metrics[id].name, true
	}
	m, ok := b.reg.Metric(id)
	if !ok {
		return "", false
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
	b.metrics[id] = metricName{name: name, known: true}
	return name, true
}

// cellsOf fills c with the cells of a series of the known metric named
// metric. c.attrs is reused.
func (b *rowBuilder) cellsOf(c *cells, metric string, r measure.Resource, cons measure.Consumer, attrs []measure.Attribute) {
	c.metric = metric
	c.fixed = [4]string{r.Kind, r.ID, cons.Kind, cons.ID}
	c.attrs = slices.Grow(c.attrs[:0], len(b.which))[:len(b.which)]

	for i := range b.which {
		b.which[i] = -1
	}
	b.lateIdx = b.lateIdx[:0]
	for j := range attrs {
		col, ok := b.cols[attrs[j].Key]
		if ok && b.fits(b.kinds[col], attrs[j].Value) {
			b.which[col] = j // a repeated key: the last one wins
			continue
		}
		b.lateIdx = append(b.lateIdx, j)
	}
	// A repeated key whose last value went to the late column: the column
	// stays empty, so that the key has one value in the row.
	for _, j := range b.lateIdx {
		if col, ok := b.cols[attrs[j].Key]; ok && b.which[col] >= 0 && b.which[col] < j {
			b.which[col] = -1
		}
	}
	for i, j := range b.which {
		switch {
		case j < 0:
			c.attrs[i] = attrCell{}
		case b.kinds[i] == attrInt64:
			c.attrs[i] = attrCell{ok: true, i64: int64(attrs[j].Value.U64)}
		case attrs[j].Value.Type == measure.AttrString:
			c.attrs[i] = attrCell{ok: true, str: attrs[j].Value.Str}
		default:
			c.attrs[i] = attrCell{ok: true, str: attrs[j].Value.String()}
		}
	}
	c.late, c.hasLate = "", len(b.lateIdx) > 0
	if c.hasLate {
		c.late = string(b.lateJSON(attrs))
	}
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
