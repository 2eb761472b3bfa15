package promremotewrite

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/servertest"
	"github.com/alumet-go/alumet-agent/internal/testkit"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
	"github.com/alumet-go/alumet-agent/plugins/internal/push"
)

// history: 2 nodes × 3 ports... a few series of 50 Hz samples an hour ago
// (history, as kwollect-input delivers it), as compact points.
func history(t testing.TB, reg *measure.Registry, n int) (*measure.Buffer, map[string][]sample) {
	t.Helper()
	w, err := reg.Register(measure.Metric{Name: "wattmetre_power_watt", Unit: measure.Plain(measure.Watt), Type: measure.F64})
	require.NoError(t, err)
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	want := map[string][]sample{}
	buf := &measure.Buffer{}
	for _, node := range []string{"taurus-7", "taurus-8"} {
		s := &measure.Series{Metric: w, Resource: measure.Resource{Kind: "device_id", ID: node},
			Consumer: measure.Consumer{Kind: "device_origin", ID: "wattmetre1-port6"}, Attributes: []measure.Attribute{str("metric_id", "wattmetre_power_watt")}}
		for i := range n {
			ts := start.Add(time.Duration(i)*20*time.Millisecond + 468*time.Microsecond)
			v := 100 + float64(i%1000)/8
			buf.Compact = append(buf.Compact, measure.SeriesPoint{Series: s, Time: ts.UnixNano(), Value: measure.Float(v)})
			want[node] = append(want[node], sample{v, ts.UnixMilli()})
		}
	}
	return buf, want
}

func send(t *testing.T, u string, reg *measure.Registry, bufs ...*measure.Buffer) error {
	t.Helper()
	c := DefaultConfig()
	c.URL = u
	out, err := newOutput(c, reg, (&testkit.Logs{}).Logger(), push.Options{BatchPoints: 1000, InitialBackoff: time.Millisecond, CloseTimeout: 20 * time.Second})
	require.NoError(t, err)
	for _, b := range bufs {
		require.NoError(t, out.Write(context.Background(), b))
	}
	return out.Close()
}

// exported reads VictoriaMetrics' /api/v1/export JSON lines.
func exported(t *testing.T, b []byte) map[string][]sample {
	got := map[string][]sample{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var s struct {
			Metric     map[string]string
			Values     []float64
			Timestamps []int64
		}
		require.NoError(t, json.Unmarshal([]byte(line), &s))
		require.Equal(t, map[string]string{"__name__": "wattmetre_power_watt", "metric_id": "wattmetre_power_watt", "resource_kind": "device_id",
			"resource_id": s.Metric["resource_id"], "resource_consumer_kind": "device_origin", "resource_consumer_id": "wattmetre1-port6"}, s.Metric)
		for i := range s.Values {
			got[s.Metric["resource_id"]] = append(got[s.Metric["resource_id"]], sample{s.Values[i], s.Timestamps[i]})
		}
	}
	for _, v := range got {
		sort.Slice(v, func(i, j int) bool { return v[i].Ms < v[j].Ms })
	}
	return got
}

// VictoriaMetrics stores exactly the samples sent, with their own times.
func TestVictoriaMetrics(t *testing.T) {
	vm := servertest.VictoriaMetrics(t)
	reg := measure.NewRegistry()
	buf, want := history(t, reg, 3000)
	require.NoError(t, send(t, vm.URL+"/api/v1/write", reg, buf))
	require.Equal(t, want, exported(t, vm.VMExport(t, `{__name__="wattmetre_power_watt"}`)))
}

// Prometheus (its remote-write receiver, with an out-of-order window for
// history) stores them too: a range selector gives the raw samples.
func TestPrometheus(t *testing.T) {
	p := servertest.Prometheus(t, servertest.PrometheusOptions{})
	reg := measure.NewRegistry()
	buf, want := history(t, reg, 1500)
	require.NoError(t, send(t, p.URL+"/api/v1/write", reg, buf))
	var res struct {
		Data struct {
			Result []struct {
				Metric map[string]string
				Values [][2]any
			}
		}
	}
	q := url.Values{"query": {`wattmetre_power_watt[2h]`}, "time": {fmt.Sprint(time.Now().Unix())}}
	require.NoError(t, json.Unmarshal(p.Get(t, "/api/v1/query?"+q.Encode()), &res))
	got := map[string][]sample{}
	for _, r := range res.Data.Result {
		for _, v := range r.Values {
			var f float64
			_, err := fmt.Sscan(v[1].(string), &f)
			require.NoError(t, err)
			got[r.Metric["resource_id"]] = append(got[r.Metric["resource_id"]], sample{f, int64(v[0].(float64)*1000 + 0.5)})
		}
	}
	require.Equal(t, want, got)
}

// A receiver that refuses (Prometheus without an out-of-order window:
// "out of bounds" for history, a 400) drops the batches, counted as lost,
// with its message.
func TestRefusedAndDown(t *testing.T) {
	p := servertest.Prometheus(t, servertest.PrometheusOptions{OutOfOrderWindow: "0s"})
	reg := measure.NewRegistry()
	buf, _ := history(t, reg, 100)
	// A sample of now first (it sets the head), then history a day older.
	now := &measure.Buffer{Compact: []measure.SeriesPoint{{Series: buf.Compact[0].Series, Time: time.Now().UnixNano(), Value: measure.Float(1)}}}
	require.NoError(t, send(t, p.URL+"/api/v1/write", reg, now))
	for i := range buf.Compact {
		buf.Compact[i].Time -= int64(24 * time.Hour)
	}
	err := send(t, p.URL+"/api/v1/write", reg, buf)
	var le pipeline.LossError
	require.True(t, errors.As(err, &le), "%v", err)
	require.Equal(t, int64(200), le.LostPoints())

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	lis.Close()
	c := DefaultConfig()
	c.URL = "http://" + addr + "/api/v1/write"
	out, err := newOutput(c, reg, nil, push.Options{InitialBackoff: time.Millisecond, CloseTimeout: 200 * time.Millisecond})
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, out.Write(context.Background(), buf))
	require.Less(t, time.Since(start), time.Second)
	err = out.Close()
	require.True(t, errors.As(err, &le), "%v", err)
	require.Equal(t, int64(200), le.LostPoints())
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct{ toml, err string }{
		{"", ""},
		{`url = "https://vm.example.org/api/v1/write"` + "\nbearer_token = \"t\"", ""},
		{`url = "localhost:9090"`, "url"},
		{`url = "http://u:p@h/x"`, "url"},
		{`username = "u"`, "password"},
		{"username = \"u\"\npassword = \"p\"\nbearer_token = \"t\"", "bearer_token"},
		{`headers = { "a b" = "x" }`, "headers"},
		{`buffer_size = 10`, "buffer_size"},
	} {
		c := DefaultConfig()
		_, err := toml.Decode(tc.toml, c)
		require.NoError(t, err)
		if err := c.Validate(); tc.err == "" {
			require.NoError(t, err, tc.toml)
		} else {
			require.ErrorContains(t, err, tc.err+":", tc.toml)
		}
	}
}

func TestSampleConfig(t *testing.T) {
	var doc struct {
		Plugins struct {
			R *Config `toml:"prometheus-remote-write"`
		} `toml:"plugins"`
	}
	doc.Plugins.R = &Config{}
	md, err := toml.Decode(SampleConfig, &doc)
	require.NoError(t, err)
	require.Empty(t, md.Undecoded())
	require.Equal(t, DefaultConfig(), doc.Plugins.R)
	for _, k := range []string{"username", "password", "bearer_token", "headers", "batch_size", "flush_interval", "buffer_size", "timeout", "close_timeout"} {
		require.Contains(t, SampleConfig, "\n# "+k+" = ")
	}
}

// Credentials from *_file keys reach the receiver; they are never logged.
func TestCredentialFiles(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	tok := filepath.Join(dir, "tok")
	require.NoError(t, os.WriteFile(pw, []byte("s3cret-pw\n"), 0o600))
	require.NoError(t, os.WriteFile(tok, []byte("s3cret-tok\r\nignored"), 0o600))
	got := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Authorization")
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	reg := measure.NewRegistry()
	buf, _ := history(t, reg, 1)
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{Username: "alumet", PasswordFile: pw}, "Basic " + base64.StdEncoding.EncodeToString([]byte("alumet:s3cret-pw"))},
		{Config{BearerTokenFile: tok}, "Bearer s3cret-tok"},
	} {
		c := tc.c
		c.URL = srv.URL + "/api/v1/write"
		require.NoError(t, c.Validate())
		logs := &testkit.Logs{}
		out, err := newOutput(&c, reg, logs.Logger(), push.Options{})
		require.NoError(t, err)
		require.NoError(t, out.Write(context.Background(), buf))
		require.NoError(t, out.Close())
		require.Equal(t, tc.want, <-got)
		require.NotContains(t, strings.Join(logs.Lines(), "\n"), "s3cret")
	}
	c := Config{URL: srv.URL, BearerTokenFile: filepath.Join(dir, "missing")}
	_, err := newOutput(&c, reg, nil, push.Options{})
	require.ErrorContains(t, err, "bearer_token_file: ")
}
