package influxdb

import (
	"context"
	"encoding/base64"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/config"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
	"github.com/alumet-go/alumet-agent/plugin"
	"github.com/alumet-go/alumet-agent/plugins/internal/push"
)

// request is what the fake server saw of one request.
type request struct {
	Method, Path string
	Query        map[string]string
	Header       map[string]string
	Body         string // decompressed
}

// fake is an InfluxDB stand-in that records requests and answers with
// the statuses of script in turn (then 204).
type fake struct {
	mu     sync.Mutex
	reqs   []request
	script []int
	srv    *httptest.Server
}

func newFake(t *testing.T, script ...int) *fake {
	f := &fake{script: script}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		body := string(b)
		if r.Header.Get("Content-Encoding") == "gzip" {
			body = gunzip(t, b)
		}
		q := map[string]string{}
		for k, v := range r.URL.Query() {
			q[k] = strings.Join(v, ",")
		}
		h := map[string]string{}
		for _, k := range []string{"Authorization", "Content-Type", "Accept", "Content-Encoding"} {
			if v := r.Header.Get(k); v != "" {
				h[k] = v
			}
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, request{Method: r.Method, Path: r.URL.Path, Query: q, Header: h, Body: body})
		code := http.StatusNoContent
		if len(f.script) > 0 {
			code, f.script = f.script[0], f.script[1:]
		}
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		if code >= 400 {
			// A server echoing the request's credentials must not get them logged.
			_, _ = io.WriteString(w, `{"code":"invalid","message":"bad request, Authorization: `+r.Header.Get("Authorization")+`"}`)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.reqs...)
}

const lineP = `wattmetre_power_watt,resource_kind=device_id,resource_id=taurus-7,resource_consumer_kind=device_origin,resource_consumer_id=wattmetre1-port6 metric_id="wattmetre_power_watt",value=112.73 1795556357000000000` + "\n"

func TestOutputRequests(t *testing.T) {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("alumet:hunter2-pass"))
	v2h := map[string]string{"Authorization": "Token tok-123456", "Content-Type": "text/plain; charset=utf-8", "Accept": "application/json"}
	gz := func(h map[string]string) map[string]string {
		out := map[string]string{"Content-Encoding": "gzip"}
		for k, v := range h {
			out[k] = v
		}
		return out
	}
	v1h := map[string]string{"Authorization": basic, "Content-Type": "text/plain; charset=utf-8", "Accept": "application/json"}
	for _, tc := range []struct {
		name  string
		cfg   func(c *Config)
		path  string
		query map[string]string
		probe map[string]string // headers of the empty probe write
		hdr   map[string]string
	}{
		{"v2 with gzip", func(c *Config) {}, "/api/v2/write",
			map[string]string{"org": "my org", "bucket": "alumet", "precision": "ns"}, v2h, gz(v2h)},
		{"v2 without gzip", func(c *Config) { c.Gzip = new(bool) }, "/api/v2/write",
			map[string]string{"org": "my org", "bucket": "alumet", "precision": "ns"}, v2h, v2h},
		{"v1 with basic auth and rp", func(c *Config) {
			c.API, c.Database, c.RetentionPolicy, c.Username, c.Password = APIv1, "alumet", "week", "alumet", "hunter2-pass"
			c.Org, c.Bucket, c.Token = Placeholder, Placeholder, Placeholder
		}, "/write", map[string]string{"db": "alumet", "rp": "week", "precision": "ns"}, v1h, gz(v1h)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			c := DefaultConfig()
			c.Host, c.Token, c.Org, c.Bucket = f.srv.URL+"/", "tok-123456", "my org", "alumet"
			tc.cfg(c)
			require.NoError(t, c.Validate())
			reg := measure.NewRegistry()
			id := register(t, reg, "wattmetre_power_watt", measure.F64)
			log, logs := newLogger()
			out, err := open(context.Background(), c, reg, log, plugin.ModeRun, nil, nil)
			require.NoError(t, err)
			buf := &measure.Buffer{Points: []measure.Point{pointP(id), pointP(id)}}
			buf.Points[1].Value = measure.Float(math.NaN())
			require.NoError(t, out.Write(context.Background(), buf))
			require.NoError(t, out.Write(context.Background(), compactOf(&measure.Buffer{Points: []measure.Point{pointP(id)}})))
			require.NoError(t, out.Write(context.Background(), &measure.Buffer{}))
			require.NoError(t, out.Close())
			want := []request{
				{Method: "POST", Path: tc.path, Query: tc.query, Header: tc.probe, Body: ""},
				{Method: "POST", Path: tc.path, Query: tc.query, Header: tc.hdr, Body: lineP + lineP},
			}
			require.Empty(t, cmp.Diff(want, f.requests()))
			require.Equal(t, int64(1), out.SkippedNaN())
			require.Equal(t, push.Stats{Appended: 2, Sent: 2, Requests: 1}, out.Stats())
			require.Contains(t, logs.String(), "1 point(s) with a NaN or infinite value not written")
			require.Contains(t, logs.String(), "InfluxDb received an empty MeasurementBuffer")
			require.NotContains(t, logs.String(), "tok-123456")
			require.NotContains(t, logs.String(), "hunter2-pass")
		})
	}
}

// A 401 at start refuses to start, naming host, org and bucket but not the
// token; a server that does not answer is only a warning.
func TestOpenProbe(t *testing.T) {
	reg := measure.NewRegistry()
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokFile, []byte("file-token-98765\n"), 0o600))
	t.Run("401", func(t *testing.T) {
		f := newFake(t, 401)
		c := DefaultConfig()
		c.Host, c.Token, c.TokenFile, c.Org, c.Bucket = f.srv.URL, "", tokFile, "o", "b"
		log, logs := newLogger()
		_, err := open(context.Background(), c, reg, log, plugin.ModeRun, nil, nil)
		require.Error(t, err)
		require.Contains(t, err.Error(), `cannot write to InfluxDB (host `+f.srv.URL+`, org "o", bucket "b"): HTTP 401 Unauthorized`)
		require.NotContains(t, err.Error()+logs.String(), "file-token-98765")
		require.Equal(t, "Token file-token-98765", f.requests()[0].Header["Authorization"])
	})
	t.Run("down", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		c := DefaultConfig()
		c.Host, c.Token, c.Org, c.Bucket = url, "tok-abcdef", "o", "b"
		c.CloseTimeout = config.Duration(50 * time.Millisecond)
		log, logs := newLogger()
		out, err := open(context.Background(), c, reg, log, plugin.ModeRun, nil, nil)
		require.NoError(t, err)
		require.Contains(t, logs.String(), "does not answer yet")
		id := register(t, reg, "wattmetre_power_watt", measure.F64)
		require.NoError(t, out.Write(context.Background(), &measure.Buffer{Points: []measure.Point{pointP(id)}}))
		err = out.Close()
		var le pipeline.LossError
		require.ErrorAs(t, err, &le)
		require.Equal(t, int64(1), le.LostPoints())
		require.NotContains(t, logs.String()+err.Error(), "tok-abcdef")
	})
}

// A 400 on a batch loses that batch only, with the server's message in an
// ERROR (the echoed token masked); a later 401 fails the output, reported
// to the pipeline.
func TestOutputRefusals(t *testing.T) {
	f := newFake(t, 204, 400, 204, 401)
	c := DefaultConfig()
	c.Host, c.Token, c.Org, c.Bucket = f.srv.URL, "tok-zyxwvu", "o", "b"
	c.BatchSize = 1
	reg := measure.NewRegistry()
	id := register(t, reg, "wattmetre_power_watt", measure.F64)
	log, logs := newLogger()
	out, err := open(context.Background(), c, reg, log, plugin.ModeRun, nil, nil)
	require.NoError(t, err)
	reported := make(chan error, 1)
	out.ReportFailuresTo(func(err error) { reported <- err })
	for range 3 {
		require.NoError(t, out.Write(context.Background(), &measure.Buffer{Points: []measure.Point{pointP(id)}}))
	}
	var rerr error
	select {
	case rerr = <-reported:
	case <-time.After(10 * time.Second):
		t.Fatal("the 401 was not reported")
	}
	var le pipeline.LossError
	require.ErrorAs(t, rerr, &le)
	err = out.Write(context.Background(), &measure.Buffer{Points: []measure.Point{pointP(id)}})
	require.ErrorAs(t, err, &le)
	err = out.Close()
	require.ErrorAs(t, err, &le)
	require.Equal(t, int64(3), le.LostPoints(), err.Error())
	require.Contains(t, logs.String(), "HTTP 400 Bad Request")
	require.Contains(t, logs.String(), "Authorization: Token xxxxx")
	require.NotContains(t, logs.String()+err.Error(), "tok-zyxwvu")
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(*Config)
		err  string
	}{
		{"defaults", func(*Config) {}, ""},
		{"bad host", func(c *Config) { c.Host = "localhost:8086" }, "host: must be an http:// or https:// URL"},
		{"host with a query", func(c *Config) { c.Host = "http://h/?x=1" }, "host: must be a base URL"},
		{"attributes_as", func(c *Config) { c.AttributesAs = "Tag" }, `attributes_as: must be "field" or "tag", got "Tag"`},
		{"api", func(c *Config) { c.API = "v3" }, `api: must be "v2" or "v1"`},
		{"v1 without database", func(c *Config) { c.API = APIv1 }, "database: must be set"},
		{"database in v2", func(c *Config) { c.Database = "x" }, "database: is for api"},
		{"token and token_file", func(c *Config) { c.Token, c.TokenFile = "t", "f" }, "token_file: token and token_file"},
		{"password without username", func(c *Config) { c.API, c.Database, c.Password = APIv1, "d", "p" }, "username: must be set"},
		{"batch_size", func(c *Config) { c.BatchSize = -1 }, "batch_size: must be between"},
		{"buffer_size", func(c *Config) { c.BufferSize = 10 }, "buffer_size: must be at least"},
		{"v1 ok", func(c *Config) { c.API, c.Database, c.Username, c.PasswordFile = APIv1, "d", "u", "f" }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.cfg(c)
			err := c.Validate()
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.err)
		})
	}
}

// The keys are Alumet's, in Alumet's order, then the Go-only ones.
func TestConfigKeys(t *testing.T) {
	var keys []string
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			if f.Anonymous {
				walk(f.Type) // push.Delivery, flattened
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			keys = append(keys, name)
		}
	}
	walk(reflect.TypeFor[Config]())
	require.Equal(t, []string{"host", "token", "org", "bucket", "attributes_as", "attributes_as_tags", "attributes_as_fields",
		"api", "database", "retention_policy", "username", "password", "token_file", "password_file", "gzip",
		"batch_size", "flush_interval", "buffer_size", "when_full", "timeout", "close_timeout"}, keys)
}

// sample.toml decodes to the defaults and documents every key; the
// defaults encode to Alumet's keys only.
func TestSampleConfig(t *testing.T) {
	var doc struct {
		Plugins struct {
			Influx *Config `toml:"influxdb"`
		} `toml:"plugins"`
	}
	doc.Plugins.Influx = DefaultConfig()
	doc.Plugins.Influx.Host = "changed"
	md, err := toml.Decode(SampleConfig, &doc)
	require.NoError(t, err)
	require.Empty(t, md.Undecoded())
	require.Equal(t, DefaultConfig(), doc.Plugins.Influx)
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("toml"), ",")
		require.Contains(t, SampleConfig, name+" = ", name)
	}
	var sb strings.Builder
	require.NoError(t, toml.NewEncoder(&sb).Encode(DefaultConfig()))
	require.Equal(t, `host = "http://localhost:8086"
token = "FILL ME"
org = "FILL ME"
bucket = "FILL ME"
attributes_as = "field"
`, sb.String())
	// The generated section is disabled.
	require.True(t, Factory().GeneratedOff)
}

func TestDecodeGoOnlyKeys(t *testing.T) {
	c := DefaultConfig()
	md, err := toml.Decode(`api = "v1"
database = "alumet"
gzip = false
batch_size = 100
flush_interval = "250ms"
close_timeout = "3s"
timeout = "2s"
buffer_size = 1048576
`, c)
	require.NoError(t, err)
	require.Empty(t, md.Undecoded())
	require.NoError(t, c.Validate())
	o := c.queueOptions(plugin.ModeRun)
	require.Equal(t, 100, o.BatchPoints)
	require.Equal(t, 250*time.Millisecond, o.FlushInterval)
	require.Equal(t, 3*time.Second, o.CloseTimeout)
	require.Equal(t, int64(1<<20), o.BufferBytes)
	require.False(t, c.gzip())
	require.Equal(t, 2*time.Second, c.RequestTimeout())
}
