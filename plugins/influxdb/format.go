package influxdb

import (
	"encoding/binary"
	"slices"
	"strconv"
)

// The timestamps of a line, formatted as strconv.AppendInt does, faster:
// with the output compressing at a few tens of ns a line, their formatting
// had become a fifth of its cost. (The values are measure.AppendFloat's,
// which has the same kind of fast path.)

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
