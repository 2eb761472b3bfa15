package prometheusexporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
)

var (
	_ pipeline.Output        = (*Exporter)(nil)
	_ pipeline.CompactWriter = (*Exporter)(nil)
)

// chunk is how many points Write records per hold of the table's lock, so
// that a scrape never waits for a whole buffer (about 50 µs a chunk).
const chunk = 512

// ShutdownTimeout bounds how long Close waits for scrapes in progress.
const ShutdownTimeout = 5 * time.Second

// Exporter is the prometheus-exporter output: Write records the last point
// of every series in an in-memory table and an HTTP server renders it on
// GET /metrics. Write is called from one goroutine (pipeline.Output).
type Exporter struct {
	cfg Config
	reg *measure.Registry
	log *slog.Logger
	now func() time.Time
	t   *table

	// Used by Write only.
	metrics map[measure.MetricID]*family
	series  map[*measure.Series]*entry
	labels  []byte
	pairs   []labelPair
	unknown map[measure.MetricID]bool

	ln     net.Listener
	srv    *http.Server
	served chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// New binds the exporter where cfg says and starts serving. logger may be nil.
func New(cfg *Config, reg *measure.Registry, logger *slog.Logger) (*Exporter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	x := newExporter(cfg, reg, logger, time.Now)
	addr := net.JoinHostPort(strings.Trim(cfg.Host, "[]"), strconv.Itoa(cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("prometheus-exporter: cannot listen on %s (host = %q, port = %d): %w", addr, cfg.Host, cfg.Port, err)
	}
	x.ln = ln
	x.srv = &http.Server{
		Handler:           x,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	x.served = make(chan struct{})
	go func() {
		defer close(x.served)
		if err := x.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("prometheus-exporter: the HTTP server stopped: " + err.Error())
		}
	}()
	logger.Info(fmt.Sprintf("Prometheus metrics exporter available on http://%s/metrics", ln.Addr()))
	return x, nil
}

func newExporter(cfg *Config, reg *measure.Registry, logger *slog.Logger, now func() time.Time) *Exporter {
	return &Exporter{
		cfg: *cfg, reg: reg, log: logger, now: now,
		t:       newTable(cfg.maxSeries(), cfg.StaleAfter.D()),
		metrics: map[measure.MetricID]*family{},
		series:  map[*measure.Series]*entry{},
		unknown: map[measure.MetricID]bool{},
	}
}

// Addr is the bound address (with the port picked when port = 0).
func (x *Exporter) Addr() net.Addr { return x.ln.Addr() }

// WritesCompact says Write reads Buffer.Compact (pipeline.CompactWriter).
func (x *Exporter) WritesCompact() {}

// Write records the points of buf: each replaces the last point of its
// series unless it is older. It never blocks on a scrape for longer than
// one chunk takes to record or a scrape takes to copy the values.
func (x *Exporter) Write(_ context.Context, buf *measure.Buffer) error {
	if buf.Len() == 0 {
		return nil
	}
	now := x.now().UnixNano()
	t := x.t
	dropped := int64(0)
	for i := 0; i < len(buf.Points); i += chunk {
		end := min(i+chunk, len(buf.Points))
		t.mu.Lock()
		for j := i; j < end; j++ {
			p := &buf.Points[j]
			e := x.entryOfLocked(now, p.Metric, p.Resource, p.Consumer, p.Attributes)
			if e == nil {
				dropped++
				continue
			}
			t.setLocked(e, p.Timestamp.UnixNano(), p.Value, now)
		}
		t.mu.Unlock()
	}
	for i := 0; i < len(buf.Compact); i += chunk {
		end := min(i+chunk, len(buf.Compact))
		t.mu.Lock()
		for j := i; j < end; j++ {
			p := &buf.Compact[j]
			e := x.series[p.Series]
			if e == nil || e.removed {
				s := p.Series
				e = x.entryOfLocked(now, s.Metric, s.Resource, s.Consumer, s.Attributes)
				if e == nil {
					dropped++
					continue
				}
				if len(x.series) >= 2*t.maxSeries {
					clear(x.series) // series that come and go: keep the cache bounded
				}
				x.series[s] = e
			}
			t.setLocked(e, p.Time, p.Value, now)
		}
		t.mu.Unlock()
	}
	t.mu.Lock()
	t.writes++
	first := t.dropped == 0 && dropped > 0
	t.dropped += dropped
	t.mu.Unlock()
	if first {
		x.log.Error(fmt.Sprintf("prometheus-exporter: %d series are exposed, the most max_series allows: the points of new series are dropped "+
			"(%d in this batch; raise max_series, or set stale_after so that series that stop are removed)", t.maxSeries, dropped))
	}
	return nil
}

// entryOfLocked returns the series of a point, created if the bound allows;
// nil when it does not, or when the metric is unknown.
func (x *Exporter) entryOfLocked(now int64, id measure.MetricID, r measure.Resource, c measure.Consumer, attrs []measure.Attribute) *entry {
	f := x.metrics[id]
	if f == nil {
		m, ok := x.reg.Metric(id)
		if !ok {
			if !x.unknown[id] {
				x.unknown[id] = true
				x.log.Warn(fmt.Sprintf("prometheus-exporter: points of an unknown metric (id %d) are not exposed", id))
			}
			return nil
		}
		f = x.t.familyLocked(MetricName(x.cfg.Prefix, m.Name, x.cfg.Suffix, m.Unit), m.Description+".", UnitWord(m.Unit))
		x.metrics[id] = f
	}
	x.labels = x.appendLabels(x.labels[:0], r, c, attrs)
	return x.t.entryLocked(f, x.labels, now)
}

type labelPair struct{ name, value string }

// appendLabels appends the label text of a series, {name="value",…}: the
// four fixed labels (empty values kept) and, with add_attributes_to_labels,
// the attributes, sorted by name. Of attributes whose names clash once
// sanitised, the first (by key) is kept.
func (x *Exporter) appendLabels(b []byte, r measure.Resource, c measure.Consumer, attrs []measure.Attribute) []byte {
	ps := append(x.pairs[:0],
		labelPair{labelResourceKind, r.Kind}, labelPair{labelResourceID, r.ID},
		labelPair{labelConsumerKind, c.Kind}, labelPair{labelConsumerID, c.ID})
	if x.cfg.AddAttributesToLabels {
		for i := range attrs {
			a := &attrs[i]
			v := a.Value.Str
			if a.Value.Type != measure.AttrString {
				v = a.Value.String()
			}
			ps = append(ps, labelPair{AttributeLabel(a.Key), v})
		}
	}
	x.pairs = ps
	return appendLabelText(b, ps)
}

// appendLabelText sorts ps by name (stable) and appends them as label text,
// skipping a repeated name.
func appendLabelText(b []byte, ps []labelPair) []byte {
	slices.SortStableFunc(ps, func(a, b labelPair) int { return strings.Compare(a.name, b.name) })
	b = append(b, '{')
	for i, p := range ps {
		if i > 0 && p.name == ps[i-1].name {
			continue
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, p.name...)
		b = append(b, '=', '"')
		b = appendLabelValue(b, p.value)
		b = append(b, '"')
	}
	return append(b, '}')
}

// Dropped returns the points not exposed because max_series was reached.
func (x *Exporter) Dropped() int64 {
	x.t.mu.Lock()
	defer x.t.mu.Unlock()
	return x.t.dropped
}

// Close waits, when final_scrape_timeout is set, for a scrape that sees the
// last points, then stops the server: scrapes in progress get
// ShutdownTimeout to finish.
func (x *Exporter) Close() error {
	x.closeOnce.Do(func() { x.closeErr = x.close() })
	return x.closeErr
}

func (x *Exporter) close() error {
	if d := x.cfg.FinalScrapeTimeout.D(); d > 0 {
		timer := time.NewTimer(d)
		if !x.t.waitScrape(timer.C) {
			x.log.Warn(fmt.Sprintf("prometheus-exporter: no scrape came for the last points within final_scrape_timeout (%s); stopping", x.cfg.FinalScrapeTimeout))
		}
		timer.Stop()
	}
	x.t.mu.Lock()
	dropped, refused := x.t.dropped, x.t.refused
	x.t.mu.Unlock()
	if dropped > 0 {
		x.log.Error(fmt.Sprintf("prometheus-exporter: %d points of %d new series were not exposed because max_series (%d) was reached",
			dropped, refused, x.t.maxSeries))
	}
	if x.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err := x.srv.Shutdown(ctx)
	if err != nil {
		_ = x.srv.Close()
		err = fmt.Errorf("prometheus-exporter: stopping the HTTP server: %w", err)
	}
	<-x.served
	return err
}
