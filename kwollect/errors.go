package kwollect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"
)

// APIError is a non-2xx answer whose body has the PostgREST error shape
// {"hint","details","code","message"}: Kwollect itself rejected the query.
type APIError struct {
	Status  int
	Code    string // PostgreSQL/PostgREST code, e.g. "XX000", "22007"
	Message string
	Details string
	Hint    string
	URL     string // the request URL (never holds credentials)
	// RetryAfter is the server's Retry-After delay (429/503), 0 if none.
	RetryAfter time.Duration

	authSent bool
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kwollect: HTTP %d from %s: %s", e.Status, e.URL, e.Message)
	var extra []string
	if e.Code != "" {
		extra = append(extra, "code "+e.Code)
	}
	if e.Details != "" {
		extra = append(extra, "details: "+e.Details)
	}
	if e.Hint != "" {
		extra = append(extra, "hint: "+e.Hint)
	}
	if len(extra) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(extra, "; "))
	}
	if a := advice(e.Status, e.Code, e.Message, e.URL, e.authSent, e.RetryAfter); a != "" {
		b.WriteString(": ")
		b.WriteString(a)
	}
	return b.String()
}

// permanent reports Kwollect errors that fail the same way on every retry.
func (e *APIError) permanent() bool {
	switch {
	case strings.Contains(e.Message, "Missing 'devices', 'nodes' or 'job_id'"),
		strings.Contains(e.Message, "too much data"),
		strings.Contains(e.Message, "IndexError"),
		strings.HasPrefix(e.Code, "22"), // data exceptions: bad time, integer, boolean
		strings.HasPrefix(e.Code, "42"), // syntax / undefined object
		strings.HasPrefix(e.Code, "PGRST1"), strings.HasPrefix(e.Code, "PGRST2"):
		return true
	}
	return false
}

// GatewayError is a non-2xx answer without a PostgREST body: the Grid'5000
// API gateway, a proxy or the reference API answered (401, unknown site,
// 502/503/504, ...).
type GatewayError struct {
	Status int
	// Body is the start of the body (at most 512 bytes), control characters
	// replaced by spaces, for the logs.
	Body string
	URL  string // the request URL (never holds credentials)
	// RetryAfter is the server's Retry-After delay (429/503), 0 if none.
	RetryAfter time.Duration

	authSent bool
}

func (e *GatewayError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kwollect: HTTP %d", e.Status)
	if t := http.StatusText(e.Status); t != "" {
		b.WriteString(" " + t)
	}
	fmt.Fprintf(&b, " from %s", e.URL)
	if e.Body != "" {
		fmt.Fprintf(&b, " (body: %q)", e.Body)
	}
	if a := advice(e.Status, "", "", e.URL, e.authSent, e.RetryAfter); a != "" {
		b.WriteString(": ")
		b.WriteString(a)
	}
	return b.String()
}

// NetworkError is a request that got no HTTP answer (DNS, connect, TLS,
// reset, timeout).
type NetworkError struct {
	URL string
	Err error
}

func (e *NetworkError) Error() string {
	msg := fmt.Sprintf("kwollect: GET %s: %v", e.URL, e.Err)
	if h := networkHint(e.Err); h != "" {
		msg += ": " + h
	}
	return msg
}

func networkHint(err error) string {
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return ""
	case isCertError(err):
		return "the server's TLS certificate was not accepted (certificates are always verified): check api_url"
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return "unknown host: check api_url (default " + DefaultBaseURL + ")"
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		return "no answer in time: the API may be overloaded; retry later and check " + statusPage
	}
	return "could not reach the API: check api_url, the network, and " + statusPage
}

func (e *NetworkError) Unwrap() error { return e.Err }

// What a TimeoutError waited for.
const (
	WaitHeaders = "response headers" // Options.HeaderTimeout
	WaitBody    = "body data"        // Options.StallTimeout
	WaitQuery   = "query"            // SessionOptions.QueryTimeout
)

// TimeoutError is a server that did not answer in time: no response
// headers within Options.HeaderTimeout (inside a *NetworkError), no body
// byte for Options.StallTimeout (inside a *TruncatedError), or a query not
// finished within SessionOptions.QueryTimeout. It is retryable, and is not
// context.DeadlineExceeded: that one means the caller's deadline (ctx's,
// or Complete's) passed.
type TimeoutError struct {
	Wait  string // WaitHeaders, WaitBody or WaitQuery
	After time.Duration
}

func (e *TimeoutError) Error() string {
	switch e.Wait {
	case WaitHeaders:
		return fmt.Sprintf("no response headers within %v (HeaderTimeout)", e.After)
	case WaitBody:
		return fmt.Sprintf("no data for %v in the response body (StallTimeout)", e.After)
	case WaitQuery:
		return fmt.Sprintf("query not finished within %v (QueryTimeout)", e.After)
	}
	return fmt.Sprintf("no %s within %v", e.Wait, e.After)
}

// Timeout reports true (net.Error).
func (e *TimeoutError) Timeout() bool { return true }

// Temporary reports true (net.Error).
func (e *TimeoutError) Temporary() bool { return true }

// errDeadline is the cause of a query cut by the call's deadline.
var errDeadline = fmt.Errorf("%w (the call's deadline passed)", context.DeadlineExceeded)

// Sites lists the Grid'5000 site uids, one Kwollect server each.
var Sites = []string{"bordeaux", "grenoble", "lille", "louvain", "luxembourg", "lyon",
	"nancy", "nantes", "rennes", "sophia", "strasbourg", "toulouse"}

const statusPage = "https://www.grid5000.fr/status/"

// advice turns a failure into what the user should do about it.
func advice(status int, code, message, url string, authSent bool, retryAfter time.Duration) string {
	switch {
	case strings.Contains(message, "Missing 'devices', 'nodes' or 'job_id'"):
		return "no node was given: set hostname (the node(s) to query) in the kwollect-input configuration; " +
			"an http:// api_url redirected to https also drops the parameters, so use https://"
	case strings.HasPrefix(code, "22007") || strings.Contains(message, "InvalidDatetimeFormat"):
		return "a time bound (start_time/end_time) was rejected: check the measured window (this client sends epoch seconds)"
	case code == "22P02":
		return "a parameter has the wrong type (job_id must be an integer, summary and as_rate booleans)"
	case strings.Contains(message, "too much data"):
		return "the window holds too much data for one request: split it into shorter windows or ask for fewer nodes/metrics"
	case strings.Contains(message, "IndexError"):
		return "unknown OAR job_id (or a job without nodes)"
	}
	switch {
	case status == http.StatusUnauthorized:
		if authSent {
			return "the Grid'5000 API rejected the credentials: check login and password " +
				`(e.g. password = "${G5K_PASSWORD}") or the ~/.netrc line "machine api.grid5000.fr login <user> password <pwd>"`
		}
		return "no credentials were sent: from outside Grid'5000 set login and password " +
			`(e.g. password = "${G5K_PASSWORD}") or add "machine api.grid5000.fr login <user> password <pwd>" to ~/.netrc; ` +
			"from a Grid'5000 node or frontend no credentials are needed"
	case status == http.StatusForbidden:
		return "access denied: check that the Grid'5000 account is active and may use the API"
	case status == http.StatusNotFound:
		what := "site"
		if strings.Contains(url, "/clusters/") {
			what = "site or cluster"
		}
		return fmt.Sprintf("not found: probably a wrong %s (Grid'5000 sites: %s) or a wrong api_url (default %s)",
			what, strings.Join(Sites, ", "), DefaultBaseURL)
	case status == http.StatusTooManyRequests:
		if retryAfter > 0 {
			return fmt.Sprintf("rate limited: retry after %s", retryAfter)
		}
		return "rate limited: retry later"
	case status >= 500:
		s := "Kwollect or the Grid'5000 API is unavailable or overloaded: retry later and check " + statusPage
		if retryAfter > 0 {
			s += fmt.Sprintf(" (server asks to retry after %s)", retryAfter)
		}
		return s
	case status >= 400:
		return "the request was rejected"
	}
	return ""
}

// IsRetryable reports whether repeating the same request may succeed:
// 5xx (except Kwollect errors that are permanent: missing nodes, bad time
// bound, too much data, unknown job), 408, 429, timeouts, connection
// errors, truncated or stalled bodies (*TimeoutError). It is false for
// other 4xx, for TLS certificate and unknown-host errors, for a body that
// is not an array or has data after it (ErrTrailingData), and for context
// cancellation.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return retryableStatus(ae.Status) && !ae.permanent()
	}
	var ge *GatewayError
	if errors.As(err, &ge) {
		return retryableStatus(ge.Status)
	}
	var te *TruncatedError
	if errors.As(err, &te) {
		return true
	}
	if errors.Is(err, ErrNotArray) {
		return false
	}
	if isCertError(err) {
		return false
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.IsTimeout || dnsErr.IsTemporary
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return true
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	// Any other socket-level failure (read, write, dial) is transient from
	// the client's point of view.
	var opErr *net.OpError
	return errors.As(err, &opErr)
}

func retryableStatus(s int) bool {
	return s >= 500 || s == http.StatusTooManyRequests || s == http.StatusRequestTimeout
}

func isCertError(err error) bool {
	var (
		ua  x509.UnknownAuthorityError
		ci  x509.CertificateInvalidError
		he  x509.HostnameError
		cve *tls.CertificateVerificationError
		rhe tls.RecordHeaderError
	)
	return errors.As(err, &ua) || errors.As(err, &ci) || errors.As(err, &he) ||
		errors.As(err, &cve) || errors.As(err, &rhe)
}

// retryAfterOf returns the Retry-After delay carried by err, or 0.
func retryAfterOf(err error) time.Duration {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.RetryAfter
	}
	var ge *GatewayError
	if errors.As(err, &ge) {
		return ge.RetryAfter
	}
	return 0
}

const maxErrorBody = 64 << 10

// httpError builds the typed error of a non-2xx response and consumes (part
// of) its body.
func httpError(resp *http.Response, url string, authSent bool, now time.Time) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	ra := parseRetryAfter(resp.Header.Get("Retry-After"), now)
	if ae := parsePostgREST(body); ae != nil {
		ae.Status, ae.URL, ae.RetryAfter, ae.authSent = resp.StatusCode, url, ra, authSent
		return ae
	}
	return &GatewayError{Status: resp.StatusCode, Body: cleanBody(body), URL: url, RetryAfter: ra, authSent: authSent}
}

func parsePostgREST(body []byte) *APIError {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil
	}
	msg, ok := m["message"]
	if _, hasCode := m["code"]; !ok || !hasCode {
		return nil
	}
	if _, isStr := jsonString(msg); !isStr {
		return nil
	}
	field := func(k string) string {
		raw, ok := m[k]
		if !ok || isNull(raw) {
			return ""
		}
		return labelValue(raw)
	}
	return &APIError{Code: field("code"), Message: field("message"), Details: field("details"), Hint: field("hint")}
}

// cleanBody keeps at most 512 bytes of valid UTF-8 with control characters
// turned into spaces (runs collapsed), so a gateway page fits in a log line.
func cleanBody(body []byte) string {
	const max = 512
	s := strings.ToValidUTF8(string(body[:min(len(body), 4*max)]), "\uFFFD")
	var b strings.Builder
	space := false
	for _, r := range s {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			space = true
			continue
		}
		sep := space && b.Len() > 0
		space = false
		need := utf8.RuneLen(r)
		if sep {
			need++
		}
		if b.Len()+need > max {
			break
		}
		if sep {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// parseRetryAfter accepts delay-seconds or an HTTP date; it caps the delay
// at 10 minutes so a confused server cannot park the client for hours.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		d = time.Duration(min(n, 600)) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), 10*time.Minute)
}
