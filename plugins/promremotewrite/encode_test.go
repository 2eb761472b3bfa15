package promremotewrite

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/alumet-go/alumet-agent/measure"
)

type sample struct {
	V  float64
	Ms int64
}

type series struct {
	Labels  []label
	Samples []sample
}

// decode reads a WriteRequest field by field (the e2e tests check the
// encoding against Prometheus and VictoriaMetrics themselves).
func decode(t testing.TB, b []byte) []series {
	t.Helper()
	var out []series
	each(t, b, func(num protowire.Number, v []byte, _ uint64) {
		require.Equal(t, protowire.Number(fWriteTimeseries), num)
		var s series
		each(t, v, func(num protowire.Number, v []byte, _ uint64) {
			switch num {
			case fSeriesLabels:
				var l label
				each(t, v, func(num protowire.Number, v []byte, _ uint64) {
					if num == fLabelName {
						l.name = string(v)
					} else {
						l.value = string(v)
					}
				})
				s.Labels = append(s.Labels, l)
			case fSeriesSamples:
				var sm sample
				each(t, v, func(num protowire.Number, v []byte, u uint64) {
					if num == fSampleValue {
						sm.V = math.Float64frombits(u)
					} else {
						sm.Ms = int64(u)
					}
				})
				s.Samples = append(s.Samples, sm)
			}
		})
		out = append(out, s)
	})
	return out
}

func each(t testing.TB, b []byte, fn func(protowire.Number, []byte, uint64)) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		require.GreaterOrEqual(t, n, 0)
		b = b[n:]
		switch typ {
		case protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			require.GreaterOrEqual(t, m, 0)
			fn(num, v, 0)
			b = b[m:]
		case protowire.Fixed64Type:
			v, m := protowire.ConsumeFixed64(b)
			require.GreaterOrEqual(t, m, 0)
			fn(num, nil, v)
			b = b[m:]
		case protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			require.GreaterOrEqual(t, m, 0)
			fn(num, nil, v)
			b = b[m:]
		default:
			t.Fatalf("unexpected wire type %d", typ)
		}
	}
}

// AddPoint and AddCompact are Write's then the sender's side at once.
func (e *encoder) AddPoint(p *measure.Point) {
	id, _ := e.pointSeries(p)
	sb, _ := e.lookup(id)
	e.add(sb, p.Timestamp.UnixNano(), p.Value.Float64())
}

func (e *encoder) AddCompact(p *measure.SeriesPoint) {
	id, _ := e.compactSeries(p.Series)
	sb, _ := e.lookup(id)
	e.add(sb, p.Time, p.Value.Float64())
}

func str(k, v string) measure.Attribute { return measure.Attribute{Key: k, Value: measure.String(v)} }

func TestEncode(t *testing.T) {
	reg := measure.NewRegistry()
	w, err := reg.Register(measure.Metric{Name: "wattmetre_power_watt", Unit: measure.Plain(measure.Watt), Type: measure.F64})
	require.NoError(t, err)
	r, err := reg.Register(measure.Metric{Name: "rapl.consumed-energy", Unit: measure.Plain(measure.Joule), Type: measure.F64})
	require.NoError(t, err)
	ts := time.Unix(0, 1795556357000123456)
	node7 := measure.Resource{Kind: "device_id", ID: "taurus-7"}
	port := measure.Consumer{Kind: "device_origin", ID: "wattmetre1-port6"}
	ps := []measure.Point{
		{Metric: w, Timestamp: ts, Value: measure.Float(112.73), Resource: node7, Consumer: port, Attributes: []measure.Attribute{str("metric_id", "wattmetre_power_watt")}},
		{Metric: r, Timestamp: ts, Value: measure.Float(3.5), Resource: measure.LocalMachine, Consumer: measure.Consumer(measure.LocalMachine),
			Attributes: []measure.Attribute{str("domain", "package"), str("__name__", "x"), str("9lives", "ü\xff")}},
		{Metric: w, Timestamp: ts.Add(20 * time.Millisecond), Value: measure.Float(math.NaN()), Resource: node7, Consumer: port, Attributes: []measure.Attribute{str("metric_id", "wattmetre_power_watt")}},
		{Metric: w, Timestamp: ts.Add(20*time.Millisecond + 400*time.Microsecond), Value: measure.Float(1), Resource: node7, Consumer: port, Attributes: []measure.Attribute{str("metric_id", "wattmetre_power_watt")}},
	}
	wattLabels := []label{{"__name__", "wattmetre_power_watt"}, {"metric_id", "wattmetre_power_watt"}, {"resource_consumer_id", "wattmetre1-port6"},
		{"resource_consumer_kind", "device_origin"}, {"resource_id", "taurus-7"}, {"resource_kind", "device_id"}}
	want := []series{
		{wattLabels, []sample{{112.73, 1795556357000}, {math.NaN(), 1795556357020}}},
		{[]label{{"__name__", "rapl_consumed_energy"}, {"_lives", "ü\uFFFD"}, {"attr__name__", "x"}, {"domain", "package"},
			{"resource_consumer_kind", "local_machine"}, {"resource_kind", "local_machine"}}, []sample{{3.5, 1795556357000}}},
	}
	e := newEncoder(reg, true)
	for i := range ps {
		e.AddPoint(&ps[i])
	}
	require.Equal(t, 3, e.Samples())
	require.Equal(t, int64(1), e.sameMs, "the sample in the same millisecond is left out")
	opts := []cmp.Option{cmp.AllowUnexported(label{}), cmpopts.EquateNaNs()}
	got := decode(t, e.Finish(nil))
	require.Empty(t, cmp.Diff(want, got, opts...))
	for _, s := range got {
		require.True(t, slices.IsSortedFunc(s.Labels, func(a, b label) int { return cmpString(a.name, b.name) }))
	}
	require.Zero(t, e.Samples())

	// Compact points: the same request.
	e = newEncoder(reg, true)
	ser := map[int]*measure.Series{}
	for _, p := range ps {
		k := 0
		if p.Metric == r {
			k = 1
		}
		if ser[k] == nil {
			ser[k] = &measure.Series{Metric: p.Metric, Resource: p.Resource, Consumer: p.Consumer, Attributes: p.Attributes}
		}
		e.AddCompact(&measure.SeriesPoint{Series: ser[k], Time: p.Timestamp.UnixNano(), Value: p.Value})
	}
	require.Empty(t, cmp.Diff(want, decode(t, e.Finish(nil)), opts...))

	// Without attributes.
	e = newEncoder(reg, false)
	e.AddPoint(&ps[0])
	require.Empty(t, cmp.Diff([]series{{slices.Delete(slices.Clone(wattLabels), 1, 2), []sample{{112.73, 1795556357000}}}}, decode(t, e.Finish(nil)), opts...))
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestNames(t *testing.T) {
	for _, tc := range []struct{ in, metric, label string }{
		{"wattmetre_power_watt", "wattmetre_power_watt", "wattmetre_power_watt"},
		{"a:b", "a:b", "a_b"},
		{"9x", "_x", "_x"},
		{"é-x", "__x", "attr__x"},
		{"", "_", "_"},
		{"__name__", "__name__", "attr__name__"},
	} {
		require.Equal(t, tc.metric, metricName(tc.in), "metric %q", tc.in)
		require.Equal(t, tc.label, labelName(tc.in), "label %q", tc.in)
	}
}

// FuzzEncode: any point gives a request whose labels are valid, sorted,
// unique and UTF-8, with the sample's value and millisecond.
func FuzzEncode(f *testing.F) {
	f.Add("wattmetre_power_watt", "taurus-7", "metric_id", "x", 112.73, int64(1795556357000123456))
	f.Add("\xff", "", "__name__", "\xfe", math.Inf(1), int64(-1))
	f.Add("m", "n", "k", "v", math.NaN(), int64(0))
	f.Fuzz(func(t *testing.T, name, id, k, v string, val float64, ns int64) {
		reg := measure.NewRegistry()
		m, err := reg.Register(measure.Metric{Name: name, Unit: measure.Plain(measure.Watt), Type: measure.F64})
		if err != nil {
			t.Skip()
		}
		e := newEncoder(reg, true)
		e.AddPoint(&measure.Point{Metric: m, Timestamp: time.Unix(0, ns), Value: measure.Float(val),
			Resource: measure.Resource{Kind: "device_id", ID: id}, Attributes: []measure.Attribute{str(k, v), str(k+"2", v)}})
		got := decode(t, e.Finish(nil))
		require.Len(t, got, 1)
		s := got[0]
		names := 0
		for i, l := range s.Labels {
			require.NotEmpty(t, l.value)
			if i > 0 {
				require.Less(t, s.Labels[i-1].name, l.name, "sorted, unique")
			}
			if l.name == "__name__" {
				names++
				require.Regexp(t, `^[a-zA-Z_:][a-zA-Z0-9_:]*$`, l.value)
			} else {
				require.Regexp(t, `^[a-zA-Z_][a-zA-Z0-9_]*$`, l.name)
				require.False(t, strings.HasPrefix(l.name, "__"), "reserved")
			}
			require.True(t, validUTF8(l.value) == l.value)
		}
		require.Equal(t, 1, names)
		require.Empty(t, cmp.Diff([]sample{{val, floorMillis(ns)}}, s.Samples, cmpopts.EquateNaNs()))
	})
}
