package csv

import (
	"bytes"
	"flag"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/testkit"
	"github.com/alumet-go/alumet-agent/measure"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// checkGolden compares got with testdata/<name>, or rewrites it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	testkit.Golden(t, name, got, *update)
}

func register(t testing.TB, reg *measure.Registry, name string, unit measure.Unit, typ measure.ValueType) measure.MetricID {
	t.Helper()
	id, err := reg.Register(measure.Metric{Name: name, Unit: unit, Type: typ, Description: "test " + name})
	require.NoError(t, err)
	return id
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	return ts
}

func str(k, v string) measure.Attribute { return measure.Attribute{Key: k, Value: measure.String(v)} }

// kwollectBuffer is the §6 example: three taurus-7 records from Kwollect.
func kwollectBuffer(t testing.TB, reg *measure.Registry) *measure.Buffer {
	id := register(t, reg, "wattmetre_power_watt", measure.Plain(measure.Watt), measure.F64)
	buf := &measure.Buffer{}
	for _, r := range []struct {
		ts string
		v  float64
	}{
		{"2025-07-22T13:05:26+02:00", 130.4},
		{"2025-07-22T13:05:27+02:00", 131},
		{"2025-07-22T13:05:27.02+02:00", 129.87},
	} {
		buf.Push(measure.Point{
			Metric:     id,
			Timestamp:  mustTime(t, r.ts),
			Value:      measure.Float(r.v),
			Resource:   measure.Resource{Kind: "device_id", ID: "taurus-7"},
			Consumer:   measure.Consumer{Kind: "device_origin", ID: "wattmetre1-port6"},
			Attributes: []measure.Attribute{str("metric_id", "wattmetre_power_watt")},
		})
	}
	return buf
}

// specExample is the exact §6 output for kwollectBuffer.
const specExample = `metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;metric_id;__late_attributes
wattmetre_power_watt_W;2025-07-22T11:05:26Z;130.4;device_id;taurus-7;device_origin;wattmetre1-port6;wattmetre_power_watt;
wattmetre_power_watt_W;2025-07-22T11:05:27Z;131;device_id;taurus-7;device_origin;wattmetre1-port6;wattmetre_power_watt;
wattmetre_power_watt_W;2025-07-22T11:05:27.02Z;129.87;device_id;taurus-7;device_origin;wattmetre1-port6;wattmetre_power_watt;
`

// writeAll writes bufs with a new Writer and returns the bytes.
func writeAll(t testing.TB, reg *measure.Registry, opts Options, bufs ...*measure.Buffer) []byte {
	t.Helper()
	var out bytes.Buffer
	w := NewWriter(&out, reg, opts)
	for _, b := range bufs {
		require.NoError(t, w.WriteBuffer(b))
	}
	require.NoError(t, w.Flush())
	return out.Bytes()
}

// compactOf returns bufs with every point in compact form, the points of
// equal series sharing one *measure.Series (reused across the buffers).
func compactOf(bufs ...*measure.Buffer) []*measure.Buffer {
	var series []*measure.Series
	seriesOf := func(p *measure.Point) *measure.Series {
		for _, s := range series {
			if s.Metric == p.Metric && s.Resource == p.Resource && s.Consumer == p.Consumer &&
				cmp.Equal(s.Attributes, p.Attributes, cmp.AllowUnexported(measure.AttrValue{})) {
				return s
			}
		}
		s := &measure.Series{Metric: p.Metric, Resource: p.Resource, Consumer: p.Consumer, Attributes: p.Attributes}
		series = append(series, s)
		return s
	}
	out := make([]*measure.Buffer, len(bufs))
	for i, b := range bufs {
		c := &measure.Buffer{}
		for j := range b.Points {
			p := &b.Points[j]
			c.Compact = append(c.Compact, measure.SeriesPoint{Series: seriesOf(p), Time: p.Timestamp.UnixNano(), Value: p.Value})
		}
		out[i] = c
	}
	return out
}

// requireCompactSame checks that bufs in compact form give the same bytes.
func requireCompactSame(t testing.TB, reg *measure.Registry, opts Options, want []byte, bufs ...*measure.Buffer) {
	t.Helper()
	got := writeAll(t, reg, opts, compactOf(bufs...)...)
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Fatalf("compact points written differently (-points +compact):\n%s", diff)
	}
}
