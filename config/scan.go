package config

import (
	"strconv"
	"strings"
)

// BurntSushi/toml keeps the position of each key private, so the lines of the
// keys are found by this small scanner. It runs only on text that the TOML
// parser accepted, so it only needs to be right on valid TOML; on anything
// else it must merely terminate without panicking.

type keyScanner struct {
	s        string
	i        int
	line     int
	root     *keyNode
	fileLine func(int) int // the line of the file of a line of s
}

// scanKeyLines records in root the line of every key, table header and
// implicit table (the prefixes of dotted keys) of a TOML document (the
// first occurrence of each), mapped through fileLine. The work is linear
// in the size of the text: paths are nodes of root, never copied.
func scanKeyLines(text string, root *keyNode, fileLine func(int) int) {
	sc := &keyScanner{s: text, line: 1, root: root, fileLine: fileLine}
	table := root
	for {
		sc.skipSpaceNL()
		if sc.eof() {
			break
		}
		start := sc.i
		if sc.s[sc.i] == '[' {
			sc.i++
			if sc.peek() == '[' {
				sc.i++
			}
			line := sc.line
			key := sc.parseKey()
			if len(key) > 0 {
				table = sc.record(root, key, line)
			}
			sc.skipLine()
		} else {
			sc.keyValue(table, true)
		}
		if sc.i == start {
			sc.skipLine()
		}
	}
}

func (sc *keyScanner) eof() bool { return sc.i >= len(sc.s) }

func (sc *keyScanner) peek() byte {
	if sc.eof() {
		return 0
	}
	return sc.s[sc.i]
}

// record stores the line of prefix+key and of its intermediate tables,
// unless known, and returns the node of prefix+key.
func (sc *keyScanner) record(prefix *keyNode, key []string, line int) *keyNode {
	n := prefix
	for _, k := range key {
		n = n.child(k)
		if !n.hasLoc {
			n.loc, n.hasLoc = location{line: sc.fileLine(line)}, true
		}
	}
	return n
}

func (sc *keyScanner) skipWS() {
	for !sc.eof() && (sc.s[sc.i] == ' ' || sc.s[sc.i] == '\t') {
		sc.i++
	}
}

// skipSpaceNL skips blanks, newlines and comments.
func (sc *keyScanner) skipSpaceNL() {
	for !sc.eof() {
		switch sc.s[sc.i] {
		case ' ', '\t', '\r':
			sc.i++
		case '\n':
			sc.line++
			sc.i++
		case '#':
			for !sc.eof() && sc.s[sc.i] != '\n' {
				sc.i++
			}
		default:
			return
		}
	}
}

// skipLine moves to the start of the next line.
func (sc *keyScanner) skipLine() {
	for !sc.eof() && sc.s[sc.i] != '\n' {
		sc.i++
	}
}

// advance moves to position j, counting the newlines passed.
func (sc *keyScanner) advance(j int) {
	if j > len(sc.s) {
		j = len(sc.s)
	}
	if j > sc.i {
		sc.line += strings.Count(sc.s[sc.i:j], "\n")
		sc.i = j
	}
}

func isBareKeyByte(c byte) bool {
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'
}

// parseKey reads a possibly dotted, possibly quoted key.
func (sc *keyScanner) parseKey() []string {
	var parts []string
	for {
		sc.skipWS()
		if sc.eof() {
			return parts
		}
		var part string
		switch c := sc.s[sc.i]; {
		case c == '"':
			part = sc.basicString()
		case c == '\'':
			sc.i++
			end := strings.IndexAny(sc.s[sc.i:], "'\n")
			if end < 0 {
				end = len(sc.s) - sc.i
			}
			part = sc.s[sc.i : sc.i+end]
			sc.i += end
			if sc.peek() == '\'' {
				sc.i++
			}
		case isBareKeyByte(c):
			start := sc.i
			for !sc.eof() && isBareKeyByte(sc.s[sc.i]) {
				sc.i++
			}
			part = sc.s[start:sc.i]
		default:
			return parts
		}
		parts = append(parts, part)
		sc.skipWS()
		if sc.peek() != '.' {
			return parts
		}
		sc.i++
	}
}

// basicString reads a single-line "..." string at sc.i and returns its value.
func (sc *keyScanner) basicString() string {
	sc.i++ // opening quote
	var b strings.Builder
	for !sc.eof() {
		c := sc.s[sc.i]
		switch c {
		case '"':
			sc.i++
			return b.String()
		case '\n':
			return b.String()
		case '\\':
			sc.i++
			if sc.eof() {
				return b.String()
			}
			e := sc.s[sc.i]
			sc.i++
			switch e {
			case 'b':
				b.WriteByte('\b')
			case 't':
				b.WriteByte('\t')
			case 'n':
				b.WriteByte('\n')
			case 'f':
				b.WriteByte('\f')
			case 'r':
				b.WriteByte('\r')
			case 'e':
				b.WriteByte(0x1b)
			case 'x', 'u', 'U':
				n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
				if sc.i+n <= len(sc.s) {
					if v, err := strconv.ParseUint(sc.s[sc.i:sc.i+n], 16, 32); err == nil {
						b.WriteRune(rune(v))
						sc.i += n
					}
				}
			default:
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
			sc.i++
		}
	}
	return b.String()
}

// keyValue reads `key = value`, recording the keys under prefix when record
// is set. Keys of inline tables inside arrays are recorded under the array's
// path (without an index), as BurntSushi/toml's MetaData.Keys lists them.
func (sc *keyScanner) keyValue(prefix *keyNode, record bool) {
	line := sc.line
	key := sc.parseKey()
	if len(key) == 0 {
		return
	}
	var full *keyNode
	if record {
		full = sc.record(prefix, key, line)
	} else {
		full = prefix.node(key)
	}
	sc.skipWS()
	if sc.peek() != '=' {
		return
	}
	sc.i++
	sc.skipWS()
	sc.value(full, record)
}

// value skips a value, recording the keys of inline tables.
func (sc *keyScanner) value(path *keyNode, record bool) {
	if sc.eof() {
		return
	}
	rest := sc.s[sc.i:]
	switch {
	case strings.HasPrefix(rest, `"""`):
		j := sc.i + 3
		for j < len(sc.s) {
			if sc.s[j] == '\\' {
				j += 2
				continue
			}
			if strings.HasPrefix(sc.s[j:], `"""`) {
				j += 3
				for j < len(sc.s) && sc.s[j] == '"' { // up to two quotes before the delimiter
					j++
				}
				break
			}
			j++
		}
		sc.advance(j)
	case strings.HasPrefix(rest, "'''"):
		end := strings.Index(rest[3:], "'''")
		j := len(sc.s)
		if end >= 0 {
			j = sc.i + 3 + end + 3
			for j < len(sc.s) && sc.s[j] == '\'' {
				j++
			}
		}
		sc.advance(j)
	case rest[0] == '"':
		sc.basicString()
	case rest[0] == '\'':
		sc.i++
		end := strings.IndexAny(sc.s[sc.i:], "'\n")
		if end < 0 {
			sc.i = len(sc.s)
			return
		}
		sc.i += end
		if sc.peek() == '\'' {
			sc.i++
		}
	case rest[0] == '[':
		sc.i++
		for {
			sc.skipSpaceNL()
			if sc.eof() {
				return
			}
			switch sc.s[sc.i] {
			case ']':
				sc.i++
				return
			case ',':
				sc.i++
				continue
			}
			before := sc.i
			sc.value(path, record)
			if sc.i == before {
				sc.i++
			}
		}
	case rest[0] == '{':
		sc.i++
		for {
			sc.skipSpaceNL()
			if sc.eof() {
				return
			}
			switch sc.s[sc.i] {
			case '}':
				sc.i++
				return
			case ',':
				sc.i++
				continue
			}
			before := sc.i
			sc.keyValue(path, record)
			if sc.i == before {
				sc.i++
			}
		}
	default:
		for !sc.eof() && !strings.ContainsRune(",]}#\n\r", rune(sc.s[sc.i])) {
			sc.i++
		}
	}
}
