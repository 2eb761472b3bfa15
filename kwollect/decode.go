package kwollect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Label is one row label (any label but _device_orig).
type Label struct{ Key, Value string }

// Row is one decoded element of a Kwollect metrics response.
type Row struct {
	// Timestamp is the row's instant, with the offset the server wrote
	// (Europe/Paris); callers normally use Timestamp.UTC().
	Timestamp time.Time
	DeviceID  string
	MetricID  string
	// Value is the reading: NaN for "NaN", ±Inf for "Infinity"/"-Infinity",
	// and NaN as well when Null is set.
	Value float64
	// Null reports a JSON null value (only as_rate produces them); callers
	// skip such rows.
	Null bool
	// DeviceOrig is labels._device_orig: the wattmetre ports or PDU outlets
	// the value comes from, in the server's order. A plain string gives one
	// element; nil when absent.
	DeviceOrig []string
	// Labels holds every other label sorted by key. String values are kept
	// as is, other JSON values as their compact JSON text (e.g. `1`, `true`).
	Labels []Label
	// Series, when not 0, names the row's series in this process: rows with
	// the same Series have the same DeviceID, MetricID, DeviceOrig and
	// Labels, so a consumer can look up what it built for the series by
	// this number instead of comparing those fields. Sessions set it on the
	// rows they deliver; decoders leave it 0.
	Series uint64
}

// Label returns the value of the label key (not _device_orig).
func (r *Row) Label(key string) (string, bool) {
	for _, l := range r.Labels {
		if l.Key == key {
			return l.Value, true
		}
	}
	return "", false
}

// SeriesKey identifies the series the row belongs to: device, metric,
// _device_orig and the other labels. Kwollect orders rows by timestamp only,
// so callers group by this key before computing anything per series. The key
// is an unambiguous, human-readable string (every part quoted); treat it as
// opaque.
func (r *Row) SeriesKey() string {
	return string(r.appendSeriesKey(make([]byte, 0, 64)))
}

// appendSeriesKey appends the SeriesKey to b; the fetch engine reuses one
// buffer per query instead of allocating a string per row.
func (r *Row) appendSeriesKey(b []byte) []byte {
	b = strconv.AppendQuote(b, r.DeviceID)
	b = append(b, ' ')
	b = strconv.AppendQuote(b, r.MetricID)
	if r.DeviceOrig != nil {
		b = append(b, " _device_orig=["...)
		for i, o := range r.DeviceOrig {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendQuote(b, o)
		}
		b = append(b, ']')
	}
	for _, l := range r.Labels {
		b = append(b, ' ')
		b = strconv.AppendQuote(b, l.Key)
		b = append(b, '=')
		b = strconv.AppendQuote(b, l.Value)
	}
	return b
}

// RowError describes one malformed element of the response array. The
// element is skipped and decoding goes on.
type RowError struct {
	Index int    // 0-based position in the response array
	Err   error  // what is wrong
	Raw   string // the element's known fields as compact JSON (at most 256 bytes), for logs
}

func (e *RowError) Error() string {
	if e.Raw == "" {
		return fmt.Sprintf("kwollect: row %d skipped: %v", e.Index, e.Err)
	}
	return fmt.Sprintf("kwollect: row %d skipped: %v: %s", e.Index, e.Err, e.Raw)
}

func (e *RowError) Unwrap() error { return e.Err }

// DecodeOptions tunes DecodeWith.
type DecodeOptions struct {
	// OnBadRow, if set, is called for every malformed element (missing or
	// bad timestamp, value of the wrong type, element not an object, ...).
	// The element is skipped either way; this hook only lets the caller log
	// it. It is called synchronously from the decoding goroutine.
	OnBadRow func(*RowError)
	// MaxRowBytes bounds the size of one element of the array (default
	// 1 MiB, DefaultMaxRowBytes; negative: no bound). A larger element is
	// skipped without being held in memory and reported to OnBadRow as a
	// *RowError wrapping ErrRowTooLarge, with its index and size; the rest
	// of the array is read.
	MaxRowBytes int
	// General selects the general decoder (encoding/json) instead of the
	// fast scanner for the known response shape. Both give the same rows,
	// reports and errors; this exists for tests and benchmarks.
	General bool

	// arrayEnd, if set, is called when the closing ']' has been read,
	// before looking for trailing data (Client shortens the stall
	// deadline then: the rows are all in).
	arrayEnd func()
	// noTemplates turns the fast decoder's per-series templates off
	// (for the tests that compare the two).
	noTemplates bool
	// tmStats, if set, receives the templates' state at the end (tests).
	tmStats *templates
	// tmHit, if set, is told before each call of fn which template decoded
	// the row (nil: none did). A template stands for one series, so the
	// fetch engine keeps its per-series state on it and skips the lookups.
	tmHit **template
	// slot, if set, gives the Row each element is decoded into (the fetch
	// engine's next free place in its batch, so that a row it keeps is
	// not copied); fn is then called with that pointer.
	slot func() *Row
}

func (o *DecodeOptions) ended() {
	if o.arrayEnd != nil {
		o.arrayEnd()
	}
}

// TruncatedError reports a response body that stopped being a valid JSON
// array after Rows rows were delivered: the connection was cut, the server
// aborted mid-stream, or a proxy appended garbage. The rows already
// delivered are valid; retrying the query is reasonable (see IsRetryable).
type TruncatedError struct {
	Rows int    // rows delivered before the break
	Err  error  // io.ErrUnexpectedEOF, a *json.SyntaxError or the read error
	URL  string // the request URL when known (set by Client)
}

func (e *TruncatedError) Error() string {
	from := ""
	if e.URL != "" {
		from = " from " + e.URL
	}
	var se *json.SyntaxError
	if errors.As(e.Err, &se) {
		return fmt.Sprintf("kwollect: response body%s is malformed after %d rows: %v", from, e.Rows, e.Err)
	}
	var to *TimeoutError
	if errors.As(e.Err, &to) {
		return fmt.Sprintf("kwollect: response body%s stalled after %d rows (retry): %v", from, e.Rows, e.Err)
	}
	return fmt.Sprintf("kwollect: response body%s ended early after %d rows (connection cut or server aborted; retry): %v", from, e.Rows, e.Err)
}

func (e *TruncatedError) Unwrap() error { return e.Err }

// DefaultMaxRowBytes is the default DecodeOptions.MaxRowBytes. A Kwollect
// row is a few hundred bytes.
const DefaultMaxRowBytes = 1 << 20

// ErrRowTooLarge is wrapped by the RowError.Err of an element larger than
// DecodeOptions.MaxRowBytes.
var ErrRowTooLarge = errors.New("element too large")

// ErrTrailingData is wrapped by the error returned when something other
// than whitespace follows the closing ']' of the array (garbage, a second
// array): every row of the array was delivered, and the count returned
// with it is complete.
var ErrTrailingData = errors.New("kwollect: data after the end of the response array")

// ErrNotArray is wrapped by the error returned when a 2xx body is not a JSON
// array at all (an HTML page, an object, ...).
var ErrNotArray = errors.New("kwollect: response body is not a JSON array")

// Decode streams a Kwollect metrics response body (a JSON array of rows) and
// calls fn for each valid row, as soon as it is decoded: the body is never
// held in memory. Malformed rows are skipped silently (use DecodeWith to see
// them). The *Row passed to fn is overwritten after fn returns, but its
// slices are never reused, so a shallow copy (saved := *r) is safe to keep.
// Rows of one series may share their DeviceOrig and Labels: treat them as
// read-only.
//
// Decode returns the number of rows for which fn returned nil. An error from
// fn stops decoding and is returned unchanged. A body cut or broken after
// the opening '[' gives a *TruncatedError; a body that is not an array
// wraps ErrNotArray. After the closing ']' Decode reads on to the end of the
// body (at most 64 KiB of whitespace): anything else there gives an error
// wrapping ErrTrailingData, returned with the complete count. Elements
// larger than DefaultMaxRowBytes are skipped (see DecodeOptions).
func Decode(r io.Reader, fn func(*Row) error) (int, error) {
	return DecodeWith(r, DecodeOptions{}, fn)
}

// DecodeWith is Decode with options (a hook for malformed rows).
func DecodeWith(r io.Reader, opts DecodeOptions, fn func(*Row) error) (int, error) {
	if opts.MaxRowBytes == 0 {
		opts.MaxRowBytes = DefaultMaxRowBytes
	}
	if opts.General {
		return decodeGeneral(r, false, 0, 0, opts, fn)
	}
	return decodeFast(r, fastBufSize, opts, fn)
}

// decodeGeneral is the encoding/json decoder. The fast decoder also uses it
// to finish a stream it cannot handle: then r starts with "[0" (skipDummy:
// a dummy element standing for the elements already delivered) or "[", and
// idx0 and n0 are the elements seen and rows delivered so far.
func decodeGeneral(r io.Reader, skipDummy bool, idx0, n0 int, opts DecodeOptions, fn func(*Row) error) (int, error) {
	var lim *rowLimiter
	if opts.MaxRowBytes > 0 {
		first := idx0
		if skipDummy {
			first--
		}
		lim = &rowLimiter{r: r, max: opts.MaxRowBytes, idx: first}
		r = lim
	}
	bad := func(e *RowError) {
		if opts.OnBadRow == nil {
			return
		}
		if lim != nil {
			if size, ok := lim.take(e.Index); ok {
				e = tooLarge(e.Index, size, opts.MaxRowBytes)
			}
		}
		opts.OnBadRow(e)
	}
	dec := json.NewDecoder(r)
	tok, err := dec.Token()
	if err != nil {
		var se *json.SyntaxError
		switch {
		case errors.Is(err, io.EOF):
			return 0, &TruncatedError{Rows: 0, Err: io.ErrUnexpectedEOF}
		case errors.As(err, &se):
			return 0, fmt.Errorf("%w: %v", ErrNotArray, err)
		default:
			return 0, &TruncatedError{Rows: 0, Err: err}
		}
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return 0, fmt.Errorf("%w: it starts with %s", ErrNotArray, describeToken(tok))
	}
	if skipDummy {
		var dummy json.RawMessage
		if err := dec.Decode(&dummy); err != nil {
			return n0, truncated(n0, err)
		}
	}
	var (
		w   wireRow
		row Row
		n   = n0
	)
	for idx := idx0; dec.More(); idx++ {
		w.reset()
		if err := dec.Decode(&w); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				// The element was consumed whole; only its type is wrong.
				bad(&RowError{Index: idx, Err: fmt.Errorf("element is a JSON %s, not an object", te.Value)})
				continue
			}
			return n, truncated(n, err)
		}
		if err := w.toRow(&row); err != nil {
			bad(&RowError{Index: idx, Err: err, Raw: w.snippet()})
			continue
		}
		if err := fn(&row); err != nil {
			return n, err
		}
		n++
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return n, truncated(n, err)
	}
	opts.ended()
	return n, checkTrailing(io.MultiReader(dec.Buffered(), r))
}

func tooLarge(idx int, size int64, max int) *RowError {
	return &RowError{Index: idx, Err: fmt.Errorf("%w: %d bytes, over the %d-byte limit (MaxRowBytes)", ErrRowTooLarge, size, max)}
}

// maxTrailingScan bounds the whitespace read after the array.
const maxTrailingScan = 64 << 10

// checkTrailing reads what follows the array: nil for whitespace up to the
// end (or a read error: the array itself was complete), else an error
// wrapping ErrTrailingData quoting the first bytes.
func checkTrailing(r io.Reader) error {
	var buf [512]byte
	var snip []byte
	for scanned := 0; scanned < maxTrailingScan && len(snip) < 32; {
		n, err := r.Read(buf[:])
		scanned += n
		for _, c := range buf[:max(n, 0)] {
			if len(snip) == 0 && (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
				continue
			}
			if len(snip) < 32 {
				snip = append(snip, c)
			}
		}
		if err != nil {
			break
		}
	}
	if len(snip) == 0 {
		return nil
	}
	return fmt.Errorf("%w: it goes on with %q", ErrTrailingData, strings.ToValidUTF8(string(snip), "\uFFFD"))
}

// rowLimiter passes a response body through to encoding/json, replacing
// each element of the top-level array larger than max bytes by null
// without holding it, and recording its index and size (take). It follows
// only the lexical structure (strings, nesting); the decoder behind it
// checks the grammar. At most max bytes of one element are buffered.
type rowLimiter struct {
	r     io.Reader
	max   int
	idx   int // index of the current or next element
	state int
	depth int
	inStr bool
	esc   bool
	elem  []byte // the current element, while within max
	size  int64  // bytes of the current element
	out   []byte // out[off:] is ready for the decoder
	off   int
	in    []byte
	err   error
	over  []oversize // recorded, not taken yet
}

type oversize struct {
	idx  int
	size int64
}

const (
	limStart   = iota // before the '['
	limBetween        // in the array, between elements
	limElem           // in an element, buffering it
	limSkip           // in an element over max, dropping it
	limScalar         // in a scalar element (ends before a delimiter)
	limScalarSkip
	limAfter // after the array, or not an array: pass through
)

// take returns the size of element idx if it was replaced.
func (l *rowLimiter) take(idx int) (int64, bool) {
	for len(l.over) > 0 && l.over[0].idx < idx {
		l.over = l.over[1:]
	}
	if len(l.over) > 0 && l.over[0].idx == idx {
		o := l.over[0]
		l.over = l.over[1:]
		return o.size, true
	}
	return 0, false
}

func (l *rowLimiter) Read(p []byte) (int, error) {
	for len(l.out) == l.off {
		if l.err != nil {
			return 0, l.err
		}
		if l.in == nil {
			l.in = make([]byte, 32<<10)
		}
		n, err := l.r.Read(l.in)
		for _, c := range l.in[:max(min(n, len(l.in)), 0)] {
			l.byte(c)
		}
		if err != nil {
			l.err = err
			// An element cut by the end: let the decoder see it (a
			// dropped one stays dropped).
			if l.state == limElem || l.state == limScalar {
				l.out = append(l.out, l.elem...)
				l.elem = l.elem[:0]
			}
		}
	}
	n := copy(p, l.out[l.off:])
	l.off += n
	if l.off == len(l.out) {
		l.out, l.off = l.out[:0], 0
	}
	return n, nil
}

func isScalarByte(c byte) bool {
	return c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func (l *rowLimiter) byte(c byte) {
	switch l.state {
	case limStart:
		l.out = append(l.out, c)
		switch c {
		case ' ', '\n', '\t', '\r':
		case '[':
			l.state = limBetween
		default:
			l.state = limAfter
		}
		return
	case limAfter:
		l.out = append(l.out, c)
		return
	case limBetween:
		switch c {
		case ' ', '\n', '\t', '\r', ',':
			l.out = append(l.out, c)
			return
		case ']':
			l.out = append(l.out, c)
			l.state = limAfter
			return
		}
		l.size, l.depth, l.inStr, l.esc = 0, 0, false, false
		l.state = limElem
		if isScalarByte(c) {
			l.state = limScalar
		}
	case limScalar, limScalarSkip:
		if !isScalarByte(c) {
			l.endElem()
			l.byte(c)
			return
		}
	}
	l.size++
	if l.state == limElem || l.state == limScalar {
		if l.size > int64(l.max) {
			l.elem = l.elem[:0]
			if l.state == limElem {
				l.state = limSkip
			} else {
				l.state = limScalarSkip
			}
		} else {
			l.elem = append(l.elem, c)
		}
	}
	if l.state == limScalar || l.state == limScalarSkip {
		return
	}
	switch {
	case l.inStr:
		switch {
		case l.esc:
			l.esc = false
		case c == '\\':
			l.esc = true
		case c == '"':
			l.inStr = false
			if l.depth == 0 {
				l.endElem()
			}
		}
	case c == '"':
		l.inStr = true
	case c == '{' || c == '[':
		l.depth++
	case c == '}' || c == ']':
		l.depth--
		if l.depth <= 0 {
			l.endElem()
		}
	default:
		if l.depth == 0 {
			// Not a value start (e.g. ':' or '}' between elements): one
			// byte for the decoder to reject.
			l.endElem()
		}
	}
}

func (l *rowLimiter) endElem() {
	if l.state == limSkip || l.state == limScalarSkip {
		l.over = append(l.over, oversize{l.idx, l.size})
		l.out = append(l.out, "null"...)
	} else {
		l.out = append(l.out, l.elem...)
	}
	l.elem = l.elem[:0]
	l.idx++
	l.state = limBetween
}

func truncated(n int, err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return &TruncatedError{Rows: n, Err: err}
}

func describeToken(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			return "an object"
		}
		return fmt.Sprintf("%q", string(v))
	case string:
		return "a string"
	case nil:
		return "null"
	case bool:
		return "a boolean"
	default:
		return "a number"
	}
}

// wireRow receives one element. Every field is raw so that a field of the
// wrong type is reported per row instead of aborting the stream, and so that
// the buffers are reused from row to row.
type wireRow struct {
	Timestamp json.RawMessage `json:"timestamp,omitempty"`
	DeviceID  json.RawMessage `json:"device_id,omitempty"`
	MetricID  json.RawMessage `json:"metric_id,omitempty"`
	Value     json.RawMessage `json:"value,omitempty"`
	Labels    json.RawMessage `json:"labels,omitempty"`
}

// reset empties the fields but keeps their buffers: RawMessage.UnmarshalJSON
// appends to m[:0], and an absent field must read as empty.
func (w *wireRow) reset() {
	w.Timestamp = w.Timestamp[:0]
	w.DeviceID = w.DeviceID[:0]
	w.MetricID = w.MetricID[:0]
	w.Value = w.Value[:0]
	w.Labels = w.Labels[:0]
}

func (w *wireRow) snippet() string {
	b, err := json.Marshal(w)
	if err != nil {
		return ""
	}
	const max = 256
	cut := ""
	if len(b) > max {
		b, cut = b[:max], "…"
	}
	// Raw JSON may hold invalid UTF-8; the snippet goes to logs.
	return strings.ToValidUTF8(string(b), "\uFFFD") + cut
}

func (w *wireRow) toRow(r *Row) error {
	if len(w.Timestamp) == 0 || isNull(w.Timestamp) {
		return errors.New("missing timestamp")
	}
	ts, ok := jsonString(w.Timestamp)
	if !ok {
		return errors.New("timestamp is not a string")
	}
	t, msg := parseTimestamp(ts)
	if msg != "" {
		return fmt.Errorf("bad timestamp %q: %s", truncateForError(ts), msg)
	}
	dev, err := requiredString(w.DeviceID, "device_id")
	if err != nil {
		return err
	}
	met, err := requiredString(w.MetricID, "metric_id")
	if err != nil {
		return err
	}
	*r = Row{Timestamp: t, DeviceID: dev, MetricID: met}
	if err := decodeValue(w.Value, r); err != nil {
		return err
	}
	return decodeLabels(w.Labels, r)
}

func requiredString(raw json.RawMessage, name string) (string, error) {
	if len(raw) == 0 || isNull(raw) {
		return "", fmt.Errorf("missing %s", name)
	}
	s, ok := jsonString(raw)
	if !ok {
		return "", fmt.Errorf("%s is not a string", name)
	}
	return s, nil
}

func decodeValue(raw json.RawMessage, r *Row) error {
	if len(raw) == 0 {
		return errors.New("missing value")
	}
	switch c := raw[0]; {
	case c == 'n':
		r.Null, r.Value = true, math.NaN()
	case c == '"':
		s, _ := jsonString(raw)
		switch s {
		case "NaN":
			r.Value = math.NaN()
		case "Infinity":
			r.Value = math.Inf(1)
		case "-Infinity":
			r.Value = math.Inf(-1)
		default:
			return fmt.Errorf("value is the string %q (want a number, \"NaN\", \"Infinity\", \"-Infinity\" or null)", truncateForError(s))
		}
	case c == '-' || (c >= '0' && c <= '9'):
		v, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			return fmt.Errorf("value %s does not fit a float64", truncateForError(string(raw)))
		}
		r.Value = v
	default:
		return fmt.Errorf("value is a JSON %s (want a number, \"NaN\" or null)", jsonKind(c))
	}
	return nil
}

func decodeLabels(raw json.RawMessage, r *Row) error {
	if len(raw) == 0 || isNull(raw) {
		return nil
	}
	if raw[0] != '{' {
		return fmt.Errorf("labels is a JSON %s, not an object", jsonKind(raw[0]))
	}
	var labels []Label
	err := scanObject(raw, func(key string, v []byte) {
		if key == "_device_orig" {
			if orig, ok := deviceOrig(v); ok {
				r.DeviceOrig = orig
				return
			}
			// An unexpected shape is kept as an ordinary label rather than
			// losing the row.
		}
		labels = append(labels, Label{Key: key, Value: labelValue(v)})
	})
	if err != nil {
		return fmt.Errorf("labels: %w", err)
	}
	if len(labels) > 1 {
		// Stable, so that for a repeated key the last value wins, as with
		// encoding/json.
		slices.SortStableFunc(labels, func(a, b Label) int { return strings.Compare(a.Key, b.Key) })
		out := labels[:0]
		for i, l := range labels {
			if i+1 < len(labels) && labels[i+1].Key == l.Key {
				continue
			}
			out = append(out, l)
		}
		labels = out
	}
	r.Labels = labels
	return nil
}

// deviceOrig accepts a string, an array of strings or null.
func deviceOrig(raw []byte) ([]string, bool) {
	switch raw[0] {
	case 'n':
		return nil, true
	case '"':
		s, ok := jsonString(raw)
		return []string{s}, ok
	case '[':
		out := []string{}
		ok := true
		err := scanArray(raw, func(v []byte) {
			s, isStr := jsonString(v)
			ok = ok && isStr
			out = append(out, s)
		})
		if err != nil || !ok {
			return nil, false
		}
		return out, true
	}
	return nil, false
}

// scanObject calls fn for each member of a JSON object. raw has already been
// validated by encoding/json, so a light scanner is enough (and several
// times faster than unmarshalling into a map); it still checks bounds and
// reports anything unexpected instead of panicking.
func scanObject(raw []byte, fn func(key string, val []byte)) error {
	i := skipWS(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return errors.New("not an object")
	}
	i = skipWS(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return nil
	}
	for {
		end := valueEnd(raw, i)
		if end < 0 || raw[i] != '"' {
			return errors.New("bad object key")
		}
		key, ok := jsonString(raw[i:end])
		if !ok {
			return errors.New("bad object key")
		}
		i = skipWS(raw, end)
		if i >= len(raw) || raw[i] != ':' {
			return errors.New("missing ':'")
		}
		i = skipWS(raw, i+1)
		end = valueEnd(raw, i)
		if end < 0 {
			return errors.New("bad object value")
		}
		fn(key, raw[i:end])
		i = skipWS(raw, end)
		if i >= len(raw) {
			return errors.New("unterminated object")
		}
		switch raw[i] {
		case ',':
			i = skipWS(raw, i+1)
		case '}':
			return nil
		default:
			return errors.New("bad object separator")
		}
	}
}

// scanArray calls fn for each element of a validated JSON array.
func scanArray(raw []byte, fn func(val []byte)) error {
	i := skipWS(raw, 0)
	if i >= len(raw) || raw[i] != '[' {
		return errors.New("not an array")
	}
	i = skipWS(raw, i+1)
	if i < len(raw) && raw[i] == ']' {
		return nil
	}
	for {
		end := valueEnd(raw, i)
		if end < 0 {
			return errors.New("bad array element")
		}
		fn(raw[i:end])
		i = skipWS(raw, end)
		if i >= len(raw) {
			return errors.New("unterminated array")
		}
		switch raw[i] {
		case ',':
			i = skipWS(raw, i+1)
		case ']':
			return nil
		default:
			return errors.New("bad array separator")
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the index just after the JSON value starting at b[i],
// or -1.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1
			}
		}
		return -1
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end := valueEnd(b, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default:
		j := i
		for j < len(b) {
			switch b[j] {
			case ',', '}', ']', ' ', '\n', '\t', '\r':
				if j == i {
					return -1
				}
				return j
			}
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
}

func labelValue(raw json.RawMessage) string {
	if s, ok := jsonString(raw); ok {
		return s
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		buf.Reset()
		buf.Write(raw)
	}
	// Strings nested in arrays/objects may hold invalid UTF-8; labels end
	// up in CSV and logs.
	return strings.ToValidUTF8(buf.String(), "\uFFFD")
}

// jsonString decodes a JSON string, with a copy-free scan for the usual
// case of plain ASCII without escapes.
func jsonString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	simple := true
	for _, c := range inner {
		if c == '\\' || c == '"' || c < 0x20 || c >= 0x80 {
			simple = false
			break
		}
	}
	if simple {
		return string(inner), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

func isNull(raw []byte) bool { return string(raw) == "null" }

func jsonKind(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case '"':
		return "string"
	case 'n':
		return "null"
	}
	return "number"
}
