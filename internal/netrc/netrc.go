// Package netrc reads credentials from a ~/.netrc file, the way curl -n and
// the Grid'5000 documentation use it: "machine api.grid5000.fr login <user>
// password <pwd>".
package netrc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/alumet-go/alumet-agent/internal/redact"
)

// Entry is one machine (or the default) of a netrc file.
type Entry struct {
	Machine  string // empty for the default entry
	Login    string
	Password string
}

// Parse reads netrc entries. Tokens are separated by blanks and newlines;
// "macdef" bodies (up to an empty line) are skipped; a token may be quoted
// with double quotes (as curl accepts) to hold blanks. Every password read
// is registered with redact.Register, so that no log line or error prints it.
func Parse(r io.Reader) ([]Entry, error) {
	toks, err := tokenize(r)
	if err != nil {
		return nil, err
	}
	var entries []Entry
	var cur *Entry
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t.macro {
			continue
		}
		value := func() (string, error) {
			if i+1 >= len(toks) || toks[i+1].macro {
				return "", fmt.Errorf("line %d: %q needs a value", t.line, t.text)
			}
			i++
			return toks[i].text, nil
		}
		switch t.text {
		case "machine":
			m, err := value()
			if err != nil {
				return nil, err
			}
			entries = append(entries, Entry{Machine: m})
			cur = &entries[len(entries)-1]
		case "default":
			entries = append(entries, Entry{})
			cur = &entries[len(entries)-1]
		case "login", "password", "account":
			v, err := value()
			if err != nil {
				return nil, err
			}
			if cur == nil {
				return nil, fmt.Errorf("line %d: %q before any machine", t.line, t.text)
			}
			switch t.text {
			case "login":
				cur.Login = v
			case "password":
				cur.Password = v
				redact.Register(v)
			}
		default:
			return nil, fmt.Errorf("line %d: unexpected token (expected machine, default, login, password, account or macdef)", t.line)
		}
	}
	return entries, nil
}

type token struct {
	text  string
	line  int
	macro bool // inside a macdef body
}

func tokenize(r io.Reader) ([]token, error) {
	var toks []token
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line, inMacro := 0, false
	for sc.Scan() {
		line++
		text := sc.Text()
		if inMacro {
			if strings.TrimSpace(text) == "" {
				inMacro = false
			}
			continue
		}
		if strings.HasPrefix(strings.TrimSpace(text), "#") {
			continue
		}
		for rest := text; ; {
			rest = strings.TrimLeft(rest, " \t\r")
			if rest == "" {
				break
			}
			var tok string
			if rest[0] == '"' {
				end := strings.IndexByte(rest[1:], '"')
				if end < 0 {
					return nil, fmt.Errorf("line %d: unterminated quote", line)
				}
				tok, rest = rest[1:1+end], rest[2+end:]
			} else {
				end := strings.IndexAny(rest, " \t\r")
				if end < 0 {
					end = len(rest)
				}
				tok, rest = rest[:end], rest[end:]
			}
			if tok == "macdef" {
				// The macro name follows on this line, its body until an empty line.
				inMacro = true
				break
			}
			toks = append(toks, token{text: tok, line: line})
		}
	}
	return toks, sc.Err()
}

// Find returns the entry of host, else the default entry.
func Find(entries []Entry, host string) (Entry, bool) {
	for _, e := range entries {
		if e.Machine != "" && strings.EqualFold(e.Machine, host) {
			return e, true
		}
	}
	for _, e := range entries {
		if e.Machine == "" {
			return e, true
		}
	}
	return Entry{}, false
}

// Path returns $NETRC, else ~/.netrc.
func Path() string {
	if p := os.Getenv("NETRC"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".netrc")
}

// Lookup reads the netrc file at path and returns host's entry. A missing
// file is not an error (found is false). insecure is set when the file can
// be read by the group or others, which deserves a warning.
func Lookup(path, host string) (e Entry, found, insecure bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) || path == "" {
		return Entry{}, false, false, nil
	}
	if err != nil {
		return Entry{}, false, false, fmt.Errorf("netrc %s: %w", path, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil {
		insecure = st.Mode().Perm()&0o044 != 0
	}
	entries, err := Parse(f)
	if err != nil {
		return Entry{}, false, insecure, fmt.Errorf("netrc %s: %w", path, err)
	}
	e, found = Find(entries, host)
	return e, found, insecure, nil
}
