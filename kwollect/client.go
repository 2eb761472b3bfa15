package kwollect

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/alumet-go/alumet-agent/internal/redact"
)

// DefaultBaseURL is the production Grid'5000 API prefix used by every known
// Kwollect client.
const DefaultBaseURL = "https://api.grid5000.fr/stable"

// Options configures a Client. The zero value talks to DefaultBaseURL
// without credentials, which works from inside Grid'5000.
type Options struct {
	// BaseURL is the API prefix, default DefaultBaseURL; a trailing "/" is
	// tolerated. It must be https://, except http:// on a loopback host
	// (127.0.0.0/8, ::1, localhost), which is how the local emulator runs.
	// Credentials embedded as https://user:pass@host are moved to
	// Login/Password (unless those are set) and never appear in URLs.
	BaseURL string
	// Login and Password are sent as HTTP Basic auth, only when one of them
	// is non-empty. Needed from outside Grid'5000 only.
	Login    string
	Password string
	// HTTPClient is optional. The default keeps connections alive, verifies
	// TLS certificates, bounds connecting by ConnectTimeout and has no
	// global timeout: every call takes a context, which bounds it.
	// HeaderTimeout and StallTimeout apply to any HTTPClient.
	HTTPClient *http.Client
	// ConnectTimeout bounds the TCP connect and, separately, the TLS
	// handshake of the default HTTP client (default 10s; ignored with
	// HTTPClient).
	ConnectTimeout time.Duration
	// HeaderTimeout bounds the wait for the response headers, counted from
	// the moment the request is sent, connecting included (default 30s;
	// negative: none). Kwollect builds the whole answer before its first
	// byte: a query of a few hundred thousand rows (a Session chunk) takes
	// seconds, one near Kwollect's statement timeout minutes.
	HeaderTimeout time.Duration
	// StallTimeout is the longest time without any byte while reading a
	// response body (default 20s; negative: none). A body that trickles
	// is bounded by the caller's context (Session: QueryTimeout and the
	// call's deadline), not by this.
	StallTimeout time.Duration
	// MaxRowBytes bounds the size of one element of a metrics response
	// (see DecodeOptions.MaxRowBytes; default 1 MiB, negative: none).
	MaxRowBytes int
	// UserAgent is optional.
	UserAgent string
	// OnBadRow, if set, is called for every malformed row that Stream and
	// Session skip (see DecodeOptions).
	OnBadRow func(*RowError)
}

// Client queries one Grid'5000 API prefix. It is safe for concurrent use.
type Client struct {
	base      string // no trailing slash, no credentials
	login     string
	password  string
	hc        *http.Client
	userAgent string
	onBadRow  func(*RowError)
	now       func() time.Time // for HTTP-date Retry-After values
	header    time.Duration    // 0: none
	stall     time.Duration    // 0: none
	maxRow    int
}

const defaultUserAgent = "alumet-agent-kwollect (Go)"

// Defaults of Options.
const (
	DefaultConnectTimeout = 10 * time.Second
	DefaultHeaderTimeout  = 30 * time.Second
	DefaultStallTimeout   = 20 * time.Second
)

// maxIdlePerHost is the idle keep-alive connections kept per host by the
// default HTTP client: enough for a Session's default 4 concurrent queries
// on each of the 12 sites, which all go to the same gateway host.
const maxIdlePerHost = 64

// NewClient validates o and returns a Client. Errors explain what is wrong
// with the base URL (unparsable, not https, ...) without echoing a password.
func NewClient(o Options) (*Client, error) {
	raw := strings.TrimSpace(o.BaseURL)
	if raw == "" {
		raw = DefaultBaseURL
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the raw URL, password included
		}
		return nil, fmt.Errorf("api_url %q: not a valid URL: %w", redactRaw(raw), err)
	}
	shown := u.Redacted()
	if u.User != nil {
		if o.Login == "" && o.Password == "" {
			o.Login = u.User.Username()
			o.Password, _ = u.User.Password()
		}
		u.User = nil
		shown = u.String()
	}
	switch {
	case u.Scheme == "" || u.Host == "":
		return nil, fmt.Errorf("api_url %q: want an absolute URL such as %s", shown, DefaultBaseURL)
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, fmt.Errorf("api_url %q: must not contain a query or fragment (want e.g. %s)", shown, DefaultBaseURL)
	case !validPort(u.Port()):
		return nil, fmt.Errorf("api_url %q: port %q is not a number from 1 to 65535", shown, u.Port())
	case u.Scheme == "https":
	case u.Scheme == "http":
		if !IsLoopbackHost(u.Hostname()) {
			return nil, fmt.Errorf("api_url %q: plain http is only allowed for loopback hosts (the local emulator); use https://", shown)
		}
	default:
		return nil, fmt.Errorf("api_url %q: unsupported scheme %q; use https://", shown, u.Scheme)
	}
	hc := o.HTTPClient
	if hc == nil {
		connect := o.ConnectTimeout
		if connect <= 0 {
			connect = DefaultConnectTimeout
		}
		hc = defaultHTTPClient(connect)
	}
	ua := o.UserAgent
	if ua == "" {
		ua = defaultUserAgent
	}
	return &Client{
		base:      strings.TrimRight(u.String(), "/"),
		login:     o.Login,
		password:  o.Password,
		hc:        hc,
		userAgent: ua,
		onBadRow:  o.OnBadRow,
		now:       time.Now,
		header:    orDefault(o.HeaderTimeout, DefaultHeaderTimeout),
		stall:     orDefault(o.StallTimeout, DefaultStallTimeout),
		maxRow:    o.MaxRowBytes,
	}, nil
}

// orDefault: 0 selects def, a negative value none (0).
func orDefault(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

// validPort reports whether a URL's port is empty (the scheme's) or 1..65535.
func validPort(p string) bool {
	if p == "" {
		return true
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// IsLoopbackHost reports whether host (no port) is "localhost" or a loopback
// IP address (127.0.0.0/8, ::1).
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func defaultHTTPClient(connect time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = connect
	// Certificates are always verified: the password travels in the
	// Authorization header.
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	// A Session runs up to SessionOptions.Concurrency queries per site, all
	// on the same gateway host: keep that many connections alive (the
	// default, 2 per host, would reconnect for every chunk).
	tr.MaxIdleConnsPerHost = maxIdlePerHost
	tr.MaxIdleConns = max(tr.MaxIdleConns, maxIdlePerHost)
	return &http.Client{Transport: tr, CheckRedirect: noDowngrade}
}

// noDowngrade refuses a redirect from https to http: net/http would copy
// the Authorization header to the same host over plain text.
func noDowngrade(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return fmt.Errorf("refusing redirect from https to %s (credentials would travel in clear)", req.URL.Redacted())
	}
	return nil
}

// redactRaw hides the userinfo of a URL that url.Parse rejected.
func redactRaw(s string) string { return redact.String(s) }

// BaseURL returns the API prefix in use, without credentials.
func (c *Client) BaseURL() string { return c.base }

// Stream sends one GET for q and calls fn for each row as it is decoded
// from the body; the body is never held in memory. The *Row passed to fn is
// overwritten after fn returns (a shallow copy is safe to keep, see Decode).
// Malformed and oversized rows are skipped and reported to
// Options.OnBadRow.
//
// It returns the number of rows fn accepted. Errors: *APIError or
// *GatewayError for a non-2xx answer, *NetworkError when no answer came
// (a *TimeoutError inside when no headers came within HeaderTimeout),
// *TruncatedError for a body cut mid-array (a *TimeoutError inside when it
// stalled for StallTimeout), an error wrapping ErrNotArray for a 2xx body
// that is not an array, an error wrapping ErrTrailingData when data
// follows the array (every row of the array was delivered), and fn's own
// error unchanged. A cancelled or expired ctx gives an error for which
// errors.Is(err, ctx.Err()) holds (context.Cause(ctx) when it has one).
func (c *Client) Stream(ctx context.Context, q Query, fn func(*Row) error) (int, error) {
	if err := q.validate(); err != nil {
		return 0, err
	}
	return c.stream(ctx, c.URL(q), nil, fn)
}

// streamStats collects what Stream only reports through hooks and errors,
// for the fetch engine's Report.
// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n *int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}

type streamStats struct {
	bytes     int64 // body bytes read (after gzip inflation)
	oversized int
	trailing  bool        // data after the array (not returned as an error then)
	tmHit     *template   // the template of the row being delivered (see DecodeOptions.tmHit)
	slot      func() *Row // see DecodeOptions.slot
}

func (c *Client) stream(ctx context.Context, u string, st *streamStats, fn func(*Row) error) (int, error) {
	resp, err := c.get(ctx, u, false)
	if err != nil {
		return 0, err
	}
	return c.decodeBody(resp, u, st, fn)
}

// decodeBody streams the rows of a 2xx response from get, and closes it.
func (c *Client) decodeBody(resp *http.Response, u string, st *streamStats, fn func(*Row) error) (int, error) {
	defer drainClose(resp.Body)
	if resp.StatusCode == http.StatusNoContent {
		return 0, nil
	}
	opts := DecodeOptions{OnBadRow: c.onBadRow, MaxRowBytes: c.maxRow}
	if wb, ok := resp.Body.(*watchedBody); ok {
		opts.arrayEnd = wb.ended
	}
	if st != nil {
		opts.tmHit, opts.slot = &st.tmHit, st.slot
		opts.OnBadRow = func(e *RowError) {
			if errors.Is(e.Err, ErrRowTooLarge) {
				st.oversized++
			}
			if c.onBadRow != nil {
				c.onBadRow(e)
			}
		}
	}
	var body io.Reader = resp.Body
	if st != nil {
		body = &countingReader{r: resp.Body, n: &st.bytes}
	}
	n, err := DecodeWith(body, opts, fn)
	if err != nil {
		var te *TruncatedError
		switch {
		case errors.As(err, &te) && te.URL == "":
			te.URL = u
		case errors.Is(err, ErrNotArray):
			err = fmt.Errorf("%w (HTTP %d, Content-Type %q, from %s)", err, resp.StatusCode, resp.Header.Get("Content-Type"), u)
		case errors.Is(err, ErrTrailingData):
			if st != nil {
				st.trailing = true
				return n, nil
			}
			err = fmt.Errorf("%w (from %s)", err, u)
		}
	}
	return n, err
}

// get sends the GET and returns a 2xx response, or a typed error. The
// headers must come within c.header, and the body (the caller must close
// it) fails with a *TimeoutError when no byte comes for c.stall: from the
// headers on, or with parked from the first Read (a prefetched response
// waits for its turn unread).
func (c *Client) get(ctx context.Context, u string, parked bool) (*http.Response, error) {
	rctx, cancel := context.WithCancelCause(ctx)
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
	if err != nil {
		cancel(nil)
		return nil, fmt.Errorf("kwollect: GET %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	authSent := c.login != "" || c.password != ""
	if authSent {
		req.SetBasicAuth(c.login, c.password)
	}
	var hdr *time.Timer
	if c.header > 0 {
		hdr = time.AfterFunc(c.header, func() { cancel(&TimeoutError{Wait: WaitHeaders, After: c.header}) })
	}
	resp, err := c.hc.Do(req)
	if hdr != nil {
		hdr.Stop()
	}
	if err != nil {
		if rctx.Err() != nil {
			err = context.Cause(rctx) // ours, or the caller's
		} else {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // url.Error would repeat the URL
			}
		}
		cancel(nil)
		return nil, &NetworkError{URL: u, Err: err}
	}
	resp.Body = newWatchedBody(resp.Body, rctx, cancel, c.stall, parked)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer drainClose(resp.Body)
		return nil, httpError(resp, u, authSent, c.now())
	}
	return resp, nil
}

// watchedBody is a response body whose reads fail with a *TimeoutError
// when no byte arrives for stall (a timer reset by each read that returns
// data cancels the request), and whose read errors after a cancellation
// are the cause of it (the caller's context.Canceled or deadline, or the
// stall) rather than net/http's generic error.
type watchedBody struct {
	rc     io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	stall  time.Duration
	t      *time.Timer // nil: no stall deadline
}

func newWatchedBody(rc io.ReadCloser, ctx context.Context, cancel context.CancelCauseFunc, stall time.Duration, lazy bool) *watchedBody {
	b := &watchedBody{rc: rc, ctx: ctx, cancel: cancel, stall: stall}
	if !lazy {
		b.arm()
	}
	return b
}

// arm starts the stall deadline (once).
func (b *watchedBody) arm() {
	if b.t == nil && b.stall > 0 {
		stall := b.stall
		b.t = time.AfterFunc(stall, func() { b.cancel(&TimeoutError{Wait: WaitBody, After: stall}) })
	}
}

func (b *watchedBody) Read(p []byte) (int, error) {
	b.arm()
	n, err := b.rc.Read(p)
	if n > 0 && b.t != nil {
		b.t.Reset(b.stall)
	}
	if err != nil && err != io.EOF && b.ctx.Err() != nil {
		err = context.Cause(b.ctx)
	}
	return n, err
}

// trailGrace bounds the wait for the end of a body after its array: a
// server that keeps the connection open after ']' must not hold rows that
// are all in (the trailing-data check then gives up, see checkTrailing).
const trailGrace = time.Second

// ended shortens the stall deadline once the array is complete.
func (b *watchedBody) ended() {
	if b.t == nil {
		b.t = time.AfterFunc(trailGrace, func() { b.cancel(&TimeoutError{Wait: WaitBody, After: trailGrace}) })
	}
	b.stall = min(b.stall, trailGrace)
	if b.stall <= 0 {
		b.stall = trailGrace
	}
	b.t.Reset(b.stall)
}

func (b *watchedBody) Close() error {
	if b.t != nil {
		b.t.Stop()
	}
	err := b.rc.Close()
	b.cancel(nil)
	return err
}

// drainClose reads a little of what is left so the connection can be
// reused, then closes the body.
func drainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 16<<10))
	_ = body.Close()
}
