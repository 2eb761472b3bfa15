package kwollect

import (
	"context"
	"errors"
	"time"
)

// sinkError marks an error of the caller's function, which is never
// retried.
type sinkError struct{ err error }

func (e sinkError) Error() string { return e.err.Error() }
func (e sinkError) Unwrap() error { return e.err }

// StreamResume sends q, a query that Fetch cannot plan or split (an OAR
// job's whole window: job_id without bounds, which Kwollect fills from the
// job; a pre-flight probe), and streams its rows to fn, with the session's
// retries: its Retry policy, Retry-After, OnQuery, OnRetry and the Clock,
// Sleep and Rand seams, as for Fetch. A retryable failure, also in the
// middle of the body, repeats the query and resumes after the last row fn
// was given: Kwollect orders rows by timestamp only, so the rows before
// that timestamp are skipped, and at that timestamp those of the series
// already given. fn sees every row once; its error stops at once and is
// returned unchanged. q need not be part of the session's plan, and the
// session's coverage is not changed. It returns the number of rows given
// to fn. The *Row is reused as with Stream.
func (s *Session) StreamResume(ctx context.Context, q Query, fn func(*Row) error) (int, error) {
	var (
		given   int
		lastTS  time.Time
		atLast  = map[string]bool{} // series given at lastTS
		keyBuf  []byte
		started bool
	)
	filter := func(r *Row) error {
		keyBuf = r.appendSeriesKey(keyBuf[:0])
		// Rows come in time order: on a retry, what is before the last
		// row given, or at its time and of a series given then, was given
		// before the failure.
		if started && (r.Timestamp.Before(lastTS) || (r.Timestamp.Equal(lastTS) && atLast[string(keyBuf)])) {
			return nil
		}
		if !started || !r.Timestamp.Equal(lastTS) {
			lastTS, started = r.Timestamp, true
			clear(atLast)
		}
		atLast[string(keyBuf)] = true
		given++
		if err := fn(r); err != nil {
			return sinkError{err}
		}
		return nil
	}
	u := s.c.URL(q)
	err, _ := s.retrier(nil).run(ctx, time.Time{}, func(int) (string, error, bool) {
		if s.o.OnQuery != nil {
			s.hooksMu.Lock()
			s.o.OnQuery(u)
			s.hooksMu.Unlock()
		}
		_, err := s.c.Stream(ctx, q, filter)
		var se sinkError
		switch {
		case err == nil:
			return u, nil, false
		case errors.As(err, &se):
			return u, se.err, false
		case !IsRetryable(err), ctx.Err() != nil:
			return u, err, false
		}
		return u, err, true
	})
	return given, err
}
