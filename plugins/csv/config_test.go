package csv

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/plugin"
)

func TestDefaultConfig(t *testing.T) {
	want := &Config{
		OutputPath: "alumet-output.csv", ForceFlush: true, AppendUnitToMetricName: true,
		UseUnitDisplayName: true, CSVDelimiter: ";", CSVLateDelimiter: ",", Append: false,
	}
	if diff := cmp.Diff(want, DefaultConfig()); diff != "" {
		t.Fatalf("DefaultConfig (-want +got):\n%s", diff)
	}
	require.NoError(t, DefaultConfig().Validate())
	require.Equal(t, Options{Delimiter: ';', LateDelimiter: ',', AppendUnitToMetricName: true, UseUnitDisplayName: true}, DefaultOptions())
}

func TestConfigTOMLKeys(t *testing.T) {
	var keys []string
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("toml"), ",")
		keys = append(keys, name)
	}
	require.Equal(t, []string{"output_path", "force_flush", "append_unit_to_metric_name", "use_unit_display_name",
		"csv_delimiter", "csv_late_delimiter", "append"}, keys)
}

// sample.toml is the default section: decoding it changes nothing, every key
// in it is known, and every key of Config is documented in it.
func TestSampleConfig(t *testing.T) {
	var doc struct {
		Plugins struct {
			CSV *Config `toml:"csv"`
		} `toml:"plugins"`
	}
	doc.Plugins.CSV = DefaultConfig()
	doc.Plugins.CSV.ForceFlush = false // must be set back by the sample
	md, err := toml.Decode(SampleConfig, &doc)
	require.NoError(t, err)
	require.Empty(t, md.Undecoded())
	require.Equal(t, DefaultConfig(), doc.Plugins.CSV)
	for _, k := range []string{"output_path", "force_flush", "append_unit_to_metric_name", "use_unit_display_name",
		"csv_delimiter", "csv_late_delimiter", "append"} {
		require.Contains(t, SampleConfig, k+" = ")
	}
}

// The generated default section must stay loadable by Alumet, whose csv
// plugin has no append key: it is omitted while false.
func TestEncodeDefaultOmitsAppend(t *testing.T) {
	var sb strings.Builder
	require.NoError(t, toml.NewEncoder(&sb).Encode(DefaultConfig()))
	require.Equal(t, `output_path = "alumet-output.csv"
force_flush = true
append_unit_to_metric_name = true
use_unit_display_name = true
csv_delimiter = ";"
csv_late_delimiter = ","
`, sb.String())
}

func TestDecodePartialSection(t *testing.T) {
	cfg := DefaultConfig()
	md, err := toml.Decode("output_path = 'run1.csv'\nappend = true\ncsv_delimiter = \"\\t\"\n", cfg)
	require.NoError(t, err)
	require.Empty(t, md.Undecoded())
	require.NoError(t, cfg.Validate())
	require.Equal(t, "run1.csv", cfg.OutputPath)
	require.True(t, cfg.Append)
	require.True(t, cfg.ForceFlush)
	require.Equal(t, '\t', cfg.Options().Delimiter)
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name   string
		modify func(c *Config)
		keys   []string // keys of the expected FieldErrors, in order
		msg    string
	}{
		{"default", func(*Config) {}, nil, ""},
		{"tab and pipe", func(c *Config) { c.CSVDelimiter, c.CSVLateDelimiter = "\t", "|" }, nil, ""},
		{"multibyte", func(c *Config) { c.CSVDelimiter = "§" }, nil, ""},
		{"swapped", func(c *Config) { c.CSVDelimiter, c.CSVLateDelimiter = ",", ";" }, nil, ""},
		{"empty path", func(c *Config) { c.OutputPath = "" }, []string{"output_path"}, "must not be empty"},
		{"empty delimiter", func(c *Config) { c.CSVDelimiter = "" }, []string{"csv_delimiter"}, "exactly one character"},
		{"two chars", func(c *Config) { c.CSVDelimiter = ";;" }, []string{"csv_delimiter"}, `got ";;"`},
		{"invalid utf8", func(c *Config) { c.CSVDelimiter = "\xff" }, []string{"csv_delimiter"}, "exactly one character"},
		{"quote", func(c *Config) { c.CSVDelimiter = `"` }, []string{"csv_delimiter"}, "cannot be used"},
		{"newline", func(c *Config) { c.CSVLateDelimiter = "\n" }, []string{"csv_late_delimiter"}, "cannot be used"},
		{"cr", func(c *Config) { c.CSVLateDelimiter = "\r" }, []string{"csv_late_delimiter"}, "cannot be used"},
		{"same", func(c *Config) { c.CSVLateDelimiter = ";" }, []string{"csv_late_delimiter"}, "must differ"},
		{"several", func(c *Config) { c.OutputPath, c.CSVDelimiter, c.CSVLateDelimiter = "", "ab", "" },
			[]string{"output_path", "csv_delimiter", "csv_late_delimiter"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.modify(c)
			err := c.Validate()
			if tc.keys == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			var errs []error
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			} else {
				errs = []error{err}
			}
			var keys []string
			for _, e := range errs {
				var fe *plugin.FieldError
				require.True(t, errors.As(e, &fe), "%v is not a FieldError", e)
				keys = append(keys, fe.Key)
			}
			require.Equal(t, tc.keys, keys)
			require.ErrorContains(t, err, tc.msg)
		})
	}
}
