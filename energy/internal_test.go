package energy

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

func TestSampleIs16Bytes(t *testing.T) {
	require.Equal(t, uintptr(16), unsafe.Sizeof(sample{}))
}

// TestStableSort checks the merge sort against the standard library's stable
// sort, on random, chunked, reversed and duplicate-heavy inputs of sizes around
// the run length; w records the order of addition.
func TestStableSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	gens := map[string]func(n int) []sample{
		"random": func(n int) []sample {
			s := make([]sample, n)
			for i := range s {
				s[i] = sample{t: rng.Int64N(int64(n)/2 + 1), w: float64(i)}
			}
			return s
		},
		"chunks": func(n int) []sample { // sorted chunks, newest first, overlapping
			s := make([]sample, 0, n)
			for c := 9; c >= 0 && len(s) < n; c-- {
				for i := 0; i < n/10+1 && len(s) < n; i++ {
					s = append(s, sample{t: int64(c*n/10 + i - 3), w: float64(len(s))})
				}
			}
			return s
		},
		"reversed": func(n int) []sample {
			s := make([]sample, n)
			for i := range s {
				s[i] = sample{t: int64(n - i), w: float64(i)}
			}
			return s
		},
		"sorted": func(n int) []sample {
			s := make([]sample, n)
			for i := range s {
				s[i] = sample{t: int64(i / 3), w: float64(i)}
			}
			return s
		},
	}
	for name, gen := range gens {
		for _, n := range []int{0, 1, 2, 31, 32, 33, 63, 64, 65, 100, 1000, 4097} {
			s := gen(n)
			want := slices.Clone(s)
			slices.SortStableFunc(want, func(a, b sample) int { return cmp.Compare(a.t, b.t) })
			stableSort(s)
			require.Equal(t, want, s, "%s n=%d", name, n)
		}
	}
}
