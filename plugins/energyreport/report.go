package energyreport

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/alumet-go/alumet-agent/energy"
	"github.com/alumet-go/alumet-agent/measure"
)

// seriesKey identifies a series: the node (or the resource) and the metric.
type seriesKey struct {
	node, metric string
}

// rawSample is one reading as kept until Finish: 16 bytes.
type rawSample struct {
	t int64 // Unix ns
	w float64
}

// series is the samples of one (node, metric) and what its energy point
// needs: the resource and consumer of its first point.
type series struct {
	key      seriesKey
	resource measure.Resource
	consumer measure.Consumer
	site     string
	samples  []rawSample
}

// nodeOf names the node of a point: the id of a device_id resource
// (kwollect-input's points), otherwise the resource's kind/id.
func nodeOf(r measure.Resource) string {
	switch {
	case r.Kind == "device_id":
		return r.ID
	case r.ID == "":
		return r.Kind
	}
	return r.Kind + "/" + r.ID
}

// info returns what the transform knows of a metric id, looking it up in
// the registry (and warning about a configured metric that is not a power)
// the first time.
func (r *report) info(id measure.MetricID) (metricInfo, bool) {
	if mi, ok := r.metrics[id]; ok {
		return mi, true
	}
	m, ok := r.reg.Metric(id)
	if !ok {
		return metricInfo{}, false
	}
	isPower := m.Unit == measure.Plain(measure.Watt)
	mi := metricInfo{name: m.Name}
	if r.wanted != nil {
		mi.selected = r.wanted[m.Name] && isPower
		if r.wanted[m.Name] {
			r.seenName[m.Name] = true
			if !isPower {
				r.log.Warn(fmt.Sprintf("metrics: %s is in %s, not W: it is not integrated", m.Name, unitText(m.Unit)))
			}
		}
	} else {
		mi.selected = isPower && m.Semantics == measure.Gauge
	}
	r.metrics[id] = mi
	return mi, true
}

func unitText(u measure.Unit) string {
	if s := u.DisplayName(); s != "" {
		return s
	}
	return u.UniqueName()
}

// add keeps the samples of the selected metrics of buf.
func (r *report) add(buf *measure.Buffer) {
	if buf == nil || r.finished {
		return
	}
	for i := range buf.Points {
		p := &buf.Points[i]
		mi, ok := r.info(p.Metric)
		if !ok || !mi.selected {
			continue
		}
		k := seriesKey{node: nodeOf(p.Resource), metric: mi.name}
		s := r.series[k]
		if s == nil {
			s = &series{key: k, resource: p.Resource, consumer: p.Consumer}
			r.series[k] = s
		}
		if s.site == "" {
			for _, a := range p.Attributes {
				if a.Key == "site" && a.Value.Type == measure.AttrString {
					s.site = a.Value.Str
					break
				}
			}
		}
		s.samples = append(s.samples, rawSample{t: p.Timestamp.UnixNano(), w: p.Value.Float64()})
	}
}

// row is the result of one series over the window.
type row struct {
	key      seriesKey
	site     string
	resource measure.Resource
	consumer measure.Consumer
	// hasData: at least one sample contributed real data in the window.
	// Without, the energy (an extrapolation of data outside the window, or
	// nothing) is not reported.
	hasData bool
	res     energy.Result
	method  string
	gaps    []energy.Gap
}

// noDataMethod is the method text of a series with no sample in the window.
const noDataMethod = "none: no sample in the window"

// integrate computes the energy of s over [start, end]. The sampling period
// is inferred from the data (the median gap between samples) by a first
// pass, then the series is integrated with the options that period calls
// for (energy.OptionsFor: step integration of Kwollect's 1 s wattmetre
// averages, trapezoids for instantaneous readings).
func integrate(s *series, start, end time.Time) (energy.Result, error) {
	probe := energy.NewIntegrator(energy.Options{Method: energy.Trapezoid})
	probe.Grow(len(s.samples))
	for _, x := range s.samples {
		probe.Add(time.Unix(0, x.t), x.w)
	}
	r0, err := probe.Result(start, end)
	if err != nil {
		return energy.Result{}, err
	}
	in := energy.NewIntegrator(energy.OptionsFor(s.key.metric, r0.Period))
	in.Grow(probe.Len())
	for _, x := range s.samples {
		in.Add(time.Unix(0, x.t), x.w)
	}
	return in.Result(start, end)
}

// finish computes the report over the recorded window; see Transform.Finish.
func (r *report) finish() (*measure.Buffer, error) {
	if r.finished {
		return nil, nil
	}
	r.finished = true
	r.mu.Lock()
	w := r.win
	r.mu.Unlock()

	for _, m := range r.cfg.Metrics {
		if !r.seenName[m] {
			r.log.Warn(fmt.Sprintf("metrics: no point of %s reached energy-report (is it fetched by a source?)", m))
		}
	}
	switch {
	case !w.hasStart && w.jobID != 0:
		r.log.Warn(fmt.Sprintf("The window of OAR job %d is not known to energy-report: no energy report (use fetch --from/--to for one).", w.jobID))
		return nil, nil
	case !w.hasStart || !w.hasEnd:
		r.log.Warn("No measurement window (no start or end event: nothing was measured, or no source publishes events): no energy report.")
		return nil, nil
	case !w.end.After(w.start):
		r.log.Warn(fmt.Sprintf("Empty measurement window [%s, %s]: no energy report.", rfc3339(w.start), rfc3339(w.end)))
		return nil, nil
	}

	keys := slices.SortedFunc(maps.Keys(r.series), func(a, b seriesKey) int {
		return cmp.Or(strings.Compare(a.node, b.node), strings.Compare(a.metric, b.metric))
	})
	var errs []error
	rows := make([]row, 0, len(keys))
	for _, k := range keys {
		s := r.series[k]
		rw := row{key: k, site: s.site, resource: s.resource, consumer: s.consumer, method: noDataMethod}
		res, err := integrate(s, w.start, w.end)
		s.samples = nil // done with them
		switch {
		case err == nil && res.Samples > 0:
			rw.hasData, rw.res, rw.method, rw.gaps = true, res, res.Method, res.Gaps
		case err == nil || errors.Is(err, energy.ErrNoSamples):
			rw.res = energy.Result{Start: w.start, End: w.end, Duration: w.end.Sub(w.start)}
			rw.gaps = []energy.Gap{{From: w.start, To: w.end}}
		default:
			errs = append(errs, fmt.Errorf("%s %s: %w", k.node, k.metric, err))
			continue
		}
		rows = append(rows, rw)
	}

	buf, err := r.points(rows, w.end)
	if err != nil {
		errs = append(errs, err)
	}
	if r.cfg.Table {
		if _, err := io.WriteString(r.out, r.table(w, rows)); err != nil {
			r.log.Warn(fmt.Sprintf("cannot print the energy table: %v", err))
		}
	}
	if r.cfg.SummaryFile != "" {
		if err := writeSummary(r.cfg.SummaryFile, r.summary(w, rows)); err != nil {
			errs = append(errs, fmt.Errorf("summary_file: %w", err))
		} else {
			r.log.Info("Energy summary written to " + r.cfg.SummaryFile)
		}
	}
	for _, t := range totals(rows) {
		if t.hasData {
			r.log.Info(fmt.Sprintf("Energy of %s over [%s, %s]: %v on %d series", t.metric, rfc3339(w.start), rfc3339(w.end), energy.Joules(t.energy), t.series))
		}
	}
	for _, e := range errs {
		r.log.Error(e.Error())
	}
	return buf, errors.Join(errs...)
}

// points returns one <metric>_energy point per series with data: at the
// end of the window, on the series' resource and consumer, with the
// attribute metric_id only (the layout of kwollect-input's rows).
func (r *report) points(rows []row, end time.Time) (*measure.Buffer, error) {
	buf := &measure.Buffer{}
	ids := map[string]measure.MetricID{}
	failed := map[string]bool{}
	var errs []error
	for _, rw := range rows {
		name := rw.key.metric + "_energy"
		if !rw.hasData || !finite(float64(rw.res.Energy)) || failed[name] {
			continue
		}
		id, ok := ids[name]
		if !ok {
			var err error
			id, err = r.reg.Register(measure.Metric{
				Name:        name,
				Unit:        measure.Plain(measure.Joule),
				Type:        measure.F64,
				Semantics:   measure.Delta,
				Description: "Energy of " + rw.key.metric + " over the measured window",
			})
			if err != nil {
				errs = append(errs, err)
				failed[name] = true
				continue
			}
			ids[name] = id
		}
		buf.Push(measure.Point{
			Metric:     id,
			Timestamp:  end.UTC(),
			Value:      measure.Float(float64(rw.res.Energy)),
			Resource:   rw.resource,
			Consumer:   rw.consumer,
			Attributes: []measure.Attribute{{Key: "metric_id", Value: measure.String(name)}},
		})
	}
	return buf, errors.Join(errs...)
}

// total is the sum over the nodes of one metric.
type total struct {
	metric      string
	series      int // with data
	samples     int
	hasData     bool
	energy      float64
	uncertainty float64
	methods     []string // distinct, in row order
}

// totals sums the rows per metric, metrics in name order.
func totals(rows []row) []total {
	by := map[string]*total{}
	var names []string
	for _, rw := range rows {
		t := by[rw.key.metric]
		if t == nil {
			t = &total{metric: rw.key.metric}
			by[rw.key.metric] = t
			names = append(names, rw.key.metric)
		}
		if !rw.hasData {
			continue
		}
		t.series++
		t.hasData = true
		t.samples += rw.res.Samples
		t.energy += float64(rw.res.Energy)
		t.uncertainty += float64(rw.res.Uncertainty)
		if !slices.Contains(t.methods, rw.method) {
			t.methods = append(t.methods, rw.method)
		}
	}
	slices.Sort(names)
	out := make([]total, len(names))
	for i, n := range names {
		out[i] = *by[n]
	}
	return out
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// num is v for JSON, or nil (null) when it is NaN or infinite.
func num(v float64) *float64 {
	if !finite(v) {
		return nil
	}
	return &v
}

// rfc3339Layout is RFC 3339 with nanoseconds, always 9 digits.
const rfc3339Layout = "2006-01-02T15:04:05.000000000Z07:00"

func rfc3339(t time.Time) string { return t.UTC().Format(rfc3339Layout) }
