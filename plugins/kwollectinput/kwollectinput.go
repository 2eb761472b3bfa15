// Package kwollectinput is the kwollect-input source: it reads the power of
// Grid'5000 nodes (wattmeters, BMC, PDU) from the Kwollect API for the window
// of the measured command, continuously in run mode, or for a past window.
package kwollectinput

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alumet-go/alumet-agent/internal/netrc"
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

// pastWindowAge: a window that ended this long ago is fully ingested, so
// the fetch does not wait for a tail.
const pastWindowAge = 5 * time.Minute

// Version is Alumet's plugin version (alumet-dev/alumet
// plugins/kwollect-input/Cargo.toml at afb0aa12, 1.0.0): this plugin reads
// the same config and writes the same rows, and more (several nodes, the
// ingestion tail, an exact end), so scripts that check it see Alumet's.
const Version = "1.0.0"

// Factory describes the plugin.
func Factory() plugin.Factory {
	return plugin.Typed[Config, *Config]{
		Name:            Name,
		Version:         Version,
		LogTarget:       LogTarget,
		DefaultConfig:   DefaultConfig,
		GeneratedConfig: func() *Config { return generatedConfig(realEnvironment()) },
		Sample:          SampleConfig,
		Measures:        true,
		Start:           start,
	}.Factory()
}

func start(ctx context.Context, c *Config, env plugin.Env) error {
	src, err := newSource(c, env, realEnvironment(), netrc.Path())
	if err != nil {
		return err
	}
	// A wrong node, cluster, site or metric name fails here, in every
	// mode, before anything is measured (never "the meter is down").
	if err := src.Diagnose(ctx); err != nil {
		return err
	}
	return env.Pipeline.AddSource(Name, src)
}

// newSource resolves the targets and credentials, builds the client and
// registers the configured metrics.
func newSource(cfg *Config, env plugin.Env, hostEnv environment, netrcPath string) (*Source, error) {
	log := env.Logger
	if cfg.UTCOffset != nil {
		log.Warn("utc_offset is deprecated and ignored: the agent sends UTC epoch bounds, so no offset is needed")
	}
	tg, err := cfg.resolveTargets(hostEnv)
	if err != nil {
		return nil, err
	}
	login, password, err := cfg.credentials(env.ConfigPath, netrcPath, log)
	if err != nil {
		return nil, err
	}
	badRows := new(atomic.Int64)
	client, err := kwollect.NewClient(kwollect.Options{
		BaseURL: cfg.APIURL, Login: login, Password: password,
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
		badRows:    badRows,
		cfg:        cfg,
		client:     client,
		targets:    tg,
		reg:        env.Pipeline.Registry(),
		log:        log,
		mode:       env.Mode,
		start:      env.StartTime,
		ids:        map[string]measure.MetricID{},
		clock:      time.Now,
		finals:     make(chan finalRequest),
		pollerDone: make(chan struct{}),
		runs:       map[int]*runWindow{},
		history:    env.Pipeline.History(),
		outcomes:   env.Pipeline.Outcomes(),
	}
	src.history.ProvideRecent(src.recent)
	if cfg.edgeReadings() && wantsEdges(cfg.Metrics) {
		// A counter's energy over a window is a difference of readings, and
		// a 5 s BMC reading is far from the window's edge: the readings just
		// before the window must be known, or its first interval is bridged
		// (15 s of a node_exporter counter, 5 s of a BMC).
		src.edgeLead = true
		src.history.Want(EdgeSpan)
		switch env.Mode {
		case plugin.ModeFetch:
			// A past window: the readings after its end are there already,
			// and close its last interval.
			src.edgeTail = true
			src.history.WantAfter(EdgeSpan)
		case plugin.ModeExec, plugin.ModeWatch:
			// The next reading after the command: waited for (about one
			// period of the slowest such metric, see edgeTailSpan).
			src.edgeTail = true
		}
	}
	dir := env.Directory
	if dir == nil {
		dir = &plugin.Directory{} // alone (tests): nobody else reads it
	}
	src.directory = dir
	for _, n := range tg.Nodes {
		dir.SetSite(n.Node, n.Site)
	}
	if len(tg.Nodes) == 0 && tg.JobSite != "" {
		dir.SetDefaultSite(tg.JobSite)
	}
	for _, m := range cfg.Metrics {
		if _, err := src.metric(m); err != nil {
			return nil, err
		}
	}
	log.Debug("Kwollect targets: " + tg.String())
	return src, nil
}

// Source fetches Kwollect data: the measured window at the end event (exec,
// watch, fetch), or by polling in run mode.
type Source struct {
	cfg     *Config
	client  *kwollect.Client
	targets targets
	reg     *measure.Registry
	log     *slog.Logger
	mode    plugin.Mode
	clock   func() time.Time

	history   *pipeline.History
	directory *plugin.Directory

	mu          sync.Mutex
	start       time.Time          // the agent's start (run mode)
	runs        map[int]*runWindow // by run index (0 without exec --repeat)
	jobFetched  bool               // fetch --job-id done
	historyDone bool               // the span before the first run was fetched
	edgeLead    bool               // a metric whose readings are far apart is read: EdgeSpan of history is wanted
	edgeTail    bool               // and, in fetch, EdgeSpan after the window
	idsMu       sync.Mutex
	ids         map[string]measure.MetricID

	prior    priors // per series, from the pre-flight check and the history
	outcomes *pipeline.Outcomes
	frozenMu sync.Mutex
	frozen   *frozenSeries // of the window being completed

	queriedMu   sync.Mutex
	queried     map[string]bool // URLs logged at info level
	inTail      bool            // the tail completion of a window is running
	tailQueried bool            // and one of its queries was logged

	catalogOnce sync.Once
	catalog     *catalog
	finals      chan finalRequest                  // run mode: the end event's request for the last fetch
	badRows     *atomic.Int64                      // malformed or oversized rows skipped, since the start
	lastFailure atomic.Value                       // string: the last failed query of the window being fetched (Brief)
	pollCancel  atomic.Pointer[context.CancelFunc] // run mode: cuts the poll under way short
	finalWanted atomic.Bool                        // run mode: the final request is coming, no new poll
	pollerDone  chan struct{}                      // closed when the run-mode poller returns
}

// metric returns the id of a Kwollect metric, registering it on first sight
// with the unit derived from its name.
func (s *Source) metric(name string) (measure.MetricID, error) {
	s.idsMu.Lock()
	defer s.idsMu.Unlock()
	if id, ok := s.ids[name]; ok {
		return id, nil
	}
	id, err := s.reg.Register(measure.Metric{
		Name:        name,
		Unit:        measure.UnitFromKwollectMetric(name),
		Type:        measure.F64,
		Semantics:   measure.Gauge,
		Description: "Metric: " + name,
		Plugin:      Name,
	})
	if err != nil {
		return 0, err
	}
	s.ids[name] = id
	return id, nil
}

// plan says what to query. With an explicit node list (hostname, nodes or
// $OAR_NODEFILE) a job adds nothing to a query that has its own bounds;
// without nodes, Kwollect resolves the job's nodes.
func (s *Source) plan() kwollect.Plan {
	p := kwollect.Plan{Targets: s.targets.Nodes, Metrics: s.cfg.Metrics}
	if len(s.targets.Nodes) == 0 {
		p.JobID, p.JobSite = s.targets.JobID, s.targets.JobSite
	}
	return p
}

func (s *Source) sessionOptions(ctx context.Context) kwollect.SessionOptions {
	progress := newProgress(s.log)
	return kwollect.SessionOptions{
		RowBudget:   s.cfg.RowBudget,
		Concurrency: s.cfg.Concurrency,
		// The sink copies what it needs of each row into a point.
		ReuseBatches: true,
		Periods:      s.catalogFor(ctx).periods(s.cfg.Metrics),
		FastPeriods:  s.catalogFor(ctx).fastPeriods(s.cfg.Metrics),
		// No EmptyGrace: a series without rows yet is waited for until
		// fetch_timeout like any other, since Kwollect's lag can exceed
		// any shorter rule; series the catalogue proves absent are
		// abandoned at once (prepare).
		OnQuery: s.logQuery,
		OnRetry: func(u string, err error, attempt int, wait time.Duration) {
			s.lastFailure.Store(kwollect.Brief(err))
			s.log.Warn(fmt.Sprintf("Kwollect query failed (attempt %d, %s), retrying in %v", attempt, kwollect.Brief(err), wait.Round(100*time.Millisecond)))
			s.log.Debug(fmt.Sprintf("Kwollect query failed (attempt %d): %v", attempt, err))
		},
		OnProgress: progress.update,
	}
}

// logQuery logs Alumet's URL line once per URL (retries and polls of the
// same window are at debug level).
func (s *Source) logQuery(u string) {
	s.queriedMu.Lock()
	if s.queried == nil {
		s.queried = map[string]bool{}
	}
	seen := s.queried[u]
	s.queried[u] = true
	// The tail completion's queries of a window: the first one is said,
	// the next ones (every second or two while Kwollect lags) at debug.
	if s.inTail {
		seen = seen || s.tailQueried
		s.tailQueried = true
	}
	s.queriedMu.Unlock()
	if seen {
		s.log.Debug("API request should be triggered with URL: " + u)
		return
	}
	s.log.Info("API request should be triggered with URL: " + u)
}

// Run waits for the stop request, polling Kwollect in run mode.
func (s *Source) Run(ctx context.Context, out pipeline.Emitter) error {
	if s.mode != plugin.ModeRun {
		<-ctx.Done()
		return nil
	}
	defer close(s.pollerDone)
	return s.poll(ctx, out)
}

// HandleEvent records the start of the measured process and fetches its
// window when it ends, exactly once (other end events are ignored).
func (s *Source) HandleEvent(ctx context.Context, ev pipeline.Event, out pipeline.Emitter) error {
	if s.mode == plugin.ModeRun {
		// The agent is stopping: the poller does its last fetch now, before
		// the shutdown timer starts.
		if ev.Kind != pipeline.EndConsumerMeasurement {
			return nil
		}
		req := finalRequest{ctx: ctx, end: ev.Time, done: make(chan error, 1)}
		s.finalWanted.Store(true)
		if cancel := s.pollCancel.Load(); cancel != nil {
			(*cancel)()
		}
		select {
		case s.finals <- req:
			return <-req.done
		case <-s.pollerDone:
			return nil // the poller ended (and said why)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	switch ev.Kind {
	case pipeline.StartConsumerMeasurement:
		if s.runs[ev.Run] == nil {
			s.runs[ev.Run] = &runWindow{start: ev.Time}
		}
		s.mu.Unlock()
		return nil
	case pipeline.EndConsumerMeasurement:
		rw := s.runs[ev.Run]
		if ev.JobID != 0 && len(s.runs) == 0 && !s.jobFetched {
			s.jobFetched = true
			s.mu.Unlock()
			return s.fetchJob(ctx, ev.JobID, out)
		}
		if rw == nil || rw.fetched {
			s.mu.Unlock()
			return nil
		}
		rw.fetched = true
		first := !s.historyDone
		s.historyDone = true
		s.mu.Unlock()
		parent := ctx
		ctx, cancel := s.budget(ctx, rw.start, ev.Time)
		defer cancel()
		var histErr error
		if first {
			histErr = s.fetchHistory(ctx, rw.start)
		}
		err := errors.Join(s.fetchWindow(ctx, rw.start, ev.Time, ev.Run, out), histErr)
		// The span after the window has a budget of its own (it may wait);
		// with exec --repeat, the next run's readings close this one (and
		// an after:D baseline is the last run's).
		if ev.Runs > 0 && ev.Run < ev.Runs {
			return err
		}
		return errors.Join(err, s.fetchAfter(parent, ev.Time))
	}
	s.mu.Unlock()
	return nil
}

// runWindow is the window of one run of the measured command.
type runWindow struct {
	start   time.Time
	fetched bool
}

var (
	_ pipeline.EventHandler = (*Source)(nil)
	_ pipeline.Preflighter  = (*Source)(nil)
)

// EdgeSpan is the history kwollect-input asks for before the first run
// (and, in fetch, after each window) when it reads a metric whose readings
// are far apart (every metric but the wattmetres': an energy counter, a
// BMC, a PDU): energy-report starts and ends the window's series with
// those readings instead of extrapolating. Two of node_exporter's 15 s
// scrapes, with room for jitter and lag.
const EdgeSpan = time.Minute

// edgeTailSpan is the span after a window that holds the next reading of
// every metric wantsEdges counts: in fetch EdgeSpan (it is there
// already); in exec and watch, which wait for it, one and a half times the
// longest period of those metrics (the catalogue's; when it does not
// say, 15 s for a Prometheus metric, 5 s for the others), at most
// EdgeSpan.
func (s *Source) edgeTailSpan(ctx context.Context) time.Duration {
	if !s.edgeTail {
		return 0
	}
	if s.mode == plugin.ModeFetch {
		return EdgeSpan
	}
	periods := s.catalogFor(ctx).periods(s.cfg.Metrics)
	longest := time.Duration(0)
	for _, m := range s.cfg.Metrics {
		if !wantsEdges([]string{m}) {
			continue
		}
		p, ok := periods[m]
		switch {
		case ok && p > 0:
		case strings.HasPrefix(m, "prom_"):
			p = 15 * time.Second // a Prometheus scrape
		default:
			p = 5 * time.Second // a BMC's
		}
		longest = max(longest, p)
	}
	return min(longest*3/2, EdgeSpan)
}

// wantsEdges reports whether metrics has one whose readings around a
// window matter: any but wattmetre_power_watt (whose 1 Hz means the
// query's floored start covers, and whose frames are dense).
func wantsEdges(metrics []string) bool {
	for _, m := range metrics {
		if m != "wattmetre_power_watt" {
			return true
		}
	}
	return false
}
