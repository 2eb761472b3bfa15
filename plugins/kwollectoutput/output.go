package kwollectoutput

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/alumet-go/alumet-agent/kwollect"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
	"github.com/alumet-go/alumet-agent/plugins/internal/push"
)

var (
	_ pipeline.Output          = (*Output)(nil)
	_ pipeline.CompactWriter   = (*Output)(nil)
	_ pipeline.FailureReporter = (*Output)(nil)
)

// Output POSTs the points to Kwollect through a push.Queue: Write encodes
// each point's JSON object into the batch being filled; the sender wraps a
// batch in a JSON array and POSTs it. A slow or unreachable API never
// holds the pipeline back.
type Output struct {
	q      *push.Queue
	log    *slog.Logger
	reg    *measure.Registry
	enc    *encoder
	client *http.Client
	url    string
	header http.Header
	loops  atomic.Int64 // kwollect-input's points not sent back
	looped map[measure.MetricID]bool
}

// newOutput: configPath and netrcPath are where credentials may also come
// from (kwollect.ResolveCredentials).
func newOutput(c *Config, reg *measure.Registry, logger *slog.Logger, o push.Options, configPath, netrcPath string) (*Output, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	out := &Output{log: logger, reg: reg, url: c.URL, client: push.NewHTTPClient(c.RequestTimeout()),
		enc:    newEncoder(reg, c.Hostname, c.AppendUnitToMetricName, c.UseUnitDisplayName),
		header: http.Header{"Content-Type": {"application/json"}}, looped: map[measure.MetricID]bool{}}
	// The same credentials as kwollect-input's: the config's, password_file,
	// or the netrc entry of the API host (none on a node).
	cr, err := kwollect.ResolveCredentials(kwollect.CredentialSources{Login: c.Login, Password: c.Password, PasswordFile: c.PasswordFile,
		APIURL: c.URL, ConfigPath: configPath, NetrcPath: netrcPath, Log: logger})
	if err != nil {
		return nil, err
	}
	if cr.Password != "" {
		req, _ := http.NewRequest(http.MethodPost, c.URL, nil)
		req.SetBasicAuth(cr.Login, cr.Password)
		out.header.Set("Authorization", req.Header.Get("Authorization"))
	}
	o.Name, o.Target, o.Logger, o.Send = Name, push.RedactedURL(c.URL), logger, out.send
	if out.q, err = push.New(o); err != nil {
		return nil, err
	}
	return out, nil
}

// WritesCompact says Write reads Buffer.Compact (pipeline.CompactWriter).
func (o *Output) WritesCompact() {}

// ReportFailuresTo implements pipeline.FailureReporter.
func (o *Output) ReportFailuresTo(report func(error)) { o.q.ReportFailuresTo(report) }

// kwollectInput is the name kwollect-input gives its metrics
// (measure.Metric.Plugin); a test checks it against that plugin's.
const kwollectInput = "kwollect-input"

// loop says whether a metric is kwollect-input's: sending its rows back to
// Kwollect would store every measurement twice.
func (o *Output) loop(id measure.MetricID) bool {
	l, ok := o.looped[id]
	if !ok {
		m, _ := o.reg.Metric(id)
		l = m.Plugin == kwollectInput
		o.looped[id] = l
	}
	return l
}

// Write encodes buf's points into the batch being filled.
func (o *Output) Write(_ context.Context, buf *measure.Buffer) error {
	if buf.Len() == 0 {
		return nil
	}
	var loops int64
	err := o.q.Append(buf.Len(), func(a *push.Appender) {
		for i := range buf.Points {
			if o.loop(buf.Points[i].Metric) {
				loops++
				continue
			}
			a.Buf = append(o.enc.appendPoint(a.Buf, &buf.Points[i]), ',')
			a.End()
		}
		for i := range buf.Compact {
			if o.loop(buf.Compact[i].Series.Metric) {
				loops++
				continue
			}
			a.Buf = append(o.enc.appendCompact(a.Buf, &buf.Compact[i]), ',')
			a.End()
		}
	})
	if loops > 0 && o.loops.Add(loops) == loops {
		o.log.Warn(fmt.Sprintf("kwollect-input's own rows are not sent back to Kwollect (they are there already): %d point(s) skipped so far; "+
			"kwollect-output is meant for energy-report's totals and on-node sources", loops))
	}
	return err
}

// send POSTs one batch: its records, comma-terminated, as a JSON array.
func (o *Output) send(ctx context.Context, body []byte, _ int) error {
	arr := make([]byte, 0, len(body)+1)
	arr = append(append(arr, '['), body[:len(body)-1]...)
	return push.Post(ctx, o.client, o.url, o.header, append(arr, ']'))
}

// Close delivers what is buffered, within close_timeout.
func (o *Output) Close() error {
	if n := o.loops.Load(); n > 0 {
		o.log.Info(fmt.Sprintf("%d point(s) of kwollect-input not sent back to Kwollect", n))
	}
	return o.q.Close()
}
