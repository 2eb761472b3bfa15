package rundir

import (
	"bytes"
	"errors"
	"io"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
)

// valueCmp compares values by type and bits (NaN equals NaN).
var valueCmp = cmp.Comparer(func(a, b measure.Value) bool {
	if a.Type() != b.Type() {
		return false
	}
	if a.Type() == measure.U64 {
		return a.Uint64() == b.Uint64()
	}
	return math.Float64bits(a.Float64()) == math.Float64bits(b.Float64())
})

var attrCmp = cmp.Comparer(func(a, b measure.AttrValue) bool {
	if a.Type != b.Type {
		return false
	}
	switch a.Type {
	case measure.AttrF64:
		return math.Float64bits(a.F64) == math.Float64bits(b.F64)
	case measure.AttrU64List:
		return cmp.Equal(a.List, b.List)
	}
	return a.Str == b.Str && a.U64 == b.U64 && a.Bool == b.Bool
})

var timeCmp = cmp.Comparer(func(a, b time.Time) bool { return a.UnixNano() == b.UnixNano() })

// TestStreamRoundTrip: every value, attribute type and form comes back
// exactly, in order, with the events at their place.
func TestStreamRoundTrip(t *testing.T) {
	reg := measure.NewRegistry()
	w, err := reg.Register(measure.Metric{Name: "wattmetre_power_watt", Unit: measure.Plain(measure.Watt), Type: measure.F64, Plugin: "kwollect-input"})
	require.NoError(t, err)
	e, err := reg.Register(measure.Metric{Name: "rapl_consumed_energy", Unit: measure.Unit{Prefix: measure.Milli, Base: measure.Joule}, Type: measure.U64, Semantics: measure.Delta})
	require.NoError(t, err)
	series := &measure.Series{Metric: w, Resource: measure.Resource{Kind: "device_id", ID: "taurus-7"},
		Consumer: measure.Consumer{Kind: "device_origin", ID: "wattmetre1-port6"}, Attributes: []measure.Attribute{{Key: "metric_id", Value: measure.String("wattmetre_power_watt")}}}
	attrs := []measure.Attribute{
		{Key: "s", Value: measure.String("a \"quoted\"\n\u00e9 string")},
		{Key: "u", Value: measure.AttrValue{Type: measure.AttrU64, U64: math.MaxUint64}},
		{Key: "f", Value: measure.AttrValue{Type: measure.AttrF64, F64: 0.1}},
		{Key: "nan", Value: measure.AttrValue{Type: measure.AttrF64, F64: math.NaN()}},
		{Key: "b", Value: measure.AttrValue{Type: measure.AttrBool, Bool: true}},
		{Key: "l", Value: measure.AttrValue{Type: measure.AttrU64List, List: []uint64{1, 2, 3}}},
		{Key: "empty", Value: measure.AttrValue{Type: measure.AttrU64List, List: []uint64{}}},
	}
	t0 := time.Date(2025, 7, 22, 11, 5, 26, 468123, time.UTC)
	points := &measure.Buffer{
		Points: []measure.Point{
			{Metric: e, Timestamp: t0, Value: measure.Uint(math.MaxUint64), Resource: measure.Resource{Kind: "cpu_package", ID: "0"}, Consumer: measure.Consumer{Kind: "local_machine"}, Attributes: attrs},
			{Metric: e, Timestamp: t0.Add(time.Second), Value: measure.Uint(0), Resource: measure.Resource{Kind: "cpu_package", ID: "0"}, Consumer: measure.Consumer{Kind: "local_machine"}, Attributes: attrs},
		},
		Compact: []measure.SeriesPoint{
			{Series: series, Time: t0.UnixNano(), Value: measure.Float(88.9)},
			{Series: series, Time: t0.UnixNano() + 1, Value: measure.Float(math.NaN())},
			{Series: series, Time: t0.UnixNano() + 2, Value: measure.Float(math.Inf(-1))},
			{Series: series, Time: -5, Value: measure.Float(math.Copysign(0, -1))},
			{Series: series, Time: t0.UnixNano() + 3, Value: measure.Float(1e300)},
			{Series: series, Time: t0.UnixNano() + 4, Value: measure.Float(5e-324)},
		},
	}
	history := &measure.Buffer{Points: []measure.Point{{Metric: w, Timestamp: t0.Add(-time.Minute), Value: measure.Float(100), Resource: series.Resource, Consumer: series.Consumer}}}
	code := 137
	events := []pipeline.Event{
		{Kind: pipeline.StartConsumerMeasurement, Time: t0, Command: []string{"sh", "-c", "x"}, Run: 2},
		{Kind: pipeline.PhaseMark, Time: t0.Add(time.Millisecond), Phase: "load", Run: 2},
		{Kind: pipeline.EndConsumerMeasurement, Time: t0.Add(time.Second), ExitCode: &code, Run: 2, Warnings: []string{"w"},
			Consumers: []measure.Consumer{{Kind: "process", ID: "42"}}, JobID: 7},
	}

	var out bytes.Buffer
	sw, err := newStreamWriter(&out, reg)
	require.NoError(t, err)
	sw.event(events[0])
	sw.buffer(history, true, false, t0.Truncate(time.Second))
	sw.buffer(points, false, false, time.Time{})
	sw.event(events[1])
	sw.buffer(points, false, false, time.Time{}) // the same series again: no new series lines
	sw.event(events[2])
	sw.buffer(history, false, true, t0.Add(time.Second)) // the span after the window
	require.NoError(t, sw.close())

	reg2 := measure.NewRegistry()
	sr, err := newStreamReader(bytes.NewReader(out.Bytes()), "points.jsonl.zst", reg2)
	require.NoError(t, err)
	defer sr.close()
	var items []StreamItem
	for {
		it, err := sr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		items = append(items, it)
	}
	require.Len(t, items, 7)
	require.Len(t, sr.series, 3, "one line per series")
	eventAt := map[int]int{0: 0, 3: 1, 5: 2} // item -> event
	for i, it := range items {
		switch i {
		case 0, 3, 5:
			require.NotNil(t, it.Event, i)
			got, err := it.Event.Event()
			require.NoError(t, err)
			require.Empty(t, cmp.Diff(events[eventAt[i]], got, timeCmp))
		case 6:
			require.True(t, it.After)
			require.True(t, it.History, "history too, for readers that do not know after")
			require.Equal(t, t0.Add(time.Second).UnixNano(), it.AfterFrom.UnixNano())
			require.Empty(t, cmp.Diff(history, it.Buffer, valueCmp, attrCmp, timeCmp, cmpopts.EquateEmpty(), cmp.AllowUnexported(measure.Buffer{})))
		case 1:
			require.True(t, it.History)
			require.False(t, it.After)
			require.Equal(t, t0.Truncate(time.Second).UnixNano(), it.HistoryEnd.UnixNano())
			require.Empty(t, cmp.Diff(history, it.Buffer, valueCmp, attrCmp, timeCmp, cmpopts.EquateEmpty(), cmp.AllowUnexported(measure.Buffer{})))
		default:
			require.False(t, it.History)
			// The replay's registry gives the same ids (same order).
			require.Empty(t, cmp.Diff(points, it.Buffer, valueCmp, attrCmp, timeCmp, cmpopts.EquateEmpty(), cmp.AllowUnexported(measure.Buffer{})))
		}
	}
	require.Equal(t, int64(1+2*8+1), sw.points, "points written: 1 of history, then twice 2 + 6, then 1 after")
	m, ok := reg2.Metric(e)
	require.True(t, ok)
	require.Equal(t, "mJ", m.Unit.DisplayName())
	require.Equal(t, measure.Delta, m.Semantics)
}

// TestStreamCut: a stream cut inside a buffer is an error naming the file
// and line, never a shorter replay.
func TestStreamCut(t *testing.T) {
	var plain bytes.Buffer
	plain.WriteString(`{"metric":{"id":0,"name":"w","unit":["","","W","W"],"type":"F64","semantics":0}}` + "\n")
	plain.WriteString(`{"series":{"id":0,"metric":0,"resource":["device_id","n"],"consumer":["",""]}}` + "\n")
	plain.WriteString(`{"buffer":{"points":0,"compact":3}}` + "\n")
	plain.WriteString("[0,1,2.5]\n[0,2,3]\n")
	for _, tc := range []struct {
		name, tail, want string
	}{
		{"cut", "", "points.jsonl.zst: line 5: the stream ends inside a buffer (2 of 3 points): it was cut"},
		{"bad point", "[1,2,3]\n", `points.jsonl.zst: line 6: point "[1,2,3]": unknown series`},
		{"bad value", "[0,2,x]\n", `points.jsonl.zst: line 6: point "[0,2,x]": bad value`},
		{"garbage", "{]\n", `points.jsonl.zst: line 6: point "{]": not [series, ns, value]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sr, err := newStreamReader(bytes.NewReader(compress(t, plain.String()+tc.tail)), "points.jsonl.zst", measure.NewRegistry())
			require.NoError(t, err)
			defer sr.close()
			_, err = sr.next()
			require.EqualError(t, err, tc.want)
		})
	}
}

var encoder, _ = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))

func compress(_ testing.TB, s string) []byte { return encoder.EncodeAll([]byte(s), nil) }

// FuzzStreamReader: whatever the bytes, the reader returns items or an
// error, never panics.
func FuzzStreamReader(f *testing.F) {
	f.Add(`{"metric":{"id":0,"name":"w","unit":["","","W","W"],"type":"F64","semantics":0}}` + "\n" +
		`{"series":{"id":0,"metric":0,"resource":["device_id","n"],"consumer":["",""],"attributes":[["k","u",1],["l","l",[1]],["f","f","NaN"]]}}` + "\n" +
		`{"buffer":{"points":1,"compact":1}}` + "\n[0,1,2.5]\n[0,2,\"NaN\"]\n" +
		`{"event":{"kind":"end","time_ns":5,"time":"","after":2}}` + "\n")
	f.Add(`{"buffer":{"points":-1,"compact":1}}`)
	f.Add(`{"series":{"id":3}}`)
	f.Fuzz(func(t *testing.T, s string) {
		sr, err := newStreamReader(bytes.NewReader(compress(t, s)), "f", measure.NewRegistry())
		require.NoError(t, err)
		defer sr.close()
		for range 1000 {
			it, err := sr.next()
			if err != nil {
				return
			}
			if it.Event != nil {
				_, _ = it.Event.Event()
			}
		}
	})
}
