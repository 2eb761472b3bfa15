package kwollectinput

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/config"
	"github.com/alumet-go/alumet-agent/kwollect/emulator"
	"github.com/alumet-go/alumet-agent/kwollect/emulator/emutest"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
	"github.com/alumet-go/alumet-agent/pipeline/pipelinetest"
	"github.com/alumet-go/alumet-agent/plugin"
)

func TestStringList(t *testing.T) {
	tests := []struct {
		toml    string
		want    StringList
		wantErr bool
	}{
		{`v = "wattmetre_power_watt"`, StringList{"wattmetre_power_watt"}, false},
		{`v = "a, b,,c"`, StringList{"a", "b", "c"}, false},
		{`v = ["a", "b,c"]`, StringList{"a", "b", "c"}, false},
		{`v = []`, StringList{}, false},
		{`v = 3`, nil, true},
		{`v = [1]`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.toml, func(t *testing.T) {
			var v struct{ V StringList }
			_, err := toml.Decode(tt.toml, &v)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, v.V)
		})
	}
}

func TestStringListMarshal(t *testing.T) {
	for _, tt := range []struct {
		in   StringList
		want string
	}{{nil, `""`}, {StringList{"a"}, `"a"`}, {StringList{"a", "b"}, `["a", "b"]`}} {
		b, err := tt.in.MarshalTOML()
		require.NoError(t, err)
		require.Equal(t, tt.want, string(b))
		var v struct{ V StringList }
		_, err = toml.Decode("v = "+string(b), &v)
		require.NoError(t, err)
		require.Equal(t, len(tt.in), len(v.V))
	}
}

func TestValidate(t *testing.T) {
	ok := func() *Config {
		c := DefaultConfig()
		c.Site, c.Hostname = "lyon", StringList{"taurus-7"}
		return c
	}
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"ok", func(*Config) {}, ""},
		{"no site", func(c *Config) { c.Site = "" }, "site: missing"},
		{"fqdn gives the site", func(c *Config) { c.Site, c.Hostname = "", StringList{"taurus-7.lyon.grid5000.fr"} }, ""},
		{"job without site", func(c *Config) { c.Site, c.Hostname, c.JobID = "", nil, JobRef{ID: 3} }, "site: missing"},
		{"auto job", func(c *Config) { c.Site, c.Hostname, c.JobID = "", nil, JobRef{Auto: true} }, ""},
		{"bad poll", func(c *Config) { c.PollInterval = 0 }, "poll_interval"},
		{"bad budget", func(c *Config) { c.RowBudget = 1 }, "row_budget"},
		{"bad concurrency", func(c *Config) { c.Concurrency = 0 }, "concurrency"},
		{"bad site", func(c *Config) { c.Site = "lyon/x" }, "is not a site name"},
		{"no host", func(c *Config) { c.Hostname = nil }, "hostname: missing"},
		{"nodes instead", func(c *Config) { c.Hostname, c.Nodes = nil, StringList{"a"} }, ""},
		{"no metrics", func(c *Config) { c.Metrics = nil }, "metrics: missing"},
		{"password without login", func(c *Config) { c.Password = "x" }, "login: a password is set"},
		{"both passwords", func(c *Config) { c.Login, c.Password, c.PasswordFile = "u", "x", "f" }, "password_file: set either"},
		{"bad url", func(c *Config) { c.APIURL = "ftp://x" }, "api_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok()
			tt.change(c)
			err := c.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
			var fe *plugin.FieldError
			require.ErrorAs(t, err, &fe)
		})
	}
}

func TestSplitFQDN(t *testing.T) {
	n, s, ok := SplitFQDN("taurus-7.lyon.grid5000.fr")
	require.True(t, ok)
	require.Equal(t, "taurus-7", n)
	require.Equal(t, "lyon", s)
	_, _, ok = SplitFQDN("laptop.local")
	require.False(t, ok)
}

// startSource starts the plugin against an in-process emulator.
func startSource(t *testing.T, cfg *Config, mode plugin.Mode) (*Source, *measure.Registry) {
	t.Helper()
	cfg.APIURL = emutest.Start(t, emulator.Config{Seed: 7}).URL
	require.NoError(t, cfg.Validate())
	reg := measure.NewRegistry()
	b := pipeline.NewBuilder(reg, 8, nil)
	env := plugin.Env{Pipeline: b, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Mode: mode, StartTime: time.Now()}
	src, err := newSource(cfg, env, realEnvironment(), "")
	require.NoError(t, err)
	m, ok := reg.ByName("wattmetre_power_watt")
	require.True(t, ok, "configured metrics are registered at start")
	require.Equal(t, "W", m.Unit.DisplayName())
	require.Equal(t, "Metric: wattmetre_power_watt", m.Description)
	return src, reg
}

func TestExecWindowFetchedOnce(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Site, cfg.Hostname = "lyon", StringList{"taurus-7", "gemini-1.lyon.grid5000.fr"}
	cfg.Metrics = StringList{"wattmetre_power_watt", "bmc_node_power_watt"}
	cfg.FetchTimeout = 0
	src, reg := startSource(t, cfg, plugin.ModeExec)
	out := &pipelinetest.Recorder{}
	ctx := context.Background()
	start := time.Now().Add(-20 * time.Second)
	end := start.Add(10*time.Second + 300*time.Millisecond)
	// An end event without a start is ignored; then the start, the end, and a second end.
	require.NoError(t, src.HandleEvent(ctx, pipeline.Event{Kind: pipeline.EndConsumerMeasurement, Time: end}, out))
	require.Empty(t, out.Points())
	require.NoError(t, src.HandleEvent(ctx, pipeline.Event{Kind: pipeline.StartConsumerMeasurement, Time: start}, out))
	require.NoError(t, src.HandleEvent(ctx, pipeline.Event{Kind: pipeline.EndConsumerMeasurement, Time: end}, out))
	n := out.Len()
	require.NoError(t, src.HandleEvent(ctx, pipeline.Event{Kind: pipeline.EndConsumerMeasurement, Time: end.Add(time.Second)}, out))
	require.Len(t, out.Points(), n, "the window is fetched exactly once")

	emu := emutest.New(t, emulator.Config{Seed: 7})
	want, err := emu.Expected("lyon", []string{"taurus-7", "gemini-1"}, []string{"wattmetre_power_watt", "bmc_node_power_watt"}, start.Truncate(time.Second), end)
	require.NoError(t, err)
	require.Len(t, out.Points(), len(want))
	perNode := map[string]int{}
	for i, p := range out.Points() {
		m, _ := reg.Metric(p.Metric)
		require.Equal(t, want[i].MetricID, m.Name)
		require.True(t, want[i].Timestamp.Equal(p.Timestamp))
		require.Equal(t, time.UTC, p.Timestamp.Location())
		require.Equal(t, "device_id", p.Resource.Kind)
		require.Equal(t, want[i].DeviceID, p.Resource.ID)
		require.Equal(t, "metric_id", p.Attributes[0].Key)
		require.Equal(t, m.Name, p.Attributes[0].Value.Str)
		if m.Name == "wattmetre_power_watt" {
			require.Equal(t, "device_origin", p.Consumer.Kind)
			if p.Resource.ID == "gemini-1" {
				require.Contains(t, p.Consumer.ID, ",", "multi-PSU ports are joined with a comma")
			}
		} else {
			require.Equal(t, measure.KindLocalMachine, p.Consumer.Kind, "BMC rows have no _device_orig")
		}
		perNode[p.Resource.ID+"/"+m.Name]++
	}
	require.Len(t, perNode, 4)
}

func TestRunModeFetchesAtStop(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Site, cfg.Hostname = "lyon", StringList{"taurus-7"}
	cfg.FetchTimeout = 0
	src, _ := startSource(t, cfg, plugin.ModeRun)
	src.cfg.PollInterval = config.Duration(20 * time.Millisecond) // below the config's minimum: a test
	src.start = time.Now().Add(-5 * time.Second)
	out := &pipelinetest.Recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	require.NoError(t, src.Run(ctx, out))
	require.GreaterOrEqual(t, out.Len(), 4)
	n := out.Len()
	// Events after the run-mode fetch are ignored.
	require.NoError(t, src.HandleEvent(context.Background(), pipeline.Event{Kind: pipeline.EndConsumerMeasurement, Time: time.Now()}, out))
	require.Len(t, out.Points(), n)
}

// TestRunModeStoppedBeforeAnyPoll: an interrupted start stops the source
// before its first poll: no last fetch (it would hold the stop up).
func TestRunModeStoppedBeforeAnyPoll(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Site, cfg.Hostname = "lyon", StringList{"taurus-7"}
	src, _ := startSource(t, cfg, plugin.ModeRun)
	src.start = time.Now().Add(-5 * time.Second)
	out := &pipelinetest.Recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, src.Run(ctx, out))
	require.Empty(t, out.Points())
}

func TestExecModeRunDoesNotFetch(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Site, cfg.Hostname = "lyon", StringList{"taurus-7"}
	src, _ := startSource(t, cfg, plugin.ModeExec)
	out := &pipelinetest.Recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, src.Run(ctx, out))
	require.Empty(t, out.Points())
}
