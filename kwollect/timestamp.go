package kwollect

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ParseTimestamp parses a Kwollect timestamp: RFC 3339 with a 'T' (or 't')
// or ' ' separator between date and time, 0 to 9 fraction digits and a
// mandatory offset written Z, +HH:MM, +HHMM or +HH. The offset is kept in the
// returned time's location; callers that need UTC call UTC().
//
// A hand-written parser is used instead of time.Parse because PostgreSQL
// prints space separators and short offsets that RFC 3339 layouts reject,
// and because it runs once per decoded row.
func ParseTimestamp(s string) (time.Time, error) {
	t, msg := parseTimestamp(s)
	if msg != "" {
		return time.Time{}, fmt.Errorf("kwollect: bad timestamp %q: %s", truncateForError(s), msg)
	}
	return t, nil
}

func parseTimestamp(s string) (time.Time, string) {
	// Date and time of day take 19 bytes; the offset at least one more.
	if len(s) < 19 {
		return time.Time{}, "too short (want YYYY-MM-DDTHH:MM:SS[.frac]±HH:MM)"
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	if !ok1 || !ok2 || !ok3 || s[4] != '-' || s[7] != '-' {
		return time.Time{}, "bad date (want YYYY-MM-DD)"
	}
	if c := s[10]; c != 'T' && c != 't' && c != ' ' {
		return time.Time{}, "bad date/time separator (want 'T' or ' ')"
	}
	hour, ok1 := digits(s[11:13])
	minute, ok2 := digits(s[14:16])
	sec, ok3 := digits(s[17:19])
	if !ok1 || !ok2 || !ok3 || s[13] != ':' || s[16] != ':' {
		return time.Time{}, "bad time of day (want HH:MM:SS)"
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) {
		return time.Time{}, "date out of range"
	}
	if hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, "time of day out of range"
	}
	rest := s[19:]
	nsec := 0
	if rest != "" && rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		nd := n - 1
		if nd == 0 {
			return time.Time{}, "empty fraction after '.'"
		}
		if nd > 9 {
			return time.Time{}, "more than 9 fraction digits"
		}
		v, _ := digits(rest[1:n])
		for i := nd; i < 9; i++ {
			v *= 10
		}
		nsec = v
		rest = rest[n:]
	}
	var off int
	switch {
	case rest == "Z" || rest == "z":
		off = 0
	case len(rest) >= 3 && (rest[0] == '+' || rest[0] == '-'):
		oh, ok := digits(rest[1:3])
		om := 0
		switch len(rest) {
		case 3: // +HH
		case 5: // +HHMM
			var okm bool
			om, okm = digits(rest[3:5])
			ok = ok && okm
		case 6: // +HH:MM
			var okm bool
			om, okm = digits(rest[4:6])
			ok = ok && okm && rest[3] == ':'
		default:
			ok = false
		}
		if !ok {
			return time.Time{}, "bad offset (want Z, ±HH:MM, ±HHMM or ±HH)"
		}
		if oh > 23 || om > 59 {
			return time.Time{}, "offset out of range"
		}
		off = oh*3600 + om*60
		if rest[0] == '-' {
			off = -off
		}
	case rest == "":
		// Kwollect reads naive times as Europe/Paris; guessing here would
		// silently shift data by one or two hours, so refuse.
		return time.Time{}, "missing UTC offset"
	default:
		return time.Time{}, "bad offset (want Z, ±HH:MM, ±HHMM or ±HH)"
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, zone(off)), ""
}

// digits parses a run of ASCII digits (at most 9) without allocating.
func digits(s string) (int, bool) {
	if len(s) == 0 {
		return 0, false
	}
	v := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// zones caches fixed zones by offset: a response has one or two distinct
// offsets but up to millions of rows, and time.FixedZone allocates. The
// offsets in whole quarters of an hour (all real ones) are looked up in an
// array without allocating; others in a map (whose int keys above 255
// allocate when boxed).
var (
	quarterZones [2*maxQuarters + 1]atomic.Pointer[time.Location]
	zones        sync.Map // int -> *time.Location
)

// maxQuarters: offsets are below 24 h.
const maxQuarters = 24 * 4

func zone(off int) *time.Location {
	if off == 0 {
		return time.UTC
	}
	if off%900 == 0 && off > -maxQuarters*900 && off < maxQuarters*900 {
		slot := &quarterZones[off/900+maxQuarters]
		if l := slot.Load(); l != nil {
			return l
		}
		l := time.FixedZone("", off)
		if !slot.CompareAndSwap(nil, l) {
			l = slot.Load()
		}
		return l
	}
	if l, ok := zones.Load(off); ok {
		return l.(*time.Location)
	}
	l, _ := zones.LoadOrStore(off, time.FixedZone("", off))
	return l.(*time.Location)
}

// FormatEpoch formats t as Unix epoch seconds for a start_time bound: the
// integer seconds, then a fraction only when non-zero, at most 6 digits
// (Kwollect has 1 µs precision), trailing zeros trimmed, truncated to the
// microsecond so an inclusive start never skips a row. Examples: 1754379876,
// 1754379876.5, 1754379886.734. It uses integer arithmetic only, because a
// float64 cannot hold an epoch with 6 decimals exactly.
func FormatEpoch(t time.Time) string { return formatEpoch(t, false) }

// FormatEpochCeil is FormatEpoch for an end_time bound: sub-microsecond
// nanoseconds round UP to the next microsecond, so an inclusive end is never
// cut short.
func FormatEpochCeil(t time.Time) string { return formatEpoch(t, true) }

func formatEpoch(t time.Time, ceil bool) string {
	sec := t.Unix() // floor division: Nanosecond() is always >= 0
	us := int64(t.Nanosecond()) / 1000
	if ceil && t.Nanosecond()%1000 != 0 {
		us++
		if us == 1_000_000 {
			sec++
			us = 0
		}
	}
	if us == 0 {
		return strconv.FormatInt(sec, 10)
	}
	neg := false
	if sec < 0 {
		// -2 s + 0.25 s = -1.75 s: print the magnitude.
		neg = true
		sec = -(sec + 1)
		us = 1_000_000 - us
	}
	var buf [32]byte
	b := buf[:0]
	if neg {
		b = append(b, '-')
	}
	b = strconv.AppendInt(b, sec, 10)
	b = append(b, '.')
	frac := [6]byte{}
	for i := 5; i >= 0; i-- {
		frac[i] = byte('0' + us%10)
		us /= 10
	}
	n := 6
	for n > 0 && frac[n-1] == '0' {
		n--
	}
	b = append(b, frac[:n]...)
	return string(b)
}

func truncateForError(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
