package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/alumet-go/alumet-agent/internal/redact"
)

// Error is a configuration error, located in the configuration file or in a
// command-line override. Its text is
//
//	<file>:<line>: <section>: <message>                  a key of the file
//	<file> (from --config-override #2): <section>: <msg>  a key set by an override
//	--config-override #2:1:5: <message>                   a syntax error in an override
//
// where each part is left out when unknown. Err is the underlying error, so
// errors.As finds e.g. a *plugin.FieldError or a toml.ParseError through it.
// The text never contains the value of a secret key (see IsSecretKey), and
// goes through redact.String: no URL password, Authorization value or
// registered secret (passwords of the configuration, password_file, netrc).
type Error struct {
	File    string // the configuration file; "" when the error is not about it
	Line    int    // 1-based line in File (or in the override when File is ""); 0 if unknown
	Column  int    // 1-based column; 0 if unknown
	Origin  string // "" for the file, else the flag that set the value: "--config-override #2", "--output-file"
	Section string // the table concerned, e.g. "plugins.csv"; "" for the top level
	Err     error
}

func (e *Error) location() string {
	var b strings.Builder
	switch {
	case e.Origin != "" && e.File != "":
		fmt.Fprintf(&b, "%s (from %s)", e.File, e.Origin)
	case e.Origin != "" || e.File != "":
		b.WriteString(e.Origin + e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
			if e.Column > 0 {
				fmt.Fprintf(&b, ":%d", e.Column)
			}
		}
	}
	return b.String()
}

func (e *Error) Error() string {
	parts := make([]string, 0, 3)
	if loc := e.location(); loc != "" {
		parts = append(parts, loc)
	}
	if e.Section != "" {
		parts = append(parts, e.Section)
	}
	msg := "<nil>"
	if e.Err != nil {
		msg = e.Err.Error()
	}
	return redact.String(strings.Join(append(parts, msg), ": "))
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// msgError shows its own message (e.g. with secrets removed, or without a
// redundant location) but unwraps to the original error.
type msgError struct {
	msg string
	err error
}

func (e *msgError) Error() string { return e.msg }
func (e *msgError) Unwrap() error { return e.err }

// minScrubLen is the length under which a secret value is not searched in
// error messages (replacing every "a" of a message would make it unreadable).
const minScrubLen = 3

// scrub returns err with every occurrence of the given secret strings
// masked in its text (see scrubString). It returns err itself when nothing
// changes.
func scrub(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	msg := err.Error()
	out := scrubString(msg, secrets)
	if out == msg {
		return err
	}
	return &msgError{msg: out, err: err}
}

// scrubString masks the secrets (those of at least minScrubLen bytes) in
// msg, through redact.StringWith, the path every printed text takes.
func scrubString(msg string, secrets []string) string {
	long := make([]string, 0, len(secrets))
	for _, s := range secrets {
		if len(s) >= minScrubLen {
			long = append(long, s)
		}
	}
	return redact.StringWith(msg, long...)
}

const redactedText = "<redacted>"

// secretWords are the parts of key names whose values are never printed.
var secretWords = []string{"password", "passwd", "secret", "token", "api_key", "apikey", "credential", "private_key"}

// IsSecretKey reports whether the values of a key with this name must never
// be printed: the name contains (case-insensitively) "password", "passwd",
// "secret", "token", "api_key", "apikey", "credential" or "private_key".
func IsSecretKey(key string) bool {
	k := strings.ToLower(key)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

func isSecretPath(path []string) bool {
	for _, p := range path {
		if IsSecretKey(p) {
			return true
		}
	}
	return false
}

// tomlTypeName names the TOML type of a decoded value.
func tomlTypeName(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64:
		return "integer"
	case float64:
		return "float"
	case bool:
		return "boolean"
	case time.Time:
		return "datetime"
	case []any, []map[string]any:
		return "array"
	case map[string]any:
		return "table"
	case nil:
		return "nothing"
	default:
		return fmt.Sprintf("%T", v)
	}
}

const maxQuotedLen = 80

// describeValue renders "<type> <value>" for error messages, e.g.
// `string "yes"`, with the value redacted when the key path is secret.
func describeValue(path []string, v any) string {
	t := tomlTypeName(v)
	if _, ok := v.(map[string]any); ok {
		return t
	}
	if isSecretPath(path) {
		return t + " " + redactedText
	}
	return t + " " + renderValue(v)
}

func renderValue(v any) string {
	var s string
	switch x := v.(type) {
	case string:
		if len(x) > maxQuotedLen {
			x = x[:maxQuotedLen] + "…"
		}
		return strconv.Quote(x)
	case time.Time:
		s = x.Format(time.RFC3339Nano)
	case []any:
		items := make([]string, 0, len(x))
		for _, e := range x {
			items = append(items, renderValue(e))
		}
		s = "[" + strings.Join(items, ", ") + "]"
	case []map[string]any:
		s = fmt.Sprintf("[%d tables]", len(x))
	case map[string]any:
		s = "{…}"
	default:
		s = fmt.Sprint(x)
	}
	if len(s) > maxQuotedLen {
		s = s[:maxQuotedLen] + "…"
	}
	return s
}
