package redact

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// resetForTest empties the registry.
func resetForTest(t *testing.T) {
	t.Helper()
	regMu.Lock()
	defer regMu.Unlock()
	registry.Store(nil)
}

func TestStringURLs(t *testing.T) {
	resetForTest(t)
	tests := []struct {
		name, in, want string
	}{
		{"plain", "https://user:pass@api.grid5000.fr/stable", "https://user:xxxxx@api.grid5000.fr/stable"},
		{"no password", "https://user@host/x", "https://user@host/x"},
		{"no userinfo", "https://api.grid5000.fr/stable/sites", "https://api.grid5000.fr/stable/sites"},
		{"empty password", "https://user:@host", "https://user:xxxxx@host"},
		{"empty user", "https://:pass@host", "https://:xxxxx@host"},
		{"scheme-relative", "//user:pass@host/x", "//user:xxxxx@host/x"},
		{"bad port", "http://user:pass@host:80x/", "http://user:xxxxx@host:80x/"},
		{"port", "https://user:pass@host:8443/stable", "https://user:xxxxx@host:8443/stable"},
		{"ftp", "ftp://user:pass@host/", "ftp://user:xxxxx@host/"},
		{"bad escape", "https://user:pa%zzss@host/", "https://user:xxxxx@host/"},
		{"bad escape in host", "https://user:pass@ho%zzst/", "https://user:xxxxx@ho%zzst/"},
		{"blank unquoted: not a URL", "https://us er:pass@host", "https://us er:pass@host"},
		{"blank quoted", `api_url "https://us er:pa ss@host" bad`, `api_url "https://us er:xxxxx@host" bad`},
		{"quoted then more", `"https://u:p@h" and "x@y"`, `"https://u:xxxxx@h" and "x@y"`},
		{"no scheme colon", "https//user:pass@host", "https//user:xxxxx@host"},
		{"ipv6", "https://user:pass@[::1]:8443/x", "https://user:xxxxx@[::1]:8443/x"},
		{"ipv6 no userinfo", "https://[::1]:8443/x", "https://[::1]:8443/x"},
		{"at in password", "https://user:p@ss@host/x", "https://user:xxxxx@host/x"},
		{"colon in password", "https://user:p:a:ss@host", "https://user:xxxxx@host"},
		{"slash in password", "https://user:pa/ss@host/x", "https://user:xxxxx@host/x"},
		{"double slash in password", "https://user://ss@host/x", "https://user:xxxxx@host/x"},
		{"escaped password", "https://user:p%40ss%2F@host", "https://user:xxxxx@host"},
		{"two urls", "from https://a:one@h1/x to http://b:two@h2/y", "from https://a:xxxxx@h1/x to http://b:xxxxx@h2/y"},
		{"glued urls mask more", "https://a:one@h1,https://b:two@h2", "https://a:xxxxx@h2"},
		{"quoted", `api_url "https://user:pass@host:bad" is not`, `api_url "https://user:xxxxx@host:bad" is not`},
		{"quoted escape", `parse "https://u:p\"w@host": invalid`, `parse "https://u:xxxxx@host": invalid`},
		{"newline ends", "https://user:pass\n@host", "https://user:pass\n@host"},
		{"email", "write to alice@example.org", "write to alice@example.org"},
		{"at in path after port masks", "https://host:8443/x@y", "https://host:xxxxx@y"},
		{"in key=value", "url=https://user:pass@host/x ok", "url=https://user:xxxxx@host/x ok"},
		{"mailto", "mailto:user:pass@host", "mailto:user:pass@host"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, String(tt.in))
		})
	}
}

func TestStringAuthorization(t *testing.T) {
	resetForTest(t)
	tests := []struct {
		name, in, want string
	}{
		{"basic", "Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic xxxxx"},
		{"bearer lower", "authorization: bearer abc.def-ghi", "authorization: bearer xxxxx"},
		{"no scheme", "Authorization: abcdef", "Authorization: xxxxx"},
		{"json", `{"Authorization":"Bearer tok123","X":1}`, `{"Authorization":"Bearer xxxxx","X":1}`},
		{"header map", "map[Authorization:[Basic dXNlcjpwYXNz] Accept:[*/*]]", "map[Authorization:[Basic xxxxx] Accept:[*/*]]"},
		{"equals", "authorization=Basic abc def", "authorization=Basic xxxxx def"},
		{"proxy", "Proxy-Authorization: Basic abc", "Proxy-Authorization: Basic xxxxx"},
		{"mixed case", "AuThOrIzAtIoN: Basic abc", "AuThOrIzAtIoN: Basic xxxxx"},
		{"digest quoted", `"authorization": "Digest username=\"u\", response=\"abc\""`, `"authorization": "Digest xxxxx"`},
		{"two", "Authorization: Basic a1\nAuthorization: Bearer b2", "Authorization: Basic xxxxx\nAuthorization: Bearer xxxxx"},
		{"prose", "Authorization failed (401)", "Authorization failed (401)"},
		{"empty value", "Authorization:", "Authorization:"},
		{"word only", "authorization", "authorization"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, String(tt.in))
		})
	}
}

func TestRegister(t *testing.T) {
	resetForTest(t)
	Register("abc") // too short: ignored
	Register("S3cr:t/pw@x")
	Register("S3cr:t/pw@x") // twice: once in the registry
	Register("hunter2")
	tests := []struct {
		name, in, want string
	}{
		{"short ignored", "abc", "abc"},
		{"plain", "the password is hunter2.", "the password is xxxxx."},
		{"twice", "hunter2hunter2", "xxxxxxxxxx"},
		{"path escaped", "x " + url.PathEscape("S3cr:t/pw@x"), "x xxxxx"},
		{"query escaped", "p=" + url.QueryEscape("S3cr:t/pw@x"), "p=xxxxx"},
		{"userinfo escaped", "https://u:" + url.UserPassword("u", "S3cr:t/pw@x").String()[2:] + "@h", "https://u:xxxxx@h"},
		{"none", "nothing to hide", "nothing to hide"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, String(tt.in))
		})
	}
	require.Len(t, registered(), 4, "the escaped forms are kept once: %q", registered())
}

func TestStringWith(t *testing.T) {
	resetForTest(t)
	Register("longsecret")
	tests := []struct {
		name    string
		in      string
		secrets []string
		want    string
	}{
		{"extra", "value VAL here", []string{"VAL"}, "value xxxxx here"},
		{"empty ignored", "abc", []string{""}, "abc"},
		{"longest first", "ab abc", []string{"ab", "abc"}, "xxxxx xxxxx"},
		{"with registered", "longsecret and VAL", []string{"VAL"}, "xxxxx and xxxxx"},
		{"extra inside registered", "longsecret", []string{"sec"}, "xxxxx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, StringWith(tt.in, tt.secrets...))
		})
	}
}

func TestFastPathDoesNotAllocate(t *testing.T) {
	resetForTest(t)
	Register("hunter2")
	line := "[2026-01-01T00:00:00Z INFO  alumet_agent] fetched 1234 rows from https://api.grid5000.fr/stable/sites/lyon"
	allocs := testing.AllocsPerRun(100, func() { _ = String(line) })
	require.Zero(t, allocs)
}

func TestRegisterConcurrent(t *testing.T) {
	resetForTest(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			secret := fmt.Sprintf("secret-%d", i)
			Register(secret)
			require.NotContains(t, String("pw "+secret), secret)
		}()
	}
	wg.Wait()
	for i := range 8 {
		require.NotContains(t, String(fmt.Sprintf("secret-%d", i)), "secret")
	}
}

func BenchmarkStringFastPath(b *testing.B) {
	Register("hunter2")
	line := "[2026-01-01T00:00:00Z INFO  alumet_agent] fetched 1234 rows from https://api.grid5000.fr/stable/sites/lyon"
	for b.Loop() {
		_ = String(line)
	}
}

// FuzzString checks that a registered secret and the password of a URL
// (without blanks, which end a URL) never survive, whatever surrounds them.
func FuzzString(f *testing.F) {
	f.Add("see ", "https", "user", "pa:ss", "host:80x", "/path", "reg1")
	f.Add("", "ftp", "u@v", "p@ss/w", "[::1]", " and //x:y@z", "hunter2")
	f.Add("x//", "", "", "%zz", "h", "@", "")
	f.Fuzz(func(t *testing.T, pre, scheme, user, password, host, post, secret string) {
		resetForTest(t)
		Register(secret)
		if strings.ContainsAny(scheme+user+password+host, " \t\n\r\v\f") {
			return
		}
		in := pre + scheme + "://" + user + ":" + password + "@" + host + post
		out := String(in)
		if len(secret) >= MinSecretLen && strings.Contains(out, secret) && !strings.Contains(Mask, secret) {
			t.Fatalf("registered secret %q survives in %q (from %q)", secret, out, in)
		}
		// The password is gone from where it was: what follows "user:" in
		// the output up to the next '@' is the mask (the mask may start
		// earlier or end later, never later start).
		if password == "" || strings.Contains(Mask, password) {
			return
		}
		if strings.Count(out, password) > strings.Count(pre+scheme+"://"+user+":"+Mask+"@"+host+post, password) {
			t.Fatalf("password %q survives in %q (from %q)", password, out, in)
		}
	})
}

func TestRegisterURL(t *testing.T) {
	resetForTest(t)
	RegisterURL("https://alice:Pa/ss@wrd@host:80x/ and ftp://bob:bobpw@h")
	RegisterURL("https://carol@host") // no password
	require.Equal(t, "x xxxxx y xxxxx carol", String("x Pa/ss@wrd y bobpw carol"))
}
