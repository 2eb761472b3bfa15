package promremotewrite

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sync/atomic"

	"github.com/klauspost/compress/snappy"

	"github.com/alumet-go/alumet-agent/internal/redact"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
	"github.com/alumet-go/alumet-agent/plugins/internal/push"
)

var (
	_ pipeline.Output          = (*Output)(nil)
	_ pipeline.CompactWriter   = (*Output)(nil)
	_ pipeline.FailureReporter = (*Output)(nil)
)

// Output sends the points through a push.Queue: Write records each point
// as (series, time, value) in the batch being filled; the sender builds a
// WriteRequest of a batch, grouped by series, compresses it with snappy
// and POSTs it. A slow or absent receiver never holds the pipeline back.
type Output struct {
	q      *push.Queue
	log    *slog.Logger
	enc    *encoder
	client *http.Client
	url    string
	header http.Header
	over   atomic.Int64 // points of series beyond maxSeries
	buf    []byte       // the sender's request buffer
}

// recordSize: a series number (uvarint, up to 3 bytes), the time and the
// value (8 bytes each).
const recordSize = 3 + 16

func newOutput(c *Config, reg *measure.Registry, logger *slog.Logger, o push.Options) (*Output, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	out := &Output{log: logger, enc: newEncoder(reg, c.AddAttributesToLabels), url: c.URL,
		client: push.NewHTTPClient(c.RequestTimeout()), header: http.Header(c.header())}
	password, token, err := c.secrets()
	if err != nil {
		return nil, err
	}
	req, _ := http.NewRequest(http.MethodPost, c.URL, nil)
	switch {
	case c.Username != "":
		redact.Register(password)
		req.SetBasicAuth(c.Username, password)
		out.header.Set("Authorization", req.Header.Get("Authorization"))
	case token != "":
		redact.Register(token)
		out.header.Set("Authorization", "Bearer "+token)
	}
	o.Name, o.Target, o.Logger, o.Send = Name, push.RedactedURL(c.URL), logger, out.send
	if o.BatchBytes == 0 {
		o.BatchBytes = max(o.BatchPoints, push.DefaultBatchPoints) * recordSize
	}
	if out.q, err = push.New(o); err != nil {
		return nil, err
	}
	return out, nil
}

// WritesCompact says Write reads Buffer.Compact (pipeline.CompactWriter).
func (o *Output) WritesCompact() {}

// ReportFailuresTo implements pipeline.FailureReporter.
func (o *Output) ReportFailuresTo(report func(error)) { o.q.ReportFailuresTo(report) }

func appendRecord(b []byte, id uint32, ns int64, v float64) []byte {
	b = binary.AppendUvarint(b, uint64(id))
	b = binary.LittleEndian.AppendUint64(b, uint64(ns))
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
}

// Write records buf's points in the queue.
func (o *Output) Write(_ context.Context, buf *measure.Buffer) error {
	if buf.Len() == 0 {
		return nil
	}
	var over int64
	err := o.q.Append(buf.Len(), func(a *push.Appender) {
		for i := range buf.Points {
			p := &buf.Points[i]
			id, ok := o.enc.pointSeries(p)
			if !ok {
				over++
				continue
			}
			a.Buf = appendRecord(a.Buf, id, p.Timestamp.UnixNano(), p.Value.Float64())
			a.End()
		}
		for i := range buf.Compact {
			p := &buf.Compact[i]
			id, ok := o.enc.compactSeries(p.Series)
			if !ok {
				over++
				continue
			}
			a.Buf = appendRecord(a.Buf, id, p.Time, p.Value.Float64())
			a.End()
		}
	})
	if over > 0 && o.over.Add(over) == over {
		o.log.Error(fmt.Sprintf("%s: more than %d series: the points of new series are left out (counted as lost)", Name, maxSeries))
	}
	return err
}

// send builds, compresses and POSTs the WriteRequest of a batch.
func (o *Output) send(ctx context.Context, body []byte, _ int) error {
	for len(body) > 0 {
		id, n := binary.Uvarint(body)
		if n <= 0 || len(body) < n+16 {
			return &push.PermanentError{Err: errors.New("prometheus-remote-write: a corrupt batch")}
		}
		sb, ok := o.enc.lookup(uint32(id))
		if !ok {
			return &push.PermanentError{Err: errors.New("prometheus-remote-write: a corrupt batch")}
		}
		o.enc.add(sb, int64(binary.LittleEndian.Uint64(body[n:])), math.Float64frombits(binary.LittleEndian.Uint64(body[n+8:])))
		body = body[n+16:]
	}
	o.buf = o.enc.Finish(o.buf[:0])
	return push.Post(ctx, o.client, o.url, o.header, snappy.Encode(nil, o.buf))
}

// Close delivers what is buffered, within close_timeout.
func (o *Output) Close() error {
	err := o.q.Close()
	if n := o.enc.sameMs; n > 0 {
		o.log.Warn(fmt.Sprintf("%s: %d sample(s) left out: in the same millisecond as their series' previous one (remote write has ms timestamps)", Name, n))
	}
	if n := o.over.Load(); n > 0 {
		return &lossError{n, err}
	}
	return err
}

type lossError struct {
	over int64
	err  error
}

func (e *lossError) LostPoints() int64 {
	var le pipeline.LossError
	if errors.As(e.err, &le) {
		return le.LostPoints() + e.over
	}
	return e.over
}

func (e *lossError) Error() string {
	msg := fmt.Sprintf("%s: %d points of series beyond %d left out", Name, e.over, maxSeries)
	if e.err != nil {
		msg = e.err.Error() + "; " + msg
	}
	return msg
}

func (e *lossError) Unwrap() error { return e.err }
