package opentelemetry

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/alumet-go/alumet-agent/plugins/internal/push"
)

// Protocols of the exporter.
const (
	ProtocolGRPC = "grpc"          // OTLP/gRPC, as Alumet (collector port 4317)
	ProtocolHTTP = "http/protobuf" // OTLP/HTTP with binary protobuf (port 4318, path /v1/metrics)
)

const grpcExportPath = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"

// maxResponse bounds what is read of a response body.
const maxResponse = 1 << 20

// Result is what the collector said of a successful export: the points it
// rejected (a partial success), and its message about them.
type Result struct {
	Rejected int64
	Message  string
}

// exporter sends encoded ExportMetricsServiceRequests.
type exporter struct {
	protocol string
	url      string
	headers  http.Header
	client   *http.Client
	// gzip: the requests given to export are gzip members (the
	// encoder's FinishZ), sent with gzip's headers.
	gzip bool
}

// newExporter returns the exporter of collectorHost for protocol. TLS is
// verified (https:// uses the system's roots); gRPC over http:// is
// HTTP/2 without TLS (h2c), as collectors serve it on port 4317.
func newExporter(protocol, collectorHost string, headers http.Header, gz bool, timeout time.Duration) (*exporter, error) {
	u, err := url.Parse(collectorHost)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("collector_host %q: want http://host:port or https://host:port", collectorHost)
	}
	client := push.NewHTTPClient(timeout)
	tr := client.Transport.(*http.Transport)
	tr.ForceAttemptHTTP2 = true
	target := strings.TrimSuffix(u.String(), "/")
	switch protocol {
	case ProtocolGRPC:
		// gRPC needs HTTP/2: over TLS negotiated with ALPN, over plain TCP
		// with prior knowledge.
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetHTTP2(true)
		tr.Protocols.SetUnencryptedHTTP2(true)
		target = strings.TrimSuffix(target, grpcExportPath) + grpcExportPath
	case ProtocolHTTP:
		if !strings.HasSuffix(u.Path, "/v1/metrics") {
			target += "/v1/metrics"
		}
	default:
		return nil, fmt.Errorf("protocol %q: want %q or %q", protocol, ProtocolGRPC, ProtocolHTTP)
	}
	return &exporter{protocol: protocol, url: target, headers: headers, gzip: gz, client: client}, nil
}

// export sends one request (an encoded ExportMetricsServiceRequest). Its
// errors are push's: a *push.StatusError for a status (gRPC's mapped to
// HTTP's, as grpc-gateway does, so that push.Classify retries UNAVAILABLE
// and fails the output for UNAUTHENTICATED), a network error otherwise.
//
// framed is frameLen free bytes then the encoded request (gzipped, with
// gzip): gRPC's message header goes there, so that the request is not
// copied behind it.
func (x *exporter) export(ctx context.Context, framed []byte) (Result, error) {
	if len(framed) < frameLen {
		return Result{}, &push.PermanentError{Err: errors.New("export: no room for the frame")}
	}
	if x.protocol == ProtocolGRPC {
		return x.exportGRPC(ctx, framed)
	}
	return x.exportHTTP(ctx, framed[frameLen:])
}

// frameLen is the length of a gRPC message's header (a compressed flag
// and a 4-byte length).
const frameLen = 5

// request returns the request of body and the push.Body to Wait for before
// body is written again.
func (x *exporter) request(ctx context.Context, body []byte) (*http.Request, *push.Body, error) {
	req, b, err := push.NewRequest(ctx, http.MethodPost, x.url, body)
	if err != nil {
		return nil, nil, err
	}
	for k, vs := range x.headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("User-Agent", "alumet-agent-opentelemetry/"+Version)
	return req, b, nil
}

func (x *exporter) exportGRPC(ctx context.Context, framed []byte) (Result, error) {
	body := framed
	body[0] = 0
	if x.gzip {
		body[0] = 1 // a compressed message
	}
	binary.BigEndian.PutUint32(body[1:frameLen], uint32(len(body)-frameLen))
	req, b, err := x.request(ctx, body)
	if err != nil {
		return Result{}, err
	}
	defer b.Wait()
	req.Header.Set("Content-Type", "application/grpc+proto")
	req.Header.Set("TE", "trailers")
	if x.gzip {
		req.Header.Set("grpc-encoding", "gzip")
		req.Header.Set("grpc-accept-encoding", "gzip")
	}
	resp, err := x.client.Do(req)
	if err != nil {
		return Result{}, redactURL(err)
	}
	defer resp.Body.Close()
	data, rerr := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if resp.StatusCode != http.StatusOK {
		// Not a gRPC answer (a proxy's): HTTP's status decides.
		return Result{}, httpError(resp, data)
	}
	// The status is in the trailers, or in the headers of a
	// "Trailers-Only" response.
	st, stMsg := resp.Trailer.Get("grpc-status"), resp.Trailer.Get("grpc-message")
	if st == "" {
		st, stMsg = resp.Header.Get("grpc-status"), resp.Header.Get("grpc-message")
	}
	if rerr != nil && st == "" {
		return Result{}, fmt.Errorf("reading the response: %w", rerr)
	}
	code, err := strconv.Atoi(st)
	if err != nil {
		return Result{}, &push.StatusError{Status: http.StatusBadGateway, Message: "the collector's answer has no grpc-status"}
	}
	if code != 0 {
		msg, _ := url.PathUnescape(stMsg)
		m := fmt.Sprintf("gRPC %s (%d)", grpcCodeName(code), code)
		if msg = trim(msg); msg != "" {
			m += ": " + msg
		}
		if x.gzip && code == 12 && strings.Contains(strings.ToLower(msg), "compress") {
			m += gzipHint
		}
		return Result{}, &push.StatusError{Status: grpcHTTPStatus(code), Message: m,
			RetryAfter: push.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
	if len(data) < 5 {
		return Result{}, nil // an empty response message
	}
	n := binary.BigEndian.Uint32(data[1:5])
	if int(n) > len(data)-5 {
		return Result{}, nil // cut: the export itself succeeded
	}
	reply := data[5 : 5+n]
	if data[0] == 1 {
		// Compressed with the response's grpc-encoding (ours: gzip).
		zr, err := gzip.NewReader(bytes.NewReader(reply))
		if err != nil || resp.Header.Get("grpc-encoding") != "gzip" {
			return Result{}, nil
		}
		if reply, err = io.ReadAll(io.LimitReader(zr, maxResponse)); err != nil {
			return Result{}, nil
		}
	}
	return partialSuccess(reply), nil
}

// gzipHint ends the error of a collector that refuses gzip.
const gzipHint = ` (the collector does not accept gzip: set compression = "none")`

func (x *exporter) exportHTTP(ctx context.Context, msg []byte) (Result, error) {
	req, b, err := x.request(ctx, msg)
	if err != nil {
		return Result{}, err
	}
	defer b.Wait()
	req.Header.Set("Content-Type", "application/x-protobuf")
	if x.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := x.client.Do(req)
	if err != nil {
		return Result{}, redactURL(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if resp.StatusCode/100 != 2 {
		err := httpError(resp, data)
		var se *push.StatusError
		if x.gzip && errors.As(err, &se) && se.Status == http.StatusUnsupportedMediaType {
			se.Message += gzipHint
		}
		return Result{}, err
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-protobuf") {
		return Result{}, nil
	}
	return partialSuccess(data), nil
}

// httpError is the error of an HTTP answer other than success (OTLP/HTTP
// says 429, 502, 503 and 504 are retried, with Retry-After honoured:
// push.Classify does so).
func httpError(resp *http.Response, body []byte) error {
	return &push.StatusError{Status: resp.StatusCode, Message: trim(statusMessage(resp, body)),
		RetryAfter: push.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
}

// statusMessage is the message of a google.rpc.Status body (OTLP/HTTP's
// error body), or the body as text.
func statusMessage(resp *http.Response, body []byte) string {
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-protobuf") {
		if m, ok := stringField(body, 2); ok { // google.rpc.Status.message
			return m
		}
	}
	return string(body)
}

// partialSuccess reads ExportMetricsServiceResponse.partial_success.
func partialSuccess(b []byte) Result {
	var r Result
	ps, ok := bytesField(b, 1)
	if !ok {
		return r
	}
	for len(ps) > 0 {
		num, typ, n := protowire.ConsumeTag(ps)
		if n < 0 {
			return r
		}
		ps = ps[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, m := protowire.ConsumeVarint(ps)
			if m < 0 {
				return r
			}
			r.Rejected = int64(v)
			ps = ps[m:]
		case num == 2 && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(ps)
			if m < 0 {
				return r
			}
			r.Message = trim(string(v))
			ps = ps[m:]
		default:
			m := protowire.ConsumeFieldValue(num, typ, ps)
			if m < 0 {
				return r
			}
			ps = ps[m:]
		}
	}
	return r
}

func bytesField(b []byte, want protowire.Number) ([]byte, bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
		if num == want && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			return v, m >= 0
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return nil, false
		}
		b = b[m:]
	}
	return nil, false
}

func stringField(b []byte, want protowire.Number) (string, bool) {
	v, ok := bytesField(b, want)
	return string(v), ok
}

// gRPC status codes (google.golang.org/grpc/codes) the exporter names.
var grpcCodes = map[int]string{1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND",
	6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION", 10: "ABORTED",
	11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE", 15: "DATA_LOSS", 16: "UNAUTHENTICATED"}

func grpcCodeName(c int) string {
	if n, ok := grpcCodes[c]; ok {
		return n
	}
	return "code"
}

// grpcHTTPStatus maps a gRPC code to an HTTP status for push.Classify,
// with OTLP/gRPC's rules: CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED,
// ABORTED, OUT_OF_RANGE, UNAVAILABLE and DATA_LOSS are retried;
// UNAUTHENTICATED, PERMISSION_DENIED, NOT_FOUND and UNIMPLEMENTED (a wrong
// token or endpoint) fail the output; the others drop the batch.
func grpcHTTPStatus(c int) int {
	switch c {
	case 1, 10, 11, 14, 15:
		return http.StatusServiceUnavailable
	case 4:
		return http.StatusGatewayTimeout
	case 8:
		return http.StatusTooManyRequests
	case 5, 12:
		return http.StatusNotFound
	case 7:
		return http.StatusForbidden
	case 16:
		return http.StatusUnauthorized
	}
	return http.StatusBadRequest // INVALID_ARGUMENT, FAILED_PRECONDITION, ALREADY_EXISTS, UNKNOWN, INTERNAL
}

func trim(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// redactURL drops the URL from a client error (*url.Error): it names the
// collector already known from the config, and could carry credentials
// if a user put them in collector_host.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
