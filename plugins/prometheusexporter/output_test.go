package prometheusexporter

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/testkit"
	"github.com/alumet-go/alumet-agent/measure"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// checkGolden compares got with testdata/<name>, or rewrites it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	testkit.Golden(t, name, got, *update)
}

func str(k, v string) measure.Attribute { return measure.Attribute{Key: k, Value: measure.String(v)} }

// clock is a settable clock for the exporter.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// P is the spec's point: wattmetre_power_watt 112.73 on taurus-7 at
// 2026-11-24T21:39:17Z.
const pTime = 1795556357000000000

func testExporter(t testing.TB, cfg *Config) (*Exporter, *measure.Registry, *clock) {
	t.Helper()
	require.NoError(t, cfg.Validate())
	reg := measure.NewRegistry()
	c := &clock{t: time.Unix(0, pTime+15e9)}
	return newExporter(cfg, reg, slog.New(slog.DiscardHandler), c.now), reg, c
}

func register(t testing.TB, reg *measure.Registry, m measure.Metric) measure.MetricID {
	t.Helper()
	id, err := reg.Register(m)
	require.NoError(t, err)
	return id
}

func wattmetre(t testing.TB, reg *measure.Registry) measure.MetricID {
	return register(t, reg, measure.Metric{Name: "wattmetre_power_watt", Unit: measure.Plain(measure.Watt), Type: measure.F64,
		Description: "Power consumption of the node reported by the wattmetre"})
}

func pPoint(id measure.MetricID, node string, ns int64, v float64) measure.Point {
	return measure.Point{Metric: id, Timestamp: time.Unix(0, ns).UTC(), Value: measure.Float(v),
		Resource: measure.Resource{Kind: "device_id", ID: node}, Consumer: measure.Consumer{Kind: "device_origin", ID: "wattmetre1-port6"},
		Attributes: []measure.Attribute{str("metric_id", "wattmetre_power_watt")}}
}

func render(x *Exporter, om bool) string { return string(x.Render(nil, om)) }

// The spec's point P gives Alumet's exact sample line.
func TestAlumetSampleLine(t *testing.T) {
	x, reg, _ := testExporter(t, DefaultConfig())
	id := wattmetre(t, reg)
	require.NoError(t, x.Write(context.Background(), &measure.Buffer{Points: []measure.Point{pPoint(id, "taurus-7", pTime, 112.73)}}))
	require.Equal(t, `# HELP wattmetre_power_watt_alumet_watts Power consumption of the node reported by the wattmetre.
# TYPE wattmetre_power_watt_alumet_watts gauge
# UNIT wattmetre_power_watt_alumet_watts watts
wattmetre_power_watt_alumet_watts{metric_id="wattmetre_power_watt",resource_consumer_id="wattmetre1-port6",resource_consumer_kind="device_origin",resource_id="taurus-7",resource_kind="device_id"} 112.73
# EOF
`, render(x, true))
}

func TestLabels(t *testing.T) {
	tests := []struct {
		name       string
		attrs      bool
		res        measure.Resource
		cons       measure.Consumer
		attributes []measure.Attribute
		want       string
	}{
		{"local machine keeps empty ids", true, measure.LocalMachine, measure.Consumer{Kind: "local_machine"}, nil,
			`{resource_consumer_id="",resource_consumer_kind="local_machine",resource_id="",resource_kind="local_machine"}`},
		{"attributes sorted and sanitised", true, measure.LocalMachine, measure.Consumer{Kind: "process", ID: "42"},
			[]measure.Attribute{str("zeta", "z"), str("cpu.state", "idle"), str("Alpha", "a")},
			`{Alpha="a",cpu_state="idle",resource_consumer_id="42",resource_consumer_kind="process",resource_id="",resource_kind="local_machine",zeta="z"}`},
		{"attributes off", false, measure.LocalMachine, measure.Consumer{Kind: "process", ID: "42"},
			[]measure.Attribute{str("domain", "package")},
			`{resource_consumer_id="42",resource_consumer_kind="process",resource_id="",resource_kind="local_machine"}`},
		{"reserved names renamed", true, measure.Resource{Kind: "cpu_package", ID: "0"}, measure.Consumer{Kind: "local_machine"},
			[]measure.Attribute{str("resource_id", "x"), str("__name__", "y")},
			`{alumet_attribute__name__="y",alumet_attribute__resource_id="x",resource_consumer_id="",resource_consumer_kind="local_machine",resource_id="0",resource_kind="cpu_package"}`},
		{"clash after sanitising: first kept", true, measure.LocalMachine, measure.Consumer{Kind: "local_machine"},
			[]measure.Attribute{str("a.b", "1"), str("a-b", "2")},
			`{a_b="1",resource_consumer_id="",resource_consumer_kind="local_machine",resource_id="",resource_kind="local_machine"}`},
		{"escaped values", true, measure.Resource{Kind: "device_id", ID: "a\"b\\c\nd"}, measure.Consumer{Kind: "local_machine"},
			[]measure.Attribute{str("bad", "\xff")},
			`{bad="` + "\uFFFD" + `",resource_consumer_id="",resource_consumer_kind="local_machine",resource_id="a\"b\\c\nd",resource_kind="device_id"}`},
		{"typed attributes in text form", true, measure.LocalMachine, measure.Consumer{Kind: "local_machine"},
			[]measure.Attribute{{Key: "n", Value: measure.AttrValue{Type: measure.AttrU64, U64: 7}},
				{Key: "b", Value: measure.AttrValue{Type: measure.AttrBool, Bool: true}},
				{Key: "l", Value: measure.AttrValue{Type: measure.AttrU64List, List: []uint64{1, 2}}}},
			`{b="true",l="[1, 2]",n="7",resource_consumer_id="",resource_consumer_kind="local_machine",resource_id="",resource_kind="local_machine"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.AddAttributesToLabels = tt.attrs
			x, _, _ := testExporter(t, cfg)
			require.Equal(t, tt.want, string(x.appendLabels(nil, tt.res, tt.cons, tt.attributes)))
		})
	}
}

// goldenBuffer has several metrics, units, series, a compact part, an
// out-of-order point and special values.
func goldenBuffer(t testing.TB, reg *measure.Registry) *measure.Buffer {
	w := wattmetre(t, reg)
	e := register(t, reg, measure.Metric{Name: "rapl_consumed_energy", Unit: measure.Unit{Prefix: measure.Milli, Base: measure.Joule},
		Type: measure.F64, Description: `Energy "consumed" since the previous poll\ (RAPL)` + "\nsecond line"})
	n := register(t, reg, measure.Metric{Name: "network_ifacein_packets_total", Unit: measure.Plain(measure.Unity), Type: measure.U64,
		Description: "Packets received"})
	c := register(t, reg, measure.Metric{Name: "cpu_usage", Unit: measure.Plain(measure.Percent), Type: measure.F64, Description: ""})
	buf := &measure.Buffer{Points: []measure.Point{
		pPoint(w, "taurus-7", pTime, 112.73),
		pPoint(w, "taurus-8", pTime, 98),
		pPoint(w, "taurus-7", pTime+20e6, 113.5), // newer: replaces
		pPoint(w, "taurus-8", pTime-1e9, 1000),   // older: ignored
		{Metric: e, Timestamp: time.Unix(0, pTime), Value: measure.Float(1234.5678), Resource: measure.Resource{Kind: "cpu_package", ID: "0"},
			Consumer: measure.Consumer{Kind: "local_machine"}, Attributes: []measure.Attribute{str("domain", "package")}},
		{Metric: e, Timestamp: time.Unix(0, pTime), Value: measure.Float(0.001), Resource: measure.Resource{Kind: "dram", ID: "0"},
			Consumer: measure.Consumer{Kind: "local_machine"}, Attributes: []measure.Attribute{str("domain", "dram")}},
		{Metric: c, Timestamp: time.Unix(0, pTime), Value: measure.Float(float64Inf(1)), Resource: measure.LocalMachine, Consumer: measure.Consumer{Kind: "local_machine"}},
	}}
	s1 := &measure.Series{Metric: n, Resource: measure.Resource{Kind: "device_id", ID: "taurus-7"}, Consumer: measure.Consumer{Kind: "device_origin", ID: "eth0"},
		Attributes: []measure.Attribute{str("metric_id", "network_ifacein_packets_total")}}
	s2 := &measure.Series{Metric: n, Resource: measure.Resource{Kind: "device_id", ID: "taurus-10"}, Consumer: measure.Consumer{Kind: "device_origin", ID: "eth0"},
		Attributes: []measure.Attribute{str("metric_id", "network_ifacein_packets_total")}}
	buf.Compact = []measure.SeriesPoint{
		{Series: s1, Time: pTime, Value: measure.Uint(18446744073709551615)},
		{Series: s2, Time: pTime + 5e8, Value: measure.Uint(7)},
		{Series: s2, Time: pTime + 1e9, Value: measure.Uint(9)},
	}
	return buf
}

func float64Inf(sign int) float64 {
	if sign > 0 {
		return 1 / zero
	}
	return -1 / zero
}

var zero = 0.0

func TestRenderGolden(t *testing.T) {
	for _, tt := range []struct {
		name       string
		timestamps bool
		om         bool
	}{
		{"exposition.om.txt", false, true},
		{"exposition.txt", false, false},
		{"exposition-timestamps.om.txt", true, true},
		{"exposition-timestamps.txt", true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.ExposeTimestamps = tt.timestamps
			x, reg, _ := testExporter(t, cfg)
			require.NoError(t, x.Write(context.Background(), goldenBuffer(t, reg)))
			checkGolden(t, tt.name, x.Render(nil, tt.om))
		})
	}
}

// Last value wins per series, by time: a later write of an older point
// does not move the series back.
func TestLastValueWins(t *testing.T) {
	x, reg, _ := testExporter(t, DefaultConfig())
	id := wattmetre(t, reg)
	ctx := context.Background()
	line := func() string {
		for _, l := range strings.Split(render(x, false), "\n") {
			if strings.HasPrefix(l, "wattmetre") {
				return l[strings.LastIndexByte(l, ' ')+1:]
			}
		}
		return ""
	}
	require.NoError(t, x.Write(ctx, &measure.Buffer{Points: []measure.Point{pPoint(id, "taurus-7", pTime, 1), pPoint(id, "taurus-7", pTime+1, 2)}}))
	require.Equal(t, "2", line())
	require.NoError(t, x.Write(ctx, &measure.Buffer{Points: []measure.Point{pPoint(id, "taurus-7", pTime, 3)}}))
	require.Equal(t, "2", line(), "an older point is ignored")
	require.NoError(t, x.Write(ctx, &measure.Buffer{Points: []measure.Point{pPoint(id, "taurus-7", pTime+1, 4)}}))
	require.Equal(t, "4", line(), "the same time: the last written wins")
}

func TestMaxSeries(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxSeries = 2
	x, reg, _ := testExporter(t, cfg)
	var logs bytes.Buffer
	x.log = slog.New(slog.NewTextHandler(&logs, nil))
	id := wattmetre(t, reg)
	ctx := context.Background()
	s3 := &measure.Series{Metric: id, Resource: measure.Resource{Kind: "device_id", ID: "taurus-3"}}
	require.NoError(t, x.Write(ctx, &measure.Buffer{
		Points:  []measure.Point{pPoint(id, "taurus-1", pTime, 1), pPoint(id, "taurus-2", pTime, 2), pPoint(id, "taurus-9", pTime, 9)},
		Compact: []measure.SeriesPoint{{Series: s3, Time: pTime, Value: measure.Float(3)}, {Series: s3, Time: pTime + 1, Value: measure.Float(3)}},
	}))
	require.NoError(t, x.Write(ctx, &measure.Buffer{Points: []measure.Point{pPoint(id, "taurus-1", pTime+1, 10)}}))
	out := render(x, false)
	require.Contains(t, out, `resource_id="taurus-1",resource_kind="device_id"} 10`)
	require.Contains(t, out, `resource_id="taurus-2"`)
	require.NotContains(t, out, "taurus-9")
	require.NotContains(t, out, "taurus-3")
	require.Equal(t, int64(3), x.Dropped())
	require.Equal(t, 1, strings.Count(logs.String(), "level=ERROR"), logs.String())
	require.Contains(t, logs.String(), "2 series are exposed, the most max_series allows")
	require.NoError(t, x.Close())
	require.Contains(t, logs.String(), "3 points of 3 new series were not exposed because max_series (2) was reached")
}

func TestStaleAfter(t *testing.T) {
	cfg := DefaultConfig()
	cfg.StaleAfter = 30e9
	cfg.MaxSeries = 1
	x, reg, clk := testExporter(t, cfg)
	id := wattmetre(t, reg)
	ctx := context.Background()
	s := &measure.Series{Metric: id, Resource: measure.Resource{Kind: "device_id", ID: "taurus-1"}}
	require.NoError(t, x.Write(ctx, &measure.Buffer{Compact: []measure.SeriesPoint{{Series: s, Time: pTime, Value: measure.Float(1)}}}))
	clk.add(20e9)
	require.Contains(t, render(x, true), "taurus-1")
	clk.add(20e9)
	out := render(x, true)
	require.NotContains(t, out, "taurus-1", "not written for 40 s")
	require.Equal(t, "# EOF\n", out, "an empty family is not exposed")
	// Its room is free again, and the cached series is looked up anew.
	require.NoError(t, x.Write(ctx, &measure.Buffer{Points: []measure.Point{pPoint(id, "taurus-2", pTime, 2)}}))
	require.Contains(t, render(x, true), "taurus-2")
	clk.add(40e9)
	require.NoError(t, x.Write(ctx, &measure.Buffer{Compact: []measure.SeriesPoint{{Series: s, Time: pTime + 1, Value: measure.Float(5)}}}))
	out = render(x, true)
	require.Contains(t, out, `resource_id="taurus-1",resource_kind="device_id"} 5`)
	require.NotContains(t, out, "taurus-2")
	require.Zero(t, x.Dropped())
}

// Without stale_after (Alumet) a series stays for good.
func TestNoStaleByDefault(t *testing.T) {
	x, reg, clk := testExporter(t, DefaultConfig())
	id := wattmetre(t, reg)
	require.NoError(t, x.Write(context.Background(), &measure.Buffer{Points: []measure.Point{pPoint(id, "taurus-1", pTime, 1)}}))
	clk.add(1000 * time.Hour)
	require.Contains(t, render(x, true), "taurus-1")
}

func TestUnknownMetricSkipped(t *testing.T) {
	x, _, _ := testExporter(t, DefaultConfig())
	require.NoError(t, x.Write(context.Background(), &measure.Buffer{Points: []measure.Point{pPoint(7, "taurus-1", pTime, 1)}}))
	require.Equal(t, "# EOF\n", render(x, true))
}

func TestPrefixSuffix(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Prefix, cfg.Suffix = "g5k:", ""
	x, reg, _ := testExporter(t, cfg)
	id := wattmetre(t, reg)
	require.NoError(t, x.Write(context.Background(), &measure.Buffer{Points: []measure.Point{pPoint(id, "taurus-1", pTime, 1)}}))
	require.Contains(t, render(x, false), "\ng5k_wattmetre_power_watt_watts{")
}

func startTestServer(t *testing.T, cfg *Config) (*Exporter, *measure.Registry, string) {
	t.Helper()
	cfg.Host, cfg.Port = "127.0.0.1", 0
	reg := measure.NewRegistry()
	var logs testkit.LockedBuffer
	x, err := New(cfg, reg, slog.New(slog.NewTextHandler(&logs, nil)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = x.Close() })
	require.Contains(t, logs.String(), "Prometheus metrics exporter available on http://"+x.Addr().String()+"/metrics")
	return x, reg, "http://" + x.Addr().String()
}

func get(t *testing.T, method, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var r io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(resp.Body)
		require.NoError(t, err)
		r = zr
	}
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return resp, string(b)
}

func TestHTTP(t *testing.T) {
	x, reg, base := startTestServer(t, DefaultConfig())
	require.NoError(t, x.Write(context.Background(), goldenBuffer(t, reg)))
	om, err := os.ReadFile("testdata/exposition.om.txt")
	require.NoError(t, err)
	text, err := os.ReadFile("testdata/exposition.txt")
	require.NoError(t, err)
	tests := []struct {
		name, method, path string
		hdr                map[string]string
		code               int
		ctype, body        string
		gzip               bool
	}{
		{"no accept: OpenMetrics", "GET", "/metrics", nil, 200, ContentTypeOpenMetrics, string(om), false},
		{"prometheus", "GET", "/metrics", map[string]string{"Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"},
			200, ContentTypeOpenMetrics, string(om), false},
		{"text format", "GET", "/metrics", map[string]string{"Accept": "text/plain;version=0.0.4"}, 200, ContentTypeText, string(text), false},
		{"gzip", "GET", "/metrics", map[string]string{"Accept-Encoding": "gzip"}, 200, ContentTypeOpenMetrics, string(om), true},
		{"gzip refused", "GET", "/metrics", map[string]string{"Accept-Encoding": "gzip;q=0"}, 200, ContentTypeOpenMetrics, string(om), false},
		{"head", "HEAD", "/metrics", nil, 200, ContentTypeOpenMetrics, "", false},
		{"other path", "GET", "/", nil, 404, "text/plain; charset=utf-8", "Not Found\n", false},
		{"query string is fine", "GET", "/metrics?x=1", nil, 200, ContentTypeOpenMetrics, string(om), false},
		{"post", "POST", "/metrics", nil, 405, "text/plain; charset=utf-8", "Method Not Allowed\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, tt.method, base+tt.path, tt.hdr)
			require.Equal(t, tt.code, resp.StatusCode)
			require.Equal(t, tt.ctype, resp.Header.Get("Content-Type"))
			require.Equal(t, tt.gzip, resp.Header.Get("Content-Encoding") == "gzip")
			require.Equal(t, tt.body, body)
		})
	}
}

func TestListenErrors(t *testing.T) {
	x, _, _ := startTestServer(t, DefaultConfig())
	cfg := DefaultConfig()
	cfg.Host = "127.0.0.1"
	_, port, _ := strings.Cut(x.Addr().String(), ":")
	cfg.Port = atoi(t, port)
	_, err := New(cfg, measure.NewRegistry(), nil)
	require.ErrorContains(t, err, "prometheus-exporter: cannot listen on 127.0.0.1:"+port)
	require.ErrorContains(t, err, "address already in use")
}

func atoi(t *testing.T, s string) int {
	n := 0
	for _, c := range s {
		require.True(t, c >= '0' && c <= '9')
		n = n*10 + int(c-'0')
	}
	return n
}

func TestIPv6Loopback(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Host, cfg.Port = "::1", 0
	x, err := New(cfg, measure.NewRegistry(), nil)
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	require.True(t, strings.HasPrefix(x.Addr().String(), "[::1]:"), x.Addr().String())
	resp, _ := get(t, "GET", "http://"+x.Addr().String()+"/metrics", nil)
	require.Equal(t, 200, resp.StatusCode)
	require.NoError(t, x.Close())
}

// Close stops the server; a second Close is a no-op.
func TestClose(t *testing.T) {
	x, _, base := startTestServer(t, DefaultConfig())
	require.NoError(t, x.Close())
	require.NoError(t, x.Close())
	_, err := http.Get(base + "/metrics")
	require.Error(t, err)
}

// final_scrape_timeout: Close waits for a scrape that sees the last points.
func TestFinalScrape(t *testing.T) {
	cfg := DefaultConfig()
	cfg.FinalScrapeTimeout = 20e9
	x, reg, base := startTestServer(t, cfg)
	id := wattmetre(t, reg)
	require.NoError(t, x.Write(context.Background(), &measure.Buffer{Points: []measure.Point{pPoint(id, "taurus-1", pTime, 1)}}))
	closed := make(chan error, 1)
	go func() { closed <- x.Close() }()
	select {
	case <-closed:
		t.Fatal("Close returned before the final scrape")
	case <-time.After(200 * time.Millisecond):
	}
	_, body := get(t, "GET", base+"/metrics", nil)
	require.Contains(t, body, "taurus-1")
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return after the final scrape")
	}
}

func TestFinalScrapeTimesOut(t *testing.T) {
	cfg := DefaultConfig()
	cfg.FinalScrapeTimeout = config200ms
	x, reg, _ := startTestServer(t, cfg)
	id := wattmetre(t, reg)
	require.NoError(t, x.Write(context.Background(), &measure.Buffer{Points: []measure.Point{pPoint(id, "taurus-1", pTime, 1)}}))
	start := time.Now()
	require.NoError(t, x.Close())
	require.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond)
	require.Less(t, time.Since(start), 5*time.Second)
}

const config200ms = 200e6

// Scrapes and writes at the same time (go test -race).
func TestConcurrentScrapes(t *testing.T) {
	x, reg, base := startTestServer(t, DefaultConfig())
	id := wattmetre(t, reg)
	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		defer close(done)
		series := make([]measure.Series, 50)
		for i := range series {
			series[i] = measure.Series{Metric: id, Resource: measure.Resource{Kind: "device_id", ID: "taurus-" + string(rune('a'+i%26)) + string(rune('a'+i/26))}}
		}
		for n := range 200 {
			buf := &measure.Buffer{}
			for i := range series {
				buf.Compact = append(buf.Compact, measure.SeriesPoint{Series: &series[i], Time: pTime + int64(n), Value: measure.Float(float64(n))})
			}
			_ = x.Write(ctx, buf)
		}
	}()
	for range 20 {
		resp, body := get(t, "GET", base+"/metrics", map[string]string{"Accept-Encoding": "gzip"})
		require.Equal(t, 200, resp.StatusCode)
		require.True(t, strings.HasSuffix(body, "# EOF\n"))
	}
	<-done
	_, body := get(t, "GET", base+"/metrics", nil)
	require.Equal(t, 50, strings.Count(body, "} 199\n"))
}
