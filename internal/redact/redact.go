// Package redact is the one place where secrets are removed from text that
// the agent prints: log lines (internal/logging), configuration errors
// (config) and the errors of the Kwollect client all go through String.
//
// String masks, with Mask ("xxxxx", the form net/url's URL.Redacted uses):
//
//   - the password of the userinfo of any URL-like text, parsable or not:
//     "https://user:pass@host", "//user:pass@host", bad ports, bad escapes,
//     any scheme, IPv6 hosts, several URLs in one string, and passwords that
//     hold '@', ':' or '/' ("https://user:p@ss/w:rd@host" gives
//     "https://user:xxxxx@host");
//   - the value of Authorization (and Proxy-Authorization) headers, in the
//     forms "Authorization: Basic …", `"Authorization":"Bearer …"`,
//     "Authorization:[Basic …]" (a printed http.Header) and
//     "authorization=…": the scheme word is kept, the rest is masked;
//   - every secret given to Register (passwords from the configuration,
//     password_file and netrc), as written and URL-escaped.
//
// The URL rule works on "tokens", runs of text without blanks: in a token
// holding "//" and, after it, a ':' followed later by an '@', everything
// from that ':' to the last '@' of the token is masked. A token that starts
// with a '"' (a URL printed with %q) runs to the closing quote, blanks
// included. It errs on the side
// of masking: an '@' later in the path or in a following URL glued to the
// first one (no blank between them) extends the mask over the host. A user
// name alone ("https://token@host") is kept, as net/url does. A password
// holding a blank in unquoted text splits the token and is masked only
// when it is registered.
package redact

import (
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Mask replaces each secret.
const Mask = "xxxxx"

// MinSecretLen is the length under which Register ignores a secret: masking
// every "ab" of every log line would make the logs unreadable, and such a
// password does not deserve protection from the logs more than from a
// guess. URL passwords and Authorization values are masked whatever their
// length.
const MinSecretLen = 4

var (
	regMu    sync.Mutex
	registry atomic.Pointer[[]string] // sorted longest first; copy on write
)

// Register adds secret (and its URL-escaped forms) to the strings that
// String masks, for the life of the process. Secrets shorter than
// MinSecretLen are ignored. Safe for concurrent use.
func Register(secret string) {
	if len(secret) < MinSecretLen {
		return
	}
	forms := []string{secret, url.PathEscape(secret), url.QueryEscape(secret), url.UserPassword("u", secret).String()[2:]}
	regMu.Lock()
	defer regMu.Unlock()
	var cur []string
	if p := registry.Load(); p != nil {
		cur = *p
	}
	next := append([]string(nil), cur...)
	for _, f := range forms {
		if len(f) >= MinSecretLen && !contains(next, f) {
			next = append(next, f)
		}
	}
	if len(next) == len(cur) {
		return
	}
	sortLongestFirst(next)
	registry.Store(&next)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortLongestFirst(list []string) {
	// Longest first, so that a secret holding another is masked whole.
	sort.SliceStable(list, func(i, j int) bool { return len(list[i]) > len(list[j]) })
}

func registered() []string {
	if p := registry.Load(); p != nil {
		return *p
	}
	return nil
}

// String returns s with the secrets masked (see the package documentation).
// When s holds no '@', no "authorization" and no registered secret, it is
// returned as it is, without allocating.
func String(s string) string { return mask(s, registered(), nil) }

// StringWith is String that also masks the given secrets (of any length
// but empty), for values that must not be printed in one message but are
// not secrets for the whole process (e.g. substituted environment values
// in a syntax error).
func StringWith(s string, secrets ...string) string {
	var extra []string
	for _, x := range secrets {
		if x != "" && strings.Contains(s, x) {
			extra = append(extra, x)
		}
	}
	return mask(s, registered(), extra)
}

func mask(s string, reg, extra []string) string {
	if s == "" {
		return s
	}
	hasAt := strings.IndexByte(s, '@') >= 0
	auth := hasAuthorization(s)
	if !hasAt && !auth && len(extra) == 0 && !containsAny(s, reg) {
		return s
	}
	// URLs and headers first: a registered secret masked first could take
	// away the '@' that shows where a URL password ends.
	if hasAt {
		s = maskURLs(s)
	}
	if auth {
		s = maskAuthorization(s)
	}
	var all []string
	for _, list := range [][]string{reg, extra} {
		for _, x := range list {
			if strings.Contains(s, x) {
				all = append(all, x)
			}
		}
	}
	if len(extra) > 0 {
		sortLongestFirst(all)
	}
	for _, x := range all {
		s = strings.ReplaceAll(s, x, Mask)
	}
	return s
}

func containsAny(s string, list []string) bool {
	for _, x := range list {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

func isBlank(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '\v', '\f':
		return true
	}
	return false
}

// maskURLs masks the userinfo passwords of the tokens of s.
func maskURLs(s string) string {
	var b strings.Builder
	last := 0 // s[:last] is written
	eachPassword(s, func(from, to int) {
		if b.Len() == 0 {
			b.Grow(len(s))
		}
		b.WriteString(s[last:from])
		b.WriteString(Mask)
		last = to
	})
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// eachPassword calls fn with the bounds of each userinfo password of s, in
// order (see the package documentation).
func eachPassword(s string, fn func(from, to int)) {
	for i := 0; i < len(s); {
		j := strings.Index(s[i:], "//")
		if j < 0 {
			return
		}
		start := i + j + 2
		end := tokenEnd(s, start)
		tok := s[start:end]
		at := strings.LastIndexByte(tok, '@')
		colon := strings.IndexByte(tok, ':')
		if at >= 0 && colon >= 0 && colon < at {
			fn(start+colon+1, start+at)
		}
		i = end
	}
}

// RegisterURL registers the userinfo passwords of the URL-like text raw
// (parsable or not), as String would mask them, so that they are masked
// even where they appear without their URL.
func RegisterURL(raw string) {
	eachPassword(raw, func(from, to int) { Register(raw[from:to]) })
}

// tokenEnd is the end of the URL-like text that starts before s[start]:
// the next blank, or, when the text is quoted (a '"' starts it, as %q
// prints URLs) and the closing quote on the same line is further, that
// quote.
func tokenEnd(s string, start int) int {
	tokStart := start
	for tokStart > 0 && !isBlank(s[tokStart-1]) {
		tokStart--
	}
	end := start
	for end < len(s) && !isBlank(s[end]) {
		end++
	}
	if strings.IndexByte(s[tokStart:start], '"') >= 0 {
		for q := start; q < len(s) && s[q] != '\n'; q++ {
			if s[q] == '\\' {
				q++
				continue
			}
			if s[q] == '"' {
				return max(end, q)
			}
		}
	}
	return end
}

const authWord = "authorization"

// hasAuthorization reports whether s holds "authorization" in any case.
func hasAuthorization(s string) bool {
	return indexAuthorization(s, 0) >= 0
}

func indexAuthorization(s string, from int) int {
	for i := from; i+len(authWord) <= len(s); i++ {
		if s[i]|0x20 == 'a' && strings.EqualFold(s[i:i+len(authWord)], authWord) {
			return i
		}
	}
	return -1
}

// maskAuthorization masks the values of the Authorization headers of s.
func maskAuthorization(s string) string {
	for from := 0; ; {
		i := indexAuthorization(s, from)
		if i < 0 {
			return s
		}
		j := i + len(authWord)
		from = j
		for j < len(s) && (s[j] == '"' || s[j] == '\'' || s[j] == ' ' || s[j] == '\t') {
			j++
		}
		if j >= len(s) || (s[j] != ':' && s[j] != '=') {
			continue
		}
		j++
		var closer byte // the quote or bracket that ends the value, if any
		for j < len(s) && strings.IndexByte(" \t\"'[", s[j]) >= 0 {
			switch s[j] {
			case '"', '\'':
				closer = s[j]
			case '[':
				closer = ']'
			}
			j++
		}
		valStart := j
		end := j
		for end < len(s) && s[end] != '\n' && s[end] != '\r' && (closer == 0 || s[end] != closer) {
			if s[end] == '\\' && closer != 0 {
				end++
			}
			end++
		}
		end = min(end, len(s))
		if closer == 0 {
			// Unquoted: the value is one or two words (scheme and credentials).
			end = wordsEnd(s, valStart, end)
		}
		if end <= valStart {
			continue
		}
		// Keep a scheme word ("Basic", "Bearer") followed by credentials.
		k := valStart
		for k < end && isSchemeByte(s[k]) {
			k++
		}
		if k > valStart && k < end && s[k] == ' ' {
			for k < end && s[k] == ' ' {
				k++
			}
			if k < end {
				valStart = k
			}
		}
		s = s[:valStart] + Mask + s[end:]
		from = valStart + len(Mask)
	}
}

// wordsEnd is the end of the first two blank-separated words of s[i:limit]
// when the first one is a scheme word, else of the first word.
func wordsEnd(s string, i, limit int) int {
	k := i
	for k < limit && isSchemeByte(s[k]) {
		k++
	}
	scheme := k > i && k < limit && s[k] == ' '
	k = i
	for k < limit && !isBlank(s[k]) {
		k++
	}
	if !scheme {
		return k
	}
	for k < limit && s[k] == ' ' {
		k++
	}
	for k < limit && !isBlank(s[k]) {
		k++
	}
	return k
}

func isSchemeByte(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'
}
