package emulator

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Time bounds of the GET query: a value that Python's float() accepts is unix
// epoch seconds (µs precision); anything else is cast to PostgreSQL's
// timestamptz in a Europe/Paris session.

const (
	// Accepted range of finite timestamps (µs); PostgreSQL's is a bit wider.
	minTimestampUs = int64(-210866803200) * usPerSec // 4713 BC
	maxTimestampUs = int64(2_000_000_000_000_000_000)
)

var pyFloatRE = regexp.MustCompile(`^[+-]?(?:\d(?:_?\d)*(?:\.(?:\d(?:_?\d)*)?)?|\.\d(?:_?\d)*)(?:[eE][+-]?\d(?:_?\d)*)?$`)

// ParseBound parses a start_time/end_time value as the server does and
// returns the instant. now is used for "now", "today", etc. Infinite bounds
// come back as the zero time with inf = +1/-1.
func ParseBound(s string, now time.Time) (t time.Time, inf int, err error) {
	us, perr := parseBound(s, now.UnixMicro())
	if perr != nil {
		return time.Time{}, 0, perr
	}
	switch us {
	case posInf:
		return time.Time{}, 1, nil
	case negInf:
		return time.Time{}, -1, nil
	}
	return time.UnixMicro(us).In(paris), 0, nil
}

// parseBound returns µs since the epoch, posInf/negInf for infinities.
func parseBound(s string, now int64) (int64, *pgError) {
	if us, ok, perr := parsePyFloat(s); ok || perr != nil {
		return us, perr
	}
	return parseTimestamptz(s, now)
}

// parsePyFloat handles the float() branch. ok=false: not a Python float.
func parsePyFloat(s string) (int64, bool, *pgError) {
	t := strings.TrimSpace(s)
	low := strings.ToLower(t)
	sign := 1
	body := low
	if strings.HasPrefix(body, "+") || strings.HasPrefix(body, "-") {
		if body[0] == '-' {
			sign = -1
		}
		body = body[1:]
	}
	switch body {
	case "inf", "infinity":
		if sign < 0 {
			return negInf, true, nil
		}
		return posInf, true, nil
	case "nan":
		return 0, true, &pgError{status: 400, code: "22008", message: "spiexceptions.DatetimeFieldOverflow: timestamp cannot be NaN"}
	}
	if !pyFloatRE.MatchString(t) {
		return 0, false, nil
	}
	t = strings.ReplaceAll(t, "_", "")
	if !strings.ContainsAny(t, "eE") {
		us, ok := exactDecimalMicros(t)
		if ok {
			return us, true, nil
		}
		return 0, true, errTimeRange(s)
	}
	x, err := strconv.ParseFloat(t, 64)
	if err != nil && !math.IsInf(x, 0) {
		return 0, true, errTimeRange(s)
	}
	us := math.RoundToEven(x * 1e6)
	if math.IsInf(x, 0) || us < float64(minTimestampUs) || us > float64(maxTimestampUs) {
		return 0, true, errTimeRange(s)
	}
	return int64(us), true, nil
}

// exactDecimalMicros converts "[+-]digits[.digits]" seconds to µs, rounding
// half to even beyond the 6th fraction digit.
func exactDecimalMicros(t string) (int64, bool) {
	neg := false
	if t[0] == '+' || t[0] == '-' {
		neg = t[0] == '-'
		t = t[1:]
	}
	ip, fp, _ := strings.Cut(t, ".")
	ip = strings.TrimLeft(ip, "0")
	if len(ip) > 13 {
		return 0, false
	}
	sec := int64(0)
	if ip != "" {
		v, err := strconv.ParseInt(ip, 10, 64)
		if err != nil {
			return 0, false
		}
		sec = v
	}
	us := fracMicros(fp)
	total := sec*usPerSec + us
	if neg {
		total = -total
	}
	if total < minTimestampUs || total > maxTimestampUs {
		return 0, false
	}
	return total, true
}

// fracMicros converts fraction digits (after the point) to µs, half to even.
func fracMicros(fp string) int64 {
	head := fp
	if len(head) > 6 {
		head = head[:6]
	}
	head += strings.Repeat("0", 6-len(head))
	us, _ := strconv.ParseInt(head, 10, 64)
	if len(fp) > 6 {
		rest := strings.TrimRight(fp[6:], "0")
		switch {
		case rest == "":
		case rest[0] > '5' || (rest[0] == '5' && len(rest) > 1):
			us++
		case rest[0] == '5' && us%2 == 1:
			us++
		}
	}
	return us
}

// tsScanner is a tiny cursor over the timestamp text.
type tsScanner struct {
	s string
	i int
}

func (p *tsScanner) eof() bool { return p.i >= len(p.s) }
func (p *tsScanner) peek() byte {
	if p.eof() {
		return 0
	}
	return p.s[p.i]
}

// digits reads between minN and maxN digits.
func (p *tsScanner) digits(minN, maxN int) (string, bool) {
	j := p.i
	for j < len(p.s) && j-p.i < maxN && p.s[j] >= '0' && p.s[j] <= '9' {
		j++
	}
	if j-p.i < minN {
		return "", false
	}
	d := p.s[p.i:j]
	p.i = j
	return d, true
}

func (p *tsScanner) spaces() int {
	n := 0
	for !p.eof() && (p.peek() == ' ' || p.peek() == '\t' || p.peek() == '\n' || p.peek() == '\r') {
		p.i++
		n++
	}
	return n
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

var zoneAbbrevs = map[string]int{"utc": 0, "gmt": 0, "z": 0, "ut": 0, "cet": 3600, "cest": 7200, "met": 3600, "mest": 7200, "wet": 0, "west": 3600}

// parseTimestamptz parses the PostgreSQL-style forms: special words (now,
// today, tomorrow, yesterday, epoch, [+-]infinity), "YYYY-MM-DD", optionally
// followed by "T" or spaces and "HH:MM[:SS[.frac]]", optionally followed by a
// zone: Z, UTC/GMT/CET/CEST, ±HH[[:]MM[[:]SS]], a tz name such as
// Europe/Paris, or "HH[:MM]" after a space (a '+' decoded as a space). A
// string without a zone is Europe/Paris local time.
func parseTimestamptz(s string, now int64) (int64, *pgError) {
	t := strings.TrimSpace(s)
	switch strings.ToLower(t) {
	case "now":
		return now, nil
	case "epoch":
		return 0, nil
	case "infinity", "+infinity":
		return posInf, nil
	case "-infinity":
		return negInf, nil
	case "today", "tomorrow", "yesterday":
		y, m, d := time.UnixMicro(now).In(paris).Date()
		switch strings.ToLower(t) {
		case "tomorrow":
			d++
		case "yesterday":
			d--
		}
		return wallToUTC(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).UnixMicro(), paris), nil
	}
	p := &tsScanner{s: t}
	ys, ok := p.digits(4, 9)
	if !ok || p.peek() != '-' {
		return 0, errBadTime(s)
	}
	p.i++
	ms, ok := p.digits(1, 2)
	if !ok || p.peek() != '-' {
		return 0, errBadTime(s)
	}
	p.i++
	ds, ok := p.digits(1, 2)
	if !ok {
		return 0, errBadTime(s)
	}
	year, _ := strconv.Atoi(ys)
	month, _ := strconv.Atoi(ms)
	day, _ := strconv.Atoi(ds)
	hour, minute, sec := 0, 0, 0
	var frac int64
	hasTime := false
	// time part
	save := p.i
	sepOK := false
	if c := p.peek(); c == 'T' || c == 't' {
		p.i++
		sepOK = true
	} else if p.spaces() > 0 {
		sepOK = true
	}
	if sepOK {
		if hs, ok := p.digits(1, 2); ok && p.peek() == ':' {
			p.i++
			mins, ok := p.digits(2, 2)
			if !ok {
				return 0, errBadTime(s)
			}
			hour, _ = strconv.Atoi(hs)
			minute, _ = strconv.Atoi(mins)
			hasTime = true
			if p.peek() == ':' {
				p.i++
				ss, ok := p.digits(2, 2)
				if !ok {
					return 0, errBadTime(s)
				}
				sec, _ = strconv.Atoi(ss)
				if p.peek() == '.' {
					p.i++
					fs, _ := p.digits(0, len(p.s))
					frac = fracMicros(fs)
				}
			}
		} else {
			p.i = save
		}
	}
	// zone part
	var loc *time.Location = paris
	offset, hasOffset := 0, false
	if hasTime && !p.eof() {
		sp := p.spaces()
		c := p.peek()
		switch {
		case p.eof():
		case c == '+' || c == '-':
			p.i++
			off, ok := parseOffset(p)
			if !ok {
				return 0, errBadTime(s)
			}
			if c == '-' {
				off = -off
			}
			offset, hasOffset = off, true
		case sp > 0 && c >= '0' && c <= '9': // "+HH:MM" whose '+' became a space
			off, ok := parseOffset(p)
			if !ok {
				return 0, errBadTime(s)
			}
			offset, hasOffset = off, true
		case isLetter(c):
			j := p.i
			for j < len(p.s) && (isLetter(p.s[j]) || p.s[j] == '/' || p.s[j] == '_' || (j > p.i && (p.s[j] == '-' || p.s[j] == '+' || (p.s[j] >= '0' && p.s[j] <= '9')))) {
				j++
			}
			name := p.s[p.i:j]
			p.i = j
			if off, ok := zoneAbbrevs[strings.ToLower(name)]; ok {
				offset, hasOffset = off, true
			} else if strings.Contains(name, "/") {
				l, err := time.LoadLocation(name)
				if err != nil {
					return 0, errBadTime(s)
				}
				loc = l
			} else {
				return 0, errBadTime(s)
			}
		default:
			return 0, errBadTime(s)
		}
		p.spaces()
	}
	if !p.eof() {
		return 0, errBadTime(s)
	}
	// field ranges
	if year < 1 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month) ||
		hour > 24 || minute > 59 || sec > 60 ||
		(hour == 24 && (minute != 0 || sec != 0 || frac != 0)) {
		return 0, errTimeOverflow(s)
	}
	if offset > 15*3600+59*60+59 || offset < -(15*3600+59*60+59) {
		return 0, &pgError{status: 400, code: "22009", message: "spiexceptions.InvalidTimeZoneDisplacementValue: time zone displacement out of range: " + quotePG(s)}
	}
	dayUs := time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC).UnixMicro()
	wall := dayUs + (int64(hour)*3600+int64(minute)*60+int64(sec))*usPerSec + frac
	var us int64
	if hasOffset {
		us = wall - int64(offset)*usPerSec
	} else {
		us = wallToUTC(wall, loc)
	}
	if us < minTimestampUs || us > maxTimestampUs {
		return 0, errTimeRange(s)
	}
	return us, nil
}

// parseOffset reads HH, HHMM, HH:MM, HHMMSS or HH:MM:SS and returns seconds.
func parseOffset(p *tsScanner) (int, bool) {
	hs, ok := p.digits(1, 2)
	if !ok {
		return 0, false
	}
	h, _ := strconv.Atoi(hs)
	m, sec := 0, 0
	readPart := func() (int, bool) {
		if p.peek() == ':' {
			p.i++
		}
		ds, ok := p.digits(2, 2)
		if !ok {
			return 0, false
		}
		v, _ := strconv.Atoi(ds)
		return v, v < 60
	}
	if p.peek() == ':' || (p.peek() >= '0' && p.peek() <= '9') {
		if m, ok = readPart(); !ok {
			return 0, false
		}
		if p.peek() == ':' || (p.peek() >= '0' && p.peek() <= '9') {
			if sec, ok = readPart(); !ok {
				return 0, false
			}
		}
	}
	return h*3600 + m*60 + sec, true
}

func daysIn(year, month int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func offsetAt(us int64, loc *time.Location) int64 {
	_, off := time.UnixMicro(us).In(loc).Zone()
	return int64(off) * usPerSec
}

// wallToUTC converts a local wall time (µs, as if UTC) in loc to an instant,
// like PostgreSQL: an ambiguous time (fall back) takes the offset in force
// just after the transition, a nonexistent one (spring forward gap) the
// offset in force just before it.
func wallToUTC(wall int64, loc *time.Location) int64 {
	const day = 86400 * usPerSec
	before := offsetAt(wall-day, loc)
	after := offsetAt(wall+day, loc)
	validAfter := offsetAt(wall-after, loc) == after
	validBefore := offsetAt(wall-before, loc) == before
	switch {
	case validAfter:
		return wall - after
	case validBefore:
		return wall - before
	default:
		return wall - before
	}
}

// ParseTimeSpec parses a time given on the command line or to the control
// endpoint: "now" or "now±<Go duration>" (relative to now), a Go duration
// ("10s", "-10m", "+1h": relative to start), or any finite value start_time
// accepts (a bare number is epoch seconds; RFC 3339; a naive time is
// Europe/Paris...).
func ParseTimeSpec(s string, start, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "now" {
		return now, nil
	}
	if rest, ok := strings.CutPrefix(s, "now"); ok && rest != "" && (rest[0] == '+' || rest[0] == '-') {
		d, err := time.ParseDuration(rest)
		if err != nil {
			return time.Time{}, fmt.Errorf("bad duration in %q", s)
		}
		return now.Add(d), nil
	}
	if _, isNum, perr := parsePyFloat(s); !isNum && perr == nil {
		if d, err := time.ParseDuration(s); err == nil {
			return start.Add(d), nil
		}
	}
	t, inf, err := ParseBound(s, now)
	if err != nil {
		return time.Time{}, err
	}
	if inf != 0 {
		return time.Time{}, fmt.Errorf("infinite time %q", s)
	}
	return t, nil
}
