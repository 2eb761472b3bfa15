package e2e

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	colmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip" // the receiver accepts gzip, as collectors do
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an in-process collector on the official gRPC server and
// OTLP definitions.
type otlpReceiver struct {
	colmetrics.UnimplementedMetricsServiceServer
	mu   sync.Mutex
	rows []string // "<time RFC 3339>;<value>;<resource_id>;<consumer_id>", as the CSV has them
}

func (r *otlpReceiver) Export(_ context.Context, req *colmetrics.ExportMetricsServiceRequest) (*colmetrics.ExportMetricsServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rm := range req.ResourceMetrics {
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name != "wattmetre_power_watt_alumet" || m.Unit != "W" {
					continue
				}
				for _, dp := range m.GetGauge().DataPoints {
					attrs := map[string]string{}
					for _, a := range dp.Attributes {
						attrs[a.Key] = a.Value.GetStringValue()
					}
					ts := time.Unix(0, int64(dp.TimeUnixNano)).UTC().Format(time.RFC3339Nano)
					r.rows = append(r.rows, fmt.Sprintf("%s;%s;%s;%s", ts, strconv.FormatFloat(dp.GetAsDouble(), 'f', -1, 64),
						attrs["resource_id"], attrs["resource_consumer_id"]))
				}
			}
		}
	}
	return &colmetrics.ExportMetricsServiceResponse{}, nil
}

// serveOTLPHTTP serves r over OTLP/HTTP (protobuf, gzip or not) on
// 127.0.0.1, decoding with the official definitions.
func serveOTLPHTTP(t *testing.T, r *otlpReceiver) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body io.Reader = req.Body
		if req.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		var m colmetrics.ExportMetricsServiceRequest
		if err == nil {
			err = proto.Unmarshal(b, &m)
		}
		if req.URL.Path != "/v1/metrics" || req.Header.Get("Content-Type") != "application/x-protobuf" || err != nil {
			http.Error(w, fmt.Sprintf("%s %s: %v", req.URL.Path, req.Header.Get("Content-Type"), err), http.StatusBadRequest)
			return
		}
		resp, _ := r.Export(req.Context(), &m)
		out, _ := proto.Marshal(resp)
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

// TestOpenTelemetryOutput: exec with csv and opentelemetry sends every
// CSV row to the collector as a data point with its own Kwollect time,
// over gRPC and OTLP/HTTP, gzip-compressed (by default) or not.
func TestOpenTelemetryOutput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, keys string
		http       bool
	}{
		{"grpc, gzip (the default)", "", false},
		{"grpc, uncompressed (Alumet's)", `compression = "none"`, false},
		{"http/protobuf, gzip", `protocol = "http/protobuf"`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &otlpReceiver{}
			var host string
			if tc.http {
				host = serveOTLPHTTP(t, r)
			} else {
				lis, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(t, err)
				srv := grpc.NewServer()
				colmetrics.RegisterMetricsServiceServer(srv, r)
				go func() { _ = srv.Serve(lis) }()
				t.Cleanup(srv.Stop)
				host = "http://" + lis.Addr().String()
			}

			api := startEmulator(t, "--lag", "0s")
			dir := t.TempDir()
			cfg := seedConfig("", "", api) + fmt.Sprintf(`
[plugins.csv]
output_path = "out.csv"

[plugins.opentelemetry]
collector_host = %q
%s
`, host, tc.keys)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "alumet-config.toml"), []byte(cfg), 0o600))
			res := runAgent(t, dir, nil, "--plugins", "csv,opentelemetry,kwollect-input", "exec", "--", "sleep", "1")
			require.Equal(t, 0, res.code, res.stderr)
			checkCSV(t, filepath.Join(dir, "out.csv"), res.stderr, 1)

			var want []string
			for _, row := range readLines(t, filepath.Join(dir, "out.csv"))[1:] {
				c := strings.Split(row, ";")
				want = append(want, strings.Join([]string{c[1], c[2], c[4], c[6]}, ";"))
			}
			r.mu.Lock()
			got := append([]string(nil), r.rows...)
			r.mu.Unlock()
			sort.Strings(want)
			sort.Strings(got)
			require.Equal(t, want, got)
		})
	}
}
