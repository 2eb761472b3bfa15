package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/redact"
	"github.com/alumet-go/alumet-agent/internal/testkit"
	"github.com/alumet-go/alumet-agent/pipeline"
)

func newLogger() (*slog.Logger, *testkit.LockedBuffer) {
	sb := &testkit.LockedBuffer{}
	return slog.New(slog.NewTextHandler(sb, &slog.HandlerOptions{Level: slog.LevelDebug})), sb
}

// server is an httptest server answering with the statuses of script in
// turn (then 204), recording the bodies it got.
type server struct {
	mu     sync.Mutex
	script []func(w http.ResponseWriter)
	bodies []string
	srv    *httptest.Server
}

func newServer(t *testing.T, script ...func(w http.ResponseWriter)) *server {
	s := &server{script: script}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, string(b))
		var f func(http.ResponseWriter)
		if len(s.script) > 0 {
			f, s.script = s.script[0], s.script[1:]
		}
		s.mu.Unlock()
		if f == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		f(w)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *server) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...)
}

func status(code int, body string, hdr ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

// sleeps records the delays asked for, without waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

func appendRecords(t *testing.T, q *Queue, from, to int) {
	t.Helper()
	require.NoError(t, q.Append(to-from, func(a *Appender) {
		for i := from; i < to; i++ {
			a.Buf = strconv.AppendInt(a.Buf, int64(i), 10)
			a.Buf = append(a.Buf, '\n')
			a.End()
		}
	}))
}

func records(from, to int) string {
	var sb strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&sb, "%d\n", i)
	}
	return sb.String()
}

func TestQueueDelivery(t *testing.T) {
	type want struct {
		bodies []string
		sleeps []time.Duration
		stats  Stats
		logs   []string // substrings of the log
		lost   bool
	}
	for _, tc := range []struct {
		name   string
		script []func(http.ResponseWriter)
		want   want
	}{
		{
			name: "batches of 5 and the rest at Close",
			want: want{bodies: []string{records(0, 5), records(5, 10), records(10, 12)},
				stats: Stats{Appended: 12, Sent: 12, Requests: 3}},
		},
		{
			name:   "503 with Retry-After in seconds, then accepted",
			script: []func(http.ResponseWriter){status(503, "busy", "Retry-After", "7")},
			want: want{bodies: []string{records(0, 5), records(0, 5), records(5, 10), records(10, 12)},
				sleeps: []time.Duration{7 * time.Second},
				stats:  Stats{Appended: 12, Sent: 12, Requests: 4, Retries: 1},
				logs:   []string{"retrying in 7s: HTTP 503 Service Unavailable: busy"}},
		},
		{
			name: "429 and 500 retried with a doubling backoff (jitter 0.5)",
			script: []func(http.ResponseWriter){status(429, "slow down"), status(500, "oops"),
				status(502, "")},
			want: want{bodies: []string{records(0, 5), records(0, 5), records(0, 5), records(0, 5), records(5, 10), records(10, 12)},
				sleeps: []time.Duration{75 * time.Millisecond, 150 * time.Millisecond, 300 * time.Millisecond},
				stats:  Stats{Appended: 12, Sent: 12, Requests: 6, Retries: 3}},
		},
		{
			name:   "400 not retried, the server's message logged with its credentials masked",
			script: []func(http.ResponseWriter){status(400, `{"error":"bad line; Authorization: Token s3cr3t-token-1234"}`)},
			want: want{bodies: []string{records(0, 5), records(5, 10), records(10, 12)},
				stats: Stats{Appended: 12, Sent: 7, Rejected: 5, Requests: 3},
				logs:  []string{"refused 5 points, they are lost (not retried): HTTP 400 Bad Request", "Authorization: Token xxxxx"},
				lost:  true},
		},
		{
			name:   "401 fails the output: later points abandoned",
			script: []func(http.ResponseWriter){status(401, "unauthorized")},
			want: want{bodies: []string{records(0, 5)},
				stats: Stats{Appended: 12, Rejected: 5, Abandoned: 7, Requests: 1},
				logs:  []string{"HTTP 401 Unauthorized: unauthorized"},
				lost:  true},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, tc.script...)
			log, logs := newLogger()
			sl := &sleeps{}
			client := NewHTTPClient(5 * time.Second)
			var reported []error
			var rmu sync.Mutex
			q, err := New(Options{
				Name: "test", Target: srv.srv.URL, Logger: log,
				Send: func(ctx context.Context, body []byte, _ int) error {
					return Post(ctx, client, srv.srv.URL, nil, body)
				},
				BatchPoints: 5, FlushInterval: time.Hour, InitialBackoff: 100 * time.Millisecond,
				Sleep: sl.sleep, Jitter: func() float64 { return 0.5 },
			})
			require.NoError(t, err)
			q.ReportFailuresTo(func(err error) { rmu.Lock(); reported = append(reported, err); rmu.Unlock() })
			appendRecords(t, q, 0, 5)
			// Wait for the first batch to be settled before the rest,
			// so that the script applies to it alone.
			require.Eventually(t, func() bool {
				s := q.Stats()
				return s.Sent+s.Rejected >= 5 && (tc.want.stats.Abandoned == 0 || q.Err() != nil)
			}, 5*time.Second, time.Millisecond)
			err = q.Append(5, func(a *Appender) {
				for i := 5; i < 10; i++ {
					a.Buf = append(strconv.AppendInt(a.Buf, int64(i), 10), '\n')
					a.End()
				}
			})
			if tc.want.stats.Abandoned > 0 {
				var le pipeline.LossError
				require.ErrorAs(t, err, &le)
				_ = q.Append(2, func(*Appender) { t.Fatal("fill called after a fatal error") })
				// Appended counts only what was filled.
				tc.want.stats.Appended = 5
			} else {
				require.NoError(t, err)
				appendRecords(t, q, 10, 12)
			}
			cerr := q.Close()
			require.Empty(t, cmp.Diff(tc.want.bodies, srv.got()))
			require.Empty(t, cmp.Diff(tc.want.sleeps, sl.all()))
			require.Equal(t, tc.want.stats, q.Stats())
			for _, s := range tc.want.logs {
				require.Contains(t, logs.String(), s)
			}
			require.NotContains(t, logs.String(), "s3cr3t")
			if tc.want.lost {
				var le *LossError
				require.ErrorAs(t, cerr, &le)
				require.Equal(t, tc.want.stats.Lost(), le.LostPoints())
			} else {
				require.NoError(t, cerr)
			}
			rmu.Lock()
			defer rmu.Unlock()
			if tc.want.stats.Abandoned > 0 {
				require.Len(t, reported, 1)
				require.Contains(t, reported[0].Error(), "HTTP 401")
			} else {
				require.Empty(t, reported)
			}
		})
	}
}

// A server that does not answer never holds Append back: the waiting
// batches beyond the bound are dropped, oldest first, with an ERROR that
// counts them, and Close gives up at its deadline.
func TestQueueOverflowAndCloseDeadline(t *testing.T) {
	release := make(chan struct{})
	var sent sync.Map
	log, logs := newLogger()
	q, err := New(Options{
		Name: "test", Target: "http://127.0.0.1:1/write", Logger: log,
		Send: func(ctx context.Context, body []byte, _ int) error {
			sent.Store(string(body), true)
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
		BatchPoints: 10, BufferBytes: 100, FlushInterval: time.Hour, CloseTimeout: 50 * time.Millisecond,
	})
	require.NoError(t, err)
	start := time.Now()
	for i := 0; i < 1000; i += 10 {
		appendRecords(t, q, i, i+10)
	}
	require.Less(t, time.Since(start), time.Second, "Append waited for the server")
	err = q.Close()
	var le *LossError
	require.ErrorAs(t, err, &le)
	s := q.Stats()
	require.Equal(t, int64(1000), s.Appended)
	require.Zero(t, s.Sent)
	require.Equal(t, int64(1000), s.Lost())
	require.Positive(t, s.Dropped)
	require.Positive(t, s.Abandoned)
	require.Contains(t, logs.String(), "the buffer is full (100 bytes of points waiting for http://127.0.0.1:1/write)")
	require.Contains(t, logs.String(), "not delivered to http://127.0.0.1:1/write within close_timeout")
	require.Contains(t, err.Error(), "1 000 points not delivered")
	require.Contains(t, err.Error(), "dropped because the buffer was full")
	close(release)
}

// A network error (nothing listening) is retried until Close's deadline.
func TestQueueNetworkErrorRetried(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	client := NewHTTPClient(time.Second)
	var attempts sync.WaitGroup
	attempts.Add(3)
	var n int
	var mu sync.Mutex
	q, err := New(Options{
		Name: "test", Target: url,
		Send: func(ctx context.Context, body []byte, _ int) error {
			err := Post(ctx, client, url, nil, body)
			mu.Lock()
			n++
			if n <= 3 {
				attempts.Done()
			}
			mu.Unlock()
			return err
		},
		InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, CloseTimeout: 100 * time.Millisecond,
	})
	require.NoError(t, err)
	appendRecords(t, q, 0, 3)
	q.mu.Lock()
	q.sealLocked()
	q.mu.Unlock()
	attempts.Wait()
	err = q.Close()
	var le *LossError
	require.ErrorAs(t, err, &le)
	require.Equal(t, int64(3), le.Stats.Abandoned)
	require.GreaterOrEqual(t, q.Stats().Retries, int64(3))
}

// The flush interval seals a batch that is not full.
func TestQueueFlushInterval(t *testing.T) {
	srv := newServer(t)
	client := NewHTTPClient(time.Second)
	q, err := New(Options{
		Send:          func(ctx context.Context, body []byte, _ int) error { return Post(ctx, client, srv.srv.URL, nil, body) },
		FlushInterval: 20 * time.Millisecond,
	})
	require.NoError(t, err)
	appendRecords(t, q, 0, 3)
	require.Eventually(t, func() bool { return q.Stats().Sent == 3 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, q.Close())
	require.Equal(t, []string{records(0, 3)}, srv.got())
	require.Error(t, q.Append(1, func(*Appender) {}), "append after close")
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err   error
		class Class
		after time.Duration
	}{
		{nil, Delivered, 0},
		{&StatusError{Status: 500}, Retry, 0},
		{&StatusError{Status: 503, RetryAfter: time.Second}, Retry, time.Second},
		{&StatusError{Status: 429, RetryAfter: 3 * time.Second}, Retry, 3 * time.Second},
		{&StatusError{Status: 408}, Retry, 0},
		{&StatusError{Status: 400}, Refused, 0},
		{&StatusError{Status: 413}, Refused, 0},
		{&StatusError{Status: 401}, Fatal, 0},
		{&StatusError{Status: 403}, Fatal, 0},
		{&StatusError{Status: 404}, Fatal, 0},
		{fmt.Errorf("wrapped: %w", &StatusError{Status: 404}), Fatal, 0},
		{&StatusError{Status: 415}, Fatal, 0},
		{&PermanentError{Err: errors.New("bad")}, Refused, 0},
		{errors.New("connection refused"), Retry, 0},
	} {
		c, d := Classify(tc.err)
		require.Equal(t, tc.class, c, "%v", tc.err)
		require.Equal(t, tc.after, d, "%v", tc.err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 24, 21, 39, 17, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-3", 0},
		{"7", 7 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"99999999", MaxRetryAfter},
		{"Tue, 24 Nov 2026 21:39:47 GMT", 30 * time.Second},
		{"Tue, 24 Nov 2026 21:00:00 GMT", 0},
		{"Wed, 25 Nov 2026 21:39:17 GMT", MaxRetryAfter},
		{"soon", 0},
	} {
		require.Equal(t, tc.want, ParseRetryAfter(tc.in, now), tc.in)
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"7", "Tue, 24 Nov 2026 21:39:47 GMT", "", "-1", "1e9"} {
		f.Add(s)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, s string) {
		d := ParseRetryAfter(s, now)
		if d < 0 || d > MaxRetryAfter {
			t.Fatalf("ParseRetryAfter(%q) = %s", s, d)
		}
	})
}

func TestCheckResponseBoundsTheMessage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		_, _ = io.WriteString(w, strings.Repeat("é", 5000))
	}))
	defer srv.Close()
	err := Post(context.Background(), NewHTTPClient(time.Second), srv.URL, nil, []byte("x"))
	var se *StatusError
	require.ErrorAs(t, err, &se)
	require.LessOrEqual(t, len(se.Message), maxMessage+len("…"))
	require.True(t, strings.HasSuffix(se.Message, "…"))
}

func TestRedactedURL(t *testing.T) {
	redact.Register("hunter2-long")
	for in, want := range map[string]string{
		"http://127.0.0.1:8086/write?db=alumet&u=bob&p=hunter2-long": "http://127.0.0.1:8086/write?db=alumet&p=xxxxx&u=bob",
		"https://bob:pw@influx.example/api/v2/write?org=o":           "https://bob:xxxxx@influx.example/api/v2/write?org=o",
		"http://h/x": "http://h/x",
	} {
		require.Equal(t, want, RedactedURL(in))
	}
}

// TLS is verified: a self-signed server is refused, and not retried into
// success.
func TestHTTPClientVerifiesTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer srv.Close()
	err := Post(context.Background(), NewHTTPClient(time.Second), srv.URL, nil, []byte("x"))
	require.Error(t, err)
	require.Contains(t, err.Error(), "certificate")
}

// With Wait, a slow server that accepts sets the pace: nothing is dropped.
// A failing one is dropped from as without Wait.
func TestQueueWait(t *testing.T) {
	for _, tc := range []struct {
		name    string
		n       int
		fail    bool
		dropped bool
	}{
		{"slow server: Append waits, nothing dropped", 300, false, false},
		// Close seals a last partial batch while the buffer is full: it
		// must wait its turn, not push the oldest waiting batch out.
		{"slow server, a partial batch at Close: nothing dropped", 305, false, false},
		{"failing server: the buffer drops", 300, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []string
			q, err := New(Options{
				Name: "test", Target: "x",
				Send: func(ctx context.Context, body []byte, _ int) error {
					time.Sleep(2 * time.Millisecond)
					if tc.fail {
						return &StatusError{Status: 503}
					}
					mu.Lock()
					got = append(got, string(body))
					mu.Unlock()
					return nil
				},
				BatchPoints: 10, BufferBytes: 100, FlushInterval: time.Hour, Wait: true,
				InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond, CloseTimeout: 200 * time.Millisecond,
			})
			require.NoError(t, err)
			for i := 0; i < tc.n; i += 10 {
				appendRecords(t, q, i, min(i+10, tc.n))
			}
			err = q.Close()
			s := q.Stats()
			if !tc.dropped {
				require.NoError(t, err)
				require.Equal(t, int64(tc.n), s.Sent)
				require.Equal(t, records(0, tc.n), strings.Join(got, ""))
				return
			}
			require.Error(t, err)
			require.Positive(t, s.Dropped)
			require.Equal(t, int64(tc.n), s.Lost())
		})
	}
}

// With Wait, a fatal refusal while Append waits for room releases it.
func TestQueueWaitFatal(t *testing.T) {
	q, err := New(Options{
		Name: "test", Target: "x",
		Send: func(ctx context.Context, body []byte, _ int) error {
			time.Sleep(5 * time.Millisecond)
			return &StatusError{Status: 401}
		},
		BatchPoints: 10, BufferBytes: 100, FlushInterval: time.Hour, Wait: true, CloseTimeout: time.Second,
	})
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 300; i += 10 {
			_ = q.Append(10, func(a *Appender) {
				for j := i; j < i+10; j++ {
					a.Buf = append(strconv.AppendInt(a.Buf, int64(j), 10), '\n')
					a.End()
				}
			})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Append still waits after the fatal refusal")
	}
	var le *LossError
	require.ErrorAs(t, q.Close(), &le)
	require.Equal(t, int64(300), le.LostPoints())
}

// TestAppenderSize: an output that compresses as it appends gives the
// uncompressed size in Appender.Size, and End seals at BatchBytes of it
// as of the buffer's length.
func TestAppenderSize(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int64 // Size added per record (0: not set)
		want []int // points per request
	}{
		{"Size not set: the buffer's length", 0, []int{10, 10}},        // 3-byte records, 30 bytes
		{"Size past BatchBytes first", 10, []int{3, 3, 3, 3, 3, 3, 2}}, // 10 per record
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []int
			q, err := New(Options{
				Send: func(_ context.Context, _ []byte, points int) error {
					mu.Lock()
					got = append(got, points)
					mu.Unlock()
					return nil
				},
				BatchPoints: 100, BatchBytes: 30, FlushInterval: time.Hour,
			})
			require.NoError(t, err)
			require.NoError(t, q.Append(20, func(a *Appender) {
				for range 20 {
					a.Buf = append(a.Buf, "ab\n"...)
					if tc.size > 0 {
						a.Size += tc.size
					}
					a.End()
				}
			}))
			require.NoError(t, q.Close())
			mu.Lock()
			defer mu.Unlock()
			require.Equal(t, tc.want, got)
		})
	}
}

// A server that answers before reading the body: net/http may still be
// sending it when Do returns; Post returns only once it is done with the
// buffer, which the sender then rewrites (go test -race checks).
func TestPostBodyReuse(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	defer ts.Close()
	body := make([]byte, 8<<20)
	for i := 0; i < 5; i++ {
		err := Post(context.Background(), ts.Client(), ts.URL, nil, body)
		var se *StatusError
		require.True(t, errors.As(err, &se), "%v", err)
		require.Equal(t, 503, se.Status)
		for j := range body {
			body[j] = byte(i)
		}
	}
}
