package kwollect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBrief(t *testing.T) {
	long := "a very long message from PostgreSQL that goes on and on about the statement that failed"
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"gateway", &GatewayError{Status: 503, Body: "<html>…</html>", URL: "https://api.grid5000.fr/x"}, "HTTP 503 Service Unavailable"},
		{"kwollect", &APIError{Status: 500, Code: "XX000", Message: long}, "HTTP 500 XX000: a very long message from PostgreSQL that goes on and on a..."},
		{"refused", &NetworkError{URL: "http://127.0.0.1:1/stable/sites/lyon/metrics", Err: fmt.Errorf("dial: %w", syscall.ECONNREFUSED)}, "connection refused (127.0.0.1:1)"},
		{"cut", &NetworkError{URL: "https://api.grid5000.fr/x", Err: io.ErrUnexpectedEOF}, "response cut short (api.grid5000.fr)"},
		{"timeout", context.DeadlineExceeded, "no answer in time"},
		{"no headers", &NetworkError{URL: "https://api.grid5000.fr/x", Err: &TimeoutError{Wait: WaitHeaders, After: 30 * time.Second}}, "no response headers within 30s (HeaderTimeout) (api.grid5000.fr)"},
		{"stalled body", &TruncatedError{Rows: 3, Err: &TimeoutError{Wait: WaitBody, After: 20 * time.Second}}, "no data for 20s in the response body (StallTimeout)"},
		{"query timeout", &TimeoutError{Wait: WaitQuery, After: 5 * time.Minute}, "query not finished within 5m0s (QueryTimeout)"},
		{"deadline", &NetworkError{URL: "https://api.grid5000.fr/x", Err: errDeadline}, "deadline reached (api.grid5000.fr)"},
		{"deadline mid-body", &TruncatedError{Rows: 3, Err: errDeadline}, "deadline reached"},
		{"partial", &PartialError{Failed: []ChunkFailure{{Err: &GatewayError{Status: 502}}, {Err: errors.New("x")}}}, "2 chunks failed, first: HTTP 502 Bad Gateway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, Brief(tt.err))
		})
	}
}
