package energytocarbon

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/config"
	"github.com/alumet-go/alumet-agent/plugin"
)

// load runs the agent's real config loader on a file holding only this
// plugin's section (and what the test adds).
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

const section = "[plugins.energy-to-carbon]\n"

func ptr[T any](v T) *T { return &v }

// Alumet's three test configurations, and the mistakes the loader catches
// at the line of the key, Alumet's README's among them.
func TestLoad(t *testing.T) {
	tests := []struct {
		name string
		text string
		want plugin.CarbonIntensity
		err  []string // the error contains each, in order
	}{
		{name: "empty section: world average", text: section,
			want: plugin.CarbonIntensity{GramsPerKWh: 475, Mode: "world_avg", Source: "world average, IEA (Alumet's world_avg)"}},
		{name: "Alumet's world_avg test", text: section + `mode = "world_avg"` + "\n",
			want: plugin.CarbonIntensity{GramsPerKWh: 475, Mode: "world_avg", Source: "world average, IEA (Alumet's world_avg)"}},
		{name: "Alumet's country test", text: section + "mode = \"country\"\n\n[plugins.energy-to-carbon.country]\ncode = \"FRA\"\n",
			want: plugin.CarbonIntensity{GramsPerKWh: 56.039, Mode: "country", Source: "FRA France 2023 (Alumet's energy mix table)"}},
		{name: "country as an inline table", text: section + "mode = \"country\"\ncountry = { code = \"DEU\" }\n",
			want: plugin.CarbonIntensity{GramsPerKWh: 380.95, Mode: "country", Source: "DEU Germany 2023 (Alumet's energy mix table)"}},
		{name: "Alumet's override test, an integer", text: section + "mode = \"intensity_override\"\n[plugins.energy-to-carbon.intensity_override]\nintensity = 100\n",
			want: plugin.CarbonIntensity{GramsPerKWh: 100, Mode: "intensity_override", Source: "intensity_override in the configuration"}},
		{name: "override, a float", text: section + "mode = \"intensity_override\"\n[plugins.energy-to-carbon.intensity_override]\nintensity = 12.5\n",
			want: plugin.CarbonIntensity{GramsPerKWh: 12.5, Mode: "intensity_override", Source: "intensity_override in the configuration"}},
		{name: "override, zero", text: section + "mode = \"intensity_override\"\n[plugins.energy-to-carbon.intensity_override]\nintensity = 0\n",
			want: plugin.CarbonIntensity{GramsPerKWh: 0, Mode: "intensity_override", Source: "intensity_override in the configuration"}},
		{name: "an unused table is checked but not read", text: section + "[plugins.energy-to-carbon.country]\ncode = \"FRA\"\n",
			want: plugin.CarbonIntensity{GramsPerKWh: 475, Mode: "world_avg", Source: "world average, IEA (Alumet's world_avg)"}},

		{name: "unknown mode", text: section + `mode = "world"` + "\n",
			err: []string{":2: ", `mode: "world" is not a mode: expected "world_avg", "country" or "intensity_override"; did you mean "world_avg"?`}},
		{name: "mode misspelt", text: section + `mode = "contry"` + "\n",
			err: []string{`did you mean "country"?`}},
		{name: "country mode without its table", text: section + `mode = "country"` + "\n",
			err: []string{":2: ", `mode: mode = "country" needs a [plugins.energy-to-carbon.country] table with code = "FRA"`}},
		{name: "Alumet's README: [plugin.energy-to-carbon.country] country = ...",
			text: section + "mode = \"country\"\n\n[plugin.energy-to-carbon.country]\ncountry = \"FRA\"\n",
			err:  []string{":2: ", "Alumet's README writes [plugin.energy-to-carbon.country], which is not read"}},
		{name: "country = \"FRA\" in the country table", text: section + "mode = \"country\"\n[plugins.energy-to-carbon.country]\ncountry = \"FRA\"\n",
			err: []string{":4: ", `country.country: unknown key (valid keys: country.code; did you mean "country.code"? Alumet's README writes country = "FRA", its code reads code = "FRA")`}},
		{name: "code misspelt", text: section + "mode = \"country\"\n[plugins.energy-to-carbon.country]\ncod = \"FRA\"\n",
			err: []string{":4: ", `country.cod: unknown key (valid keys: country.code; did you mean "country.code"?)`}},
		{name: "another key besides code", text: section + "mode = \"country\"\n[plugins.energy-to-carbon.country]\ncode = \"FRA\"\nyear = 2023\n",
			err: []string{":5: ", `country.year: unknown key (valid keys: country.code)`}},
		{name: "country = \"FRA\" in the plugin's table", text: section + "mode = \"country\"\ncountry = \"FRA\"\n",
			err: []string{":3: ", `country: expected a table, [plugins.energy-to-carbon.country] with code = "FRA" (an ISO 3166-1 alpha-3 code), got the string "FRA"`}},
		{name: "code not a string", text: section + "mode = \"country\"\n[plugins.energy-to-carbon.country]\ncode = 250\n",
			err: []string{":4: ", `country.code: expected a string, an ISO 3166-1 alpha-3 code such as "FRA", got the integer 250`}},
		{name: "empty country table", text: section + "mode = \"country\"\n[plugins.energy-to-carbon.country]\n",
			err: []string{`country.code: missing: the country's ISO 3166-1 alpha-3 code, such as "FRA"`}},
		{name: "empty code", text: section + "mode = \"country\"\n[plugins.energy-to-carbon.country]\ncode = \"\"\n",
			err: []string{":4: ", `country.code: missing`}},
		{name: "unknown country", text: section + "mode = \"country\"\n[plugins.energy-to-carbon.country]\ncode = \"FRX\"\n",
			err: []string{":4: ", `country.code: unknown country code "FRX": not in Alumet's energy mix table (213 countries, ISO 3166-1 alpha-3 codes such as "FRA"); did you mean "FRA" (France) or "FRO" (Faroe Islands)?`}},
		{name: "lower case", text: section + "mode = \"country\"\n[plugins.energy-to-carbon.country]\ncode = \"fra\"\n",
			err: []string{`unknown country code "fra"`, `did you mean "FRA" (France)?`}},
		{name: "a country's name", text: section + "mode = \"country\"\n[plugins.energy-to-carbon.country]\ncode = \"Germany\"\n",
			err: []string{`did you mean "DEU" (Germany)?`}},
		{name: "unknown country in an unused table", text: section + "[plugins.energy-to-carbon.country]\ncode = \"XXX\"\n",
			err: []string{":3: ", `unknown country code "XXX"`}},
		{name: "override mode without its table", text: section + `mode = "intensity_override"` + "\n",
			err: []string{":2: ", `mode = "intensity_override" needs a [plugins.energy-to-carbon.intensity_override] table with intensity = <gCO₂e per kWh> (Alumet's README writes [plugin.energy-to-carbon.override], which is not read)`}},
		{name: "Alumet's README: override table", text: section + "mode = \"intensity_override\"\n[plugins.energy-to-carbon.override]\nintensity = 100\n",
			err: []string{":3: ", `unknown key "override" (valid keys: mode, country, intensity_override; did you mean "intensity_override"?)`}},
		{name: "override without intensity", text: section + "mode = \"intensity_override\"\n[plugins.energy-to-carbon.intensity_override]\n",
			err: []string{`intensity_override.intensity: missing: the intensity in gCO₂e per kWh, such as 100`}},
		{name: "intensity misspelt", text: section + "mode = \"intensity_override\"\n[plugins.energy-to-carbon.intensity_override]\nintensty = 100\n",
			err: []string{":4: ", `unknown key "intensity_override.intensty" (valid keys: intensity_override.intensity; did you mean "intensity_override.intensity"?)`}},
		{name: "negative intensity", text: section + "mode = \"intensity_override\"\n[plugins.energy-to-carbon.intensity_override]\nintensity = -1\n",
			err: []string{":4: ", `intensity_override.intensity: -1: expected a finite number of gCO₂e per kWh, at least 0`}},
		{name: "NaN intensity", text: section + "mode = \"intensity_override\"\n[plugins.energy-to-carbon.intensity_override]\nintensity = nan\n",
			err: []string{":4: ", `intensity_override.intensity: NaN: expected a finite number`}},
		{name: "infinite intensity", text: section + "mode = \"intensity_override\"\n[plugins.energy-to-carbon.intensity_override]\nintensity = inf\n",
			err: []string{`intensity_override.intensity: +Inf: expected a finite number`}},
		{name: "intensity as a string", text: section + "mode = \"intensity_override\"\n[plugins.energy-to-carbon.intensity_override]\nintensity = \"100\"\n",
			err: []string{":4: ", `intensity_override.intensity: expected a number`}},
		{name: "unknown key", text: section + "intensity = 100\n",
			err: []string{":2: ", `unknown key "intensity" (valid keys: mode, country, intensity_override`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := load(t, tt.text)
			if len(tt.err) > 0 {
				require.Error(t, err)
				msg := err.Error()
				for _, e := range tt.err {
					i := strings.Index(msg, e)
					require.GreaterOrEqual(t, i, 0, "%q not in\n%s", e, err.Error())
					msg = msg[i+len(e):]
				}
				return
			}
			require.NoError(t, err)
			got, err := cfg.Intensity()
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

// One mistake is one error: a misspelt code is not also reported missing.
func TestLoadOneErrorPerMistake(t *testing.T) {
	_, err := load(t, section+"mode = \"country\"\n[plugins.energy-to-carbon.country]\ncountry = \"FRA\"\n")
	require.Error(t, err)
	require.Equal(t, 1, strings.Count(err.Error(), "plugins.energy-to-carbon:"), err.Error())
}

func TestDefaultConfig(t *testing.T) {
	require.Empty(t, cmp.Diff(&Config{Mode: "world_avg"}, DefaultConfig(), cmp.AllowUnexported(CountryConfig{})))
	require.NoError(t, DefaultConfig().Validate())
	got, err := DefaultConfig().Intensity()
	require.NoError(t, err)
	require.Equal(t, 475.0, got.GramsPerKWh)
}

// The generated section is Alumet's default (mode only: Alumet leaves its
// None tables out), switched off.
func TestGenerate(t *testing.T) {
	out, err := config.Generate([]config.PluginSpec{config.SpecOf(Factory())})
	require.NoError(t, err)
	var keys []string
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			keys = append(keys, l)
		}
	}
	require.Equal(t, []string{"[plugins.energy-to-carbon]", "enabled = false", `mode = "world_avg"`}, keys)
	require.Contains(t, string(out), "# [plugins.energy-to-carbon.country]\n# code = \"FRA\"\n")
}

// sample.toml is the default section; with its commented tables
// uncommented, it still loads.
func TestSampleConfig(t *testing.T) {
	require.True(t, strings.HasPrefix(SampleConfig, section))
	sample := strings.Replace(SampleConfig, "\nenabled = false\n", "\n", 1)
	require.NotEqual(t, SampleConfig, sample)
	var doc struct {
		Plugins struct {
			E *Config `toml:"energy-to-carbon"`
		} `toml:"plugins"`
	}
	doc.Plugins.E = &Config{}
	md, err := toml.Decode(sample, &doc)
	require.NoError(t, err)
	require.Empty(t, md.Undecoded())
	require.Equal(t, DefaultConfig(), doc.Plugins.E)

	uncommented := strings.NewReplacer("# [plugins", "[plugins", "# code =", "code =", "# intensity =", "intensity =").Replace(sample)
	for _, mode := range []string{"country", "intensity_override"} {
		cfg, err := load(t, strings.Replace(uncommented, `mode = "world_avg"`, `mode = "`+mode+`"`, 1))
		require.NoError(t, err, mode)
		require.Equal(t, mode, cfg.Mode)
		require.NotNil(t, cfg.Country)
		require.Equal(t, "FRA", cfg.Country.Code)
		require.Equal(t, ptr(100.0), cfg.IntensityOverride.Intensity)
	}
}

// The effective configuration (a run directory's config.toml) loads again
// to the same configuration.
func TestEffectiveRoundTrip(t *testing.T) {
	for _, text := range []string{
		section,
		section + "mode = \"country\"\n[plugins.energy-to-carbon.country]\ncode = \"FRA\"\n",
		section + "mode = \"intensity_override\"\n[plugins.energy-to-carbon.intensity_override]\nintensity = 100\n",
	} {
		path := filepath.Join(t.TempDir(), "alumet-config.toml")
		require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
		opts := config.Options{Path: path, NoDefaultConfig: true, Specs: []config.PluginSpec{config.SpecOf(Factory())},
			Getenv: func(string) (string, bool) { return "", false }, Logger: slog.New(slog.DiscardHandler)}
		ld, err := config.Load(opts)
		require.NoError(t, err)
		eff, err := config.Effective(ld)
		require.NoError(t, err)
		again, err := load(t, eff)
		require.NoError(t, err, eff)
		first := ld.Enabled[0].Config.(*Config)
		require.Empty(t, cmp.Diff(first, again, cmp.AllowUnexported(CountryConfig{})), eff)
	}
}

// A configuration built in code validates as a decoded one.
func TestValidateBuilt(t *testing.T) {
	tests := []struct {
		cfg *Config
		err string
	}{
		{&Config{Mode: ModeCountry, Country: &CountryConfig{Code: "FRA"}}, ""},
		{&Config{Mode: ModeCountry, Country: &CountryConfig{}}, "country.code: missing"},
		{&Config{Mode: ModeIntensityOverride, IntensityOverride: &OverrideConfig{Intensity: ptr(1.5)}}, ""},
		{&Config{Mode: ""}, `mode: "" is not a mode`},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if tt.err == "" {
			require.NoError(t, err)
			continue
		}
		require.ErrorContains(t, err, tt.err)
	}
}

func TestUnusedTables(t *testing.T) {
	tests := []struct {
		cfg  Config
		want []string
	}{
		{Config{Mode: ModeWorldAvg}, nil},
		{Config{Mode: ModeCountry, Country: &CountryConfig{Code: "FRA"}}, nil},
		{Config{Mode: ModeWorldAvg, Country: &CountryConfig{Code: "FRA"}}, []string{"country"}},
		{Config{Mode: ModeCountry, Country: &CountryConfig{Code: "FRA"}, IntensityOverride: &OverrideConfig{Intensity: ptr(1.0)}}, []string{"intensity_override"}},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, tt.cfg.unusedTables(), tt.cfg.Mode)
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct {
		name string
		want []string
	}{
		{"world", []string{"world_avg"}},
		{"world-avg", []string{"world_avg"}},
		{"override", []string{"intensity_override"}},
		{"Country", []string{"country"}},
		{"worldavg", []string{"world_avg"}},
		{"xyz", nil},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, suggest(tt.name, modes), tt.name)
	}
}
