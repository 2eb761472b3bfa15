package lineflate

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/stretchr/testify/require"
)

// line is a test line: series (-1: none) and tail.
type line struct {
	series int
	tail   string
}

// encode writes lines, the prefixes of their series given by prefixes,
// into one stream and returns the stream, its gzip member and the text.
// A series whose at (if any) is not negative is a record series
// (NewRecordSeries) with that run.
func encode(t testing.TB, w *Writer, prefixes []string, lines []line, at ...int) (stream, gz []byte, text string) {
	t.Helper()
	series := make([]*Series, len(prefixes))
	for i, p := range prefixes {
		if i < len(at) && at[i] >= 0 {
			series[i] = w.NewRecordSeries([]byte(p), at[i])
		} else {
			series[i] = w.NewSeries([]byte(p))
		}
	}
	var sb strings.Builder
	for _, l := range lines {
		var s *Series
		if l.series >= 0 {
			s = series[l.series]
			sb.WriteString(prefixes[l.series])
		}
		sb.WriteString(l.tail)
		stream = w.AppendLine(stream, s, []byte(l.tail))
		require.Equal(t, int64(sb.Len()), w.Size())
	}
	gz, err := Finish(nil, stream)
	require.NoError(t, err)
	return stream, gz, sb.String()
}

func gunzipStd(t testing.TB, z []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(z))
	require.NoError(t, err)
	b, err := io.ReadAll(zr)
	require.NoError(t, err)
	return string(b)
}

const lpPrefix = `wattmetre_power_watt,resource_kind=device_id,resource_id=taurus-%d,resource_consumer_kind=device_origin,resource_consumer_id=wattmetre1-port%d metric_id="wattmetre_power_watt",value=`

// refLines is a reference-like batch: nodes series at 50 Hz, timestamps
// in µs with jitter, values with two decimals.
func refLines(nodes, n int, seed uint64) ([]string, []line) {
	r := rand.New(rand.NewPCG(seed, 1))
	prefixes := make([]string, nodes)
	vals := make([]float64, nodes)
	for i := range prefixes {
		prefixes[i] = fmt.Sprintf(lpPrefix, i+1, i)
		vals[i] = 90 + 50*r.Float64()
	}
	ts := int64(1753182326000000000)
	lines := make([]line, n)
	for i := range lines {
		s := i % nodes
		vals[s] += r.Float64() - 0.5
		ts += 20_000_000/int64(nodes) + r.Int64N(2000)*1000 - 1_000_000
		v := strconv.FormatFloat(float64(int64(vals[s]*100))/100, 'f', -1, 64)
		lines[i] = line{s, v + " " + strconv.FormatInt(ts, 10) + "\n"}
	}
	return prefixes, lines
}

// refRecords is refLines as binary records (OTLP data points' tails): a
// little-endian time, a tag byte, a little-endian double.
func refRecords(nodes, n int, seed uint64) ([]string, []line) {
	prefixes, lines := refLines(nodes, n, seed)
	for i := range prefixes {
		prefixes[i] = fmt.Sprintf("\x0a\xb5\x01\x3a\x10resource_id=taurus-%d\x19", i)
	}
	for i, l := range lines {
		f := strings.Fields(l.tail)
		v, _ := strconv.ParseFloat(f[0], 64)
		ns, _ := strconv.ParseInt(f[1], 10, 64)
		b := binary.LittleEndian.AppendUint64(nil, uint64(ns))
		b = append(b, 0x21)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		lines[i].tail = string(b)
	}
	return prefixes, lines
}

func repeat(v, n int) []int {
	r := make([]int, n)
	for i := range r {
		r[i] = v
	}
	return r
}

func TestRoundTrip(t *testing.T) {
	long := strings.Repeat("tag=value,", 30)          // 300 bytes: two matches
	huge := strings.Repeat("abcdefghijklmnopq", 2048) // 34 KiB: beyond the window
	far := make([]line, 0, 300)
	far = append(far, line{0, "1 1000\n"})
	for i := range 200 { // 200 lines of 200 bytes: series 0's line is 40 KB back
		far = append(far, line{1, fmt.Sprintf("%d %d\n", i, 1000+i)})
	}
	far = append(far, line{0, "2 2000\n"}, line{0, "3 3000\n"})
	refP, refL := refLines(10, 3000, 1)
	manyP, manyL := refLines(200, 3000, 2) // a series' previous line out of the window
	shuffled := slices.Clone(manyL)        // and the pairs of series changing all the time
	rand.New(rand.NewPCG(3, 3)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	recP, recL := refRecords(10, 3000, 4)
	manyRecP, manyRecL := refRecords(200, 3000, 5)
	cases := []struct {
		name     string
		prefixes []string
		lines    []line
	}{
		{"one line", []string{"m,t=a value="}, []line{{0, "1.5 1700000000000000000\n"}}},
		{"two series", []string{"m,t=a value=", "m,t=b value="},
			[]line{{0, "1 10\n"}, {1, "2 10\n"}, {0, "1 11\n"}, {1, "3 12\n"}, {0, "1 11\n"}}},
		{"same value and timestamp", []string{"m value="}, []line{{0, "1 1\n"}, {0, "1 1\n"}, {0, "1 1\n"}}},
		{"prefix longer than 258", []string{"m," + long + " value=", "n," + long + " value="},
			[]line{{0, "1 1\n"}, {1, "2 2\n"}, {0, "3 3\n"}, {0, "4 4\n"}, {1, "5 5\n"}}},
		{"prefix of 259, 260, 261", []string{strings.Repeat("a", 259), strings.Repeat("b", 260), strings.Repeat("c", 261)},
			[]line{{0, "x\n"}, {1, "x\n"}, {2, "x\n"}, {0, "x\n"}, {1, "x\n"}, {2, "x\n"}}},
		{"lines longer than 32 KiB", []string{huge, huge + "x"},
			[]line{{0, "1 1\n"}, {0, "2 2\n"}, {1, "3 3\n"}, {0, "4 4\n"}, {-1, huge + "\n"}, {-1, huge + "\n"}}},
		{"previous line beyond the window", []string{strings.Repeat("s", 190) + "=", strings.Repeat("t", 190) + "="}, far},
		{"no shared prefix", []string{"alpha value=", "beta,x=y value=", "gamma_gamma f=1i,value="},
			[]line{{0, "1 5\n"}, {1, "2 6\n"}, {2, "3 7\n"}, {1, "2 8\n"}, {0, "1 9\n"}}},
		{"non-ASCII", []string{"mesure,hôte=forêt-é value=", "\x80\xff\x00\xfe,t=\x01 value="},
			[]line{{0, "1 1\n"}, {1, "é\xff 2\n"}, {0, "\x00\x80 3\n"}, {1, "\xff\xff\xff 4\n"}}},
		{"v1 mode", []string{"energy,resource_kind=cpu_package,resource_id=0 value="},
			[]line{{0, "123i 1753182326000000000\n"}, {0, "124i 1753182326001000000\n"}, {0, "9.5 1753182326002000000\n"}}},
		{"no prefix", nil, []line{{-1, "m v=1 1\n"}, {-1, "m v=1 2\n"}, {-1, "x\n"}, {-1, ""}, {-1, "m v=1 3\n"}}},
		{"empty prefix and tails", []string{"", "p"}, []line{{0, ""}, {0, ""}, {1, ""}, {0, "a"}, {1, ""}, {0, "abc"}, {0, "abc"}}},
		{"mixed", []string{"m,t=a value="}, []line{{-1, "m,t=a value=1 1\n"}, {0, "1 2\n"}, {-1, "m,t=a value=1 3\n"}, {0, "1 4\n"}}},
		{"reference-like", refP, refL},
		{"200 series", manyP, manyL},
		{"200 series shuffled", manyP, shuffled},
		{"records", recP, recL},
		{"200 record series", manyRecP, manyRecL},
		{"records and lines", []string{"rec:", "m,t=a value="},
			[]line{{0, "\x01\x02\x03\x04abcd!12345678"}, {1, "1 10\n"}, {0, "\x05\x06\x07\x08abcd!12345679"},
				{1, "2 11\n"}, {0, "\x09\x06\x07\x08abcd!1234567"}, {0, "\x09\x06\x07\x08abcd!12345670"}}},
		{"record run past the tail", []string{"r", "s"}, []line{{0, "abcdef"}, {0, "abcdeg"}, {1, "abcdef"}, {0, "abcdef"}}},
		{"record run at 0", []string{"r"}, []line{{0, "abcdef"}, {0, "abcdeg"}, {0, "abcdef"}, {0, ""}, {0, "abc"}}},
	}
	// The record series (NewRecordSeries) of the record cases, by series.
	at := map[string][]int{"records": repeat(4, 10), "200 record series": repeat(4, 200), "records and lines": {4, -1},
		"record run past the tail": {20, 6}, "record run at 0": {0}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := &Writer{}
			_, gz, text := encode(t, w, c.prefixes, c.lines, at[c.name]...)
			require.Equal(t, text, gunzipStd(t, gz))
			// klauspost's inflater (VictoriaMetrics') too.
			zr, err := kgzip.NewReader(bytes.NewReader(gz))
			require.NoError(t, err)
			b, err := io.ReadAll(zr)
			require.NoError(t, err)
			require.Equal(t, text, string(b))
			// A second stream from the same Writer: the series' lines of
			// the first one must not be referred to.
			_, gz2, text2 := encode(t, w, c.prefixes, c.lines, at[c.name]...)
			require.Equal(t, text2, gunzipStd(t, gz2))
		})
	}
}

// TestRecordRun: the run of a record series is a back-reference to the
// previous record's: the stream is smaller than as lines (whose
// timestamps lineflate looks for after a space).
func TestRecordRun(t *testing.T) {
	p, l := refRecords(10, 3000, 6)
	_, asLines, text := encode(t, &Writer{}, p, l)
	_, asRecords, text2 := encode(t, &Writer{}, p, l, repeat(4, 10)...)
	require.Equal(t, text, text2)
	require.Equal(t, text, gunzipStd(t, asRecords))
	require.Less(t, float64(len(asRecords)), 0.9*float64(len(asLines)), "records %d bytes, lines %d", len(asRecords), len(asLines))
}

// TestTailBuffer: tails built in TailBuffer (kept without a copy) and
// tails that outgrow it, or are the caller's, give the same stream.
func TestTailBuffer(t *testing.T) {
	p, l := refLines(3, 300, 5)
	long := strings.Repeat("9", 100) + " 1\n" // beyond TailBuffer's capacity
	for i := 0; i < len(l); i += 7 {
		l[i].tail = long
	}
	want, _, text := encode(t, &Writer{}, p, l)
	w := &Writer{}
	series := make([]*Series, len(p))
	for i := range p {
		series[i] = w.NewSeries([]byte(p[i]))
	}
	var got, mine []byte
	for i, x := range l {
		s := series[x.series]
		if i%3 == 0 {
			mine = append(mine[:0], x.tail...)
			got = w.AppendLine(got, s, mine)
			clear(mine) // the caller's own buffer: copied, free again
			continue
		}
		got = w.AppendLine(got, s, append(s.TailBuffer(), x.tail...))
	}
	require.Equal(t, want, got)
	gz, err := Finish(nil, got)
	require.NoError(t, err)
	require.Equal(t, text, gunzipStd(t, gz))
}

// TestZlib checks the streams with zlib's inflater (gzip(1)), the
// strictest about the Huffman codes (InfluxDB and VictoriaMetrics use Go's
// and klauspost's, checked by TestRoundTrip).
func TestZlib(t *testing.T) {
	gzipBin, err := exec.LookPath("gzip")
	if err != nil {
		t.Skip("no gzip(1)")
	}
	p, l := refLines(10, 5000, 2)
	_, gz, text := encode(t, &Writer{}, p, l)
	cmd := exec.Command(gzipBin, "-dc")
	cmd.Stdin = bytes.NewReader(gz)
	out, err := cmd.Output()
	require.NoError(t, err)
	require.Equal(t, text, string(out))
}

// TestFinishAgain: Finish leaves the stream as it was (a retried request
// finishes it again) and the stream can grow after it.
func TestFinishAgain(t *testing.T) {
	w := &Writer{}
	s := w.NewSeries([]byte("m value="))
	stream := w.AppendLine(nil, s, []byte("1 1\n"))
	a, err := Finish(nil, stream)
	require.NoError(t, err)
	b, err := Finish(nil, stream)
	require.NoError(t, err)
	require.Equal(t, a, b)
	stream = w.AppendLine(stream, s, []byte("2 2\n"))
	c, err := Finish(nil, stream)
	require.NoError(t, err)
	require.Equal(t, "m value=1 1\nm value=2 2\n", gunzipStd(t, c))
}

func TestFinishErrors(t *testing.T) {
	for _, b := range [][]byte{nil, {}, []byte("m value=1 1\n"), make([]byte, headerLen)} {
		_, err := Finish(nil, b)
		require.ErrorIs(t, err, ErrNotStream)
	}
}

func TestMisuse(t *testing.T) {
	w, other := &Writer{}, &Writer{}
	s := w.NewSeries([]byte("m value="))
	stream := w.AppendLine(nil, s, []byte("1 1\n"))
	require.Panics(t, func() { w.AppendLine(stream[:len(stream)-1], s, []byte("2 2\n")) })
	require.Panics(t, func() { other.AppendLine(nil, s, []byte("2 2\n")) })
}

// TestShift: the folded CRC of a prefix is crc32's.
func TestShift(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for _, n := range []int{0, 1, 2, 7, 8, 63, 64, 65, 200, 1000, 4095, 4096, 40000} {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(r.Uint32())
		}
		w := &Writer{}
		sh, c0 := w.shiftFor(n), crc32.ChecksumIEEE(p)
		for _, c := range []uint32{0, 1, 0xffffffff, r.Uint32(), r.Uint32()} {
			require.Equal(t, crc32.Update(c, crc32.IEEETable, p), sh.apply(c)^c0, "n=%d c=%#x", n, c)
		}
	}
}

// TestCRC: crcRaw and shiftTail make crc32's register, for every length
// around the tables' bounds.
func TestCRC(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	for n := range maxTail + 10 {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(r.Uint32())
		}
		require.Equal(t, ^crc32.Update(0xffffffff, crc32.IEEETable, p), crcRaw(p), "n=%d", n)
		if n > maxTail {
			continue
		}
		for _, c := range []uint32{0, 0xffffffff, r.Uint32()} {
			want := crc32.Update(c, crc32.IEEETable, p)
			require.Equal(t, want, ^(newShift(n).apply(^c) ^ crcRaw(p)), "n=%d c=%#x", n, c)
		}
	}
}

func TestLimitedLengths(t *testing.T) {
	fib := []int{1, 1}
	for len(fib) < 40 {
		fib = append(fib, fib[len(fib)-1]+fib[len(fib)-2])
	}
	uniform := make([]int, 286)
	for i := range uniform {
		uniform[i] = 1
	}
	cases := []struct {
		name    string
		freq    []int
		maxBits int
	}{
		{"two", []int{5, 9}, 15},
		{"with zeros", []int{0, 3, 0, 0, 1, 1, 0}, 15},
		{"fibonacci, 15", fib, 15},
		{"fibonacci, 7", fib[:19], 7},
		{"uniform 286", uniform, 15},
		{"tight: 128 in 7", uniform[:128], 7},
		{"lit weights", litWeights(), 15},
		{"dist weights", distWeights(), 15},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := limitedLengths(c.freq, c.maxBits)
			require.Equal(t, 1<<c.maxBits, kraft(l, c.maxBits), "a complete code")
			for s, n := range l {
				require.LessOrEqual(t, int(n), c.maxBits)
				require.Equal(t, c.freq[s] > 0, n > 0, "symbol %d", s)
			}
		})
	}
	require.Equal(t, []uint8{0, 1, 0}, limitedLengths([]int{0, 4, 0}, 15), "one symbol: one bit")
}

// TestTables: lenSymbol and distCode against RFC 1951's ranges.
func TestTables(t *testing.T) {
	for l := minMatch; l <= maxMatch; l++ {
		s := lenSymbol(l)
		require.GreaterOrEqual(t, l, lenBase[s])
		require.Less(t, l-lenBase[s], 1<<lenExtra[s], "length %d", l)
	}
	for d := 1; d <= window; d++ {
		c := distCode(d)
		require.GreaterOrEqual(t, d, distBase[c])
		require.Less(t, d-distBase[c], 1<<distExtra[c], "distance %d", d)
	}
}

// FuzzRoundTrip: any lines, split from the input at '\n', each of a
// series picked by its first byte with a prefix cut from the line itself,
// must come back.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("m,t=a value=1 1\nm,t=b value=2 2\nm,t=a value=1 3\n"), uint8(12))
	f.Add([]byte("\x00\xff\n\n\n"), uint8(0))
	p, l := refLines(3, 20, 9)
	var seed []byte
	for _, x := range l {
		seed = append(seed, p[x.series]+x.tail...)
	}
	f.Add(seed, uint8(150))
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		w := &Writer{}
		series := map[string]*Series{}
		var stream []byte
		for _, ln := range bytes.SplitAfter(data, []byte("\n")) {
			if len(ln) == 0 {
				continue
			}
			k := min(int(cut), len(ln))
			if ln[0]%4 == 0 {
				stream = w.AppendLine(stream, nil, ln)
				continue
			}
			s := series[string(ln[:k])]
			if s == nil {
				if ln[0]%4 == 1 { // a record series, its run anywhere
					s = w.NewRecordSeries(ln[:k], int(ln[len(ln)/2])%24)
				} else {
					s = w.NewSeries(ln[:k])
				}
				series[string(ln[:k])] = s
			}
			stream = w.AppendLine(stream, s, ln[k:])
		}
		if len(stream) == 0 {
			return
		}
		gz, err := Finish(nil, stream)
		require.NoError(t, err)
		require.Equal(t, string(data), gunzipStd(t, gz))
	})
}
