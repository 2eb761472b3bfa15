package push

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Class is what to do after a Send.
type Class int

// The classes of Classify.
const (
	Delivered Class = iota // nil: the server has the batch
	Retry                  // a network error, a 5xx, 408 or 429: send it again later
	Refused                // another 4xx (or any other error): drop the batch
	Fatal                  // 401, 403, 404: drop it and fail the output
)

// StatusError is an HTTP response that is not a success.
type StatusError struct {
	Status     int
	Message    string        // the start of the body, trimmed, valid UTF-8
	RetryAfter time.Duration // from Retry-After, 0 without
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// PermanentError marks an error of Send that is not worth retrying (a
// batch that cannot be encoded, a request that cannot be built).
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Classify says what to do after Send returned err, and how long the
// server asked to wait.
func Classify(err error) (Class, time.Duration) {
	if err == nil {
		return Delivered, 0
	}
	var se *StatusError
	if errors.As(err, &se) {
		switch {
		case se.Status >= 500, se.Status == http.StatusTooManyRequests, se.Status == http.StatusRequestTimeout:
			return Retry, se.RetryAfter
		case se.Status == http.StatusUnauthorized, se.Status == http.StatusForbidden, se.Status == http.StatusNotFound,
			// Every batch would be refused: the server does not take the
			// content type or encoding.
			se.Status == http.StatusUnsupportedMediaType:
			return Fatal, 0
		case se.Status >= 400:
			return Refused, 0
		}
		return Retry, se.RetryAfter // 1xx/3xx not followed: a misbehaving proxy
	}
	var pe *PermanentError
	if errors.As(err, &pe) {
		return Refused, 0
	}
	return Retry, 0 // network errors, timeouts, a body cut short
}

// maxMessage bounds the part of an error body kept in a StatusError.
const maxMessage = 2048

// CheckResponse returns nil for a 2xx response, else a *StatusError with
// the start of its body and its Retry-After. It reads (at most 64 KiB of)
// and closes the body either way, so that the connection is reused.
func CheckResponse(resp *http.Response, now time.Time) error {
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxMessage))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	msg := strings.TrimSpace(strings.ToValidUTF8(string(b), "\uFFFD"))
	if len(b) == maxMessage {
		for len(msg) > 0 && !utf8.ValidString(msg) {
			msg = msg[:len(msg)-1]
		}
		msg += "…"
	}
	return &StatusError{Status: resp.StatusCode, Message: msg,
		RetryAfter: ParseRetryAfter(resp.Header.Get("Retry-After"), now)}
}

// ParseRetryAfter reads a Retry-After value: delay seconds or an HTTP
// date (relative to now). 0 when absent, invalid or in the past.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, MaxRetryAfter)
		}
	}
	return 0
}

// NewHTTPClient returns a client for a push output: TLS always verified
// (TLS 1.2 at least, the system's roots), proxies from the environment,
// no redirect followed (a POST redirected would lose its body, and a
// redirect to another host would carry the credentials), and timeout for
// each request (0: none, the Queue's Close deadline still applies).
func NewHTTPClient(timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	tr.MaxIdleConnsPerHost = 4
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// RedactedURL is u without its userinfo password and with the values of
// query parameters that hold secrets (p, password, token, u is kept).
func RedactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<an invalid URL>"
	}
	q := u.Query()
	changed := false
	for k := range q {
		switch strings.ToLower(k) {
		case "p", "password", "token", "access_token", "api_key":
			q.Set(k, "xxxxx")
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// Post sends body to url with the given headers and returns CheckResponse's
// error, once net/http is done with body. A helper for the common case of
// Options.Send.
func Post(ctx context.Context, c *http.Client, url string, header http.Header, body []byte) error {
	req, b, err := NewRequest(ctx, http.MethodPost, url, body)
	if err != nil {
		return &PermanentError{Err: err}
	}
	defer b.Wait()
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	return CheckResponse(resp, time.Now())
}

// NewRequest is http.NewRequestWithContext with body, and the Body that
// says when the buffer may be written again: the senders reuse their
// buffers, and a RoundTripper may still read a request's body after Do
// returned (a server that answers before reading it all), closing it
// only then.
func NewRequest(ctx context.Context, method, url string, body []byte) (*http.Request, *Body, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, nil, err
	}
	b := &Body{buf: body}
	if len(body) > 0 {
		req.Body, req.ContentLength = b.reader(), int64(len(body))
		// A request replayed (HTTP/2's GOAWAY, a redirect) reads it again.
		req.GetBody = func() (io.ReadCloser, error) { return b.reader(), nil }
	}
	return req, b, nil
}

// Body is a request body's buffer, lent to net/http.
type Body struct {
	buf []byte
	wg  sync.WaitGroup // the readers not closed yet
}

func (b *Body) reader() io.ReadCloser {
	b.wg.Add(1)
	return &bodyReader{Reader: bytes.NewReader(b.buf), wg: &b.wg}
}

// Wait returns once every reader of the buffer net/http was given is
// closed (net/http closes a request's body in every case, on errors too).
func (b *Body) Wait() { b.wg.Wait() }

type bodyReader struct {
	*bytes.Reader
	once sync.Once
	wg   *sync.WaitGroup
}

func (r *bodyReader) Close() error {
	r.once.Do(r.wg.Done)
	return nil
}
