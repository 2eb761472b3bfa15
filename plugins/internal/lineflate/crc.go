package lineflate

import "hash/crc32"

// The gzip trailer needs the CRC-32 of the uncompressed bytes, but a
// series' prefix is never copied anywhere: its share is folded in.
// crc32.Update(c, P) = M_n(c) ^ crc32.Update(0, P), M_n a linear map of
// the 32-bit state that depends only on n = len(P) (the effect of n zero
// bytes), so a prefix costs four table lookups instead of a pass over its
// bytes.

// shift is M_n as four byte-indexed tables: M_n(c) is the xor of
// shift[k][c>>(8k)&0xff].
type shift [4][256]uint32

func newShift(n int) *shift {
	zeros := make([]byte, n)
	z0 := crc32.ChecksumIEEE(zeros) // crc32.Update(0, zeros)
	var col [32]uint32              // M_n of each bit
	for j := range 32 {
		col[j] = crc32.Update(1<<j, crc32.IEEETable, zeros) ^ z0
	}
	s := &shift{}
	for k := range 4 {
		for v := 1; v < 256; v++ {
			low := v & -v // the lowest set bit
			bit := 0
			for 1<<bit != low {
				bit++
			}
			s[k][v] = s[k][v&^low] ^ col[8*k+bit]
		}
	}
	return s
}

func (s *shift) apply(c uint32) uint32 {
	return s[0][c&0xff] ^ s[1][c>>8&0xff] ^ s[2][c>>16&0xff] ^ s[3][c>>24]
}

// maxTail bounds the tails whose CRC uses crcPos: a value and a timestamp
// take 20 to 45 bytes; a longer tail's is crc32's.
const maxTail = 64

// crcLine returns crc updated with s's prefix and tail.
func crcLine(crc uint32, s *Series, tail []byte) uint32 {
	if len(s.prefix) > 0 {
		crc = s.shift.apply(crc) ^ s.crc0
	}
	n := len(tail)
	if n < 4 || n > maxTail {
		return crc32.Update(crc, crc32.IEEETable, tail)
	}
	// Slicing by n: the state goes into the first four bytes, and every
	// byte is one lookup in the table of its distance to the end, the
	// lookups independent of each other (where crc32's slicing-by-8
	// chains each 8 bytes to the previous ones).
	t := crcPos
	x := ^crc
	k := n - 1
	a := t[tail[0]^byte(x)][k] ^ t[tail[1]^byte(x>>8)][k-1] ^
		t[tail[2]^byte(x>>16)][k-2] ^ t[tail[3]^byte(x>>24)][k-3]
	var b, c uint32
	i := 4
	for ; i+2 <= n; i += 2 {
		b ^= t[tail[i]][(k-i)&(maxTail-1)]
		c ^= t[tail[i+1]][(k-i-1)&(maxTail-1)]
	}
	if i < n {
		b ^= t[tail[i]][0]
	}
	return ^(a ^ b ^ c)
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
