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

// TestStreamResume: a body cut in the middle, then a 503, then a body whose
// rows of equal timestamps come in another order: every row reaches fn
// exactly once; a failing fn is not retried; a permanent error is not
// retried.
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
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte("[" + strings.Join(again, ",") + "]"))
		}
	}))
	defer srv.Close()
	c, err := NewClient(Options{BaseURL: srv.URL + "/stable"})
	require.NoError(t, err)
	q := Query{Site: "lyon", Metrics: []string{"wattmetre_power_watt"}, JobID: 777}
	fast := RetryPolicy{Base: time.Millisecond, Max: 2 * time.Millisecond, Multiplier: 2, MaxAttempts: 5}
	var got []string
	var retries []int
	n, err := c.StreamResume(context.Background(), q, fast, func(err error, attempt int, wait time.Duration) {
		retries = append(retries, attempt)
	}, func(r *Row) error {
		got = append(got, fmt.Sprintf("%s %s %g", r.Timestamp.UTC().Format("05"), r.DeviceID, r.Value))
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 6, n)
	require.Equal(t, []int{1, 2}, retries)
	require.Equal(t, []string{"01 a 1", "01 b 2", "02 a 3", "02 b 4", "02 c 5", "03 a 6"}, got, "each row once")

	// A failing fn stops at once.
	attempts.Store(2)
	boom := errors.New("disk full")
	_, err = c.StreamResume(context.Background(), q, fast, nil, func(*Row) error { return boom })
	require.ErrorIs(t, err, boom)
	require.Equal(t, int32(3), attempts.Load(), "not retried")

	// A permanent error (401) is not retried.
	deny := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer deny.Close()
	c2, err := NewClient(Options{BaseURL: deny.URL + "/stable"})
	require.NoError(t, err)
	attempts.Store(0)
	_, err = c2.StreamResume(context.Background(), q, fast, nil, func(*Row) error { return nil })
	require.Error(t, err)
	require.Equal(t, int32(1), attempts.Load())
}
