package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/stretchr/testify/require"
)

// nestedInline is "x = {a = {a = … 1 …}}" with depth levels in all.
func nestedInline(depth int) string {
	return "x = " + strings.Repeat("{a = ", depth-1) + "1" + strings.Repeat("}", depth-1) + "\n"
}

func dotted(n int) string { return strings.TrimSuffix(strings.Repeat("a.", n), ".") }

func TestCheckNesting(t *testing.T) {
	tests := []struct {
		name string
		text string
		line int // 0: accepted
	}{
		{"empty", "", 0},
		{"plain", "[plugins.csv]\noutput_path = \"x\"\n", 0},
		{"inline at the limit", nestedInline(MaxNesting), 0},
		{"inline past the limit", nestedInline(MaxNesting + 1), 1},
		{"inline past the limit, line 3", "\n# c\n" + nestedInline(MaxNesting+1), 3},
		{"arrays at the limit", "x = " + strings.Repeat("[", MaxNesting-1) + strings.Repeat("]", MaxNesting-1) + "\n", 0},
		{"arrays past the limit", "x = " + strings.Repeat("[", MaxNesting) + strings.Repeat("]", MaxNesting) + "\n", 1},
		{"multi-line arrays", "x = [\n" + strings.Repeat("[\n", MaxNesting) + strings.Repeat("]\n", MaxNesting) + "]\n", 1 + MaxNesting - 1},
		{"dotted key at the limit", dotted(MaxNesting) + " = 1\n", 0},
		{"dotted key past the limit", dotted(MaxNesting+1) + " = 1\n", 1},
		{"header past the limit", "[" + dotted(MaxNesting+1) + "]\n", 1},
		{"array of tables past the limit", "[[" + dotted(MaxNesting+1) + "]]\n", 1},
		{"header plus dotted key", "[" + dotted(20) + "]\n" + dotted(13) + " = 1\n", 2},
		{"header then shallow", "[" + dotted(20) + "]\n" + dotted(12) + " = 1\n[b]\n" + dotted(31) + " = 1\n", 0},
		{"quoted keys", "[" + strings.Repeat(`"a.b".`, MaxNesting) + "c]\n", 1},
		{"inline tables in arrays", "x = [" + strings.Repeat("{a = [", 16) + strings.Repeat("]}", 16) + "]\n", 1},
		{"siblings do not add up", strings.Repeat("x = {a = {b = 1}, c = [1, [2]]}\n", 100) + "y = {" + strings.Repeat("a = {b = 1}, ", 100) + "}\n", 0},
		{"brackets in strings", "x = \"" + strings.Repeat("[{", 100) + "\"\ny = '" + strings.Repeat("[{", 100) + "'\n", 0},
		{"brackets in multi-line strings", "x = \"\"\"\n" + strings.Repeat("[{\n", 100) + "\"\"\"\ny = '''" + strings.Repeat("[{", 100) + "'''\n", 0},
		{"escaped quotes", `x = "\"` + strings.Repeat("[", 100) + `"` + "\n", 0},
		{"brackets in comments", "# " + strings.Repeat("[{", 100) + "\nx = 1 # " + strings.Repeat("[", 100) + "\n", 0},
		{"line after a multi-line string", "x = \"\"\"\na\nb\n\"\"\"\n" + nestedInline(40), 5},
		{"invalid: unclosed", "x = " + strings.Repeat("{", 1000), 0},
		{"invalid: garbage", "\x00\xff]]}}{{[[\"'", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.line, checkNesting(tt.text))
		})
	}
}

// TestLoadTooDeepFailsFast: a deep file (64 KB of nested inline tables,
// which took minutes before the limit) or override is rejected with an
// error naming the file (or the flag) and the line, before the decoder.
func TestLoadTooDeep(t *testing.T) {
	deep := "[plugins.csv]\n\n" + "x = " + strings.Repeat("{a = ", 64<<10/5) + "1" + strings.Repeat("}", 64<<10/5) + "\n"
	tests := []struct {
		name     string
		text     string
		override string
		want     string
	}{
		{"file", deep, "", "alumet-config.toml:3: too deeply nested: more than 32 levels"},
		{"override", "", "plugins.csv.x = " + strings.Repeat("[", 5000) + strings.Repeat("]", 5000), "--config-override #1:1: too deeply nested: more than 32 levels"},
		{"override, multi-line", "", "\n[" + dotted(40) + "]\n", "--config-override #1:2: too deeply nested"},
		{"header of the file", "[" + dotted(1000) + "]\n", "", "alumet-config.toml:1: too deeply nested"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := load(t, tt.text, func(o *Options) {
				if tt.override != "" {
					o.Overrides = []string{tt.override}
				}
			})
			require.ErrorIs(t, err, ErrTooDeep)
			var e *Error
			require.True(t, errors.As(err, &e))
			require.Contains(t, errText(t, err), tt.want)
		})
	}
}

// keyDepth is the depth checkNesting bounds for the decoded keys.
func maxKeyLen(keys []toml.Key) int {
	n := 0
	for _, k := range keys {
		n = max(n, len(k))
	}
	return n
}

// FuzzLoadNesting builds nested documents from repeated fragments and
// checks that the loader ends (fast, since the limit comes first) and that
// what the pre-scan lets through is never deeper than MaxNesting.
func FuzzLoadNesting(f *testing.F) {
	f.Add("[plugins.csv]\n", "x = {a = ", "1", "}", uint16(40))
	f.Add("", "a.", "b = 1", "", uint16(40))
	f.Add("x = ", "[", "1", "]", uint16(33))
	f.Add("x = [", "{a = [", "", "]}", uint16(20))
	f.Add("[", "\"a\".", "b]", "", uint16(31))
	f.Add("x = ", "{a = \"\"\"{\n\"\"\", b = ", "1", "}", uint16(40))
	f.Add("", "[[a.", "b]]\n", "", uint16(2))
	f.Fuzz(func(t *testing.T, prefix, open, middle, closing string, n uint16) {
		n %= 2000
		if len(open)+len(closing) > 64 {
			return
		}
		text := prefix + strings.Repeat(open, int(n)) + middle + strings.Repeat(closing, int(n))
		line := checkNesting(text)
		if line < 0 || line > strings.Count(text, "\n")+1 {
			t.Fatalf("line %d out of the text", line)
		}
		o := Options{Specs: testSpecs(), Getenv: env{}.get, Logger: (&logs{}).logger(), Overrides: []string{text}}
		o.setDefaults()
		ld := &Loaded{Path: "alumet-config.toml"}
		if err := loadText(ld, text, o, nil, false); err != nil {
			_ = err.Error()
		}
		if line > 0 {
			return
		}
		var m map[string]any
		md, err := toml.Decode(text, &m)
		if err != nil {
			return
		}
		if d := maxKeyLen(md.Keys()); d > MaxNesting {
			t.Fatalf("checkNesting let a key of %d parts through in %q", d, text)
		}
	})
}
