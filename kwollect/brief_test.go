package kwollect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"

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
		{"partial", &PartialError{Failed: []ChunkFailure{{Err: &GatewayError{Status: 502}}, {Err: errors.New("x")}}}, "2 chunks failed, first: HTTP 502 Bad Gateway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, Brief(tt.err))
		})
	}
}
