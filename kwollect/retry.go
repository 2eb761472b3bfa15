package kwollect

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// RetryPolicy is the exponential backoff of failed queries: the wait
// before retry n (n = 1 after the first failure) is
// min(Max, Base × Multiplier^(n-1)) × (1 ± Jitter), and at least the
// server's Retry-After.
type RetryPolicy struct {
	Base, Max  time.Duration
	Multiplier float64
	// Jitter spreads each wait by ±Jitter (0.5 = ±50 %), 0 = none.
	Jitter float64
	// MaxAttempts bounds the attempts of one query (first one included);
	// 0 = until the context ends or the deadline passes.
	MaxAttempts int
}

// DefaultRetryPolicy is used when SessionOptions.Retry is the zero value:
// 250 ms, 500 ms, 1 s, ... up to 10 s, ±50 %, 8 attempts.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{Base: 250 * time.Millisecond, Max: 10 * time.Second, Multiplier: 2, Jitter: 0.5, MaxAttempts: 8}
}

// withDefaults: a zero policy is DefaultRetryPolicy; otherwise only the
// zero durations and multiplier get defaults (Jitter 0 and MaxAttempts 0
// keep their meaning: no jitter, no attempt limit).
func (p RetryPolicy) withDefaults() RetryPolicy {
	if p == (RetryPolicy{}) {
		return DefaultRetryPolicy()
	}
	d := DefaultRetryPolicy()
	if p.Base <= 0 {
		p.Base = d.Base
	}
	if p.Max <= 0 {
		p.Max = max(d.Max, p.Base)
	}
	p.Max = max(p.Max, p.Base)
	if p.Multiplier == 0 {
		p.Multiplier = d.Multiplier
	}
	p.Multiplier = max(p.Multiplier, 1)
	p.Jitter = min(max(p.Jitter, 0), 1)
	p.MaxAttempts = max(p.MaxAttempts, 0)
	return p
}

// wait returns the backoff before retry n (n >= 1); r is uniform in [0, 1).
func (p RetryPolicy) wait(n int, r float64) time.Duration {
	d := float64(p.Base) * math.Pow(p.Multiplier, float64(n-1))
	d = min(d, float64(p.Max))
	d *= 1 + p.Jitter*(2*r-1)
	return time.Duration(d)
}

// retrier is the one retry loop of the package: every query of a Session
// (Fetch's chunks, Complete's tail rounds, StreamResume) is retried by it,
// with the waits of its RetryPolicy, the server's Retry-After, and the
// session's Clock, Sleep and Rand seams.
type retrier struct {
	policy RetryPolicy // with its defaults
	clock  func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
	rand   func() float64
	// hooks serialises rand and onRetry, which worker goroutines share.
	hooks *sync.Mutex
	// onRetry is told of each retry before its wait (under hooks).
	onRetry func(url string, err error, attempt int, wait time.Duration)
}

// run calls try for attempt 1, 2, ... until it succeeds or must stop. try
// returns the URL it queried, its error, and whether that error may be
// retried (false for a success, and for an error try handled or that is
// final: not retryable, the sink's, ctx ended). Before the next attempt,
// run waits min(Max, Base × Multiplier^(n-1)) × (1 ± Jitter) after
// attempt n, at least the error's Retry-After and at most until deadline
// (zero: none), tells onRetry, and sleeps through the seam.
//
// It returns try's last error, and exhausted = true when it stopped
// retrying a retryable error: MaxAttempts reached, deadline passed, or the
// sleep failed (err is then the sleep's error, usually ctx's).
func (r *retrier) run(ctx context.Context, deadline time.Time, try func(attempt int) (url string, err error, retry bool)) (err error, exhausted bool) {
	for attempt := 1; ; attempt++ {
		u, err, again := try(attempt)
		if !again {
			return err, false
		}
		if r.policy.MaxAttempts > 0 && attempt >= r.policy.MaxAttempts {
			return err, true
		}
		r.hooks.Lock()
		jitter := r.rand()
		r.hooks.Unlock()
		wait := max(r.policy.wait(attempt, jitter), retryAfterOf(err))
		if !deadline.IsZero() {
			remaining := deadline.Sub(r.clock())
			if remaining <= 0 {
				return err, true
			}
			wait = min(wait, remaining)
		}
		if r.onRetry != nil {
			r.hooks.Lock()
			r.onRetry(u, err, attempt, wait)
			r.hooks.Unlock()
		}
		if serr := r.sleep(ctx, wait); serr != nil {
			return serr, true
		}
	}
}

// Retry calls f with the retries of p, through the loop every query of a
// Session goes through, for the other calls of a Client (ClusterMetrics,
// the Reference API lists): it stops when f succeeds, fails with an error
// that is not retryable (IsRetryable), has used p.MaxAttempts, or when ctx
// ends, and waits between attempts p's backoff with its jitter, at least
// the error's Retry-After. It returns f's last error, also when ctx ends
// during a wait. sleep is the test seam, as SessionOptions.Sleep (nil: a
// context-aware sleep).
func Retry(ctx context.Context, p RetryPolicy, sleep func(ctx context.Context, d time.Duration) error, f func(ctx context.Context) error) error {
	if sleep == nil {
		sleep = sleepCtx
	}
	r := &retrier{policy: p.withDefaults(), clock: time.Now, sleep: sleep, rand: rand.Float64, hooks: &sync.Mutex{}}
	var last error
	err, exhausted := r.run(ctx, time.Time{}, func(int) (string, error, bool) {
		last = f(ctx)
		return "", last, last != nil && IsRetryable(last) && ctx.Err() == nil
	})
	if exhausted {
		return last
	}
	return err
}

// sleepCtx is the default Sleep: it waits d unless ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
