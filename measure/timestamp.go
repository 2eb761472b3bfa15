package measure

import "time"

// Timestamps appends instants as RFC 3339 text in UTC with nanoseconds and
// the trailing zeros of the fraction removed (time.RFC3339Nano), the form of
// the CSV's timestamp cell: "2025-07-22T11:05:26.000468Z". It keeps the text
// of the last second it wrote, so that the many points of one second cost
// only their fraction. The zero value is ready; it is not safe for
// concurrent use.
type Timestamps struct {
	prefix []byte // "2006-01-02T15:04:05" of the second sec
	sec    int64
}

// AppendUnix appends the instant sec seconds and ns nanoseconds
// (0 <= ns < 1e9) after the Unix epoch.
func (f *Timestamps) AppendUnix(b []byte, sec int64, ns uint32) []byte {
	if sec != f.sec || len(f.prefix) == 0 {
		u := time.Unix(sec, 0).UTC()
		if y := u.Year(); y < 0 || y > 9999 {
			f.prefix = f.prefix[:0]
			return time.Unix(sec, int64(ns)).UTC().AppendFormat(b, time.RFC3339Nano)
		}
		f.prefix = u.AppendFormat(f.prefix[:0], "2006-01-02T15:04:05")
		f.sec = sec
	}
	b = append(b, f.prefix...)
	if ns != 0 {
		// Two digits at a time; then the trailing zeros go, as in
		// time.RFC3339Nano.
		var frac [10]byte
		frac[0] = '.'
		frac[1] = byte('0' + ns/100_000_000)
		ns %= 100_000_000
		for i := 8; i > 0; i -= 2 {
			copy(frac[i:i+2], twoDigits[2*(ns%100):])
			ns /= 100
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	return append(b, 'Z')
}

// AppendNanos appends the instant ns nanoseconds after the Unix epoch.
func (f *Timestamps) AppendNanos(b []byte, ns int64) []byte {
	sec, rem := ns/1e9, ns%1e9
	if rem < 0 {
		sec, rem = sec-1, rem+1e9
	}
	return f.AppendUnix(b, sec, uint32(rem))
}

// AppendTime appends t.
func (f *Timestamps) AppendTime(b []byte, t time.Time) []byte {
	return f.AppendUnix(b, t.Unix(), uint32(t.Nanosecond()))
}

// AppendNineDigits appends u (below 1e9) as exactly nine decimal digits,
// leading zeros kept: the nanoseconds of a second.
func AppendNineDigits(b []byte, u uint64) []byte {
	q := u / 1e8
	u -= q * 1e8
	d1 := u / 1e6
	u -= d1 * 1e6
	d2 := u / 1e4
	u -= d2 * 1e4
	d3, d4 := u/100, u%100
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
