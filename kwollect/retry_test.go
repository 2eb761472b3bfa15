package kwollect

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// TestRetry: the exported loop stops at success, at an error that is not
// retryable, at MaxAttempts and when ctx ends during a wait (with f's last
// error), and waits the policy's backoff or the Retry-After, through the
// sleep seam.
func TestRetry(t *testing.T) {
	unavailable := &GatewayError{Status: 503}
	slowDown := &GatewayError{Status: 503, RetryAfter: 3 * time.Second}
	denied := &GatewayError{Status: 401}
	policy := RetryPolicy{Base: 250 * time.Millisecond, Max: 500 * time.Millisecond, Multiplier: 2, MaxAttempts: 3}
	tests := []struct {
		name      string
		errs      []error // f's results, in order (then nil)
		cancelAt  int     // cancel ctx during the wait after this attempt (0: never)
		want      error
		calls     int
		wantSleep []time.Duration
	}{
		{name: "success", calls: 1},
		{name: "two transient failures", errs: []error{unavailable, unavailable}, calls: 3,
			wantSleep: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond}},
		{name: "Retry-After", errs: []error{slowDown}, calls: 2, wantSleep: []time.Duration{3 * time.Second}},
		{name: "not retryable", errs: []error{denied}, want: denied, calls: 1},
		{name: "attempts used up", errs: []error{unavailable, unavailable, slowDown, unavailable}, want: slowDown, calls: 3,
			wantSleep: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond}},
		{name: "ctx ends during a wait", errs: []error{unavailable, slowDown}, cancelAt: 2, want: slowDown, calls: 2,
			wantSleep: []time.Duration{250 * time.Millisecond, 3 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			calls := 0
			var sleeps []time.Duration
			sleep := func(ctx context.Context, d time.Duration) error {
				sleeps = append(sleeps, d)
				if calls == tt.cancelAt {
					cancel()
				}
				return ctx.Err()
			}
			err := Retry(ctx, policy, sleep, func(context.Context) error {
				calls++
				if calls <= len(tt.errs) {
					return tt.errs[calls-1]
				}
				return nil
			})
			if tt.want == nil {
				require.NoError(t, err)
			} else {
				require.True(t, errors.Is(err, tt.want), "got %v, want %v", err, tt.want)
			}
			require.Equal(t, tt.calls, calls)
			require.Empty(t, cmp.Diff(tt.wantSleep, sleeps))
		})
	}
}
