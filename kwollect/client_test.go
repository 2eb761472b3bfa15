package kwollect

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNewClientBaseURL(t *testing.T) {
	tests := []struct {
		in, base, errText string
	}{
		{"", DefaultBaseURL, ""},
		{"https://api.grid5000.fr/stable/", DefaultBaseURL, ""},
		{"  https://api.grid5000.fr/stable//  ", DefaultBaseURL, ""},
		{"https://api.grid5000.fr/sid", "https://api.grid5000.fr/sid", ""},
		{"http://127.0.0.1:8080/stable", "http://127.0.0.1:8080/stable", ""},
		{"http://127.9.8.7/stable", "http://127.9.8.7/stable", ""},
		{"http://[::1]:9/x/", "http://[::1]:9/x", ""},
		{"http://localhost:8080", "http://localhost:8080", ""},
		{"http://LOCALHOST/stable", "http://LOCALHOST/stable", ""},
		{"http://api.grid5000.fr/stable", "", `api_url "http://api.grid5000.fr/stable": plain http is only allowed for loopback hosts (the local emulator); use https://`},
		{"http://10.0.0.1/stable", "", "plain http is only allowed for loopback hosts"},
		{"http://localhost.example.com/", "", "plain http is only allowed for loopback hosts"},
		{"http://128.0.0.1/", "", "plain http is only allowed for loopback hosts"},
		{"ftp://api.grid5000.fr/stable", "", `unsupported scheme "ftp"; use https://`},
		{"api.grid5000.fr/stable", "", "want an absolute URL"},
		{"https:///stable", "", "want an absolute URL"},
		{"https://api.grid5000.fr/stable?x=1", "", "must not contain a query"},
		{"https://api.grid5000.fr/stable#x", "", "must not contain a query"},
		{"https://api grid5000.fr/", "", "not a valid URL"},
		{"https://api.grid5000.fr:port/", "", "not a valid URL"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			c, err := NewClient(Options{BaseURL: tt.in})
			if tt.errText != "" {
				require.ErrorContains(t, err, tt.errText)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.base, c.BaseURL())
		})
	}
}

func TestNewClientCredentialsInURL(t *testing.T) {
	c, err := NewClient(Options{BaseURL: "https://alice:s3cr3t@api.grid5000.fr/stable"})
	require.NoError(t, err)
	require.Equal(t, DefaultBaseURL, c.BaseURL())
	require.Equal(t, "alice", c.login)
	require.Equal(t, "s3cr3t", c.password)
	require.NotContains(t, c.URL(Query{Site: "lyon", Nodes: []string{"a"}}), "s3cr3t")

	// Explicit options win over the URL's userinfo.
	c, err = NewClient(Options{BaseURL: "https://alice:s3cr3t@api.grid5000.fr/stable", Login: "bob", Password: "pw"})
	require.NoError(t, err)
	require.Equal(t, "bob", c.login)

	// Errors never echo the password.
	for _, in := range []string{
		"http://alice:s3cr3t@api.grid5000.fr/stable",
		"https://alice:s3cr3t@api grid5000.fr/",
		"https://alice:s3cr3t@api.grid5000.fr/?q",
	} {
		_, err := NewClient(Options{BaseURL: in})
		require.Error(t, err)
		require.NotContains(t, err.Error(), "s3cr3t", in)
	}
}

func TestURL(t *testing.T) {
	c, err := NewClient(Options{Login: "alice", Password: "s3cr3t"})
	require.NoError(t, err)
	start := time.Unix(1754379876, 0)
	tests := []struct {
		name string
		q    Query
		want string
	}{
		{"alumet", Query{Site: "lyon", Nodes: []string{"taurus-7"}, Metrics: []string{"wattmetre_power_watt"}, Start: start, End: time.Unix(1754379886, 0)},
			"https://api.grid5000.fr/stable/sites/lyon/metrics?nodes=taurus-7&metrics=wattmetre_power_watt&start_time=1754379876&end_time=1754379886"},
		{"fractions", Query{Site: "lyon", Nodes: []string{"taurus-7"}, Metrics: []string{"wattmetre_power_watt"},
			Start: start.Add(500 * time.Millisecond), End: time.Unix(1754379886, 734_000_000)},
			"https://api.grid5000.fr/stable/sites/lyon/metrics?nodes=taurus-7&metrics=wattmetre_power_watt&start_time=1754379876.5&end_time=1754379886.734"},
		{"end rounded up to the microsecond", Query{Site: "lyon", Nodes: []string{"a"}, Start: start.Add(1500), End: start.Add(1500)},
			"https://api.grid5000.fr/stable/sites/lyon/metrics?nodes=a&start_time=1754379876.000001&end_time=1754379876.000002"},
		{"lists", Query{Site: "lyon", Nodes: []string{" taurus-7 ", "taurus-8.lyon.grid5000.fr", "taurus-7.lyon.grid5000.fr", "", "taurus-8"},
			Metrics: []string{"wattmetre_power_watt", " bmc_node_power_watt", "wattmetre_power_watt"}},
			"https://api.grid5000.fr/stable/sites/lyon/metrics?nodes=taurus-7,taurus-8&metrics=wattmetre_power_watt,bmc_node_power_watt"},
		{"all parameters in order", Query{Site: "nancy", Nodes: []string{"gros-41"}, Devices: []string{"gros-pdu3-port-1", "wattmetre1-port40"},
			Metrics: []string{"m"}, Start: start, End: start.Add(time.Second), JobID: 4242, Summary: true, AsRate: true},
			"https://api.grid5000.fr/stable/sites/nancy/metrics?nodes=gros-41&devices=gros-pdu3-port-1,wattmetre1-port40&metrics=m&start_time=1754379876&end_time=1754379877&job_id=4242&summary=true&as_rate=true"},
		{"escaping", Query{Site: "ly on/x", Nodes: []string{"a,b", "c+d"}, Metrics: []string{"m&x=1", "é"}},
			"https://api.grid5000.fr/stable/sites/ly%20on%2Fx/metrics?nodes=a%2Cb,c%2Bd&metrics=m%26x%3D1,%C3%A9"},
		{"nothing", Query{Site: "lyon"}, "https://api.grid5000.fr/stable/sites/lyon/metrics"},
		{"job only", Query{Site: "lyon", JobID: 7}, "https://api.grid5000.fr/stable/sites/lyon/metrics?job_id=7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.URL(tt.q)
			require.Equal(t, tt.want, got)
			require.NotContains(t, got, "s3cr3t")
			require.NotContains(t, got, "alice")
		})
	}
}

func TestNormalizeNodes(t *testing.T) {
	require.Equal(t, []string{"orion-3", "gemini-2"}, NormalizeNodes([]string{"orion-3.lyon.grid5000.fr", " gemini-2", "orion-3", " ", ".x"}))
	require.Nil(t, NormalizeNodes(nil))
}

func TestBasicAuth(t *testing.T) {
	type seen struct {
		user, pass string
		ok         bool
		ua, accept string
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		got <- seen{u, p, ok, r.Header.Get("User-Agent"), r.Header.Get("Accept")}
		_, _ = w.Write([]byte("[]"))
	}))
	defer srv.Close()
	tests := []struct {
		name string
		opts Options
		want seen
	}{
		{"none", Options{}, seen{ua: defaultUserAgent, accept: "application/json"}},
		{"login and password", Options{Login: "alice", Password: "pw", UserAgent: "test/1"}, seen{"alice", "pw", true, "test/1", "application/json"}},
		{"password only", Options{Password: "pw"}, seen{"", "pw", true, defaultUserAgent, "application/json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.BaseURL = srv.URL + "/stable"
			c, err := NewClient(tt.opts)
			require.NoError(t, err)
			n, err := c.Stream(context.Background(), Query{Site: "lyon", Nodes: []string{"a"}}, func(*Row) error { return nil })
			require.NoError(t, err)
			require.Zero(t, n)
			require.Equal(t, tt.want, <-got)
		})
	}
}

func TestStreamFixture(t *testing.T) {
	body, err := os.ReadFile("testdata/metrics_orion3.json")
	require.NoError(t, err)
	var gotURL string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotURL = r.URL.String()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	var bad []*RowError
	c, err := NewClient(Options{BaseURL: srv.URL + "/stable/", OnBadRow: func(e *RowError) { bad = append(bad, e) }})
	require.NoError(t, err)
	var devs []string
	n, err := c.Stream(context.Background(), Query{Site: "lyon", Nodes: []string{"orion-3", "gemini-2"}, Metrics: []string{"wattmetre_power_watt"}},
		func(r *Row) error { devs = append(devs, r.DeviceID); return nil })
	require.NoError(t, err)
	require.Equal(t, 5, n)
	require.Equal(t, []string{"orion-3", "orion-3", "orion-3", "orion-3", "gemini-2"}, devs)
	require.Equal(t, "/stable/sites/lyon/metrics?nodes=orion-3,gemini-2&metrics=wattmetre_power_watt", gotURL)
	require.Empty(t, bad)
}

func TestStreamBadRowHook(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`[{"timestamp":"bad","device_id":"a","metric_id":"m","value":1},{"timestamp":"2024-10-03T08:12:41Z","device_id":"a","metric_id":"m","value":1}]`))
	}))
	defer srv.Close()
	var bad []*RowError
	c, err := NewClient(Options{BaseURL: srv.URL, OnBadRow: func(e *RowError) { bad = append(bad, e) }})
	require.NoError(t, err)
	n, err := c.Stream(context.Background(), Query{Site: "lyon", Nodes: []string{"a"}}, func(*Row) error { return nil })
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Len(t, bad, 1)
	require.Equal(t, 0, bad[0].Index)
}

func TestStreamValidation(t *testing.T) {
	c, err := NewClient(Options{BaseURL: "http://127.0.0.1:1"})
	require.NoError(t, err)
	noop := func(*Row) error { return nil }
	_, err = c.Stream(context.Background(), Query{Nodes: []string{"a"}}, noop)
	require.ErrorContains(t, err, "no site given")
	require.ErrorContains(t, err, "lyon")
	_, err = c.Stream(context.Background(), Query{Site: "lyon", Nodes: []string{" ", ""}}, noop)
	require.ErrorIs(t, err, ErrNoTarget)
	require.ErrorContains(t, err, "hostname")
	_, err = c.Stream(context.Background(), Query{Site: "lyon", Nodes: []string{"a"}, Start: time.Unix(10, 0), End: time.Unix(5, 0)}, noop)
	require.ErrorContains(t, err, "before start")
}

func TestStreamNotArray(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html>login</html>"))
	}))
	defer srv.Close()
	c, err := NewClient(Options{BaseURL: srv.URL})
	require.NoError(t, err)
	_, err = c.Stream(context.Background(), Query{Site: "lyon", Nodes: []string{"a"}}, func(*Row) error { return nil })
	require.ErrorIs(t, err, ErrNotArray)
	require.ErrorContains(t, err, `Content-Type "text/html"`)
	require.False(t, IsRetryable(err))
}

func TestStreamNoContent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer srv.Close()
	c, err := NewClient(Options{BaseURL: srv.URL})
	require.NoError(t, err)
	n, err := c.Stream(context.Background(), Query{Site: "lyon", Nodes: []string{"a"}}, func(*Row) error { return nil })
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestIsLoopbackHost(t *testing.T) {
	for h, want := range map[string]bool{
		"localhost": true, "LocalHost.": true, "127.0.0.1": true, "127.255.0.3": true, "::1": true,
		"::ffff:127.0.0.1": true, "128.0.0.1": false, "api.grid5000.fr": false, "": false, "localhost.grid5000.fr": false, "0.0.0.0": false,
	} {
		require.Equal(t, want, IsLoopbackHost(h), h)
	}
	require.False(t, strings.Contains(DefaultBaseURL, "http:"))
}

func TestNoDowngradeRedirect(t *testing.T) {
	req := func(u string) *http.Request {
		r, err := http.NewRequest(http.MethodGet, u, nil)
		require.NoError(t, err)
		return r
	}
	require.NoError(t, noDowngrade(req("https://b/x"), []*http.Request{req("https://a/x")}))
	require.NoError(t, noDowngrade(req("http://127.0.0.1/x"), []*http.Request{req("http://127.0.0.1/y")}))
	require.ErrorContains(t, noDowngrade(req("http://a/x"), []*http.Request{req("https://a/x")}), "refusing redirect")
	via := make([]*http.Request, 10)
	for i := range via {
		via[i] = req("https://a/x")
	}
	require.ErrorContains(t, noDowngrade(req("https://a/x"), via), "10 redirects")
}
