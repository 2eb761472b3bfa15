package kwollectoutput

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/testkit"
	"github.com/alumet-go/alumet-agent/kwollect"
	"github.com/alumet-go/alumet-agent/kwollect/emulator"
	"github.com/alumet-go/alumet-agent/kwollect/emulator/emutest"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
	"github.com/alumet-go/alumet-agent/plugins/internal/push"
	"github.com/alumet-go/alumet-agent/plugins/kwollectinput"
)

func TestLoopGuardName(t *testing.T) {
	require.Equal(t, kwollectinput.Name, kwollectInput)
}

func newTestOutput(t *testing.T, c *Config, reg *measure.Registry, logs *testkit.Logs, o push.Options) *Output {
	t.Helper()
	if o.InitialBackoff == 0 {
		o.InitialBackoff = time.Millisecond
	}
	out, err := newOutput(c, reg, logs.Logger(), o, "", "")
	require.NoError(t, err)
	return out
}

func fetchBack(t *testing.T, url string, at time.Time, metrics ...string) []kwollect.Row {
	t.Helper()
	c, err := kwollect.NewClient(kwollect.Options{BaseURL: url, Login: "alice", Password: "s3cret-Pa55"})
	require.NoError(t, err)
	var rows []kwollect.Row
	_, err = c.Stream(context.Background(), kwollect.Query{Site: "lyon", Nodes: []string{"taurus-7"}, Metrics: metrics,
		Start: at.Add(-time.Second), End: at.Add(10 * time.Second)}, func(r *kwollect.Row) error {
		rows = append(rows, *r)
		return nil
	})
	require.NoError(t, err)
	return rows
}

// The points reach Kwollect (the emulator, with Basic auth) in batches,
// kwollect-input's own metrics are not sent back, and the password is in
// no log line.
func TestOutputPosts(t *testing.T) {
	srv := emutest.Start(t, emulator.Config{Seed: 1, Users: map[string]string{"alice": "s3cret-Pa55"}})
	reg := measure.NewRegistry()
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	ps := testPoints(t, reg, at)
	in, err := reg.Register(measure.Metric{Name: "wattmetre_power_watt", Unit: measure.Plain(measure.Watt), Type: measure.F64, Plugin: kwollectInput})
	require.NoError(t, err)
	ps = append(ps, measure.Point{Metric: in, Timestamp: at, Value: measure.Float(100), Resource: measure.Resource{Kind: "device_id", ID: "taurus-7"}})
	logs := &testkit.Logs{}
	c := DefaultConfig()
	c.URL, c.Hostname, c.Login, c.Password = srv.URL+"/sites/lyon/metrics", "taurus-7", "alice", "s3cret-Pa55"
	out := newTestOutput(t, c, reg, logs, push.Options{BatchPoints: 3})
	require.NoError(t, out.Write(context.Background(), &measure.Buffer{Points: ps}))
	require.NoError(t, out.Close())
	rows := fetchBack(t, srv.URL, at, "wattmetre_power_watt_energy_J", "rapl_consumed_energy_J", "app_phase", "wattmetre_power_watt_W")
	require.Len(t, rows, 4, "the 4 points, not kwollect-input's")
	require.Contains(t, logs.Text("WARN"), "kwollect-input's own rows are not sent back")
	require.NotContains(t, strings.Join(logs.Lines(), "\n"), "s3cret")

	// A wrong password fails the output for good (401), reported.
	c.Password = "wrong-Pa55word"
	out = newTestOutput(t, c, reg, logs, push.Options{})
	reported := make(chan error, 1)
	out.ReportFailuresTo(func(err error) { reported <- err })
	require.NoError(t, out.Write(context.Background(), &measure.Buffer{Points: ps[:1]}))
	select {
	case err := <-reported:
		require.ErrorContains(t, err, "401")
		require.NotContains(t, err.Error(), "wrong-Pa55word")
	case <-time.After(10 * time.Second):
		t.Fatal("the 401 was not reported")
	}
	require.Error(t, out.Close())
}

// The API down: Write never waits, Close gives up at close_timeout with
// the points counted as lost; a 503 then a success delivers everything.
func TestOutputAPIDown(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	lis.Close()
	reg := measure.NewRegistry()
	ps := testPoints(t, reg, time.Unix(1727941961, 0))
	c := DefaultConfig()
	c.URL = "http://" + addr + "/sites/lyon/metrics"
	logs := &testkit.Logs{}
	out := newTestOutput(t, c, reg, logs, push.Options{CloseTimeout: 200 * time.Millisecond})
	start := time.Now()
	for range 50 {
		require.NoError(t, out.Write(context.Background(), &measure.Buffer{Points: ps}))
	}
	require.Less(t, time.Since(start), time.Second)
	err = out.Close()
	var le pipeline.LossError
	require.True(t, errors.As(err, &le), "%v", err)
	require.Equal(t, int64(50*len(ps)), le.LostPoints())

	srv := emutest.Start(t, emulator.Config{Seed: 1}, emutest.Wrap(failFirst(http.StatusServiceUnavailable)))
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	ps = testPoints(t, reg, at)
	c.URL, c.Hostname = srv.URL+"/sites/lyon/metrics", "taurus-7"
	out = newTestOutput(t, c, reg, logs, push.Options{})
	require.NoError(t, out.Write(context.Background(), &measure.Buffer{Points: ps}))
	require.NoError(t, out.Close())
	require.Len(t, fetchBack(t, srv.URL, at, "wattmetre_power_watt_energy_J", "rapl_consumed_energy_J", "app_phase"), 4)
}

// failFirst answers the first POST with status, then lets requests through.
func failFirst(status int) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		failed := false
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && !failed {
				failed = true
				http.Error(w, "busy", status)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct{ toml, err string }{
		{`url = "https://api.grid5000.fr/stable/sites/lyon/metrics"`, ""},
		{`url = "api.grid5000.fr/x"`, "url"},
		{`url = "https://bob:pw@api.grid5000.fr/x"`, "url"},
		{`login = "bob"`, ""}, // its password from ~/.netrc
		{`password = "pw"`, "login"},
		{`batch_size = -3`, "batch_size"},
	} {
		c := DefaultConfig()
		_, err := toml.Decode(tc.toml, c)
		require.NoError(t, err)
		err = c.Validate()
		if tc.err == "" {
			require.NoError(t, err)
		} else {
			require.ErrorContains(t, err, tc.err+":", tc.toml)
		}
	}
}

func TestSampleConfig(t *testing.T) {
	var doc struct {
		Plugins struct {
			K *Config `toml:"kwollect-output"`
		} `toml:"plugins"`
	}
	doc.Plugins.K = &Config{}
	sample := strings.Replace(SampleConfig, "\nenabled = false\n", "\n", 1) // the loader reads enabled itself
	require.NotEqual(t, SampleConfig, sample)
	md, err := toml.Decode(sample, &doc)
	require.NoError(t, err)
	require.Empty(t, md.Undecoded())
	require.True(t, doc.Plugins.K.AppendUnitToMetricName && doc.Plugins.K.UseUnitDisplayName)
	for _, k := range []string{"url", "hostname", "append_unit_to_metric_name", "use_unit_display_name"} {
		require.Contains(t, SampleConfig, "\n"+k+" = ")
	}
	for _, k := range []string{"login", "password", "batch_size", "flush_interval", "buffer_size", "timeout", "close_timeout"} {
		require.Contains(t, SampleConfig, "\n# "+k+" = ")
	}
	var sb strings.Builder
	c := &Config{URL: "https://api.grid5000.fr/stable/sites/lyon/metrics", Hostname: "taurus-7", AppendUnitToMetricName: true, UseUnitDisplayName: true}
	require.NoError(t, toml.NewEncoder(&sb).Encode(c))
	require.Equal(t, "url = \"https://api.grid5000.fr/stable/sites/lyon/metrics\"\nhostname = \"taurus-7\"\nappend_unit_to_metric_name = true\nuse_unit_display_name = true\n", sb.String(), "Alumet's keys only")
}

// Without a password in the config, the netrc entry of the API host is
// used, as kwollect-input does.
func TestNetrcCredentials(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Authorization")
	}))
	defer srv.Close()
	netrcPath := filepath.Join(t.TempDir(), "netrc")
	require.NoError(t, os.WriteFile(netrcPath, []byte("machine 127.0.0.1 login alice password n3trc-Pa55\n"), 0o600))
	reg := measure.NewRegistry()
	ps := testPoints(t, reg, time.Now())
	c := DefaultConfig()
	c.URL = srv.URL + "/sites/lyon/metrics"
	logs := &testkit.Logs{}
	out, err := newOutput(c, reg, logs.Logger(), push.Options{}, "", netrcPath)
	require.NoError(t, err)
	require.NoError(t, out.Write(context.Background(), &measure.Buffer{Points: ps[:1]}))
	require.NoError(t, out.Close())
	require.Equal(t, "Basic "+base64.StdEncoding.EncodeToString([]byte("alice:n3trc-Pa55")), <-got)
	require.NotContains(t, strings.Join(logs.Lines(), "\n"), "n3trc")
}
