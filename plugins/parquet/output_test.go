package parquet

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/alumet-go/alumet-agent/measure"
)

var t0 = time.Date(2025, 7, 22, 11, 5, 26, 0, time.UTC)

func TestRows(t *testing.T) {
	reg := measure.NewRegistry()
	power := register(t, reg, "wattmetre_power_watt", measure.Plain(measure.Watt), measure.F64)
	count := register(t, reg, "packets", measure.Unit{}, measure.U64)
	node := measure.Resource{Kind: "device_id", ID: "taurus-7"}
	port := measure.Consumer{Kind: "device_origin", ID: "wattmetre1-port6"}
	type tc struct {
		name  string
		point measure.Point
		want  row
	}
	base := row{Metric: "wattmetre_power_watt_W", Timestamp: t0, Value: 130.4, ResourceKind: "device_id",
		ResourceID: "taurus-7", ConsumerKind: "device_origin", ConsumerID: "wattmetre1-port6"}
	with := func(f func(r *row)) row { r := base; f(&r); return r }
	cases := []tc{
		{"kwollect row", measure.Point{Metric: power, Timestamp: t0, Value: measure.Float(130.4), Resource: node, Consumer: port,
			Attributes: []measure.Attribute{str("metric_id", "wattmetre_power_watt")}},
			with(func(r *row) { r.MetricID = ptr("wattmetre_power_watt") })},
		{"nanoseconds kept", measure.Point{Metric: power, Timestamp: t0.Add(123456789), Value: measure.Float(130.4), Resource: node, Consumer: port},
			with(func(r *row) { r.Timestamp = t0.Add(123456789) })},
		{"local machine, u64 value, no unit", measure.Point{Metric: count, Timestamp: t0, Value: measure.Uint(1 << 53),
			Resource: measure.LocalMachine, Consumer: measure.Consumer{Kind: measure.KindLocalMachine}},
			row{Metric: "packets", Timestamp: t0, Value: 1 << 53, ResourceKind: "local_machine", ConsumerKind: "local_machine"}},
		{"run as an integer column", measure.Point{Metric: power, Timestamp: t0, Value: measure.Float(130.4), Resource: node, Consumer: port,
			Attributes: []measure.Attribute{u64("run", 3), str("metric_id", "m")}},
			with(func(r *row) { r.Run, r.MetricID = ptr(int64(3)), ptr("m") })},
		{"run that is not an integer goes to the late column", measure.Point{Metric: power, Timestamp: t0, Value: measure.Float(130.4), Resource: node, Consumer: port,
			Attributes: []measure.Attribute{str("run", "three")}},
			with(func(r *row) { r.Late = ptr(`{"run":"three"}`) })},
		{"run past int64", measure.Point{Metric: power, Timestamp: t0, Value: measure.Float(130.4), Resource: node, Consumer: port,
			Attributes: []measure.Attribute{u64("run", math.MaxUint64)}},
			with(func(r *row) { r.Late = ptr(`{"run":18446744073709551615}`) })},
		{"late attributes, typed and sorted", measure.Point{Metric: power, Timestamp: t0, Value: measure.Float(130.4), Resource: node, Consumer: port,
			Attributes: []measure.Attribute{
				str("zeta", `a "quoted", \ value`+"\n"), u64("cpu", 7),
				{Key: "ratio", Value: measure.AttrValue{Type: measure.AttrF64, F64: 0.5}},
				{Key: "nan", Value: measure.AttrValue{Type: measure.AttrF64, F64: math.NaN()}},
				{Key: "on", Value: measure.AttrValue{Type: measure.AttrBool, Bool: true}},
				{Key: "cores", Value: measure.AttrValue{Type: measure.AttrU64List, List: []uint64{1, 2}}},
				str("metric_id", "m"),
			}},
			with(func(r *row) {
				r.MetricID = ptr("m")
				r.Late = ptr(`{"cores":[1,2],"cpu":7,"nan":"NaN","on":true,"ratio":0.5,"zeta":"a \"quoted\", \\ value\n"}`)
			})},
		{"repeated key: the last wins", measure.Point{Metric: power, Timestamp: t0, Value: measure.Float(130.4), Resource: node, Consumer: port,
			Attributes: []measure.Attribute{str("metric_id", "first"), str("x", "1"), str("metric_id", "last"), str("x", "2")}},
			with(func(r *row) { r.MetricID, r.Late = ptr("last"), ptr(`{"x":"2"}`) })},
		{"a key named like a column goes to the late column", measure.Point{Metric: power, Timestamp: t0, Value: measure.Float(130.4), Resource: node, Consumer: port,
			Attributes: []measure.Attribute{str("value", "v"), str("__late_attributes", "l")}},
			with(func(r *row) { r.Late = ptr(`{"__late_attributes":"l","value":"v"}`) })},
		{"non-string value in a string column: its text", measure.Point{Metric: power, Timestamp: t0, Value: measure.Float(130.4), Resource: node, Consumer: port,
			Attributes: []measure.Attribute{u64("metric_id", 12)}},
			with(func(r *row) { r.MetricID = ptr("12") })},
		{"NaN value", measure.Point{Metric: power, Timestamp: t0, Value: measure.Float(math.NaN()), Resource: node, Consumer: port},
			with(func(r *row) { r.Value = math.NaN() })},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, compact := range []bool{false, true} {
				buf := &measure.Buffer{Points: []measure.Point{c.point}}
				if compact {
					buf = compactOf(buf)
				}
				cfg := testConfig(t.TempDir())
				writeFile(t, cfg, reg, buf)
				got := readRows(t, cfg.OutputPath)
				if diff := cmp.Diff([]row{c.want}, got, cmp.Comparer(func(a, b float64) bool {
					return a == b || math.IsNaN(a) && math.IsNaN(b)
				})); diff != "" {
					t.Fatalf("compact=%v (-want +got):\n%s", compact, diff)
				}
			}
		})
	}
}
