package promremotewrite

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/klauspost/compress/s2"

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
	over   atomic.Int64 // points of series beyond push.MaxSeries
	buf    []byte       // the sender's request buffer
	zbuf   []byte       // its compressed body
}

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
		o.BatchBytes = push.SampleBatchBytes(o.BatchPoints)
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

// Write records buf's points in the queue.
func (o *Output) Write(_ context.Context, buf *measure.Buffer) error {
	over, err := push.AppendSamples(o.q, buf, o.enc.pointSeries, o.enc.compactSeries)
	if over > 0 && o.over.Add(over) == over {
		o.log.Error(fmt.Sprintf("%s: more than %d series: the points of new series are left out (counted as lost)", Name, push.MaxSeries))
	}
	return err
}

// send builds, compresses and POSTs the WriteRequest of a batch.
func (o *Output) send(ctx context.Context, body []byte, _ int) error {
	z, err := o.request(body)
	if err != nil {
		return err
	}
	return push.Post(ctx, o.client, o.url, o.header, z)
}

// request is the compressed WriteRequest of a batch of sample records,
// valid until the next call.
func (o *Output) request(body []byte) ([]byte, error) {
	for len(body) > 0 {
		id, ns, v, rest, ok := push.NextSample(body)
		sb, found := o.enc.lookup(id)
		if !ok || !found {
			return nil, &push.PermanentError{Err: push.ErrCorruptBatch}
		}
		o.enc.add(sb, ns, v)
		body = rest
	}
	o.buf = o.enc.Finish(o.buf[:0])
	// s2's snappy-compatible block at its default level: the "better" level
	// (snappy.Encode) took half of this output's CPU for bodies a few
	// percent smaller.
	if n := s2.MaxEncodedLen(len(o.buf)); cap(o.zbuf) < n {
		o.zbuf = make([]byte, n)
	}
	return s2.EncodeSnappy(o.zbuf[:cap(o.zbuf)], o.buf), nil
}

// Close delivers what is buffered, within close_timeout.
func (o *Output) Close() error {
	err := o.q.Close()
	if n := o.enc.sameMs; n > 0 {
		o.log.Warn(fmt.Sprintf("%s: %d sample(s) left out: in the same millisecond as their series' previous one (remote write has ms timestamps)", Name, n))
	}
	if n := o.over.Load(); n > 0 {
		err = &push.ExtraLoss{Name: Name, Why: fmt.Sprintf("of series beyond %d left out", push.MaxSeries), N: n, Err: err}
	}
	return err
}
