package influxdb

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
	"github.com/alumet-go/alumet-agent/plugin"
	"github.com/alumet-go/alumet-agent/plugins/internal/lineflate"
	"github.com/alumet-go/alumet-agent/plugins/internal/push"
)

var (
	_ pipeline.Output          = (*Output)(nil)
	_ pipeline.CompactWriter   = (*Output)(nil)
	_ pipeline.FailureReporter = (*Output)(nil)
)

// DefaultTimeout bounds each request.
const DefaultTimeout = 10 * time.Second

// Output is the influxdb plugin's pipeline output.
type Output struct {
	cfg    *Config
	log    *slog.Logger
	enc    *encoder
	q      *push.Queue
	target string // the write URL, for messages

	skippedNaN atomic.Int64 // NaN/Inf values not written
	unknown    atomic.Int64 // points of unregistered metrics
}

// client is what sends the requests of one output.
type client struct {
	http   *http.Client
	url    string
	header http.Header
	gzip   bool // the batches are lineflate streams, sent as gzip

	mu   sync.Mutex // zbuf: the start-up probe and the sender
	zbuf []byte
}

func newClient(c *Config, s secrets, hc *http.Client) (*client, error) {
	base := strings.TrimRight(c.Host, "/")
	var u string
	h := http.Header{}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Accept", "application/json")
	h.Set("User-Agent", "alumet-agent/"+Version)
	switch c.api() {
	case APIv1:
		v := url.Values{"db": {c.Database}, "precision": {"ns"}}
		if c.RetentionPolicy != "" {
			v.Set("rp", c.RetentionPolicy)
		}
		u = base + "/write?" + v.Encode()
		switch {
		case s.username != "":
			h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(s.username+":"+s.password)))
		case s.token != "":
			h.Set("Authorization", "Token "+s.token) // InfluxDB 1.8+ and its v2 compatibility
		}
	default:
		v := url.Values{"org": {c.Org}, "bucket": {c.Bucket}, "precision": {"ns"}}
		u = base + "/api/v2/write?" + v.Encode()
		if s.token != "" {
			h.Set("Authorization", "Token "+s.token)
		}
	}
	if hc == nil {
		hc = push.NewHTTPClient(c.RequestTimeout())
	}
	return &client{http: hc, url: u, header: h, gzip: c.gzip()}, nil
}

// send posts one batch of lines: with gzip, a lineflate stream, finished
// into a gzip member.
func (cl *client) send(ctx context.Context, body []byte, _ int) error {
	h := cl.header
	if cl.gzip && len(body) > 0 {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		z, err := lineflate.Finish(cl.zbuf[:0], body)
		if err != nil {
			return &push.PermanentError{Err: fmt.Errorf("gzip: %w", err)}
		}
		cl.zbuf = z
		body = z
		h = h.Clone()
		h.Set("Content-Encoding", "gzip")
	}
	return push.Post(ctx, cl.http, cl.url, h, body)
}

// newOutput builds the output; opts (tests) overrides the delivery options
// but Send, Name, Target and Logger.
func newOutput(c *Config, reg *measure.Registry, log *slog.Logger, cl *client, mode plugin.Mode, opts *push.Options) (*Output, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := &Output{cfg: c, log: log, enc: newEncoder(reg, c.asTag(), c.api() == APIv1, cl.gzip), target: push.RedactedURL(cl.url)}
	qo := c.queueOptions(mode)
	if opts != nil {
		qo = *opts
	}
	qo.Name, qo.Target, qo.Logger, qo.Send = Name, o.target, log, cl.send
	q, err := push.New(qo)
	if err != nil {
		return nil, err
	}
	o.q = q
	return o, nil
}

// WritesCompact says Write reads Buffer.Compact (pipeline.CompactWriter).
func (o *Output) WritesCompact() {}

// ReportFailuresTo implements pipeline.FailureReporter: the server refusing
// the output for good (401, 403, 404) is reported at once.
func (o *Output) ReportFailuresTo(report func(error)) { o.q.ReportFailuresTo(report) }

// Write encodes buf's points into the batch being filled. It never waits
// for the server (see package push); it fails only once the server has
// refused the output for good.
func (o *Output) Write(_ context.Context, buf *measure.Buffer) error {
	if buf == nil || buf.Len() == 0 {
		o.log.Warn("InfluxDb received an empty MeasurementBuffer")
		return nil
	}
	var nan, unknown int64
	if o.enc.fl != nil {
		err := o.q.Append(buf.Len(), func(a *push.Appender) { nan, unknown = o.writeZ(a, buf) })
		o.count(nan, unknown)
		return err
	}
	err := o.q.Append(buf.Len(), func(a *push.Appender) {
		var r result
		for i := range buf.Points {
			if a.Buf, r = o.enc.appendPoint(a.Buf, &buf.Points[i]); r == written {
				a.End()
			} else if r == notFinite {
				nan++
			} else {
				unknown++
			}
		}
		for i := range buf.Compact {
			if a.Buf, r = o.enc.appendCompact(a.Buf, &buf.Compact[i]); r == written {
				a.End()
			} else if r == notFinite {
				nan++
			} else {
				unknown++
			}
		}
	})
	o.count(nan, unknown)
	return err
}

// writeZ is Write's fill with gzip: the batch is a lineflate stream,
// Appender.Size its uncompressed size.
func (o *Output) writeZ(a *push.Appender, buf *measure.Buffer) (nan, unknown int64) {
	var r result
	for i := range buf.Points {
		if a.Buf, r = o.enc.appendPointZ(a.Buf, &buf.Points[i]); r == written {
			a.Size = o.enc.fl.Size()
			a.End()
		} else if r == notFinite {
			nan++
		} else {
			unknown++
		}
	}
	for i := range buf.Compact {
		if a.Buf, r = o.enc.appendCompactZ(a.Buf, &buf.Compact[i]); r == written {
			a.Size = o.enc.fl.Size()
			a.End()
		} else if r == notFinite {
			nan++
		} else {
			unknown++
		}
	}
	return nan, unknown
}

// count counts the points not written, warning at the first of each kind.
func (o *Output) count(nan, unknown int64) {
	if nan > 0 {
		if o.skippedNaN.Add(nan) == nan {
			o.log.Warn(fmt.Sprintf("%d point(s) with a NaN or infinite value not written (line protocol has no such floats); the count is given at the end", nan))
		}
	}
	if unknown > 0 {
		if o.unknown.Add(unknown) == unknown {
			o.log.Warn(fmt.Sprintf("%d point(s) of an unregistered metric not written", unknown))
		}
	}
}

// Close delivers what waits, within close_timeout, and returns a
// *push.LossError when points were lost.
func (o *Output) Close() error {
	err := o.q.Close()
	s := o.q.Stats()
	if n := o.skippedNaN.Load(); n > 0 {
		o.log.Warn(fmt.Sprintf("%s point(s) with a NaN or infinite value were not written", pipeline.GroupDigits(n)))
	}
	o.log.Debug(fmt.Sprintf("%s points written to %s in %s requests (%s retried)",
		pipeline.GroupDigits(s.Sent), o.target, pipeline.GroupDigits(s.Requests), pipeline.GroupDigits(s.Retries)))
	if err != nil {
		return err
	}
	return nil
}

// Stats returns the delivery counts.
func (o *Output) Stats() push.Stats { return o.q.Stats() }

// SkippedNaN returns the points not written for a NaN or infinite value.
func (o *Output) SkippedNaN() int64 { return o.skippedNaN.Load() }
