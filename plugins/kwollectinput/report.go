package kwollectinput

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/alumet-go/alumet-agent/kwollect"
	"github.com/alumet-go/alumet-agent/pipeline"
)

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// report logs what a fetch of [start, end] obtained, records every
// requested series' outcome on the pipeline's Outcomes, and warns, in one
// short line each, about the series that are not complete.
// anomalies says what was wrong in the answers of a window's fetch: rows
// skipped (malformed or oversized, since the last window), duplicates
// dropped, data after the array.
func (s *Source) anomalies(reps ...kwollect.Report) string {
	var dup, over, trailing int
	for _, r := range reps {
		dup += r.Duplicates
		over += r.Oversized
		trailing += r.Trailing
	}
	bad := 0
	if s.badRows != nil {
		bad = int(s.badRows.Swap(0)) - over // oversized elements are reported as bad rows too
	}
	var parts []string
	add := func(n int, one, many string) {
		switch {
		case n == 1:
			parts = append(parts, "1 "+one)
		case n > 1:
			parts = append(parts, fmt.Sprintf("%d %s", n, many))
		}
	}
	add(dup, "duplicate row dropped", "duplicate rows dropped")
	add(over, "oversized row skipped", "oversized rows skipped")
	add(max(bad, 0), "malformed row skipped", "malformed rows skipped")
	add(trailing, "response with data after its array, ignored", "responses with data after their array, ignored")
	return strings.Join(parts, ", ")
}

func (s *Source) report(start, end time.Time, run int, fetch, tail kwollect.Report, cov []kwollect.SeriesCoverage) []pipeline.Outcome {
	rows := fetch.Rows + tail.Rows
	s.log.Info(fmt.Sprintf("Kwollect: %d rows fetched for [%s, %s] in %d queries (%d retried)",
		rows, rfc(start), rfc(end), fetch.Queries+tail.Queries, fetch.Retries+tail.Retries))
	failed := append(fetch.FailedChunks, tail.FailedChunks...)
	failures := map[string]kwollect.ChunkFailure{} // node/metric → one failure
	for _, f := range failed {
		for _, n := range f.Nodes {
			for _, m := range f.Metrics {
				failures[n+"/"+m] = f
			}
		}
	}
	// A recent window's series that is still short without having been
	// judged stopped (abandonDead) kept receiving data, or was not waited
	// for long enough to tell: lag is not ruled out.
	recent := s.clock().Sub(end) < pastWindowAge
	anomalies := s.anomalies(fetch, tail)
	if s.outcomes != nil {
		s.outcomes.RecordFetch(pipeline.Fetch{Source: Name, Run: run, Window: pipeline.Interval{From: start, To: end}, Rows: rows,
			Queries: fetch.Queries + tail.Queries, Retries: fetch.Retries + tail.Retries, FailedChunks: len(failed), Anomalies: anomalies})
	}
	if anomalies != "" {
		s.log.Warn("Kwollect's answers for this window had anomalies: " + anomalies + " (the rows kept are sound)")
	}
	var out []pipeline.Outcome
	for _, sc := range cov {
		oc := s.outcome(start, end, run, sc, recent)
		oc.Anomalies = anomalies
		if f, failed := failures[sc.Node+"/"+sc.Metric]; failed && (sc.Unverified > 0 || sc.Rows == 0 || !sc.Complete) {
			oc.FetchedLaterOK = true
			if sc.Rows == 0 {
				oc.Status = pipeline.StatusFailed
				oc.Reason = "its queries failed (" + kwollect.Brief(f.Err) + ")"
			} else {
				oc.Status = pipeline.StatusPartial
				oc.Reason = "queries failed for part of the window (" + kwollect.Brief(f.Err) + ")"
			}
		}
		s.record(oc)
		out = append(out, oc)
	}
	for _, oc := range s.jobGaps(start, end, run, cov) {
		oc.Status, oc.FetchedLaterOK = pipeline.StatusEmpty, recent
		oc.Reason = fmt.Sprintf("no node of OAR job %d had a row in the window (check the job id, its site, and that it ran then)", s.targets.JobID)
		if f, ok := jobFailure(failed, oc.Metric); ok {
			oc.Status, oc.FetchedLaterOK = pipeline.StatusFailed, true
			oc.Reason = "its queries failed (" + kwollect.Brief(f.Err) + ")"
		}
		s.record(oc)
		out = append(out, oc)
	}
	s.logFailures(failed, rows, run)
	for _, oc := range out {
		if oc.Status.Bad() {
			s.log.Warn(fmt.Sprintf("%s/%s: %s", oc.Node, oc.Metric, oc.Describe()))
		}
	}
	return out
}

// jobGaps returns, for a job plan (Kwollect resolves the job's nodes),
// an outcome for each metric that no node of the job had in the window:
// its series are only known from their rows, so without it a job without
// data would leave no outcome at all. The caller sets status and reason.
func (s *Source) jobGaps(start, end time.Time, run int, cov []kwollect.SeriesCoverage) []pipeline.Outcome {
	if len(s.targets.Nodes) > 0 || s.targets.JobID == 0 {
		return nil
	}
	seen := map[string]bool{}
	for _, sc := range cov {
		seen[sc.Metric] = true
	}
	var out []pipeline.Outcome
	for _, m := range s.cfg.Metrics {
		if !seen[m] {
			out = append(out, pipeline.Outcome{Run: run, Node: fmt.Sprintf("OAR job %d", s.targets.JobID), Site: s.targets.JobSite,
				Metric: m, Window: pipeline.Interval{From: start, To: end}})
		}
	}
	return out
}

// jobFailure is a failed job query (no node list) for metric, if any.
func jobFailure(failed []kwollect.ChunkFailure, metric string) (kwollect.ChunkFailure, bool) {
	for _, f := range failed {
		if len(f.Nodes) == 0 && slices.Contains(f.Metrics, metric) {
			return f, true
		}
	}
	return kwollect.ChunkFailure{}, false
}

// record puts an outcome on the pipeline's Outcomes.
func (s *Source) record(oc pipeline.Outcome) {
	if s.outcomes != nil {
		s.outcomes.Record(oc)
	}
}

// upToDateSeries lists, per site/metric, the nodes whose series is
// complete.
type upToDateSeries map[string][]string

func upToDateSeriesOf(cov []kwollect.SeriesCoverage) upToDateSeries {
	out := upToDateSeries{}
	for _, sc := range cov {
		if sc.Complete && sc.Rows > 0 {
			k := sc.Site + "/" + sc.Metric
			out[k] = append(out[k], sc.Node)
		}
	}
	return out
}

// other is a node of sc's site and metric, not sc's, whose series is
// complete ("" if none).
func (u upToDateSeries) other(sc kwollect.SeriesCoverage) string {
	for _, n := range u[sc.Site+"/"+sc.Metric] {
		if n != sc.Node {
			return n
		}
	}
	return ""
}

// logFailures says which chunks failed after their retries, once each,
// unless every series they held is complete now (a later query got it).
func (s *Source) logFailures(failed []kwollect.ChunkFailure, rows, run int) {
	logged := map[string]bool{}
	for _, f := range failed {
		stillBad := len(f.Nodes) == 0 || s.outcomes == nil
		for _, n := range f.Nodes {
			for _, m := range f.Metrics {
				if stillBad {
					break
				}
				if oc, ok := s.outcomes.Of(run, n, m); !ok || oc.Status.Bad() {
					stillBad = true
				}
			}
		}
		what := "everything else was written"
		if rows == 0 {
			what = "nothing was fetched"
		}
		msg := fmt.Sprintf("Kwollect: could not fetch %s on %s for [%s, %s] (%s); %s",
			strings.Join(f.Nodes, ","), f.Site, rfc(f.From), rfc(f.To), kwollect.Brief(f.Err), what)
		if logged[msg] {
			continue
		}
		logged[msg] = true
		if stillBad {
			s.log.Error(msg)
		} else {
			s.log.Info(msg + "; a later query fetched it")
		}
		s.log.Debug(fmt.Sprintf("Kwollect: the failure in full: %v", f.Err))
	}
}

// outcome classifies one series from its coverage.
func (s *Source) outcome(start, end time.Time, run int, sc kwollect.SeriesCoverage, recent bool) (oc pipeline.Outcome) {
	oc = pipeline.Outcome{
		Run: run, Node: sc.Node, Site: sc.Site, Metric: sc.Metric,
		Window:  pipeline.Interval{From: start, To: end},
		Samples: sc.Rows, First: sc.First, Last: sc.Last, Coverage: sc.Coverage,
		Lag: sc.Lag, LagKnown: sc.Lag > 0, Period: sc.Period,
	}
	for _, m := range sc.Missing {
		oc.Missing = append(oc.Missing, pipeline.Interval{From: m.From, To: m.To})
	}
	prior, hasPrior := s.prior.get(sc.Node, sc.Metric)
	defer func() {
		// A lag is only known for a series that caught up: a series that
		// stops short may be lagging or dead, and its "lag" would grow
		// with the wait.
		if oc.Status != pipeline.StatusComplete {
			oc.Lag, oc.LagKnown = 0, false
		}
	}()
	switch {
	case sc.Rows == 0 && s.prior.deadReason(sc.Node, sc.Metric) != "":
		oc.Status = pipeline.StatusEmpty
		oc.Reason = s.prior.deadReason(sc.Node, sc.Metric)
	// Unverified time alone (chunk edges whose proof is pending) is not
	// missing data: failed chunks are judged by report, and what they
	// missed shows as missing intervals.
	case sc.Complete && len(sc.Missing) == 0:
		oc.Status = pipeline.StatusComplete
	case sc.Rows == 0:
		oc.Status = pipeline.StatusEmpty
		switch reason, absent := s.catalog.absent(sc.Node, sc.Metric); {
		case absent:
			oc.Reason = reason
		case recent && hasPrior && !prior.Last.IsZero():
			oc.Reason = fmt.Sprintf("Kwollect is %s behind: its last sample (%s) is from before the window, and nothing newer came within fetch_timeout (%v)",
				behind(s.clock(), prior.Last, sc.Period), pipeline.ClockTime(prior.Last), s.cfg.FetchTimeout.D())
			oc.FetchedLaterOK = true
		default:
			oc.Reason = "no data from Kwollect in the window: " + s.catalog.noDataHint(sc.Node, sc.Metric)
			oc.FetchedLaterOK = recent
		}
	default:
		oc.Status = pipeline.StatusPartial
		var why []string
		if !sc.Complete {
			if dead := s.prior.deadReason(sc.Node, sc.Metric); dead != "" {
				why = append(why, dead)
			} else if recent {
				why = append(why, fmt.Sprintf("no sample after %s (%s before the end): Kwollect is behind by more than fetch_timeout (%v), or the meter stopped",
					pipeline.ClockTime(sc.Last), pipeline.HumanDuration(end.Sub(sc.Last)), s.cfg.FetchTimeout.D()))
				oc.FetchedLaterOK = true
			} else {
				why = append(why, fmt.Sprintf("no sample after %s (%s before the end): the meter stopped", pipeline.ClockTime(sc.Last), pipeline.HumanDuration(end.Sub(sc.Last))))
			}
		}
		if n := len(sc.Missing); n > 0 && (sc.Complete || n > 1) {
			longest := time.Duration(0)
			for _, m := range sc.Missing {
				longest = max(longest, m.To.Sub(m.From))
			}
			why = append(why, fmt.Sprintf("the meter had no data over %d interval(s), the longest %s", n, pipeline.HumanDuration(longest)))
		}
		oc.Reason = strings.Join(why, "; ")
	}
	return oc
}

// behind is how far Kwollect is behind now for a series whose newest
// sample is last: the time since the end of that sample's period.
func behind(now, last time.Time, period time.Duration) string {
	return pipeline.HumanDuration(max(now.Sub(last.Add(period)), 0))
}
