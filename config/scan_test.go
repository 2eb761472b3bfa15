package config

import (
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

func TestScanKeyLines(t *testing.T) {
	text := `# comment with [brackets] and key = "value"
top = 1
str = "a # not a comment \" [x]"
multi = """
line = 2
"""
lit = '''
[not.a.table]
'''
arr = [
  1, # comment
  { a = 1 },
  [2, 3],
]
"quoted key".'lit key' = true
esc."\u0041B" = 1

[plugins.csv] # trailing comment
output_path = "x"
inline = { a = 1, b.c = { d = 2 },
  e = 3 }

[ plugins . "kwollect-input" ]
site = 'lyon'

[[arrays]]
x = 1
[[arrays]]
x = 2
date = 1979-05-27 07:32:00Z
last = 1
`
	// The scanner only runs on valid TOML.
	var m map[string]any
	_, err := toml.Decode(text, &m)
	require.NoError(t, err)

	got := scanLines(text)
	want := map[string]int{
		pathKey("top"):                                     2,
		pathKey("str"):                                     3,
		pathKey("multi"):                                   4,
		pathKey("lit"):                                     7,
		pathKey("arr"):                                     10,
		pathKey("arr", "a"):                                12,
		pathKey("quoted key"):                              15,
		pathKey("quoted key", "lit key"):                   15,
		pathKey("esc"):                                     16,
		pathKey("esc", "AB"):                               16,
		pathKey("plugins"):                                 18,
		pathKey("plugins", "csv"):                          18,
		pathKey("plugins", "csv", "output_path"):           19,
		pathKey("plugins", "csv", "inline"):                20,
		pathKey("plugins", "csv", "inline", "a"):           20,
		pathKey("plugins", "csv", "inline", "b"):           20,
		pathKey("plugins", "csv", "inline", "b", "c"):      20,
		pathKey("plugins", "csv", "inline", "b", "c", "d"): 20,
		pathKey("plugins", "csv", "inline", "e"):           21,
		pathKey("plugins", "kwollect-input"):               23,
		pathKey("plugins", "kwollect-input", "site"):       24,
		pathKey("arrays"):                                  26,
		pathKey("arrays", "x"):                             27,
		pathKey("arrays", "date"):                          30,
		pathKey("arrays", "last"):                          31,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestScanKeyLinesTerminatesOnGarbage(t *testing.T) {
	for _, s := range []string{"[", "[[", "a", "a =", `a = "`, `a = """`, "a = '''", "a = [", "a = {", `"\`, `"\u12`, "a.", "= 1", "[a\n", "a = { b = [ {", "\x00\xff"} {
		_ = scanLines(s)
	}
}

func TestEditDistanceAndSuggest(t *testing.T) {
	require.Equal(t, 0, EditDistance("abc", "abc"))
	require.Equal(t, 1, EditDistance("ouput_path", "output_path"))
	require.Equal(t, 1, EditDistance("ab", "ba"))
	require.Equal(t, 3, EditDistance("", "abc"))
	require.Equal(t, 1, EditDistance("µs", "μs"))

	candidates := []string{"csv", "kwollect-input", "kwollect-output"}
	require.Equal(t, []string{"kwollect-input", "kwollect-output"}, suggest("kwollect", candidates))
	require.Equal(t, []string{"kwollect-output"}, suggest("kwollect-ouput", candidates))
	require.Equal(t, []string{"csv"}, suggest("csb", candidates))
	require.Empty(t, suggest("x", candidates))
	require.Empty(t, suggest("zzzzzz", candidates))
	require.Equal(t, []string{"force_flush"}, suggest("flush", []string{"output_path", "force_flush"}))

	require.Equal(t, "", orList(nil))
	require.Equal(t, "'a'", orList([]string{"a"}))
	require.Equal(t, "'a' or 'b'", orList([]string{"a", "b"}))
	require.Equal(t, "'a', 'b' or 'c'", orList([]string{"a", "b", "c"}))
}

// pathKey is the map key of a key path in scanLines's result.
func pathKey(path ...string) string { return strings.Join(path, "\x00") }

// scanLines returns the lines scanKeyLines finds, by pathKey.
func scanLines(text string) map[string]int {
	root := newKeyNode()
	scanKeyLines(text, root, func(l int) int { return l })
	out := map[string]int{}
	var walk func(path []string, n *keyNode)
	walk = func(path []string, n *keyNode) {
		if n.hasLoc {
			out[pathKey(path...)] = n.loc.line
		}
		for k, c := range n.children {
			walk(append(path[:len(path):len(path)], k), c)
		}
	}
	walk(nil, root)
	return out
}
