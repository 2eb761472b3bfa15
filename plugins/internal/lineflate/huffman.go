package lineflate

import (
	"math/bits"
	"slices"
)

// limitedLengths returns the code lengths of an optimal prefix code for
// freq with no code longer than maxBits (package-merge). A zero frequency
// gets no code (length 0); with one symbol, it gets length 1, as deflate
// wants a code of at least one bit. It panics when the symbols cannot fit
// in maxBits (more than 1<<maxBits of them): the callers' alphabets are
// fixed and far below.
func limitedLengths(freq []int, maxBits int) []uint8 {
	lengths := make([]uint8, len(freq))
	var leaves []int // symbols with a frequency, by frequency
	for s, f := range freq {
		if f > 0 {
			leaves = append(leaves, s)
		}
	}
	switch {
	case len(leaves) == 0:
		return lengths
	case len(leaves) == 1:
		lengths[leaves[0]] = 1
		return lengths
	case len(leaves) > 1<<maxBits:
		panic("lineflate: too many symbols for the code length limit")
	}
	slices.SortStableFunc(leaves, func(a, b int) int { return freq[a] - freq[b] })

	// An item is a leaf or a package of two items of the previous level;
	// a symbol's code length is the number of times its leaf is in the
	// first 2n-2 items of the last level.
	type item struct {
		weight int
		leaf   int // the symbol, or -1 for a package
		a, b   int // a package's items in the previous level
	}
	base := make([]item, len(leaves))
	for i, s := range leaves {
		base[i] = item{weight: freq[s], leaf: s}
	}
	levels := [][]item{base}
	for range maxBits - 1 {
		prev := levels[len(levels)-1]
		var pk []item
		for i := 0; i+1 < len(prev); i += 2 {
			pk = append(pk, item{weight: prev[i].weight + prev[i+1].weight, leaf: -1, a: i, b: i + 1})
		}
		merged := make([]item, 0, len(base)+len(pk))
		i, j := 0, 0
		for i < len(base) || j < len(pk) {
			// Leaves first on ties: shorter codes for the real symbols.
			if j == len(pk) || i < len(base) && base[i].weight <= pk[j].weight {
				merged = append(merged, base[i])
				i++
			} else {
				merged = append(merged, pk[j])
				j++
			}
		}
		levels = append(levels, merged)
	}
	var count func(level, idx int)
	count = func(level, idx int) {
		it := levels[level][idx]
		if it.leaf >= 0 {
			lengths[it.leaf]++
			return
		}
		count(level-1, it.a)
		count(level-1, it.b)
	}
	last := len(levels) - 1
	for idx := range 2*len(leaves) - 2 {
		count(last, idx)
	}
	return lengths
}

// canonicalCodes returns the canonical codes of lengths (RFC 1951
// §3.2.2), bit-reversed: deflate writes Huffman codes most significant
// bit first into a stream filled from the least significant bit.
func canonicalCodes(lengths []uint8) []uint16 {
	var blCount [16]int
	for _, l := range lengths {
		if l > 0 {
			blCount[l]++
		}
	}
	var next [16]int
	code := 0
	for b := 1; b < 16; b++ {
		code = (code + blCount[b-1]) << 1
		next[b] = code
	}
	codes := make([]uint16, len(lengths))
	for s, l := range lengths {
		if l == 0 {
			continue
		}
		c := next[l]
		next[l]++
		codes[s] = bits.Reverse16(uint16(c)) >> (16 - l)
	}
	return codes
}

// kraft is the sum of 2^-len over the coded symbols, times 2^maxBits: a
// complete code (what inflaters accept) has exactly 1<<maxBits.
func kraft(lengths []uint8, maxBits int) int {
	sum := 0
	for _, l := range lengths {
		if l > 0 {
			sum += 1 << (maxBits - int(l))
		}
	}
	return sum
}
