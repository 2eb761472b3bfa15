package rundir

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
)

// The raw stream (raw/points.jsonl.zst) is what the pipeline's sources gave,
// in the order they gave it, so that a run can be replayed offline through
// the same code: zstd-compressed JSON lines of five kinds.
//
//	{"metric":{...}}   a metric, before its first point (id, name, unit, type, ...)
//	{"series":{...}}   a series, before its first point: metric, resource, consumer, typed attributes
//	{"buffer":{...}}   a buffer: history or points, its Points and Compact counts; the point lines follow
//	[series, ns, value] one point: its series, its time in Unix ns, its value (a string for NaN and infinities)
//	{"event":{...}}    a measurement event, after the points that came before it
//
// Every value is exact: floats are written with Go's shortest round-trip
// form, unsigned integers as integers, attributes with their types.

// streamVersion is the raw stream's format version, in the manifest.
const streamVersion = 1

type metricLine struct {
	ID          measure.MetricID `json:"id"`
	Name        string           `json:"name"`
	Unit        [4]string        `json:"unit"` // prefix unique, prefix display, base unique, base display
	Type        string           `json:"type"`
	Semantics   uint8            `json:"semantics"`
	Description string           `json:"description,omitempty"`
	Plugin      string           `json:"plugin,omitempty"`
}

type seriesLine struct {
	ID         uint32            `json:"id"`
	Metric     measure.MetricID  `json:"metric"`
	Resource   [2]string         `json:"resource"`
	Consumer   [2]string         `json:"consumer"`
	Attributes []json.RawMessage `json:"attributes,omitempty"` // [key, type, value]
}

type bufferLine struct {
	History bool `json:"history,omitempty"`
	// HistoryEnd is the end of the history (Unix ns): the window's start
	// the source fetched it for (pipeline.History.DeliverBefore).
	HistoryEnd int64 `json:"history_end,omitempty"`
	// After: the buffer is the span after a window that ended at
	// AfterFrom (Unix ns; pipeline.History.DeliverAfter). It is History
	// too, so that a reader that does not know After keeps it out of the
	// outputs.
	After     bool  `json:"after,omitempty"`
	AfterFrom int64 `json:"after_from,omitempty"`
	Points    int   `json:"points"`
	Compact   int   `json:"compact"`
}

// EventRecord is a measurement event as the run directory keeps it.
type EventRecord struct {
	Kind      string      `json:"kind"`
	TimeNs    int64       `json:"time_ns"`
	Time      string      `json:"time"` // RFC 3339, for a reader
	Run       int         `json:"run,omitempty"`
	Phase     string      `json:"phase,omitempty"`
	JobID     int64       `json:"job_id,omitempty"`
	Command   []string    `json:"command,omitempty"`
	ExitCode  *int        `json:"exit_code,omitempty"`
	Consumers [][2]string `json:"consumers,omitempty"`
	Warnings  []string    `json:"warnings,omitempty"`
	// After is the number of points the stream held when the event came.
	After int64 `json:"after"`
}

var eventKinds = map[pipeline.EventKind]string{
	pipeline.StartConsumerMeasurement: "start",
	pipeline.EndConsumerMeasurement:   "end",
	pipeline.PhaseMark:                "phase",
}

func recordOf(ev pipeline.Event, after int64) EventRecord {
	kind, ok := eventKinds[ev.Kind]
	if !ok {
		kind = "kind-" + strconv.Itoa(int(ev.Kind))
	}
	r := EventRecord{Kind: kind, TimeNs: ev.Time.UnixNano(), Time: ev.Time.UTC().Format(time.RFC3339Nano), Run: ev.Run,
		Phase: ev.Phase, JobID: ev.JobID, Command: ev.Command, ExitCode: ev.ExitCode, Warnings: ev.Warnings, After: after}
	for _, c := range ev.Consumers {
		r.Consumers = append(r.Consumers, [2]string{c.Kind, c.ID})
	}
	return r
}

// Event is the pipeline event r stands for.
func (r EventRecord) Event() (pipeline.Event, error) {
	ev := pipeline.Event{Time: time.Unix(0, r.TimeNs), Run: r.Run, Phase: r.Phase, JobID: r.JobID, Command: r.Command,
		ExitCode: r.ExitCode, Warnings: r.Warnings}
	found := false
	for k, name := range eventKinds {
		if name == r.Kind {
			ev.Kind, found = k, true
		}
	}
	if !found {
		return ev, fmt.Errorf("unknown event kind %q", r.Kind)
	}
	for _, c := range r.Consumers {
		ev.Consumers = append(ev.Consumers, measure.Consumer{Kind: c[0], ID: c[1]})
	}
	return ev, nil
}

// streamWriter writes the raw stream. It is not safe for concurrent use.
type streamWriter struct {
	zw      *zstd.Encoder
	w       *bufio.Writer
	reg     *measure.Registry
	metrics map[measure.MetricID]bool
	compact map[*measure.Series]uint32
	byKey   map[string]uint32
	key     []byte
	line    []byte
	points  int64
	err     error
	// series describes every series, by id, with its point counts, for
	// the manifest.
	series []SeriesInfo
	inHist bool // the buffer being written is history
}

func newStreamWriter(w io.Writer, reg *measure.Registry) (*streamWriter, error) {
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	return &streamWriter{zw: zw, w: bufio.NewWriterSize(zw, 256<<10), reg: reg, metrics: map[measure.MetricID]bool{},
		compact: map[*measure.Series]uint32{}, byKey: map[string]uint32{}}, nil
}

func (s *streamWriter) writeJSON(kind string, v any) {
	if s.err != nil {
		return
	}
	b, err := json.Marshal(map[string]any{kind: v})
	if err != nil {
		s.err = err
		return
	}
	b = append(b, '\n')
	_, s.err = s.w.Write(b)
}

func (s *streamWriter) metric(id measure.MetricID) {
	if s.metrics[id] {
		return
	}
	s.metrics[id] = true
	m, ok := s.reg.Metric(id)
	if !ok {
		s.err = fmt.Errorf("metric #%d is not registered", id)
		return
	}
	s.writeJSON("metric", metricLine{ID: id, Name: m.Name, Unit: [4]string{m.Unit.Prefix.Unique, m.Unit.Prefix.Display, m.Unit.Base.Unique, m.Unit.Base.Display},
		Type: m.Type.String(), Semantics: uint8(m.Semantics), Description: m.Description, Plugin: m.Plugin})
}

func attrJSON(a measure.Attribute) json.RawMessage {
	var v any
	t := "s"
	switch a.Value.Type {
	case measure.AttrU64:
		t, v = "u", a.Value.U64
	case measure.AttrF64:
		t, v = "f", floatJSON(a.Value.F64)
	case measure.AttrBool:
		t, v = "b", a.Value.Bool
	case measure.AttrU64List:
		t, v = "l", a.Value.List
		if a.Value.List == nil {
			v = []uint64{}
		}
	default:
		v = a.Value.Str
	}
	b, _ := json.Marshal([]any{a.Key, t, v})
	return b
}

// floatJSON is f as JSON: a number, or a string for NaN and infinities.
func floatJSON(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
}

func (s *streamWriter) newSeries(m measure.MetricID, r measure.Resource, c measure.Consumer, attrs []measure.Attribute) uint32 {
	s.metric(m)
	id := uint32(len(s.compact) + len(s.byKey))
	l := seriesLine{ID: id, Metric: m, Resource: [2]string{r.Kind, r.ID}, Consumer: [2]string{c.Kind, c.ID}}
	for _, a := range attrs {
		l.Attributes = append(l.Attributes, attrJSON(a))
	}
	s.writeJSON("series", l)
	info := SeriesInfo{Resource: l.Resource, Consumer: l.Consumer}
	if m, ok := s.reg.Metric(m); ok {
		info.Metric = m.Name
	}
	s.series = append(s.series, info)
	return id
}

func (s *streamWriter) pointSeries(p *measure.Point) uint32 {
	k := s.key[:0]
	k = strconv.AppendUint(k, uint64(p.Metric), 10)
	for _, str := range []string{p.Resource.Kind, p.Resource.ID, p.Consumer.Kind, p.Consumer.ID} {
		k = append(k, 0)
		k = append(k, str...)
	}
	for _, a := range p.Attributes {
		k = append(k, 0)
		k = append(k, attrJSON(a)...)
	}
	s.key = k
	if id, ok := s.byKey[string(k)]; ok {
		return id
	}
	id := s.newSeries(p.Metric, p.Resource, p.Consumer, p.Attributes)
	s.byKey[string(k)] = id
	return id
}

func (s *streamWriter) compactSeries(sr *measure.Series) uint32 {
	if id, ok := s.compact[sr]; ok {
		return id
	}
	id := s.newSeries(sr.Metric, sr.Resource, sr.Consumer, sr.Attributes)
	s.compact[sr] = id
	return id
}

func (s *streamWriter) point(series uint32, ns int64, v measure.Value) {
	b := append(s.line[:0], '[')
	b = strconv.AppendUint(b, uint64(series), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, ns, 10)
	b = append(b, ',')
	if v.Type() == measure.U64 {
		b = strconv.AppendUint(b, v.Uint64(), 10)
	} else if f := v.Float64(); math.IsNaN(f) || math.IsInf(f, 0) {
		b = append(b, '"')
		b = strconv.AppendFloat(b, f, 'g', -1, 64)
		b = append(b, '"')
	} else {
		b = strconv.AppendFloat(b, f, 'g', -1, 64)
	}
	b = append(b, "]\n"...)
	s.line = b
	if s.err == nil {
		_, s.err = s.w.Write(b)
	}
	s.points++
	if si := &s.series[series]; s.inHist {
		si.History++
	} else {
		si.Points++
	}
}

// buffer writes buf (history: a history buffer, delivered for the window
// starting at end; after: the span after the window that ended at end).
func (s *streamWriter) buffer(buf *measure.Buffer, history, after bool, end time.Time) {
	if buf.Len() == 0 {
		return
	}
	// Series and metrics first, so that the buffer's point lines follow its
	// header without interruption.
	ids := make([]uint32, 0, buf.Len())
	for i := range buf.Points {
		ids = append(ids, s.pointSeries(&buf.Points[i]))
	}
	for i := range buf.Compact {
		ids = append(ids, s.compactSeries(buf.Compact[i].Series))
	}
	bl := bufferLine{History: history || after, After: after, Points: len(buf.Points), Compact: len(buf.Compact)}
	switch {
	case after:
		bl.AfterFrom = end.UnixNano()
	case history && !end.IsZero():
		bl.HistoryEnd = end.UnixNano()
	}
	s.writeJSON("buffer", bl)
	s.inHist = history || after
	for i := range buf.Points {
		p := &buf.Points[i]
		s.point(ids[i], p.Timestamp.UnixNano(), p.Value)
	}
	for i := range buf.Compact {
		p := &buf.Compact[i]
		s.point(ids[len(buf.Points)+i], p.Time, p.Value)
	}
}

func (s *streamWriter) event(ev pipeline.Event) { s.writeJSON("event", recordOf(ev, s.points)) }

// close flushes the stream and ends the zstd frame.
func (s *streamWriter) close() error {
	if s.err == nil {
		s.err = s.w.Flush()
	}
	if err := s.zw.Close(); s.err == nil {
		s.err = err
	}
	return s.err
}

// StreamItem is one element of the raw stream: a buffer (with the metrics
// registered) or an event.
type StreamItem struct {
	Buffer     *measure.Buffer
	History    bool
	HistoryEnd time.Time // zero if not said
	// After: the span after the window that ended at AfterFrom (History
	// is set too).
	After     bool
	AfterFrom time.Time
	Event     *EventRecord
}

// streamReader reads a raw stream back.
type streamReader struct {
	zr     *zstd.Decoder
	sc     *bufio.Scanner
	reg    *measure.Registry
	ids    map[measure.MetricID]measure.MetricID // the stream's ids to reg's
	series []*measure.Series
	line   int
	name   string
}

func newStreamReader(r io.Reader, name string, reg *measure.Registry) (*streamReader, error) {
	zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	return &streamReader{zr: zr, sc: sc, reg: reg, ids: map[measure.MetricID]measure.MetricID{},
		name: name}, nil
}

func (r *streamReader) close() { r.zr.Close() }

func (r *streamReader) errorf(format string, args ...any) error {
	return fmt.Errorf("%s: line %d: %s", r.name, r.line, fmt.Sprintf(format, args...))
}

func (r *streamReader) scan() ([]byte, error) {
	if !r.sc.Scan() {
		if err := r.sc.Err(); err != nil {
			return nil, fmt.Errorf("%s: after line %d: %w", r.name, r.line, err)
		}
		return nil, io.EOF
	}
	r.line++
	return r.sc.Bytes(), nil
}

// next returns the next buffer or event; io.EOF at the end.
func (r *streamReader) next() (StreamItem, error) {
	for {
		line, err := r.scan()
		if err != nil {
			return StreamItem{}, err
		}
		var head map[string]json.RawMessage
		if err := json.Unmarshal(line, &head); err != nil || len(head) != 1 {
			return StreamItem{}, r.errorf("not a stream record: %.80q", line)
		}
		switch {
		case head["metric"] != nil:
			if err := r.addMetric(head["metric"]); err != nil {
				return StreamItem{}, err
			}
		case head["series"] != nil:
			if err := r.addSeries(head["series"]); err != nil {
				return StreamItem{}, err
			}
		case head["event"] != nil:
			var ev EventRecord
			if err := json.Unmarshal(head["event"], &ev); err != nil {
				return StreamItem{}, r.errorf("event: %v", err)
			}
			return StreamItem{Event: &ev}, nil
		case head["buffer"] != nil:
			var bl bufferLine
			if err := json.Unmarshal(head["buffer"], &bl); err != nil || bl.Points < 0 || bl.Compact < 0 {
				return StreamItem{}, r.errorf("buffer: %v", err)
			}
			buf, err := r.readBuffer(bl)
			if err != nil {
				return StreamItem{}, err
			}
			it := StreamItem{Buffer: buf, History: bl.History, After: bl.After}
			if bl.HistoryEnd != 0 {
				it.HistoryEnd = time.Unix(0, bl.HistoryEnd)
			}
			if bl.After {
				it.AfterFrom = time.Unix(0, bl.AfterFrom)
			}
			return it, nil
		default:
			return StreamItem{}, r.errorf("not a stream record: %.80q", line)
		}
	}
}

func (r *streamReader) addMetric(raw json.RawMessage) error {
	var ml metricLine
	if err := json.Unmarshal(raw, &ml); err != nil {
		return r.errorf("metric: %v", err)
	}
	typ, ok := measure.ParseValueType(ml.Type)
	if !ok {
		return r.errorf("metric %s: unknown type %q", ml.Name, ml.Type)
	}
	id, err := r.reg.Register(measure.Metric{Name: ml.Name, Type: typ, Semantics: measure.Semantics(ml.Semantics), Description: ml.Description, Plugin: ml.Plugin,
		Unit: measure.Unit{Prefix: measure.Prefix{Unique: ml.Unit[0], Display: ml.Unit[1]}, Base: measure.BaseUnit{Unique: ml.Unit[2], Display: ml.Unit[3]}}})
	if err != nil {
		return r.errorf("metric %s: %v", ml.Name, err)
	}
	r.ids[ml.ID] = id
	return nil
}

func (r *streamReader) addSeries(raw json.RawMessage) error {
	var sl seriesLine
	if err := json.Unmarshal(raw, &sl); err != nil {
		return r.errorf("series: %v", err)
	}
	if int(sl.ID) != len(r.series) {
		return r.errorf("series %d out of order (want %d)", sl.ID, len(r.series))
	}
	id, ok := r.ids[sl.Metric]
	if !ok {
		return r.errorf("series %d: metric %d not declared", sl.ID, sl.Metric)
	}
	s := &measure.Series{Metric: id, Resource: measure.Resource{Kind: sl.Resource[0], ID: sl.Resource[1]},
		Consumer: measure.Consumer{Kind: sl.Consumer[0], ID: sl.Consumer[1]}}
	for _, a := range sl.Attributes {
		attr, err := parseAttr(a)
		if err != nil {
			return r.errorf("series %d: attribute %s: %v", sl.ID, a, err)
		}
		s.Attributes = append(s.Attributes, attr)
	}
	r.series = append(r.series, s)
	return nil
}

func parseAttr(raw json.RawMessage) (measure.Attribute, error) {
	var parts [3]json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil {
		return measure.Attribute{}, err
	}
	var key, typ string
	if err := json.Unmarshal(parts[0], &key); err != nil {
		return measure.Attribute{}, err
	}
	if err := json.Unmarshal(parts[1], &typ); err != nil {
		return measure.Attribute{}, err
	}
	a := measure.Attribute{Key: key}
	var err error
	switch typ {
	case "s":
		a.Value.Type = measure.AttrString
		err = json.Unmarshal(parts[2], &a.Value.Str)
	case "u":
		a.Value.Type = measure.AttrU64
		err = json.Unmarshal(parts[2], &a.Value.U64)
	case "f":
		a.Value.Type = measure.AttrF64
		a.Value.F64, err = parseFloatJSON(parts[2])
	case "b":
		a.Value.Type = measure.AttrBool
		err = json.Unmarshal(parts[2], &a.Value.Bool)
	case "l":
		a.Value.Type = measure.AttrU64List
		err = json.Unmarshal(parts[2], &a.Value.List)
	default:
		err = fmt.Errorf("unknown type %q", typ)
	}
	return a, err
}

func parseFloatJSON(b []byte) (float64, error) {
	if len(b) > 1 && b[0] == '"' && b[len(b)-1] == '"' {
		b = b[1 : len(b)-1]
	}
	return strconv.ParseFloat(string(b), 64)
}

func (r *streamReader) readBuffer(bl bufferLine) (*measure.Buffer, error) {
	buf := &measure.Buffer{Points: make([]measure.Point, 0, bl.Points), Compact: make([]measure.SeriesPoint, 0, bl.Compact)}
	for i := 0; i < bl.Points+bl.Compact; i++ {
		line, err := r.scan()
		if errors.Is(err, io.EOF) {
			return nil, r.errorf("the stream ends inside a buffer (%d of %d points): it was cut", i, bl.Points+bl.Compact)
		}
		if err != nil {
			return nil, err
		}
		s, ns, v, err := r.parsePoint(line)
		if err != nil {
			return nil, err
		}
		if i < bl.Points {
			buf.Points = append(buf.Points, measure.Point{Metric: s.Metric, Timestamp: time.Unix(0, ns), Value: v,
				Resource: s.Resource, Consumer: s.Consumer, Attributes: s.Attributes})
		} else {
			buf.Compact = append(buf.Compact, measure.SeriesPoint{Series: s, Time: ns, Value: v})
		}
	}
	return buf, nil
}

func (r *streamReader) parsePoint(line []byte) (*measure.Series, int64, measure.Value, error) {
	bad := func(why string) (*measure.Series, int64, measure.Value, error) {
		return nil, 0, measure.Value{}, r.errorf("point %.80q: %s", line, why)
	}
	if len(line) < 2 || line[0] != '[' || line[len(line)-1] != ']' {
		return bad("not [series, ns, value]")
	}
	f := bytes.Split(line[1:len(line)-1], []byte{','})
	if len(f) != 3 {
		return bad("not [series, ns, value]")
	}
	sid, err := strconv.ParseUint(string(f[0]), 10, 32)
	if err != nil || int(sid) >= len(r.series) {
		return bad("unknown series")
	}
	ns, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return bad("bad time")
	}
	s := r.series[sid]
	var v measure.Value
	if r.typeOf(s.Metric) == measure.U64 {
		u, err := strconv.ParseUint(string(f[2]), 10, 64)
		if err != nil {
			return bad("bad value")
		}
		v = measure.Uint(u)
	} else {
		x, err := parseFloatJSON(f[2])
		if err != nil {
			return bad("bad value")
		}
		v = measure.Float(x)
	}
	return s, ns, v, nil
}

// typeOf is the value type of a metric of reg.
func (r *streamReader) typeOf(id measure.MetricID) measure.ValueType {
	if m, ok := r.reg.Metric(id); ok {
		return m.Type
	}
	return measure.F64
}
