package prometheusexporter

import (
	"strings"
	"unicode/utf8"

	"github.com/alumet-go/alumet-agent/measure"
)

// Sanitize makes s a valid Prometheus metric or label name the way Alumet
// does: every character (code point) that is not an ASCII letter or digit
// becomes '_', and so does a first character that is not an ASCII letter.
// An invalid UTF-8 byte counts as one character.
func Sanitize(s string) string {
	// Fast path: '_' maps to itself, so a name of [A-Za-z0-9_] that does
	// not start with a digit is returned as it is (without allocating).
	ok := len(s) == 0 || isLetter(s[0]) || s[0] == '_'
	for i := 1; ok && i < len(s); i++ {
		ok = isLetter(s[i]) || isDigit(s[i]) || s[i] == '_'
	}
	if ok {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	first := true
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		s = s[size:]
		switch {
		case r < utf8.RuneSelf && isLetter(byte(r)):
			b.WriteByte(byte(r))
		case r < utf8.RuneSelf && isDigit(byte(r)) && !first:
			b.WriteByte(byte(r))
		default:
			b.WriteByte('_')
		}
		first = false
	}
	return b.String()
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// unitWords are Alumet's words for its base units (Prometheus' base units,
// plural); unity has none.
var unitWords = map[measure.BaseUnit]string{
	measure.Ampere: "amperes", measure.Byte: "bytes", measure.Unity: "", measure.Second: "seconds",
	measure.Watt: "watts", measure.Joule: "joules", measure.Volt: "volts", measure.Hertz: "hertz",
	measure.Celsius: "celsius", measure.Fahrenheit: "fahrenheit", measure.WattHour: "watt_hours",
	measure.Percent: "ratio",
}

// UnitWord is the unit part of a metric name, as Alumet writes it: the
// prefix's unique name followed by the base unit's word (milliseconds,
// kilobytes, nanowatt_hours), or a custom unit's unique name, sanitised;
// "" for unity (no suffix). Percent gives ratio although the values stay
// in 0–100, as in Alumet.
func UnitWord(u measure.Unit) string {
	word, ok := unitWords[u.Base]
	if !ok {
		word = u.Base.Unique
	}
	w := u.Prefix.Unique + word
	if w == "" {
		return ""
	}
	return Sanitize(w)
}

// MetricName is the exposed name of a metric: Sanitize(prefix + name +
// suffix), then "_" and the unit word when there is one, e.g.
// wattmetre_power_watt_alumet_watts.
func MetricName(prefix, name, suffix string, u measure.Unit) string {
	n := Sanitize(prefix + name + suffix)
	if w := UnitWord(u); w != "" {
		n += "_" + w
	}
	return n
}

// The fixed labels of every series.
const (
	labelResourceKind = "resource_kind"
	labelResourceID   = "resource_id"
	labelConsumerKind = "resource_consumer_kind"
	labelConsumerID   = "resource_consumer_id"
)

// reservedPrefix renames an attribute whose label would clash with a fixed
// label or use Prometheus' reserved "__" prefix, as the influxdb output
// renames reserved tags.
const reservedPrefix = "alumet_attribute__"

// AttributeLabel is the label name of an attribute key: sanitised; a key
// that would be a fixed label becomes alumet_attribute__<key>, and one that
// starts with "__" (reserved by Prometheus) alumet_attribute__<rest>.
func AttributeLabel(key string) string {
	k := Sanitize(key)
	switch {
	case k == labelResourceKind || k == labelResourceID || k == labelConsumerKind || k == labelConsumerID:
		return reservedPrefix + k
	case strings.HasPrefix(k, "__"):
		return reservedPrefix + strings.TrimLeft(k, "_")
	case k == "":
		return reservedPrefix
	}
	return k
}

// appendLabelValue appends v escaped for a label value (both formats):
// backslash, double quote and line feed are escaped, and invalid UTF-8
// becomes U+FFFD, which Prometheus would otherwise refuse.
func appendLabelValue(b []byte, v string) []byte {
	if !utf8.ValidString(v) {
		v = strings.ToValidUTF8(v, "\uFFFD")
	}
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			b = append(b, '\\', '\\')
		case '"':
			b = append(b, '\\', '"')
		case '\n':
			b = append(b, '\\', 'n')
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendHelp appends a HELP text escaped for the format: backslash and
// line feed always, the double quote in OpenMetrics only.
func appendHelp(b []byte, s string, openMetrics bool) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, '\\', '\\')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '"' && openMetrics:
			b = append(b, '\\', '"')
		default:
			b = append(b, c)
		}
	}
	return b
}
