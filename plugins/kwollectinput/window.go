// A measured window: fetched, completed up to its tail, reported.

package kwollectinput

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/alumet-go/alumet-agent/kwollect"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
)

// prepare tells a new session what is known from before its windows: each
// series' period (pre-flight, history, probes), and
// which series the catalogue proves absent (not waited for).
func (s *Source) prepare(ctx context.Context, sess *kwollect.Session) {
	cat := s.catalogFor(ctx)
	for _, t := range s.targets.Nodes {
		for _, m := range s.cfg.Metrics {
			if sp, ok := s.prior.get(shortName(t.Node), m); ok { // rows name nodes by their short name
				sess.SetPeriod(t.Node, m, sp.Period)
			}
			if _, absent := cat.absent(t.Node, m); absent {
				sess.Abandon(t.Node, m)
			}
		}
	}
}

// needsProbe: a series without rows in the window (its newest sample
// before the window tells whether one should be in it), or with one row
// and no known period.
func needsProbe(sc kwollect.SeriesCoverage, periods map[string]time.Duration, prior *priors) bool {
	switch {
	case sc.Complete || sc.Abandoned || sc.Rows >= 2:
		return false
	case sc.Rows == 0:
		return true
	case periods[sc.Metric] > 0:
		return false
	}
	sp, ok := prior.get(sc.Node, sc.Metric)
	return !ok || sp.Period == 0
}

// probeEvery is how often the tail completion probes again the series
// that still have no row in the window: with ingestion lag, their newest
// sample before the window shows late too.
const probeEvery = 2 * time.Second

// complete runs the tail completion until deadline, probing the rowless
// series every probeEvery.
func (s *Source) complete(ctx context.Context, sess *kwollect.Session, start, end, deadline time.Time, periods map[string]time.Duration, sink func([]kwollect.Row) error) (kwollect.Report, error) {
	var total kwollect.Report
	s.queriedMu.Lock()
	s.inTail, s.tailQueried = true, false
	s.queriedMu.Unlock()
	defer func() {
		s.queriedMu.Lock()
		s.inTail = false
		s.queriedMu.Unlock()
	}()
	frozen := &frozenSeries{m: map[string]frozenSince{}}
	s.frozenMu.Lock()
	s.frozen = frozen
	s.frozenMu.Unlock()
	failedBefore := false
	for {
		step := deadline
		cov := sess.Coverage(start, end)
		// Step by step when a series has no row (probe it again) or has
		// peers on its site that may show that its meter stopped.
		probing, judging := false, false
		peers := map[string]int{}
		for _, sc := range cov {
			peers[sc.Site+"/"+sc.Metric]++
		}
		for _, sc := range cov {
			probing = probing || (sc.Rows == 0 && needsProbe(sc, periods, &s.prior))
			judging = judging || (!sc.Complete && !sc.Abandoned && peers[sc.Site+"/"+sc.Metric] > 1)
		}
		switch {
		case probing || failedBefore:
			// (a round whose queries failed is tried again soon: a
			// flaky API must not end the tail early)
			step = minTime(deadline, s.clock().Add(probeEvery))
		case judging:
			step = minTime(deadline, s.clock().Add(judgeEvery))
		}
		tail, err := sess.Complete(ctx, end, step, sink)
		total.Rows += tail.Rows
		total.Queries += tail.Queries
		total.Retries += tail.Retries
		total.FailedChunks = tail.FailedChunks
		total.Series = tail.Series
		failedBefore = isPartial(err)
		stepping := probing || judging || failedBefore
		if (err != nil && !isPartial(err)) || !stepping || !s.clock().Before(deadline) || tail.Complete() || ctx.Err() != nil {
			return total, err
		}
		if probing {
			s.probe(ctx, sess, start, end, sess.Coverage(start, end), periods)
		}
		if s.abandonDead(sess, sess.Coverage(start, end), frozen) == len(cov) {
			return total, nil
		}
	}
}

// frozenSince is a series' newest sample (in or before the window) and
// when it was first seen: a meter whose newest sample does not move while
// time passes is not lagging.
type frozenSince struct {
	newest, since time.Time
}

// frozenSeries holds the frozenSince of each node/metric of the window
// being completed (read by the progress line too).
type frozenSeries struct {
	mu sync.Mutex
	m  map[string]frozenSince
}

// stillFor says for how long the newest sample of node/metric has not
// moved (0 if unknown).
func (s *Source) stillFor(node, metric string, now time.Time) time.Duration {
	s.frozenMu.Lock()
	f := s.frozen
	s.frozenMu.Unlock()
	if f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if fs, ok := f.m[node+"/"+metric]; ok {
		return now.Sub(fs.since)
	}
	return 0
}

// judgeEvery is how often the tail completion looks for meters that
// stopped while the other nodes of their site are up to date.
const judgeEvery = 5 * time.Second

// stoppedAfter is how long a series' newest sample must stay the same
// (and at least 5 periods), while another node of its site and metric is
// complete, before its meter is judged stopped: a lagging series keeps
// receiving samples, only later.
const stoppedAfter = 20 * time.Second

// abandonDead stops waiting for the series that have no sample in the
// window while a sample after it shows (none falls in it: a 5 s BMC series
// over a 3 s command), and for those whose meter is down or stopped
// rather than lagging: their newest sample (in or before the window) has
// not moved for stoppedAfter of waiting while another node of the same
// site and metric is complete (so Kwollect is not behind for that site).
// Their outcome gives the reason. It returns how many series are done
// (complete or abandoned).
func (s *Source) abandonDead(sess *kwollect.Session, cov []kwollect.SeriesCoverage, fz *frozenSeries) int {
	fz.mu.Lock()
	defer fz.mu.Unlock()
	frozen := fz.m
	now := s.clock()
	upToDate := upToDateSeriesOf(cov)
	done := 0
	for _, sc := range cov {
		if sc.Complete || sc.Abandoned {
			done++
			continue
		}
		k := sc.Node + "/" + sc.Metric
		prior, _ := s.prior.get(sc.Node, sc.Metric)
		if next, ok := s.prior.after(sc.Node, sc.Metric); ok && sc.Rows == 0 {
			why := fmt.Sprintf("no sample falls in the window: the series samples every %s; the samples around it are at %s and %s; measure for longer than its period",
				pipeline.HumanDuration(sc.Period), pipeline.ClockTime(prior.Last), pipeline.ClockTime(next))
			if prior.Last.IsZero() {
				why = fmt.Sprintf("no sample falls in the window: the first one after it is at %s", pipeline.ClockTime(next))
			}
			s.prior.markDead(sc.Node, sc.Metric, why)
			sess.Abandon(sc.Node, sc.Metric)
			done++
			continue
		}
		newest := sc.Last
		if sc.Rows == 0 {
			newest = prior.Last
		}
		f, seen := frozen[k]
		if !seen || newest.After(f.newest) {
			frozen[k] = frozenSince{newest: newest, since: now}
			continue
		}
		peer := upToDate.other(sc)
		still := now.Sub(f.since)
		if peer == "" || still < max(stoppedAfter, 5*sc.Period) {
			continue
		}
		if newest.IsZero() {
			s.prior.markDead(sc.Node, sc.Metric, fmt.Sprintf("the meter is down: no sample in the window nor in the %v before it, and none came in %s of waiting while %s, on the same site, is up to date",
				probeLookback, pipeline.HumanDuration(still), peer))
		} else {
			s.prior.markDead(sc.Node, sc.Metric, fmt.Sprintf("the meter stopped: no sample after %s, and none came in %s of waiting while %s, on the same site, is up to date",
				pipeline.ClockTime(newest), pipeline.HumanDuration(still), peer))
		}
		sess.Abandon(sc.Node, sc.Metric)
		done++
	}
	return done
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// probeLookback is how far before a window the probe looks for a
// series' samples: far enough that a lag of minutes still shows samples
// (a lagging series), not a silent one.
const probeLookback = 10 * time.Minute

// probe learns the period of the series that have fewer than two rows in
// the window and no period from the catalogue or an earlier query, from
// the rows just before the window: without it a 5 s BMC series in a short
// window would be judged against 1 s and waited for until fetch_timeout.
func (s *Source) probe(ctx context.Context, sess *kwollect.Session, start, end time.Time, cov []kwollect.SeriesCoverage, periods map[string]time.Duration) {
	bySite := map[string]map[string]bool{}
	from := map[string]time.Time{} // per site: from the oldest newest sample known
	metrics := map[string]bool{}
	for _, sc := range cov {
		if !needsProbe(sc, periods, &s.prior) {
			continue
		}
		if bySite[sc.Site] == nil {
			bySite[sc.Site] = map[string]bool{}
		}
		bySite[sc.Site][sc.Node] = true
		metrics[sc.Metric] = true
		f := start.Add(-probeLookback)
		if sp, ok := s.prior.get(sc.Node, sc.Metric); ok && sp.Last.After(f) {
			f = sp.Last
		}
		if old, ok := from[sc.Site]; !ok || f.Before(old) {
			from[sc.Site] = f
		}
	}
	for site, nodes := range bySite {
		// Up to now: a sample after the window proves that none in it is
		// still to come (Kwollect ingests a series in order).
		q := kwollect.Query{Site: site, Nodes: slices.Sorted(maps.Keys(nodes)), Metrics: slices.Sorted(maps.Keys(metrics)),
			Start: from[site], End: s.clock()}
		qctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		s.log.Debug("period probe: " + s.client.URL(q))
		last := map[string]time.Time{}
		inWindow := map[string]bool{} // rows come in time order
		_, err := s.client.Stream(qctx, q, func(r *kwollect.Row) error {
			if r.Null {
				return nil
			}
			k := r.DeviceID + "/" + r.MetricID
			var gap time.Duration
			if l, ok := last[k]; ok {
				gap = r.Timestamp.Sub(l)
			}
			last[k] = r.Timestamp
			switch {
			case r.Timestamp.Before(start):
				s.prior.note(r.DeviceID, r.MetricID, r.Timestamp, gap)
			case !r.Timestamp.After(end):
				// In the window: the tail completion delivers it.
				inWindow[k] = true
			case !inWindow[k]:
				s.prior.noteAfter(r.DeviceID, r.MetricID, r.Timestamp, gap)
			}
			return nil
		})
		cancel()
		if err != nil {
			s.log.Debug(fmt.Sprintf("period probe failed: %v", err))
			continue
		}
		for node := range nodes {
			for m := range metrics {
				if sp, ok := s.prior.get(node, m); ok {
					sess.SetPeriod(node, m, sp.Period)
				}
			}
		}
	}
}

// fetchHistory reads the span before the first run that an element asked
// for (energy-report's idle baseline) and hands it over the pipeline's
// history channel: those points never reach the outputs. It is fetched at
// the end of the first run, when Kwollect has long ingested it.
func (s *Source) fetchHistory(ctx context.Context, runStart time.Time) error {
	d := s.history.Wanted()
	if d <= 0 {
		return nil
	}
	end := windowStart(runStart)
	start := end.Add(-d)
	buf, err := s.fetchBuffer(ctx, start, end)
	n := 0
	if buf != nil {
		// Kwollect's bounds are inclusive: the row at the run's first
		// second belongs to the run, not to the idle level.
		buf.Points = slices.DeleteFunc(buf.Points, func(p measure.Point) bool { return !p.Timestamp.Before(end) })
		n = len(buf.Points)
		s.history.DeliverBefore(buf, end)
	}
	purpose := "the idle baseline"
	switch {
	case s.edgeLead && d <= EdgeSpan:
		purpose = "the readings just before the run"
	case s.edgeLead:
		purpose = "the idle baseline and the readings just before the run"
	}
	s.log.Info(fmt.Sprintf("Kwollect: %d rows of history fetched for %s [%s, %s]", n, purpose, start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339)))
	if err != nil {
		// Only the baseline and the first interval suffer (energy-report
		// says which series have no baseline, and bridges the interval):
		// the measurement itself is not failed for it.
		s.log.Warn(fmt.Sprintf("Fetching the history before the run (for %s) failed: %v", purpose, err))
	}
	return nil
}

// settledAge is how old a window's end must be for Kwollect to have
// ingested it, whatever its lag; settledGrace is then how long a series
// without any row is still asked for.
const (
	settledAge   = 10 * time.Minute
	settledGrace = 5 * time.Second
)

// afterMargin is how long past the span after a window kwollect-input
// waits before fetching it, for Kwollect to ingest its last rows.
const afterMargin = 5 * time.Second

// fetchAfter reads the span after a window that ended at from, that an
// element asked for (energy-report's baseline = "after:D"; in fetch, the
// readings just after the window), waiting for it to pass,
// and hands it over the history channel: those points never reach the
// outputs. A failure only costs what it was for: a warning.
func (s *Source) fetchAfter(ctx context.Context, from time.Time) error {
	wanted, edge := s.history.WantedAfter(), s.edgeTailSpan(ctx)
	d := max(wanted, edge)
	if d <= 0 {
		return nil
	}
	purpose := "the baseline after the run"
	switch {
	case edge > 0 && wanted <= edge:
		purpose = "the readings just after the window"
	case edge > 0:
		purpose = "the baseline after the run and the readings just after the window"
	}
	to := from.Add(d)
	if wait := time.Until(to.Add(afterMargin)); wait > 0 {
		s.log.Info(fmt.Sprintf("Waiting %s for the %s after the run (%s)", pipeline.HumanDuration(wait), pipeline.HumanDuration(d), purpose))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			s.log.Warn(fmt.Sprintf("Not waiting for the span after the run any more (%v): no data for %s", context.Cause(ctx), purpose))
			return nil
		}
	}
	fctx, cancel := context.WithTimeout(ctx, singleQueryBudget+d/60)
	defer cancel()
	buf, err := s.fetchBuffer(fctx, from, to)
	n := 0
	if buf != nil {
		// The row at the window's end belongs to the window.
		buf.Points = slices.DeleteFunc(buf.Points, func(p measure.Point) bool { return !p.Timestamp.After(from) })
		n = len(buf.Points)
		s.history.DeliverAfter(buf, from)
	}
	s.log.Info(fmt.Sprintf("Kwollect: %d rows fetched for %s [%s, %s]", n, purpose, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339)))
	if err != nil {
		s.log.Warn(fmt.Sprintf("Fetching the span after the run (for %s) failed: %v", purpose, err))
	}
	return nil
}

// recent serves the pipeline's fresh readings (between repeated runs, to
// tell when the nodes are back to idle).
func (s *Source) recent(ctx context.Context, from, to time.Time) (*measure.Buffer, error) {
	return s.fetchBuffer(ctx, from, to)
}

// fetchBuffer reads [from, to] (what Kwollect has now, no tail completion,
// no progress line) into one buffer, outside the pipeline. The spans are
// short (a baseline, a few seconds of cooldown), so the buffer is small.
func (s *Source) fetchBuffer(ctx context.Context, from, to time.Time) (*measure.Buffer, error) {
	opts := s.sessionOptions(ctx)
	opts.OnProgress = nil
	opts.OnQuery = func(u string) { s.log.Debug("API request should be triggered with URL: " + u) }
	opts.Retry = kwollect.DefaultRetryPolicy()
	opts.Retry.MaxAttempts = 3
	sess, err := s.client.NewSession(s.plan(), opts)
	if err != nil {
		return nil, err
	}
	buf := &measure.Buffer{}
	conv := s.newConverter(0)
	_, err = sess.Fetch(ctx, from, to, func(rows []kwollect.Row) error {
		for i := range rows {
			if rows[i].Null {
				continue
			}
			p, err := conv.point(&rows[i])
			if err != nil {
				return err
			}
			buf.Push(p)
		}
		return nil
	})
	return buf, err
}

// windowStart floors the start to the second: this keeps the 1 Hz sample
// that covers the first second. The end stays exact, so the final fraction
// of the run is not dropped.
func windowStart(t time.Time) time.Time { return t.Truncate(time.Second) }

// fetchWindow reads [start, end], then completes the tail that Kwollect has
// not ingested yet, and reports every series' outcome.
func (s *Source) fetchWindow(ctx context.Context, start, end time.Time, run int, out pipeline.Emitter) error {
	// The outcomes are judged over the exact window (as energy-report
	// integrates it); the queries start at its second.
	exact := start
	start = windowStart(start)
	s.prior.newWindow()
	s.lastFailure.Store("")
	opts := s.sessionOptions(ctx)
	prog := newProgress(s.log)
	opts.OnProgress = prog.update
	if age := s.clock().Sub(end); age > settledAge {
		// A window this old is ingested (Kwollect lags by minutes at
		// worst): a series without any row in it has none to come (an
		// on-demand metric outside a monitor job), and waiting for it
		// until fetch_timeout would only delay the EMPTY verdict.
		opts.EmptyGrace = settledGrace
	}
	sess, err := s.client.NewSession(s.plan(), opts)
	if err != nil {
		return err
	}
	if d := s.cfg.FetchDelay.D(); d > 0 {
		s.log.Info(fmt.Sprintf("Waiting fetch_delay (%s) before fetching", pipeline.HumanDuration(d)))
		select {
		case <-time.After(d):
		case <-ctx.Done():
			s.reportFatal(exact, end, run, kwollect.Report{}, sess.Coverage(exact, end), why(ctx, ctx.Err()))
			return s.fetchFailed(why(ctx, ctx.Err()))
		}
	}
	s.prepare(ctx, sess)
	s.log.Info("Polling KwollectSource")
	sink := s.sink(ctx, out, run)
	rep, err := sess.Fetch(ctx, start, end, sink)
	var partial *kwollect.PartialError
	if err != nil && !errors.As(err, &partial) {
		s.reportFatal(exact, end, run, rep, sess.Coverage(exact, end), why(ctx, err))
		return s.fetchFailed(err)
	}
	fetchErr := err
	deadline := s.tailDeadline(ctx)
	if s.clock().Sub(end) > pastWindowAge {
		deadline = s.clock() // long ingested: nothing more will come
	} else {
		s.probe(ctx, sess, start, end, sess.Coverage(start, end), opts.Periods)
	}
	prog.detail = func() string { return s.waitingFor(sess, start, end, deadline) }
	tail, err := s.complete(ctx, sess, start, end, deadline, opts.Periods, sink)
	prog.finish()
	if err != nil {
		fetchErr = errors.Join(fetchErr, err)
	}
	if err != nil && !errors.As(err, &partial) {
		s.reportFatal(exact, end, run, kwollect.Report{Rows: rep.Rows + tail.Rows, Queries: rep.Queries + tail.Queries}, sess.Coverage(exact, end), why(ctx, err))
		return s.fetchFailed(fetchErr)
	}
	s.report(exact, end, run, rep, tail, sess.Coverage(exact, end))
	if fetchErr != nil {
		return s.fetchFailed(fetchErr)
	}
	return nil
}

// budgetError is the cause of a fetch cut at its time budget.
type budgetError struct{ total time.Duration }

func (e *budgetError) Error() string {
	return fmt.Sprintf("time budget of %s ran out (fetch_timeout)", pipeline.HumanDuration(e.total))
}

// singleQueryBudget is the budget's share for the queries when
// fetch_timeout is 0 (one pass, no tail wait).
const singleQueryBudget = 30 * time.Second

// budget bounds the whole fetch of [start, end] (history, the window, its
// tail) whatever the API does: fetch_delay + fetch_timeout + 1 s per
// minute of window (the time to stream a long window). The deadline is on
// the real clock.
func (s *Source) budget(ctx context.Context, start, end time.Time) (context.Context, context.CancelFunc) {
	wait := s.cfg.FetchTimeout.D()
	if wait == 0 {
		// fetch_timeout = 0: no tail wait, but the query still needs time.
		wait = singleQueryBudget
	}
	total := s.cfg.FetchDelay.D() + wait + max(end.Sub(start), 0)/60
	return context.WithDeadlineCause(ctx, time.Now().Add(total), &budgetError{total})
}

// tailDeadline is when the tail completion stops waiting: fetch_timeout
// from now, and never past the budget of ctx.
func (s *Source) tailDeadline(ctx context.Context) time.Time {
	d := s.clock().Add(s.cfg.FetchTimeout.D())
	if b, ok := ctx.Deadline(); ok {
		d = minTime(d, s.clock().Add(time.Until(b)))
	}
	return d
}

// why is the error that stopped a fetch: the cause of ctx's end (a signal,
// the budget) when it ended, else err.
func why(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}

// fetchError is a failed fetch, said in a few words when queries failed
// after their retries: the outcome of each series, at the end of the log,
// says what is missing.
type fetchError struct{ err error }

func (e *fetchError) Error() string {
	if isPartial(e.err) || kwollect.IsRetryable(e.err) {
		return "fetching from Kwollect failed: " + kwollect.Brief(e.err)
	}
	// A refusal (401, 404, a bad query) keeps its advice.
	return "fetching from Kwollect failed: " + e.err.Error()
}
func (e *fetchError) Unwrap() error { return e.err }

// OutcomesTold: the series' outcomes say what this failure cost, so the
// agent does not log it again as an error of its own.
func (e *fetchError) OutcomesTold() bool { return true }

// fetchFailed logs the whole error at debug level and returns it briefly.
func (s *Source) fetchFailed(err error) error {
	s.log.Debug(fmt.Sprintf("fetching from Kwollect failed: %v", err))
	return &fetchError{err}
}

// reportFatal reports a fetch stopped by an error that no retry cures (or
// a cancellation): the series it left incomplete failed.
func (s *Source) reportFatal(start, end time.Time, run int, rep kwollect.Report, cov []kwollect.SeriesCoverage, err error) {
	recent := s.clock().Sub(end) < pastWindowAge
	reason := "the fetch failed (" + kwollect.Brief(err) + ")"
	var it *pipeline.Interrupted
	var be *budgetError
	last, _ := s.lastFailure.Load().(string)
	switch {
	case errors.As(err, &it) && last != "":
		reason = "the fetch was cut short (" + it.Error() + ") while its queries failed (" + last + ")"
	case errors.As(err, &it):
		reason = "the fetch was cut short (" + it.Error() + ")"
	case errors.As(err, &be) && last != "":
		reason = "its queries failed (" + last + ") until the " + be.Error()
	case errors.As(err, &be):
		reason = "the fetch was cut short: " + be.Error()
	}
	if rep.Rows == 0 {
		s.log.Warn("Kwollect: nothing was fetched: " + reason)
	} else {
		s.log.Info(fmt.Sprintf("Kwollect: %d rows fetched before the fetch stopped: %s", rep.Rows, reason))
	}
	for _, sc := range cov {
		oc := s.outcome(start, end, run, sc, recent)
		if oc.Status.Bad() || sc.Rows == 0 {
			oc.FetchedLaterOK = true
			oc.Reason = reason
			oc.Status = pipeline.StatusFailed
			if sc.Rows > 0 {
				oc.Status = pipeline.StatusPartial
			}
		}
		s.record(oc)
	}
	for _, oc := range s.jobGaps(start, end, run, cov) {
		oc.Status, oc.FetchedLaterOK = pipeline.StatusFailed, true
		oc.Reason = reason
		s.record(oc)
	}
}

// waitingFor says, for the progress line, which series the tail
// completion waits for and how far behind Kwollect is for them.
func (s *Source) waitingFor(sess *kwollect.Session, start, end, deadline time.Time) string {
	now := s.clock()
	var parts []string
	n, rows := 0, 0
	cov := sess.Coverage(start, end)
	for _, sc := range cov {
		rows += sc.Rows
	}
	for _, sc := range cov {
		if sc.Complete || sc.Abandoned {
			continue
		}
		n++
		if n > 3 {
			continue
		}
		last := sc.Last
		if sc.Rows == 0 {
			if sp, ok := s.prior.get(sc.Node, sc.Metric); ok {
				last = sp.Last
			}
		}
		who := sc.Node
		if len(s.cfg.Metrics) > 1 {
			who += "/" + sc.Metric
		}
		if last.IsZero() {
			parts = append(parts, who+": no data yet")
		} else {
			if still := s.stillFor(sc.Node, sc.Metric, now); still >= judgeEvery {
				parts = append(parts, fmt.Sprintf("%s: no new sample for %s (the newest is %s old)", who, pipeline.HumanDuration(still), behind(now, last, sc.Period)))
			} else {
				parts = append(parts, fmt.Sprintf("%s: Kwollect is %s behind", who, behind(now, last, sc.Period)))
			}
		}
	}
	if n == 0 {
		return ""
	}
	if n > 3 {
		parts = append(parts, fmt.Sprintf("%d more", n-3))
	}
	wait := ", waiting (at most " + pipeline.HumanDuration(deadline.Sub(now)) + " more, fetch_timeout)…"
	if deadline.Sub(now) < 100*time.Millisecond {
		wait = ": fetch_timeout reached"
	}
	return fmt.Sprintf("%d rows so far; ", rows) + strings.Join(parts, ", ") + wait
}

// fetchJob reads the whole window of a finished OAR job, which Kwollect
// knows: one query per site with job_id and no time bounds (the configured
// nodes, if any, restrict it), retried on transient failures and resumed
// after the rows already fetched (its bounds are not known, so it cannot be
// split like a --from/--to window).
func (s *Source) fetchJob(ctx context.Context, jobID int64, out pipeline.Emitter) error {
	sites, bySite := s.targets.bySite()
	if len(sites) == 0 {
		site := s.targets.JobSite
		if site == "" {
			site = s.cfg.Site
		}
		if site == "" {
			return fmt.Errorf("fetch --job-id %d: set site (the job's site) in [plugins.kwollect-input]", jobID)
		}
		sites = []string{site}
	}
	sink := s.sink(ctx, out, 0)
	total := 0
	var first, last time.Time
	seen := map[string]int{} // node/metric → rows
	for _, site := range sites {
		q := kwollect.Query{Site: site, Nodes: bySite[site], Metrics: s.cfg.Metrics, JobID: jobID}
		s.log.Info("API request should be triggered with URL: " + s.client.URL(q))
		batch := make([]kwollect.Row, 0, 4096)
		sess, err := s.client.NewSession(kwollect.Plan{JobSite: site, JobID: jobID, Metrics: s.cfg.Metrics}, kwollect.SessionOptions{
			OnRetry: func(_ string, err error, attempt int, wait time.Duration) {
				s.log.Warn(fmt.Sprintf("Kwollect query failed (attempt %d), retrying in %v and resuming after the rows already fetched: %v", attempt, wait.Round(time.Millisecond), err))
			}})
		if err != nil {
			return err
		}
		n, err := sess.StreamResume(ctx, q, func(r *kwollect.Row) error {
			if !r.Null {
				seen[shortName(r.DeviceID)+"/"+r.MetricID]++
				if first.IsZero() || r.Timestamp.Before(first) {
					first = r.Timestamp
				}
				if r.Timestamp.After(last) {
					last = r.Timestamp
				}
			}
			batch = append(batch, *r)
			if len(batch) == cap(batch) {
				err := sink(batch)
				batch = batch[:0]
				return err
			}
			return nil
		})
		// Even after a failure: the rows read are kept.
		if serr := sink(batch); err == nil {
			err = serr
		}
		total += n
		if err != nil {
			err = why(ctx, err)
			return fmt.Errorf("fetching OAR job %d on %s from Kwollect: %w (for a very long job, use fetch --from/--to, which splits the window)", jobID, site, err)
		}
	}
	s.log.Info(fmt.Sprintf("Kwollect: %d rows fetched for OAR job %d", total, jobID))
	if first.IsZero() {
		return fmt.Errorf("no data in Kwollect for OAR job %d (metrics %s): check the job id and site, and that the job has ended", jobID, strings.Join(s.cfg.Metrics, ", "))
	}
	s.directory.SetJobSpan(jobID, first, last)
	// The job's bounds are not known here, so a configured node is only
	// judged on whether it has any row at all.
	for _, t := range s.targets.Nodes {
		for _, m := range s.cfg.Metrics {
			oc := pipeline.Outcome{Node: shortName(t.Node), Site: t.Site, Metric: m, Window: pipeline.Interval{From: first, To: last}, Status: pipeline.StatusComplete, Coverage: 1}
			oc.Samples = seen[oc.Node+"/"+m]
			if oc.Samples == 0 {
				oc.Status, oc.Coverage = pipeline.StatusEmpty, 0
				oc.Reason = fmt.Sprintf("no row in OAR job %d, whose other series span this window: %s", jobID, s.catalog.noDataHint(oc.Node, m))
				s.log.Warn(fmt.Sprintf("%s/%s: %s", oc.Node, m, oc.Describe()))
			}
			s.record(oc)
		}
	}
	return nil
}
