package parquet

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/config"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/plugin"
)

var allKeys = []string{"output_path", "append_unit_to_metric_name", "use_unit_display_name", "attribute_columns",
	"compression", "row_group_rows", "rotate_interval", "rotate_rows"}

func TestConfigTOMLKeys(t *testing.T) {
	var keys []string
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("toml"), ",")
		keys = append(keys, name)
	}
	require.Equal(t, allKeys, keys)
	require.NoError(t, DefaultConfig().Validate())
}

// sample.toml is the default section: decoding it changes nothing, every key
// in it is known, and every key of Config is documented in it.
func TestSampleConfig(t *testing.T) {
	var doc struct {
		Plugins struct {
			Parquet *Config `toml:"parquet"`
		} `toml:"plugins"`
	}
	doc.Plugins.Parquet = &Config{}
	md, err := toml.Decode(SampleConfig, &doc)
	require.NoError(t, err)
	require.Empty(t, md.Undecoded())
	require.Equal(t, DefaultConfig(), doc.Plugins.Parquet)
	for _, k := range allKeys {
		require.Contains(t, SampleConfig, "\n"+k+" = ")
	}
}

// A generated configuration holds the section disabled, and loads with the
// plugin off; enabling it is removing one line.
func TestGeneratedSectionIsDisabled(t *testing.T) {
	spec := config.SpecOf(Factory())
	text, err := config.Generate([]config.PluginSpec{spec})
	require.NoError(t, err)
	require.Contains(t, string(text), "[plugins.parquet]\n")
	require.Contains(t, string(text), "\nenabled = false\n")
	dir := t.TempDir()
	path := filepath.Join(dir, "alumet-config.toml")
	require.NoError(t, os.WriteFile(path, text, 0o644))
	loaded, err := config.Load(config.Options{Path: path, Specs: []config.PluginSpec{spec}})
	require.NoError(t, err)
	require.Empty(t, loaded.Enabled)
	on := strings.Replace(string(text), "enabled = false\n", "", 1)
	require.NoError(t, os.WriteFile(path, []byte(on), 0o644))
	loaded, err = config.Load(config.Options{Path: path, Specs: []config.PluginSpec{spec}})
	require.NoError(t, err)
	require.Len(t, loaded.Enabled, 1)
	require.Equal(t, DefaultConfig(), loaded.Enabled[0].Config)
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name   string
		modify func(c *Config)
		keys   []string
		msg    string
	}{
		{"default", func(*Config) {}, nil, ""},
		{"no attribute columns", func(c *Config) { c.AttributeColumns = nil }, nil, ""},
		{"every codec", func(c *Config) { c.Compression = "none" }, nil, ""},
		{"rotation off", func(c *Config) { c.RotateInterval, c.RotateRows = 0, 0 }, nil, ""},
		{"empty path", func(c *Config) { c.OutputPath = "" }, []string{"output_path"}, "must not be empty"},
		{"directory path", func(c *Config) { c.OutputPath = "out/" }, []string{"output_path"}, "not a directory"},
		{"fixed column", func(c *Config) { c.AttributeColumns = []string{"metric_id", "value"} }, []string{"attribute_columns[1]"}, "already a column"},
		{"late column", func(c *Config) { c.AttributeColumns = []string{LateColumn} }, []string{"attribute_columns[0]"}, "already a column"},
		{"twice", func(c *Config) { c.AttributeColumns = []string{"a", "a"} }, []string{"attribute_columns[1]"}, "listed twice"},
		{"empty name", func(c *Config) { c.AttributeColumns = []string{""} }, []string{"attribute_columns[0]"}, "non-empty"},
		{"codec", func(c *Config) { c.Compression = "brotli" }, []string{"compression"}, "zstd, snappy, gzip, lz4, none"},
		{"row group 0", func(c *Config) { c.RowGroupRows = 0 }, []string{"row_group_rows"}, "between 1 and"},
		{"row group huge", func(c *Config) { c.RowGroupRows = MaxRowGroupRows + 1 }, []string{"row_group_rows"}, "between 1 and"},
		{"interval too short", func(c *Config) { c.RotateInterval = 1e6 }, []string{"rotate_interval"}, "at least 1s"},
		{"negative rows", func(c *Config) { c.RotateRows = -1 }, []string{"rotate_rows"}, "positive"},
		{"several", func(c *Config) { c.OutputPath, c.Compression = "", "x" }, []string{"output_path", "compression"}, ""},
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
			errs := []error{err}
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
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

func TestFilesConfig(t *testing.T) {
	var fc plugin.FilesConfig = DefaultConfig()
	require.Equal(t, []plugin.File{{Key: "output_path", Path: "alumet-output.parquet"}}, fc.Files())
}

// The late column's JSON is what encoding/json reads back: every string,
// every attribute type.
func FuzzLateJSON(f *testing.F) {
	for _, s := range []string{"", "plain", `"quoted" \ back`, "\x00\x1f\n\r\t", "é€😀", "\xff\xfe", "\u2028"} {
		f.Add(s, uint64(3), 0.5, true)
	}
	f.Fuzz(func(t *testing.T, s string, u uint64, x float64, b bool) {
		attrs := []measure.Attribute{
			{Key: s, Value: measure.String(s)},
			{Key: "u", Value: measure.AttrValue{Type: measure.AttrU64, U64: u}},
			{Key: "x", Value: measure.AttrValue{Type: measure.AttrF64, F64: x}},
			{Key: "b", Value: measure.AttrValue{Type: measure.AttrBool, Bool: b}},
			{Key: "l", Value: measure.AttrValue{Type: measure.AttrU64List, List: []uint64{u, 1}}},
		}
		rb := newRowBuilder(measure.NewRegistry(), Options{})
		rb.lateIdx = []int{0, 1, 2, 3, 4}
		out := rb.lateJSON(attrs)
		dec := json.NewDecoder(strings.NewReader(string(out)))
		dec.UseNumber()
		var m map[string]any
		require.NoError(t, dec.Decode(&m), "%q", out)
		want := string([]rune(s)) // each invalid byte is U+FFFD, as with encoding/json
		if s != "u" && s != "x" && s != "b" && s != "l" {
			require.Equal(t, want, m[want], "%q", out)
		}
		require.Equal(t, json.Number(measure.AttrValue{Type: measure.AttrU64, U64: u}.String()), m["u"])
		require.Equal(t, b, m["b"])
		xs := measure.AttrValue{Type: measure.AttrF64, F64: x}.String()
		switch xs {
		case "NaN", "inf", "-inf":
			require.Equal(t, xs, m["x"])
		default:
			require.Equal(t, json.Number(xs), m["x"])
		}
	})
}

// The README's configuration block is the default section.
func TestReadmeConfigBlock(t *testing.T) {
	b, err := os.ReadFile("README.md")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(b), "```toml\n")
	require.True(t, ok)
	block, _, ok := strings.Cut(rest, "```")
	require.True(t, ok)
	var doc struct {
		Plugins struct {
			Parquet *Config `toml:"parquet"`
		} `toml:"plugins"`
	}
	doc.Plugins.Parquet = &Config{}
	md, err := toml.Decode(block, &doc)
	require.NoError(t, err)
	require.Empty(t, md.Undecoded())
	require.Equal(t, DefaultConfig(), doc.Plugins.Parquet)
}
