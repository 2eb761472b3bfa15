package kwollect

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// Brief is a one-line summary of a query error for progress and retry
// lines (a few words: "HTTP 503 Service Unavailable", "connection
// refused", "no answer in time"); the full error, with its URL and advice,
// belongs in debug logs and final errors.
func Brief(err error) string {
	if err == nil {
		return ""
	}
	var api *APIError
	var gw *GatewayError
	var ne *NetworkError
	var partial *PartialError
	switch {
	case errors.As(err, &partial):
		if len(partial.Failed) == 1 {
			return "1 chunk failed: " + Brief(partial.Failed[0].Err)
		}
		return strconv.Itoa(len(partial.Failed)) + " chunks failed, first: " + Brief(partial.Failed[0].Err)
	case errors.As(err, &api):
		msg := api.Message
		if len(msg) > 60 {
			msg = msg[:57] + "..."
		}
		return "HTTP " + strconv.Itoa(api.Status) + " " + api.Code + ": " + msg
	case errors.As(err, &gw):
		return strings.TrimSpace("HTTP " + strconv.Itoa(gw.Status) + " " + http.StatusText(gw.Status))
	case errors.As(err, &ne):
		if u, perr := url.Parse(ne.URL); perr == nil && u.Host != "" {
			return briefNetwork(ne.Err) + " (" + u.Host + ")"
		}
		return briefNetwork(ne.Err)
	}
	return briefNetwork(err)
}

func briefNetwork(err error) string {
	var netErr net.Error
	var dnsErr *net.DNSError
	var to *TimeoutError
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, errDeadline):
		return "deadline reached"
	case errors.As(err, &to):
		return to.Error()
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "response cut short"
	case errors.As(err, &dnsErr):
		return "unknown host " + dnsErr.Name
	case isCertError(err):
		return "TLS certificate refused"
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		return "no answer in time"
	}
	s := err.Error()
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}
