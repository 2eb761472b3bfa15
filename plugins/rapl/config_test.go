package rapl

import (
	"context"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/config"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
	"github.com/alumet-go/alumet-agent/plugin"
)

func TestDefaultConfig(t *testing.T) {
	want := &Config{PollInterval: config.Duration(time.Second), FlushInterval: config.Duration(5 * time.Second)}
	require.Empty(t, cmp.Diff(want, DefaultConfig()))
	require.NoError(t, DefaultConfig().Validate())
	require.Equal(t, "/sys", DefaultConfig().root())
}

func TestConfigTOMLKeys(t *testing.T) {
	var keys []string
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("toml"), ",")
		keys = append(keys, name)
	}
	require.Equal(t, []string{"poll_interval", "flush_interval", "no_perf_events", "sysfs_root"}, keys)
}

// sample.toml is the default section, every key documented in it.
func TestSampleConfig(t *testing.T) {
	var doc struct {
		Plugins struct {
			Rapl *Config `toml:"rapl"`
		} `toml:"plugins"`
	}
	doc.Plugins.Rapl = DefaultConfig()
	doc.Plugins.Rapl.NoPerfEvents = true // must be set back by the sample
	// The loader reads enabled itself (GeneratedOff writes it).
	sample := strings.Replace(SampleConfig, "\nenabled = false\n", "\n", 1)
	require.NotEqual(t, SampleConfig, sample)
	md, err := toml.Decode(sample, &doc)
	require.NoError(t, err)
	require.Empty(t, md.Undecoded())
	require.Equal(t, DefaultConfig(), doc.Plugins.Rapl)
	for _, k := range []string{"enabled = false\n", "poll_interval = ", "flush_interval = ", "no_perf_events = ", "# sysfs_root = \"/sys\""} {
		require.Contains(t, SampleConfig, k)
	}
}

// A generated section stays loadable by Alumet (deny_unknown_fields):
// sysfs_root is left out while unset.
func TestEncodeDefaultIsAlumets(t *testing.T) {
	var sb strings.Builder
	require.NoError(t, toml.NewEncoder(&sb).Encode(DefaultConfig()))
	require.Equal(t, "poll_interval = \"1s\"\nflush_interval = \"5s\"\nno_perf_events = false\n", sb.String())
	out, err := config.Generate([]config.PluginSpec{config.SpecOf(Factory())})
	require.NoError(t, err)
	var keys []string
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			keys = append(keys, l)
		}
	}
	require.Equal(t, []string{"[plugins.rapl]", "enabled = false", `poll_interval = "1s"`, `flush_interval = "5s"`, "no_perf_events = false"}, keys)
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		toml string
		err  string
	}{
		{"Alumet's section", "poll_interval = \"1s\"\nflush_interval = \"5s\"\nno_perf_events = false\n", ""},
		{"fast", "poll_interval = \"1ms\"\nflush_interval = \"100ms\"\nsysfs_root = \"/host/sys\"\n", ""},
		{"zero poll", "poll_interval = \"0s\"\n", "poll_interval: must be at least 1ms"},
		{"zero flush", "flush_interval = \"0s\"\n", "flush_interval: must be at least 1ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			_, err := toml.Decode(tt.toml, cfg)
			require.NoError(t, err)
			if tt.err == "" {
				require.NoError(t, cfg.Validate())
				return
			}
			require.EqualError(t, cfg.Validate(), tt.err)
		})
	}
}

func TestFactory(t *testing.T) {
	f := Factory()
	require.Equal(t, "rapl", f.Name)
	require.Equal(t, "plugin_rapl", f.LogTarget)
	require.Equal(t, SampleConfig, f.Sample)
	require.Equal(t, DefaultConfig(), f.DefaultConfig())
}

// start adds the source on a fake tree; with neither interface (this
// machine's /sys, an empty tree) it fails with both reasons; elsewhere than
// Linux it says rapl is Linux only.
func TestStart(t *testing.T) {
	startWith := func(root string) (*pipeline.Builder, error) {
		cfg := DefaultConfig()
		cfg.SysfsRoot = root
		b := pipeline.NewBuilder(measure.NewRegistry(), 0, discard())
		return b, Factory().Start(context.Background(), cfg, plugin.Env{Pipeline: b, Logger: discard()})
	}
	b, err := startWith(powercapTree(t, twoSockets()...))
	if runtime.GOOS != "linux" {
		require.EqualError(t, err, "rapl is Linux only (this agent runs on "+runtime.GOOS+"): RAPL counters are read from the Linux sysfs and perf_events")
		return
	}
	require.NoError(t, err)
	n, _, _ := b.Counts()
	require.Equal(t, 1, n)
	_, ok := b.Registry().ByName("rapl_consumed_energy")
	require.True(t, ok)

	empty := t.TempDir()
	_, err = startWith(empty)
	require.EqualError(t, err, "I can use neither perf_events nor powercap: impossible to measure RAPL counters.\n"+
		"  perf_events: "+empty+"/devices/power does not exist: the Intel RAPL PMU module may not be enabled (is the kernel too old? in a VM, RAPL is usually not exposed)\n"+
		"  powercap: "+empty+"/devices/virtual/powercap/intel-rapl does not exist (no powercap RAPL driver: is intel_rapl_common loaded? in a VM or a container, RAPL is usually not exposed)")
}
