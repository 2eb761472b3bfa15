package kwollect

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// sinkError marks an error of the caller's function, which is never
// retried.
type sinkError struct{ err error }

func (e sinkError) Error() string { return e.err.Error() }
func (e sinkError) Unwrap() error { return e.err }

// StreamResume is Stream with retries, for queries the fetch engine cannot
// split (an OAR job's whole window: its bounds are not known here). A
// retryable failure, also in the middle of the body, repeats the query
// with the backoff of p, and resumes after the last row fn was given:
// Kwollect orders rows by timestamp only, so the rows before that
// timestamp are skipped, and at that timestamp those of the series already
// given. fn sees every row once. onRetry, if not nil, is told of each
// retry. It returns the number of rows given to fn.
func (c *Client) StreamResume(ctx context.Context, q Query, p RetryPolicy, onRetry func(err error, attempt int, wait time.Duration), fn func(*Row) error) (int, error) {
	p = p.withDefaults()
	var (
		given   int
		lastTS  time.Time
		atLast  = map[string]bool{} // series given at lastTS
		keyBuf  []byte
		started bool
	)
	for attempt := 1; ; attempt++ {
		_, err := c.Stream(ctx, q, func(r *Row) error {
			keyBuf = r.appendSeriesKey(keyBuf[:0])
			// Rows come in time order: on a retry, what is before the
			// last row given, or at its time and of a series given then,
			// was given before the failure.
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
		})
		var se sinkError
		switch {
		case err == nil:
			return given, nil
		case errors.As(err, &se):
			return given, se.err
		case !IsRetryable(err), p.MaxAttempts > 0 && attempt >= p.MaxAttempts, ctx.Err() != nil:
			return given, err
		}
		wait := max(p.wait(attempt, rand.Float64()), retryAfterOf(err))
		if onRetry != nil {
			onRetry(err, attempt, wait)
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return given, err
		}
	}
}
