package kwollectinput

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/alumet-go/alumet-agent/kwollect"
	"github.com/alumet-go/alumet-agent/plugin"
)

// preflightWindow is how far back the pre-flight check looks for data: far
// enough that Kwollect's ingestion lag (seconds, sometimes minutes) does not
// pass for a dead meter.
const preflightWindow = 10 * time.Minute

// preflightRecentSpan is the first, small query of the pre-flight check;
// only the series without data in it are looked for further back.
const preflightRecentSpan = 2 * time.Minute

// recentAge is the minimum age below which a series' newest sample counts
// as recent: a series whose newest sample is older than
// max(recentAge, 3 periods) is reported as silent (a warning: Kwollect may
// only lag).
const recentAge = 2 * time.Minute

// preflightPolicy retries a transient failure of a pre-flight query a few
// times before calling the API unreachable.
var preflightPolicy = kwollect.RetryPolicy{Base: 250 * time.Millisecond, Max: 2 * time.Second, Multiplier: 2, Jitter: 0.5, MaxAttempts: 5}

// Preflight checks, before the command is spawned, the configured names
// (see Diagnose) and that every node/metric has recent data, so that a
// wrong name or a missing meter fails in seconds rather than leaving an
// empty file after hours of experiment. It tells apart, per node/metric: no
// meter on the node (the catalogue proves it), no data in the look-back
// window, a meter silent for a while (a warning), and an API that cannot be
// reached. Every series seen is noted in s.prior (newest sample, period).
func (s *Source) Preflight(ctx context.Context) error {
	if s.mode != plugin.ModeExec {
		return nil
	}
	if err := s.Diagnose(ctx); err != nil {
		return err
	}
	if s.cfg.Preflight == PreflightOff {
		return nil
	}
	cat := s.catalogFor(ctx)
	now := s.clock()
	periods := cat.periods(s.cfg.Metrics)
	window := preflightWindow
	for _, p := range periods {
		window = max(window, 3*p)
	}
	obs := newObserver(&s.prior)
	var probe *kwollect.Session // sends each query as is, with its retries
	query := func(q kwollect.Query) error {
		if probe == nil {
			p, err := s.client.NewSession(s.plan(), kwollect.SessionOptions{Retry: preflightPolicy,
				OnRetry: func(_ string, err error, attempt int, wait time.Duration) {
					s.log.Debug(fmt.Sprintf("pre-flight query failed (attempt %d), retrying in %v: %v", attempt, wait.Round(time.Millisecond), err))
				}})
			if err != nil {
				return err
			}
			probe = p
		}
		qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		s.log.Debug("pre-flight query: " + s.client.URL(q))
		_, err := probe.StreamResume(qctx, q, func(r *kwollect.Row) error {
			obs.add(r)
			return nil
		})
		return err
	}

	if len(s.targets.Nodes) == 0 && s.targets.JobID != 0 {
		q := kwollect.Query{Site: s.targets.JobSite, JobID: s.targets.JobID, Metrics: s.cfg.Metrics, Start: now.Add(-window), End: now}
		if err := query(q); err != nil {
			return s.preflightQueryFailed(err)
		}
		if obs.rows == 0 {
			return s.preflightMissing(fmt.Sprintf("no data in the last %s for:\n  OAR job %d: no data for %s", fmtMinutes(window), s.targets.JobID, strings.Join(s.cfg.Metrics, ", ")))
		}
		s.log.Info(fmt.Sprintf("Pre-flight check passed: OAR job %d has data from the last %s.", s.targets.JobID, fmtMinutes(window)))
		return nil
	}

	sites, bySite := s.targets.bySite()
	// The recent span first: it is all most checks need.
	for _, site := range sites {
		q := kwollect.Query{Site: site, Nodes: bySite[site], Metrics: s.cfg.Metrics, Start: now.Add(-preflightRecentSpan), End: now}
		if err := query(q); err != nil {
			return s.preflightQueryFailed(err)
		}
	}
	// Then further back, for the series that had nothing recent.
	for _, site := range sites {
		var nodes []string
		metrics := map[string]bool{}
		for _, n := range bySite[site] {
			for _, m := range s.cfg.Metrics {
				if obs.last[n+"/"+m].IsZero() {
					if len(nodes) == 0 || nodes[len(nodes)-1] != n {
						nodes = append(nodes, n)
					}
					metrics[m] = true
				}
			}
		}
		if len(nodes) == 0 {
			continue
		}
		var ms []string
		for _, m := range s.cfg.Metrics {
			if metrics[m] {
				ms = append(ms, m)
			}
		}
		q := kwollect.Query{Site: site, Nodes: nodes, Metrics: ms, Start: now.Add(-window), End: now.Add(-preflightRecentSpan)}
		if err := query(q); err != nil {
			return s.preflightQueryFailed(err)
		}
	}

	var missing, silent []string
	for _, t := range s.targets.Nodes {
		for _, m := range s.cfg.Metrics {
			last := obs.last[t.Node+"/"+m]
			if last.IsZero() {
				missing = append(missing, fmt.Sprintf("%s/%s: %s", t.Node, m, cat.noDataHint(t.Node, m)))
				continue
			}
			period := periods[m]
			if sp, ok := s.prior.get(t.Node, m); ok && period == 0 {
				period = sp.Period
			}
			age := now.Sub(last)
			switch {
			case age > max(recentAge, 3*period):
				silent = append(silent, fmt.Sprintf("%s/%s: meter silent since %s UTC (%s ago)", t.Node, m, last.UTC().Format("15:04:05"), fmtAgo(age)))
			case age > 30*time.Second:
				s.log.Debug(fmt.Sprintf("pre-flight: %s/%s lags by %v (newest sample at %s): Kwollect has not ingested the rest yet", t.Node, m, age.Round(time.Second), last.UTC().Format(time.RFC3339)))
			}
		}
	}
	if len(silent) > 0 {
		s.log.Warn(fmt.Sprintf("Pre-flight check: no recent data (Kwollect may only lag; the measurement will tell):\n  %s", strings.Join(silent, "\n  ")))
	}
	if len(missing) == 0 {
		if len(silent) == 0 {
			s.log.Info(fmt.Sprintf("Pre-flight check passed: every node and metric has data from the last %s.", fmtMinutes(window)))
		}
		return nil
	}
	return s.preflightMissing(fmt.Sprintf("no data in the last %s for:\n  %s", fmtMinutes(window), strings.Join(missing, "\n  ")))
}

// preflightMissing fails (or warns, with preflight = "warn") for series
// without data.
func (s *Source) preflightMissing(msg string) error {
	if s.cfg.Preflight == PreflightWarn {
		s.log.Warn("Pre-flight check: " + msg + "\n(preflight = \"warn\": running the command anyway)")
		return nil
	}
	return fmt.Errorf("%s\nFix the configuration, or set preflight = \"warn\" (or false) in [plugins.kwollect-input] to run anyway", msg)
}

// preflightQueryFailed explains a failed pre-flight query: bad credentials
// and a rejected query (wrong site, api_url) are configuration errors that
// skipping the check would not fix; an unreachable API (network, 5xx) may
// be run through with preflight = "warn".
func (s *Source) preflightQueryFailed(err error) error {
	var ne *kwollect.NetworkError
	status := kwollect.StatusOf(err)
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case kwollect.IsAuthError(err):
		return fmt.Errorf("pre-flight query to Kwollect: %w", s.credentialError(err))
	case errors.As(err, &ne) || status >= 500 || status == 429 || status == 408 || kwollect.IsRetryable(err):
		msg := fmt.Sprintf("Kwollect API unreachable: %v", err)
		if s.cfg.Preflight == PreflightWarn {
			s.log.Warn("Pre-flight check: " + msg + "\n(preflight = \"warn\": running the command anyway)")
			return nil
		}
		return fmt.Errorf("%s\nRetry later, or set preflight = \"warn\" (or false) in [plugins.kwollect-input] to run the command anyway", msg)
	case status == 404:
		return fmt.Errorf("pre-flight query to Kwollect: %w (check site and api_url)", err)
	}
	return fmt.Errorf("pre-flight query to Kwollect failed: %w", err)
}

// observer notes the pre-flight rows: the newest sample of each
// node/metric, and for s.prior the newest sample and smallest gap of each
// series (node, metric, labels: series of one node/metric with different
// labels, e.g. one per CPU, would interleave).
type observer struct {
	prior *priors
	last  map[string]time.Time // node/metric
	prev  map[string]time.Time // series key
	rows  int
}

func newObserver(p *priors) *observer {
	return &observer{prior: p, last: map[string]time.Time{}, prev: map[string]time.Time{}}
}

func (o *observer) add(r *kwollect.Row) {
	if r.Null {
		return
	}
	o.rows++
	t := r.Timestamp
	k := r.DeviceID + "/" + r.MetricID
	if t.After(o.last[k]) {
		o.last[k] = t
	}
	sk := k
	if len(r.Labels) > 0 {
		ls := make([]string, len(r.Labels))
		for i, l := range r.Labels {
			ls[i] = l.Key + "=" + l.Value
		}
		sort.Strings(ls)
		sk += "{" + strings.Join(ls, ",") + "}"
	}
	var gap time.Duration
	if p, ok := o.prev[sk]; ok {
		gap = t.Sub(p)
		if gap < 0 {
			gap = -gap
		}
	}
	if p := o.prev[sk]; t.After(p) {
		o.prev[sk] = t
	}
	o.prior.note(r.DeviceID, r.MetricID, t, gap)
}

// fmtMinutes writes a look-back window: "10 min", "90 s".
func fmtMinutes(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%d min", int(d/time.Minute))
	}
	return d.Round(time.Second).String()
}

// fmtAgo writes an age for people: "45 s", "6 min", "1 h 20 min".
func fmtAgo(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Round(time.Second)/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	}
	return fmt.Sprintf("%d h %d min", int(d/time.Hour), int(d%time.Hour/time.Minute))
}
