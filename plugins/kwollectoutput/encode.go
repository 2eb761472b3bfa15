package kwollectoutput

import (
	"math"
	"strconv"

	"github.com/alumet-go/alumet-agent/internal/jsontext"
	"github.com/alumet-go/alumet-agent/measure"
)

// encoder writes the JSON array Kwollect's POST takes, in Alumet's
// kwollect-output layout:
//
//	{"timestamp":1727941961.25,"metric_id":"app_phase","device_id":"orion-3","value":2,"labels":{"ressource_kind":"…","ressource_id":"…","consumer_kind":"…","consumer_id":"…",<attributes>}}
//
// "ressource" is Alumet's spelling, kept because dashboards may rely on it.
// Everything but the timestamp and the value is encoded once per series.
// device_id is the configured hostname, as Alumet, except for a point on a
// Grid'5000 node (resource device_id, as kwollect-input's rows and
// energy-report's totals have): its node, so that a total computed on a
// frontend lands on the node it measures.
type encoder struct {
	reg         *measure.Registry
	device      string
	appendUnit  bool
	unitDisplay bool

	names  map[measure.MetricID][]byte // `,"metric_id":"…","value":`
	series map[*measure.Series][]byte  // `,"device_id":"…","labels":{…}}`
	keyBuf []byte
	labels map[string][]byte // a Point's labels by their text key
}

func newEncoder(reg *measure.Registry, device string, appendUnit, unitDisplay bool) *encoder {
	return &encoder{reg: reg, device: device, appendUnit: appendUnit, unitDisplay: unitDisplay,
		names: map[measure.MetricID][]byte{}, series: map[*measure.Series][]byte{}, labels: map[string][]byte{}}
}

// metricID is the Kwollect metric id of a metric: its name, with its unit
// when append_unit_to_metric_name.
func (e *encoder) metricID(m measure.Metric) string {
	if !e.appendUnit {
		return m.Name
	}
	u := m.Unit.UniqueName()
	if e.unitDisplay {
		u = m.Unit.DisplayName()
	}
	if u == "" {
		return m.Name
	}
	return m.Name + "_" + u
}

func (e *encoder) middle(id measure.MetricID) []byte {
	if b, ok := e.names[id]; ok {
		return b
	}
	name := "metric_" + strconv.Itoa(int(id))
	if m, ok := e.reg.Metric(id); ok {
		name = e.metricID(m)
	}
	b := append([]byte(`,"metric_id":`), jsontext.AppendString(nil, name)...)
	b = append(b, `,"value":`...)
	e.names[id] = b
	return b
}

func (e *encoder) appendLabels(b []byte, r measure.Resource, c measure.Consumer, attrs []measure.Attribute) []byte {
	dev := e.device
	if r.Kind == "device_id" && r.ID != "" {
		dev = r.ID
	}
	b = append(b, `,"device_id":`...)
	b = jsontext.AppendString(b, dev)
	b = append(b, `,"labels":{"ressource_kind":`...)
	b = jsontext.AppendString(b, r.Kind)
	b = append(b, `,"ressource_id":`...)
	b = jsontext.AppendString(b, r.ID)
	b = append(b, `,"consumer_kind":`...)
	b = jsontext.AppendString(b, c.Kind)
	b = append(b, `,"consumer_id":`...)
	b = jsontext.AppendString(b, c.ID)
	for _, a := range attrs {
		b = append(b, ',')
		b = jsontext.AppendString(b, a.Key)
		b = append(b, ':')
		b = jsontext.AppendAttr(b, a.Value, appendFloat)
	}
	return append(b, "}}"...)
}

// appendPoint appends the object of p.
func (e *encoder) appendPoint(b []byte, p *measure.Point) []byte {
	e.keyBuf = appendKey(e.keyBuf[:0], p)
	l, ok := e.labels[string(e.keyBuf)]
	if !ok {
		if len(e.labels) > 1<<14 {
			clear(e.labels)
		}
		l = e.appendLabels(nil, p.Resource, p.Consumer, p.Attributes)
		e.labels[string(e.keyBuf)] = l
	}
	return e.appendObject(b, p.Metric, p.Timestamp.UnixNano(), p.Value, l)
}

// appendCompact appends the object of p.
func (e *encoder) appendCompact(b []byte, p *measure.SeriesPoint) []byte {
	l, ok := e.series[p.Series]
	if !ok {
		s := p.Series
		l = e.appendLabels(nil, s.Resource, s.Consumer, s.Attributes)
		e.series[p.Series] = l
	}
	return e.appendObject(b, p.Series.Metric, p.Time, p.Value, l)
}

func (e *encoder) appendObject(b []byte, id measure.MetricID, ns int64, v measure.Value, labels []byte) []byte {
	b = append(b, `{"timestamp":`...)
	b = appendEpoch(b, ns)
	b = append(b, e.middle(id)...)
	b = appendValue(b, v)
	return append(b, labels...)
}

// appendEpoch appends ns as Unix seconds, a JSON number with the exact
// decimal digits of the nanoseconds (trailing zeros removed):
// 1727941961.25. Alumet sends secs + nanos/1e9 as an f64, which is the
// same number to within the f64's 0.2 µs; the exact text loses nothing.
func appendEpoch(b []byte, ns int64) []byte {
	u := uint64(ns)
	if ns < 0 {
		b = append(b, '-')
		u = -u // also right for math.MinInt64
	}
	sec, frac := u/1e9, u%1e9
	b = strconv.AppendUint(b, sec, 10)
	if frac == 0 {
		return b
	}
	var d [10]byte
	d[0] = '.'
	for i := 9; i > 0; i-- {
		d[i] = byte('0' + frac%10)
		frac /= 10
	}
	n := 10
	for d[n-1] == '0' {
		n--
	}
	return append(b, d[:n]...)
}

// appendValue: JSON has no NaN or infinities; Alumet (serde_json) writes
// null for them, and Kwollect stores a missing value as NaN.
func appendValue(b []byte, v measure.Value) []byte {
	if v.Type() == measure.U64 {
		return strconv.AppendUint(b, v.Uint64(), 10)
	}
	return appendFloat(b, v.Float64())
}

func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

func appendKey(b []byte, p *measure.Point) []byte {
	for _, s := range []string{p.Resource.Kind, p.Resource.ID, p.Consumer.Kind, p.Consumer.ID} {
		b = append(b, s...)
		b = append(b, 0)
	}
	for _, a := range p.Attributes {
		b = append(b, a.Key...)
		b = append(b, 0, byte(a.Value.Type))
		b = a.Value.AppendText(b)
		b = append(b, 0)
	}
	return b
}
