// Package energytocarbon is the energy-to-carbon transform, compatible with
// Alumet's: for every point in joules (any SI prefix) it appends a
// carbon_emission point, energy / 3.6e6 × intensity, in gCO₂e, with the
// point's timestamp, resource, consumer and attributes. The intensity, in
// gCO₂e per kWh, is the world average (475), a country's yearly mean from
// Alumet's energy mix table, or the configured value; it is recorded in the
// plugin.Directory for the energy report.
package energytocarbon

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
	"github.com/alumet-go/alumet-agent/plugin"
)

// Plugin identity. Version is Alumet's energy-to-carbon plugin version
// (plugins/energy-to-carbon/Cargo.toml at afb0aa12).
const (
	Name      = "energy-to-carbon"
	Version   = "0.1.0"
	LogTarget = "plugin_energy_to_carbon"
)

// MetricName is the metric of the points the transform adds.
const MetricName = "carbon_emission"

// Unit is Alumet's custom unit of carbon_emission: g_CO2, shown gCO₂ (so the
// CSV column is carbon_emission_gCO₂).
var Unit = measure.Unit{Base: measure.BaseUnit{Unique: "g_CO2", Display: "gCO₂"}}

// JoulesPerKWh converts the energy to kWh.
const JoulesPerKWh = 3.6e6

// Factory describes the plugin.
func Factory() plugin.Factory {
	return plugin.Typed[Config, *Config]{
		Name:          Name,
		Version:       Version,
		LogTarget:     LogTarget,
		DefaultConfig: DefaultConfig,
		Sample:        SampleConfig,
		// Off in generated files: the world average is far from Grid'5000's
		// French mix, and the carbon points double the rapl rows; the
		// intensity is a choice to make.
		GeneratedOff: true,
		Start:        start,
	}.Factory()
}

func start(_ context.Context, cfg *Config, env plugin.Env) error {
	if env.Pipeline == nil {
		return fmt.Errorf("%s: no pipeline to add the transform to", Name)
	}
	ci, err := cfg.Intensity()
	if err != nil {
		return err
	}
	if env.Logger != nil {
		// Alumet ignores them silently; a table written for nothing is
		// likely a mode left unchanged.
		for _, tbl := range cfg.unusedTables() {
			env.Logger.Warn(fmt.Sprintf("mode = %q: the [plugins.%s.%s] table is not read (only mode = %q reads it)", cfg.Mode, Name, tbl, tbl))
		}
		env.Logger.Debug(fmt.Sprintf("Carbon intensity: %v gCO₂e/kWh, %s", ci.GramsPerKWh, ci.Source))
	}
	t, err := NewTransform(env.Pipeline.Registry(), ci.GramsPerKWh)
	if err != nil {
		return err
	}
	if env.Directory != nil {
		env.Directory.SetCarbonIntensity(ci)
	}
	return env.Pipeline.AddTransform(Name, t)
}

// RegisterMetric registers carbon_emission. Delta semantics: a point is the
// carbon of its energy point, which is an amount over an interval (rapl's,
// energy-report's), not a reading at an instant.
func RegisterMetric(reg *measure.Registry) (measure.MetricID, error) {
	id, err := reg.Register(measure.Metric{
		Name:        MetricName,
		Unit:        Unit,
		Type:        measure.F64,
		Semantics:   measure.Delta,
		Description: "Carbon emission in grams of CO2 equivalent, computed from energy consumption and emission intensity.",
		Plugin:      Name,
	})
	if err != nil {
		return 0, fmt.Errorf("%s: %w", Name, err)
	}
	return id, nil
}

// maxSeries bounds the cache of the carbon series of compact points: past
// it, the cache starts afresh (a new series address for the same series is
// only a cache miss downstream).
const maxSeries = 4096

// Transform appends the carbon points. Apply runs on the pipeline's
// transform goroutine only, so its caches need no lock.
type Transform struct {
	reg       *measure.Registry
	id        measure.MetricID
	intensity float64
	// factors caches, by metric id, the joules of one unit of the metric,
	// 0 when it is not energy in joules (the registry only grows, and a
	// metric's unit never changes).
	factors []float64
	known   []bool
	// series maps the series of compact points in joules to their carbon
	// series, built once: outputs key what they derive from a series by
	// its address.
	series map[*measure.Series]*measure.Series
}

// NewTransform registers carbon_emission in reg and returns the transform
// for intensity gCO₂e/kWh.
func NewTransform(reg *measure.Registry, intensity float64) (*Transform, error) {
	id, err := RegisterMetric(reg)
	if err != nil {
		return nil, err
	}
	return &Transform{reg: reg, id: id, intensity: intensity, series: map[*measure.Series]*measure.Series{}}, nil
}

// prefixFactor is the value of each SI prefix Alumet has.
var prefixFactor = map[measure.Prefix]float64{
	measure.NoPrefix: 1, measure.Nano: 1e-9, measure.Micro: 1e-6, measure.Milli: 1e-3,
	measure.Kilo: 1e3, measure.Mega: 1e6, measure.Giga: 1e9,
}

// factor returns the joules of one unit of metric id, false when the
// metric is not in joules (or unknown).
func (t *Transform) factor(id measure.MetricID) (float64, bool) {
	if int(id) < len(t.known) && t.known[id] {
		return t.factors[id], t.factors[id] != 0
	}
	f := 0.0
	m, ok := t.reg.Metric(id)
	if !ok {
		return 0, false // not cached: it may be registered later
	}
	if m.Unit.Base == measure.Joule {
		f = prefixFactor[m.Unit.Prefix]
	}
	if n := int(id) + 1; n > len(t.known) {
		t.known = append(t.known, make([]bool, n-len(t.known))...)
		t.factors = append(t.factors, make([]float64, n-len(t.factors))...)
	}
	t.known[id], t.factors[id] = true, f
	return f, f != 0
}

// carbon is the gCO₂e of v units worth factor joules each, nil for a value
// that is not a number (NaN, ±Inf: no carbon point). The operations are in
// Alumet's order, v / 3.6e6 × factor × intensity, so that the values are
// Alumet's to the bit.
func (t *Transform) carbon(v measure.Value, factor float64) (measure.Value, bool) {
	e := v.Float64()
	if math.IsNaN(e) || math.IsInf(e, 0) {
		return measure.Value{}, false
	}
	return measure.Float(e / JoulesPerKWh * factor * t.intensity), true
}

// ReadsCompact says Apply reads compact points as they are
// (pipeline.CompactReader). It never changes a point it is given: it
// appends the carbon points of compact points as compact points, of a
// series of its own per energy series; a buffer holds compact points here
// only when every later element reads them.
func (t *Transform) ReadsCompact() {}

// Apply appends a carbon_emission point for every point in joules: those
// of Points after Points, those of Compact after Compact. The originals are
// kept.
func (t *Transform) Apply(buf *measure.Buffer) error {
	for i, n := 0, len(buf.Points); i < n; i++ {
		p := &buf.Points[i]
		f, ok := t.factor(p.Metric)
		if !ok {
			continue
		}
		v, ok := t.carbon(p.Value, f)
		if !ok {
			continue
		}
		// The attributes are copied, as Alumet does: sources share one
		// slice between points, and a later transform may change a point's.
		c := measure.Point{Metric: t.id, Timestamp: p.Timestamp, Value: v,
			Resource: p.Resource, Consumer: p.Consumer, Attributes: slices.Clone(p.Attributes)}
		buf.Points = append(buf.Points, c) // p is not used past this point
	}
	for i, n := 0, len(buf.Compact); i < n; i++ {
		sp := buf.Compact[i]
		f, ok := t.factor(sp.Series.Metric)
		if !ok {
			continue
		}
		v, ok := t.carbon(sp.Value, f)
		if !ok {
			continue
		}
		buf.Compact = append(buf.Compact, measure.SeriesPoint{Series: t.seriesOf(sp.Series), Time: sp.Time, Value: v})
	}
	return nil
}

// seriesOf returns the carbon series of the energy series s.
func (t *Transform) seriesOf(s *measure.Series) *measure.Series {
	if c, ok := t.series[s]; ok {
		return c
	}
	if len(t.series) >= maxSeries {
		clear(t.series)
	}
	// A series is immutable: the carbon series shares its attributes,
	// capped so that an append copies.
	c := &measure.Series{Metric: t.id, Resource: s.Resource, Consumer: s.Consumer, Attributes: slices.Clip(s.Attributes)}
	t.series[s] = c
	return c
}

var (
	_ pipeline.Transform     = (*Transform)(nil)
	_ pipeline.CompactReader = (*Transform)(nil)
)
