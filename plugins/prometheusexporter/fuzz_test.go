package prometheusexporter

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

var validName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// The sanitiser always gives a valid Prometheus name, one byte per
// character of its input, and leaves valid names alone; attribute labels
// are valid label names that never clash with the fixed labels nor use the
// reserved "__" prefix; label values are valid UTF-8 with no raw newline
// or unescaped quote.
func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"", "abc", "123avc", "cpu_percent_%", "énergie", "a\xffb", "__name__", "resource_kind", "a\"b\\c\nd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := Sanitize(s)
		require.Equal(t, utf8.RuneCountInString(s), len(n))
		if s != "" {
			require.Regexp(t, validName, n)
		}
		if validName.MatchString(s) && (s[0] < '0' || s[0] > '9') && s[0] != '_' {
			require.Equal(t, s, n)
		}
		l := AttributeLabel(s)
		require.Regexp(t, validName, l)
		require.False(t, strings.HasPrefix(l, "__"))
		switch l {
		case labelResourceKind, labelResourceID, labelConsumerKind, labelConsumerID:
			t.Fatalf("%q clashes with a fixed label", s)
		}
		v := string(appendLabelValue(nil, s))
		require.True(t, utf8.ValidString(v))
		require.NotContains(t, v, "\n")
		unq := strings.ReplaceAll(v, `\\`, "")
		require.NotRegexp(t, `(^|[^\\])"`, unq)
	})
}
