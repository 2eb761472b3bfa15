package csv

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/alumet-go/alumet-agent/measure"
)

// LateColumn is the name of the last column, which holds the attributes that
// have no column of their own.
const LateColumn = "__late_attributes"

// FixedColumns are the first seven columns of every CSV file.
var FixedColumns = [...]string{"metric", "timestamp", "value", "resource_kind", "resource_id", "consumer_kind", "consumer_id"}

// reservedKey reports whether an attribute key is a column name of its own:
// such an attribute always goes to the late cell.
func reservedKey(key string) bool {
	if key == LateColumn {
		return true
	}
	for _, c := range FixedColumns {
		if key == c {
			return true
		}
	}
	return false
}

// DefaultBufferSize is the size of the Writer's buffer.
const DefaultBufferSize = 64 << 10

// Options shape the CSV bytes.
type Options struct {
	// Delimiter separates cells; 0 means ';'.
	Delimiter rune
	// LateDelimiter separates the key=value pairs of the late cell; 0 means ','.
	LateDelimiter rune
	// AppendUnitToMetricName writes the metric cell as name_unit.
	AppendUnitToMetricName bool
	// UseUnitDisplayName uses the unit's display name (B) instead of its
	// unique name (By).
	UseUnitDisplayName bool
	// BufferSize is the size of the write buffer; 0 means DefaultBufferSize.
	BufferSize int
}

// DefaultOptions are the options of the default configuration.
func DefaultOptions() Options { return DefaultConfig().Options() }

// Writer writes measurement buffers as Alumet CSV rows. It is not safe for
// concurrent use. Its output is buffered: call Flush.
//
// Whole rows only. The buffer holds whole rows (the header counts as one),
// and each write to the underlying writer is one call with whole rows, so
// that after every successful write the destination ends at a row boundary;
// Committed is that boundary, counted in bytes since the Writer started. A
// write error fails the Writer for good: it returns a *WriteError from then
// on, writes nothing more (no later row after a hole), and counts as lost
// the points of the rows that were buffered, the rest of the buffer being
// written and every point given afterwards. Cutting a partial write back to
// Committed is the caller's business (FileOutput truncates its file).
type Writer struct {
	out  io.Writer
	reg  *measure.Registry
	opts Options

	delim      []byte // UTF-8 of opts.Delimiter
	lateDelim  []byte // UTF-8 of opts.LateDelimiter
	delimASCII bool   // the delimiter is one byte, tested through special
	special    [256]bool
	// Word-at-a-time tests of needsQuotes: the special bytes repeated.
	specialWords [4]uint64
	// The timestamp and value cells are checked for quoting only when the
	// delimiter is one of the characters they can hold.
	checkTS, checkValue bool

	ts measure.Timestamps // the timestamp cells

	// The write buffer: whole rows only, flushed before it would exceed
	// size; a row larger than size is written on its own.
	buf       []byte
	size      int
	pending   int64 // points whose rows are in buf
	committed int64 // bytes of whole rows the underlying writer accepted
	lost      int64 // points not written since the failure, with those buffered then
	err       error // the write error that failed the Writer, nil before
	torn      bool  // the failed write was partial: bytes past committed reached out

	headerDone bool
	header     []string       // attribute columns, in order
	colIndex   map[string]int // attribute key → column (reserved keys excluded)

	metrics []metricCell // cache by MetricID

	// tails caches the end of a row (from resource_kind to the newline) of
	// recent series: the points of a series share it, and copying it is
	// cheaper than formatting and quote-checking its cells on every row.
	tails       [tailSlots]rowTail
	noTailCache bool // tests: the reference output, every tail formatted
	// seriesTails caches the row ends of compact points, by series.
	seriesTails map[*measure.Series][]byte

	// Scratch space reused from row to row.
	cols    []int // attribute index per column, -1 for none
	late    []int // indices of attributes going to the late cell
	line    []byte
	lateBuf []byte
	scratch []byte
}

type metricCell struct {
	cell  []byte // escaped metric cell
	known bool
}

// NewWriter returns a Writer that writes to w, resolving metric ids in reg.
// Invalid delimiters (the Config rules) make it panic.
func NewWriter(w io.Writer, reg *measure.Registry, opts Options) *Writer {
	if opts.Delimiter == 0 {
		opts.Delimiter = ';'
	}
	if opts.LateDelimiter == 0 {
		opts.LateDelimiter = ','
	}
	if err := checkDelimiterRune(opts.Delimiter); err != nil {
		panic("csv.NewWriter: delimiter: " + err.Error())
	}
	if err := checkDelimiterRune(opts.LateDelimiter); err != nil {
		panic("csv.NewWriter: late delimiter: " + err.Error())
	}
	if opts.Delimiter == opts.LateDelimiter {
		panic("csv.NewWriter: the delimiter and the late delimiter must differ")
	}
	if opts.BufferSize <= 0 {
		opts.BufferSize = DefaultBufferSize
	}
	wr := &Writer{
		out:       w,
		buf:       make([]byte, 0, opts.BufferSize),
		size:      opts.BufferSize,
		reg:       reg,
		opts:      opts,
		delim:     utf8.AppendRune(nil, opts.Delimiter),
		lateDelim: utf8.AppendRune(nil, opts.LateDelimiter),
		line:      make([]byte, 0, 512),
		lateBuf:   make([]byte, 0, 128),
		scratch:   make([]byte, 0, 128),
	}
	wr.special['"'] = true
	wr.special['\r'] = true
	wr.special['\n'] = true
	if opts.Delimiter < utf8.RuneSelf {
		wr.delimASCII = true
		wr.special[opts.Delimiter] = true
		for i, c := range []byte{'"', '\r', '\n', byte(opts.Delimiter)} {
			wr.specialWords[i] = lsb * uint64(c)
		}
	}
	wr.checkTS = !wr.delimASCII || strings.ContainsRune(tsChars, opts.Delimiter)
	wr.checkValue = !wr.delimASCII || strings.ContainsRune(valueChars, opts.Delimiter)
	return wr
}

// The characters of timestamp cells (RFC 3339 in UTC, and whatever
// time.Time.AppendFormat writes for years outside 0-9999) and of value
// cells (measure.Value.AppendText).
const (
	tsChars    = "0123456789-+:.TZ"
	valueChars = "0123456789-.NaNinf"
)

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// AssumeHeader tells the Writer that the destination already starts with a
// header whose attribute columns (between consumer_id and __late_attributes)
// are keys, as when appending to an existing file. The Writer then writes no
// header. An attribute column named like a fixed column, or repeated, stays
// empty; its attribute goes to the late cell or the first column of that name.
func (w *Writer) AssumeHeader(keys []string) {
	w.setHeader(slices.Clone(keys))
}

// HeaderWritten reports whether the header is written (or assumed).
func (w *Writer) HeaderWritten() bool { return w.headerDone }

// Header returns the attribute columns of the header, nil before it is decided.
func (w *Writer) Header() []string { return slices.Clone(w.header) }

// tailSlots is the size of the direct-mapped cache of row tails.
const tailSlots = 64

// rowTail is a cached row tail and the fields it was made from.
type rowTail struct {
	resource measure.Resource
	consumer measure.Consumer
	attrs    []measure.Attribute
	bytes    []byte
	valid    bool
}

// matches reports whether p's row ends with t's bytes: the same resource,
// consumer and attributes (compared by value: a buffer may be refilled).
func (t *rowTail) matches(p *measure.Point) bool {
	if !t.valid || t.resource != p.Resource || t.consumer != p.Consumer || len(t.attrs) != len(p.Attributes) {
		return false
	}
	for i := range t.attrs {
		a, b := &t.attrs[i], &p.Attributes[i]
		if a.Key != b.Key || a.Value.Type != b.Value.Type || a.Value.Str != b.Value.Str || a.Value.U64 != b.Value.U64 ||
			a.Value.Bool != b.Value.Bool || !sameFloat(a.Value.F64, b.Value.F64) || !slices.Equal(a.Value.List, b.Value.List) {
			return false
		}
	}
	return true
}

// sameFloat: bitwise, so that NaN matches NaN and 0 does not match -0.
func sameFloat(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }

// tailSlot picks the cache slot of a resource id: its length and last
// bytes (node names differ at the end: taurus-1, taurus-2…).
func tailSlot(id string) int {
	h := len(id) * 7
	if n := len(id); n > 0 {
		h += int(id[n-1]) * 31
		if n > 1 {
			h += int(id[n-2]) * 131
		}
	}
	return h & (tailSlots - 1)
}

func (w *Writer) setHeader(keys []string) {
	w.headerDone = true
	w.header = keys
	w.cols = make([]int, len(keys))
	w.colIndex = make(map[string]int, len(keys))
	w.tails = [tailSlots]rowTail{} // the columns changed: so do the tails
	for i, k := range keys {
		if reservedKey(k) {
			continue
		}
		if _, dup := w.colIndex[k]; !dup {
			w.colIndex[k] = i
		}
	}
}

// Buffered returns the number of bytes written but not yet flushed.
func (w *Writer) Buffered() int { return len(w.buf) }

// Committed returns the bytes of whole rows (the header included) that the
// underlying writer accepted: where the destination's last whole row ends,
// relative to where the Writer started.
func (w *Writer) Committed() int64 { return w.committed }

// Lost returns the points the Writer did not write because of a write
// error: 0 before one.
func (w *Writer) Lost() int64 { return w.lost }

// Err returns the write error that failed the Writer, nil before one.
func (w *Writer) Err() error { return w.err }

// WriteError is the error of a failed Writer.
type WriteError struct {
	Err       error // the underlying writer's error
	Lost      int64 // points not written, when the error was returned
	Committed int64 // where the last whole row ends, in bytes since the Writer started
	Torn      bool  // the failing write was partial: bytes after Committed reached the destination
}

func (e *WriteError) Error() string {
	return fmt.Sprintf("%v (%d point(s) not written)", e.Err, e.Lost)
}

func (e *WriteError) Unwrap() error { return e.Err }

// LostPoints is the number of points not written (pipeline.LossError).
func (e *WriteError) LostPoints() int64 { return e.Lost }

func (w *Writer) failure() error {
	return &WriteError{Err: w.err, Lost: w.lost, Committed: w.committed, Torn: w.torn}
}

// fail records the write error err, after n bytes of the failing write
// reached the destination: the buffered rows are lost.
func (w *Writer) fail(err error, n int) {
	w.err = err
	w.torn = n > 0
	w.lost += w.pending
	w.pending = 0
	w.buf = w.buf[:0]
}

// Flush writes the buffered rows to the underlying writer, in one call.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.failure()
	}
	if len(w.buf) == 0 {
		return nil
	}
	n, err := w.out.Write(w.buf)
	if err == nil && n < len(w.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.fail(err, n)
		return w.failure()
	}
	w.committed += int64(n)
	w.buf = w.buf[:0]
	w.pending = 0
	return nil
}

// emit buffers a whole row holding points points (0 for the header),
// flushing the buffer first when the row does not fit. On a write error,
// the row's points are counted as lost and the caller returns w.failure()
// once it counted its own.
func (w *Writer) emit(row []byte, points int64) error {
	if len(w.buf)+len(row) > w.size {
		if err := w.Flush(); err != nil {
			w.lost += points
			return err
		}
		if len(row) > w.size {
			n, err := w.out.Write(row)
			if err == nil && n < len(row) {
				err = io.ErrShortWrite
			}
			if err != nil {
				w.fail(err, n)
				w.lost += points
				return w.failure()
			}
			w.committed += int64(n)
			return nil
		}
	}
	w.buf = append(w.buf, row...)
	w.pending += points
	return nil
}

// SkippedError reports points whose metric is not registered: their rows
// are skipped, the others are written.
type SkippedError struct {
	N      int              // points skipped
	Metric measure.MetricID // the first unknown metric id
}

func (e *SkippedError) Error() string {
	return fmt.Sprintf("%d point(s) skipped: metric id %d is not registered", e.N, e.Metric)
}

// LostPoints is the number of points skipped (pipeline.LossError).
func (e *SkippedError) LostPoints() int64 { return int64(e.N) }

// WriteBuffer writes one row per point. The first non-empty buffer decides
// the header's attribute columns and writes the header; empty buffers write
// nothing. A point whose metric is unknown to the registry is skipped and
// reported in a *SkippedError, after the other rows are written. A write
// error of the underlying writer fails the Writer (see Writer): it is
// returned as a *WriteError wrapping it, at once and by every later call,
// which writes nothing and counts its points as lost.
func (w *Writer) WriteBuffer(buf *measure.Buffer) error {
	if w.err != nil {
		if buf != nil {
			w.lost += int64(buf.Len())
		}
		return w.failure()
	}
	if buf == nil || buf.Len() == 0 {
		return nil
	}
	if !w.headerDone {
		if err := w.writeHeader(buf); err != nil {
			w.lost += int64(buf.Len())
			return w.failure()
		}
	}
	var unknown int
	var firstUnknown measure.MetricID
	skip := func(id measure.MetricID) {
		if unknown == 0 {
			firstUnknown = id
		}
		unknown++
	}
	for i := range buf.Points {
		p := &buf.Points[i]
		cell, ok := w.metricCell(p.Metric)
		if !ok {
			skip(p.Metric)
			continue
		}
		w.line = w.appendRow(w.line[:0], cell, p)
		if err := w.put(); err != nil {
			w.lost += int64(buf.Len() - i - 1)
			return w.failure()
		}
	}
	for i := range buf.Compact {
		p := &buf.Compact[i]
		cell, ok := w.metricCell(p.Series.Metric)
		if !ok {
			skip(p.Series.Metric)
			continue
		}
		w.line = w.appendCompactRow(w.line[:0], cell, p)
		if err := w.put(); err != nil {
			w.lost += int64(len(buf.Compact) - i - 1)
			return w.failure()
		}
	}
	if unknown > 0 {
		return &SkippedError{N: unknown, Metric: firstUnknown}
	}
	return nil
}

// put adds the row in w.line to the buffer (the hot path of emit), or
// emits it.
func (w *Writer) put() error {
	if len(w.buf)+len(w.line) <= w.size {
		w.buf = append(w.buf, w.line...)
		w.pending++
		return nil
	}
	return w.emit(w.line, 1)
}

// maxSeriesTails bounds seriesTails: past it, the cache starts afresh.
const maxSeriesTails = 4096

// appendCompactRow is appendRow for a compact point: the same bytes, the
// row's end formatted once per series.
func (w *Writer) appendCompactRow(line, metric []byte, p *measure.SeriesPoint) []byte {
	sec, ns := p.Time/1e9, p.Time%1e9
	if ns < 0 {
		sec, ns = sec-1, ns+1e9
	}
	line = w.appendHead(line, metric, sec, uint32(ns), p.Value)
	s := p.Series
	if tail, ok := w.seriesTails[s]; ok {
		return append(line, tail...)
	}
	start := len(line)
	line = w.appendTail(line, &measure.Point{Resource: s.Resource, Consumer: s.Consumer, Attributes: s.Attributes})
	if !w.noTailCache {
		if w.seriesTails == nil || len(w.seriesTails) >= maxSeriesTails {
			w.seriesTails = make(map[*measure.Series][]byte)
		}
		w.seriesTails[s] = slices.Clone(line[start:])
	}
	return line
}

func (w *Writer) writeHeader(buf *measure.Buffer) error {
	keys := buf.AttributeKeys()
	keys = slices.DeleteFunc(keys, reservedKey)
	w.setHeader(keys)
	line := w.line[:0]
	for _, c := range FixedColumns {
		line = w.appendStringCell(line, c)
		line = append(line, w.delim...)
	}
	for _, k := range keys {
		line = w.appendStringCell(line, k)
		line = append(line, w.delim...)
	}
	line = w.appendStringCell(line, LateColumn)
	line = append(line, '\n')
	w.line = line
	return w.emit(line, 0)
}

// metricCell returns the escaped metric cell of id.
func (w *Writer) metricCell(id measure.MetricID) ([]byte, bool) {
	if int(id) < len(w.metrics) && w.metrics[id].known {
		return w.metrics[id].cell, true
	}
	m, ok := w.reg.Metric(id)
	if !ok {
		return nil, false
	}
	name := m.Name
	if w.opts.AppendUnitToMetricName {
		unit := m.Unit.UniqueName()
		if w.opts.UseUnitDisplayName {
			unit = m.Unit.DisplayName()
		}
		if unit != "" {
			name += "_" + unit
		}
	}
	if int(id) >= len(w.metrics) {
		w.metrics = append(w.metrics, make([]metricCell, int(id)+1-len(w.metrics))...)
	}
	cell := w.appendStringCell(nil, name)
	w.metrics[id] = metricCell{cell: cell, known: true}
	return cell, true
}

// appendHead appends a row's metric, timestamp (sec and ns after the Unix
// epoch) and value cells, each followed by the delimiter.
func (w *Writer) appendHead(line, metric []byte, sec int64, ns uint32, v measure.Value) []byte {
	d := w.delim
	line = append(line, metric...)
	line = append(line, d...)

	start := len(line)
	line = w.ts.AppendUnix(line, sec, ns)
	if w.checkTS {
		line = w.quoteTail(line, start)
	}
	line = append(line, d...)

	start = len(line)
	line = v.AppendText(line)
	if w.checkValue {
		line = w.quoteTail(line, start)
	}
	return append(line, d...)
}

// appendRow appends the row of p, terminated by '\n', to line.
func (w *Writer) appendRow(line, metric []byte, p *measure.Point) []byte {
	line = w.appendHead(line, metric, p.Timestamp.Unix(), uint32(p.Timestamp.Nanosecond()), p.Value)
	if w.noTailCache {
		return w.appendTail(line, p)
	}
	t := &w.tails[tailSlot(p.Resource.ID)]
	if t.matches(p) {
		return append(line, t.bytes...)
	}
	start := len(line)
	line = w.appendTail(line, p)
	t.resource, t.consumer, t.valid = p.Resource, p.Consumer, true
	t.attrs = append(t.attrs[:0], p.Attributes...)
	for i := range t.attrs {
		if l := t.attrs[i].Value.List; l != nil {
			t.attrs[i].Value.List = slices.Clone(l) // the caller may refill its list
		}
	}
	t.bytes = append(t.bytes[:0], line[start:]...)
	return line
}

// appendTail appends the end of p's row: resource, consumer, attribute
// columns, late cell, newline.
func (w *Writer) appendTail(line []byte, p *measure.Point) []byte {
	d := w.delim
	start := 0
	line = w.appendStringCell(line, p.Resource.Kind)
	line = append(line, d...)
	line = w.appendStringCell(line, p.Resource.ID)
	line = append(line, d...)
	line = w.appendStringCell(line, p.Consumer.Kind)
	line = append(line, d...)
	line = w.appendStringCell(line, p.Consumer.ID)
	line = append(line, d...)

	attrs := p.Attributes
	for i := range w.cols {
		w.cols[i] = -1
	}
	w.late = w.late[:0]
	for j := range attrs {
		if c, ok := w.colIndex[attrs[j].Key]; ok {
			w.cols[c] = j // a repeated key: the last one wins
		} else {
			w.late = append(w.late, j)
		}
	}
	for _, j := range w.cols {
		if j >= 0 {
			start = len(line)
			line = attrs[j].Value.AppendText(line)
			line = w.quoteTail(line, start)
		}
		line = append(line, d...)
	}
	if len(w.late) > 0 {
		line = w.appendLateCell(line, attrs)
	}
	return append(line, '\n')
}

// appendLateCell appends the late cell: the key=value pairs of the
// attributes listed in w.late, sorted by key, the last of a repeated key
// winning, the late delimiter escaped in values, the whole cell quoted.
func (w *Writer) appendLateCell(line []byte, attrs []measure.Attribute) []byte {
	late := w.late
	if len(late) > 1 {
		// Stable, so that among equal keys the last attribute stays last.
		slices.SortStableFunc(late, func(a, b int) int {
			return strings.Compare(attrs[a].Key, attrs[b].Key)
		})
	}
	lb := w.lateBuf[:0]
	first := true
	for i, j := range late {
		if i+1 < len(late) && attrs[late[i+1]].Key == attrs[j].Key {
			continue // a later attribute with this key wins
		}
		if !first {
			lb = append(lb, w.lateDelim...)
		}
		first = false
		lb = append(lb, attrs[j].Key...)
		lb = append(lb, '=')
		start := len(lb)
		lb = attrs[j].Value.AppendText(lb)
		lb = w.escapeLate(lb, start)
	}
	w.lateBuf = lb
	start := len(line)
	line = append(line, lb...)
	return w.quoteTail(line, start)
}

// escapeLate puts a backslash before every late delimiter in b[start:].
func (w *Writer) escapeLate(b []byte, start int) []byte {
	if !bytes.Contains(b[start:], w.lateDelim) {
		return b
	}
	w.scratch = append(w.scratch[:0], b[start:]...)
	b = b[:start]
	s := w.scratch
	for {
		i := bytes.Index(s, w.lateDelim)
		if i < 0 {
			break
		}
		b = append(b, s[:i]...)
		b = append(b, '\\')
		b = append(b, w.lateDelim...)
		s = s[i+len(w.lateDelim):]
	}
	return append(b, s...)
}

func (w *Writer) appendStringCell(line []byte, s string) []byte {
	start := len(line)
	line = append(line, s...)
	return w.quoteTail(line, start)
}

// quoteTail escapes the cell line[start:] the RFC 4180 way when it holds the
// delimiter, a quote, CR or LF.
func (w *Writer) quoteTail(line []byte, start int) []byte {
	if !w.needsQuotes(line[start:]) {
		return line
	}
	w.scratch = append(w.scratch[:0], line[start:]...)
	line = append(line[:start], '"')
	s := w.scratch
	for {
		i := bytes.IndexByte(s, '"')
		if i < 0 {
			break
		}
		line = append(line, s[:i+1]...)
		line = append(line, '"')
		s = s[i+1:]
	}
	line = append(line, s...)
	return append(line, '"')
}

func (w *Writer) needsQuotes(cell []byte) bool {
	i := 0
	if w.delimASCII {
		// Eight bytes at a time: a byte of x equal to c is a zero byte of
		// x^(c repeated), and (v-lsb) &^ v & msb is non-zero exactly when
		// v has a zero byte.
		sw := &w.specialWords
		for ; i+8 <= len(cell); i += 8 {
			x := binary.LittleEndian.Uint64(cell[i:])
			a, b, c, e := x^sw[0], x^sw[1], x^sw[2], x^sw[3]
			if ((a-lsb)&^a|(b-lsb)&^b|(c-lsb)&^c|(e-lsb)&^e)&msb != 0 {
				return true
			}
		}
	}
	special := &w.special
	for _, c := range cell[i:] {
		if special[c] {
			return true
		}
	}
	return !w.delimASCII && bytes.Contains(cell, w.delim)
}

// appendTimestamp appends t in UTC the way time.RFC3339Nano formats it,
// formatting the date and time of day once per second: rows come in time
// order, many per second.
func (w *Writer) appendTimestamp(line []byte, t time.Time) []byte {
	return w.ts.AppendTime(line, t)
}
