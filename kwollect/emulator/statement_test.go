package emulator

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// recordSleeps replaces e.sleep by a recorder that returns at once.
func recordSleeps(e *Emulator) func() []time.Duration {
	var mu sync.Mutex
	var slept []time.Duration
	e.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		slept = append(slept, d)
		return ctx.Err()
	}
	return func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Duration(nil), slept...)
	}
}

func TestStatementTimeout(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		// fail: the 10-row query is refused; byTime: by the time form.
		fail, byTime bool
		// wait: the sleep before the error; waitUpTo: a sleep in
		// (0, waitUpTo] (the timeout minus the work already done).
		wait, waitUpTo time.Duration
	}{
		{name: "10 rows in 1 s at 10 rows/s", cfg: Config{StatementTimeout: time.Second, StatementRowsPerSecond: 10}},
		{name: "at 9 rows/s", cfg: Config{StatementTimeout: time.Second, StatementRowsPerSecond: 9},
			fail: true, byTime: true, waitUpTo: time.Second},
		{name: "default rate", cfg: Config{StatementTimeout: 10 * time.Microsecond}},
		{name: "default rate, 9 µs", cfg: Config{StatementTimeout: 9 * time.Microsecond},
			fail: true, byTime: true, waitUpTo: 9 * time.Microsecond},
		{name: "below one row", cfg: Config{StatementTimeout: time.Nanosecond},
			fail: true, byTime: true, waitUpTo: time.Nanosecond},
		{name: "fail fast", cfg: Config{StatementTimeout: time.Second, StatementRowsPerSecond: 9, StatementFailFast: true},
			fail: true, byTime: true},
		{name: "fail fast after StatementDelay", cfg: Config{StatementTimeout: time.Second, StatementRowsPerSecond: 9,
			StatementFailFast: true, StatementDelay: 3 * time.Second}, fail: true, byTime: true, wait: 3 * time.Second},
		{name: "RowLimit is smaller", cfg: Config{StatementTimeout: time.Second, StatementRowsPerSecond: 9,
			RowLimit: 5, StatementDelay: 2 * time.Second}, fail: true, wait: 2 * time.Second},
		{name: "RowLimit ties", cfg: Config{StatementTimeout: time.Second, StatementRowsPerSecond: 9, RowLimit: 9},
			fail: true},
		{name: "timeout is smaller", cfg: Config{StatementTimeout: time.Second, StatementRowsPerSecond: 9,
			RowLimit: 20, StatementDelay: 2 * time.Second}, fail: true, byTime: true, waitUpTo: time.Second},
		{name: "RowLimit passes, timeout passes", cfg: Config{StatementTimeout: time.Second, StatementRowsPerSecond: 100,
			RowLimit: 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Seed = 1
			e, _ := newEmu(t, cfg, winterNow)
			slept := recordSleeps(e)
			res := get(t, e, tenRows)
			st := e.Stats()
			if !tc.fail {
				require.Equal(t, http.StatusOK, res.status)
				require.Len(t, decodeRows(t, res.body), 10)
				require.Empty(t, slept())
				require.Zero(t, st.StatementTimeouts+st.RowLimitErrors)
				require.Equal(t, int64(10), st.RowsServed)
				return
			}
			require.Equal(t, http.StatusInternalServerError, res.status)
			require.Equal(t, "application/json", res.header.Get("Content-Type"))
			require.Equal(t, tooMuchData, res.body)
			require.Zero(t, st.RowsServed)
			require.Equal(t, map[int]int64{500: 1}, st.ByStatus)
			if tc.byTime {
				require.Equal(t, int64(1), st.StatementTimeouts)
				require.Zero(t, st.RowLimitErrors)
			} else {
				require.Equal(t, int64(1), st.RowLimitErrors)
				require.Zero(t, st.StatementTimeouts)
			}
			got := slept()
			switch {
			case tc.waitUpTo > 0:
				// The work done so far counts against the timeout: the
				// sleep is the rest (none if the count already took it).
				require.LessOrEqual(t, len(got), 1)
				if len(got) == 1 {
					require.Greater(t, got[0], time.Duration(0))
					require.LessOrEqual(t, got[0], tc.waitUpTo)
					if tc.waitUpTo >= time.Second {
						require.Greater(t, got[0], tc.waitUpTo-500*time.Millisecond)
					}
				}
			case tc.wait > 0:
				require.Equal(t, []time.Duration{tc.wait}, got)
			default:
				require.Empty(t, got)
			}
		})
	}
}

// TestStatementTimeoutHugeQuery: a day of 100 Hz frames (8.64 M rows) is
// refused after counting timeout × rate + 1 rows, not the whole result.
func TestStatementTimeoutHugeQuery(t *testing.T) {
	e, _ := newEmu(t, Config{Seed: 1, StatementTimeout: 100 * time.Millisecond, Monitored: []string{"gemini-1"}}, winterNow)
	slept := recordSleeps(e)
	a := winterNow.Add(-24 * time.Hour)
	start := time.Now()
	res := get(t, e, "/stable/sites/lyon/metrics?"+vals("nodes", "gemini-1", "metrics", wpw, "start_time", epoch(a), "end_time", epoch(winterNow)).Encode())
	require.Equal(t, http.StatusInternalServerError, res.status)
	require.Equal(t, tooMuchData, res.body)
	require.Less(t, time.Since(start), 5*time.Second, "100 001 rows counted, not 8.64 M")
	require.Equal(t, int64(1), e.Stats().StatementTimeouts)
	for _, d := range slept() {
		require.LessOrEqual(t, d, 100*time.Millisecond)
	}
	// POSTs are not limited.
	post := do(t, e, "POST", "/stable/sites/lyon/metrics", `[{"metric_id":"m","value":1},{"metric_id":"m"}]`, nil)
	require.Equal(t, http.StatusOK, post.status)
}

// TestStatementTimeoutRealWait: the refusal costs the client the timeout,
// measured from the request's arrival, over a real connection.
func TestStatementTimeoutRealWait(t *testing.T) {
	const timeout = 300 * time.Millisecond
	e, _ := newEmu(t, Config{Seed: 1, StatementTimeout: timeout, StatementRowsPerSecond: 10}, winterNow)
	srv := serve(t, e)
	c := freshClient()
	for _, tc := range []struct {
		target string
		status int
	}{
		{nRows(3), http.StatusOK},
		{nRows(4), http.StatusInternalServerError},
	} {
		start := time.Now()
		res, body, err := fetch(t, c, srv.URL+tc.target)
		elapsed := time.Since(start)
		require.NoError(t, err)
		require.Equal(t, tc.status, res.StatusCode, body)
		if tc.status == http.StatusOK {
			require.Less(t, elapsed, timeout)
			continue
		}
		require.Equal(t, tooMuchData, body)
		require.GreaterOrEqual(t, elapsed, timeout)
		require.Less(t, elapsed, timeout+2*time.Second)
	}
	st := e.Stats()
	require.Equal(t, int64(1), st.StatementTimeouts)
	require.Equal(t, map[int]int64{200: 1, 500: 1}, st.ByStatus)
}

func TestStatementTimeoutConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{StatementTimeout: -time.Second},
		{StatementRowsPerSecond: -1},
		{StatementRowsPerSecond: math.NaN()},
		{StatementRowsPerSecond: math.Inf(1)},
	} {
		_, err := New(cfg)
		require.Error(t, err, "%+v", cfg)
	}
	e, err := New(Config{StatementTimeout: time.Second})
	require.NoError(t, err)
	defer e.Close()
	require.Equal(t, float64(DefaultStatementRowsPerSecond), e.cfg.StatementRowsPerSecond)
}

// TestStatementWork: with StatementWork, a valid GET waits rows / rate
// (minus the count) before its first byte; a refused one only the
// refusal's wait; without it, none.
func TestStatementWork(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		// fail: refused; sleeps: how many sleeps; upTo: bound of the one.
		fail   bool
		sleeps int
		upTo   time.Duration
	}{
		{name: "off", cfg: Config{StatementRowsPerSecond: 10}},
		{name: "10 rows at 10 rows/s", cfg: Config{StatementWork: true, StatementRowsPerSecond: 10}, sleeps: 1, upTo: time.Second},
		{name: "10 rows at 5 rows/s", cfg: Config{StatementWork: true, StatementRowsPerSecond: 5}, sleeps: 1, upTo: 2 * time.Second},
		{name: "with a timeout that passes", cfg: Config{StatementWork: true, StatementRowsPerSecond: 10, StatementTimeout: 2 * time.Second},
			sleeps: 1, upTo: time.Second},
		{name: "refused: the refusal's wait only", cfg: Config{StatementWork: true, StatementRowsPerSecond: 9, StatementTimeout: time.Second,
			StatementFailFast: true, StatementDelay: 3 * time.Second}, fail: true, sleeps: 1, upTo: 3 * time.Second},
		{name: "row limit refusal", cfg: Config{StatementWork: true, StatementRowsPerSecond: 10, RowLimit: 5}, fail: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Seed = 1
			e, _ := newEmu(t, cfg, winterNow)
			slept := recordSleeps(e)
			res := get(t, e, tenRows)
			if tc.fail {
				require.Equal(t, http.StatusInternalServerError, res.status)
				require.Equal(t, tooMuchData, res.body)
			} else {
				require.Equal(t, http.StatusOK, res.status)
				require.Len(t, decodeRows(t, res.body), 10)
			}
			got := slept()
			require.Len(t, got, tc.sleeps)
			for _, d := range got {
				require.Greater(t, d, time.Duration(0))
				require.LessOrEqual(t, d, tc.upTo)
				// The count of 10 rows takes far less than half a second.
				require.Greater(t, d, tc.upTo/2)
			}
		})
	}
}

// TestMaxInFlight: metrics GETs held by the server's work at the same
// time are counted in InFlight and MaxInFlight; the gauge returns to 0.
func TestMaxInFlight(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			e, _ := newEmu(t, Config{Seed: 1, StatementWork: true, StatementRowsPerSecond: 1}, winterNow)
			// Every GET's work waits until n of them are in it.
			var mu sync.Mutex
			arrived := 0
			all := make(chan struct{})
			e.sleep = func(ctx context.Context, d time.Duration) error {
				mu.Lock()
				arrived++
				if arrived == n {
					close(all)
				}
				mu.Unlock()
				select {
				case <-all:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			srv := serve(t, e)
			c := freshClient()
			var wg sync.WaitGroup
			codes := make([]int, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					resp, err := c.Get(srv.URL + tenRows)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					codes[i] = resp.StatusCode
				}()
			}
			wg.Wait()
			for _, code := range codes {
				require.Equal(t, http.StatusOK, code)
			}
			// The handler's last update may follow the client's EOF.
			require.Eventually(t, func() bool { return e.Flight().InFlight == 0 }, 10*time.Second, time.Millisecond)
			require.Equal(t, int64(n), e.Flight().MaxInFlight)
			require.Equal(t, int64(n), e.Stats().MetricsGET)
		})
	}
}
