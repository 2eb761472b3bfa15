package kwollectoutput

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/kwollect"
	"github.com/alumet-go/alumet-agent/kwollect/emulator"
	"github.com/alumet-go/alumet-agent/kwollect/emulator/emutest"
	"github.com/alumet-go/alumet-agent/measure"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func str(k, v string) measure.Attribute { return measure.Attribute{Key: k, Value: measure.String(v)} }

// testPoints: energy-report's total of a run (the natural use), a RAPL
// counter on local_machine with typed attributes, a NaN and a value that
// needs all its digits.
func testPoints(t testing.TB, reg *measure.Registry, at time.Time) []measure.Point {
	t.Helper()
	e, err := reg.Register(measure.Metric{Name: "wattmetre_power_watt_energy", Unit: measure.Plain(measure.Joule), Type: measure.F64})
	require.NoError(t, err)
	r, err := reg.Register(measure.Metric{Name: "rapl_consumed_energy", Unit: measure.Plain(measure.Joule), Type: measure.F64})
	require.NoError(t, err)
	c, err := reg.Register(measure.Metric{Name: "app_phase", Unit: measure.Plain(measure.Unity), Type: measure.U64})
	require.NoError(t, err)
	node := measure.Resource{Kind: "device_id", ID: "taurus-7"}
	return []measure.Point{
		{Metric: e, Timestamp: at, Value: measure.Float(12345.678), Resource: node, Consumer: measure.Consumer{Kind: "device_origin", ID: "wattmetre1-port6"},
			Attributes: []measure.Attribute{str("metric_id", "wattmetre_power_watt_energy"), {Key: "run", Value: measure.AttrValue{Type: measure.AttrU64, U64: 2}}}},
		{Metric: r, Timestamp: at.Add(250 * time.Millisecond), Value: measure.Float(0.1 + 0.2), Resource: measure.LocalMachine, Consumer: measure.Consumer(measure.LocalMachine),
			Attributes: []measure.Attribute{str("domain", "package_total"), {Key: "ok", Value: measure.AttrValue{Type: measure.AttrBool, Bool: true}},
				{Key: "f", Value: measure.AttrValue{Type: measure.AttrF64, F64: 1.5}}, {Key: "cpus", Value: measure.AttrValue{Type: measure.AttrU64List, List: []uint64{0, 1}}}}},
		{Metric: r, Timestamp: at.Add(time.Second), Value: measure.Float(math.NaN()), Resource: measure.LocalMachine, Consumer: measure.Consumer(measure.LocalMachine)},
		{Metric: c, Timestamp: at.Add(2 * time.Second), Value: measure.Uint(3), Resource: node, Consumer: measure.Consumer{Kind: "process", ID: "4242"},
			Attributes: []measure.Attribute{str("step", "compute \"main\"")}},
	}
}

func encodeAll(reg *measure.Registry, ps []measure.Point, appendUnit, display bool) []byte {
	e := newEncoder(reg, "taurus-7", appendUnit, display)
	b := []byte{'['}
	for i := range ps {
		if i > 0 {
			b = append(b, ',')
		}
		b = e.appendPoint(b, &ps[i])
	}
	return append(b, ']')
}

func TestGolden(t *testing.T) {
	reg := measure.NewRegistry()
	got := encodeAll(reg, testPoints(t, reg, time.Unix(1727941961, 0)), true, true)
	require.True(t, json.Valid(got))
	var pretty bytes.Buffer
	require.NoError(t, json.Indent(&pretty, got, "", " "))
	path := filepath.Join("testdata", "points.json")
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update")
	require.Equal(t, string(want), string(got), "indented:\n%s", pretty.String())
}

func TestMetricIDs(t *testing.T) {
	reg := measure.NewRegistry()
	ms, err := reg.Register(measure.Metric{Name: "latency", Unit: measure.Unit{Prefix: measure.Milli, Base: measure.Second}, Type: measure.F64})
	require.NoError(t, err)
	for _, tc := range []struct {
		appendUnit, display bool
		want                string
	}{{true, true, "latency_ms"}, {true, false, "latency_millis"}, {false, true, "latency"}} {
		e := newEncoder(reg, "n", tc.appendUnit, tc.display)
		b := e.appendPoint(nil, &measure.Point{Metric: ms, Timestamp: time.Unix(1, 0), Value: measure.Float(1)})
		var obj map[string]any
		require.NoError(t, json.Unmarshal(b, &obj))
		require.Equal(t, tc.want, obj["metric_id"])
	}
}

// Compact points give the bytes their points give.
func TestCompactSameBytes(t *testing.T) {
	reg := measure.NewRegistry()
	ps := testPoints(t, reg, time.Unix(1727941961, 0))
	want := encodeAll(reg, ps, true, true)
	e := newEncoder(reg, "taurus-7", true, true)
	got := []byte{'['}
	for i, p := range ps {
		if i > 0 {
			got = append(got, ',')
		}
		s := &measure.Series{Metric: p.Metric, Resource: p.Resource, Consumer: p.Consumer, Attributes: p.Attributes}
		got = e.appendCompact(got, &measure.SeriesPoint{Series: s, Time: p.Timestamp.UnixNano(), Value: p.Value})
	}
	require.Equal(t, string(want), string(append(got, ']')))
}

// The emulator (Kwollect's POST semantics) takes the body, and serves the
// rows back through GET: the timestamps to the microsecond, the values,
// the labels with their JSON types.
func TestEmulatorRoundTrip(t *testing.T) {
	srv := emutest.Start(t, emulator.Config{Seed: 1})
	reg := measure.NewRegistry()
	at := time.Now().Add(-time.Minute).Truncate(time.Second).Add(123456 * time.Microsecond)
	ps := testPoints(t, reg, at)
	body := encodeAll(reg, ps, true, true)
	resp, err := http.Post(srv.URL+"/sites/lyon/metrics", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	c, err := kwollect.NewClient(kwollect.Options{BaseURL: srv.URL})
	require.NoError(t, err)
	var rows []kwollect.Row
	_, err = c.Stream(context.Background(), kwollect.Query{Site: "lyon", Nodes: []string{"taurus-7"},
		Metrics: []string{"wattmetre_power_watt_energy_J", "rapl_consumed_energy_J", "app_phase"},
		Start:   at.Add(-time.Second), End: at.Add(5 * time.Second)}, func(r *kwollect.Row) error {
		rows = append(rows, *r)
		return nil
	})
	require.NoError(t, err)
	type got struct {
		TS     time.Time
		Metric string
		Value  float64
		Labels map[string]string
	}
	var gs []got
	for _, r := range rows {
		l := map[string]string{}
		for _, x := range r.Labels {
			l[x.Key] = x.Value
		}
		gs = append(gs, got{r.Timestamp.UTC(), r.MetricID, r.Value, l})
	}
	lm := map[string]string{"ressource_kind": "local_machine", "ressource_id": "", "consumer_kind": "local_machine", "consumer_id": ""}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	want := []got{
		{at.UTC(), "wattmetre_power_watt_energy_J", 12345.678, map[string]string{"ressource_kind": "device_id", "ressource_id": "taurus-7",
			"consumer_kind": "device_origin", "consumer_id": "wattmetre1-port6", "metric_id": "wattmetre_power_watt_energy", "run": "2"}},
		{at.Add(250 * time.Millisecond).UTC(), "rapl_consumed_energy_J", 0.1 + 0.2, with(lm, "domain", "package_total", "ok", "true", "f", "1.5", "cpus", "[0,1]")},
		{at.Add(time.Second).UTC(), "rapl_consumed_energy_J", math.NaN(), lm},
		{at.Add(2 * time.Second).UTC(), "app_phase", 3, map[string]string{"ressource_kind": "device_id", "ressource_id": "taurus-7",
			"consumer_kind": "process", "consumer_id": "4242", "step": `compute "main"`}},
	}
	require.Empty(t, cmp.Diff(want, gs, cmp.Comparer(func(a, b float64) bool { return a == b || a != a && b != b })))
}

func TestAppendEpoch(t *testing.T) {
	for _, tc := range []struct {
		ns   int64
		want string
	}{{1727941961250000000, "1727941961.25"}, {1727941961000000000, "1727941961"}, {1, "0.000000001"}, {-1, "-0.000000001"}, {-1e9, "-1"}, {-1500000000, "-1.5"}, {math.MinInt64, "-9223372036.854775808"}} {
		got := appendEpoch(nil, tc.ns)
		require.Equal(t, tc.want, string(got))
		f, err := strconv.ParseFloat(string(got), 64)
		require.NoError(t, err)
		require.InDelta(t, float64(tc.ns)/1e9, f, 1e-6)
	}
}

func TestHostSite(t *testing.T) {
	for _, tc := range []struct{ fqdn, host, site string }{
		{"taurus-7.lyon.grid5000.fr", "taurus-7", "lyon"},
		{"taurus-7", "taurus-7", "CHANGEME"},
		{"laptop.", "laptop", "CHANGEME"},
	} {
		h, s := hostSite(tc.fqdn)
		require.Equal(t, tc.host, h)
		require.Equal(t, tc.site, s)
	}
}

// FuzzObject: any point gives one valid JSON object whose timestamp is the
// point's to the nanosecond.
func FuzzObject(f *testing.F) {
	f.Add("taurus-7", "k", "v", 112.73, int64(1727941961250000000))
	f.Add("\xff", "\x00", "\"", math.Inf(1), int64(math.MinInt64))
	f.Fuzz(func(t *testing.T, id, k, v string, val float64, ns int64) {
		reg := measure.NewRegistry()
		m, err := reg.Register(measure.Metric{Name: "m", Unit: measure.Custom(k), Type: measure.F64})
		require.NoError(t, err)
		e := newEncoder(reg, id, true, true)
		b := e.appendPoint(nil, &measure.Point{Metric: m, Timestamp: time.Unix(0, ns), Value: measure.Float(val),
			Resource: measure.Resource{Kind: "device_id", ID: id}, Attributes: []measure.Attribute{str(k, v)}})
		var obj struct {
			Timestamp json.Number
			Value     *float64
		}
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		require.NoError(t, d.Decode(&obj), "%s", b)
		require.Equal(t, string(appendEpoch(nil, ns)), obj.Timestamp.String())
		if math.IsNaN(val) || math.IsInf(val, 0) {
			require.Nil(t, obj.Value)
		} else {
			require.Equal(t, val, *obj.Value)
		}
	})
}

// device_id: a point on a node is that node's; any other the hostname's.
func TestDeviceID(t *testing.T) {
	reg := measure.NewRegistry()
	m, err := reg.Register(measure.Metric{Name: "x", Unit: measure.Plain(measure.Joule), Type: measure.F64})
	require.NoError(t, err)
	e := newEncoder(reg, "flyon", true, true)
	for _, tc := range []struct {
		r    measure.Resource
		want string
	}{{measure.Resource{Kind: "device_id", ID: "taurus-8"}, "taurus-8"}, {measure.LocalMachine, "flyon"}, {measure.Resource{Kind: "cpu_package", ID: "0"}, "flyon"}} {
		var obj struct {
			DeviceID string `json:"device_id"`
		}
		require.NoError(t, json.Unmarshal(e.appendPoint(nil, &measure.Point{Metric: m, Timestamp: time.Unix(1, 0), Value: measure.Float(1), Resource: tc.r}), &obj))
		require.Equal(t, tc.want, obj.DeviceID)
	}
}
