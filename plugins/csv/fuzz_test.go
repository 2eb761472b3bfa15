package csv

import (
	"bytes"
	stdcsv "encoding/csv"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/measure"
)

var fuzzDelimiters = []struct{ d, l rune }{{';', ','}, {'\t', '|'}, {',', ';'}, {'§', '¦'}}

// FuzzWriteRow writes two buffers of arbitrary ids and attributes and parses
// the bytes back with encoding/csv (LazyQuotes off): every record must have
// the header's number of fields and hold the original cells, the late cell
// as the model builds it.
func FuzzWriteRow(f *testing.F) {
	f.Add("taurus-7", "wattmetre1-port6", "metric_id", "wattmetre_power_watt", "domain", "package", uint8(0))
	f.Add("a;b", `say "hi"`, "k;1", "line1\nline2", "late", "x,y", uint8(0))
	f.Add("\r\n", "\r", "\"", "\"\"", "value", `a\,b`, uint8(0))
	f.Add("x\ty", "a|b", "tab\tkey", "v|w", "p", "q\tr", uint8(1))
	f.Add("a,b", "c;d", ",", ";", "__late_attributes", "", uint8(2))
	f.Add("§", "¦x", "k§", "v¦", "", "\xc2", uint8(3))
	f.Fuzz(func(t *testing.T, resID, consID, k1, v1, k2, v2 string, sel uint8) {
		ds := fuzzDelimiters[int(sel)%len(fuzzDelimiters)]
		opts := Options{Delimiter: ds.d, LateDelimiter: ds.l, AppendUnitToMetricName: true, UseUnitDisplayName: true}
		reg := measure.NewRegistry()
		id := register(t, reg, "m", measure.Plain(measure.Watt), measure.F64)
		ts := time.Date(2025, 7, 22, 11, 5, 26, 20_000_000, time.UTC)
		p1 := measure.Point{Metric: id, Timestamp: ts, Value: measure.Float(1.5),
			Resource: measure.Resource{Kind: "device_id", ID: resID}, Consumer: measure.Consumer{Kind: "device_origin", ID: consID},
			Attributes: []measure.Attribute{str(k1, v1)}}
		p2 := measure.Point{Metric: id, Timestamp: ts, Value: measure.Uint(7),
			Resource: measure.Resource{Kind: resID, ID: consID}, Consumer: measure.Consumer{Kind: "k", ID: v2},
			Attributes: []measure.Attribute{str(k2, v1), str(k1, v2), str(k2, v2), str(resID, consID), str(v1, k1)}}
		out := writeAll(t, reg, opts, &measure.Buffer{Points: []measure.Point{p1}}, &measure.Buffer{Points: []measure.Point{p2}})
		requireCompactSame(t, reg, opts, out, &measure.Buffer{Points: []measure.Point{p1}}, &measure.Buffer{Points: []measure.Point{p2}})

		header := modelHeader(p1)
		want := [][]string{
			append(append(FixedColumns[:], header...), LateColumn),
			modelRow(header, p1, "m_W", "1.5", ds.l),
			modelRow(header, p2, "m_W", "7", ds.l),
		}
		for _, rec := range want {
			for i := range rec {
				// encoding/csv turns \r\n into \n, inside quotes too.
				rec[i] = strings.ReplaceAll(rec[i], "\r\n", "\n")
			}
		}
		r := stdcsv.NewReader(bytes.NewReader(out))
		r.Comma = ds.d
		r.LazyQuotes = false
		r.FieldsPerRecord = 0 // every record as long as the header
		got, err := r.ReadAll()
		require.NoError(t, err, "output:\n%q", out)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("records (-want +got):\n%s\noutput: %q", diff, out)
		}
		require.True(t, bytes.HasSuffix(out, []byte("\n")))
	})
}

// modelHeader is a straightforward model of the header's attribute columns.
func modelHeader(p measure.Point) []string {
	var keys []string
	for _, a := range p.Attributes {
		if !reservedKey(a.Key) && !slices.Contains(keys, a.Key) {
			keys = append(keys, a.Key)
		}
	}
	slices.Sort(keys)
	return keys
}

// modelRow is a straightforward model of a row's cells.
func modelRow(header []string, p measure.Point, metric, value string, late rune) []string {
	last := map[string]string{}
	for _, a := range p.Attributes {
		last[a.Key] = a.Value.String()
	}
	row := []string{metric, p.Timestamp.UTC().Format(time.RFC3339Nano), value, p.Resource.Kind, p.Resource.ID, p.Consumer.Kind, p.Consumer.ID}
	for _, k := range header {
		row = append(row, last[k])
		delete(last, k)
	}
	var lateKeys []string
	for k := range last {
		lateKeys = append(lateKeys, k)
	}
	slices.Sort(lateKeys)
	var pairs []string
	for _, k := range lateKeys {
		pairs = append(pairs, k+"="+strings.ReplaceAll(last[k], string(late), `\`+string(late)))
	}
	return append(row, strings.Join(pairs, string(late)))
}

// FuzzTimestampCell checks the timestamp cell against time.RFC3339Nano,
// in sequences that hit and miss the per-second cache.
func FuzzTimestampCell(f *testing.F) {
	f.Add(int64(1741600800), int64(0), int64(20_000_000))
	f.Add(int64(1741600800), int64(999_999_999), int64(1))
	f.Add(int64(-62135596800), int64(5), int64(1_000_000_000))
	f.Add(int64(253402300799), int64(1), int64(1_000_000_000)) // 9999-12-31T23:59:59 then year 10000
	f.Add(int64(-62135596801), int64(0), int64(3))             // year 0
	f.Fuzz(func(t *testing.T, sec, nsec, step int64) {
		if sec < -1e13 || sec > 1e13 {
			return
		}
		w := NewWriter(nil, measure.NewRegistry(), DefaultOptions())
		ts := time.Unix(sec, nsec).In(time.FixedZone("", 3600))
		for range 4 {
			want := ts.UTC().AppendFormat(nil, time.RFC3339Nano)
			if got := w.appendTimestamp(nil, ts); string(got) != string(want) {
				t.Fatalf("appendTimestamp(%d.%09d) = %q, want %q", ts.Unix(), ts.Nanosecond(), got, want)
			}
			ts = ts.Add(time.Duration(step))
		}
	})
}

// FuzzNeedsQuotes checks the word-at-a-time scan against a byte loop.
func FuzzNeedsQuotes(f *testing.F) {
	f.Add([]byte("wattmetre1-port6"), uint8(0))
	f.Add([]byte("abcdefgh;ijk"), uint8(0))
	f.Add([]byte("abcdefgh\tijklmnopq|"), uint8(1))
	f.Add([]byte("\x80\xff\x00\x01\"\r\n"), uint8(2))
	f.Fuzz(func(t *testing.T, cell []byte, sel uint8) {
		d := fuzzDelimiters[int(sel)%len(fuzzDelimiters)]
		w := NewWriter(nil, measure.NewRegistry(), Options{Delimiter: d.d, LateDelimiter: d.l})
		want := bytes.ContainsAny(cell, "\"\r\n") || bytes.Contains(cell, w.delim)
		if got := w.needsQuotes(cell); got != want {
			t.Fatalf("needsQuotes(%q) with %q = %v, want %v", cell, d.d, got, want)
		}
	})
}

// FuzzTailCache: the row tails cached per series give the bytes a fresh
// writer gives row by row, whatever the mix of series: the same resource
// with other consumers or attributes, attribute values of every type, a
// U64 list refilled in place between buffers.
func FuzzTailCache(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, uint8(0))
	f.Add([]byte{0, 0, 0, 7, 7, 7, 3, 3}, uint8(1))
	f.Fuzz(func(t *testing.T, picks []byte, sel uint8) {
		if len(picks) > 64 {
			picks = picks[:64]
		}
		ds := fuzzDelimiters[int(sel)%len(fuzzDelimiters)]
		opts := Options{Delimiter: ds.d, LateDelimiter: ds.l}
		reg := measure.NewRegistry()
		id := register(t, reg, "m", measure.Plain(measure.Watt), measure.F64)
		list := []uint64{1, 2}
		values := []measure.AttrValue{
			measure.String("a"), measure.String("a;b"), {Type: measure.AttrU64, U64: 1}, {Type: measure.AttrU64, U64: 2},
			{Type: measure.AttrF64, F64: 0.5}, {Type: measure.AttrBool, Bool: true}, {Type: measure.AttrU64List, List: list},
		}
		ts := time.Date(2025, 7, 22, 11, 5, 26, 0, time.UTC)
		point := func(b byte) measure.Point {
			attrs := []measure.Attribute{str("metric_id", "m")}
			if b&1 != 0 {
				attrs = append(attrs, measure.Attribute{Key: "run", Value: values[int(b>>1)%len(values)]})
			}
			if b&16 != 0 {
				attrs = append(attrs, measure.Attribute{Key: "late", Value: values[int(b>>4)%len(values)]})
			}
			return measure.Point{Metric: id, Timestamp: ts, Value: measure.Float(float64(b)),
				Resource:   measure.Resource{Kind: "device_id", ID: []string{"taurus-1", "taurus-2", "a;b"}[int(b)%3]},
				Consumer:   measure.Consumer{Kind: "device_origin", ID: []string{"p1", "p2"}[int(b>>2)%2]},
				Attributes: attrs}
		}
		// The first point fixes the columns (metric_id, and run when it has it).
		var bufs []*measure.Buffer
		var all []measure.Point
		for i, b := range picks {
			if i == len(picks)/2 {
				list[0]++ // refilled between buffers
			}
			p := point(b)
			p.Attributes = slices.Clone(p.Attributes)
			for j := range p.Attributes {
				if p.Attributes[j].Value.List != nil {
					p.Attributes[j].Value.List = slices.Clone(list)
				}
			}
			all = append(all, p)
			bufs = append(bufs, &measure.Buffer{Points: []measure.Point{p}})
		}
		if len(all) == 0 {
			return
		}
		cached := writeAll(t, reg, opts, bufs...)
		// The reference: a writer that formats every tail.
		var want bytes.Buffer
		ref := NewWriter(&want, reg, opts)
		ref.noTailCache = true
		for _, b := range bufs {
			require.NoError(t, ref.WriteBuffer(b))
		}
		require.NoError(t, ref.Flush())
		if diff := cmp.Diff(want.String(), string(cached)); diff != "" {
			t.Fatalf("cached tails differ:\n%s", diff)
		}
		requireCompactSame(t, reg, opts, want.Bytes(), bufs...)
	})
}
