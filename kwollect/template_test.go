package kwollect

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unsafe"

	"github.com/alumet-go/alumet-agent/internal/racetest"
	"github.com/google/go-cmp/cmp"
)

// runDecodeTm decodes body with the fast decoder, templates on or off.
func runDecodeTm(r io.Reader, useTemplates bool, bufSize, maxRow int) (decodeResult, templates) {
	var (
		res decodeResult
		tm  templates
	)
	opts := DecodeOptions{MaxRowBytes: maxRow, noTemplates: !useTemplates, tmStats: &tm, OnBadRow: func(e *RowError) {
		res.Bad = append(res.Bad, fmt.Sprintf("%d|%v|%s", e.Index, e.Err, e.Raw))
	}}
	var err error
	res.N, err = decodeFast(r, bufSize, opts, func(r *Row) error {
		if r.Value == 1234.5 {
			return errStopForTest
		}
		res.Rows = append(res.Rows, *r)
		return nil
	})
	if err != nil {
		res.Err = fmt.Sprintf("%T: %v", err, err)
	}
	return res, tm
}

// runDecodeSlots is runDecodeTm (templates on) with DecodeOptions.slot as
// the fetch engine uses it: each row decoded in place, in the next free
// place of a slice that fn keeps by extending it (and a rejected row's
// place given again).
func runDecodeSlots(r io.Reader, bufSize, maxRow int) decodeResult {
	var res decodeResult
	kept := make([]Row, 0, 4)
	var spare Row
	opts := DecodeOptions{MaxRowBytes: maxRow, OnBadRow: func(e *RowError) {
		res.Bad = append(res.Bad, fmt.Sprintf("%d|%v|%s", e.Index, e.Err, e.Raw))
	}, slot: func() *Row {
		if n := len(kept); n < cap(kept) {
			return &kept[:n+1][n]
		}
		return &spare
	}}
	var err error
	res.N, err = decodeFast(r, bufSize, opts, func(r *Row) error {
		if r.Value == 1234.5 {
			return errStopForTest
		}
		if n := len(kept); n < cap(kept) && r == &kept[:n+1][n] {
			kept = kept[:n+1]
		} else {
			kept = append(kept, *r)
		}
		if len(kept) == cap(kept) {
			// Full: handed on, as a batch is (a new one for the next rows).
			res.Rows = append(res.Rows, kept...)
			kept = make([]Row, 0, 4)
		}
		return nil
	})
	res.Rows = append(res.Rows, kept...)
	if err != nil {
		res.Err = fmt.Sprintf("%T: %v", err, err)
	}
	return res
}

// checkNoAliasing checks that rows share the backing array of their
// slices only with rows of the same content (a template's rows share its
// read-only slices), and that the capacities are those of the reference
// (appending to a row's slice must copy, as with the decoder without
// templates).
func checkNoAliasing(t *testing.T, rows, want []Row) {
	t.Helper()
	seen := map[uintptr]int{}
	for i, r := range rows {
		if cap(r.DeviceOrig) != cap(want[i].DeviceOrig) || cap(r.Labels) != cap(want[i].Labels) {
			t.Fatalf("row %d: capacities %d %d, want %d %d", i, cap(r.DeviceOrig), cap(r.Labels), cap(want[i].DeviceOrig), cap(want[i].Labels))
		}
		if len(r.DeviceOrig) > 0 {
			p := uintptr(unsafe.Pointer(&r.DeviceOrig[0]))
			if j, ok := seen[p]; ok && !slices.Equal(rows[j].DeviceOrig, r.DeviceOrig) {
				t.Fatalf("rows %d and %d share DeviceOrig but differ: %q, %q", j, i, rows[j].DeviceOrig, r.DeviceOrig)
			}
			seen[p] = i
		}
		if len(r.Labels) > 0 {
			p := uintptr(unsafe.Pointer(&r.Labels[0]))
			if j, ok := seen[p]; ok && !slices.Equal(rows[j].Labels, r.Labels) {
				t.Fatalf("rows %d and %d share Labels but differ: %v, %v", j, i, rows[j].Labels, r.Labels)
			}
			seen[p] = i
		}
	}
}

// checkTemplates checks that the templates change nothing: rows, reports,
// count and error are those of the fast decoder without them (and of the
// general decoder), whatever the reads and the buffer size.
func checkTemplates(t *testing.T, body []byte, chunk, maxRow int) templates {
	t.Helper()
	if maxRow == 0 {
		maxRow = DefaultMaxRowBytes
	}
	want, _ := runDecodeTm(bytes.NewReader(body), false, fastBufSize, maxRow)
	type variant struct {
		r   io.Reader
		buf int
	}
	vs := []variant{{bytes.NewReader(body), fastBufSize}}
	if chunk > 0 {
		vs = append(vs, variant{iotest.OneByteReader(bytes.NewReader(body)), 1}, variant{&chunkReader{body, chunk}, chunk})
	}
	var tm templates
	for i, v := range vs {
		got, st := runDecodeTm(v.r, true, v.buf, maxRow)
		if i == 0 {
			tm = st
		}
		if diff := cmp.Diff(want, got, strictRows); diff != "" {
			t.Fatalf("variant %d, maxRow %d, body %q: templates change the result (-without +with):\n%s", i, maxRow, body, diff)
		}
		checkNoAliasing(t, got.Rows, want.Rows)
	}
	if got := runDecodeSlots(bytes.NewReader(body), fastBufSize, maxRow); !cmp.Equal(want, got, strictRows) {
		t.Fatalf("maxRow %d, body %q: decoding in place changes the result (-without +with):\n%s", maxRow, body, cmp.Diff(want, got, strictRows))
	}
	if maxRow == DefaultMaxRowBytes {
		gen := runDecode(bytes.NewReader(body), true, 0)
		if diff := cmp.Diff(gen, want, strictRows); diff != "" {
			t.Fatalf("body %q: fast decoder differs from the general one (-general +fast):\n%s", body, diff)
		}
	}
	return tm
}

const tmTS = "2026-01-01T00:00:00.02+01:00"

func tmRow(ts, dev, val, labels string) string {
	return `{"timestamp":"` + ts + `","device_id":"` + dev + `","metric_id":"wattmetre_power_watt","value":` + val + `,"labels":` + labels + `}`
}

func tmArray(rows ...string) []byte { return []byte("[" + strings.Join(rows, ",\n") + "]") }

// templateCases are bodies where templates learn, hit and must step aside.
func templateCases() map[string][]byte {
	port := func(k int) string { return fmt.Sprintf(`{"_device_orig": ["wattmetre1-port%d"]}`, k) }
	var interleaved []string
	for s := 0; s < 200; s++ {
		for k := 1; k <= 10; k++ {
			ts := fmt.Sprintf("2026-01-01T00:00:%02d.%02d+01:00", s/50, (s%50)*2)
			interleaved = append(interleaved, tmRow(ts, fmt.Sprintf("taurus-%d", k), fmt.Sprintf("%d.%d", 90+k, s%10), port(k)))
		}
	}
	var many []string // more series than templates
	for s := 0; s < 3; s++ {
		for k := 0; k < maxTemplates+50; k++ {
			many = append(many, tmRow(tmTS, fmt.Sprintf("n-%d", k), fmt.Sprint(s), `{}`))
		}
	}
	var thrash []string // a label that changes in every row
	for i := 0; i < 3*templateMissBudget; i++ {
		thrash = append(thrash, tmRow(tmTS, "n", "1", fmt.Sprintf(`{"scrape": "%d.25"}`, 1727935962+i)))
	}
	base := tmRow(tmTS, "taurus-1", "1.5", port(1))
	return map[string][]byte{
		"benchBody":   benchBody(500),
		"interleaved": tmArray(interleaved...),
		"many":        tmArray(many...),
		"thrash":      tmArray(thrash...),
		"labelChange": tmArray(base, base, tmRow(tmTS, "taurus-1", "2", port(2)), base, tmRow(tmTS, "taurus-1", "2", `{"_device_orig": ["wattmetre1-port1"], "a": "b"}`), base),
		"values": tmArray(base,
			tmRow(tmTS, "taurus-1", `"NaN"`, port(1)), tmRow(tmTS, "taurus-1", "null", port(1)),
			tmRow(tmTS, "taurus-1", `"Infinity"`, port(1)), tmRow(tmTS, "taurus-1", `"-Infinity"`, port(1)),
			tmRow(tmTS, "taurus-1", `"nan"`, port(1)), tmRow(tmTS, "taurus-1", `1e400`, port(1)),
			tmRow(tmTS, "taurus-1", `-0`, port(1)), tmRow(tmTS, "taurus-1", `-0.5e-3`, port(1)),
			tmRow(tmTS, "taurus-1", `01`, port(1)), tmRow(tmTS, "taurus-1", `1.`, port(1)),
			tmRow(tmTS, "taurus-1", `true`, port(1)), tmRow(tmTS, "taurus-1", `"1"`, port(1)),
			tmRow(tmTS, "taurus-1", `123456789012345678901234567890`, port(1)),
			tmRow(tmTS, "taurus-1", "0."+strings.Repeat("0", 3000)+"1", port(1)),
			tmRow(tmTS, "taurus-1", `1234.5`, port(1)), base),
		"timestamps": tmArray(base,
			tmRow("2026-01-01T00:00:00Z", "taurus-1", "1", port(1)), tmRow("2026-01-01T00:00:00.123456789-00:30", "taurus-1", "1", port(1)),
			tmRow("2026-01-01T00:00:00.1234567891+01:00", "taurus-1", "1", port(1)), tmRow("2026-02-30T00:00:00+01:00", "taurus-1", "1", port(1)),
			tmRow("2026-01-01 00:00:00+01", "taurus-1", "1", port(1)), tmRow(`2026-01-01T00:00:00\u002e5+01:00`, "taurus-1", "1", port(1)),
			tmRow("", "taurus-1", "1", port(1)), tmRow("x\"", "taurus-1", "1", port(1)), base),
		"reorder": tmArray(base, `{"device_id":"taurus-1","timestamp":"`+tmTS+`","metric_id":"wattmetre_power_watt","value":1.5,"labels":{"_device_orig": ["wattmetre1-port1"]}}`,
			`{"value":1.5,"timestamp":"`+tmTS+`","device_id":"taurus-1","metric_id":"wattmetre_power_watt","labels":{"_device_orig": ["wattmetre1-port1"]}}`,
			`{"value":1.5,"timestamp":"`+tmTS+`","device_id":"taurus-1","metric_id":"wattmetre_power_watt","labels":{"_device_orig": ["wattmetre1-port1"]}}`, base),
		"whitespace": tmArray(base, `{ "timestamp":"`+tmTS+`","device_id":"taurus-1","metric_id":"wattmetre_power_watt","value":1.5,"labels":{"_device_orig": ["wattmetre1-port1"]}}`,
			`{"timestamp":"`+tmTS+`","device_id":"taurus-1","metric_id":"wattmetre_power_watt","value": 1.5 ,"labels":{"_device_orig": ["wattmetre1-port1"]}}`,
			`{"timestamp":"`+tmTS+`","device_id":"taurus-1","metric_id":"wattmetre_power_watt","value":1.5,"labels":{"_device_orig": ["wattmetre1-port1"]} }`,
			`{"timestamp":"`+tmTS+`" ,"device_id":"taurus-1","metric_id":"wattmetre_power_watt","value":1.5,"labels":{"_device_orig": ["wattmetre1-port1"]}}`, base),
		"escapes":     tmArray(base, tmRow(tmTS, `taurus\u002d1`, "1", port(1)), tmRow(tmTS, "taurus-1", "1", `{"_device_orig": ["wattmetre1\u002dport1"]}`), tmRow(tmTS, "tauré", "1", port(1)), base),
		"duplicates":  tmArray(base, base, base, base),
		"repeatedKey": tmArray(base, base[:len(base)-1]+`,"value":2}`, base+`x`, base),
		"trailing":    []byte(string(tmArray(base, base, base)) + ` [1]`),
		"cut":         tmArray(base, base, base)[:len(tmArray(base, base, base))-20],
		"badSep":      []byte("[" + base + "," + base + " " + base + "]"),
		"oversized":   tmArray(base, base, tmRow(tmTS, "taurus-1", strings.Repeat("1", 5000), port(1)), base),
		"notObjects":  tmArray(base, `3`, `"x"`, `null`, `[1]`, base, `{}`, base),
		"missing":     tmArray(base, `{"timestamp":"`+tmTS+`","device_id":"taurus-1","value":1.5,"labels":{"_device_orig": ["wattmetre1-port1"]}}`, base),
		"noLabels": tmArray(`{"timestamp":"`+tmTS+`","device_id":"n","metric_id":"m","value":1}`, `{"timestamp":"`+tmTS+`","device_id":"n","metric_id":"m","value":2}`,
			`{"timestamp":"`+tmTS+`","device_id":"n","metric_id":"m","value":2,"labels":null}`, `{"timestamp":"`+tmTS+`","device_id":"n","metric_id":"m","value":2,"labels":null}`,
			`{"timestamp":"`+tmTS+`","device_id":"n","metric_id":"m","value":2,"labels":{"_device_orig":[]}}`, `{"timestamp":"`+tmTS+`","device_id":"n","metric_id":"m","value":3,"labels":{"_device_orig":[]}}`,
			`{"timestamp":"`+tmTS+`","device_id":"n","metric_id":"m","value":2,"labels":{"_device_orig":"p","b":"2","a":"1"}}`, `{"timestamp":"`+tmTS+`","device_id":"n","metric_id":"m","value":3,"labels":{"_device_orig":"p","b":"2","a":"1"}}`),
	}
}

func TestTemplatesTable(t *testing.T) {
	racetest.WithoutRace(t) // one goroutine; TestTemplatesUsed and the Session tests decode through templates under -race
	for name, body := range templateCases() {
		t.Run(name, func(t *testing.T) {
			for _, maxRow := range []int{0, 150, -1} {
				checkTemplates(t, body, 7, maxRow)
			}
		})
	}
}

// TestTemplatesUsed checks that the templates do match the usual shape
// (the table above only shows they change nothing).
func TestTemplatesUsed(t *testing.T) {
	cases := templateCases()
	for _, name := range []string{"benchBody", "interleaved", "many"} {
		tm := checkTemplates(t, cases[name], 0, 0)
		if tm.off || tm.hits < tm.misses {
			t.Errorf("%s: %d hits, %d misses, off %v", name, tm.hits, tm.misses, tm.off)
		}
	}
	if tm := checkTemplates(t, cases["thrash"], 0, 0); !tm.off {
		t.Errorf("thrash: templates still on after %d misses (%d hits)", tm.misses, tm.hits)
	}
	tm := checkTemplates(t, cases["interleaved"], 0, 0)
	if rows := 2000; tm.hits < rows-20 {
		t.Errorf("interleaved: %d hits for %d rows", tm.hits, rows)
	}
}

// FuzzTemplateVsFast checks that the templates give exactly what the fast
// decoder gives without them (and what the general decoder gives), on
// arbitrary bodies.
func FuzzTemplateVsFast(f *testing.F) {
	for _, s := range templateCases() {
		if len(s) < 20000 {
			f.Add(s, uint8(7), int16(0))
		}
	}
	for _, s := range fastSeeds(f) {
		f.Add(s, uint8(0), int16(0))
	}
	f.Fuzz(func(t *testing.T, body []byte, chunk uint8, maxRow int16) {
		checkTemplates(t, body, int(chunk), int(maxRow))
	})
}

// FuzzTemplateRows builds bodies from two fuzzed rows repeated with other
// timestamps and values (steps picks each element's row, timestamp, value
// and separator), so that most elements go through a template.
func FuzzTemplateRows(f *testing.F) {
	a := tmRow(tmTS, "taurus-1", "1.5", `{"_device_orig": ["wattmetre1-port1"]}`)
	b := `{"timestamp":"2024-10-03T08:12:41Z","device_id":"orion-3","metric_id":"bmc_node_power_watt","value":196,"labels":{}}`
	f.Add(a, b, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 0x81, 0x42, 0xff})
	f.Add(`{"timestamp":"`+tmTS+`","device_id":"n","metric_id":"m","value":"NaN"}`, `{"timestamp":"`+tmTS+`" , "value" : null , "device_id":"n","metric_id":"m"}`, []byte("abcdefghijklmnop"))
	f.Add(`{"timestamp":"`+tmTS+`","device_id":"n\u00e9","metric_id":"m","value":1,"labels":{"k":"1","k":"2"}}`, `{"timestamp":"`+tmTS+`","device_id":"n","metric_id":"m","value":1,"labels":{"_device_orig":null}}`, []byte{1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, rowA, rowB string, steps []byte) {
		if len(steps) > 512 {
			steps = steps[:512]
		}
		tsA, valA := holes(rowA)
		tsB, valB := holes(rowB)
		var body bytes.Buffer
		body.WriteString("[")
		for i, s := range steps {
			if i > 0 {
				body.WriteString([]string{",", ", \n", " ,", ","}[s>>6&3])
			}
			row, ts, val := rowA, tsA, valA
			if s&1 != 0 {
				row, ts, val = rowB, tsB, valB
			}
			tsText := []string{"2026-01-01T00:00:00.02+01:00", "2026-01-01T00:00:00.04+01:00", "2026-01-01T00:00:01Z",
				"2026-01-01T00:00:00.123456789-05:00", "2026-13-01T00:00:00Z", "2026-01-01T00:00:00+01:00", "", "2026-01-01T00:00:00.5+01"}[s>>1&7]
			valText := []string{"1", "-2.25", `"NaN"`, "null", "1e5", "0.1", "12345678901234567890", "1234.5"}[(s>>4&3)|(s>>5&4)]
			body.WriteString(fill(row, ts, tsText, val, valText))
		}
		body.WriteString("]")
		checkTemplates(t, body.Bytes(), 5, 0)
		checkTemplates(t, body.Bytes(), 0, 90)
	})
}

// holes finds, crudely, the timestamp text and the value token of a row
// (-1 if not found), for FuzzTemplateRows to replace.
func holes(row string) (ts, val [2]int) {
	ts, val = [2]int{-1, -1}, [2]int{-1, -1}
	if i := strings.Index(row, `"timestamp":"`); i >= 0 {
		i += len(`"timestamp":"`)
		if j := strings.IndexByte(row[i:], '"'); j >= 0 {
			ts = [2]int{i, i + j}
		}
	}
	if i := strings.Index(row, `"value":`); i >= 0 {
		i += len(`"value":`)
		j := i
		for j < len(row) && !strings.ContainsRune(",} \n", rune(row[j])) {
			j++
		}
		val = [2]int{i, j}
	}
	return ts, val
}

func fill(row string, ts [2]int, tsText string, val [2]int, valText string) string {
	type hole struct {
		at   [2]int
		text string
	}
	hs := []hole{{ts, tsText}, {val, valText}}
	if hs[0].at[0] > hs[1].at[0] {
		hs[0], hs[1] = hs[1], hs[0]
	}
	var b strings.Builder
	prev := 0
	for _, h := range hs {
		if h.at[0] < prev || h.at[0] < 0 {
			continue
		}
		b.WriteString(row[prev:h.at[0]])
		b.WriteString(h.text)
		prev = h.at[1]
	}
	b.WriteString(row[prev:])
	return b.String()
}

// FuzzPlainNumber checks the one-pass number parser against numberEnd and
// simpleFloat.
func FuzzPlainNumber(f *testing.F) {
	for _, s := range []string{"0,", "-0}", "187.43,", "123456789012345 ", "1234567890123456,", "0.1", "-0.000000000000001,", "01,", "1.,", "1e5,", "-,", "1.5e", "9.", "00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		if len(b) == 0 {
			return
		}
		got, j, ok := plainNumber(b, 0)
		if !ok {
			return
		}
		e, st := numberEnd(b, 0)
		if st != fastOK || e != j {
			t.Fatalf("%q: plainNumber ends at %d, numberEnd %d %d", s, j, e, st)
		}
		want, ok2 := simpleFloat(b[:e])
		if !ok2 || math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("%q: plainNumber %v, simpleFloat %v %v", s, got, want, ok2)
		}
	})
}

// FuzzSameSecond checks the timestamp shortcut of the templates (and its
// cached offset) against simpleString and d.timestamp.
func FuzzSameSecond(f *testing.F) {
	f.Add("2024-10-03T08:12:41.6072+02:00", `.5+01:00","x`, `.25+01:00"`)
	f.Add("2024-10-03T08:12:41Z", `Z"`, `+00:00"`)
	f.Add("2024-10-03T08:12:41Z", `.1234567891Z"`, `.+02:00"`)
	f.Add("2024-10-03T08:12:41Z", `+01:0"0"`, `.1234567891-01:00"`)
	f.Add("2024-10-03T08:12:41Z", `.1-01:00"`, `.1234567891-01:00"`)
	f.Fuzz(func(t *testing.T, first, tail1, tail2 string) {
		d := &fastDecoder{}
		if _, ok := d.timestamp([]byte(first)); !ok || len(first) < 19 {
			return
		}
		for _, tail := range []string{tail1, tail2, tail1} {
			b := []byte(first[:19] + tail)
			got, i, ok := d.sameSecond(b)
			if !ok {
				continue
			}
			end, st := simpleString(append([]byte{'"'}, b...), 0)
			if st != fastOK || end-2 != i {
				t.Fatalf("%q: sameSecond ends at %d, simpleString %d %d", b, i, end-2, st)
			}
			want, msg := parseTimestamp(string(b[:i]))
			if msg != "" || !got.Equal(want) || got.Location() != want.Location() {
				t.Fatalf("%q: sameSecond %v, parseTimestamp %v %q", b[:i], got, want, msg)
			}
		}
	})
}

// BenchmarkDecodeTemplates decodes 100k rows of BenchmarkSessionFetchMem's
// body (10 nodes at 50 Hz, interleaved) and of benchBody, with the
// templates and without.
func BenchmarkDecodeTemplates(b *testing.B) {
	m := NewMemAPI(10, 50, memFrom, 200*time.Second)
	mem := append(append([]byte("["), m.body[:len(m.body)-2]...), ']')
	for _, c := range []struct {
		name string
		body []byte
		rows int
	}{{"memapi", mem, m.Rows()}, {"benchBody", benchBody(100_000), 100_000}} {
		for _, on := range []bool{true, false} {
			b.Run(fmt.Sprintf("%s/templates=%v", c.name, on), func(b *testing.B) {
				b.SetBytes(int64(len(c.body)))
				b.ReportAllocs()
				cpu0 := CPUTime()
				for b.Loop() {
					n, err := decodeFast(bytes.NewReader(c.body), fastBufSize, DecodeOptions{MaxRowBytes: DefaultMaxRowBytes, noTemplates: !on}, func(*Row) error { return nil })
					if err != nil || n != c.rows {
						b.Fatalf("n=%d err=%v", n, err)
					}
				}
				b.ReportMetric(float64((CPUTime()-cpu0).Nanoseconds())/float64(c.rows*b.N), "cpu-ns/row")
			})
		}
	}
}
