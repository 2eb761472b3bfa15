package powerplot

import (
	"io"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// noisy returns n samples at 100 Hz from t0 with noise and rare spikes
// and dips, from a fixed seed.
func noisy(n int, seed uint64) ([]int64, []float64) {
	r := rand.New(rand.NewPCG(seed, 42))
	ts := make([]int64, n)
	ws := make([]float64, n)
	for i := range ts {
		ts[i] = t0.UnixNano() + int64(i)*int64(10*time.Millisecond)
		ws[i] = 150 + 50*math.Sin(float64(i)/20000) + r.NormFloat64()*4
		switch r.IntN(20000) {
		case 0:
			ws[i] += 200 + 100*r.Float64() // spike
		case 1:
			ws[i] -= 120 // dip
		}
	}
	return ts, ws
}

func TestReduceKeepsColumnMinMax(t *testing.T) {
	tests := []struct {
		name    string
		n       int
		columns int
	}{
		{"2h at 100 Hz on 1600 px", 720_000, 1600},
		{"10 min on 400 px", 60_000, 400},
		{"fewer samples than columns", 300, 1600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, ws := noisy(tt.n, uint64(tt.n))
			origin := ts[0]
			x0 := 0.0
			bucket := float64(ts[len(ts)-1]-origin) / 1e9 / float64(tt.columns)
			s := reduce(ts, ws, origin, gapThreshold(ts), x0, bucket)
			require.Len(t, s.segs, 1, "regular samples make one segment")
			got := s.segs[0]
			require.LessOrEqual(t, len(got), 2*(tt.columns+1), "at most two points per column")
			require.Equal(t, tt.n, s.points)

			// Expected per column: the lowest and the highest sample.
			col := func(x float64) int { return int(math.Floor((x - x0) / bucket)) }
			type mm struct{ lo, hi float64 }
			want := map[int]mm{}
			for i, w := range ws {
				c := col(float64(ts[i]-origin) / 1e9)
				m, ok := want[c]
				if !ok {
					m = mm{w, w}
				}
				m.lo, m.hi = math.Min(m.lo, w), math.Max(m.hi, w)
				want[c] = m
			}
			gotCols := map[int]mm{}
			prevX := math.Inf(-1)
			for _, p := range got {
				require.GreaterOrEqual(t, p.x, prevX, "points stay in time order")
				prevX = p.x
				c := col(p.x)
				m, ok := gotCols[c]
				if !ok {
					m = mm{p.y, p.y}
				}
				m.lo, m.hi = math.Min(m.lo, p.y), math.Max(m.hi, p.y)
				gotCols[c] = m
			}
			if diff := cmp.Diff(want, gotCols, cmp.AllowUnexported(mm{})); diff != "" {
				t.Fatalf("per-column min/max (-samples +reduced):\n%s", diff)
			}

			lo, hi := math.Inf(1), math.Inf(-1)
			for _, w := range ws {
				lo, hi = math.Min(lo, w), math.Max(hi, w)
			}
			require.Equal(t, lo, s.ymin)
			require.Equal(t, hi, s.ymax)
		})
	}
}

func TestReduceGapsAndNaN(t *testing.T) {
	sec := func(s ...float64) []int64 {
		out := make([]int64, len(s))
		for i, v := range s {
			out[i] = int64(v * 1e9)
		}
		return out
	}
	nan := math.NaN()
	tests := []struct {
		name string
		ts   []int64
		ws   []float64
		want [][]xy
	}{
		{"none", nil, nil, nil},
		{"one", sec(5), []float64{7}, [][]xy{{{5, 7}}}},
		{"regular", sec(0, 1, 2, 3), []float64{1, 2, 3, 4}, [][]xy{{{0, 1}, {1, 2}, {2, 3}, {3, 4}}}},
		{"step of twice the median is no gap", sec(0, 1, 2, 4, 5), []float64{1, 2, 3, 4, 5},
			[][]xy{{{0, 1}, {1, 2}, {2, 3}, {4, 4}, {5, 5}}}},
		{"longer step breaks", sec(0, 1, 2, 5, 6), []float64{1, 2, 3, 4, 5},
			[][]xy{{{0, 1}, {1, 2}, {2, 3}}, {{5, 4}, {6, 5}}}},
		{"NaN and Inf break and are dropped", sec(0, 1, 2, 3, 4, 5), []float64{1, nan, 3, 4, math.Inf(-1), 6},
			[][]xy{{{0, 1}}, {{2, 3}, {3, 4}}, {{5, 6}}}},
		{"all NaN", sec(0, 1), []float64{nan, nan}, nil},
		{"duplicate times", sec(0, 0, 0), []float64{1, 2, 3}, [][]xy{{{0, 1}, {0, 2}, {0, 3}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := reduce(tt.ts, tt.ws, 0, gapThreshold(tt.ts), 0, 0)
			if diff := cmp.Diff(tt.want, s.segs, cmp.AllowUnexported(xy{})); diff != "" {
				t.Errorf("segments (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReduceDownsampledGap(t *testing.T) {
	// 100 Hz with a 60 s hole: two segments, neither crossing the hole.
	ts, ws := noisy(100_000, 1)
	hole := int64(60 * time.Second)
	for i := 50_000; i < len(ts); i++ {
		ts[i] += hole
	}
	origin := ts[0]
	s := reduce(ts, ws, origin, gapThreshold(ts), 0, float64(ts[len(ts)-1]-origin)/1e9/1600)
	require.Len(t, s.segs, 2)
	end := s.segs[0][len(s.segs[0])-1].x
	start := s.segs[1][0].x
	require.LessOrEqual(t, end, float64(ts[49_999]-origin)/1e9)
	require.GreaterOrEqual(t, start, float64(ts[50_000]-origin)/1e9)
}

func TestGapThreshold(t *testing.T) {
	tests := []struct {
		name string
		ts   []int64
		want int64
	}{
		{"empty", nil, math.MaxInt64},
		{"single", []int64{5}, math.MaxInt64},
		{"same time", []int64{5, 5, 5}, math.MaxInt64},
		{"regular", []int64{0, 10, 20, 30}, 20},
		{"median ignores one long step", []int64{0, 10, 20, 1000, 1010, 1020}, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, gapThreshold(tt.ts))
		})
	}
}

func TestSortedCopy(t *testing.T) {
	ts := []int64{3, 1, 2, 1}
	ws := []float64{30, 10, 20, 11}
	gt, gw := sortedCopy(ts, ws)
	require.Equal(t, []int64{1, 1, 2, 3}, gt)
	require.Equal(t, []float64{10, 11, 20, 30}, gw, "stable")
	require.Equal(t, []int64{3, 1, 2, 1}, ts, "input untouched")
}

func TestNiceTicks(t *testing.T) {
	tests := []struct {
		lo, hi float64
		n      int
		want   []string
	}{
		{0, 100, 5, []string{"0", "20", "40", "60", "80", "100"}},
		{-20, 7200, 8, []string{"0", "1000", "2000", "3000", "4000", "5000", "6000", "7000"}},
		{0, 1, 4, []string{"0.0", "0.5", "1.0"}},
		{0, 0.3, 3, []string{"0.0", "0.1", "0.2", "0.3"}},
		{5, 5, 3, nil},
	}
	for _, tt := range tests {
		var got []string
		for _, tk := range (niceTicks{n: tt.n}).Ticks(tt.lo, tt.hi) {
			if !tk.IsMinor() {
				got = append(got, tk.Label)
			}
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Ticks(%g, %g, %d) (-want +got):\n%s", tt.lo, tt.hi, tt.n, diff)
		}
	}
}

// BenchmarkRender720k renders 32 lines of 720,000 samples each (2 h at
// 100 Hz, 23 M samples in all) at the default 1600x900 size; "reduce" is
// the preparation alone (sorting check, gap detection, min/max per pixel
// column).
//
// Measured on the shared 2-core AMD EPYC development machine (go test
// -run '^$' -bench Render720k -benchtime 5x, no -race, load average 3-4):
//
//	reduce  0.16 s/op    8 MB/op   (about 7 ns per sample)
//	png     0.85 s/op  164 MB/op   1.39 MB file
//	svg     0.23 s/op   41 MB/op   1.43 MB file
//
// PNG time is mostly freetype stroking the 32 dense lines (two thirds of
// them dashed) and PNG compression; on a loaded machine it reached 1.7 s.
// The file sizes come from the noise of the synthetic data: a smooth real
// signal compresses better.
func BenchmarkRender720k(b *testing.B) {
	const nLines, n = 32, 720_000
	f := Figure{Title: "bench"}
	for i := range nLines {
		ts, ws := noisy(n, uint64(i))
		f.Lines = append(f.Lines, Line{Node: "node-" + string(rune('a'+i%26)), Metric: "m", Times: ts, Watts: ws})
	}
	b.Run("reduce", func(b *testing.B) {
		for b.Loop() {
			prepare(f)
		}
	})
	for _, format := range []string{"png", "svg"} {
		b.Run(format, func(b *testing.B) {
			var size int64
			for b.Loop() {
				cw := &countWriter{}
				if err := Render(cw, format, f); err != nil {
					b.Fatal(err)
				}
				size = cw.n
			}
			b.ReportMetric(float64(size), "bytes/file")
		})
	}
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

var _ io.Writer = (*countWriter)(nil)
