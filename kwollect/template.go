package kwollect

import (
	"encoding/binary"
	"slices"
	"time"
)

// Per-series templates in front of parseElem.
//
// The rows of one series are byte for byte the same but for the
// timestamp's text and the value's token:
//
//	{"timestamp":"2026-01-01T00:00:00.02+01:00","device_id":"taurus-1",…,"value":123.4,"labels":{…}}
//	pre          [ timestamp hole           ]mid                              [hole]suf
//
// When parseElem has decoded an element whose timestamp comes before its
// value, the decoder keeps the bytes around the two holes (pre, mid, suf)
// with what parseElem made of them (interned ids, _device_orig, sorted
// labels). An element that is pre, then a plain string, then mid, then a
// value token parseValue accepts, then suf is exactly what parseElem would
// walk through the same way: the same keys in the same order with the same
// bytes, only the timestamp and the value differing, and parseElem would
// scan those two with the same functions used here (simpleString,
// d.timestamp, parseValue). So the row is the learned one with the new
// timestamp and value, and its slices are fresh copies, as parseElem's
// are. Anything else (no template matches, the buffer ends inside the
// element, a bad timestamp) is left to parseElem, which stays the
// reference; FuzzTemplateVsFast checks that the two agree.

const (
	maxTemplates     = 512  // templates kept per response; no more are learned
	maxTemplateBytes = 1024 // longer elements are not learned
	// Templates are dropped for the rest of a response once this many
	// elements missed them and they missed more often than they matched
	// (e.g. a label that changes in every row).
	templateMissBudget = 1024
	// Templates are found by a hash of the first tmWindow bytes of mid
	// (which hold the device id); those with a shorter mid are in a list.
	tmWindow  = 32
	tmBuckets = 1024 // a power of two
)

type template struct {
	mid, suf []byte // both in buf
	buf      []byte
	dev, met string
	origs    []string // nil: no _device_orig
	labels   []Label  // nil: no labels
	next     *template
	chain    *template // next template of the same bucket

	// The fetch engine's state for the template's series in the attempt
	// that reads this body (see DecodeOptions.tmHit); nil until its first
	// row was accepted.
	ap  *attPair
	ser *attSeries
}

type templates struct {
	pre    []byte // shared by every template (the timestamp key comes first)
	n      int
	table  *[tmBuckets]*template
	short  []*template
	last   *template // the template of the previous element, if any
	hits   int
	misses int
	off    bool
}

func tmHash(b []byte) int {
	w0 := binary.LittleEndian.Uint64(b)
	w1 := binary.LittleEndian.Uint64(b[8:])
	w2 := binary.LittleEndian.Uint64(b[16:])
	w3 := binary.LittleEndian.Uint64(b[24:])
	h := (w0 * 0x9E3779B97F4A7C15) ^ (w1 * 0xC2B2AE3D27D4EB4F) ^ (w2 * 0x165667B19E3779F9) ^ (w3 * 0xD6E8FEB86659FD93)
	h ^= h >> 29
	return int(h>>(64-10)) & (tmBuckets - 1)
}

// matchTemplate decodes the element at b[0] with a template. ok is false
// when no template applies; parseElem then decodes it.
func (d *fastDecoder) matchTemplate(b []byte, row *Row) (int, bool) {
	tm := &d.tm
	if tm.n == 0 {
		return 0, false
	}
	pre := tm.pre
	if len(b) <= len(pre) || !hasPrefix(b, pre) {
		return d.templateMiss()
	}
	// end is after the timestamp's closing quote.
	ts, end, ok := d.sameSecond(b[len(pre):])
	if ok {
		end += len(pre) + 1
	} else {
		var st int
		if end, st = simpleString(b, len(pre)-1); st != fastOK {
			return d.templateMiss()
		}
	}
	rest := b[end:]
	var st int
	t := (*template)(nil)
	var (
		val  float64
		null bool
		e    int
	)
	if tm.last != nil && tm.last.next != nil {
		if val, null, e, st = tm.last.next.match(rest); st == fastOK {
			t = tm.last.next
		}
	}
	if t == nil && len(rest) >= tmWindow {
		for c := tm.table[tmHash(rest)]; c != nil; c = c.chain {
			if val, null, e, st = c.match(rest); st == fastOK {
				t = c
				break
			}
		}
	}
	if t == nil {
		for _, c := range tm.short {
			if val, null, e, st = c.match(rest); st == fastOK {
				t = c
				break
			}
		}
		if t == nil {
			return d.templateMiss()
		}
	}
	if !ok {
		if ts, ok = d.timestamp(b[len(pre) : end-1]); !ok {
			return d.templateMiss()
		}
	}
	// The rows of a template share its slices (never written to): the
	// Row's slices are read-only, and never reused for another value.
	*row = Row{Timestamp: ts, DeviceID: t.dev, MetricID: t.met, Value: val, Null: null, DeviceOrig: t.origs, Labels: t.labels}
	if tm.last != nil {
		tm.last.next = t
	}
	tm.last = t
	tm.hits++
	return end + e, true
}

// hasPrefix reports whether b (len(b) >= len(p)) starts with p; for 8 to
// 16 bytes (a row's `{"timestamp":"`), as two words compared inline.
func hasPrefix(b, p []byte) bool {
	if n := len(p); n >= 8 && n <= 16 {
		return binary.LittleEndian.Uint64(b) == binary.LittleEndian.Uint64(p) &&
			binary.LittleEndian.Uint64(b[n-8:]) == binary.LittleEndian.Uint64(p[n-8:])
	}
	return string(b[:len(p)]) == string(p)
}

// match checks that b (what follows the timestamp's closing quote) is
// mid, a value, then suf, and returns the value and the length of all
// three.
func (t *template) match(b []byte) (val float64, null bool, n, st int) {
	m := len(t.mid)
	if len(b) <= m || string(b[:m]) != string(t.mid) {
		return 0, false, 0, fastSlow
	}
	val, j, ok := plainNumber(b, m)
	if !ok {
		if val, null, j, st = parseValue(b, m); st != fastOK {
			return 0, false, 0, st
		}
	}
	if len(b)-j < len(t.suf) || string(b[j:j+len(t.suf)]) != string(t.suf) {
		return 0, false, 0, fastSlow
	}
	return val, null, j + len(t.suf), fastOK
}

func (d *fastDecoder) templateMiss() (int, bool) {
	tm := &d.tm
	tm.misses++
	if tm.misses > templateMissBudget && tm.misses > tm.hits {
		*tm = templates{off: true, hits: tm.hits, misses: tm.misses}
	}
	return 0, false
}

// learn keeps the template of the element b[:n] that parseElem just
// decoded into row.
func (d *fastDecoder) learn(b []byte, n int, row *Row) {
	tm := &d.tm
	if tm.off || tm.n >= maxTemplates || n > maxTemplateBytes || d.tsLo >= d.valLo || d.tsHi >= n || d.valHi > n {
		return
	}
	pre := b[:d.tsLo]
	if tm.pre == nil {
		tm.pre = append([]byte(nil), pre...)
		tm.table = new([tmBuckets]*template)
	} else if string(pre) != string(tm.pre) {
		return
	}
	mid, suf := b[d.tsHi+1:d.valLo], b[d.valHi:n]
	buf := make([]byte, 0, len(mid)+len(suf))
	buf = append(buf, mid...)
	buf = append(buf, suf...)
	t := &template{
		buf: buf,
		mid: buf[:len(mid):len(mid)],
		suf: buf[len(mid):],
		dev: row.DeviceID,
		met: row.MetricID,
	}
	// Clipped: the template's rows share these, and appending to a row's
	// slice must copy.
	if row.DeviceOrig != nil {
		t.origs = slices.Clip(append([]string{}, row.DeviceOrig...))
	}
	if row.Labels != nil {
		t.labels = slices.Clip(append([]Label(nil), row.Labels...))
	}
	if len(mid) >= tmWindow {
		h := tmHash(mid)
		t.chain = tm.table[h]
		tm.table[h] = t
	} else {
		tm.short = append(tm.short, t)
	}
	tm.n++
	if tm.last != nil {
		tm.last.next = t
	}
	tm.last = t
}

// sameSecond parses the timestamp text at b[0] when its first 19 bytes
// are those of the last timestamp parsed (the usual case: many rows per
// second), and returns the index of its closing quote. It gives what
// simpleString then d.timestamp give, or ok false.
func (d *fastDecoder) sameSecond(b []byte) (time.Time, int, bool) {
	if len(b) < 21 || !d.tsValid || dateTextOf(b) != d.tsDate {
		return time.Time{}, 0, false
	}
	i, nsec, nd := 19, 0, -1 // nd: fraction digits, -1 without a '.'
	if b[i] == '.' {
		nsec, nd, i = fractionDigits(b, i+1)
	}
	if i+6 < len(b) && (b[i] == '+' || b[i] == '-') {
		// The offset of the last timestamp with one, as text: the same
		// ±HH:MM then the closing quote, with 1-9 fraction digits or none,
		// is what fastTail accepts, with that offset.
		if d.offValid && offsetText(b[i:]) == d.offText && b[i+6] == '"' && nd != 0 && nd <= 9 {
			nsec = fractionNanos(nsec, max(nd, 0))
			off := d.offSecs
			loc := d.lastLoc
			if loc == nil || off != d.lastOff {
				loc = zone(off)
				d.lastOff, d.lastLoc = off, loc
			}
			return time.Unix(d.tsLocal-int64(off), int64(nsec)).In(loc), i + 6, true
		}
		i += 6
	} else {
		i++ // 'Z', checked by fastTail
	}
	if i >= len(b) || b[i] != '"' {
		return time.Time{}, 0, false
	}
	// fastTail accepts only digits, '.', 'Z', '+', '-' and ':' there: the
	// text is a plain string ending at b[i].
	t, off, ok := fastTail(b[:i], d.tsLocal)
	if !ok {
		return time.Time{}, 0, false
	}
	if c := b[i-6]; c == '+' || c == '-' {
		d.offText, d.offSecs, d.offValid = offsetText(b[i-6:i]), off, true
	}
	loc := d.lastLoc
	if loc == nil || off != d.lastOff {
		loc = zone(off)
		d.lastOff, d.lastLoc = off, loc
	}
	return t.In(loc), i, true
}

// plainNumber parses the JSON number at b[i] in one pass when it has no
// exponent and at most 15 digits, and is followed by a byte of b: then it
// is what numberEnd then simpleFloat give. Otherwise ok is false.
func plainNumber(b []byte, i int) (float64, int, bool) {
	j := i
	neg := b[j] == '-'
	if neg {
		j++
		if j >= len(b) {
			return 0, 0, false
		}
	}
	var m uint64
	digits := 0
	switch c := b[j]; {
	case c == '0':
		j++
		digits = 1
	case c >= '1' && c <= '9':
		for j < len(b) && b[j] >= '0' && b[j] <= '9' && digits < 16 {
			m = m*10 + uint64(b[j]-'0')
			digits++
			j++
		}
	default:
		return 0, 0, false
	}
	frac := 0
	if j < len(b) && b[j] == '.' {
		j++
		s := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' && digits < 16 {
			m = m*10 + uint64(b[j]-'0')
			digits++
			j++
		}
		frac = j - s
		if frac == 0 {
			return 0, 0, false
		}
	}
	if j >= len(b) || digits > 15 {
		return 0, 0, false
	}
	if c := b[j]; (c >= '0' && c <= '9') || c == 'e' || c == 'E' || c == '.' {
		return 0, 0, false
	}
	v := float64(m) / pow10[frac]
	if neg {
		v = -v
	}
	return v, j, true
}
