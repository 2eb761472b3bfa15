package lineflate

import "math/bits"

// The one Huffman code of every stream: a dynamic deflate block (RFC 1951
// §3.2.7) whose code lengths are fixed for line protocol tails (digits
// short, everything else present but long), built once. Counting each
// batch's symbols for a code of its own would cost about as much as
// writing them; the fixed code gets most of the gain over deflate's
// fixed-Huffman block (8 bits a digit) for none of that cost.

const (
	numLit   = 286 // literal/length symbols: 256 bytes, end of block, 29 lengths
	numDist  = 30
	eob      = 256
	maxBits  = 15
	maxMatch = 258
	minMatch = 3
	window   = 32768
)

// Length symbol bases and extra bits, by symbol - 257 (RFC 1951 §3.2.5).
var (
	lenBase  = [29]int{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lenExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	// Distance bases and extra bits, by distance code.
	distBase  = [30]int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

// code is a symbol's bits (reversed, ready to be or-ed into the stream)
// and their count, packed: bits<<8 | count.
type code uint32

func pack(bits uint32, n uint8) code { return code(bits<<8 | uint32(n)) }

// distEntry is a distance code's Huffman bits, their count, and its extra
// bits' count and base.
type distEntry struct {
	bits            uint32
	n, extra, total uint8 // total = n + extra
	base            uint16
}

// tables are the codes of one Huffman code, in the forms the writer uses.
type tables struct {
	lit    [256]code          // a literal byte
	length [maxMatch + 1]code // a match length: its symbol and extra bits
	distE  [numDist]distEntry
	eob    code
	// digitBase is the code of '0' (most significant bit first) when the
	// digits have 4-bit codes, in a row; -1 otherwise.
	digitBase int
	header    []byte // the block header: BFINAL, BTYPE, the code lengths
	headerNB  int    // its length in bits
	litLen    []uint8
	distLen   []uint8
}

// std is the code of every stream (a value, not a pointer: its tables sit
// at fixed addresses for the writer's lookups).
var std = *newTables(litWeights(), distWeights())

// digitAdd adds digitBase to each byte of a word.
var digitAdd = func() uint64 {
	if std.digitBase < 0 {
		panic("lineflate: the digits' codes are not 4 bits in a row") // digits8 needs them
	}
	return uint64(std.digitBase) * 0x0101010101010101
}()

// litWeights are the pseudo-frequencies of the literal/length symbols for
// a line protocol tail after the series' prefix was matched: a value and a
// timestamp in digits, '.', ' ', '\n' once a line, two matches a line.
// Every symbol has a weight, so that any byte can be written.
func litWeights() []int {
	w := make([]int, numLit)
	for i := range w {
		w[i] = 1
	}
	// The same weight for the ten digits: they get 4-bit codes, in a row
	// (digitBase), which lets eight digits be written at once (digits8).
	for c := '0'; c <= '9'; c++ {
		w[c] = 1000
	}
	w['.'] = 300
	w[' '] = 150
	w['\n'] = 700
	for _, c := range "-uiTFe\"," {
		w[c] = 20
	}
	for c := 'a'; c <= 'z'; c++ {
		w[c] += 4
	}
	for c := 'A'; c <= 'Z'; c++ {
		w[c] += 2
	}
	for _, c := range "_=" {
		w[c] += 4
	}
	for s := 257; s < numLit; s++ {
		w[s] = 30
	}
	// The prefix's match: lengths 35 to 258.
	for s := 273; s < numLit; s++ {
		w[s] = 90
	}
	// The timestamp's match: lengths 5 to 18.
	for s := 259; s < 268; s++ {
		w[s] = 120
	}
	return w
}

// distWeights: a line's own series ten to a few hundred lines back.
func distWeights() []int {
	w := make([]int, numDist)
	for i := range w {
		w[i] = 2
	}
	for i := 14; i < numDist; i++ {
		w[i] = 40
	}
	return w
}

func newTables(litW, distW []int) *tables {
	// (The writer relies on the digits' codes: see digits8.)
	t := &tables{}
	t.litLen = limitedLengths(litW, maxBits)
	t.distLen = limitedLengths(distW, maxBits)
	litCodes := canonicalCodes(t.litLen)
	distCodes := canonicalCodes(t.distLen)
	for b := range 256 {
		t.lit[b] = pack(uint32(litCodes[b]), t.litLen[b])
	}
	t.eob = pack(uint32(litCodes[eob]), t.litLen[eob])
	for l := minMatch; l <= maxMatch; l++ {
		s := lenSymbol(l)
		n := t.litLen[257+s]
		ex := lenExtra[s]
		t.length[l] = pack(uint32(litCodes[257+s])|uint32(l-lenBase[s])<<n, n+ex)
	}
	for d := range numDist {
		t.distE[d] = distEntry{bits: uint32(distCodes[d]), n: t.distLen[d], extra: distExtra[d],
			total: t.distLen[d] + distExtra[d], base: uint16(distBase[d])}
	}
	t.header, t.headerNB = blockHeader(t.litLen, t.distLen)
	t.digitBase = -1
	if l := t.litLen['0']; l == 4 {
		base := int(bits.Reverse16(litCodes['0']) >> 12)
		ok := base+9 <= 15
		for d := range 10 {
			ok = ok && t.litLen['0'+d] == 4 && int(bits.Reverse16(litCodes['0'+d])>>12) == base+d
		}
		if ok {
			t.digitBase = base
		}
	}
	return t
}

// lenSymbol is the length symbol (minus 257) of a match length.
func lenSymbol(l int) int {
	if l == maxMatch {
		return 28
	}
	s := 0
	for s+1 < 28 && lenBase[s+1] <= l {
		s++
	}
	return s
}

// distCode is the distance code of a distance in [1, window]: a lookup,
// by d-1 up to 256 and by (d-1)>>7 above.
func distCode(d int) int {
	d--
	if d < 256 {
		return int(distCodes[d&255])
	}
	return int(distCodes[256+(d>>7)&255])
}

var distCodes = func() *[512]uint8 {
	t := &[512]uint8{}
	code := func(d int) uint8 { // d-1 given
		if d < 4 {
			return uint8(d)
		}
		// Two codes per power of two above 4: the high bit's position
		// and the next bit.
		hb := 31 - bits.LeadingZeros32(uint32(d))
		return uint8(2*hb + d>>(hb-1)&1)
	}
	for d := range 256 {
		t[d] = code(d)
		t[256+d] = code(d << 7)
	}
	return t
}()

// The order of the code length code's lengths in the header.
var clOrder = [19]int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

// blockHeader writes the start of a final dynamic block with these codes:
// BFINAL, BTYPE = 10, HLIT, HDIST, HCLEN, the code length code and the
// code lengths, run-length encoded (RFC 1951 §3.2.7).
func blockHeader(litLen, distLen []uint8) ([]byte, int) {
	all := append(append([]uint8{}, litLen...), distLen...)
	// Run-length encode: symbol 16 repeats the previous length 3 to 6
	// times, 17 and 18 are runs of zeros (3-10, 11-138).
	type rl struct{ sym, extra, nextra int }
	var runs []rl
	for i := 0; i < len(all); {
		l := int(all[i])
		n := 1
		for i+n < len(all) && int(all[i+n]) == l {
			n++
		}
		i += n
		if l == 0 {
			for n >= 11 {
				k := min(n, 138)
				runs = append(runs, rl{18, k - 11, 7})
				n -= k
			}
			if n >= 3 {
				runs = append(runs, rl{17, n - 3, 3})
				n = 0
			}
			for ; n > 0; n-- {
				runs = append(runs, rl{0, 0, 0})
			}
			continue
		}
		runs = append(runs, rl{l, 0, 0})
		n--
		for n >= 3 {
			k := min(n, 6)
			runs = append(runs, rl{16, k - 3, 2})
			n -= k
		}
		for ; n > 0; n-- {
			runs = append(runs, rl{l, 0, 0})
		}
	}
	clFreq := make([]int, 19)
	for _, r := range runs {
		clFreq[r.sym]++
	}
	clLen := limitedLengths(clFreq, 7)
	clCodes := canonicalCodes(clLen)
	nclen := 19
	for nclen > 4 && clLen[clOrder[nclen-1]] == 0 {
		nclen--
	}
	var bw bitBuf
	bw.put(1, 1) // BFINAL
	bw.put(2, 2) // BTYPE: dynamic Huffman
	bw.put(uint64(len(litLen)-257), 5)
	bw.put(uint64(len(distLen)-1), 5)
	bw.put(uint64(nclen-4), 4)
	for i := range nclen {
		bw.put(uint64(clLen[clOrder[i]]), 3)
	}
	for _, r := range runs {
		bw.put(uint64(clCodes[r.sym]), uint(clLen[r.sym]))
		if r.nextra > 0 {
			bw.put(uint64(r.extra), uint(r.nextra))
		}
	}
	return bw.bytes()
}

// bitBuf is a slow, simple bit writer for the header.
type bitBuf struct {
	b  []byte
	nb int
}

func (w *bitBuf) put(v uint64, n uint) {
	for i := range n {
		if w.nb%8 == 0 {
			w.b = append(w.b, 0)
		}
		if v>>i&1 != 0 {
			w.b[len(w.b)-1] |= 1 << (w.nb % 8)
		}
		w.nb++
	}
}

func (w *bitBuf) bytes() ([]byte, int) { return w.b, w.nb }
