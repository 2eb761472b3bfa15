package kwollect

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// decodeResult is everything a decode observably produces.
type decodeResult struct {
	Rows []Row
	Bad  []string // Index, error and raw snippet of each report
	N    int
	Err  string
}

func runDecode(r io.Reader, general bool, bufSize int) decodeResult {
	var res decodeResult
	opts := DecodeOptions{General: general, OnBadRow: func(e *RowError) {
		res.Bad = append(res.Bad, fmt.Sprintf("%d|%v|%s", e.Index, e.Err, e.Raw))
	}}
	fn := func(r *Row) error {
		if r.Value == 1234.5 {
			return errStopForTest
		}
		res.Rows = append(res.Rows, *r)
		return nil
	}
	var err error
	if general {
		res.N, err = DecodeWith(r, opts, fn)
	} else {
		res.N, err = decodeFast(r, bufSize, opts, fn)
	}
	if err != nil {
		res.Err = fmt.Sprintf("%T: %v", err, err)
	}
	return res
}

var errStopForTest = fmt.Errorf("stop")

// strictRows compares rows exactly: same instant and location, NaN-aware
// values, and nil vs empty slices told apart (SeriesKey depends on it).
var strictRows = cmp.Options{
	cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) && a.Location() == b.Location() }),
	cmpopts.EquateNaNs(),
	cmp.Comparer(func(a, b []string) bool {
		if (a == nil) != (b == nil) || len(a) != len(b) {
			return false
		}
		for i := range a {
			if a[i] != b[i] {
				return false
			}
		}
		return true
	}),
}

func checkSame(t *testing.T, body []byte, chunk int) {
	t.Helper()
	want := runDecode(bytes.NewReader(body), true, 0)
	readers := []io.Reader{bytes.NewReader(body)}
	bufSizes := []int{fastBufSize}
	if chunk > 0 {
		readers = append(readers, iotest.OneByteReader(bytes.NewReader(body)), &chunkReader{body, chunk})
		bufSizes = append(bufSizes, 1, chunk)
	}
	for i, r := range readers {
		got := runDecode(r, false, bufSizes[i])
		if diff := cmp.Diff(want, got, strictRows); diff != "" {
			t.Fatalf("reader %d, body %q: fast decoder differs (-general +fast):\n%s", i, body, diff)
		}
	}
}

// chunkReader returns at most n bytes per Read, and the error with the last
// bytes.
type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := min(len(p), c.n, len(c.b))
	copy(p, c.b[:k])
	c.b = c.b[k:]
	if len(c.b) == 0 {
		return k, io.EOF
	}
	return k, nil
}

func fastSeeds(tb testing.TB) [][]byte {
	var seeds [][]byte
	for _, name := range []string{"testdata/metrics_orion3.json", "testdata/cluster_taurus_gros.json"} {
		b, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	files, _ := filepath.Glob("testdata/fuzz/FuzzDecode/*")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		lines := strings.Split(string(b), "\n")
		if len(lines) >= 2 && strings.HasPrefix(lines[1], "[]byte(") {
			if s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")")); err == nil {
				seeds = append(seeds, []byte(s))
			}
		}
	}
	const T = `"timestamp":"2024-10-03T08:12:41.6072+02:00"`
	row := `{` + T + `,"device_id":"n-1","metric_id":"m","value":187.43,"labels":{"_device_orig":["wattmetre1-port40"]}}`
	seeds = append(seeds,
		benchBody(30),
		[]byte(`[]`), []byte(` [ ] x`), []byte(``), []byte(`[`), []byte(`{"message":"x"}`),
		[]byte(`[`+row+`,`+row+`]`),
		[]byte(`[`+row+` `+row+`]`),
		[]byte(`[`+row+`,]`),
		[]byte(`[`+row+`,`+row),
		[]byte(`[`+row+`,`+row[:50]),
		[]byte(`[`+row+`,{"timestamp":null},3,"x",null,[1],`+row+`]`),
		[]byte(`[{`+T+`,"device_id":"n","metric_id":"m","value":1234.5},`+row+`]`),
		[]byte(`[{"timestamp":"2024-10-03 08:12:41.5+02","device_id":"n","metric_id":"m","value":null,"labels":{"_device_orig":"p","x":[1,{"y":2}]}}]`),
		[]byte(`[{"timestamp":"2024-10-03T08:12:41Z","device_id":"n\u00e9","metric_id":"m","value":"Infinity"}, 3, null, {"value":"NaN"}]`),
		[]byte(`[{"timestamp":"2024-10-03T08:12:41Z","device_id":"n","metric_id":"m","value":1e400}]`),
		[]byte(`[{"timestamp":"2024-10-03T08:12:41-00:30","device_id":"n","metric_id":"m","value":-0.5e-3,"labels":{"b":"2","a":"1","_device_orig":[],"c":"3"}}]`),
		[]byte(`[{"timestamp":"2024-02-29T23:59:59.999999999+23:59","device_id":"n","metric_id":"m","value":0,"labels":{"k":"1","k":"2"}}]`),
		[]byte(`[{"timestamp":"0000-01-01T00:00:00Z","device_id":"n","metric_id":"m","value":-0,"labels":null}]`),
		[]byte(`[{"Timestamp":"2024-10-03T08:12:41Z","device_id":"n","metric_id":"m","value":1,"timestamp":"2024-10-03T08:12:42Z"}]`),
	)
	return seeds
}

func TestFastVsGeneralSeeds(t *testing.T) {
	for _, s := range fastSeeds(t) {
		checkSame(t, s, 7)
	}
}

// FuzzFastVsGeneral checks that the fast decoder gives exactly what the
// general one gives: rows, bad-row reports, count and error, whatever the
// input and however it is split into reads.
func FuzzFastVsGeneral(f *testing.F) {
	for _, s := range fastSeeds(f) {
		f.Add(s, uint8(7))
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, body []byte, chunk uint8) {
		checkSame(t, body, int(chunk))
	})
}

func FuzzFastTimestamp(f *testing.F) {
	for _, s := range []string{"2024-10-03T08:12:41.6072+02:00", "2024-10-03T08:12:41Z", "0000-02-29T00:00:00-23:59", "9999-12-31T23:59:59.123456789+00:00", "1969-12-31T23:59:59.5Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d := &fastDecoder{}
		got, ok := d.timestamp([]byte(s))
		want, msg := parseTimestamp(s)
		if ok != (msg == "") || !got.Equal(want) || got.Location() != want.Location() {
			t.Fatalf("%q: fast %v %v, general %v %q", s, got, ok, want, msg)
		}
	})
}

// FuzzFastTimestampCache parses a timestamp, then others sharing its date
// and time of day (the decoder's per-second cache) or not.
func FuzzFastTimestampCache(f *testing.F) {
	f.Add("2024-10-03T08:12:41.6072+02:00", ".5+01:00", "2024-10-03T08:12:42Z")
	f.Add("2024-10-03T08:12:41Z", "Z", "2024-10-03T08:12:41.000001+02:00")
	f.Add("2024-02-29T23:59:59.999999999-23:59", ".1234567891Z", "x")
	f.Fuzz(func(t *testing.T, first, tail, other string) {
		d := &fastDecoder{}
		for _, s := range []string{first, first[:min(len(first), 19)] + tail, other, first} {
			got, ok := d.timestamp([]byte(s))
			want, msg := parseTimestamp(s)
			if ok != (msg == "") || !got.Equal(want) || got.Location() != want.Location() {
				t.Fatalf("%q (after %q): fast %v %v, general %v %q", s, first, got, ok, want, msg)
			}
		}
	})
}

func TestFastDecodeAllocs(t *testing.T) {
	body := benchBody(10_000)
	allocs := testing.AllocsPerRun(3, func() {
		if _, err := Decode(bytes.NewReader(body), func(*Row) error { return nil }); err != nil {
			t.Fatal(err)
		}
	})
	if per := allocs / 10_000; per > 0.1 {
		t.Fatalf("%.3f allocs per row", per)
	}
	_ = math.NaN
}

func BenchmarkDecodeGeneral(b *testing.B) {
	const rows = 100_000
	body := benchBody(rows)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n, err := DecodeWith(bytes.NewReader(body), DecodeOptions{General: true}, func(*Row) error { return nil })
		if err != nil || n != rows {
			b.Fatalf("n=%d err=%v", n, err)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func FuzzSimpleFloat(f *testing.F) {
	for _, s := range []string{"0", "-0", "187.43", "123456789012345", "0.1", "-0.000000000000000000001", "9007199254740993", "1.7976931348623157"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !json.Valid([]byte(s)) || s == "" || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) {
			return
		}
		got, ok := simpleFloat([]byte(s))
		want, err := strconv.ParseFloat(s, 64)
		if ok && (err != nil || math.Float64bits(got) != math.Float64bits(want)) {
			t.Fatalf("%q: simpleFloat %v, ParseFloat %v %v", s, got, want, err)
		}
	})
}
