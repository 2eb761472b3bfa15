package kwollect

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestStreamResume: a body cut in the middle, then a 503 with
// Retry-After, then a body whose rows of equal timestamps come in another
// order: every row reaches fn exactly once, the waits come from the
// session's policy and seams (Retry-After honoured); a failing fn is not
// retried; a permanent error is not retried; MaxAttempts ends the retries
// with the last error.
func TestStreamResume(t *testing.T) {
	row := func(sec int, dev string, v float64) string {
		return fmt.Sprintf(`{"timestamp":"2025-07-22T13:05:%02d+02:00","device_id":%q,"metric_id":"wattmetre_power_watt","value":%g,"labels":{}}`, sec, dev, v)
	}
	first := []string{row(1, "a", 1), row(1, "b", 2), row(2, "a", 3), row(2, "b", 4), row(2, "c", 5), row(3, "a", 6)}
	// The same rows, the ties at :02 in another order.
	again := []string{row(1, "a", 1), row(1, "b", 2), row(2, "c", 5), row(2, "b", 4), row(2, "a", 3), row(3, "a", 6)}
	var attempts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch attempts.Add(1) {
		case 1: // 4 rows (up to b at :02), then the connection drops
			w.Header().Set("Content-Type", "application/json")
			body := "[" + strings.Join(first[:4], ",") + ","
			w.Header().Set("Content-Length", fmt.Sprint(len(body)+100))
			_, _ = w.Write([]byte(body))
			w.(http.Flusher).Flush()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		case 2:
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte("[" + strings.Join(again, ",") + "]"))
		}
	}))
	defer srv.Close()
	clock := &fakeClock{now: time.Unix(1753189000, 0)}
	session := func(t *testing.T, base string, o SessionOptions) *Session {
		c, err := NewClient(Options{BaseURL: base + "/stable"})
		require.NoError(t, err)
		o.Clock, o.Sleep, o.Rand = clock.Now, clock.Sleep, func() float64 { return 0.5 }
		s, err := c.NewSession(Plan{JobSite: "lyon", JobID: 777, Metrics: []string{"wattmetre_power_watt"}}, o)
		require.NoError(t, err)
		return s
	}
	q := Query{Site: "lyon", Metrics: []string{"wattmetre_power_watt"}, JobID: 777}
	var got, urls []string
	var retries []int
	s := session(t, srv.URL, SessionOptions{
		Retry:   RetryPolicy{Base: 250 * time.Millisecond, Max: 10 * time.Second, Multiplier: 2, Jitter: 0.5, MaxAttempts: 5},
		OnQuery: func(u string) { urls = append(urls, u) },
		OnRetry: func(_ string, err error, attempt int, wait time.Duration) { retries = append(retries, attempt) },
	})
	n, err := s.StreamResume(context.Background(), q, func(r *Row) error {
		got = append(got, fmt.Sprintf("%s %s %g", r.Timestamp.UTC().Format("05"), r.DeviceID, r.Value))
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 6, n)
	require.Equal(t, []int{1, 2}, retries)
	require.Equal(t, []string{"01 a 1", "01 b 2", "02 a 3", "02 b 4", "02 c 5", "03 a 6"}, got, "each row once")
	require.Equal(t, []time.Duration{250 * time.Millisecond, 3 * time.Second}, clock.Sleeps(), "the policy's wait, then Retry-After 3s")
	require.Len(t, urls, 3)
	require.Equal(t, srv.URL+"/stable/sites/lyon/metrics?metrics=wattmetre_power_watt&job_id=777", urls[0], "no time bounds: the job's window")

	// A failing fn stops at once.
	attempts.Store(2)
	boom := errors.New("disk full")
	_, err = s.StreamResume(context.Background(), q, func(*Row) error { return boom })
	require.ErrorIs(t, err, boom)
	require.Equal(t, int32(3), attempts.Load(), "not retried")

	// A permanent error (401) is not retried.
	deny := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer deny.Close()
	attempts.Store(0)
	_, err = session(t, deny.URL, SessionOptions{}).StreamResume(context.Background(), q, func(*Row) error { return nil })
	require.Equal(t, 401, StatusOf(err))
	require.Equal(t, int32(1), attempts.Load())

	// A server that keeps failing: MaxAttempts queries, then the last error.
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer down.Close()
	attempts.Store(0)
	before := len(clock.Sleeps())
	_, err = session(t, down.URL, SessionOptions{Retry: RetryPolicy{Base: time.Second, MaxAttempts: 3}}).StreamResume(context.Background(), q, func(*Row) error { return nil })
	require.Equal(t, 502, StatusOf(err))
	require.True(t, IsRetryable(err))
	require.Equal(t, int32(3), attempts.Load())
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second}, clock.Sleeps()[before:])
}
