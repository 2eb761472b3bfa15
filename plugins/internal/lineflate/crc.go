package lineflate

import "hash/crc32"

// The gzip trailer needs the CRC-32 of the uncompressed bytes, but a
// series' prefix is never copied anywhere: its share is folded in. The CRC
// register after bytes P from x is M_n(x) ^ crcRaw(P), M_n a linear map
// of the 32-bit register that depends only on n = len(P) (the effect of n
// zero bytes), so a prefix costs a few table lookups instead of a pass
// over its bytes; and crcRaw is linear in P's bytes, which lets a tail's be
// computed from the previous tail's (seriesLine).

// shift is M_n as eight nibble-indexed tables (512 bytes: the few in use
// stay in the L1 cache, where four byte-indexed ones took 4 KiB each, and
// the lookups of a random register missed): M_n(c) is the xor of
// shift[k][c>>(4k)&0xf].
type shift [8][16]uint32

func newShift(n int) *shift {
	zeros := make([]byte, n)
	z0 := crc32.ChecksumIEEE(zeros) // crc32.Update(0, zeros)
	var col [32]uint32              // M_n of each bit
	for j := range 32 {
		col[j] = crc32.Update(1<<j, crc32.IEEETable, zeros) ^ z0
	}
	s := &shift{}
	for k := range 8 {
		for v := 1; v < 16; v++ {
			low := v & -v // the lowest set bit
			bit := 0
			for 1<<bit != low {
				bit++
			}
			s[k][v] = s[k][v&^low] ^ col[4*k+bit]
		}
	}
	return s
}

func (s *shift) apply(c uint32) uint32 {
	return s[0][c&0xf] ^ s[1][c>>4&0xf] ^ s[2][c>>8&0xf] ^ s[3][c>>12&0xf] ^
		s[4][c>>16&0xf] ^ s[5][c>>20&0xf] ^ s[6][c>>24&0xf] ^ s[7][c>>28]
}

// The shifts by length, made when first needed.
const (
	maxShortShift = 4096 // lengths below have a slot
	maxLongShifts = 256  // the longer ones kept
)

func (w *Writer) shiftFor(n int) *shift {
	if n < maxShortShift {
		if n >= len(w.shifts) {
			w.shifts = append(w.shifts, make([]*shift, n+1-len(w.shifts))...)
		}
		sh := w.shifts[n]
		if sh == nil {
			sh = newShift(n)
			w.shifts[n] = sh
		}
		return sh
	}
	sh := w.long[n]
	if sh == nil {
		if w.long == nil || len(w.long) >= maxLongShifts {
			w.long = map[int]*shift{}
		}
		sh = newShift(n)
		w.long[n] = sh
	}
	return sh
}

// crcLine returns the CRC register x after s's prefix and tail, rt being
// crcRaw(tail) (unused for a tail longer than maxTail): one shift by the
// line's length, x ^= M_n(crcRaw(prefix)) ^ rt, that term kept for the
// series' last tail length.
func (w *Writer) crcLine(x uint32, s *Series, tail []byte, rt uint32) uint32 {
	n := len(tail)
	if n > maxTail {
		if len(s.prefix) > 0 {
			x = w.shiftFor(len(s.prefix)).apply(x) ^ s.rp
		}
		return ^crc32.Update(^x, crc32.IEEETable, tail)
	}
	if n != s.cn || s.line == nil {
		s.cn, s.line = n, w.shiftFor(len(s.prefix)+n)
		s.mrp = w.shiftFor(n).apply(s.rp)
	}
	return s.line.apply(x) ^ s.mrp ^ rt
}

// maxTail bounds the tails whose CRC uses crcPos: a value and a timestamp
// take 20 to 45 bytes; a longer tail's is crc32's.
const maxTail = 64

// crcRaw is p's share of a CRC register: the register after p from a zero
// register. The register after p from x is M_len(p)(x) ^ crcRaw(p).
func crcRaw(p []byte) uint32 {
	n := len(p)
	if n > maxTail {
		return ^crc32.Update(0xffffffff, crc32.IEEETable, p)
	}
	// Slicing by n: every byte is one lookup in the table of its
	// distance to the end, the lookups independent of each other (where
	// crc32's slicing-by-8 chains each 8 bytes to the previous ones).
	t := crcPos
	var a, b uint32
	i := 0
	for ; i+2 <= n; i += 2 {
		a ^= t[p[i]][(n-1-i)&(maxTail-1)]
		b ^= t[p[i+1]][(n-2-i)&(maxTail-1)]
	}
	if i < n {
		a ^= t[p[i]][0]
	}
	return a ^ b
}

// crcPos[v][k] is the CRC register after the byte v and k zero bytes, from
// a zero register: the tables of slicing-by-maxTail, by byte first, so
// that the few bytes of numbers take a few contiguous cache lines (by
// distance first, the rows 1 KiB apart fell in the same cache sets).
var crcPos = func() *[256][maxTail]uint32 {
	t := &[256][maxTail]uint32{}
	t0 := crc32.MakeTable(crc32.IEEE)
	for v := range 256 {
		c := t0[v]
		t[v][0] = c
		for k := 1; k < maxTail; k++ {
			c = t0[c&0xff] ^ c>>8
			t[v][k] = c
		}
	}
	return t
}()
