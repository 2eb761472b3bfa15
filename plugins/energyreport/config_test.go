package energyreport

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/config"
	"github.com/alumet-go/alumet-agent/plugin"
)

func TestParseBaseline(t *testing.T) {
	tests := []struct {
		in      string
		want    Baseline
		wantErr string
	}{
		{in: "none"},
		{in: ""},
		{in: " none "},
		{in: "95W", want: Baseline{Kind: ConstantBaseline, Watts: 95}},
		{in: "95.5 W", want: Baseline{Kind: ConstantBaseline, Watts: 95.5}},
		{in: " 0W ", want: Baseline{Kind: ConstantBaseline, Watts: 0}},
		{in: ".5W", want: Baseline{Kind: ConstantBaseline, Watts: 0.5}},
		{in: "120.W", want: Baseline{Kind: ConstantBaseline, Watts: 120}},
		{in: "before:30s", want: Baseline{Kind: HistoryBaseline, Before: 30 * time.Second}},
		{in: "before: 2m 30s", want: Baseline{Kind: HistoryBaseline, Before: 150 * time.Second}},
		{in: "before:1s", want: Baseline{Kind: HistoryBaseline, Before: time.Second}},
		{in: "before:1h", want: Baseline{Kind: HistoryBaseline, Before: time.Hour}},
		{in: "before:", wantErr: `say how long before the run, such as "before:30s"`},
		{in: "before:500ms", wantErr: "at least 1s of history"},
		{in: "before:61m", wantErr: "at most 1h0m0s of history"},
		{in: "before:soon", wantErr: `"before:soon"`},
		{in: "after:60s", want: Baseline{Kind: AfterBaseline, After: time.Minute}},
		{in: "after: 10m", want: Baseline{Kind: AfterBaseline, After: 10 * time.Minute}},
		{in: "after:", wantErr: `say how long after the run, such as "after:60s"`},
		{in: "after:500ms", wantErr: "at least 1s after the run"},
		{in: "after:11m", wantErr: "at most 10m0s after the run (the agent waits for it)"},
		{in: "95", wantErr: `expected "none", a constant power such as "95W" or "95.5 W", "before:30s" or "after:60s", got "95"`},
		{in: "-5W", wantErr: "expected"},
		{in: "95kW", wantErr: "expected"},
		{in: "95 w", wantErr: "expected"},
		{in: "W", wantErr: "expected"},
		{in: "NaNW", wantErr: "expected"},
		{in: "InfW", wantErr: "expected"},
		{in: "1e3W", wantErr: "expected"},
		{in: "auto", wantErr: "expected"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseBaseline(tt.in)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

// load runs the agent's real config loader on text with only this plugin.
func load(t *testing.T, text string) (*Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "alumet-config.toml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	ld, err := config.Load(config.Options{
		Path:            path,
		NoDefaultConfig: true,
		Specs:           []config.PluginSpec{config.SpecOf(Factory())},
		Getenv:          func(string) (string, bool) { return "", false },
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return nil, err
	}
	require.Len(t, ld.Enabled, 1)
	return ld.Enabled[0].Config.(*Config), nil
}

func TestConfigDecodeAndValidate(t *testing.T) {
	tests := []struct {
		name    string
		toml    string
		want    *Config
		wantErr []string // substrings of the error
	}{
		{name: "defaults", toml: "[plugins.energy-report]\n", want: DefaultConfig()},
		{name: "all keys", toml: `[plugins.energy-report]
summary_file = "energy.json"
baseline = "95.5 W"
metrics = ["wattmetre_power_watt", "bmc_node_power_watt"]
table = false
plot_file = ""
phases = true
`, want: &Config{SummaryFile: "energy.json", Baseline: "95.5 W", Metrics: MetricList{"wattmetre_power_watt", "bmc_node_power_watt"}, Table: false, Phases: true}},
		{name: "metrics as a string", toml: "[plugins.energy-report]\nmetrics = \"wattmetre_power_watt, bmc_node_power_watt\"\n",
			want: &Config{SummaryFile: DefaultSummaryFile, PlotFile: DefaultPlotFile, Baseline: "none", Metrics: MetricList{"wattmetre_power_watt", "bmc_node_power_watt"}, Table: true}},
		{name: "baseline 95W", toml: "[plugins.energy-report]\nbaseline = \"95W\"\n", want: &Config{SummaryFile: DefaultSummaryFile, PlotFile: DefaultPlotFile, Baseline: "95W", Metrics: MetricList{}, Table: true}},
		{name: "before:D", toml: "[plugins.energy-report]\nbaseline = \"before:30s\"\nplot_file = \"power.svg\"\n",
			want: &Config{SummaryFile: DefaultSummaryFile, Baseline: "before:30s", PlotFile: "power.svg", Metrics: MetricList{}, Table: true}},
		{name: "before:D too short", toml: "[plugins.energy-report]\nsummary_file = \"e.json\"\nbaseline = \"before:0s\"\n",
			wantErr: []string{"alumet-config.toml:3", "baseline", "at least 1s"}},
		{name: "plot_file not png or svg", toml: "[plugins.energy-report]\nplot_file = \"power.jpg\"\n",
			wantErr: []string{"alumet-config.toml:2", "plot_file", ".png", ".svg"}},
		{name: "bad baseline", toml: "[plugins.energy-report]\nbaseline = \"95\"\n",
			wantErr: []string{"alumet-config.toml:2", "baseline", `"95W"`}},
		{name: "baseline not a string", toml: "[plugins.energy-report]\nbaseline = 95\n", wantErr: []string{"baseline"}},
		{name: "duplicate metric", toml: "[plugins.energy-report]\nmetrics = [\"a\", \"a\"]\n", wantErr: []string{"metrics", `"a" is listed twice`}},
		{name: "metrics not strings", toml: "[plugins.energy-report]\nmetrics = [1]\n", wantErr: []string{"metrics"}},
		{name: "summary_file a directory", toml: "[plugins.energy-report]\nsummary_file = \"out/\"\n", wantErr: []string{"summary_file", "directory"}},
		{name: "table not a bool", toml: "[plugins.energy-report]\ntable = \"yes\"\n", wantErr: []string{"table"}},
		{name: "phases not a bool", toml: "[plugins.energy-report]\nphases = \"yes\"\n", wantErr: []string{"phases"}},
		{name: "unknown key", toml: "[plugins.energy-report]\nsumary_file = \"x\"\n", wantErr: []string{"sumary_file", "summary_file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := load(t, tt.toml)
			if len(tt.wantErr) > 0 {
				require.Error(t, err)
				for _, s := range tt.wantErr {
					require.ErrorContains(t, err, s)
				}
				return
			}
			require.NoError(t, err)
			require.Empty(t, cmp.Diff(tt.want, cfg))
		})
	}
}

func TestValidateFieldErrors(t *testing.T) {
	c := DefaultConfig()
	c.Baseline = "before:1ms"
	c.Metrics = MetricList{"x", ""}
	err := c.Validate()
	var fe *plugin.FieldError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "baseline", fe.Key)
	require.ErrorContains(t, err, "metrics: empty metric name")
}

func TestSampleAndGeneratedConfigs(t *testing.T) {
	// sample.toml is the defaults.
	var doc struct {
		Plugins map[string]*Config `toml:"plugins"`
	}
	md, err := toml.Decode(SampleConfig, &doc)
	require.NoError(t, err)
	require.Empty(t, md.Undecoded())
	require.Empty(t, cmp.Diff(DefaultConfig(), doc.Plugins[Name]))
	// The generated default section loads back to the defaults.
	gen, err := config.Generate([]config.PluginSpec{config.SpecOf(Factory())})
	require.NoError(t, err)
	require.Contains(t, string(gen), "metrics = []")
	cfg, err := load(t, string(gen))
	require.NoError(t, err)
	require.Empty(t, cmp.Diff(DefaultConfig(), cfg))
}
