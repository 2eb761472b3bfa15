package kwollect

import (
	"context"
	"time"
)

const (
	defaultQueryTimeout = 5 * time.Minute
	defaultPeriod       = time.Second
	firstBackoff        = 500 * time.Millisecond
	maxBackoff          = 2 * time.Second
)

// backoff returns the wait before tail round step+1 of Complete when no
// ingestion lag is known: 0.5s, 1s, 2s, 2s...
func backoff(step int) time.Duration {
	if step >= 2 {
		return maxBackoff
	}
	return firstBackoff << step
}

// SeriesCoverage tells how much of the window one requested (node, metric)
// pair covers. A pair may hold several series (labels, ports).
type SeriesCoverage struct {
	Site         string
	Node, Metric string
	Rows         int
	First, Last  time.Time // zero if no row
	// Period is the sampling period used for the completeness test: the
	// smallest gap seen in the data, else SessionOptions.Periods, else 1s.
	Period time.Duration
	// Jitter is the spread of the regular gaps seen (largest gap below
	// 1.5 Period, minus Period), at most Period/4; 0 for evenly spaced data
	// or when the period is not inferred from the data.
	Jitter time.Duration
	// Complete: Last > End - Period - Jitter, i.e. the next sample,
	// expected one period (plus jitter) after Last, falls after End.
	Complete bool
	// Unverified is the time between the window start and Last that no
	// successful query has verified (a chunk that failed, see
	// Session.Coverage); 0 normally.
	Unverified time.Duration
	// Missing lists the intervals of the window without samples (see
	// Session.Coverage); Coverage is the share of the window its samples
	// cover, 0..1.
	Missing  []Interval
	Coverage float64
	// Lag is the largest ingestion lag observed for the pair: at a query
	// covering the window's end, the time it was sent minus the end of
	// the pair's newest sample (Last + Period), when that sample was short
	// of the end. 0 if Kwollect was never seen behind.
	Lag time.Duration
	// Abandoned says Complete did not wait for the pair (Abandon).
	Abandoned bool
}

// Interval is a span of time, [From, To].
type Interval struct{ From, To time.Time }

// Fraction is the share of [start, end] covered by the pair, 0..1: from
// max(First, start) to min(Last+Period, end). It is 0 without rows.
func (s SeriesCoverage) Fraction(start, end time.Time) float64 {
	if s.Rows == 0 {
		return 0
	}
	span := end.Sub(start)
	if span <= 0 {
		return 1
	}
	lo := s.First
	if lo.Before(start) {
		lo = start
	}
	hi := s.Last.Add(s.Period)
	if hi.After(end) {
		hi = end
	}
	f := float64(hi.Sub(lo)) / float64(span)
	return min(max(f, 0), 1)
}

// isComplete is the completeness test. The jitter allowance matters
// because Period is the SMALLEST gap: with jittered timestamps the last
// sample of the window can land slightly more than that before End, and the
// pair would otherwise wait, until the timeout, for a next sample that lies
// after End. Evenly spaced data gets no allowance, so no sample is lost.
//
// The inequality is strict: with 1 Hz samples on whole seconds and End on a
// whole second, the sample stamped End belongs to the window and is waited
// for.
func isComplete(rows int, last, end time.Time, period, jitter time.Duration) bool {
	return rows > 0 && last.Add(period+jitter).After(end)
}

func ctxErr(ctx context.Context, err error) error {
	if e := ctx.Err(); e != nil {
		return e
	}
	return err
}
