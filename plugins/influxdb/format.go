package influxdb

import (
	"encoding/binary"
	"math"
	"slices"
	"strconv"

	"github.com/alumet-go/alumet-agent/measure"
)

// The numbers of a line, formatted as measure.AppendFloat and
// strconv.AppendInt do, faster: with the output compressing at a few tens
// of ns a line, their formatting had become half of its cost.

// appendFloat appends the finite f as measure.AppendFloat does. Its fast
// path is measure's (a magnitude in [1e-3, 1e9) with at most four
// decimals, m = round(|f|×10^4), m/10^4 == |f|) with cheaper steps:
// floor(x+0.5) for math.Round (the same integer whenever either passes the
// check: x is then within 2e-3 of it, and x+0.5 is computed within 0.002),
// and the digits from a table.
func appendFloat(b []byte, f float64) []byte {
	a := math.Abs(f)
	if !(a >= 1e-3 && a < 1e9) {
		return measure.AppendFloat(b, f)
	}
	// int64, not uint64: Go converts those with one instruction each.
	m := int64(a*1e4 + 0.5)
	if float64(m)/1e4 != a {
		return measure.AppendFloat(b, f)
	}
	if f < 0 {
		b = append(b, '-')
	}
	b = appendSmall(b, uint64(m)/10000)
	frac := uint64(m) % 10000
	if frac == 0 {
		return b
	}
	hi, lo := frac/100, frac%100
	switch {
	case lo == 0 && hi%10 == 0:
		return append(b, '.', twoDigits[2*hi])
	case lo == 0:
		return append(b, '.', twoDigits[2*hi], twoDigits[2*hi+1])
	case lo%10 == 0:
		return append(b, '.', twoDigits[2*hi], twoDigits[2*hi+1], twoDigits[2*lo])
	}
	return append(b, '.', twoDigits[2*hi], twoDigits[2*hi+1], twoDigits[2*lo], twoDigits[2*lo+1])
}

// appendSmall appends u in decimal, the common integer parts of a reading
// without strconv's loop.
func appendSmall(b []byte, u uint64) []byte {
	switch {
	case u < 10:
		return append(b, byte('0'+u))
	case u < 100:
		return append(b, twoDigits[2*u], twoDigits[2*u+1])
	case u < 1000:
		r := u % 100
		return append(b, byte('0'+u/100), twoDigits[2*r], twoDigits[2*r+1])
	}
	return strconv.AppendUint(b, u, 10)
}

// nanos writes timestamps in ns as strconv.AppendInt does, keeping the
// digits of the last second: the points of one second (and they come in
// order) cost only their last nine digits, which strconv's full
// conversion of 19 digits made a fifth of the output's cost.
type nanos struct {
	sec  int64
	text [16]byte // sec in decimal
	n    int      // its length, 0 before the first
}

func (t *nanos) append(b []byte, ns int64) []byte {
	if ns < 1e9 {
		return strconv.AppendInt(b, ns, 10)
	}
	sec, rem := ns/1e9, uint64(ns%1e9)
	if sec != t.sec || t.n == 0 {
		t.n = len(strconv.AppendInt(t.text[:0], sec, 10)) // 10 digits at most: sec < 9.3e9
		t.sec = sec
	}
	// The second's digits with two 8-byte writes (the room for them made
	// first), then the nine digits of rem.
	l := len(b)
	b = slices.Grow(b, 32)
	b = b[:l+16]
	binary.LittleEndian.PutUint64(b[l:], binary.LittleEndian.Uint64(t.text[:]))
	binary.LittleEndian.PutUint64(b[l+8:], binary.LittleEndian.Uint64(t.text[8:]))
	b = b[:l+t.n]
	q := rem / 1e8
	rem -= q * 1e8
	d1 := rem / 1e6
	rem -= d1 * 1e6
	d2 := rem / 1e4
	rem -= d2 * 1e4
	d3, d4 := rem/100, rem%100
	return append(b, byte('0'+q), twoDigits[2*d1], twoDigits[2*d1+1], twoDigits[2*d2], twoDigits[2*d2+1],
		twoDigits[2*d3], twoDigits[2*d3+1], twoDigits[2*d4], twoDigits[2*d4+1])
}

const twoDigits = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"
