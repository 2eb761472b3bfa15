package config

import (
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/plugin"
)

type server struct {
	Host   string `toml:"host"`
	Secret string `toml:"secret"`
}

// richConfig has fields of many kinds.
type richConfig struct {
	Small   int8              `toml:"small"`
	Count   uint16            `toml:"count"`
	Big     uint64            `toml:"big"`
	Ratio   float64           `toml:"ratio"`
	Timeout time.Duration     `toml:"timeout"`
	Servers []server          `toml:"servers"`
	Labels  map[string]string `toml:"labels"`
	Ptr     *server           `toml:"ptr"`
	Any     any               `toml:"any"`
	When    time.Time         `toml:"when"`
	Matrix  [][]int           `toml:"matrix"`
	Extra   []any             `toml:"extra"`
}

func (*richConfig) Validate() error { return nil }

func richSpecs() []PluginSpec {
	return []PluginSpec{{Name: "rich", DefaultConfig: func() plugin.Config {
		return &richConfig{Small: 1, Labels: map[string]string{"default": "yes"}}
	}}}
}

func TestDecodeKinds(t *testing.T) {
	text := `[plugins.rich]
small = -128
count = 65535
big = 9223372036854775807
ratio = 2
timeout = "1m30s"
labels = { site = "lyon" }
any = [1, "two"]
when = 2025-07-22T11:05:26Z
matrix = [[1, 2], [3]]

[[plugins.rich.servers]]
host = "a"
[[plugins.rich.servers]]
host = "b"

[plugins.rich.ptr]
host = "p"
`
	ld, _, err := load(t, text, func(o *Options) { o.Specs = richSpecs() })
	require.NoError(t, err)
	want := &richConfig{
		Small: -128, Count: 65535, Big: 9223372036854775807, Ratio: 2, Timeout: 90 * time.Second,
		Servers: []server{{Host: "a"}, {Host: "b"}},
		Labels:  map[string]string{"site": "lyon"}, // a table replaces a map default
		Ptr:     &server{Host: "p"},
		Any:     []any{int64(1), "two"},
		When:    time.Date(2025, 7, 22, 11, 5, 26, 0, time.UTC),
		Matrix:  [][]int{{1, 2}, {3}},
	}
	if diff := cmp.Diff(want, ld.config("rich")); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// sharedDefaults are package variables used as defaults: decoding must not
// write into them.
var (
	sharedSlice  = []string{"a", "b", "c"}
	sharedMap    = map[string]string{"k": "v"}
	sharedServer = &server{Host: "shared"}
)

type sharingConfig struct {
	List   []string          `toml:"list"`
	Labels map[string]string `toml:"labels"`
	Server *server           `toml:"server"`
	Other  *server           `toml:"other"`
}

func (*sharingConfig) Validate() error { return nil }

func TestDecodeDoesNotWriteIntoDefaults(t *testing.T) {
	specs := []PluginSpec{{Name: "s", DefaultConfig: func() plugin.Config {
		return &sharingConfig{List: sharedSlice, Labels: sharedMap, Server: sharedServer, Other: sharedServer}
	}}}
	ld, _, err := load(t, "[plugins.s]\nlist = ['x']\nlabels = { k = 'w' }\nserver = { host = 'h' }\nother.host = 'o'\n", func(o *Options) { o.Specs = specs })
	require.NoError(t, err)
	c := ld.config("s").(*sharingConfig)
	require.Equal(t, []string{"x"}, c.List)
	require.Equal(t, map[string]string{"k": "w"}, c.Labels)
	require.Equal(t, "h", c.Server.Host)
	require.Equal(t, "o", c.Other.Host)
	require.Equal(t, []string{"a", "b", "c"}, sharedSlice)
	require.Equal(t, map[string]string{"k": "v"}, sharedMap)
	require.Equal(t, "shared", sharedServer.Host)
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		want string
	}{
		{"int8 range", "small = 300", `alumet-config.toml:2: plugins.rich: small: expected an integer between -128 and 127, got integer 300`},
		{"uint range", "count = -1", `alumet-config.toml:2: plugins.rich: count: expected an integer between 0 and 65535, got integer -1`},
		{"uint64 negative", "big = -1", `alumet-config.toml:2: plugins.rich: big: expected an integer between 0 and 18446744073709551615, got integer -1`},
		{"float", "ratio = 'x'", `alumet-config.toml:2: plugins.rich: ratio: expected a number, got string "x"`},
		{"bool for an int", "small = true", `alumet-config.toml:2: plugins.rich: small: expected an integer, got boolean true`},
		{"float for an int", "small = 1.5", `alumet-config.toml:2: plugins.rich: small: expected an integer, got float 1.5`},
		{"time.Duration", "timeout = \"5 min\"", `alumet-config.toml:2: plugins.rich: timeout: invalid duration: "5 min"`},
		{"array expected", "matrix = 1", `alumet-config.toml:2: plugins.rich: matrix: expected an array, got integer 1`},
		{"nested array", "matrix = [[1], [\"a\"]]", `alumet-config.toml:2: plugins.rich: matrix: element 1: expected an array of integers (element 0 is a string), got array [[1], ["a"]]`},
		{"table expected", "labels = 'x'", `alumet-config.toml:2: plugins.rich: labels: expected a table, got string "x"`},
		{"map value type", "labels = { a = 1 }", `alumet-config.toml:2: plugins.rich: labels: incompatible types: TOML value has type int64; destination has type string`},
		{"datetime", "when = 'now'", `alumet-config.toml:2: plugins.rich: when: parsing time "now" as "2006-01-02T15:04:05Z07:00": cannot parse "now" as "2006"`},
		{"unknown key in an array of tables", "\n[[plugins.rich.servers]]\nhost = 'a'\n[[plugins.rich.servers]]\nhots = 'b'",
			`alumet-config.toml:6: plugins.rich: unknown key "servers.hots" (valid keys: servers.host, servers.secret; did you mean "servers.host"?)`},
		{"unknown key in an inline array of tables", "servers = [{ host = 'a', port = 1 }]",
			`alumet-config.toml:2: plugins.rich: unknown key "servers.port" (valid keys: servers.host, servers.secret)`},
		{"unknown key under a pointer", "ptr = { hots = 'b' }",
			`alumet-config.toml:2: plugins.rich: unknown key "ptr.hots" (valid keys: ptr.host, ptr.secret; did you mean "ptr.host"?)`},
		{"secret in an array of tables", "servers = [{ secret = 12345 }]",
			`alumet-config.toml:2: plugins.rich: servers: incompatible types: TOML value has type int64; destination has type string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := load(t, "[plugins.rich]\n"+tt.text+"\n", func(o *Options) { o.Specs = richSpecs() })
			require.Equal(t, tt.want, errText(t, err))
		})
	}
}

func TestSecretScrubbedFromDecoderErrors(t *testing.T) {
	type cfg struct {
		*richConfig
		Password Duration `toml:"password"`
	}
	specs := []PluginSpec{{Name: "p", DefaultConfig: func() plugin.Config { return &cfg{richConfig: &richConfig{}} }}}
	_, _, err := load(t, "[plugins.p]\npassword = \"my-secret-pw\"\n", func(o *Options) { o.Specs = specs })
	require.Error(t, err)
	require.NotContains(t, err.Error(), "my-secret-pw")
	require.Contains(t, err.Error(), `password: invalid duration "xxxxx"`)
}

func TestRedactedFallback(t *testing.T) {
	// An inline table in an array escapes the line-based redaction.
	cfg := &richConfig{Extra: []any{map[string]any{"token": "tok-9", "user": "u"}, int64(1)}, Servers: []server{{Host: "h", Secret: "sec-10"}}}
	got := Redacted(cfg)
	require.NotContains(t, got, "tok-9")
	require.NotContains(t, got, "sec-10")
	require.Contains(t, got, `"<redacted>"`)
	require.Contains(t, got, `user = "u"`)
}

func TestStringValues(t *testing.T) {
	v := map[string]any{"a": []any{"x", int64(1), []map[string]any{{"b": "y"}}}, "c": "z"}
	got := stringValues(v)
	require.ElementsMatch(t, []string{"x", "y", "z"}, got)
}

func TestDurationTagBounds(t *testing.T) {
	type inner struct {
		Wait Duration `toml:"wait" duration:"max=1m"`
	}
	type cfg struct {
		*richConfig
		Delay Duration      `toml:"delay" duration:"max=1h"`
		Poll  Duration      `toml:"poll" duration:"min=1s,max=1h"`
		Std   time.Duration `toml:"std" duration:"max=1s"`
		Ptr   *Duration     `toml:"ptr" duration:"max=1h"`
		Free  Duration      `toml:"free"`
		Token Duration      `toml:"token" duration:"max=1s"`
		Inner inner         `toml:"inner"`
	}
	specs := []PluginSpec{{Name: "p", DefaultConfig: func() plugin.Config { return &cfg{richConfig: &richConfig{}} }}}
	tests := []struct {
		name, text, want string // want "" means accepted
	}{
		{"max", `delay = "290y"`, `alumet-config.toml:2: plugins.p: delay = "290y": too long (at most 1h)`},
		{"at max", `delay = "60m"`, ""},
		{"min", `poll = "999ms"`, `alumet-config.toml:2: plugins.p: poll = "999ms": too short (at least 1s)`},
		{"time.Duration", `std = "2s"`, `alumet-config.toml:2: plugins.p: std = "2s": too long (at most 1s)`},
		{"pointer", `ptr = "1d"`, `alumet-config.toml:2: plugins.p: ptr = "1d": too long (at most 1h)`},
		{"no tag", `free = "290y"`, ""},
		{"secret", `token = "2s"`, `alumet-config.toml:2: plugins.p: token = <redacted>: too long (at most 1s)`},
		{"nested", "inner = { wait = \"2m\" }", `alumet-config.toml:2: plugins.p: inner.wait = "2m": too long (at most 1m)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := load(t, "[plugins.p]\n"+tt.text+"\n", func(o *Options) { o.Specs = specs })
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.Equal(t, tt.want, errText(t, err))
		})
	}
}

func TestDurationTagOverride(t *testing.T) {
	type cfg struct {
		*richConfig
		Delay Duration `toml:"delay" duration:"max=1h"`
	}
	specs := []PluginSpec{{Name: "p", DefaultConfig: func() plugin.Config { return &cfg{richConfig: &richConfig{}} }}}
	_, _, err := load(t, "[plugins.p]\n", func(o *Options) {
		o.Specs = specs
		o.Overrides = []string{`plugins.p.delay = "2h"`}
	})
	require.Equal(t, `alumet-config.toml (from --config-override #1): plugins.p: delay = "2h": too long (at most 1h)`, errText(t, err))
}

func TestDurationBoundsTag(t *testing.T) {
	tests := []struct {
		tag     reflect.StructTag
		lo, hi  time.Duration
		wantErr bool
	}{
		{``, 0, 0, false},
		{`duration:"max=1h"`, 0, time.Hour, false},
		{`duration:"min=1s, max=1m"`, time.Second, time.Minute, false},
		{`duration:"max=1 hour"`, 0, time.Hour, false},
		{`duration:"max=forever"`, 0, 0, true},
		{`duration:"top=1s"`, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(string(tt.tag), func(t *testing.T) {
			lo, hi, err := durationBounds(tt.tag)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, []time.Duration{tt.lo, tt.hi}, []time.Duration{lo, hi})
		})
	}
}
