package kwollect

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const secret = "s3cr3t-Pa55"

func TestHTTPErrors(t *testing.T) {
	html502 := "<html>\r\n<head><title>502 Bad Gateway</title></head>\n<body>\t<center><h1>502 Bad Gateway</h1></center>" + strings.Repeat("x", 2000) + "</body></html>"
	tests := []struct {
		name     string
		status   int
		body     string
		header   map[string]string
		auth     bool
		api      bool // *APIError, else *GatewayError
		code     string
		retry    bool
		after    time.Duration
		contains []string
	}{
		{name: "401 without credentials", status: 401, body: "Unauthorized", header: map[string]string{"WWW-Authenticate": `Basic realm="Grid5000"`},
			contains: []string{"HTTP 401 Unauthorized", "no credentials were sent", "login and password", `password = "${G5K_PASSWORD}"`,
				"~/.netrc", "machine api.grid5000.fr", "from a Grid'5000 node or frontend no credentials are needed"}},
		{name: "401 with credentials", status: 401, body: "Unauthorized", auth: true,
			contains: []string{"HTTP 401", "rejected the credentials", `password = "${G5K_PASSWORD}"`, "machine api.grid5000.fr"}},
		{name: "403", status: 403, body: "Forbidden", contains: []string{"access denied"}},
		{name: "404 plain", status: 404, body: "Cannot find resource /sites/lyonn/metrics",
			contains: []string{"HTTP 404 Not Found", "wrong site", "bordeaux, grenoble, lille, louvain, luxembourg, lyon, nancy, nantes, rennes, sophia, strasbourg, toulouse",
				"wrong api_url", DefaultBaseURL, "Cannot find resource"}},
		{name: "missing nodes", status: 500, api: true, code: "XX000",
			body:     `{"hint":null,"details":null,"code":"XX000","message":"plpy.Error: Missing 'devices', 'nodes' or 'job_id' argument"}`,
			contains: []string{"HTTP 500", "Missing 'devices'", "code XX000", "no node was given", "hostname"}},
		{name: "bad time", status: 400, api: true, code: "22007",
			body:     `{"hint":null,"details":null,"code":"22007","message":"spiexceptions.InvalidDatetimeFormat: invalid input syntax for type timestamp with time zone: \"2024-10-03 08:00 01:00\""}`,
			contains: []string{"HTTP 400", "22007", "time bound"}},
		{name: "bad job id", status: 400, api: true, code: "22P02",
			body:     `{"hint":null,"details":null,"code":"22P02","message":"invalid input syntax for type integer: \"abc\""}`,
			contains: []string{"job_id must be an integer"}},
		{name: "too much data", status: 500, api: true, code: "XX000",
			body:     `{"hint":null,"details":null,"code":"XX000","message":"Exception: Request timeout, too much data to process."}`,
			contains: []string{"too much data", "split it into shorter windows"}},
		{name: "unknown job", status: 500, api: true, code: "XX000",
			body:     `{"hint":null,"details":null,"code":"XX000","message":"IndexError: list index out of range"}`,
			contains: []string{"unknown OAR job_id"}},
		{name: "postgrest transient", status: 503, api: true, code: "PGRST000", retry: true,
			body:     `{"hint":"check the database","details":"connection refused","code":"PGRST000","message":"Database connection error"}`,
			contains: []string{"details: connection refused", "hint: check the database", "retry later"}},
		{name: "other XX000 retried", status: 500, api: true, code: "XX000", retry: true,
			body:     `{"hint":null,"details":null,"code":"XX000","message":"plpy.SPIError: could not serialize access"}`,
			contains: []string{"unavailable or overloaded"}},
		{name: "502 html", status: 502, body: html502, retry: true,
			contains: []string{"HTTP 502 Bad Gateway", "Kwollect or the Grid'5000 API is unavailable or overloaded", "retry later", "https://www.grid5000.fr/status/",
				`<head><title>502 Bad Gateway</title></head> <body> <center>`}},
		{name: "503 retry-after", status: 503, body: "busy", header: map[string]string{"Retry-After": "7"}, retry: true, after: 7 * time.Second,
			contains: []string{"retry after 7s"}},
		{name: "504", status: 504, body: "", retry: true, contains: []string{"HTTP 504 Gateway Timeout from http://"}},
		{name: "429 retry-after", status: 429, body: "slow down", header: map[string]string{"Retry-After": "3"}, retry: true, after: 3 * time.Second,
			contains: []string{"rate limited: retry after 3s"}},
		{name: "429 huge retry-after capped", status: 429, header: map[string]string{"Retry-After": "86400"}, retry: true, after: 10 * time.Minute},
		{name: "400 plain", status: 400, body: "bad", contains: []string{"rejected"}},
		{name: "json without message is a gateway error", status: 500, body: `{"error":"x"}`, retry: true},
		{name: "json array is a gateway error", status: 500, body: `[]`, retry: true},
		{name: "408", status: 408, body: "timeout", retry: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			o := Options{BaseURL: srv.URL + "/stable"}
			if tt.auth {
				o.Login, o.Password = "alice", secret
			}
			c, err := NewClient(o)
			require.NoError(t, err)
			n, err := c.Stream(context.Background(), Query{Site: "lyon", Nodes: []string{"taurus-7"}}, func(*Row) error { return nil })
			require.Zero(t, n)
			require.Error(t, err)
			msg := err.Error()
			require.NotContains(t, msg, secret)
			require.Contains(t, msg, srv.URL+"/stable/sites/lyon/metrics?nodes=taurus-7")
			for _, s := range tt.contains {
				require.Contains(t, msg, s)
			}
			require.Equal(t, tt.retry, IsRetryable(err), msg)
			require.Equal(t, tt.retry, IsRetryable(fmt.Errorf("wrapped: %w", err)))
			require.Equal(t, tt.after, retryAfterOf(err))
			if tt.api {
				var ae *APIError
				require.ErrorAs(t, err, &ae)
				require.Equal(t, tt.status, ae.Status)
				require.Equal(t, tt.code, ae.Code)
				require.Equal(t, tt.after, ae.RetryAfter)
			} else {
				var ge *GatewayError
				require.ErrorAs(t, err, &ge)
				require.Equal(t, tt.status, ge.Status)
				require.LessOrEqual(t, len(ge.Body), 512)
				require.NotContains(t, ge.Body, "\n")
				require.NotContains(t, ge.Body, "\t")
				require.Equal(t, tt.after, ge.RetryAfter)
			}
		})
	}
}

func TestAPIErrorFields(t *testing.T) {
	ae := parsePostgREST([]byte(`{"hint":null,"details":{"a":1},"code":"XX000","message":"boom"}`))
	require.NotNil(t, ae)
	require.Equal(t, APIError{Code: "XX000", Message: "boom", Details: `{"a":1}`}, *ae)
	require.Nil(t, parsePostgREST([]byte(`{"message":1,"code":"x"}`)))
	require.Nil(t, parsePostgREST([]byte(`not json`)))
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 8, 5, 7, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"0":                             0,
		"-3":                            0,
		" 12 ":                          12 * time.Second,
		"junk":                          0,
		"Tue, 05 Aug 2025 07:00:30 GMT": 30 * time.Second,
		"Tue, 05 Aug 2025 06:00:00 GMT": 0,
		"99999999999":                   10 * time.Minute,
	} {
		require.Equal(t, want, parseRetryAfter(in, now), in)
	}
}

func TestCleanBody(t *testing.T) {
	require.Equal(t, "a b c", cleanBody([]byte("a\r\n\tb\x00\x01 c\n")))
	require.Equal(t, "x\uFFFDy", cleanBody([]byte("x\xffy")))
	long := cleanBody([]byte(strings.Repeat("é", 1000)))
	require.Len(t, long, 512)
}

func TestIsRetryable(t *testing.T) {
	dnsNotFound := &net.DNSError{Err: "no such host", Name: "api.grid5000.fr", IsNotFound: true}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("x"), false},
		{"canceled", context.Canceled, false},
		{"canceled in network error", &NetworkError{URL: "u", Err: context.Canceled}, false},
		{"canceled mid body", &TruncatedError{Rows: 3, Err: fmt.Errorf("read: %w", context.Canceled)}, false},
		{"deadline", &NetworkError{URL: "u", Err: context.DeadlineExceeded}, true},
		{"truncated", &TruncatedError{Rows: 3, Err: io.ErrUnexpectedEOF}, true},
		{"reset", &NetworkError{URL: "u", Err: &net.OpError{Op: "read", Err: syscall.ECONNRESET}}, true},
		{"refused", &NetworkError{URL: "u", Err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}}, true},
		{"server closed", &NetworkError{URL: "u", Err: io.EOF}, true},
		{"dns not found", &NetworkError{URL: "u", Err: dnsNotFound}, false},
		{"dns timeout", &NetworkError{URL: "u", Err: &net.DNSError{Err: "timeout", IsTimeout: true}}, true},
		{"unknown CA", &NetworkError{URL: "u", Err: x509.UnknownAuthorityError{}}, false},
		{"hostname", &NetworkError{URL: "u", Err: x509.HostnameError{Host: "x"}}, false},
		{"not array", fmt.Errorf("%w: x", ErrNotArray), false},
		{"no target", fmt.Errorf("%w: x", ErrNoTarget), false},
		{"401", &GatewayError{Status: 401}, false},
		{"404", &GatewayError{Status: 404}, false},
		{"429", &GatewayError{Status: 429}, true},
		{"500", &GatewayError{Status: 500}, true},
		{"503", &GatewayError{Status: 503}, true},
		{"api 400 22007", &APIError{Status: 400, Code: "22007"}, false},
		{"api 500 missing", &APIError{Status: 500, Code: "XX000", Message: "plpy.Error: Missing 'devices', 'nodes' or 'job_id' argument"}, false},
		{"api 500 data exception", &APIError{Status: 500, Code: "22012"}, false},
		{"api 503", &APIError{Status: 503, Code: "PGRST000"}, true},
		{"api 404 PGRST202", &APIError{Status: 404, Code: "PGRST202"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, IsRetryable(tt.err))
		})
	}
}

func TestNetworkHints(t *testing.T) {
	dns := &NetworkError{URL: "u", Err: &net.DNSError{Err: "no such host", Name: "api.grid5000.fr", IsNotFound: true}}
	require.ErrorContains(t, dns, "unknown host: check api_url")
	require.ErrorContains(t, &NetworkError{URL: "u", Err: context.DeadlineExceeded}, "no answer in time")
	require.Equal(t, "kwollect: GET u: context canceled", (&NetworkError{URL: "u", Err: context.Canceled}).Error())
}

func TestNetworkErrors(t *testing.T) {
	// A closed port: connection refused, retryable.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	c, err := NewClient(Options{BaseURL: "http://" + addr, Login: "alice", Password: secret})
	require.NoError(t, err)
	_, err = c.Stream(context.Background(), Query{Site: "lyon", Nodes: []string{"a"}}, func(*Row) error { return nil })
	var ne *NetworkError
	require.ErrorAs(t, err, &ne)
	require.True(t, IsRetryable(err), err.Error())
	require.NotContains(t, err.Error(), secret)
	require.Equal(t, 1, strings.Count(err.Error(), "http://"+addr), "the URL appears once: %s", err)
	require.ErrorContains(t, err, "could not reach the API: check api_url")

	// Canceled context: not retryable.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.Stream(ctx, Query{Site: "lyon", Nodes: []string{"a"}}, func(*Row) error { return nil })
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, IsRetryable(err))
}

func TestTLSVerified(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("[]")) }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	defer srv.Close()
	c, err := NewClient(Options{BaseURL: srv.URL})
	require.NoError(t, err)
	_, err = c.Stream(context.Background(), Query{Site: "lyon", Nodes: []string{"a"}}, func(*Row) error { return nil })
	require.Error(t, err, "a self-signed certificate must be refused")
	require.ErrorContains(t, err, "TLS certificate was not accepted")
	require.False(t, IsRetryable(err), err.Error())

	// With the test server's own client (trusting its CA) it works.
	c, err = NewClient(Options{BaseURL: srv.URL, HTTPClient: srv.Client()})
	require.NoError(t, err)
	_, err = c.Stream(context.Background(), Query{Site: "lyon", Nodes: []string{"a"}}, func(*Row) error { return nil })
	require.NoError(t, err)
}

// A connection cut in the middle of the array gives a TruncatedError that
// counts the rows already delivered.
func TestTruncatedBody(t *testing.T) {
	row := `{"timestamp":"2024-10-03T08:12:41+02:00","device_id":"a","metric_id":"m","value":1}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		body := "[" + row + "," + row + "," + row[:30]
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body)+100, body)
		_ = buf.Flush()
	}))
	defer srv.Close()
	c, err := NewClient(Options{BaseURL: srv.URL})
	require.NoError(t, err)
	n, err := c.Stream(context.Background(), Query{Site: "lyon", Nodes: []string{"a"}}, func(*Row) error { return nil })
	require.Equal(t, 2, n)
	var te *TruncatedError
	require.ErrorAs(t, err, &te)
	require.Equal(t, 2, te.Rows)
	require.Contains(t, err.Error(), "after 2 rows")
	require.Contains(t, err.Error(), srv.URL)
	require.True(t, IsRetryable(err))
}
