package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Duration is a time.Duration written in the humantime form used by Alumet's
// configuration files: "1s", "500ms", "1m 30s", "2min", "1d".
//
// It implements encoding.TextUnmarshaler and encoding.TextMarshaler, which
// github.com/BurntSushi/toml uses to decode and encode it.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String returns d in humantime form, e.g. "1m 30s".
func (d Duration) String() string { return FormatDuration(time.Duration(d)) }

// UnmarshalText parses a humantime duration (see ParseDuration).
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := ParseDuration(string(text))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes d in humantime form. Negative durations cannot be
// written in that form and are an error.
func (d Duration) MarshalText() ([]byte, error) {
	if d < 0 {
		return nil, fmt.Errorf("cannot write the negative duration %s in humantime form", time.Duration(d))
	}
	return []byte(FormatDuration(time.Duration(d))), nil
}

const (
	day   = 24 * time.Hour
	week  = 7 * day
	month = 2_630_016 * time.Second  // 30.44 days, as humantime
	year  = 31_557_600 * time.Second // 365.25 days, as humantime
)

// durationUnits are humantime's units (case-sensitive: "M" is a month, "m" a
// minute), plus the Greek mu spelling of microseconds.
var durationUnits = map[string]time.Duration{
	"ns": time.Nanosecond, "nsec": time.Nanosecond, "nanos": time.Nanosecond,
	"us": time.Microsecond, "usec": time.Microsecond, "µs": time.Microsecond, "μs": time.Microsecond, "micros": time.Microsecond,
	"ms": time.Millisecond, "msec": time.Millisecond, "millis": time.Millisecond,
	"s": time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "mins": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hr": time.Hour, "hrs": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"d": day, "day": day, "days": day,
	"w": week, "week": week, "weeks": week,
	"M": month, "month": month, "months": month,
	"y": year, "year": year, "years": year,
}

// validDurationUnits is the list of units shown in parse errors.
const validDurationUnits = "valid units: ns, us (µs, usec), ms (msec), s (sec, second, seconds), " +
	"m (min, minute, minutes), h (hr, hour, hours), d (day, days), w (week, weeks), M (month, months), y (year, years)"

func durationError(s, format string, args ...any) error {
	return fmt.Errorf("invalid duration %q: %s (%s; e.g. \"1s\", \"500ms\", \"1m 30s\")", s, fmt.Sprintf(format, args...), validDurationUnits)
}

func isUnitRune(r rune) bool {
	return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || r == 'µ' || r == 'μ'
}

func isSpaceByte(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// ParseDuration parses a humantime duration: one or more groups of a
// non-negative integer and a unit, optionally separated by spaces, e.g. "1s",
// "500ms", "1m 30s", "1m30s", "2min", "1h", "1d". Units are listed in the
// error messages; fractions, signs and numbers without a unit are errors, and
// so is a total that does not fit in a time.Duration.
func ParseDuration(s string) (time.Duration, error) {
	text := strings.TrimSpace(s)
	if text == "" {
		return 0, durationError(s, "empty value")
	}
	var total time.Duration
	i := 0
	for i < len(text) {
		for i < len(text) && isSpaceByte(text[i]) {
			i++
		}
		start := i
		for i < len(text) && text[i] >= '0' && text[i] <= '9' {
			i++
		}
		if i == start {
			switch c := text[i]; {
			case c == '-':
				return 0, durationError(s, "negative durations are not allowed")
			case c == '+':
				return 0, durationError(s, "unexpected sign '+'")
			default:
				r, _ := utf8.DecodeRuneInString(text[i:])
				if isUnitRune(r) {
					return 0, durationError(s, "expected a number before the unit at %q", text[i:])
				}
				return 0, durationError(s, "unexpected character %q", r)
			}
		}
		numText := text[start:i]
		n, err := strconv.ParseUint(numText, 10, 64)
		if err != nil {
			return 0, durationError(s, "the number %s is too large", numText)
		}
		if i < len(text) && text[i] == '.' {
			return 0, durationError(s, "fractions are not supported (write \"1s 500ms\" instead of \"1.5s\")")
		}
		for i < len(text) && isSpaceByte(text[i]) {
			i++
		}
		ustart := i
		for i < len(text) {
			r, size := utf8.DecodeRuneInString(text[i:])
			if !isUnitRune(r) {
				break
			}
			i += size
		}
		unitText := text[ustart:i]
		if unitText == "" {
			if i == len(text) {
				return 0, durationError(s, "missing unit after %s", numText)
			}
			r, _ := utf8.DecodeRuneInString(text[i:])
			return 0, durationError(s, "unexpected character %q after %s", r, numText)
		}
		unit, ok := durationUnits[unitText]
		if !ok {
			return 0, durationError(s, "unknown unit %q", unitText)
		}
		if n > uint64(math.MaxInt64/int64(unit)) {
			return 0, durationError(s, "too large (the maximum is about 292 years)")
		}
		part := time.Duration(n) * unit
		if total > math.MaxInt64-part {
			return 0, durationError(s, "too large (the maximum is about 292 years)")
		}
		total += part
	}
	return total, nil
}

// FormatDuration writes d in humantime form: non-zero groups from days down
// to nanoseconds separated by spaces, e.g. 60s → "1m", 1.5s → "1s 500ms",
// 0 → "0s", 36h → "1d 12h". The result re-parses to d with ParseDuration. A
// negative d gets a leading "-", which ParseDuration rejects.
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	var sign string
	u := uint64(d)
	if d < 0 {
		sign = "-"
		u = uint64(-(d + 1)) + 1 // no overflow for math.MinInt64
	}
	groups := []struct {
		unit uint64
		name string
	}{
		{uint64(day), "d"}, {uint64(time.Hour), "h"}, {uint64(time.Minute), "m"}, {uint64(time.Second), "s"},
		{uint64(time.Millisecond), "ms"}, {uint64(time.Microsecond), "us"}, {1, "ns"},
	}
	parts := make([]string, 0, len(groups))
	for _, g := range groups {
		if n := u / g.unit; n > 0 {
			parts = append(parts, strconv.FormatUint(n, 10)+g.name)
			u %= g.unit
		}
	}
	return sign + strings.Join(parts, " ")
}
