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
	"hash/crc32"
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
	gen     uint64 // the stream being written: a Series' state of an older one is stale
	pos     int64  // uncompressed bytes of the stream
	crc     uint32
	bw      bitWriter // its bits not yet in the buffer: fewer than 8 between lines
	end     int       // the buffer's length after the last line
	last    *Series   // the stream's last line
	lastPos int64
	raw     Series // the lines written without a Series
	shifts  map[int]*shift
	cur     []byte // case B's lines, put together
	ref     []byte
}

// Series is a run of lines with the same prefix. It belongs to the Writer
// that made it.
type Series struct {
	w      *Writer
	prefix []byte
	crc0   uint32 // crc32.ChecksumIEEE(prefix)
	shift  *shift // M_len(prefix)
	gen    uint64 // the stream of the last line
	pos    int64  // where that line starts
	tail   []byte // its tail
	sp     int    // the last space in tail, -1 without
}

// maxShifts bounds the CRC tables kept (4 KiB each, one per prefix length).
const maxShifts = 256

// NewSeries returns a series of lines that start with prefix (copied).
func (w *Writer) NewSeries(prefix []byte) *Series {
	s := &Series{w: w, prefix: slices.Clone(prefix), crc0: crc32.ChecksumIEEE(prefix)}
	if len(prefix) > 0 {
		sh := w.shifts[len(prefix)]
		if sh == nil {
			if w.shifts == nil || len(w.shifts) >= maxShifts {
				w.shifts = map[int]*shift{}
			}
			sh = newShift(len(prefix))
			w.shifts[len(prefix)] = sh
		}
		s.shift = sh
	}
	return s
}

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
	plen := len(s.prefix)
	n := plen + len(tail)
	// At most 16 bits a byte (15 a literal, 48 a match of 3 or more),
	// and room for the 8-byte writes.
	dst = slices.Grow(dst, 2*n+16)
	bw := &w.bw
	bw.b, bw.p = dst[:cap(dst)], len(dst)
	sp := bytes.LastIndexByte(tail, ' ')
	switch {
	case s.gen == w.gen && w.pos-s.pos <= window:
		// The series' previous line: the prefix is equal, the tails'
		// shared start extends the match.
		l := lcp(tail, s.tail)
		if m := plen + l; m >= minMatch {
			bw.match(m, int(w.pos-s.pos))
		} else {
			bw.lits(s.prefix)
			bw.lits(tail[:l])
		}
		bw.rest(tail, l, sp, w.pos+int64(plen), s.tail, s.sp, s.pos+int64(plen))
	case w.last != nil:
		// Another series' line, the one just before: put both lines
		// together and compare.
		last := w.last
		w.cur = append(append(w.cur[:0], s.prefix...), tail...)
		w.ref = append(append(w.ref[:0], last.prefix...), last.tail...)
		i := bw.diff(w.cur, plen, w.ref, w.pos-w.lastPos)
		csp, rsp := -1, -1
		if sp >= 0 {
			csp = plen + sp
		}
		if last.sp >= 0 {
			rsp = len(last.prefix) + last.sp
		}
		bw.rest(w.cur, i, csp, w.pos, w.ref, rsp, w.lastPos)
	default:
		bw.lits(s.prefix)
		bw.lits(tail)
	}
	w.crc = crcLine(w.crc, s, tail)
	s.tail = append(s.tail[:0], tail...)
	s.gen, s.pos, s.sp = w.gen, w.pos, sp
	w.last, w.lastPos = s, w.pos
	w.pos += int64(n)

	// The bits left (fewer than 8) stay in bw and, for Finish, in the
	// header.
	dst = bw.b[:bw.p]
	bw.b = nil
	w.end = len(dst)
	dst[offNBits], dst[offBits] = byte(bw.n), byte(bw.acc)
	binary.LittleEndian.PutUint32(dst[offCRC:], w.crc)
	binary.LittleEndian.PutUint32(dst[offSize:], uint32(w.pos)) // ISIZE is the size mod 2^32
	return dst
}

// begin starts a stream in dst (empty): the state header, the gzip header,
// the block header.
func (w *Writer) begin(dst []byte) []byte {
	w.gen++
	w.pos, w.crc, w.last, w.lastPos = 0, 0, nil, 0
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
	w.acc >>= w.n &^ 7
	w.n &= 7
}

// lits writes c as literals, three at a time: 45 bits at most, on top of
// the 7 left.
func (w *bitWriter) lits(c []byte) {
	lit := &std.lit
	b, p, acc, n := w.b, w.p, w.acc, w.n
	for len(c) >= 3 {
		x0, x1, x2 := lit[c[0]], lit[c[1]], lit[c[2]]
		acc |= uint64(x0>>8) << n
		n += uint(x0 & 0xff)
		acc |= uint64(x1>>8) << n
		n += uint(x1 & 0xff)
		acc |= uint64(x2>>8) << n
		n += uint(x2 & 0xff)
		binary.LittleEndian.PutUint64(b[p:], acc)
		p += int(n >> 3)
		acc >>= n &^ 7
		n &= 7
		c = c[3:]
	}
	for _, x := range c {
		v := lit[x]
		acc |= uint64(v>>8) << n
		n += uint(v & 0xff)
	}
	w.p, w.acc, w.n = p, acc, n
	w.flush() // two literals at most: 37 bits
}

// match writes a back-reference of l bytes (at least minMatch) at
// distance d (1 to window), in pieces of at most maxMatch.
func (w *bitWriter) match(l, d int) {
	dc := distCode(d)
	c := std.dist[dc]
	dbits := uint64(c>>8) | uint64(d-distBase[dc])<<(c&0xff)
	dn := uint(c&0xff) + uint(distExtra[dc])
	for l > 0 {
		k := min(l, maxMatch)
		if r := l - k; r > 0 && r < minMatch {
			k = l - minMatch
		}
		lc := std.length[k]
		// 20 + 28 bits at most, on top of 7.
		w.acc |= uint64(lc>>8) << w.n
		w.n += uint(lc & 0xff)
		w.acc |= dbits << w.n
		w.n += dn
		w.flush()
		l -= k
	}
}

// rest writes c[i:], c starting at stream position cpos, given r, an
// earlier line's part at rpos: the timestamps (after the last spaces, sc
// and sr, -1 without) are aligned and their shared start is a
// back-reference; the rest literals.
func (w *bitWriter) rest(c []byte, i, sc int, cpos int64, r []byte, sr int, rpos int64) {
	if sc >= i {
		if sr >= 0 {
			if d := cpos + int64(sc) - (rpos + int64(sr)); d <= window {
				if m := lcp(c[sc:], r[sr:]); m >= minTail {
					w.lits(c[i:sc])
					w.match(m, int(d))
					i = sc + m
				}
			}
		}
	}
	w.lits(c[i:])
}

// resync are the shifts of r tried to re-align it with c after a
// mismatch: a resource id one character longer shifts the rest by one.
var resync = [...]int{0, 1, -1, 2, -2, 3, -3}

// diff writes c[:i] for some i >= plen (or len(c)) as literals and
// back-references into r, base bytes before c in the stream, and returns
// i.
func (w *bitWriter) diff(c []byte, plen int, r []byte, base int64) int {
	i, j, lit, tries := 0, 0, 0, 0
	for i < plen {
		matched := false
		for _, k := range resync {
			if k != 0 && tries >= maxTries {
				break
			}
			jj := j + k
			if jj < 0 || jj >= len(r) {
				continue
			}
			d := base + int64(i-jj)
			if d > window {
				continue
			}
			if m := lcp(c[i:], r[jj:]); m >= minDiff {
				w.lits(c[lit:i])
				w.match(m, int(d))
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
	w.lits(c[lit:i])
	return i
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
