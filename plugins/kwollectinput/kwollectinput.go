// Package kwollectinput is the kwollect-input source: it reads the power of
// Grid'5000 nodes (wattmeters, BMC, PDU) from the Kwollect API for the window
// of the measured command, or of the whole agent run.
package kwollectinput

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alumet-go/alumet-agent/kwollect"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
	"github.com/alumet-go/alumet-agent/plugin"
)

// Name is the plugin's name in the config and on the command line.
const Name = "kwollect-input"

// LogTarget is Alumet's target for this plugin's log lines, which users scrape.
const LogTarget = "plugin_kwollect_input"

// maxBadRowWarnings bounds the warnings about malformed rows.
const maxBadRowWarnings = 5

// batchSize bounds the points held before they are emitted.
const batchSize = 4096

// Factory describes the plugin.
func Factory() plugin.Factory {
	return plugin.Factory{
		Name:          Name,
		Version:       "0.1.0",
		LogTarget:     LogTarget,
		DefaultConfig: func() plugin.Config { return DefaultConfig() },
		Start:         start,
	}
}

func start(_ context.Context, c plugin.Config, env plugin.Env) error {
	src, err := newSource(c.(*Config), env)
	if err != nil {
		return err
	}
	return env.Pipeline.AddSource(Name, src)
}

// newSource builds the source and registers the configured metrics.
func newSource(cfg *Config, env plugin.Env) (*Source, error) {
	log := env.Logger
	if cfg.UTCOffset != nil {
		log.Warn("utc_offset is deprecated and ignored: the agent sends UTC epoch bounds, so no offset is needed")
	}
	password, err := cfg.password()
	if err != nil {
		return nil, err
	}
	var badRows atomic.Int64
	client, err := kwollect.NewClient(kwollect.Options{
		BaseURL: cfg.APIURL, Login: cfg.Login, Password: password,
		OnBadRow: func(e *kwollect.RowError) {
			// One bad record must not abort the batch: skip it, say so (a few times).
			if n := badRows.Add(1); n <= maxBadRowWarnings {
				log.Warn(e.Error())
			} else if n == maxBadRowWarnings+1 {
				log.Warn("more malformed Kwollect rows skipped; not reporting them any more")
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("api_url: %w", err)
	}
	src := &Source{
		cfg:    cfg,
		client: client,
		reg:    env.Pipeline.Registry(),
		log:    log,
		mode:   env.Mode,
		start:  env.StartTime,
		ids:    map[string]measure.MetricID{},
	}
	for _, m := range cfg.Metrics {
		if _, err := src.metric(m); err != nil {
			return nil, err
		}
	}
	return src, nil
}

// Source fetches the measured window once: at the end event in exec and
// watch modes, at shutdown in run mode.
type Source struct {
	cfg    *Config
	client *kwollect.Client
	reg    *measure.Registry
	log    *slog.Logger
	mode   plugin.Mode

	mu      sync.Mutex
	start   time.Time
	started bool // a start event was seen
	fetched bool
	ids     map[string]measure.MetricID
}

// metric returns the id of a Kwollect metric, registering it on first sight
// with the unit derived from its name.
func (s *Source) metric(name string) (measure.MetricID, error) {
	if id, ok := s.ids[name]; ok {
		return id, nil
	}
	id, err := s.reg.Register(measure.Metric{
		Name:        name,
		Unit:        measure.UnitFromKwollectMetric(name),
		Type:        measure.F64,
		Semantics:   measure.Gauge,
		Description: "Metric: " + name,
	})
	if err != nil {
		return 0, err
	}
	s.ids[name] = id
	return id, nil
}

// Run waits for the stop request. In run mode it then fetches the agent's
// whole run; in exec and watch modes the end event did the work.
func (s *Source) Run(ctx context.Context, out pipeline.Emitter) error {
	<-ctx.Done()
	if s.mode != plugin.ModeRun {
		return nil
	}
	s.mu.Lock()
	start, done := s.start, s.fetched
	s.fetched = true
	s.mu.Unlock()
	if done {
		return nil
	}
	return s.fetch(context.Background(), start, time.Now(), out)
}

// HandleEvent records the start of the measured process and fetches its
// window when it ends, exactly once (other end events are ignored).
func (s *Source) HandleEvent(ctx context.Context, ev pipeline.Event, out pipeline.Emitter) error {
	s.mu.Lock()
	switch ev.Kind {
	case pipeline.StartConsumerMeasurement:
		if !s.started {
			s.started, s.start = true, ev.Time
		}
		s.mu.Unlock()
		return nil
	case pipeline.EndConsumerMeasurement:
		if !s.started || s.fetched {
			s.mu.Unlock()
			return nil
		}
		s.fetched = true
		start := s.start
		s.mu.Unlock()
		return s.fetch(ctx, start, ev.Time, out)
	}
	s.mu.Unlock()
	return nil
}

// fetch reads [start, end] from Kwollect and emits it in batches.
func (s *Source) fetch(ctx context.Context, start, end time.Time, out pipeline.Emitter) error {
	q := kwollect.Query{
		Site:    s.cfg.Site,
		Nodes:   s.cfg.Hostname,
		Metrics: s.cfg.Metrics,
		// The floored start keeps the 1 Hz sample that covers the first second;
		// the end is exact, so the final fraction of the run is not dropped.
		Start: start.Truncate(time.Second),
		End:   end,
	}
	queries := 0
	opts := kwollect.FetchOptions{
		Timeout: s.cfg.FetchTimeout.D(),
		Delay:   s.cfg.FetchDelay.D(),
		OnQuery: func(u string) {
			s.log.Info("API request should be triggered with URL: " + u)
			if queries++; queries == 1 {
				s.log.Info("Polling KwollectSource")
			}
		},
		OnRetry: func(err error, wait time.Duration) {
			s.log.Warn(fmt.Sprintf("Kwollect query failed, retrying in %v: %v", wait.Round(time.Millisecond), err))
		},
	}
	buf := &measure.Buffer{Points: make([]measure.Point, 0, batchSize)}
	var emitErr error
	rows, skipped := 0, 0
	cov, err := s.client.FetchWindow(ctx, q, opts, func(r *kwollect.Row) error {
		if r.Null {
			skipped++
			return nil
		}
		p, err := s.point(r)
		if err != nil {
			return err
		}
		buf.Push(p)
		rows++
		if buf.Len() >= batchSize {
			if emitErr = out.Emit(ctx, buf); emitErr != nil {
				return emitErr
			}
			buf = &measure.Buffer{Points: make([]measure.Point, 0, batchSize)}
		}
		return nil
	})
	// Whatever was fetched is written, even when the fetch failed.
	if e := out.Emit(ctx, buf); e != nil && emitErr == nil {
		emitErr = e
	}
	if err != nil {
		s.log.Info(fmt.Sprintf("Kwollect: %d rows fetched before the failure", rows))
		return fmt.Errorf("fetching %s from Kwollect: %w", q.Site, err)
	}
	s.report(cov, rows, skipped)
	return emitErr
}

func (s *Source) point(r *kwollect.Row) (measure.Point, error) {
	id, err := s.metric(r.MetricID)
	if err != nil {
		return measure.Point{}, err
	}
	consumer := measure.Consumer{Kind: measure.KindLocalMachine}
	if len(r.DeviceOrig) > 0 {
		consumer = measure.Consumer{Kind: "device_origin", ID: strings.Join(r.DeviceOrig, ",")}
	}
	attrs := make([]measure.Attribute, 0, 1+len(r.Labels))
	attrs = append(attrs, measure.Attribute{Key: "metric_id", Value: measure.String(r.MetricID)})
	for _, l := range r.Labels {
		attrs = append(attrs, measure.Attribute{Key: l.Key, Value: measure.String(l.Value)})
	}
	return measure.Point{
		Metric:     id,
		Timestamp:  r.Timestamp.UTC(),
		Value:      measure.Float(r.Value),
		Resource:   measure.Resource{Kind: "device_id", ID: r.DeviceID},
		Consumer:   consumer,
		Attributes: attrs,
	}, nil
}

// report logs what the fetch obtained, and a warning per incomplete series.
func (s *Source) report(cov kwollect.Coverage, rows, skipped int) {
	s.log.Info(fmt.Sprintf("Kwollect: %d rows fetched for [%s, %s] in %d queries", rows,
		cov.Start.UTC().Format(time.RFC3339Nano), cov.End.UTC().Format(time.RFC3339Nano), cov.Queries))
	if skipped > 0 {
		s.log.Debug(fmt.Sprintf("Kwollect: %d rows with a null value skipped", skipped))
	}
	var short []string
	for _, sc := range cov.Series {
		if sc.Complete {
			continue
		}
		if sc.Rows == 0 {
			short = append(short, fmt.Sprintf("%s/%s: no data at all (no meter on this node, meter down, or an on-demand metric that needs an OAR job with -t monitor)", sc.Node, sc.Metric))
			continue
		}
		pct := 100 * sc.Fraction(cov.Start, cov.End)
		short = append(short, fmt.Sprintf("%s/%s: %.1f%% covered, last sample at %s, missing (%s, %s]", sc.Node, sc.Metric,
			math.Floor(pct*10)/10, sc.Last.UTC().Format(time.RFC3339Nano), sc.Last.UTC().Format(time.RFC3339Nano), cov.End.UTC().Format(time.RFC3339Nano)))
	}
	if len(short) > 0 {
		s.log.Warn("Kwollect data is incomplete after fetch_timeout; writing what was fetched:\n  " + strings.Join(short, "\n  "))
	}
}

var _ pipeline.EventHandler = (*Source)(nil)
