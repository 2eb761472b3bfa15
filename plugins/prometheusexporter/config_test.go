package prometheusexporter

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/config"
	"github.com/alumet-go/alumet-agent/plugin"
)

func TestDefaultConfig(t *testing.T) {
	want := &Config{Host: "0.0.0.0", Port: 9091, Prefix: "", Suffix: "_alumet", AddAttributesToLabels: true}
	if diff := cmp.Diff(want, DefaultConfig()); diff != "" {
		t.Fatalf("DefaultConfig (-want +got):\n%s", diff)
	}
	require.NoError(t, DefaultConfig().Validate())
	require.Equal(t, DefaultMaxSeries, DefaultConfig().maxSeries())
}

func TestConfigTOMLKeys(t *testing.T) {
	var keys []string
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("toml"), ",")
		keys = append(keys, name)
	}
	require.Equal(t, []string{"host", "port", "prefix", "suffix", "add_attributes_to_labels",
		"expose_timestamps", "stale_after", "max_series", "final_scrape_timeout"}, keys)
}

// sample.toml is the generated section: decoding it gives the defaults,
// every key in it is known, and every key of Config is documented in it.
func TestSampleConfig(t *testing.T) {
	var doc struct {
		Plugins struct {
			P *Config `toml:"prometheus-exporter"`
		} `toml:"plugins"`
	}
	doc.Plugins.P = DefaultConfig()
	doc.Plugins.P.Port = 1
	// The loader reads enabled itself (GeneratedOff writes it).
	sample, found := strings.CutPrefix(SampleConfig, "[plugins.prometheus-exporter]\n")
	require.True(t, found)
	i := strings.Index(sample, "\nenabled = false\n")
	require.GreaterOrEqual(t, i, 0)
	md, err := toml.Decode("[plugins.prometheus-exporter]\n"+sample[:i+1]+sample[i+len("\nenabled = false\n"):], &doc)
	require.NoError(t, err)
	require.Empty(t, md.Undecoded())
	require.Equal(t, DefaultConfig(), doc.Plugins.P)
	for _, k := range []string{"host", "port", "prefix", "suffix", "add_attributes_to_labels"} {
		require.Contains(t, SampleConfig, "\n"+k+" = ")
	}
	for _, k := range []string{"expose_timestamps", "stale_after", "max_series", "final_scrape_timeout"} {
		require.Contains(t, SampleConfig, "\n# "+k+" = ")
	}
}

// A generated section is off, and holds Alumet's keys only, so that Alumet
// loads it.
func TestGeneratedSection(t *testing.T) {
	out, err := config.Generate([]config.PluginSpec{config.SpecOf(Factory())})
	require.NoError(t, err)
	var keys []string
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "[") {
			keys = append(keys, l)
		}
	}
	require.Equal(t, []string{`enabled = false`, `host = "0.0.0.0"`, `port = 9091`, `prefix = ""`, `suffix = "_alumet"`,
		`add_attributes_to_labels = true`}, keys)
}

func TestDecodeSection(t *testing.T) {
	cfg := DefaultConfig()
	md, err := toml.Decode(`host = "127.0.0.1"
port = 0
suffix = ""
expose_timestamps = true
stale_after = "5m"
max_series = 1000
final_scrape_timeout = "15s"
`, cfg)
	require.NoError(t, err)
	require.Empty(t, md.Undecoded())
	require.NoError(t, cfg.Validate())
	require.Equal(t, &Config{Host: "127.0.0.1", Port: 0, Suffix: "", AddAttributesToLabels: true, ExposeTimestamps: true,
		StaleAfter: config.Duration(5 * time.Minute), MaxSeries: 1000, FinalScrapeTimeout: config.Duration(15 * time.Second)}, cfg)
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		key  string
		want string
	}{
		{"empty host", func(c *Config) { c.Host = "" }, "host", "must not be empty"},
		{"host with port", func(c *Config) { c.Host = "localhost:9091" }, "host", "give the port in port"},
		{"url as host", func(c *Config) { c.Host = "http://x" }, "host", "is not an address"},
		{"negative port", func(c *Config) { c.Port = -1 }, "port", "between 0 and 65535"},
		{"big port", func(c *Config) { c.Port = 65536 }, "port", "between 0 and 65535"},
		{"negative max_series", func(c *Config) { c.MaxSeries = -1 }, "max_series", "must not be negative"},
		{"negative stale_after", func(c *Config) { c.StaleAfter = -1 }, "stale_after", "must not be negative"},
		{"long final scrape", func(c *Config) { c.FinalScrapeTimeout = config.Duration(time.Hour) }, "final_scrape_timeout", "between 0s and 10m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(c)
			err := c.Validate()
			var fe *plugin.FieldError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, tt.key, fe.Key)
			require.ErrorContains(t, err, tt.want)
		})
	}
	for _, h := range []string{"127.0.0.1", "::1", "[::1]", "localhost", "0.0.0.0", "::"} {
		c := DefaultConfig()
		c.Host = h
		require.NoError(t, c.Validate(), h)
	}
}

// The section Alumet generates (all five keys, its defaults) decodes to
// the defaults, and a partial one keeps the defaults of missing keys.
func TestAlumetSection(t *testing.T) {
	for _, text := range []string{
		"host = \"0.0.0.0\"\nprefix = \"\"\nsuffix = \"_alumet\"\nport = 9091\nadd_attributes_to_labels = true\n",
		"",
	} {
		cfg := DefaultConfig()
		md, err := toml.Decode(text, cfg)
		require.NoError(t, err)
		require.Empty(t, md.Undecoded())
		require.NoError(t, cfg.Validate())
		require.Equal(t, DefaultConfig(), cfg)
	}
}
