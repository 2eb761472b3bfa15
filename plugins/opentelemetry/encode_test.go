package opentelemetry

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"
	colmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/alumet-go/alumet-agent/measure"
)

// AddPoint and AddCompact add a point to the request being built (the
// output numbers series first; the tests go straight to the encoder).
func (e *encoder) AddPoint(p *measure.Point) {
	e.addPoint(e.metric(p.Metric), e.attributesOf(p.Resource, p.Consumer, p.Attributes), p.Timestamp.UnixNano(), p.Value.Float64())
}

func (e *encoder) AddCompact(p *measure.SeriesPoint) {
	s := p.Series
	e.addPoint(e.metric(s.Metric), e.attributesOf(s.Resource, s.Consumer, s.Attributes), p.Time, p.Value.Float64())
}

func str(k, v string) measure.Attribute { return measure.Attribute{Key: k, Value: measure.String(v)} }

// testPoints are Alumet's point P (spec §1), a second node, an unsigned
// counter on local_machine (empty ids) and a point with typed attributes.
func testPoints(t testing.TB, reg *measure.Registry) []measure.Point {
	t.Helper()
	w, err := reg.Register(measure.Metric{Name: "wattmetre_power_watt", Unit: measure.Plain(measure.Watt), Type: measure.F64,
		Description: "Power of the node's wattmeter ports"})
	require.NoError(t, err)
	e, err := reg.Register(measure.Metric{Name: "rapl_consumed_energy", Unit: measure.Unit{Prefix: measure.Milli, Base: measure.Joule}, Type: measure.U64})
	require.NoError(t, err)
	ts := time.Unix(0, 1795556357000000000)
	port := measure.Consumer{Kind: "device_origin", ID: "wattmetre1-port6"}
	return []measure.Point{
		{Metric: w, Timestamp: ts, Value: measure.Float(112.73), Resource: measure.Resource{Kind: "device_id", ID: "taurus-7"}, Consumer: port,
			Attributes: []measure.Attribute{str("metric_id", "wattmetre_power_watt")}},
		{Metric: e, Timestamp: ts.Add(time.Second), Value: measure.Uint(42), Resource: measure.LocalMachine, Consumer: measure.Consumer(measure.LocalMachine),
			Attributes: []measure.Attribute{str("domain", "package_total"), {Key: "n", Value: measure.AttrValue{Type: measure.AttrU64, U64: 3}}, str("blank", "")}},
		{Metric: w, Timestamp: ts.Add(20 * time.Millisecond), Value: measure.Float(math.NaN()), Resource: measure.Resource{Kind: "device_id", ID: "taurus-8"}, Consumer: port},
	}
}

type kv = map[string]string

type wantPoint struct {
	Metric, Unit, Description string
	Time                      uint64
	Value                     float64
	Attrs                     kv
}

// flatten reads a request with the official OTLP definitions.
func flatten(t testing.TB, msg []byte) []wantPoint {
	t.Helper()
	var req colmetrics.ExportMetricsServiceRequest
	require.NoError(t, proto.Unmarshal(msg, &req))
	var out []wantPoint
	require.Len(t, req.ResourceMetrics, 1)
	rm := req.ResourceMetrics[0]
	require.Equal(t, "service.name", rm.Resource.Attributes[0].Key)
	require.Equal(t, "alumet-otlp-grpc", rm.Resource.Attributes[0].Value.GetStringValue())
	require.Len(t, rm.ScopeMetrics, 1)
	sm := rm.ScopeMetrics[0]
	require.Equal(t, "alumet", sm.Scope.Name)
	require.Equal(t, Version, sm.Scope.Version)
	require.Equal(t, "tool", sm.Scope.Attributes[0].Key)
	for _, m := range sm.Metrics {
		g := m.GetGauge()
		require.NotNil(t, g, "metric %s is a gauge", m.Name)
		for _, dp := range g.DataPoints {
			attrs := kv{}
			var keys []string
			for _, a := range dp.Attributes {
				attrs[a.Key] = a.Value.GetStringValue()
				keys = append(keys, a.Key)
			}
			require.IsIncreasing(t, keys, "attributes sorted by key")
			require.Zero(t, dp.StartTimeUnixNano)
			out = append(out, wantPoint{m.Name, m.Unit, m.Description, dp.TimeUnixNano, dp.GetAsDouble(), attrs})
		}
	}
	return out
}

func TestEncode(t *testing.T) {
	reg := measure.NewRegistry()
	ps := testPoints(t, reg)
	p0 := kv{"metric_id": "wattmetre_power_watt", "resource_consumer_id": "wattmetre1-port6", "resource_consumer_kind": "device_origin",
		"resource_id": "taurus-7", "resource_kind": "device_id"}
	p1 := kv{"blank": "empty", "domain": "package_total", "n": "3", "resource_consumer_id": "empty", "resource_consumer_kind": "local_machine",
		"resource_id": "empty", "resource_kind": "local_machine"}
	p2 := kv{"resource_consumer_id": "wattmetre1-port6", "resource_consumer_kind": "device_origin", "resource_id": "taurus-8", "resource_kind": "device_id"}
	desc := "Power of the node's wattmeter ports"
	for _, tc := range []struct {
		name string
		m    mapping
		want []wantPoint
	}{
		{"alumet defaults", mapping{suffix: "_alumet", unitDisplay: true, attributesToLabels: true, version: Version}, []wantPoint{
			// Grouped by metric, in first-seen order.
			{"wattmetre_power_watt_alumet", "W", desc, 1795556357000000000, 112.73, p0},
			{"wattmetre_power_watt_alumet", "W", desc, 1795556357020000000, math.NaN(), p2},
			{"rapl_consumed_energy_alumet", "mJ", "", 1795556358000000000, 42, p1},
		}},
		{"prefix, unique units, no attributes", mapping{prefix: "g5k_", unitDisplay: false, version: Version}, []wantPoint{
			{"g5k_wattmetre_power_watt", "W", desc, 1795556357000000000, 112.73, kv{"resource_consumer_id": "wattmetre1-port6",
				"resource_consumer_kind": "device_origin", "resource_id": "taurus-7", "resource_kind": "device_id"}},
			{"g5k_wattmetre_power_watt", "W", desc, 1795556357020000000, math.NaN(), p2},
			{"g5k_rapl_consumed_energy", "milliJ", "", 1795556358000000000, 42, kv{"resource_consumer_id": "empty",
				"resource_consumer_kind": "local_machine", "resource_id": "empty", "resource_kind": "local_machine"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEncoder(tc.m, reg, false)
			for i := range ps {
				e.AddPoint(&ps[i])
			}
			require.Equal(t, 3, e.Points())
			got := flatten(t, e.Finish(nil))
			require.Empty(t, cmp.Diff(tc.want, got, cmp.Comparer(func(a, b float64) bool { return a == b || a != a && b != b })))
			require.Zero(t, e.Points(), "Finish starts a new request")

			// Compact points give the same request.
			series := make([]*measure.Series, len(ps))
			for i, p := range ps {
				series[i] = &measure.Series{Metric: p.Metric, Resource: p.Resource, Consumer: p.Consumer, Attributes: p.Attributes}
			}
			for i, p := range ps {
				e.AddCompact(&measure.SeriesPoint{Series: series[i], Time: p.Timestamp.UnixNano(), Value: p.Value})
			}
			require.Empty(t, cmp.Diff(tc.want, flatten(t, e.Finish(nil)), cmp.Comparer(func(a, b float64) bool { return a == b || a != a && b != b })))
		})
	}
}

// The official definitions decode the request without unknown fields, and
// marshal it back to the same message.
func TestEncodeRoundTrip(t *testing.T) {
	reg := measure.NewRegistry()
	ps := testPoints(t, reg)
	e := newEncoder(mapping{suffix: "_alumet", unitDisplay: true, attributesToLabels: true, version: Version}, reg, false)
	for i := range ps {
		e.AddPoint(&ps[i])
	}
	msg := e.Finish(nil)
	var req colmetrics.ExportMetricsServiceRequest
	require.NoError(t, proto.Unmarshal(msg, &req))
	again, err := proto.MarshalOptions{Deterministic: true}.Marshal(&req)
	require.NoError(t, err)
	var back colmetrics.ExportMetricsServiceRequest
	require.NoError(t, proto.Unmarshal(again, &back))
	require.Empty(t, cmp.Diff(&req, &back, protocmp.Transform(), cmpopts.EquateNaNs()))
	require.Empty(t, req.ProtoReflect().GetUnknown())
	require.Equal(t, proto.Size(&req), len(msg), "nothing the definitions do not know")
}

// FuzzEncode: any names, units and attribute strings give a request the
// official definitions decode, with the points' values and times.
func FuzzEncode(f *testing.F) {
	f.Add("wattmetre_power_watt", "W", "taurus-7", "metric_id", "x", 112.73, int64(1795556357000000000))
	f.Add("\xff", "", "", "", "", math.Inf(-1), int64(-1))
	f.Fuzz(func(t *testing.T, name, unit, id, k, v string, val float64, ns int64) {
		reg := measure.NewRegistry()
		m, err := reg.Register(measure.Metric{Name: name, Unit: measure.Custom(unit), Type: measure.F64})
		if err != nil {
			t.Skip()
		}
		p := measure.Point{Metric: m, Timestamp: time.Unix(0, ns), Value: measure.Float(val), Resource: measure.Resource{Kind: "device_id", ID: id},
			Attributes: []measure.Attribute{str(k, v)}}
		e := newEncoder(mapping{suffix: "_alumet", attributesToLabels: true, version: Version}, reg, false)
		e.AddPoint(&p)
		var req colmetrics.ExportMetricsServiceRequest
		// Unmarshal checks that strings are UTF-8, as collectors do.
		require.NoError(t, proto.Unmarshal(e.Finish(nil), &req))
		dp := req.ResourceMetrics[0].ScopeMetrics[0].Metrics[0].GetGauge().DataPoints[0]
		if dp.TimeUnixNano != uint64(ns) || !(dp.GetAsDouble() == val || val != val) {
			t.Fatalf("point %d %v, want %d %v", dp.TimeUnixNano, dp.GetAsDouble(), ns, val)
		}
	})
}

// FinishFramed gives the same request as Finish after the frame's room,
// built in place for one metric (the points not copied) and in the
// scratch buffer for several, request after request.
func TestFinishFramed(t *testing.T) {
	reg := measure.NewRegistry()
	ps := testPoints(t, reg)
	m := mapping{suffix: "_alumet", unitDisplay: true, attributesToLabels: true, version: Version}
	one := ps[:0:0]
	for _, p := range ps {
		if p.Metric == ps[0].Metric {
			one = append(one, p)
		}
	}
	require.Less(t, len(one), len(ps), "the test points have several metrics")
	for _, tc := range []struct {
		name    string
		points  []measure.Point
		inPlace bool
	}{
		{"one metric: in place", one, true},
		{"several metrics: in the scratch buffer", ps, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, e := newEncoder(m, reg, false), newEncoder(m, reg, false)
			var scratch []byte
			for round := 0; round < 3; round++ {
				for i := range tc.points {
					ref.AddPoint(&tc.points[i])
					e.AddPoint(&tc.points[i])
				}
				want := ref.Finish(nil)
				got := e.FinishFramed(frameLen, &scratch)
				require.Equal(t, want, got[frameLen:], "round %d", round)
				require.Equal(t, tc.inPlace, len(scratch) == 0 || &got[0] != &scratch[0], "round %d", round)
				require.Zero(t, e.Points(), "a new request starts")
			}
		})
	}
}

// gunzip reads a gzip member with the standard library.
func gunzip(t testing.TB, z []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(z))
	require.NoError(t, err)
	b, err := io.ReadAll(zr)
	require.NoError(t, err)
	return b
}

// zCase is a batch for FinishZ: points of series (each a metric and
// attributes) in the order given.
type zCase struct {
	name   string
	series int // the output's series, metric = series % metrics
	points []zPoint
}

// zBatch is n points of series series in a regular interleaving (a
// wattmeter's nodes), 20 ms apart, with wattmeter-like values.
func zBatch(series, n int, seed uint64) []zPoint {
	r := rand.New(rand.NewPCG(seed, 1))
	ps := make([]zPoint, n)
	for i := range ps {
		ps[i] = zPoint{series: uint32(i % series), ns: 1795556357000000000 + int64(i/series)*20e6 + r.Int64N(1000),
			v: float64(r.IntN(30000)) / 100}
	}
	return ps
}

// checkZ adds tc's points to a gzip encoder and to a plain one, rounds
// times: each FinishZ is, gunzipped by the standard library, the plain
// request, after the frame's room.
func checkZ(t testing.TB, tc zCase, rounds int) {
	reg := measure.NewRegistry()
	var metrics []measure.MetricID
	for _, n := range []string{"wattmetre_power_watt", "bmc_node_power_watt", "pdu_outlet_power_watt"} {
		id, err := reg.Register(measure.Metric{Name: n, Unit: measure.Plain(measure.Watt), Type: measure.F64})
		require.NoError(t, err)
		metrics = append(metrics, id)
	}
	m := mapping{suffix: "_alumet", unitDisplay: true, attributesToLabels: true, version: Version}
	ref, e := newEncoder(m, reg, false), newEncoder(m, reg, true)
	attrs := make([][]byte, tc.series)
	for i := range attrs {
		attrs[i] = ref.attributesOf(measure.Resource{Kind: "device_id", ID: fmt.Sprintf("taurus-%d", i)},
			measure.Consumer{Kind: "device_origin", ID: fmt.Sprintf("wattmetre1-port%d", i)},
			[]measure.Attribute{str("metric_id", "wattmetre_power_watt")})
	}
	var dst []byte
	for round := 0; round < rounds; round++ {
		for _, p := range tc.points {
			id := metrics[int(p.series)%len(metrics)]
			ref.addPoint(ref.metric(id), attrs[p.series], p.ns, p.v)
			e.addZ(id, p.series, attrs[p.series], p.ns, p.v)
		}
		want := ref.Finish(nil)
		got, err := e.FinishZ(frameLen, &dst)
		require.NoError(t, err)
		require.Equal(t, want, gunzip(t, got[frameLen:]), "%s: round %d", tc.name, round)
		require.Zero(t, e.Points(), "a new request starts")
		if testing.Verbose() && round == 0 {
			t.Logf("%s: %d bytes, gzip %d", tc.name, len(want), len(got)-frameLen)
		}
	}
}

// FinishZ's gzip member is Finish's request: one point, several metrics,
// series whose previous point is beyond deflate's window, request after
// request (a series' line in the previous stream is not referred to).
func TestFinishZ(t *testing.T) {
	for _, tc := range []zCase{
		{"one point", 1, []zPoint{{0, 1795556357000000000, 112.73}}},
		{"special values", 2, []zPoint{{0, 0, math.NaN()}, {1, -1, math.Inf(1)}, {0, math.MaxInt64, math.Copysign(0, -1)}, {1, 1, 5e-324}}},
		{"10 series, 3 metrics", 10, zBatch(10, 5000, 1)},
		{"500 series: beyond the window", 500, zBatch(500, 5000, 2)},
		{"one series", 1, zBatch(1, 3000, 3)},
	} {
		t.Run(tc.name, func(t *testing.T) { checkZ(t, tc, 3) })
	}
}

// FuzzFinishZ: any sequence of points gives Finish's request.
func FuzzFinishZ(f *testing.F) {
	f.Add(uint8(10), uint16(100), uint64(1), int64(20e6))
	f.Add(uint8(255), uint16(4000), uint64(2), int64(1))
	f.Fuzz(func(t *testing.T, series uint8, n uint16, seed uint64, step int64) {
		if series == 0 || n == 0 {
			t.Skip()
		}
		r := rand.New(rand.NewPCG(seed, 2))
		ps := make([]zPoint, n)
		for i := range ps {
			ps[i] = zPoint{series: uint32(r.IntN(int(series))), ns: int64(i) * step, v: math.Float64frombits(r.Uint64())}
			if r.IntN(2) == 0 {
				ps[i].v = float64(r.IntN(1000)) / 10
			}
		}
		checkZ(t, zCase{"fuzz", int(series), ps}, 2)
	})
}

// BenchmarkFinishZ: the sender's encoding of a batch of 5000 points of 10
// interleaved series (the reference workload's), gzip and not.
func BenchmarkFinishZ(b *testing.B) {
	reg := measure.NewRegistry()
	id, err := reg.Register(measure.Metric{Name: "wattmetre_power_watt", Unit: measure.Plain(measure.Watt), Type: measure.F64})
	require.NoError(b, err)
	m := mapping{suffix: "_alumet", unitDisplay: true, attributesToLabels: true, version: Version}
	ps := zBatch(10, 5000, 1)
	for _, gz := range []bool{true, false} {
		b.Run(fmt.Sprintf("gzip=%v", gz), func(b *testing.B) {
			e := newEncoder(m, reg, gz)
			attrs := make([][]byte, 10)
			for i := range attrs {
				attrs[i] = e.attributesOf(measure.Resource{Kind: "device_id", ID: fmt.Sprintf("taurus-%d", i)},
					measure.Consumer{Kind: "device_origin", ID: fmt.Sprintf("wattmetre1-port%d", i)},
					[]measure.Attribute{str("metric_id", "wattmetre_power_watt")})
			}
			var dst []byte
			var n int
			for b.Loop() {
				for _, p := range ps {
					if gz {
						e.addZ(id, p.series, attrs[p.series], p.ns, p.v)
					} else {
						e.addPoint(e.metric(id), attrs[p.series], p.ns, p.v)
					}
				}
				var out []byte
				if gz {
					out, _ = e.FinishZ(frameLen, &dst)
				} else {
					out = e.FinishFramed(frameLen, &dst)
				}
				n = len(out)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ps)), "ns/point")
			b.ReportMetric(float64(n)/float64(len(ps)), "bytes/point")
		})
	}
}
