package opentelemetry

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/alumet-go/alumet-agent/internal/testkit"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
	"github.com/alumet-go/alumet-agent/plugins/internal/push"
)

func received(t *testing.T, r *receiver) []wantPoint {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []wantPoint
	for _, req := range r.requests {
		b, err := proto.Marshal(req)
		require.NoError(t, err)
		out = append(out, flatten(t, b)...)
	}
	return out
}

func testOutput(t *testing.T, addr string, reg *measure.Registry, logs *testkit.Logs, o push.Options) *Output {
	t.Helper()
	c := DefaultConfig()
	c.CollectorHost = addr
	if o.InitialBackoff == 0 {
		o.InitialBackoff = time.Millisecond
	}
	if o.CloseTimeout == 0 {
		o.CloseTimeout = 5 * time.Second
	}
	out, err := newOutput(c, reg, logs.Logger(), o)
	require.NoError(t, err)
	return out
}

// Points and compact points reach the collector, every one with its own
// time, grouped by metric in each request, batches of batch_size.
func TestOutputDelivers(t *testing.T) {
	r, addr := startGRPC(t)
	reg := measure.NewRegistry()
	ps := testPoints(t, reg)
	out := testOutput(t, addr, reg, &testkit.Logs{}, push.Options{BatchPoints: 2})
	s := &measure.Series{Metric: ps[0].Metric, Resource: ps[0].Resource, Consumer: ps[0].Consumer, Attributes: ps[0].Attributes}
	var compact []measure.SeriesPoint
	for i := range 5 {
		compact = append(compact, measure.SeriesPoint{Series: s, Time: ps[0].Timestamp.UnixNano() + int64(i+1)*20e6, Value: measure.Float(float64(i))})
	}
	require.NoError(t, out.Write(context.Background(), &measure.Buffer{Points: ps, Compact: compact}))
	require.NoError(t, out.Write(context.Background(), &measure.Buffer{}))
	require.NoError(t, out.Close())
	got := received(t, r)
	require.Len(t, got, len(ps)+len(compact))
	times := map[uint64]bool{}
	for _, p := range got {
		times[p.Time] = true
	}
	for _, p := range ps {
		require.True(t, times[uint64(p.Timestamp.UnixNano())])
	}
	for _, p := range compact {
		require.True(t, times[uint64(p.Time)])
	}
	r.mu.Lock()
	require.Len(t, r.requests, 4, "8 points in batches of 2")
	r.mu.Unlock()
}

// No collector: Write never blocks, and Close gives up at close_timeout
// with every point counted as lost.
func TestOutputCollectorDown(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := "http://" + lis.Addr().String()
	lis.Close()
	reg := measure.NewRegistry()
	ps := testPoints(t, reg)
	logs := &testkit.Logs{}
	out := testOutput(t, addr, reg, logs, push.Options{CloseTimeout: 300 * time.Millisecond})
	start := time.Now()
	for range 100 {
		require.NoError(t, out.Write(context.Background(), &measure.Buffer{Points: ps}))
	}
	require.Less(t, time.Since(start), time.Second, "Write does not wait for the collector")
	err = out.Close()
	var le pipeline.LossError
	require.True(t, errors.As(err, &le), "%v", err)
	require.Equal(t, int64(100*len(ps)), le.LostPoints())
	require.Contains(t, logs.Text("ERROR"), "not delivered")
}

// A partial success (points rejected by the collector) is a loss.
func TestOutputPartialSuccess(t *testing.T) {
	r, addr := startGRPC(t)
	r.rejected = 1
	reg := measure.NewRegistry()
	ps := testPoints(t, reg)
	logs := &testkit.Logs{}
	out := testOutput(t, addr, reg, logs, push.Options{})
	require.NoError(t, out.Write(context.Background(), &measure.Buffer{Points: ps}))
	err := out.Close()
	var le pipeline.LossError
	require.True(t, errors.As(err, &le), "%v", err)
	require.Equal(t, int64(1), le.LostPoints())
	require.Contains(t, logs.Text("ERROR"), "the collector rejected 1 of 3 points: too old")
}

// UNAUTHENTICATED fails the output for good, reported to the pipeline,
// and the token is never in the log.
func TestOutputUnauthenticated(t *testing.T) {
	r, addr := startGRPC(t)
	r.fail = status.Error(codes.Unauthenticated, "bad token")
	reg := measure.NewRegistry()
	ps := testPoints(t, reg)
	logs := &testkit.Logs{}
	c := DefaultConfig()
	c.CollectorHost = addr
	c.Headers = map[string]string{"authorization": "Bearer s3cret-t0ken"}
	out, err := newOutput(c, reg, logs.Logger(), push.Options{InitialBackoff: time.Millisecond})
	require.NoError(t, err)
	reported := make(chan error, 1)
	out.ReportFailuresTo(func(err error) { reported <- err })
	require.NoError(t, out.Write(context.Background(), &measure.Buffer{Points: ps}))
	select {
	case err := <-reported:
		require.ErrorContains(t, err, "UNAUTHENTICATED")
	case <-time.After(10 * time.Second):
		t.Fatal("the refusal was not reported")
	}
	require.Error(t, out.Close())
	require.Equal(t, []string{"Bearer s3cret-t0ken"}, r.md[0].Get("authorization"))
	require.NotContains(t, strings.Join(logs.Lines(), "\n"), "s3cret")
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct{ toml, err string }{
		{"", ""},
		{`protocol = "http/protobuf"` + "\ncollector_host = \"https://otel.example.org:4318\"", ""},
		{`collector_host = "localhost:4317"`, "collector_host"},
		{`protocol = "thrift"`, "protocol"},
		{`compression = "zstd"`, "compression"},
		{`headers = { "bad name" = "x" }`, "headers"},
		{`batch_size = -1`, "batch_size"},
	} {
		c := DefaultConfig()
		_, err := toml.Decode(tc.toml, c)
		require.NoError(t, err)
		err = c.Validate()
		if tc.err == "" {
			require.NoError(t, err, tc.toml)
		} else {
			require.ErrorContains(t, err, tc.err+":", tc.toml)
		}
	}
}

// headers_file adds its "Name: value" lines to headers; its errors name
// the file and the line, never a value.
func TestHeadersFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
		return p
	}
	good := write("good", "# the collector's token\nauthorization: Bearer s3cret-t0ken\n\nX-Scope-OrgID:  g5k \n")
	for _, tc := range []struct {
		name    string
		headers map[string]string
		file    string
		want    map[string][]string
		err     string
	}{
		{"lines, comments and blanks", map[string]string{"x-tenant": "a"}, good,
			map[string][]string{"Authorization": {"Bearer s3cret-t0ken"}, "X-Scope-Orgid": {"g5k"}, "X-Tenant": {"a"}}, ""},
		{"a header in both", map[string]string{"Authorization": "x"}, good, nil, "Authorization is in headers too"},
		{"a line without a colon", nil, write("bad", "Authorization: a\nBearer s3cret-t0ken\n"), nil, "bad, line 2: want \"Name: value\""},
		{"empty", nil, write("empty", "# nothing\n"), nil, "no header in it"},
		{"missing", nil, filepath.Join(dir, "none"), nil, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Headers, c.HeadersFile = tc.headers, tc.file
			h, err := c.header()
			if tc.err != "" {
				require.ErrorContains(t, err, "headers_file: ")
				require.ErrorContains(t, err, tc.err)
				require.NotContains(t, err.Error(), "s3cret")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, h)
		})
	}
}

func TestSampleConfig(t *testing.T) {
	var doc struct {
		Plugins struct {
			O *Config `toml:"opentelemetry"`
		} `toml:"plugins"`
	}
	doc.Plugins.O = DefaultConfig()
	doc.Plugins.O.Suffix = "x" // set back by the sample
	md, err := toml.Decode(SampleConfig, &doc)
	require.NoError(t, err)
	require.Empty(t, md.Undecoded())
	require.Equal(t, DefaultConfig(), doc.Plugins.O)
	for _, k := range []string{"collector_host", "prefix", "suffix", "use_unit_display_name", "add_attributes_to_labels"} {
		require.Contains(t, SampleConfig, "\n"+k+" = ")
	}
	for _, k := range []string{"protocol", "headers", "headers_file", "compression", "batch_size", "flush_interval", "buffer_size", "timeout", "close_timeout"} {
		require.Contains(t, SampleConfig, "\n# "+k+" = ")
	}
	// Alumet's keys only in a generated section.
	var sb strings.Builder
	require.NoError(t, toml.NewEncoder(&sb).Encode(DefaultConfig()))
	require.Equal(t, "collector_host = \"http://localhost:4317\"\nprefix = \"\"\nsuffix = \"_alumet\"\nuse_unit_display_name = true\nadd_attributes_to_labels = true\n", sb.String())
}
