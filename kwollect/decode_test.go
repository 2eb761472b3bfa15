package kwollect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"
)

// collect decodes body and returns shallow copies of the rows (which the
// Decode contract allows keeping) and the bad-row reports.
func collect(t *testing.T, body string) ([]Row, []*RowError, error) {
	t.Helper()
	var rows []Row
	var bad []*RowError
	n, err := DecodeWith(strings.NewReader(body), DecodeOptions{OnBadRow: func(e *RowError) { bad = append(bad, e) }},
		func(r *Row) error { rows = append(rows, *r); return nil })
	require.Equal(t, len(rows), n)
	return rows, bad, err
}

var cmpRows = cmp.Options{
	cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
	cmpopts.EquateNaNs(),
	cmpopts.EquateEmpty(),
}

func ts(s string) time.Time {
	t, err := ParseTimestamp(s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestDecodeFixture(t *testing.T) {
	f, err := os.Open("testdata/metrics_orion3.json")
	require.NoError(t, err)
	defer f.Close()
	var rows []Row
	n, err := Decode(f, func(r *Row) error { rows = append(rows, *r); return nil })
	require.NoError(t, err)
	require.Equal(t, 5, n)
	want := []Row{
		{Timestamp: ts("2024-10-03T06:12:41Z"), DeviceID: "orion-3", MetricID: "wattmetre_power_watt", Value: 187.43, DeviceOrig: []string{"wattmetre1-port40"}},
		{Timestamp: ts("2024-10-03T06:12:41.6072Z"), DeviceID: "orion-3", MetricID: "bmc_node_power_watt", Value: 196},
		{Timestamp: ts("2024-10-03T06:12:42Z"), DeviceID: "orion-3", MetricID: "wattmetre_power_watt", Value: 186.9, DeviceOrig: []string{"wattmetre1-port40"}},
		{Timestamp: ts("2024-10-03T06:12:42.250931Z"), DeviceID: "orion-3", MetricID: "prom_node_load1", Value: math.NaN(),
			Labels: []Label{{"_metric_scrape_time", "1727935962.25"}, {"value_str", "n/a"}}},
		{Timestamp: ts("2024-10-03T06:12:43Z"), DeviceID: "gemini-2", MetricID: "wattmetre_power_watt", Value: 1250.5,
			DeviceOrig: []string{"wattmetrev3-1-port30", "wattmetrev3-1-port31", "wattmetrev3-1-port32", "wattmetrev3-1-port33"}},
	}
	require.Empty(t, cmp.Diff(want, rows, cmpRows))
}

func TestDecodeRows(t *testing.T) {
	const T = `"timestamp":"2024-10-03T08:12:41+02:00"`
	at := ts("2024-10-03T08:12:41+02:00")
	base := func(mod func(*Row)) Row {
		r := Row{Timestamp: at, DeviceID: "n-1", MetricID: "m", Value: 1}
		if mod != nil {
			mod(&r)
		}
		return r
	}
	tests := []struct {
		name string
		elem string
		want Row
	}{
		{"integral", `{` + T + `,"device_id":"n-1","metric_id":"m","value":1,"labels":{}}`, base(nil)},
		{"fraction", `{` + T + `,"device_id":"n-1","metric_id":"m","value":187.43}`, base(func(r *Row) { r.Value = 187.43 })},
		{"exponent", `{` + T + `,"device_id":"n-1","metric_id":"m","value":1.5e15}`, base(func(r *Row) { r.Value = 1.5e15 })},
		{"negative exponent", `{` + T + `,"device_id":"n-1","metric_id":"m","value":-2E-3}`, base(func(r *Row) { r.Value = -0.002 })},
		{"big counter", `{` + T + `,"device_id":"n-1","metric_id":"m","value":123456789012345678}`, base(func(r *Row) { r.Value = 123456789012345678 })},
		{"NaN", `{` + T + `,"device_id":"n-1","metric_id":"m","value":"NaN"}`, base(func(r *Row) { r.Value = math.NaN() })},
		{"Infinity", `{` + T + `,"device_id":"n-1","metric_id":"m","value":"Infinity"}`, base(func(r *Row) { r.Value = math.Inf(1) })},
		{"-Infinity", `{` + T + `,"device_id":"n-1","metric_id":"m","value":"-Infinity"}`, base(func(r *Row) { r.Value = math.Inf(-1) })},
		{"null", `{` + T + `,"device_id":"n-1","metric_id":"m","value":null}`, base(func(r *Row) { r.Value, r.Null = math.NaN(), true })},
		{"any order", `{"labels":{"cpu":"1"},"value":2,"metric_id":"m","device_id":"n-1",` + T + `}`,
			base(func(r *Row) { r.Value, r.Labels = 2, []Label{{"cpu", "1"}} })},
		{"unknown fields", `{"extra":{"a":[1,2,{"b":null}]},` + T + `,"device_id":"n-1","metric_id":"m","value":1,"more":"x"}`, base(nil)},
		{"orig array", `{` + T + `,"device_id":"n-1","metric_id":"m","value":1,"labels":{"_device_orig":["p1","p0"]}}`,
			base(func(r *Row) { r.DeviceOrig = []string{"p1", "p0"} })},
		{"orig string", `{` + T + `,"device_id":"n-1","metric_id":"m","value":1,"labels":{"_device_orig":"wattmetre1-port40"}}`,
			base(func(r *Row) { r.DeviceOrig = []string{"wattmetre1-port40"} })},
		{"orig empty array", `{` + T + `,"device_id":"n-1","metric_id":"m","value":1,"labels":{"_device_orig":[]}}`,
			base(func(r *Row) { r.DeviceOrig = []string{} })},
		{"orig null", `{` + T + `,"device_id":"n-1","metric_id":"m","value":1,"labels":{"_device_orig":null}}`, base(nil)},
		{"orig odd shape kept as label", `{` + T + `,"device_id":"n-1","metric_id":"m","value":1,"labels":{"_device_orig":[1, 2]}}`,
			base(func(r *Row) { r.Labels = []Label{{"_device_orig", "[1,2]"}} })},
		{"label kinds sorted", `{` + T + `,"device_id":"n-1","metric_id":"m","value":1,"labels":{"z":"s","n":12.5,"b":true,"l":[1, "a"],"o":{"k": null},"nil":null,"e":"é\n\"q\""}}`,
			base(func(r *Row) {
				r.Labels = []Label{{"b", "true"}, {"e", "é\n\"q\""}, {"l", `[1,"a"]`}, {"n", "12.5"}, {"nil", "null"}, {"o", `{"k":null}`}, {"z", "s"}}
			})},
		{"tricky nesting", `{` + T + `,"device_id":"n-1","metric_id":"m","value":1,"labels":{"a":"}],\\\"{[","b":{"x":"]}","y":[{},[]]},"c":-1.5e-3}}`,
			base(func(r *Row) { r.Labels = []Label{{"a", `}],\"{[`}, {"b", `{"x":"]}","y":[{},[]]}`}, {"c", "-1.5e-3"}} })},
		{"duplicate label keys", `{` + T + `,"device_id":"n-1","metric_id":"m","value":1,"labels":{"k":"1","j":"x","k":"2"}}`,
			base(func(r *Row) { r.Labels = []Label{{"j", "x"}, {"k", "2"}} })},
		{"escaped label key", `{` + T + `,"device_id":"n-1","metric_id":"m","value":1,"labels":{"\u005fdevice_orig":["p"]}}`,
			base(func(r *Row) { r.DeviceOrig = []string{"p"} })},
		{"network", `{` + T + `,"device_id":"n-1","metric_id":"m","value":1,"labels":{"interface": "eth0", "_device_orig": ["sw-port-3"]}}`,
			base(func(r *Row) { r.Labels, r.DeviceOrig = []Label{{"interface", "eth0"}}, []string{"sw-port-3"} })},
		{"null labels", `{` + T + `,"device_id":"n-1","metric_id":"m","value":1,"labels":null}`, base(nil)},
		{"escaped strings", `{"timestamp":"2024-10-03T08:12:41\u002B02:00","device_id":"n\u002d1","metric_id":"m","value":1}`, base(nil)},
		{"whitespace", "{ \"timestamp\" : \"2024-10-03 08:12:41+02\" ,\n \"device_id\":\"n-1\", \"metric_id\" : \"m\", \"value\" : 1 }", base(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, bad, err := collect(t, "["+tt.elem+"]")
			require.NoError(t, err)
			require.Empty(t, bad)
			require.Len(t, rows, 1)
			require.Empty(t, cmp.Diff(tt.want, rows[0], cmpRows))
		})
	}
}

func TestDecodeBadRowsSkipped(t *testing.T) {
	good := `{"timestamp":"2024-10-03T08:12:41+02:00","device_id":"n-1","metric_id":"m","value":1}`
	bads := []struct{ elem, msg string }{
		{`{"device_id":"n-1","metric_id":"m","value":1}`, "missing timestamp"},
		{`{"timestamp":null,"device_id":"n-1","metric_id":"m","value":1}`, "missing timestamp"},
		{`{"timestamp":"yesterday","device_id":"n-1","metric_id":"m","value":1}`, "bad timestamp"},
		{`{"timestamp":"2024-10-03T08:12:41","device_id":"n-1","metric_id":"m","value":1}`, "missing UTC offset"},
		{`{"timestamp":1727935961,"device_id":"n-1","metric_id":"m","value":1}`, "timestamp is not a string"},
		{`{"timestamp":"2024-10-03T08:12:41Z","metric_id":"m","value":1}`, "missing device_id"},
		{`{"timestamp":"2024-10-03T08:12:41Z","device_id":7,"metric_id":"m","value":1}`, "device_id is not a string"},
		{`{"timestamp":"2024-10-03T08:12:41Z","device_id":"n-1","value":1}`, "missing metric_id"},
		{`{"timestamp":"2024-10-03T08:12:41Z","device_id":"n-1","metric_id":"m"}`, "missing value"},
		{`{"timestamp":"2024-10-03T08:12:41Z","device_id":"n-1","metric_id":"m","value":"12"}`, `value is the string "12"`},
		{`{"timestamp":"2024-10-03T08:12:41Z","device_id":"n-1","metric_id":"m","value":true}`, "value is a JSON boolean"},
		{`{"timestamp":"2024-10-03T08:12:41Z","device_id":"n-1","metric_id":"m","value":[1]}`, "value is a JSON array"},
		{`{"timestamp":"2024-10-03T08:12:41Z","device_id":"n-1","metric_id":"m","value":1e999}`, "does not fit"},
		{`{"timestamp":"2024-10-03T08:12:41Z","device_id":"n-1","metric_id":"m","value":1,"labels":[]}`, "labels is a JSON array"},
		{`{"timestamp":"2024-10-03T08:12:41Z","device_id":"n-1","metric_id":"m","value":1,"labels":"x"}`, "labels is a JSON string"},
		{`42`, "element is a JSON number"},
		{`"row"`, "element is a JSON string"},
		{`[1,2]`, "element is a JSON array"},
		{`null`, "missing timestamp"},
		{`{}`, "missing timestamp"},
	}
	var elems []string
	for _, b := range bads {
		elems = append(elems, good, b.elem)
	}
	elems = append(elems, good)
	rows, bad, err := collect(t, "["+strings.Join(elems, ",\n")+"]")
	require.NoError(t, err)
	require.Len(t, rows, len(bads)+1, "every good row survives its bad neighbour")
	require.Len(t, bad, len(bads))
	for i, b := range bads {
		require.Equal(t, 2*i+1, bad[i].Index, b.elem)
		require.ErrorContains(t, bad[i], b.msg, b.elem)
		require.Contains(t, bad[i].Error(), fmt.Sprintf("row %d skipped", 2*i+1))
	}
	require.Contains(t, bad[2].Raw, `"timestamp":"yesterday"`, "the raw row is kept for the log")
	require.Equal(t, "missing timestamp", errors.Unwrap(bad[0]).Error())

	// Without a hook, bad rows are skipped silently.
	n, err := Decode(strings.NewReader("["+strings.Join(elems, ",")+"]"), func(*Row) error { return nil })
	require.NoError(t, err)
	require.Equal(t, len(bads)+1, n)
}

func TestDecodeStructure(t *testing.T) {
	row := `{"timestamp":"2024-10-03T08:12:41+02:00","device_id":"n-1","metric_id":"m","value":1}`
	tests := []struct {
		name      string
		body      string
		rows      int
		truncated bool
		notArray  bool
		trailing  bool
	}{
		{"empty array", `[]`, 0, false, false, false},
		{"empty array spaced", " \n[ \n]\n", 0, false, false, false},
		{"trailing garbage reported", `[` + row + `] garbage`, 1, false, false, true},
		{"second array reported", `[` + row + `]` + "\n[" + row + `]`, 1, false, false, true},
		{"trailing after empty array", `[] x`, 0, false, false, true},
		{"trailing whitespace", `[` + row + "]  \r\n\t ", 1, false, false, false},
		{"empty body", ``, 0, true, false, false},
		{"cut after bracket", `[`, 0, true, false, false},
		{"cut mid element", `[` + row + `,` + row[:40], 1, true, false, false},
		{"cut mid string", `[` + row + `,{"timestamp":"2024`, 1, true, false, false},
		{"cut after element", `[` + row + `,` + row, 2, true, false, false},
		{"cut after comma", `[` + row + `,`, 1, true, false, false},
		{"missing comma", `[` + row + ` ` + row + `]`, 1, true, false, false},
		{"garbage mid array", `[` + row + `,<html>`, 1, true, false, false},
		{"object", `{"message":"x"}`, 0, false, true, false},
		{"html", `<html><body>Bad gateway</body></html>`, 0, false, true, false},
		{"string", `"[]"`, 0, false, true, false},
		{"null", `null`, 0, false, true, false},
		{"number", `12`, 0, false, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, _, err := collect(t, tt.body)
			require.Len(t, rows, tt.rows)
			var te *TruncatedError
			switch {
			case tt.truncated:
				require.ErrorAs(t, err, &te)
				require.Equal(t, tt.rows, te.Rows)
				require.Contains(t, err.Error(), fmt.Sprintf("after %d rows", tt.rows))
				require.True(t, IsRetryable(err))
			case tt.notArray:
				require.ErrorIs(t, err, ErrNotArray)
				require.False(t, errors.As(err, &te))
				require.False(t, IsRetryable(err))
			case tt.trailing:
				require.ErrorIs(t, err, ErrTrailingData)
				require.False(t, errors.As(err, &te))
				require.False(t, IsRetryable(err))
			default:
				require.NoError(t, err)
			}
		})
	}
	_, err := Decode(strings.NewReader(`[`), func(*Row) error { return nil })
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

func TestDecodeReadError(t *testing.T) {
	row := `[{"timestamp":"2024-10-03T08:12:41+02:00","device_id":"n-1","metric_id":"m","value":1},`
	boom := errors.New("connection reset by peer")
	r := io.MultiReader(strings.NewReader(row), &errReader{boom})
	n, err := Decode(r, func(*Row) error { return nil })
	require.Equal(t, 1, n)
	var te *TruncatedError
	require.ErrorAs(t, err, &te)
	require.ErrorIs(t, err, boom)
	require.Equal(t, 1, te.Rows)
}

type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }

func TestDecodeCallbackError(t *testing.T) {
	row := `{"timestamp":"2024-10-03T08:12:41+02:00","device_id":"n-1","metric_id":"m","value":1}`
	stop := errors.New("stop")
	calls := 0
	n, err := Decode(strings.NewReader("["+row+","+row+","+row+"]"), func(*Row) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	require.Same(t, stop, err, "fn's error comes back unchanged")
	require.Equal(t, 1, n)
	require.Equal(t, 2, calls)
}

// The Row is reused between calls, but its slices are not: a shallow copy
// stays valid.
func TestDecodeRowReuse(t *testing.T) {
	body := `[{"timestamp":"2024-10-03T08:12:41Z","device_id":"a","metric_id":"m","value":1,"labels":{"_device_orig":["p1"],"k":"v1"}},
	{"timestamp":"2024-10-03T08:12:42Z","device_id":"b","metric_id":"m","value":2,"labels":{"_device_orig":["p2"],"k":"v2"}}]`
	var ptrs []*Row
	var copies []Row
	_, err := Decode(strings.NewReader(body), func(r *Row) error { ptrs = append(ptrs, r); copies = append(copies, *r); return nil })
	require.NoError(t, err)
	require.Equal(t, "a", copies[0].DeviceID)
	require.Equal(t, []string{"p1"}, copies[0].DeviceOrig)
	require.Equal(t, []Label{{"k", "v1"}}, copies[0].Labels)
	require.Equal(t, []string{"p2"}, copies[1].DeviceOrig)
}

func TestSeriesKey(t *testing.T) {
	r := func(dev string, orig []string, labels ...Label) *Row {
		return &Row{DeviceID: dev, MetricID: "m", DeviceOrig: orig, Labels: labels}
	}
	keys := []string{
		r("a", nil).SeriesKey(),
		r("b", nil).SeriesKey(),
		r("a", []string{"p1"}).SeriesKey(),
		r("a", []string{"p1", "p2"}).SeriesKey(),
		r("a", []string{"p1,p2"}).SeriesKey(),
		r("a", nil, Label{"cpu", "1"}).SeriesKey(),
		r("a", nil, Label{"cpu", "2"}).SeriesKey(),
		r("a", nil, Label{"cpu", "1"}, Label{"mode", "idle"}).SeriesKey(),
		r("a", nil, Label{"cpu", "1 mode=idle"}).SeriesKey(),
		r("a", []string{}).SeriesKey(),
		(&Row{DeviceID: "a m", MetricID: ""}).SeriesKey(),
	}
	seen := map[string]bool{}
	for _, k := range keys {
		require.False(t, seen[k], "duplicate key %s", k)
		seen[k] = true
	}
	require.Equal(t, `"a" "m" _device_orig=["p1"] "cpu"="1"`, r("a", []string{"p1"}, Label{"cpu", "1"}).SeriesKey())
	row := r("a", nil, Label{"cpu", "1"})
	v, ok := row.Label("cpu")
	require.True(t, ok)
	require.Equal(t, "1", v)
	_, ok = row.Label("mode")
	require.False(t, ok)
}

func FuzzDecode(f *testing.F) {
	seed, err := os.ReadFile("testdata/metrics_orion3.json")
	require.NoError(f, err)
	f.Add(seed)
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"timestamp":"2024-10-03 08:12:41.5+02","device_id":"n","metric_id":"m","value":null,"labels":{"_device_orig":"p","x":[1,{"y":2}]}}]`))
	f.Add([]byte(`[{"timestamp":"2024-10-03T08:12:41Z","device_id":"n\u00e9","metric_id":"m","value":"Infinity"}, 3, null, {"value":"NaN"}]`))
	f.Add([]byte(`[{"timestamp":"2024-10-03T08:12:41Z","device_id":"n","metric_id":"m","value":1e400}`))
	f.Add([]byte(`{"hint":null,"details":null,"code":"XX000","message":"x"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		bad := 0
		n, err := DecodeWith(bytes.NewReader(body), DecodeOptions{OnBadRow: func(e *RowError) {
			bad++
			if e.Err == nil || e.Index < 0 || !utf8.ValidString(e.Raw) {
				t.Fatalf("bad RowError %#v", e)
			}
		}}, func(r *Row) error {
			if r.Timestamp.IsZero() || r.Timestamp.Year() > 9999 {
				t.Fatalf("bad timestamp %v", r.Timestamp)
			}
			if !utf8.ValidString(r.DeviceID) || !utf8.ValidString(r.MetricID) {
				t.Fatalf("invalid UTF-8 in ids %q %q", r.DeviceID, r.MetricID)
			}
			if r.Null != math.IsNaN(r.Value) && r.Null {
				t.Fatalf("null row with value %v", r.Value)
			}
			for i, l := range r.Labels {
				if l.Key == "_device_orig" && r.DeviceOrig != nil {
					t.Fatalf("_device_orig both parsed and kept as label")
				}
				if i > 0 && r.Labels[i-1].Key > l.Key {
					t.Fatalf("labels not sorted: %v", r.Labels)
				}
				if !utf8.ValidString(l.Key) || !utf8.ValidString(l.Value) {
					t.Fatalf("invalid UTF-8 label %q", l)
				}
			}
			_ = r.SeriesKey()
			return nil
		})
		if n < 0 {
			t.Fatalf("negative count")
		}
		if err == nil && !json.Valid(bytes.Trim(body, " \t\r\n")) {
			t.Fatalf("accepted an invalid body %q", body)
		}
		if errors.Is(err, ErrTrailingData) {
			// The array before the trailing data was complete.
			var raw []json.RawMessage
			dec := json.NewDecoder(bytes.NewReader(body))
			if dec.Decode(&raw) != nil || len(raw) != n+bad {
				t.Fatalf("trailing data reported, but the array is not complete: %q", body)
			}
			if json.Valid(bytes.Trim(body, " \t\r\n")) {
				t.Fatalf("trailing data reported for a valid body %q", body)
			}
		}
		if err == nil {
			var raw []json.RawMessage
			if json.NewDecoder(bytes.NewReader(body)).Decode(&raw) == nil && len(raw) != n+bad {
				t.Fatalf("%d elements but %d rows + %d bad", len(raw), n, bad)
			}
		}
	})
}

// benchBody builds a realistic response of n rows (wattmetre rows with a
// port label, BMC rows without labels, every tenth value "NaN").
func benchBody(n int) []byte {
	var b bytes.Buffer
	b.WriteString("[")
	t0 := time.Date(2024, 10, 3, 8, 0, 0, 0, time.FixedZone("", 7200))
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", \n")
		}
		t := t0.Add(time.Duration(i) * 20 * time.Millisecond).Format("2006-01-02T15:04:05.999999-07:00")
		switch {
		case i%10 == 9:
			fmt.Fprintf(&b, `{"timestamp":"%s","device_id":"orion-3","metric_id":"prom_node_load1","value":"NaN","labels":{"value_str": "n/a"}}`, t)
		case i%5 == 0:
			fmt.Fprintf(&b, `{"timestamp":"%s","device_id":"orion-3","metric_id":"bmc_node_power_watt","value":%d,"labels":{}}`, t, 190+i%13)
		default:
			fmt.Fprintf(&b, `{"timestamp":"%s","device_id":"orion-3","metric_id":"wattmetre_power_watt","value":%d.%02d,"labels":{"_device_orig": ["wattmetre1-port40"]}}`, t, 180+i%17, i%100)
		}
	}
	b.WriteString("]")
	return b.Bytes()
}

func BenchmarkDecode(b *testing.B) {
	const rows = 100_000
	body := benchBody(rows)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := CPUTime()
	for i := 0; i < b.N; i++ {
		n, err := Decode(bytes.NewReader(body), func(*Row) error { return nil })
		if err != nil || n != rows {
			b.Fatalf("n=%d err=%v", n, err)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64((CPUTime()-cpu0).Nanoseconds())/float64(rows*b.N), "cpu-ns/row")
}

// FuzzScanObject checks the light label scanner against encoding/json on
// valid objects.
func FuzzScanObject(f *testing.F) {
	f.Add([]byte(`{"a":"}],\"{[","b":{"x":"]}","y":[{},[]]},"c":-1.5e-3,"d":[true,null]}`))
	f.Add([]byte(`{ "_device_orig" : [ "p1" , "p2" ] , "k" : "v" }`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var want map[string]json.RawMessage
		if json.Unmarshal(raw, &want) != nil || want == nil {
			return
		}
		raw = bytes.TrimSpace(raw)
		got := map[string]string{}
		if err := scanObject(raw, func(k string, v []byte) { got[k] = string(v) }); err != nil {
			t.Fatalf("scanObject(%q): %v", raw, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: got %d keys, want %d", raw, len(got), len(want))
		}
		for k, v := range want {
			if got[k] != string(v) {
				t.Fatalf("%q: key %q = %q, want %q", raw, k, got[k], v)
			}
		}
	})
}
