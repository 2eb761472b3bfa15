package emulator

import (
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // Europe/Paris without relying on the system database
	"unicode/utf8"
)

// paris is Europe/Paris: naive input times are read in it and every output
// timestamp is written in it (+01:00 in winter, +02:00 in summer).
var paris = mustLoadParis()

func mustLoadParis() *time.Location {
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		panic("emulator: cannot load Europe/Paris: " + err.Error())
	}
	return loc
}

// TimestampLayout is the layout of output timestamps (0-6 fraction digits).
const TimestampLayout = "2006-01-02T15:04:05.999999-07:00"

// FormatTimestamp renders t as Kwollect does: Europe/Paris, µs precision,
// trailing zeros of the fraction dropped.
func FormatTimestamp(t time.Time) string {
	return t.Round(time.Microsecond).In(paris).Format(TimestampLayout)
}

func appendTimestamp(buf []byte, us int64) []byte {
	return time.UnixMicro(us).In(paris).AppendFormat(buf, TimestampLayout)
}

// appendFloat8 renders a float8 value like PostgreSQL's JSON output:
// shortest round-trip form, integral values without ".0", exponent notation
// below 1e-4 or from 1e15 on, and NaN/±Infinity as JSON strings.
func appendFloat8(buf []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(buf, `"NaN"`...)
	case math.IsInf(v, 1):
		return append(buf, `"Infinity"`...)
	case math.IsInf(v, -1):
		return append(buf, `"-Infinity"`...)
	}
	if a := math.Abs(v); a != 0 && (a < 1e-4 || a >= 1e15) {
		return strconv.AppendFloat(buf, v, 'e', -1, 64)
	}
	return strconv.AppendFloat(buf, v, 'f', -1, 64)
}

// appendJSONString writes s as a JSON string the way PostgreSQL does
// (escape_json): only '"', '\\' and control characters are escaped.
func appendJSONString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x80 {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				buf = append(buf, "\ufffd"...)
			} else {
				buf = append(buf, s[i:i+size]...)
			}
			i += size
			continue
		}
		switch c {
		case '"':
			buf = append(buf, `\"`...)
		case '\\':
			buf = append(buf, `\\`...)
		case '\b':
			buf = append(buf, `\b`...)
		case '\f':
			buf = append(buf, `\f`...)
		case '\n':
			buf = append(buf, `\n`...)
		case '\r':
			buf = append(buf, `\r`...)
		case '\t':
			buf = append(buf, `\t`...)
		default:
			if c < 0x20 {
				buf = append(buf, `\u00`...)
				buf = append(buf, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
			} else {
				buf = append(buf, c)
			}
		}
		i++
	}
	return append(buf, '"')
}

// jsonbKeyLess is jsonb's key order: shorter keys first, then bytewise.
func jsonbKeyLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// appendJSONB renders a value like PostgreSQL's jsonb output: keys in jsonb
// order, ", " and ": " separators.
func appendJSONB(buf []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(buf, "null"...)
	case string:
		return appendJSONString(buf, x)
	case bool:
		return strconv.AppendBool(buf, x)
	case json.Number:
		return append(buf, x.String()...)
	case float64:
		return appendFloat8(buf, x)
	case int:
		return strconv.AppendInt(buf, int64(x), 10)
	case int64:
		return strconv.AppendInt(buf, x, 10)
	case []string:
		buf = append(buf, '[')
		for i, s := range x {
			if i > 0 {
				buf = append(buf, ", "...)
			}
			buf = appendJSONString(buf, s)
		}
		return append(buf, ']')
	case []any:
		buf = append(buf, '[')
		for i, e := range x {
			if i > 0 {
				buf = append(buf, ", "...)
			}
			buf = appendJSONB(buf, e)
		}
		return append(buf, ']')
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, v := range x {
			m[k] = v
		}
		return appendJSONB(buf, m)
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return jsonbKeyLess(keys[i], keys[j]) })
		buf = append(buf, '{')
		for i, k := range keys {
			if i > 0 {
				buf = append(buf, ", "...)
			}
			buf = appendJSONString(buf, k)
			buf = append(buf, ": "...)
			buf = appendJSONB(buf, x[k])
		}
		return append(buf, '}')
	}
	b, _ := json.Marshal(v)
	return append(buf, b...)
}

// appendRow renders one row as PostgREST does (compact record, jsonb labels).
func appendRow(buf []byte, r *row) []byte {
	buf = append(buf, `{"timestamp":"`...)
	buf = appendTimestamp(buf, r.ts)
	buf = append(buf, `","device_id":`...)
	buf = appendJSONString(buf, r.s.device)
	buf = append(buf, `,"metric_id":`...)
	buf = appendJSONString(buf, r.s.metric)
	buf = append(buf, `,"value":`...)
	if r.null {
		buf = append(buf, "null"...)
	} else {
		buf = appendFloat8(buf, r.v)
	}
	buf = append(buf, `,"labels":`...)
	buf = append(buf, r.s.labelsJSON...)
	return append(buf, '}')
}

// rowSeparator is what json_agg puts between elements.
const rowSeparator = ", \n "

// pgError is a PostgREST error: {"hint","details","code","message"}.
type pgError struct {
	status  int
	code    string
	message string
	details *string
	hint    *string
}

func (e *pgError) Error() string { return e.code + ": " + e.message }

func (e *pgError) body() []byte {
	opt := func(buf []byte, s *string) []byte {
		if s == nil {
			return append(buf, "null"...)
		}
		return appendJSONString(buf, *s)
	}
	buf := []byte(`{"hint":`)
	buf = opt(buf, e.hint)
	buf = append(buf, `,"details":`...)
	buf = opt(buf, e.details)
	buf = append(buf, `,"code":`...)
	buf = appendJSONString(buf, e.code)
	buf = append(buf, `,"message":`...)
	buf = appendJSONString(buf, e.message)
	return append(buf, '}')
}

// quotePG quotes user input in an error message like PostgreSQL.
func quotePG(s string) string { return `"` + strings.ToValidUTF8(s, "\ufffd") + `"` }

func errMissing() *pgError {
	return &pgError{status: 500, code: "XX000", message: "plpy.Error: Missing 'devices', 'nodes' or 'job_id' argument"}
}

func errUnknownJob() *pgError {
	return &pgError{status: 500, code: "XX000", message: "IndexError: list index out of range"}
}

func errBadTime(input string) *pgError {
	return &pgError{status: 400, code: "22007", message: "spiexceptions.InvalidDatetimeFormat: invalid input syntax for type timestamp with time zone: " + quotePG(input)}
}

func errTimeOverflow(input string) *pgError {
	return &pgError{status: 400, code: "22008", message: "spiexceptions.DatetimeFieldOverflow: date/time field value out of range: " + quotePG(input)}
}

func errTimeRange(input string) *pgError {
	return &pgError{status: 400, code: "22008", message: "spiexceptions.DatetimeFieldOverflow: timestamp out of range: " + quotePG(input)}
}

func errBadSyntax(typ, input string) *pgError {
	return &pgError{status: 400, code: "22P02", message: "invalid input syntax for type " + typ + ": " + quotePG(input)}
}

func errIntRange(input string) *pgError {
	return &pgError{status: 400, code: "22003", message: "value " + quotePG(input) + " is out of range for type integer"}
}

// errTooMuchData is Kwollect's statement timeout (RowLimit).
func errTooMuchData() *pgError {
	return &pgError{status: 500, code: "XX000", message: "Exception: Request timeout, too much data to process."}
}
