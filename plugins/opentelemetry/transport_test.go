package opentelemetry

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"
	colmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // the receiver accepts gzip, as collectors do
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/plugins/internal/push"
)

// receiver is an in-process OTLP/gRPC collector built on the official
// gRPC server and OTLP service definitions: what it records is what a
// real collector would decode.
type receiver struct {
	colmetrics.UnimplementedMetricsServiceServer
	mu       sync.Mutex
	requests []*colmetrics.ExportMetricsServiceRequest
	md       []metadata.MD
	fail     error // returned instead of success when set
	rejected int64
}

func (r *receiver) Export(ctx context.Context, req *colmetrics.ExportMetricsServiceRequest) (*colmetrics.ExportMetricsServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	md, _ := metadata.FromIncomingContext(ctx)
	r.md = append(r.md, md)
	if r.fail != nil {
		return nil, r.fail
	}
	r.requests = append(r.requests, req)
	resp := &colmetrics.ExportMetricsServiceResponse{}
	if r.rejected > 0 {
		resp.PartialSuccess = &colmetrics.ExportMetricsPartialSuccess{RejectedDataPoints: r.rejected, ErrorMessage: "too old"}
	}
	return resp, nil
}

func startGRPC(t *testing.T) (*receiver, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	r := &receiver{}
	colmetrics.RegisterMetricsServiceServer(srv, r)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return r, "http://" + lis.Addr().String()
}

func request(t *testing.T) ([]byte, []wantPoint) {
	t.Helper()
	reg := measure.NewRegistry()
	ps := testPoints(t, reg)
	e := newEncoder(mapping{suffix: "_alumet", unitDisplay: true, attributesToLabels: true, version: Version}, reg, false)
	for i := range ps {
		e.AddPoint(&ps[i])
	}
	// The frame's room first, as the output gives export.
	framed := e.Finish(make([]byte, frameLen))
	return framed, flatten(t, framed[frameLen:])
}

// sendable is framed as export takes it: with gz, the request gzipped (as
// the encoder's FinishZ gives it) after the frame's room.
func sendable(t *testing.T, framed []byte, gz bool) []byte {
	t.Helper()
	if !gz {
		return framed
	}
	var b bytes.Buffer
	b.Write(framed[:frameLen])
	zw := gzip.NewWriter(&b)
	_, err := zw.Write(framed[frameLen:])
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return b.Bytes()
}

func TestGRPCExport(t *testing.T) {
	msg, want := request(t)
	for _, gz := range []bool{false, true} {
		r, addr := startGRPC(t)
		x, err := newExporter(ProtocolGRPC, addr, http.Header{"Authorization": {"Bearer s3cret"}}, gz, 5*time.Second)
		require.NoError(t, err)
		msg := sendable(t, msg, gz)
		res, err := x.export(context.Background(), msg)
		require.NoError(t, err, "gzip %v", gz)
		require.Equal(t, Result{}, res)
		require.Len(t, r.requests, 1)
		got, err := proto.Marshal(r.requests[0])
		require.NoError(t, err)
		require.Equal(t, len(want), len(flatten(t, got)))
		require.Equal(t, []string{"Bearer s3cret"}, r.md[0].Get("authorization"))

		// A partial success is the collector's count of rejected points.
		r.rejected = 2
		res, err = x.export(context.Background(), msg)
		require.NoError(t, err)
		require.Equal(t, Result{Rejected: 2, Message: "too old"}, res)
	}
}

func TestGRPCErrors(t *testing.T) {
	msg, _ := request(t)
	for _, tc := range []struct {
		err    error
		status int
		class  push.Class
	}{
		{status.Error(codes.Unavailable, "overloaded"), 503, push.Retry},
		{status.Error(codes.ResourceExhausted, "slow down"), 429, push.Retry},
		{status.Error(codes.InvalidArgument, "bad: 100% wrong"), 400, push.Refused},
		{status.Error(codes.Internal, "bug"), 400, push.Refused},
		{status.Error(codes.Unauthenticated, "no token"), 401, push.Fatal},
		{status.Error(codes.Unimplemented, "no metrics here"), 404, push.Fatal},
	} {
		r, addr := startGRPC(t)
		r.fail = tc.err
		x, err := newExporter(ProtocolGRPC, addr, nil, false, 5*time.Second)
		require.NoError(t, err)
		_, err = x.export(context.Background(), msg)
		var se *push.StatusError
		require.True(t, errors.As(err, &se), "%v", err)
		require.Equal(t, tc.status, se.Status)
		st := status.Convert(tc.err)
		require.Equal(t, fmt.Sprintf("gRPC %s (%d): %s", grpcCodeName(int(st.Code())), st.Code(), st.Message()), se.Message)
		class, _ := push.Classify(err)
		require.Equal(t, tc.class, class)
	}

	// A gzip request to a server without gzip (grpc-go's answer): the
	// error says what to set.
	r, addr := startGRPC(t)
	r.fail = status.Error(codes.Unimplemented, `grpc: Decompressor is not installed for grpc-encoding "gzip"`)
	x, err := newExporter(ProtocolGRPC, addr, nil, true, 5*time.Second)
	require.NoError(t, err)
	_, err = x.export(context.Background(), sendable(t, msg, true))
	require.ErrorContains(t, err, `set compression = "none"`)

	// Nobody listening: a network error, retryable.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr = "http://" + lis.Addr().String()
	lis.Close()
	x, err = newExporter(ProtocolGRPC, addr, nil, false, 5*time.Second)
	require.NoError(t, err)
	_, err = x.export(context.Background(), msg)
	require.Error(t, err)
	class, _ := push.Classify(err)
	require.Equal(t, push.Retry, class)
	require.NotContains(t, err.Error(), "http://", "the URL is not repeated")

	// A server that accepts and never answers: the timeout.
	lis, err = net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer lis.Close()
	x, err = newExporter(ProtocolGRPC, "http://"+lis.Addr().String(), nil, false, 200*time.Millisecond)
	require.NoError(t, err)
	start := time.Now()
	_, err = x.export(context.Background(), msg)
	class, _ = push.Classify(err)
	require.Equal(t, push.Retry, class, "%v", err)
	require.Less(t, time.Since(start), 5*time.Second)
}

// TLS is verified: a collector whose certificate the system does not
// trust is refused, and trusted once its root is given.
func TestGRPCTLSVerified(t *testing.T) {
	msg, _ := request(t)
	r := &receiver{}
	srv := grpc.NewServer()
	colmetrics.RegisterMetricsServiceServer(srv, r)
	ts := httptest.NewUnstartedServer(srv)
	ts.EnableHTTP2 = true
	ts.StartTLS()
	defer ts.Close()
	x, err := newExporter(ProtocolGRPC, ts.URL, nil, false, 5*time.Second)
	require.NoError(t, err)
	_, err = x.export(context.Background(), msg)
	require.ErrorContains(t, err, "certificate")

	x, err = newExporter(ProtocolGRPC, ts.URL, nil, false, 5*time.Second)
	require.NoError(t, err)
	tr := x.client.Transport.(*http.Transport)
	tr.TLSClientConfig = &tls.Config{RootCAs: ts.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	_, err = x.export(context.Background(), msg)
	require.NoError(t, err)
	require.Len(t, r.requests, 1)
}

func TestHTTPExport(t *testing.T) {
	msg, want := request(t)
	var (
		mu      sync.Mutex
		got     []*colmetrics.ExportMetricsServiceRequest
		answer  = http.StatusOK
		headers http.Header
	)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		headers = r.Header.Clone()
		if r.URL.Path != "/v1/metrics" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "wrong path or type", http.StatusNotFound)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzipReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, _ := io.ReadAll(body)
		var req colmetrics.ExportMetricsServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		switch answer {
		case http.StatusOK:
			got = append(got, &req)
			out, _ := proto.Marshal(&colmetrics.ExportMetricsServiceResponse{PartialSuccess: &colmetrics.ExportMetricsPartialSuccess{RejectedDataPoints: 1}})
			w.Header().Set("Content-Type", "application/x-protobuf")
			_, _ = w.Write(out)
		case http.StatusServiceUnavailable:
			w.Header().Set("Retry-After", "7")
			http.Error(w, "busy", answer)
		default:
			st, _ := proto.Marshal(status.New(codes.InvalidArgument, "bad points").Proto())
			w.Header().Set("Content-Type", "application/x-protobuf")
			w.WriteHeader(answer)
			_, _ = w.Write(st)
		}
	}))
	defer ts.Close()
	for _, gz := range []bool{false, true} {
		x, err := newExporter(ProtocolHTTP, ts.URL, http.Header{"X-Tenant": {"g5k"}}, gz, 5*time.Second)
		require.NoError(t, err)
		res, err := x.export(context.Background(), sendable(t, msg, gz))
		require.NoError(t, err)
		require.Equal(t, Result{Rejected: 1}, res)
		require.Equal(t, "g5k", headers.Get("X-Tenant"))
	}
	require.Len(t, got, 2)
	b, _ := proto.Marshal(got[1])
	require.Empty(t, cmp.Diff(want, flatten(t, b), cmpopts.EquateNaNs()))

	x, err := newExporter(ProtocolHTTP, ts.URL+"/v1/metrics", nil, false, 5*time.Second)
	require.NoError(t, err)
	answer = http.StatusServiceUnavailable
	_, err = x.export(context.Background(), msg)
	var se *push.StatusError
	require.True(t, errors.As(err, &se))
	require.Equal(t, &push.StatusError{Status: 503, Message: "busy", RetryAfter: 7 * time.Second}, se)
	answer = http.StatusBadRequest
	_, err = x.export(context.Background(), msg)
	require.True(t, errors.As(err, &se))
	require.Equal(t, &push.StatusError{Status: 400, Message: "bad points"}, se)

	// A collector that refuses gzip: the error says what to set, and the
	// output stops (every batch would be refused).
	answer = http.StatusUnsupportedMediaType
	x, err = newExporter(ProtocolHTTP, ts.URL+"/v1/metrics", nil, true, 5*time.Second)
	require.NoError(t, err)
	_, err = x.export(context.Background(), sendable(t, msg, true))
	require.True(t, errors.As(err, &se))
	require.Equal(t, 415, se.Status)
	require.Contains(t, se.Message, `set compression = "none"`)
	class, _ := push.Classify(err)
	require.Equal(t, push.Fatal, class)
}

func TestNewExporterErrors(t *testing.T) {
	for _, tc := range []struct{ protocol, host, want string }{
		{ProtocolGRPC, "localhost:4317", "want http://host:port"},
		{ProtocolGRPC, "ftp://x", "want http://host:port"},
		{"thrift", "http://x:1", `protocol "thrift"`},
	} {
		_, err := newExporter(tc.protocol, tc.host, nil, false, time.Second)
		require.ErrorContains(t, err, tc.want)
		require.True(t, strings.Contains(err.Error(), tc.host) || strings.Contains(err.Error(), tc.protocol))
	}
}

func gzipReader(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }
