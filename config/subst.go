package config

import (
	"fmt"
	"strings"
)

// substitution is the result of substituting ${VAR} in a config file.
type substitution struct {
	text string
	// lineMap[n] is the line of the original file from which line n (1-based)
	// of text comes; it differs only when a value holds newlines.
	lineMap []int
	// values are the substituted values, removed from syntax error messages.
	values []string
}

// originalLine maps a line of the substituted text to the file's line.
func (s *substitution) originalLine(line int) int {
	if line <= 0 {
		return 0
	}
	if line < len(s.lineMap) {
		return s.lineMap[line]
	}
	if len(s.lineMap) > 1 {
		return s.lineMap[len(s.lineMap)-1]
	}
	return line
}

func isNameStart(c byte) bool { return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') }
func isNameByte(c byte) bool  { return isNameStart(c) || (c >= '0' && c <= '9') }

// substitute replaces every ${NAME} of text (comments included) by the value
// of the environment variable NAME, with NAME = [A-Za-z_][A-Za-z0-9_]*.
// `\${` gives a literal `${`. An unset variable, an unclosed `${` (no `}` on
// the same line) and an invalid name are errors located in file at their
// line. Substituted values are inserted as they are, not re-scanned.
func substitute(file, text string, getenv func(string) (string, bool)) (*substitution, error) {
	var b strings.Builder
	b.Grow(len(text))
	sub := &substitution{lineMap: []int{0, 1}}
	line := 1
	locErr := func(format string, args ...any) error {
		return &Error{File: file, Line: line, Err: fmt.Errorf(format, args...)}
	}
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == '\n':
			line++
			sub.lineMap = append(sub.lineMap, line)
			b.WriteByte(c)
			i++
		case c == '\\' && strings.HasPrefix(text[i+1:], "${"):
			b.WriteString("${")
			i += 3
		case c == '$' && strings.HasPrefix(text[i+1:], "{"):
			rest := text[i+2:]
			end := strings.IndexAny(rest, "}\n")
			if end < 0 || rest[end] != '}' {
				return nil, locErr("unclosed ${ (missing '}' before the end of the line; write \\${ for a literal ${)")
			}
			name := rest[:end]
			if !validEnvName(name) {
				return nil, locErr("invalid environment variable name %q in ${%s} (expected letters, digits and '_', not starting with a digit; write \\${ for a literal ${)", name, name)
			}
			value, ok := getenv(name)
			if !ok {
				return nil, locErr("the environment variable %s does not exist", name)
			}
			b.WriteString(value)
			for range strings.Count(value, "\n") {
				sub.lineMap = append(sub.lineMap, line)
			}
			if value != "" {
				sub.values = append(sub.values, value)
			}
			i += 2 + end + 1
		default:
			b.WriteByte(c)
			i++
		}
	}
	sub.text = b.String()
	return sub, nil
}

func validEnvName(name string) bool {
	if name == "" || !isNameStart(name[0]) {
		return false
	}
	for i := 1; i < len(name); i++ {
		if !isNameByte(name[i]) {
			return false
		}
	}
	return true
}
