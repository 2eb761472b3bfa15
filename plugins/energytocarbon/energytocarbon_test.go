package energytocarbon

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/testkit"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
	"github.com/alumet-go/alumet-agent/pipeline/pipelinetest"
	"github.com/alumet-go/alumet-agent/plugin"
	"github.com/alumet-go/alumet-agent/plugins/csv"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// metrics are the test's metrics, registered in a fresh registry.
type metrics struct {
	reg                                 *measure.Registry
	joules, milli, kilo, u64, watts, wh measure.MetricID
	custom, percent                     measure.MetricID
}

func newMetrics(t *testing.T) metrics {
	t.Helper()
	reg := measure.NewRegistry()
	r := func(name string, u measure.Unit, typ measure.ValueType) measure.MetricID {
		id, err := reg.Register(measure.Metric{Name: name, Unit: u, Type: typ, Semantics: measure.Delta})
		require.NoError(t, err)
		return id
	}
	return metrics{
		reg:     reg,
		joules:  r("rapl_consumed_energy", measure.Plain(measure.Joule), measure.F64),
		milli:   r("rapl_consumed_energy_prefixed", measure.Unit{Prefix: measure.Milli, Base: measure.Joule}, measure.F64),
		kilo:    r("node_energy", measure.Unit{Prefix: measure.Kilo, Base: measure.Joule}, measure.F64),
		u64:     r("energy_counter", measure.Unit{Prefix: measure.Micro, Base: measure.Joule}, measure.U64),
		watts:   r("wattmetre_power_watt", measure.Plain(measure.Watt), measure.F64),
		wh:      r("bmc_node_power_watthour_total", measure.Plain(measure.WattHour), measure.F64),
		custom:  r("joules_like", measure.Custom("joules"), measure.F64),
		percent: r("cpu_usage_percent", measure.Plain(measure.Unity), measure.F64),
	}
}

var t0 = time.Date(2025, 5, 2, 0, 0, 1, 0, time.UTC)

func attr(k, v string) measure.Attribute { return measure.Attribute{Key: k, Value: measure.String(v)} }

func energyPoint(id measure.MetricID, sec int, v measure.Value, domain string) measure.Point {
	return measure.Point{Metric: id, Timestamp: t0.Add(time.Duration(sec) * time.Second), Value: v,
		Resource: measure.LocalMachine, Consumer: measure.Consumer{Kind: measure.KindLocalMachine},
		Attributes: []measure.Attribute{attr("domain", domain)}}
}

// alumet is Alumet's formula, computed at run time (Go would fold a
// constant expression exactly, not in float64 steps).
func alumet(v, factor, intensity float64) float64 { return v / JoulesPerKWh * factor * intensity }

// carbonOf is energyPoint's carbon point: the same but metric and value.
func carbonOf(id measure.MetricID, p measure.Point, v float64) measure.Point {
	p.Metric, p.Value = id, measure.Float(v)
	return p
}

// Alumet's test cases (tests/transform.rs), for each of its three
// intensities, and what it does not test: other prefixes, u64 values,
// units that are not joules, values that are not numbers.
func TestApply(t *testing.T) {
	m := newMetrics(t)
	for _, intensity := range []float64{475, 56.039, 100} {
		tr, err := NewTransform(m.reg, intensity)
		require.NoError(t, err)
		c := tr.id
		f := measure.Float
		tests := []struct {
			name string
			in   []measure.Point
			want []measure.Point // appended after in
		}{
			{name: "Alumet's test 1: joules, usage ignored",
				in: []measure.Point{
					energyPoint(m.joules, 0, f(0), "pp0"),
					energyPoint(m.joules, 1, f(100), "pp0"),
					energyPoint(m.percent, 0, f(50), "total"),
				},
				want: []measure.Point{
					carbonOf(c, energyPoint(m.joules, 0, f(0), "pp0"), 0),
					carbonOf(c, energyPoint(m.joules, 1, f(100), "pp0"), alumet(100, 1, intensity)),
				}},
			{name: "Alumet's test 3: millijoules",
				in: []measure.Point{
					energyPoint(m.joules, 0, f(0), "pp0"),
					energyPoint(m.milli, 1, f(2000.5), "dram"),
					energyPoint(m.joules, 2, f(132.456), "pp0"),
					energyPoint(m.percent, 2, f(80), "total"),
				},
				want: []measure.Point{
					carbonOf(c, energyPoint(m.joules, 0, f(0), "pp0"), 0),
					carbonOf(c, energyPoint(m.milli, 1, f(2000.5), "dram"), alumet(2000.5, 1e-3, intensity)),
					carbonOf(c, energyPoint(m.joules, 2, f(132.456), "pp0"), alumet(132.456, 1, intensity)),
				}},
			{name: "kilojoules and u64 microjoules",
				in: []measure.Point{
					energyPoint(m.kilo, 0, f(3.6), "node"),
					energyPoint(m.u64, 0, measure.Uint(3_600_000_000), "pkg"),
				},
				want: []measure.Point{
					carbonOf(c, energyPoint(m.kilo, 0, f(3.6), "node"), alumet(3.6, 1e3, intensity)),
					carbonOf(c, energyPoint(m.u64, 0, measure.Uint(3_600_000_000), "pkg"), alumet(3.6e9, 1e-6, intensity)),
				}},
			{name: "not joules: W, Wh, a custom unit, unity",
				in: []measure.Point{
					energyPoint(m.watts, 0, f(130), "x"),
					energyPoint(m.wh, 0, f(1000), "x"),
					energyPoint(m.custom, 0, f(1000), "x"),
					energyPoint(m.percent, 0, f(1000), "x"),
				}},
			{name: "NaN and infinities give no carbon point",
				in: []measure.Point{
					energyPoint(m.joules, 0, f(math.NaN()), "pp0"),
					energyPoint(m.joules, 1, f(math.Inf(1)), "pp0"),
					energyPoint(m.milli, 2, f(math.Inf(-1)), "dram"),
					energyPoint(m.joules, 3, f(-7.2e6), "pp0"),
				},
				want: []measure.Point{
					carbonOf(c, energyPoint(m.joules, 3, f(-7.2e6), "pp0"), alumet(-7.2e6, 1, intensity)),
				}},
			{name: "a metric the registry does not know",
				in: []measure.Point{energyPoint(measure.MetricID(1000), 0, f(1), "x")}},
			{name: "empty buffer"},
		}
		for _, tt := range tests {
			t.Run(tt.name+"/"+measure.Float(intensity).String(), func(t *testing.T) {
				buf := &measure.Buffer{Points: append([]measure.Point(nil), tt.in...)}
				require.NoError(t, tr.Apply(buf))
				want := append(append([]measure.Point(nil), tt.in...), tt.want...)
				require.Empty(t, cmp.Diff(want, buf.Points, cmp.AllowUnexported(measure.Value{}), cmp.Comparer(func(a, b float64) bool {
					return a == b || (math.IsNaN(a) && math.IsNaN(b))
				})))
				require.Empty(t, buf.Compact)
			})
		}
	}
}

// The formula is Alumet's to the bit: v / 3.6e6 × prefix × intensity, in
// that order.
func TestCarbonIsAlumets(t *testing.T) {
	m := newMetrics(t)
	tr, err := NewTransform(m.reg, 56.039)
	require.NoError(t, err)
	for _, tt := range []struct {
		id     measure.MetricID
		v      float64
		factor float64
	}{
		{m.joules, 200.12, 1}, {m.milli, 2000.5, 1e-3}, {m.kilo, 0.1, 1e3}, {m.joules, 1e-9, 1},
		{m.milli, 7, 1e-3}, // the prefix applied first would give ...224e-07, not ...221e-07
	} {
		buf := &measure.Buffer{Points: []measure.Point{energyPoint(tt.id, 0, measure.Float(tt.v), "pp0")}}
		require.NoError(t, tr.Apply(buf))
		require.Len(t, buf.Points, 2)
		require.Equal(t, math.Float64bits(alumet(tt.v, tt.factor, 56.039)), math.Float64bits(buf.Points[1].Value.Float64()))
		require.Equal(t, measure.F64, buf.Points[1].Value.Type())
	}
	v, f, i := 7.0, 1e-3, 56.039
	require.NotEqual(t, alumet(v, f, i), v*f/JoulesPerKWh*i, "the case above tells the orders apart")
}

// A carbon point has attributes of its own: changing them does not change
// the energy point's, which sources share between points.
func TestApplyCopiesAttributes(t *testing.T) {
	m := newMetrics(t)
	tr, err := NewTransform(m.reg, 475)
	require.NoError(t, err)
	shared := []measure.Attribute{attr("domain", "package_total")}
	buf := &measure.Buffer{Points: []measure.Point{{Metric: m.joules, Timestamp: t0, Value: measure.Float(1), Attributes: shared}}}
	require.NoError(t, tr.Apply(buf))
	require.Len(t, buf.Points, 2)
	buf.Points[1].Attributes[0].Value = measure.String("changed")
	require.Equal(t, "package_total", shared[0].Value.Str)
}

// Compact points get compact carbon points, after the compact points, of
// one carbon series per energy series; the Points part is handled as
// above.
func TestApplyCompact(t *testing.T) {
	m := newMetrics(t)
	tr, err := NewTransform(m.reg, 100)
	require.NoError(t, err)
	res := measure.Resource{Kind: "cpu_package", ID: "0"}
	pkg := &measure.Series{Metric: m.joules, Resource: res, Consumer: measure.Consumer{Kind: measure.KindLocalMachine},
		Attributes: []measure.Attribute{attr("domain", "package")}}
	dram := &measure.Series{Metric: m.milli, Resource: res, Attributes: []measure.Attribute{attr("domain", "dram")}}
	watts := &measure.Series{Metric: m.watts, Resource: measure.Resource{Kind: "device_id", ID: "taurus-7"}}
	const ns = int64(1_746_144_001_000_000_000)
	sp := func(s *measure.Series, i int64, v float64) measure.SeriesPoint {
		return measure.SeriesPoint{Series: s, Time: ns + i, Value: measure.Float(v)}
	}
	buf := &measure.Buffer{
		Points: []measure.Point{energyPoint(m.joules, 0, measure.Float(36), "pp0")},
		Compact: []measure.SeriesPoint{
			sp(pkg, 0, 3.6e6), sp(watts, 0, 130), sp(dram, 1, 3.6e6), sp(pkg, 2, math.NaN()), sp(pkg, 3, 7.2e6),
		},
	}
	require.NoError(t, tr.Apply(buf))
	require.Len(t, buf.Points, 2)
	require.Equal(t, alumet(36, 1, 100), buf.Points[1].Value.Float64())

	require.Len(t, buf.Compact, 8)
	added := buf.Compact[5:]
	require.Equal(t, []int64{ns, ns + 1, ns + 3}, []int64{added[0].Time, added[1].Time, added[2].Time})
	require.Equal(t, []float64{100, 0.1, 200}, []float64{added[0].Value.Float64(), added[1].Value.Float64(), added[2].Value.Float64()})
	require.Same(t, added[0].Series, added[2].Series, "one carbon series per energy series")
	require.NotSame(t, added[0].Series, added[1].Series)
	require.Equal(t, measure.Series{Metric: tr.id, Resource: res, Consumer: pkg.Consumer, Attributes: pkg.Attributes}, *added[0].Series)
	require.Equal(t, tr.id, added[1].Series.Metric)
	require.Equal(t, "dram", added[1].Series.Attributes[0].Value.Str)

	// The next buffer's points of the same series reuse the carbon series.
	next := &measure.Buffer{Compact: []measure.SeriesPoint{sp(pkg, 4, 1)}}
	require.NoError(t, tr.Apply(next))
	require.Len(t, next.Compact, 2)
	require.Same(t, added[0].Series, next.Compact[1].Series)
}

// The carbon series cache starts afresh when full instead of growing.
func TestSeriesCacheBounded(t *testing.T) {
	m := newMetrics(t)
	tr, err := NewTransform(m.reg, 100)
	require.NoError(t, err)
	for i := range maxSeries + 10 {
		s := &measure.Series{Metric: m.joules, Resource: measure.Resource{Kind: "n", ID: measure.Uint(uint64(i)).String()}}
		require.NoError(t, tr.Apply(&measure.Buffer{Compact: []measure.SeriesPoint{{Series: s, Value: measure.Float(1)}}}))
		require.LessOrEqual(t, len(tr.series), maxSeries)
	}
}

// In a pipeline whose outputs read compact points, the transform keeps the
// compact path (the source may emit them); with an output of Points only,
// the pipeline expands them before it and the carbon points are Points.
func TestPipeline(t *testing.T) {
	for _, compactOut := range []bool{true, false} {
		t.Run(map[bool]string{true: "compact output", false: "points output"}[compactOut], func(t *testing.T) {
			m := newMetrics(t)
			b := pipeline.NewBuilder(m.reg, 4, slog.New(slog.DiscardHandler))
			series := &measure.Series{Metric: m.joules, Resource: measure.LocalMachine, Attributes: []measure.Attribute{attr("domain", "package_total")}}
			var accepted bool
			require.NoError(t, b.AddSource("src", sourceFunc(func(ctx context.Context, out pipeline.Emitter) error {
				ce, ok := out.(pipeline.CompactEmitter)
				accepted = ok && ce.AcceptsCompact()
				buf := &measure.Buffer{Compact: []measure.SeriesPoint{{Series: series, Time: t0.UnixNano(), Value: measure.Float(7.2e6)}}}
				return out.Emit(ctx, buf)
			})))
			dir := &plugin.Directory{}
			cfg := &Config{Mode: ModeCountry, Country: &CountryConfig{Code: "FRA"}}
			require.NoError(t, Factory().Start(context.Background(), cfg, plugin.Env{Pipeline: b, Logger: slog.New(slog.DiscardHandler), Directory: dir}))
			var rec *pipelinetest.Recorder
			if compactOut {
				cr := &pipelinetest.CompactRecorder{}
				rec = &cr.Recorder
				require.NoError(t, b.AddOutput("out", cr))
			} else {
				rec = &pipelinetest.Recorder{}
				require.NoError(t, b.AddOutput("out", rec))
			}
			p := b.Start(context.Background())
			require.NoError(t, p.Stop(context.Background()))
			require.Equal(t, compactOut, accepted)
			bufs := rec.Buffers()
			require.Len(t, bufs, 1)
			if compactOut {
				require.Len(t, bufs[0].Compact, 2)
				require.Empty(t, bufs[0].Points)
			} else {
				require.Len(t, bufs[0].Points, 2)
				require.Empty(t, bufs[0].Compact)
			}
			pts := rec.Points()
			require.Len(t, pts, 2)
			carbon, ok := m.reg.ByName(MetricName)
			require.True(t, ok)
			require.Equal(t, carbon.ID, pts[1].Metric)
			require.Equal(t, 2*56.039, pts[1].Value.Float64())
			require.Equal(t, "package_total", pts[1].Attributes[0].Value.Str)
			require.True(t, pts[1].Timestamp.Equal(t0))
		})
	}
}

type sourceFunc func(ctx context.Context, out pipeline.Emitter) error

func (f sourceFunc) Run(ctx context.Context, out pipeline.Emitter) error { return f(ctx, out) }

// Start registers the metric, adds the transform and records the intensity
// in the Directory, for each mode.
func TestStart(t *testing.T) {
	tests := []struct {
		name string
		cfg  *Config
		want plugin.CarbonIntensity
	}{
		{"world_avg", DefaultConfig(), plugin.CarbonIntensity{GramsPerKWh: 475, Mode: "world_avg", Source: "world average, IEA (Alumet's world_avg)"}},
		{"country", &Config{Mode: ModeCountry, Country: &CountryConfig{Code: "FRA"}},
			plugin.CarbonIntensity{GramsPerKWh: 56.039, Mode: "country", Source: "FRA France 2023 (Alumet's energy mix table)"}},
		{"intensity_override", &Config{Mode: ModeIntensityOverride, IntensityOverride: &OverrideConfig{Intensity: ptr(12.5)}},
			plugin.CarbonIntensity{GramsPerKWh: 12.5, Mode: "intensity_override", Source: "intensity_override in the configuration"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := measure.NewRegistry()
			b := pipeline.NewBuilder(reg, 0, slog.New(slog.DiscardHandler))
			dir := &plugin.Directory{}
			require.NoError(t, Factory().Start(context.Background(), tt.cfg, plugin.Env{Pipeline: b, Logger: slog.New(slog.DiscardHandler), Directory: dir}))
			_, n, _ := b.Counts()
			require.Equal(t, 1, n)
			got, ok := dir.CarbonIntensity()
			require.True(t, ok)
			require.Equal(t, tt.want, got)
			mt, ok := reg.ByName(MetricName)
			require.True(t, ok)
			require.Equal(t, "g_CO2", mt.Unit.UniqueName())
			require.Equal(t, "gCO₂", mt.Unit.DisplayName())
			require.Equal(t, measure.F64, mt.Type)
			require.Equal(t, Name, mt.Plugin)
		})
	}
}

func TestStartErrors(t *testing.T) {
	reg := measure.NewRegistry()
	_, err := reg.Register(measure.Metric{Name: MetricName, Unit: measure.Plain(measure.Joule)})
	require.NoError(t, err)
	b := pipeline.NewBuilder(reg, 0, nil)
	err = Factory().Start(context.Background(), DefaultConfig(), plugin.Env{Pipeline: b})
	require.ErrorContains(t, err, `energy-to-carbon: metric "carbon_emission" is already registered with unit "J"`)

	err = Factory().Start(context.Background(), DefaultConfig(), plugin.Env{})
	require.EqualError(t, err, "energy-to-carbon: no pipeline to add the transform to")
}

// A table the mode does not read is warned about at start (Alumet ignores
// it silently).
func TestStartWarnsUnusedTable(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	b := pipeline.NewBuilder(measure.NewRegistry(), 0, nil)
	cfg := &Config{Mode: ModeWorldAvg, Country: &CountryConfig{Code: "FRA"}}
	require.NoError(t, Factory().Start(context.Background(), cfg, plugin.Env{Pipeline: b, Logger: log}))
	require.Contains(t, logs.String(), `level=WARN msg="mode = \"world_avg\": the [plugins.energy-to-carbon.country] table is not read (only mode = \"country\" reads it)"`)
}

func TestFactory(t *testing.T) {
	f := Factory()
	require.Equal(t, "energy-to-carbon", f.Name)
	require.Equal(t, "plugin_energy_to_carbon", f.LogTarget)
	require.Equal(t, SampleConfig, f.Sample)
	require.True(t, f.GeneratedOff)
	require.False(t, f.Measures)
	require.Equal(t, DefaultConfig(), f.DefaultConfig())
}

// The CSV of rapl-like points and their carbon points: the column
// carbon_emission_gCO₂, the energy rows kept, the domain attribute copied
// (a rapl <domain>_total row gets its carbon row too, as in Alumet).
func TestCSVGolden(t *testing.T) {
	m := newMetrics(t)
	tr, err := NewTransform(m.reg, 56.039)
	require.NoError(t, err)
	pkg := func(id string, sec int, v float64) measure.Point {
		p := energyPoint(m.joules, sec, measure.Float(v), "package")
		p.Resource = measure.Resource{Kind: "cpu_package", ID: id}
		return p
	}
	total := energyPoint(m.joules, 1, measure.Float(30.5), "package_total")
	buf := &measure.Buffer{Points: []measure.Point{
		pkg("0", 1, 12.25), pkg("1", 1, 18.25), total,
		energyPoint(m.milli, 1, measure.Float(2000.5), "dram"),
		energyPoint(m.watts, 1, measure.Float(130.4), "none"),
		energyPoint(m.joules, 2, measure.Float(math.NaN()), "package_total"),
	}}
	require.NoError(t, tr.Apply(buf))
	var out bytes.Buffer
	w := csv.NewWriter(&out, m.reg, csv.DefaultOptions())
	require.NoError(t, w.WriteBuffer(buf))
	require.NoError(t, w.Flush())
	testkit.Golden(t, "rapl.csv", out.Bytes(), *update)
}

// finisher stands for energy-report: at the end it adds an energy total.
type finisher struct{ id measure.MetricID }

func (finisher) Apply(*measure.Buffer) error { return nil }
func (f finisher) Finish() (*measure.Buffer, error) {
	return &measure.Buffer{Points: []measure.Point{{Metric: f.id, Timestamp: t0, Value: measure.Float(3.6e6),
		Attributes: []measure.Attribute{attr("metric_id", "wattmetre_power_watt_energy")}}}}, nil
}

// The points a transform before it adds at the end get carbon points; a
// transform after it adds them past it.
func TestAfterAFinisher(t *testing.T) {
	for _, after := range []bool{true, false} {
		m := newMetrics(t)
		b := pipeline.NewBuilder(m.reg, 4, slog.New(slog.DiscardHandler))
		start := func() {
			require.NoError(t, Factory().Start(context.Background(), DefaultConfig(), plugin.Env{Pipeline: b}))
		}
		if !after {
			start()
		}
		require.NoError(t, b.AddTransform("report", finisher{m.kilo}))
		if after {
			start()
		}
		rec := &pipelinetest.Recorder{}
		require.NoError(t, b.AddOutput("out", rec))
		p := b.Start(context.Background())
		require.NoError(t, p.Stop(context.Background()))
		pts := rec.Points()
		if !after {
			require.Len(t, pts, 1)
			continue
		}
		require.Len(t, pts, 2)
		require.Equal(t, alumet(3.6e6, 1e3, 475), pts[1].Value.Float64())
		require.Equal(t, "wattmetre_power_watt_energy", pts[1].Attributes[0].Value.Str)
	}
}
