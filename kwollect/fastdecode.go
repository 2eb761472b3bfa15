package kwollect

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The fast decoder is a hand-written scanner for the shape Kwollect
// actually sends: an array of flat objects with the keys timestamp,
// device_id, metric_id, value and labels, plain ASCII strings without
// escapes, and labels whose values are strings (or, for _device_orig, an
// array of strings). It reads through a buffered window and allocates
// nothing per row beyond the row's own slices (carved from shared slabs)
// and strings not seen before (ids and labels are interned).
//
// It never reports an error or a bad row itself. An element it does not
// recognise is delimited, checked with json.Valid and decoded by the same
// code as the general decoder (json.Unmarshal into wireRow, then toRow); if
// anything is wrong with the stream structure (invalid JSON, a cut body, a
// missing separator, a read error), the rest of the stream, starting at the
// last element it delivered, is handed to the general decoder, which then
// produces exactly the rows, reports and errors it would have produced on
// its own. FuzzFastVsGeneral checks that the two agree.

const (
	fastBufSize = 64 << 10
	maxInterned = 1 << 14 // distinct strings kept per response
	slabSize    = 512     // rows' slices are carved from slabs of this length
)

// Results of parseElem.
const (
	fastOK   = iota // row decoded
	fastMore        // the buffer ends inside the element: read more, retry
	fastSlow        // not the known shape: decode the element generally
)

type fastDecoder struct {
	r    io.Reader
	buf  []byte
	pos  int   // next byte to scan
	end  int   // buf[:end] holds data
	mark int   // resume point for a fallback; buf[mark:] is kept on refill
	err  error // sticky read error (io.EOF included)

	strs      map[string]string
	recent    [internCache]string // direct-mapped cache in front of strs
	lastOff   int
	lastLoc   *time.Location
	strSlab   []string
	labelSlab []Label

	// The date and time of day of the last timestamp (its first 19
	// bytes) and their seconds since the epoch, as if in UTC: rows come
	// in time order, many per second.
	tsDate  dateText
	tsLocal int64
	tsValid bool
	// The last ±HH:MM offset sameSecond parsed (offsetText), and its seconds.
	offText  uint64
	offSecs  int
	offValid bool

	// Per-element scratch, pointing into buf (valid until the next fill).
	origs    [][]byte
	hasOrig  bool
	labelsKV [][2][]byte

	// Where the timestamp's text and the value's token were in the
	// element parseElem last decoded (for the templates).
	tsLo, tsHi, valLo, valHi int

	tm templates
}

// fill reads until at least need bytes are buffered from pos on, keeping
// buf[mark:end]. Asking for twice what is buffered when an element is cut
// keeps re-scanning it linear overall, however small the reads. fill
// returns false when no more data came (end of stream, read error, or a
// reader that makes no progress); the caller then falls back to the general
// decoder.
func (d *fastDecoder) fill(need int) bool {
	if d.err != nil {
		return false
	}
	if d.mark > 0 {
		n := copy(d.buf, d.buf[d.mark:d.end])
		d.pos -= d.mark
		d.end = n
		d.mark = 0
	}
	size := len(d.buf)
	for size < d.pos+need || size == d.end {
		size *= 2
	}
	if size > len(d.buf) {
		nb := make([]byte, size)
		copy(nb, d.buf[:d.end])
		d.buf = nb
	}
	progress := false
	for tries := 0; d.end-d.pos < need && tries < 100; {
		n, err := d.r.Read(d.buf[d.end:])
		if n < 0 || n > len(d.buf)-d.end {
			return false // a broken reader: let the general decoder deal with it
		}
		d.end += n
		if n > 0 {
			progress, tries = true, 0
		} else {
			tries++
		}
		if err != nil {
			d.err = err
			break
		}
	}
	return progress
}

// bufPool keeps the decoders' buffers of fastBufSize bytes: a session
// decodes many responses, and a fresh buffer per response would be
// allocated and cleared each time.
var bufPool sync.Pool // of *[]byte

func getBuf(size int) []byte {
	if size == fastBufSize {
		if p, ok := bufPool.Get().(*[]byte); ok {
			return *p
		}
	}
	return make([]byte, size)
}

// putBuf returns buf to the pool; the decoder must not use it afterwards
// (nothing it delivered points into it: strings and rows are copies).
func putBuf(buf []byte) {
	if len(buf) == fastBufSize {
		bufPool.Put(&buf)
	}
}

// skipWS skips JSON whitespace; false if the data ended first. Small
// enough to inline: between elements there is rarely any whitespace.
func (d *fastDecoder) skipWS() bool {
	if d.pos < d.end && d.buf[d.pos] > ' ' {
		return true
	}
	return d.skipWSSlow()
}

func (d *fastDecoder) skipWSSlow() bool {
	for {
		for d.pos < d.end {
			switch d.buf[d.pos] {
			case ' ', '\n', '\t', '\r':
				d.pos++
				continue
			}
			return true
		}
		if !d.fill(1) {
			return false
		}
	}
}

// tailReader replays the kept window, then the sticky read error or the
// rest of the underlying reader.
type tailReader struct {
	d *fastDecoder
}

func (t *tailReader) Read(p []byte) (int, error) {
	if t.d.err != nil {
		return 0, t.d.err
	}
	return t.d.r.Read(p)
}

// trailing checks what follows the closing ']' (at d.pos).
func (d *fastDecoder) trailing() error {
	return checkTrailing(io.MultiReader(bytes.NewReader(d.buf[d.pos:d.end]), &tailReader{d}))
}

// fallback hands the stream from mark on to the general decoder. prefix
// rebuilds the decoder state: "" before the '[', "[" right after it, and
// "[0" (a dummy element, skipped) before the comma that follows an element.
func (d *fastDecoder) fallback(prefix string, idx, n int, opts DecodeOptions, fn func(*Row) error) (int, error) {
	if opts.tmHit != nil {
		*opts.tmHit = nil // the general decoder has no templates
	}
	r := io.MultiReader(strings.NewReader(prefix), bytes.NewReader(d.buf[d.mark:d.end]), &tailReader{d})
	return decodeGeneral(r, prefix == "[0", idx, n, opts, fn)
}

func decodeFast(r io.Reader, bufSize int, opts DecodeOptions, fn func(*Row) error) (int, error) {
	d := &fastDecoder{r: r, buf: getBuf(bufSize), strs: make(map[string]string)}
	defer putBuf(d.buf)
	d.tm.off = opts.noTemplates
	if opts.tmStats != nil {
		defer func() { *opts.tmStats = d.tm }()
	}
	if !d.skipWS() || d.buf[d.pos] != '[' {
		return d.fallback("", 0, 0, opts, fn)
	}
	d.pos++
	d.mark = d.pos
	if !d.skipWS() {
		return d.fallback("[", 0, 0, opts, fn)
	}
	if d.buf[d.pos] == ']' {
		d.pos++
		opts.ended()
		return 0, d.trailing()
	}
	var (
		own Row // where rows are decoded without opts.slot
		w   wireRow
		n   int
	)
	// An element over the limit is left to the general decoder, which
	// skips it without holding it (and decodes the rest of the stream).
	over := func(size int) bool { return opts.MaxRowBytes > 0 && size > opts.MaxRowBytes }
	for idx := 0; ; idx++ {
		prefix := "[0"
		if idx == 0 {
			prefix = "["
		}
		// d.pos is at the first byte of element idx.
		row := &own
		if opts.slot != nil {
			row = opts.slot()
		}
		var e, st int
		var hit *template
		for {
			var ok bool
			if e, ok = d.matchTemplate(d.buf[d.pos:d.end], row); ok {
				st, hit = fastOK, d.tm.last
				break
			}
			e, st = d.parseElem(d.buf[d.pos:d.end], row)
			if st == fastOK {
				d.learn(d.buf[d.pos:d.end], e, row)
			}
			if st != fastMore {
				break
			}
			if over(d.end-d.pos) || !d.fill(2*(d.end-d.pos)+1) {
				return d.fallback(prefix, idx, n, opts, fn)
			}
		}
		if st == fastOK && over(e) {
			return d.fallback(prefix, idx, n, opts, fn)
		}
		var bad *RowError
		emit := true
		if st == fastSlow {
			for {
				e = valueEnd(d.buf[d.pos:d.end], 0)
				if e >= 0 && d.pos+e < d.end {
					break
				}
				if c := d.buf[d.pos]; e < 0 && c != '"' && c != '{' && c != '[' {
					return d.fallback(prefix, idx, n, opts, fn)
				}
				if over(d.end-d.pos) || !d.fill(2*(d.end-d.pos)+1) {
					return d.fallback(prefix, idx, n, opts, fn)
				}
			}
			if over(e) {
				return d.fallback(prefix, idx, n, opts, fn)
			}
			elem := d.buf[d.pos : d.pos+e]
			if !json.Valid(elem) {
				return d.fallback(prefix, idx, n, opts, fn)
			}
			var ok bool
			bad, ok = slowElem(elem, idx, &w, row)
			if !ok {
				return d.fallback(prefix, idx, n, opts, fn)
			}
			emit = bad == nil
		}
		d.pos += e
		if !d.skipWS() {
			return d.fallback(prefix, idx, n, opts, fn)
		}
		c := d.buf[d.pos]
		if c != ',' && c != ']' {
			return d.fallback(prefix, idx, n, opts, fn)
		}
		// The element is well delimited: deliver it.
		if emit {
			if opts.tmHit != nil {
				*opts.tmHit = hit
			}
			if err := fn(row); err != nil {
				return n, err
			}
			n++
		} else if opts.OnBadRow != nil {
			opts.OnBadRow(bad)
		}
		if c == ']' {
			d.pos++
			opts.ended()
			return n, d.trailing()
		}
		d.mark = d.pos // the comma
		d.pos++
		if !d.skipWS() || d.buf[d.pos] == ']' {
			return d.fallback("[0", idx+1, n, opts, fn)
		}
	}
}

// slowElem decodes one complete, valid element like the general decoder.
// ok is false if the element should not be handled here after all.
func slowElem(elem []byte, idx int, w *wireRow, row *Row) (bad *RowError, ok bool) {
	w.reset()
	if err := json.Unmarshal(elem, w); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &RowError{Index: idx, Err: fmt.Errorf("element is a JSON %s, not an object", te.Value)}, true
		}
		return nil, false
	}
	if err := w.toRow(row); err != nil {
		return &RowError{Index: idx, Err: err, Raw: w.snippet()}, true
	}
	return nil, true
}

func wsAt(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// simpleString scans the JSON string at b[i] (b[i] == '"'): it returns the
// index after the closing quote, or a status if the string runs past the
// buffer or holds an escape, a control character or a non-ASCII byte.
func simpleString(b []byte, i int) (int, int) {
	j := i + 1
	// Eight bytes at a time while none of them needs a closer look.
	for ; j+8 <= len(b); j += 8 {
		x := binary.LittleEndian.Uint64(b[j:])
		const lo, hi = 0x0101010101010101, 0x8080808080808080
		q := x ^ (lo * '"')
		bs := x ^ (lo * '\\')
		special := (x - lo*0x20) | (q - lo) | (bs - lo) | x
		if special&hi != 0 {
			break
		}
	}
	for ; j < len(b); j++ {
		c := b[j]
		if c == '"' {
			return j + 1, fastOK
		}
		if c == '\\' || c < 0x20 || c >= 0x80 {
			return 0, fastSlow
		}
	}
	return 0, fastMore
}

// numberEnd scans a JSON number at b[i] (strict grammar). The number must
// be followed by some byte in b (numbers have no terminator).
func numberEnd(b []byte, i int) (int, int) {
	j := i
	if b[j] == '-' {
		j++
		if j >= len(b) {
			return 0, fastMore
		}
	}
	switch c := b[j]; {
	case c == '0':
		j++
	case c >= '1' && c <= '9':
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
	default:
		return 0, fastSlow
	}
	if j >= len(b) {
		return 0, fastMore
	}
	if b[j] == '.' {
		j++
		s := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j >= len(b) {
			return 0, fastMore
		}
		if j == s {
			return 0, fastSlow
		}
	}
	if b[j] == 'e' || b[j] == 'E' {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		s := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j >= len(b) {
			return 0, fastMore
		}
		if j == s {
			return 0, fastSlow
		}
	}
	return j, fastOK
}

// hasLit reports whether b[i:] starts with lit, or fastMore if b is too short
// to tell.
func hasLit(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) {
		if string(b[i:]) == lit[:len(b)-i] {
			return fastMore
		}
		return fastSlow
	}
	if string(b[i:i+len(lit)]) == lit {
		return fastOK
	}
	return fastSlow
}

// knownKey returns the index after the quoted key at b[i] if it is one of
// the element's keys, or 0.
func knownKey(b []byte, i int) int {
	if len(b)-i < 12 {
		return 0
	}
	var lit string
	switch b[i+1] {
	case 't':
		lit = `"timestamp"`
	case 'd':
		lit = `"device_id"`
	case 'm':
		lit = `"metric_id"`
	case 'v':
		lit = `"value"`
	case 'l':
		lit = `"labels"`
	default:
		return 0
	}
	if string(b[i:i+len(lit)]) == lit {
		return i + len(lit)
	}
	return 0
}

const (
	haveTS = 1 << iota
	haveDev
	haveMet
	haveVal
	haveLabels
	haveAll = haveTS | haveDev | haveMet | haveVal
)

// parseElem decodes the element at b[0] if it has the known shape. It only
// writes row on success.
func (d *fastDecoder) parseElem(b []byte, row *Row) (int, int) {
	if len(b) == 0 {
		return 0, fastMore
	}
	if b[0] != '{' {
		return 0, fastSlow
	}
	var (
		have         int
		ts, dev, met []byte
		val          float64
		null         bool
		st, end, i   int
	)
	d.origs = d.origs[:0]
	d.hasOrig = false
	d.labelsKV = d.labelsKV[:0]
	i = wsAt(b, 1)
	for {
		if i >= len(b) {
			return 0, fastMore
		}
		if b[i] != '"' {
			return 0, fastSlow
		}
		// The usual keys are matched whole; anything else is scanned.
		end = knownKey(b, i)
		if end == 0 {
			if end, st = simpleString(b, i); st != fastOK {
				return 0, st
			}
		}
		key := b[i+1 : end-1]
		if end < len(b) && b[end] == ':' {
			i = end + 1
		} else {
			i = wsAt(b, end)
			if i >= len(b) {
				return 0, fastMore
			}
			if b[i] != ':' {
				return 0, fastSlow
			}
			i++
		}
		i = wsAt(b, i)
		if i >= len(b) {
			return 0, fastMore
		}
		var bit int
		switch string(key) {
		case "timestamp", "device_id", "metric_id":
			switch key[0] {
			case 't':
				bit = haveTS
			case 'd':
				bit = haveDev
			default:
				bit = haveMet
			}
			if b[i] != '"' {
				return 0, fastSlow
			}
			if end, st = simpleString(b, i); st != fastOK {
				return 0, st
			}
			s := b[i+1 : end-1]
			switch bit {
			case haveTS:
				ts = s
				d.tsLo, d.tsHi = i+1, end-1
			case haveDev:
				dev = s
			default:
				met = s
			}
			i = end
		case "value":
			bit = haveVal
			d.valLo = i
			if val, null, i, st = parseValue(b, i); st != fastOK {
				return 0, st
			}
			d.valHi = i
		case "labels":
			bit = haveLabels
			if i, st = d.parseLabels(b, i); st != fastOK {
				return 0, st
			}
		default:
			return 0, fastSlow
		}
		if have&bit != 0 {
			return 0, fastSlow // repeated key
		}
		have |= bit
		i = wsAt(b, i)
		if i >= len(b) {
			return 0, fastMore
		}
		if b[i] == '}' {
			i++
			break
		}
		if b[i] != ',' {
			return 0, fastSlow
		}
		i = wsAt(b, i+1)
	}
	if have&haveAll != haveAll {
		return 0, fastSlow
	}
	t, ok := d.timestamp(ts)
	if !ok {
		return 0, fastSlow
	}
	*row = Row{Timestamp: t, DeviceID: d.intern(dev), MetricID: d.intern(met), Value: val, Null: null}
	if d.hasOrig {
		o := d.strings(len(d.origs))
		for k, s := range d.origs {
			o[k] = d.intern(s)
		}
		row.DeviceOrig = o
	}
	if kv := d.labelsKV; len(kv) > 0 {
		// Insertion sort: a row has a handful of labels at most.
		for a := 1; a < len(kv); a++ {
			for c := a; c > 0 && bytes.Compare(kv[c-1][0], kv[c][0]) > 0; c-- {
				kv[c-1], kv[c] = kv[c], kv[c-1]
			}
		}
		ls := d.labels(len(kv))
		for k, p := range kv {
			ls[k] = Label{Key: d.intern(p[0]), Value: d.intern(p[1])}
		}
		row.Labels = ls
	}
	return i, fastOK
}

// parseValue scans the value at b[i]: a number, null, or one of the
// strings "NaN", "Infinity" and "-Infinity". It returns the index after it.
func parseValue(b []byte, i int) (val float64, null bool, j, st int) {
	switch c := b[i]; {
	case c == 'n':
		if st = hasLit(b, i, "null"); st != fastOK {
			return 0, false, 0, st
		}
		return math.NaN(), true, i + 4, fastOK
	case c == '"':
		end, st := simpleString(b, i)
		if st != fastOK {
			return 0, false, 0, st
		}
		switch string(b[i+1 : end-1]) {
		case "NaN":
			val = math.NaN()
		case "Infinity":
			val = math.Inf(1)
		case "-Infinity":
			val = math.Inf(-1)
		default:
			return 0, false, 0, fastSlow
		}
		return val, false, end, fastOK
	case c == '-' || (c >= '0' && c <= '9'):
		if j, st = numberEnd(b, i); st != fastOK {
			return 0, false, 0, st
		}
		if v, ok := simpleFloat(b[i:j]); ok {
			return v, false, j, fastOK
		}
		v, err := strconv.ParseFloat(string(b[i:j]), 64)
		if err != nil {
			return 0, false, 0, fastSlow
		}
		return v, false, j, fastOK
	}
	return 0, false, 0, fastSlow
}

// parseLabels scans the labels value at b[i]: null, or an object of plain
// strings, _device_orig being also allowed as null or an array of strings.
func (d *fastDecoder) parseLabels(b []byte, i int) (int, int) {
	var end, st int
	if b[i] == 'n' {
		if st = hasLit(b, i, "null"); st != fastOK {
			return 0, st
		}
		return i + 4, fastOK
	}
	if b[i] != '{' {
		return 0, fastSlow
	}
	i = wsAt(b, i+1)
	if i >= len(b) {
		return 0, fastMore
	}
	if b[i] == '}' {
		return i + 1, fastOK
	}
	for {
		if i >= len(b) {
			return 0, fastMore
		}
		if b[i] != '"' {
			return 0, fastSlow
		}
		if end, st = simpleString(b, i); st != fastOK {
			return 0, st
		}
		key := b[i+1 : end-1]
		i = wsAt(b, end)
		if i >= len(b) {
			return 0, fastMore
		}
		if b[i] != ':' {
			return 0, fastSlow
		}
		i = wsAt(b, i+1)
		if i >= len(b) {
			return 0, fastMore
		}
		if string(key) == "_device_orig" {
			if d.hasOrig {
				return 0, fastSlow // repeated key
			}
			switch b[i] {
			case '"':
				if end, st = simpleString(b, i); st != fastOK {
					return 0, st
				}
				d.origs = append(d.origs, b[i+1:end-1])
				i = end
			case '[':
				i = wsAt(b, i+1)
				if i >= len(b) {
					return 0, fastMore
				}
				if b[i] == ']' {
					i++
					break
				}
				for {
					if i >= len(b) {
						return 0, fastMore
					}
					if b[i] != '"' {
						return 0, fastSlow
					}
					if end, st = simpleString(b, i); st != fastOK {
						return 0, st
					}
					d.origs = append(d.origs, b[i+1:end-1])
					i = wsAt(b, end)
					if i >= len(b) {
						return 0, fastMore
					}
					if b[i] == ']' {
						i++
						break
					}
					if b[i] != ',' {
						return 0, fastSlow
					}
					i = wsAt(b, i+1)
				}
			default:
				// null (and odd shapes) are left to the general decoder:
				// null must not count as a label, odd shapes become one.
				return 0, fastSlow
			}
			d.hasOrig = true
		} else {
			if b[i] != '"' {
				return 0, fastSlow
			}
			if end, st = simpleString(b, i); st != fastOK {
				return 0, st
			}
			for _, kv := range d.labelsKV {
				if bytes.Equal(kv[0], key) {
					return 0, fastSlow // repeated key
				}
			}
			d.labelsKV = append(d.labelsKV, [2][]byte{key, b[i+1 : end-1]})
			i = end
		}
		i = wsAt(b, i)
		if i >= len(b) {
			return 0, fastMore
		}
		if b[i] == '}' {
			return i + 1, fastOK
		}
		if b[i] != ',' {
			return 0, fastSlow
		}
		i = wsAt(b, i+1)
	}
}

// internCache is the size of fastDecoder.recent (a power of two).
const internCache = 64

// internSlot picks the slot of b in fastDecoder.recent from a few of its
// bytes: ids differ in their length and last characters (taurus-7,
// wattmetre1-port6), and a comparison settles the rest.
func internSlot(b []byte) int {
	n := len(b)
	if n == 0 {
		return 0
	}
	return (n*7 + int(b[0]) + int(b[n-1])*31 + int(b[n/2])*17 + int(b[(n-1)*3/4])*5) & (internCache - 1)
}

func (d *fastDecoder) intern(b []byte) string {
	slot := &d.recent[internSlot(b)]
	if *slot == string(b) && len(b) > 0 {
		return *slot
	}
	s, ok := d.strs[string(b)]
	if !ok {
		s = string(b)
		if len(d.strs) < maxInterned {
			d.strs[s] = s
		}
	}
	*slot = s
	return s
}

// strings returns a fresh slice of n strings (never nil), carved from a
// slab with its capacity capped so that appending to it copies.
func (d *fastDecoder) strings(n int) []string {
	if n == 0 {
		return []string{}
	}
	if n > slabSize/8 {
		return make([]string, n)
	}
	if cap(d.strSlab)-len(d.strSlab) < n {
		d.strSlab = make([]string, 0, slabSize)
	}
	l := len(d.strSlab)
	d.strSlab = d.strSlab[:l+n]
	return d.strSlab[l : l+n : l+n]
}

func (d *fastDecoder) labels(n int) []Label {
	if n > slabSize/8 {
		return make([]Label, n)
	}
	if cap(d.labelSlab)-len(d.labelSlab) < n {
		d.labelSlab = make([]Label, 0, slabSize)
	}
	l := len(d.labelSlab)
	d.labelSlab = d.labelSlab[:l+n]
	return d.labelSlab[l : l+n : l+n]
}

// dateText is the "YYYY-MM-DDTHH:MM:SS" of a timestamp as three words
// (bytes 0-7, 8-15 and 11-18): compared inline, where a [19]byte is
// compared by a call to memequal, for every row.
type dateText struct{ a, b, c uint64 }

// dateTextOf returns the dateText of b's first 19 bytes (len(b) >= 19).
func dateTextOf(b []byte) dateText {
	return dateText{binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:]), binary.LittleEndian.Uint64(b[11:19])}
}

// offsetText returns b's first 6 bytes (an offset: ±HH:MM) as a word.
func offsetText(b []byte) uint64 {
	return uint64(binary.LittleEndian.Uint32(b)) | uint64(binary.LittleEndian.Uint16(b[4:6]))<<32
}

// timestamp parses a timestamp without allocating in the usual
// YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM) form, and with parseTimestamp
// otherwise. ok is false for a bad timestamp.
func (d *fastDecoder) timestamp(b []byte) (time.Time, bool) {
	if len(b) >= 20 && d.tsValid && dateTextOf(b) == d.tsDate {
		if t, off, ok := fastTail(b, d.tsLocal); ok {
			loc := d.lastLoc
			if loc == nil || off != d.lastOff {
				loc = zone(off)
				d.lastOff, d.lastLoc = off, loc
			}
			return t.In(loc), true
		}
	}
	if t, off, ok := fastTimestamp(b); ok {
		d.tsDate = dateTextOf(b)
		d.tsLocal = t.Unix() + int64(off)
		d.tsValid = true
		loc := d.lastLoc
		if loc == nil || off != d.lastOff {
			loc = zone(off)
			d.lastOff, d.lastLoc = off, loc
		}
		return t.In(loc), true
	}
	t, msg := parseTimestamp(string(b))
	return t, msg == ""
}

func d2(b []byte, i int) (int, bool) {
	c0, c1 := b[i]-'0', b[i+1]-'0'
	return int(c0)*10 + int(c1), c0 <= 9 && c1 <= 9
}

// fastTimestamp returns the instant (in UTC) and the offset in seconds.
func fastTimestamp(b []byte) (time.Time, int, bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, 0, false
	}
	y1, ok1 := d2(b, 0)
	y2, ok2 := d2(b, 2)
	mo, ok3 := d2(b, 5)
	dd, ok4 := d2(b, 8)
	hh, ok5 := d2(b, 11)
	mi, ok6 := d2(b, 14)
	ss, ok7 := d2(b, 17)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) {
		return time.Time{}, 0, false
	}
	year := y1*100 + y2
	if mo < 1 || mo > 12 || dd < 1 || dd > daysIn(mo, year) || hh > 23 || mi > 59 || ss > 59 {
		return time.Time{}, 0, false
	}
	local := daysFromCivil(year, mo, dd)*86400 + int64(hh*3600+mi*60+ss)
	return fastTail(b, local)
}

// fastTail parses what follows the 19 bytes of date and time of day of a
// timestamp (a fraction of 1-9 digits, then Z or ±HH:MM) whose wall time
// is local seconds since the epoch, and returns the instant (in UTC) and
// the offset in seconds.
func fastTail(b []byte, local int64) (time.Time, int, bool) {
	i, nsec := 19, 0
	if b[i] == '.' {
		var nd int
		if nsec, nd, i = fractionDigits(b, i+1); nd == 0 || nd > 9 {
			return time.Time{}, 0, false
		}
		nsec = fractionNanos(nsec, nd)
	}
	off := 0
	switch rest := b[i:]; {
	case len(rest) == 1 && rest[0] == 'Z':
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, okh := d2(rest, 1)
		om, okm := d2(rest, 4)
		if !okh || !okm || oh > 23 || om > 59 {
			return time.Time{}, 0, false
		}
		off = oh*3600 + om*60
		if rest[0] == '-' {
			off = -off
		}
	default:
		return time.Time{}, 0, false
	}
	return time.Unix(local-int64(off), int64(nsec)), off, true
}

// fractionDigits reads the digits of a timestamp's fraction from b[i]:
// their value, their number, and the index after them.
func fractionDigits(b []byte, i int) (v, nd, end int) {
	s := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		v = v*10 + int(b[i]-'0')
		i++
	}
	return v, i - s, i
}

// fractionNanos scales the value of nd (at most 9) fraction digits to
// nanoseconds.
func fractionNanos(v, nd int) int {
	for ; nd < 9; nd++ {
		v *= 10
	}
	return v
}

// daysFromCivil returns the days since 1970-01-01 of a date in the
// proleptic Gregorian calendar (Howard Hinnant's days_from_civil).
func daysFromCivil(year, mo, dd int) int64 {
	y := int64(year)
	if mo <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	m := int64(mo)
	if m > 2 {
		m -= 3
	} else {
		m += 9
	}
	doy := (153*m+2)/5 + int64(dd) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// simpleFloat converts a valid JSON number without exponent whose digits
// fit in 2^53, with at most 22 fraction digits: the mantissa and the power
// of ten are then exact float64s, and one division rounds correctly, so
// the result is the one strconv.ParseFloat gives (Clinger's fast path).
func simpleFloat(b []byte) (float64, bool) {
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	var m uint64
	frac, digits, dot := 0, 0, false
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			m = m*10 + uint64(c-'0')
			digits++
			if dot {
				frac++
			}
		case c == '.':
			dot = true
		default:
			return 0, false // exponent
		}
	}
	if digits > 15 || frac > 22 {
		return 0, false
	}
	v := float64(m) / pow10[frac]
	if neg {
		v = -v
	}
	return v, true
}
