package netrc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Entry
		wantErr string
	}{
		{"one line", "machine api.grid5000.fr login jdoe password s3cret\n",
			[]Entry{{"api.grid5000.fr", "jdoe", "s3cret"}}, ""},
		{"multi line and default", "machine a\n  login u1\n  password p1\n# comment\ndefault login u2 password p2\n",
			[]Entry{{"a", "u1", "p1"}, {"", "u2", "p2"}}, ""},
		{"quoted and account", `machine b login "john doe" password "p w" account x`,
			[]Entry{{"b", "john doe", "p w"}}, ""},
		{"macdef skipped", "macdef init\ncd /\nls\n\nmachine c login u password p\n",
			[]Entry{{"c", "u", "p"}}, ""},
		{"empty", "", nil, ""},
		{"missing value", "machine a login", nil, `"login" needs a value`},
		{"login first", "login u", nil, "before any machine"},
		{"garbage", "machine a foo bar", nil, "unexpected token"},
		{"unterminated", `machine "a`, nil, "unterminated quote"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Empty(t, cmp.Diff(tt.want, got))
		})
	}
}

func TestFindAndLookup(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "netrc")
	require.NoError(t, os.WriteFile(path, []byte("machine other login o password x\nmachine API.grid5000.fr login jdoe password s3cret\ndefault login d password dp\n"), 0o600))
	e, found, insecure, err := Lookup(path, "api.grid5000.fr")
	require.NoError(t, err)
	require.True(t, found)
	require.False(t, insecure)
	require.Equal(t, Entry{"API.grid5000.fr", "jdoe", "s3cret"}, e)
	e, found, _, err = Lookup(path, "127.0.0.1")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "d", e.Login)

	require.NoError(t, os.Chmod(path, 0o644))
	_, _, insecure, err = Lookup(path, "x")
	require.NoError(t, err)
	require.True(t, insecure)

	_, found, _, err = Lookup(filepath.Join(dir, "missing"), "x")
	require.NoError(t, err)
	require.False(t, found)

	require.NoError(t, os.WriteFile(path, []byte("machine"), 0o600))
	_, _, _, err = Lookup(path, "x")
	require.ErrorContains(t, err, "netrc")
	require.NotContains(t, err.Error(), "s3cret")
}

func FuzzParse(f *testing.F) {
	f.Add("machine api.grid5000.fr login jdoe password s3cret\n")
	f.Add("macdef x\nfoo\n\ndefault login a password \"b c\"")
	f.Fuzz(func(t *testing.T, in string) {
		entries, err := Parse(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, e := range entries {
			if _, ok := Find(entries, e.Machine); !ok {
				t.Fatalf("entry %q not found back", e.Machine)
			}
		}
	})
}
