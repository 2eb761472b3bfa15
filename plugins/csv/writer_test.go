package csv

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/measure"
)

func TestSpecExampleExact(t *testing.T) {
	reg := measure.NewRegistry()
	got := writeAll(t, reg, DefaultOptions(), kwollectBuffer(t, reg))
	require.Equal(t, specExample, string(got))
}

func TestLateAfterDomainExact(t *testing.T) {
	reg := measure.NewRegistry()
	got := string(writeAll(t, reg, DefaultOptions(), raplBuffer(t, reg), kwollectBuffer(t, reg)))
	lines := strings.Split(got, "\n")
	require.Equal(t, "metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;domain;__late_attributes", lines[0])
	require.Equal(t, "wattmetre_power_watt_W;2025-07-22T11:05:26Z;130.4;device_id;taurus-7;device_origin;wattmetre1-port6;;metric_id=wattmetre_power_watt", lines[3])
}

// raplBuffer is a first buffer with a domain attribute, from a local source.
func raplBuffer(t testing.TB, reg *measure.Registry) *measure.Buffer {
	id := register(t, reg, "rapl_consumed_energy", measure.Plain(measure.Joule), measure.F64)
	return &measure.Buffer{Points: []measure.Point{
		{
			Metric: id, Timestamp: mustTime(t, "2025-04-25T15:08:53.99636522Z"), Value: measure.Float(12.5),
			Resource: measure.Resource{Kind: "cpu_package", ID: "0"}, Consumer: measure.Consumer(measure.LocalMachine),
			Attributes: []measure.Attribute{str("domain", "package")},
		},
		{
			Metric: id, Timestamp: mustTime(t, "2025-04-25T15:08:54Z"), Value: measure.Float(0.5),
			Resource: measure.Resource{Kind: "dram", ID: "0"}, Consumer: measure.Consumer(measure.LocalMachine),
			Attributes: []measure.Attribute{str("domain", "dram")},
		},
	}}
}

// goldenCase builds the buffers of one golden file.
type goldenCase struct {
	name    string
	opts    Options
	buffers func(t *testing.T, reg *measure.Registry) []*measure.Buffer
	// contains are lines the output must hold, checked on top of the golden
	// file so that a wrong -update cannot hide a regression.
	contains []string
}

func TestGolden(t *testing.T) {
	unitBuffer := func(t *testing.T, reg *measure.Registry) []*measure.Buffer {
		ts := mustTime(t, "2025-08-05T07:44:46.5Z")
		var buf measure.Buffer
		for _, m := range []struct {
			name string
			unit measure.Unit
			v    measure.Value
			typ  measure.ValueType
		}{
			{"kernel_cpu_time", measure.Unit{Prefix: measure.Milli, Base: measure.Second}, measure.Uint(1234), measure.U64},
			{"mem_total", measure.Plain(measure.Byte), measure.Uint(16777216), measure.U64},
			{"cpu_count", measure.Plain(measure.Unity), measure.Uint(32), measure.U64},
			{"bmc_cpu_temp_celsius", measure.Plain(measure.Celsius), measure.Float(41.5), measure.F64},
			{"cpu_percent", measure.Plain(measure.Percent), measure.Float(12.25), measure.F64},
			{"bmc_node_power_watthour_total", measure.Plain(measure.WattHour), measure.Float(1500), measure.F64},
			{"pdu_power", measure.Unit{Prefix: measure.Kilo, Base: measure.Watt}, measure.Float(1.2), measure.F64},
			{"latency", measure.Unit{Prefix: measure.Micro, Base: measure.Second}, measure.Float(3), measure.F64},
			{"prom_default_metrics", measure.Custom("metrics"), measure.Float(7), measure.F64},
		} {
			id := register(t, reg, m.name, m.unit, m.typ)
			buf.Push(measure.Point{Metric: id, Timestamp: ts, Value: m.v,
				Resource: measure.LocalMachine, Consumer: measure.Consumer(measure.LocalMachine)})
		}
		return []*measure.Buffer{&buf}
	}

	cases := []goldenCase{
		{
			name: "spec_example.csv",
			opts: DefaultOptions(),
			buffers: func(t *testing.T, reg *measure.Registry) []*measure.Buffer {
				return []*measure.Buffer{kwollectBuffer(t, reg)}
			},
		},
		{
			name: "late_after_domain.csv",
			opts: DefaultOptions(),
			buffers: func(t *testing.T, reg *measure.Registry) []*measure.Buffer {
				return []*measure.Buffer{raplBuffer(t, reg), kwollectBuffer(t, reg)}
			},
			contains: []string{
				"metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;domain;__late_attributes",
				"rapl_consumed_energy_J;2025-04-25T15:08:53.99636522Z;12.5;cpu_package;0;local_machine;;package;",
				"wattmetre_power_watt_W;2025-07-22T11:05:27.02Z;129.87;device_id;taurus-7;device_origin;wattmetre1-port6;;metric_id=wattmetre_power_watt",
			},
		},
		{
			name: "escaping.csv",
			opts: DefaultOptions(),
			buffers: func(t *testing.T, reg *measure.Registry) []*measure.Buffer {
				id := register(t, reg, "odd", measure.Plain(measure.Watt), measure.F64)
				ts := mustTime(t, "2025-07-22T11:05:26Z")
				first := &measure.Buffer{Points: []measure.Point{{
					Metric: id, Timestamp: ts, Value: measure.Float(1),
					Resource: measure.Resource{Kind: "device_id", ID: "a;b"},
					Consumer: measure.Consumer{Kind: "cgroup", ID: `/say "hi"`},
					Attributes: []measure.Attribute{
						str("semi;key", "x"), str("plain", "line1\nline2"), str("cr", "a\rb"),
						str("plain", "last wins"),
					},
				}}}
				second := &measure.Buffer{Points: []measure.Point{
					{
						Metric: id, Timestamp: ts, Value: measure.Float(2),
						Resource: measure.Resource{Kind: "device_id", ID: "n1"},
						Consumer: measure.Consumer{Kind: "process", ID: "42"},
						Attributes: []measure.Attribute{
							str("zeta", "a,b"), str("alpha", `back\slash`), str("value", "collides"),
							str("plain", `"quoted"`), str("mid", "x;y"), str("alpha", "second, wins"),
							str("__late_attributes", "reserved"),
						},
					},
					{
						Metric: id, Timestamp: ts, Value: measure.Float(3),
						Resource:   measure.Resource{Kind: "device_id", ID: "n1"},
						Consumer:   measure.Consumer{Kind: "process", ID: "42"},
						Attributes: []measure.Attribute{str("nl", "a\nb")},
					},
				}}
				return []*measure.Buffer{first, second}
			},
			contains: []string{
				`metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;cr;plain;"semi;key";__late_attributes`,
				`odd_W;2025-07-22T11:05:26Z;2;device_id;n1;process;42;;"""quoted""";;"__late_attributes=reserved,alpha=second\, wins,mid=x;y,value=collides,zeta=a\,b"`,
			},
		},
		{
			name: "values.csv",
			opts: DefaultOptions(),
			buffers: func(t *testing.T, reg *measure.Registry) []*measure.Buffer {
				u := register(t, reg, "counter", measure.Plain(measure.Joule), measure.U64)
				f := register(t, reg, "gauge", measure.Plain(measure.Watt), measure.F64)
				ts := mustTime(t, "2025-07-22T11:05:26.100Z")
				var buf measure.Buffer
				for _, v := range []measure.Value{
					measure.Uint(0), measure.Uint(42), measure.Uint(math.MaxUint64),
				} {
					buf.Push(measure.Point{Metric: u, Timestamp: ts, Value: v, Resource: measure.LocalMachine, Consumer: measure.Consumer(measure.LocalMachine)})
				}
				for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1.72e9, 0.5, 131, 1e-7, 123456789.125, -2.5} {
					buf.Push(measure.Point{Metric: f, Timestamp: ts, Value: measure.Float(v), Resource: measure.LocalMachine, Consumer: measure.Consumer(measure.LocalMachine)})
				}
				buf.Push(measure.Point{Metric: f, Timestamp: ts, Value: measure.Float(1), Resource: measure.LocalMachine, Consumer: measure.Consumer(measure.LocalMachine),
					Attributes: []measure.Attribute{
						{Key: "a_u64", Value: measure.AttrValue{Type: measure.AttrU64, U64: 7}},
						{Key: "b_f64", Value: measure.AttrValue{Type: measure.AttrF64, F64: math.Inf(-1)}},
						{Key: "c_bool", Value: measure.AttrValue{Type: measure.AttrBool, Bool: true}},
						{Key: "d_list", Value: measure.AttrValue{Type: measure.AttrU64List, List: []uint64{12, 3}}},
					}})
				return []*measure.Buffer{&buf}
			},
			contains: []string{
				"counter_J;2025-07-22T11:05:26.1Z;18446744073709551615;local_machine;;local_machine;;;;;;",
				"gauge_W;2025-07-22T11:05:26.1Z;NaN;local_machine;;local_machine;;;;;;",
				"gauge_W;2025-07-22T11:05:26.1Z;inf;local_machine;;local_machine;;;;;;",
				"gauge_W;2025-07-22T11:05:26.1Z;-inf;local_machine;;local_machine;;;;;;",
				"gauge_W;2025-07-22T11:05:26.1Z;1720000000;local_machine;;local_machine;;;;;;",
				"gauge_W;2025-07-22T11:05:26.1Z;0.5;local_machine;;local_machine;;;;;;",
				"gauge_W;2025-07-22T11:05:26.1Z;131;local_machine;;local_machine;;;;;;",
				"gauge_W;2025-07-22T11:05:26.1Z;0.0000001;local_machine;;local_machine;;;;;;",
				"gauge_W;2025-07-22T11:05:26.1Z;1;local_machine;;local_machine;;7;-inf;true;[12, 3];",
			},
		},
		{
			name:    "units_display.csv",
			opts:    Options{AppendUnitToMetricName: true, UseUnitDisplayName: true},
			buffers: unitBuffer,
			contains: []string{
				"kernel_cpu_time_ms;", "mem_total_B;", "\ncpu_count;", "bmc_cpu_temp_celsius_°C;", "cpu_percent_%;",
				"bmc_node_power_watthour_total_Wh;", "pdu_power_kW;", "latency_μs;", "prom_default_metrics_metrics;",
			},
		},
		{
			name:    "units_unique.csv",
			opts:    Options{AppendUnitToMetricName: true, UseUnitDisplayName: false},
			buffers: unitBuffer,
			contains: []string{
				"kernel_cpu_time_millis;", "mem_total_By;", "cpu_count_1;", "bmc_cpu_temp_celsius_Cel;",
				"bmc_node_power_watthour_total_W.h;", "pdu_power_kiloW;", "latency_micros;",
			},
		},
		{
			name:     "units_no_suffix.csv",
			opts:     Options{AppendUnitToMetricName: false, UseUnitDisplayName: true},
			buffers:  unitBuffer,
			contains: []string{"\nkernel_cpu_time;", "\nmem_total;", "\ncpu_count;", "\nbmc_cpu_temp_celsius;"},
		},
		{
			name: "delimiter_tab_pipe.csv",
			opts: Options{Delimiter: '\t', LateDelimiter: '|', AppendUnitToMetricName: true, UseUnitDisplayName: true},
			buffers: func(t *testing.T, reg *measure.Registry) []*measure.Buffer {
				return []*measure.Buffer{raplBuffer(t, reg), lateBuffer(t, reg)}
			},
			contains: []string{
				"metric\ttimestamp\tvalue\tresource_kind\tresource_id\tconsumer_kind\tconsumer_id\tdomain\t__late_attributes",
				"\tsemi;colon\tk=x,y|other=a\\|b\\|c\n",
			},
		},
		{
			name: "delimiter_comma_semicolon.csv",
			opts: Options{Delimiter: ',', LateDelimiter: ';', AppendUnitToMetricName: true, UseUnitDisplayName: true},
			buffers: func(t *testing.T, reg *measure.Registry) []*measure.Buffer {
				return []*measure.Buffer{raplBuffer(t, reg), lateBuffer(t, reg)}
			},
			contains: []string{
				"metric,timestamp,value,resource_kind,resource_id,consumer_kind,consumer_id,domain,__late_attributes",
				`,semi;colon,"k=x,y;other=a|b|c"` + "\n",
			},
		},
		{
			name: "delimiter_multibyte.csv",
			opts: Options{Delimiter: '§', LateDelimiter: '¦', AppendUnitToMetricName: true, UseUnitDisplayName: true},
			buffers: func(t *testing.T, reg *measure.Registry) []*measure.Buffer {
				return []*measure.Buffer{raplBuffer(t, reg), lateBuffer(t, reg)}
			},
			contains: []string{"metric§timestamp§value§", `§"has§delim"§`},
		},
		{
			// A delimiter found in numbers and timestamps quotes them.
			name: "delimiter_dot.csv",
			opts: Options{Delimiter: '.', LateDelimiter: ',', AppendUnitToMetricName: true, UseUnitDisplayName: true},
			buffers: func(t *testing.T, reg *measure.Registry) []*measure.Buffer {
				return []*measure.Buffer{raplBuffer(t, reg)}
			},
			contains: []string{`rapl_consumed_energy_J."2025-04-25T15:08:53.99636522Z"."12.5".cpu_package.0.local_machine..package.`},
		},
		{
			// Empty buffers write nothing, not even the header: the first
			// non-empty one decides the columns. local_machine ids are empty.
			name: "empty_then_local.csv",
			opts: DefaultOptions(),
			buffers: func(t *testing.T, reg *measure.Registry) []*measure.Buffer {
				id := register(t, reg, "cpu_time", measure.Unit{Prefix: measure.Milli, Base: measure.Second}, measure.U64)
				b := &measure.Buffer{Points: []measure.Point{{
					Metric: id, Timestamp: mustTime(t, "2025-07-22T11:05:26Z"), Value: measure.Uint(10),
					Resource: measure.LocalMachine, Consumer: measure.Consumer(measure.LocalMachine),
					Attributes: []measure.Attribute{str("kind", "user")},
				}}}
				return []*measure.Buffer{{}, nil, {Points: []measure.Point{}}, b}
			},
			contains: []string{
				"metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;kind;__late_attributes\n",
				"cpu_time_ms;2025-07-22T11:05:26Z;10;local_machine;;local_machine;;user;\n",
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := measure.NewRegistry()
			got := writeAll(t, reg, tc.opts, tc.buffers(t, reg)...)
			checkGolden(t, tc.name, got)
			for _, c := range tc.contains {
				require.Contains(t, string(got), c)
			}
		})
	}
}

// lateBuffer has attributes besides domain, with both delimiters in them.
func lateBuffer(t testing.TB, reg *measure.Registry) *measure.Buffer {
	id := register(t, reg, "rapl_consumed_energy", measure.Plain(measure.Joule), measure.F64)
	return &measure.Buffer{Points: []measure.Point{{
		Metric: id, Timestamp: mustTime(t, "2025-04-25T15:08:55+02:00"), Value: measure.Float(3.25),
		Resource: measure.Resource{Kind: "cpu_package", ID: "1"}, Consumer: measure.Consumer{Kind: "device_origin", ID: "has§delim"},
		Attributes: []measure.Attribute{str("domain", "dup"), str("k", "x,y"), str("domain", "semi;colon"), str("other", "a|b|c")},
	}}}
}

func TestEmptyBuffersOnly(t *testing.T) {
	reg := measure.NewRegistry()
	var out bytes.Buffer
	w := NewWriter(&out, reg, DefaultOptions())
	require.NoError(t, w.WriteBuffer(nil))
	require.NoError(t, w.WriteBuffer(&measure.Buffer{}))
	require.NoError(t, w.Flush())
	require.False(t, w.HeaderWritten())
	require.Empty(t, out.Bytes())
}

func TestUnknownMetric(t *testing.T) {
	reg := measure.NewRegistry()
	buf := kwollectBuffer(t, reg)
	buf.Points[1].Metric = 99
	var out bytes.Buffer
	w := NewWriter(&out, reg, DefaultOptions())
	err := w.WriteBuffer(buf)
	require.ErrorContains(t, err, "metric id 99 is not registered")
	require.NoError(t, w.Flush())
	// The other rows are written.
	require.Equal(t, 3, strings.Count(out.String(), "\n"))
}

func TestMetricRegisteredLater(t *testing.T) {
	// Sources may register metrics while the output runs: the cache must
	// resolve ids it has not seen yet.
	reg := measure.NewRegistry()
	got := string(writeAll(t, reg, DefaultOptions(), raplBuffer(t, reg), kwollectBuffer(t, reg), raplBuffer(t, reg)))
	require.Equal(t, 3, strings.Count(got, "wattmetre_power_watt_W;"))
	require.Equal(t, 4, strings.Count(got, "rapl_consumed_energy_J;"))
}

func TestAssumeHeader(t *testing.T) {
	reg := measure.NewRegistry()
	var out bytes.Buffer
	w := NewWriter(&out, reg, DefaultOptions())
	// An existing header may hold a column named like a fixed one (Alumet
	// makes one for such an attribute) or a repeated one: they stay empty.
	w.AssumeHeader([]string{"domain", "value", "metric_id", "domain"})
	require.True(t, w.HeaderWritten())
	b := kwollectBuffer(t, reg)
	b.Points = b.Points[:1]
	b.Points[0].Attributes = append(b.Points[0].Attributes, str("value", "v"), str("domain", "d"), str("new", "n"))
	require.NoError(t, w.WriteBuffer(b))
	require.NoError(t, w.Flush())
	require.Equal(t, "wattmetre_power_watt_W;2025-07-22T11:05:26Z;130.4;device_id;taurus-7;device_origin;wattmetre1-port6;d;;wattmetre_power_watt;;new=n,value=v\n", out.String())
	require.Equal(t, []string{"domain", "value", "metric_id", "domain"}, w.Header())
}

func TestNewWriterPanicsOnBadDelimiters(t *testing.T) {
	reg := measure.NewRegistry()
	for _, o := range []Options{{Delimiter: '"'}, {LateDelimiter: '\n'}, {Delimiter: ',', LateDelimiter: ','}, {Delimiter: -1}} {
		require.Panics(t, func() { NewWriter(&bytes.Buffer{}, reg, o) }, "%+v", o)
	}
}

type failingWriter struct{ err error }

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }

func TestWriterErrorReturned(t *testing.T) {
	reg := measure.NewRegistry()
	boom := errors.New("boom")
	w := NewWriter(failingWriter{boom}, reg, Options{BufferSize: 16})
	require.ErrorIs(t, w.WriteBuffer(kwollectBuffer(t, reg)), boom)
	require.ErrorIs(t, w.Flush(), boom)
}
