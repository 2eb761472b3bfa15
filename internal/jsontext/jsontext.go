// Package jsontext appends JSON text for the outputs that write JSON by
// hand (jsonl, kwollect-output): a series' fixed part is encoded once,
// which encoding/json cannot do.
package jsontext

import (
	"strconv"
	"unicode/utf8"

	"github.com/alumet-go/alumet-agent/measure"
)

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string, escaped as encoding/json does
// without its HTML escaping: '"', '\\' and control characters escaped,
// invalid UTF-8 replaced by U+FFFD (one per invalid byte), U+2028 and
// U+2029 escaped (some JavaScript parsers reject them raw).
func AppendString(b []byte, s string) []byte {
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
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendAttr appends an attribute's value as JSON of its type: a string,
// a number (float through appendFloat, which decides what NaN and the
// infinities become), a boolean or an array of numbers.
func AppendAttr(b []byte, a measure.AttrValue, appendFloat func([]byte, float64) []byte) []byte {
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
		return AppendString(b, a.Str)
	}
}
