// Package lineflate writes gzip streams of line-oriented text (InfluxDB
// line protocol) at a fraction of a general compressor's cost, by being
// told what the lines share instead of searching for it.
//
// Each line is a Series' fixed prefix (for line protocol, everything up to
// "value=") and a tail (the value, the timestamp, '\n'). The prefix is not
// copied, searched for or even read: the line starts with a back-reference
// to the previous line of its series, ten or a hundred lines back, which
// covers the prefix and whatever the tails share (the first digits of the
// value); the timestamp's first digits are a second back-reference to that
// same line's, and the rest are literals. A series whose previous line is
// out of deflate's 32 KiB window, or has none in the stream yet, is
// matched against the stream's previous line, byte by byte. The Huffman
// code is one fixed dynamic code, built for digits (see code.go), and the
// CRC-32 of a prefix is folded in with tables (crc.go).
//
// The stream is built in a caller's buffer, line by line (AppendLine), as
// push.Queue's batches are: an empty buffer starts a new stream, and at
// any line's end the buffer holds, behind a small header, everything the
// sender needs to finish it (Finish), without the Writer.
//
// The output is a standard gzip member (one final dynamic-Huffman deflate
// block) that any inflater reads; it is larger than a searching
// compressor's at its fastest level (klauspost/compress level 1) by a
// third to a half on line protocol, and costs a fifth of it.
package lineflate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/bits"
	"slices"
)

// The buffer's layout: a state header (what Finish needs: the bits not yet
// written as a whole byte, the CRC and the size), then the gzip header and
// the deflate block written so far.
const (
	stateLen  = 16
	gzipLen   = 10
	magic0    = 'L'
	magic1    = 'F'
	offNBits  = 2 // the pending bits' count (0-7)
	offBits   = 3 // the pending bits
	offCRC    = 4
	offSize   = 8
	headerLen = stateLen + gzipLen
)

// gzipHeader: deflate, no flags, no time, unknown OS (RFC 1952 §2.3).
var gzipHeader = [gzipLen]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}

// Thresholds of the secondary matches (measured: a shorter match costs
// more bits than the digits it replaces).
const (
	minTail = 6 // the timestamp's shared digits, the space before included
	minDiff = 3 // against another series' line
	// maxTries bounds the re-alignment attempts after a mismatch with
	// another series' line: past them, the lines differ anyway.
	maxTries = 8
)

// Writer writes lines into streams. Not safe for concurrent use.
type Writer struct {
	gen     uint64    // the stream being written: a Series' state of an older one is stale
	pos     int64     // uncompressed bytes of the stream
	x       uint32    // the CRC register (the CRC-32 is its complement)
	bw      bitWriter // its bits not yet in the buffer: fewer than 8 between lines
	end     int       // the buffer's length after the last line
	last    *Series   // the stream's last line
	lastPos int64
	raw     Series         // the lines written without a Series
	shifts  []*shift       // by length
	long    map[int]*shift // by length, the longer ones
}

// Series is a run of lines with the same prefix. It belongs to the Writer
// that made it.
type Series struct {
	w      *Writer
	prefix []byte
	rp     uint32  // crcRaw(prefix)
	cn     int     // the tail length of line and mrp
	line   *shift  // M_(len(prefix)+cn)
	mrp    uint32  // M_cn(rp)
	gen    uint64  // the stream of the last line
	pos    int64   // where that line starts
	tail   []byte  // its tail
	spare  []byte  // TailBuffer's
	sp     int     // where its timestamp starts (a space), -1 without
	bref   *Series // the series bops was compared with
	bops   []op    // s's prefix against bref's
	rt     uint32  // crcRaw(tail), when len(tail) <= maxTail
	// at is, for a series of binary records (NewRecordSeries), where the
	// part of the tail compared with the previous tail's starts; -1 for
	// lines, whose timestamp is found after their last space.
	at int
}

// NewSeries returns a series of lines that start with prefix (copied).
func (w *Writer) NewSeries(prefix []byte) *Series {
	buf := make([]byte, 0, 2*tailBuffer)
	return &Series{w: w, prefix: slices.Clone(prefix), rp: crcRaw(prefix), sp: -1, at: -1,
		tail: buf[:0:tailBuffer], spare: buf[tailBuffer:tailBuffer]}
}

// NewRecordSeries returns a series of binary records that start with prefix
// (copied), whose tails have one length and, from byte at on, a run that
// changes slowly (a little-endian timestamp's high bytes): it is a second
// back-reference to the previous tail's when they share at least
// minMatch bytes there. Lines (NewSeries) find theirs after their last
// space.
func (w *Writer) NewRecordSeries(prefix []byte, at int) *Series {
	s := w.NewSeries(prefix)
	s.at = at
	return s
}

// tailBuffer is the capacity of TailBuffer's buffer: a value and a
// timestamp fit.
const tailBuffer = 64

// TailBuffer returns an empty buffer to build s's next tail in: passed to
// AppendLine as it is (not grown past its capacity), the tail is kept
// without a copy (the series' previous tail's buffer becomes the next
// TailBuffer). The buffer is s's: it is not to be used after AppendLine.
func (s *Series) TailBuffer() []byte { return s.spare[:0] }

// Prefix returns the series' prefix (not to be modified).
func (s *Series) Prefix() []byte { return s.prefix }

// Size is the uncompressed size of the stream of the last line.
func (w *Writer) Size() int64 { return w.pos }

// AppendLine appends the line s's prefix + tail to the stream in dst and
// returns it: dst is empty (a new stream begins) or what the previous
// AppendLine of this Writer returned. A nil s is a line without a
// prefix: tail is the whole line.
func (w *Writer) AppendLine(dst []byte, s *Series, tail []byte) []byte {
	if s == nil {
		s = &w.raw
		s.w = w
	} else if s.w != w {
		// Its state would be taken for its own Writer's.
		panic("lineflate: a Series of another Writer")
	}
	if len(dst) == 0 {
		dst = w.begin(dst)
	} else if len(dst) != w.end {
		panic("lineflate: AppendLine on a buffer that is not this Writer's stream")
	}
	plen, n := len(s.prefix), len(tail)
	// At most 16 bits a byte (15 a literal, 48 a match of 3 or more),
	// and room for the 8-byte writes.
	dst = slices.Grow(dst, 2*(plen+n)+16)
	bw := &w.bw
	bw.b, bw.p = dst[:cap(dst)], len(dst)
	var rt uint32
	sp := -1
	switch {
	case s.gen == w.gen && w.pos-s.pos <= window:
		sp, rt = w.seriesLine(s, tail)
	case w.last != nil:
		// Another series' line, the one just before: the prefix against
		// its prefix (the comparison kept for the next time the two meet:
		// a regular interleaving makes the same pairs), the tail against
		// its tail.
		last := w.last
		if s.bref != last || s.bops == nil {
			s.bref, s.bops = last, diffOps(s.bops[:0], s.prefix, last.prefix)
		}
		base := w.pos - w.lastPos
		for _, o := range s.bops {
			c := s.prefix[o.i : o.i+o.n]
			if d := base + int64(o.i-o.j); o.j >= 0 && d <= window {
				bw.match(int(o.n), int(d))
			} else {
				bw.lits(c)
			}
		}
		sp, rt = w.tailLine(tail, 0, last.tail, last.sp, last.rt, int(base)+plen-len(last.prefix), s.at)
	default:
		bw.lits(s.prefix)
		bw.lits(tail)
		if sp = bytes.LastIndexByte(tail, ' '); s.at >= 0 {
			sp = -1
			if s.at < len(tail) {
				sp = s.at
			}
		}
		rt = tailCRC(tail)
	}
	x := w.crcLine(w.x, s, tail, rt)
	w.x = x
	if cap(tail) > 0 && cap(s.spare) > 0 && &tail[:cap(tail)][0] == &s.spare[:cap(s.spare)][0] {
		s.tail, s.spare = tail, s.tail
	} else {
		s.tail = append(s.tail[:0], tail...)
	}
	s.gen, s.pos, s.sp, s.rt = w.gen, w.pos, sp, rt
	w.last, w.lastPos = s, w.pos
	w.pos += int64(plen + n)

	// The bits left (fewer than 8) stay in bw and, for Finish, in the
	// header.
	dst = bw.b[:bw.p]
	bw.b = nil
	w.end = len(dst)
	dst[offNBits], dst[offBits] = byte(bw.n), byte(bw.acc)
	binary.LittleEndian.PutUint32(dst[offCRC:], ^x)
	binary.LittleEndian.PutUint32(dst[offSize:], uint32(w.pos)) // ISIZE is the size mod 2^32
	return dst
}

// seriesLine writes a line of s whose previous line is in the window: a
// back-reference to it for the prefix and the start the tails share, then
// the tail against its tail (tailLine).
func (w *Writer) seriesLine(s *Series, tail []byte) (int, uint32) {
	bw := &w.bw
	plen := len(s.prefix)
	d := int(w.pos - s.pos)
	l := lcp(tail, s.tail)
	if m := plen + l; m >= minMatch && m <= maxMatch {
		v, k := matchBits(m, d)
		bw.acc |= v << (bw.n & 63)
		bw.n += k
		bw.flush()
	} else if m >= minMatch {
		bw.match(m, d)
	} else {
		bw.lits(s.prefix)
		bw.lits(tail[:l])
	}
	return w.tailLine(tail, l, s.tail, s.sp, s.rt, d, s.at)
}

// tailLine writes tail[l:] given an earlier tail, prev, dt bytes before it
// in the stream (prev's timestamp at psp, crcRaw(prev) prt): the
// timestamps aligned (where prev's started, counted from the end: they
// have as many digits) for a back-reference to the digits they share;
// literals. It returns where the timestamp starts and crcRaw(tail),
// computed from prt when the tails are as long: the bytes equal at the
// same distance from the end cancel, so that only the literals cost a
// lookup, with their writing (tail[:l] is prev's).
func (w *Writer) tailLine(tail []byte, l int, prev []byte, psp int, prt uint32, dt, at int) (int, uint32) {
	bw := &w.bw
	n, np := len(tail), len(prev)
	sp, least := -1, minTail
	switch {
	case at >= 0:
		// A record: its run at a fixed place, against the previous
		// tail's when it is a record of the same layout.
		if at < n {
			sp = at
		}
		if psp != sp || n != np {
			psp = -1
		}
		least = minMatch
	case psp >= 0:
		if g := n - (np - psp); g >= 0 && g < n && tail[g] == ' ' {
			sp = g
		}
	}
	if sp < 0 && at < 0 {
		sp = bytes.LastIndexByte(tail, ' ')
	}
	// The literals: [l, a) and [b, n).
	a, b := n, n
	if sp >= l && psp >= 0 {
		if dts := dt + sp - psp; dts <= window {
			if m := lcp(tail[sp:], prev[psp:]); m >= least {
				a, b = sp, sp+m
			}
		}
	}
	if n == np && n <= maxTail && (a == n || sp == psp) {
		var mv uint64
		var mn uint
		if a < n {
			mv, mn = matchBits(b-a, dt)
		}
		return sp, bw.litsCRC(tail, prev, l, a, b, mv, mn, prt)
	}
	bw.lits(tail[l:a])
	if a < n {
		bw.match(b-a, dt+sp-psp)
		bw.lits(tail[b:])
	}
	return sp, tailCRC(tail)
}

// tailCRC is crcRaw(tail) when AppendLine uses it (tails of maxTail bytes
// at most; a longer one goes through crc32 once).
func tailCRC(tail []byte) uint32 {
	if len(tail) > maxTail {
		return 0
	}
	return crcRaw(tail)
}

// begin starts a stream in dst (empty): the state header, the gzip header,
// the block header.
func (w *Writer) begin(dst []byte) []byte {
	w.gen++
	w.pos, w.x, w.last, w.lastPos = 0, 0xffffffff, nil, 0
	dst = append(dst, magic0, magic1)
	dst = append(dst, make([]byte, stateLen-2)...)
	dst = append(dst, gzipHeader[:]...)
	nb := std.headerNB
	dst = append(dst, std.header[:nb/8]...)
	w.bw.acc, w.bw.n = 0, uint(nb%8)
	if w.bw.n > 0 {
		w.bw.acc = uint64(std.header[nb/8])
	}
	return dst
}

// ErrNotStream is Finish's error for a buffer AppendLine did not write.
var ErrNotStream = errors.New("lineflate: not a lineflate stream")

// Finish appends to dst the gzip member of stream (a buffer AppendLine
// returned: one line at least) and returns it. stream is not modified:
// Finish can be called again (a retried request).
func Finish(dst, stream []byte) ([]byte, error) {
	if len(stream) < headerLen || stream[0] != magic0 || stream[1] != magic1 || stream[offNBits] > 7 {
		return dst, ErrNotStream
	}
	nb := uint(stream[offNBits])
	acc := uint64(stream[offBits]) & (1<<nb - 1)
	dst = append(dst, stream[stateLen:]...)
	acc |= uint64(std.eob>>8) << nb
	nb += uint(std.eob & 0xff)
	for ; nb >= 8; nb -= 8 {
		dst = append(dst, byte(acc))
		acc >>= 8
	}
	if nb > 0 {
		dst = append(dst, byte(acc))
	}
	return append(dst, stream[offCRC:offSize+4]...), nil // CRC-32 and ISIZE, little-endian both
}

// bitWriter writes codes into b from p, least significant bit first.
// Between calls, n < 8; b has 8 bytes of room past what a line can write.
// (Shift counts are masked with & 63, which they never exceed: Go then
// spares the guard it puts on a shift by a variable.)
type bitWriter struct {
	b   []byte
	p   int
	acc uint64
	n   uint
}

// flush writes the whole bytes of acc, all 8 bytes at once (the room
// allows it) to spare a branch.
func (w *bitWriter) flush() {
	binary.LittleEndian.PutUint64(w.b[w.p:], w.acc)
	w.p += int(w.n >> 3)
	w.acc >>= w.n & 56
	w.n &= 7
}

// lits writes c as literals, three at a time: 45 bits at most, on top of
// the 7 left.
func (w *bitWriter) lits(c []byte) {
	lit := &std.lit
	b, p, acc, n := w.b, w.p, w.acc, w.n
	for len(c) >= 3 {
		if len(c) >= 8 {
			if u := binary.LittleEndian.Uint64(c); isDigits8(u) {
				v := digitCodes(u)
				acc |= v << (n & 63)
				n += 32
				binary.LittleEndian.PutUint64(b[p:], acc)
				p += int(n >> 3)
				acc >>= n & 56
				n &= 7
				c = c[8:]
				continue
			}
		}
		x0, x1, x2 := lit[c[0]], lit[c[1]], lit[c[2]]
		acc |= uint64(x0>>8) << (n & 63)
		n += uint(x0 & 0xff)
		acc |= uint64(x1>>8) << (n & 63)
		n += uint(x1 & 0xff)
		acc |= uint64(x2>>8) << (n & 63)
		n += uint(x2 & 0xff)
		binary.LittleEndian.PutUint64(b[p:], acc)
		p += int(n >> 3)
		acc >>= n & 56
		n &= 7
		c = c[3:]
	}
	for _, x := range c {
		v := lit[x]
		acc |= uint64(v>>8) << (n & 63)
		n += uint(v & 0xff)
	}
	w.p, w.acc, w.n = p, acc, n
	w.flush() // two literals at most: 37 bits
}

// isDigits8 says whether u's eight bytes are digits, whose codes
// digitCodes returns, 32 bits (the first digit in the low byte and bits):
// the digits' 4-bit codes are digitBase+d, which a few word operations
// turn into the stream's bit order, where a byte at a time took a table
// lookup each.
func isDigits8(u uint64) bool {
	const ones = 0x0101010101010101
	return u&(0xf0*ones) == 0x30*ones && ((u&(0x0f*ones))+0x06*ones)&(0x10*ones) == 0
}

// digitCodes returns the codes of eight digits (see isDigits8).
func digitCodes(u uint64) uint64 {
	const ones = 0x0101010101010101
	v := u&(0x0f*ones) + digitAdd // each byte a 4-bit code, at most 15
	// Reverse each code's 4 bits (deflate writes Huffman codes from the
	// most significant bit).
	v = (v&ones)<<3 | (v&(2*ones))<<1 | (v>>1)&(2*ones) | (v>>3)&ones
	// Pack the eight nibbles.
	v = (v | v>>4) & 0x00ff00ff00ff00ff
	v = (v | v>>8) & 0x0000ffff0000ffff
	return (v | v>>16) & 0xffffffff
}

// litsCRC writes t[i:a] as literals, as lits does, then (a < len(t)) the
// back-reference of mn bits mv and t[b:] as literals, and returns r updated
// with the CRC share of each of the literal bytes less that of p's byte at
// the same place (p as long as t).
func (w *bitWriter) litsCRC(t, p []byte, i, a, b int, mv uint64, mn uint, r uint32) uint32 {
	lit, cp := &std.lit, crcPos
	k := len(t) - 1
	out, pos, acc, n := w.b, w.p, w.acc, w.n
	for j := a; ; i, j = b, len(t) {
		for i+3 <= j {
			if i+8 <= j {
				u := binary.LittleEndian.Uint64(t[i:])
				if isDigits8(u) {
					v := digitCodes(u)
					dp := u ^ binary.LittleEndian.Uint64(p[i:])
					q := k - i
					r ^= cp[byte(dp)][q&(maxTail-1)] ^ cp[byte(dp>>8)][(q-1)&(maxTail-1)] ^
						cp[byte(dp>>16)][(q-2)&(maxTail-1)] ^ cp[byte(dp>>24)][(q-3)&(maxTail-1)] ^
						cp[byte(dp>>32)][(q-4)&(maxTail-1)] ^ cp[byte(dp>>40)][(q-5)&(maxTail-1)] ^
						cp[byte(dp>>48)][(q-6)&(maxTail-1)] ^ cp[byte(dp>>56)][(q-7)&(maxTail-1)]
					acc |= v << (n & 63)
					n += 32
					binary.LittleEndian.PutUint64(out[pos:], acc)
					pos += int(n >> 3)
					acc >>= n & 56
					n &= 7
					i += 8
					continue
				}
			}
			c0, c1, c2 := t[i], t[i+1], t[i+2]
			r ^= cp[c0^p[i]][(k-i)&(maxTail-1)] ^ cp[c1^p[i+1]][(k-i-1)&(maxTail-1)] ^ cp[c2^p[i+2]][(k-i-2)&(maxTail-1)]
			x0, x1, x2 := lit[c0], lit[c1], lit[c2]
			acc |= uint64(x0>>8) << (n & 63)
			n += uint(x0 & 0xff)
			acc |= uint64(x1>>8) << (n & 63)
			n += uint(x1 & 0xff)
			acc |= uint64(x2>>8) << (n & 63)
			n += uint(x2 & 0xff)
			binary.LittleEndian.PutUint64(out[pos:], acc)
			pos += int(n >> 3)
			acc >>= n & 56
			n &= 7
			i += 3
		}
		for ; i < j; i++ {
			c := t[i]
			r ^= cp[c^p[i]][(k-i)&(maxTail-1)]
			v := lit[c]
			acc |= uint64(v>>8) << (n & 63)
			n += uint(v & 0xff)
		}
		binary.LittleEndian.PutUint64(out[pos:], acc) // two literals at most: 37 bits
		pos += int(n >> 3)
		acc >>= n & 56
		n &= 7
		if j == len(t) {
			break
		}
		acc |= mv << (n & 63) // 48 bits at most
		n += mn
		binary.LittleEndian.PutUint64(out[pos:], acc)
		pos += int(n >> 3)
		acc >>= n & 56
		n &= 7
	}
	w.p, w.acc, w.n = pos, acc, n
	return r
}

// matchBits returns the bits of a back-reference of l bytes (minMatch to
// maxMatch) at distance d (1 to window), and their count: 48 at most.
func matchBits(l, d int) (uint64, uint) {
	lc := std.length[l]
	e := std.distE[distCode(d)]
	return uint64(lc>>8) | (uint64(e.bits)|uint64(d-int(e.base))<<(e.n&63))<<(lc&63), uint(lc&0xff) + uint(e.total)
}

// match writes a back-reference of l bytes (at least minMatch) at
// distance d (1 to window), in pieces of at most maxMatch.
func (w *bitWriter) match(l, d int) {
	if l <= maxMatch {
		v, k := matchBits(l, d)
		w.acc |= v << (w.n & 63)
		w.n += k
		w.flush()
		return
	}
	e := &std.distE[distCode(d)]
	dbits := uint64(e.bits) | uint64(d-int(e.base))<<(e.n&63)
	dn := uint(e.n) + uint(e.extra)
	for l > 0 {
		k := min(l, maxMatch)
		if r := l - k; r > 0 && r < minMatch {
			k = l - minMatch
		}
		lc := std.length[k]
		// 20 + 28 bits at most, on top of 7.
		w.acc |= uint64(lc>>8) << (w.n & 63)
		w.n += uint(lc & 0xff)
		w.acc |= dbits << (w.n & 63)
		w.n += dn
		w.flush()
		l -= k
	}
}

// resync are the shifts of r tried to re-align it with c after a
// mismatch: a resource id one character longer shifts the rest by one.
var resync = [...]int{0, 1, -1, 2, -2, 3, -3}

// op is a step of a prefix written against another series' prefix: the
// literals c[i:i+n] (j < 0), or a back-reference of n bytes to r[j:].
type op struct{ i, j, n int32 }

// diffOps compares the prefix c with the prefix r, byte by byte with
// re-alignments, into ops that write c (literals, and back-references of
// at least minDiff bytes).
func diffOps(ops []op, c, r []byte) []op {
	i, j, lit, tries := 0, 0, 0, 0
	for i < len(c) {
		matched := false
		for _, k := range resync {
			if k != 0 && tries >= maxTries {
				break
			}
			jj := j + k
			if jj < 0 || jj >= len(r) {
				continue
			}
			if m := lcp(c[i:], r[jj:]); m >= minDiff {
				if lit < i {
					ops = append(ops, op{int32(lit), -1, int32(i - lit)})
				}
				ops = append(ops, op{int32(i), int32(jj), int32(m)})
				i += m
				j, lit, tries, matched = jj+m, i, 0, true
				break
			}
		}
		if !matched {
			i++
			j++
			tries++
		}
	}
	if lit < len(c) {
		ops = append(ops, op{int32(lit), -1, int32(len(c) - lit)})
	}
	if ops == nil {
		ops = []op{} // empty prefix: computed all the same
	}
	return ops
}

// lcp is the length of the longest common prefix of a and b.
func lcp(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for ; i+8 <= n; i += 8 {
		if x := binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:]); x != 0 {
			return i + bits.TrailingZeros64(x)>>3
		}
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}
