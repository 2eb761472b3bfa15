package jsontext

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAppendString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", `""`},
		{"taurus-7", `"taurus-7"`},
		{"a\"b\\c\nd\re\tf\x01g", `"a\"b\\c\nd\re\tf\u0001g"`},
		{"<&>", `"<&>"`},
		{"\u2028\u2029", `"\u2028\u2029"`},
		{"é\xffü\xfe", `"é\ufffdü\ufffd"`},
	} {
		require.Equal(t, tc.want, string(AppendString(nil, tc.in)), "%q", tc.in)
	}
}

// FuzzAppendString checks the escaping against encoding/json: the text is
// a valid JSON string that decodes to s, with one U+FFFD per invalid byte.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "a\"b\\c\nd\te\x01f", "\u2028\u2029", "\xff\xfe", "é😀", "</script>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := AppendString([]byte("x"), s)
		var got string
		if err := json.Unmarshal(b[1:], &got); err != nil {
			t.Fatalf("AppendString(%q) = %s: %v", s, b[1:], err)
		}
		if want := string([]rune(s)); got != want {
			t.Fatalf("AppendString(%q) decodes to %q, want %q", s, got, want)
		}
	})
}
