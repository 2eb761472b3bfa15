package config

import (
	"errors"
	"fmt"
)

// MaxNesting is the deepest nesting a configuration may have: the number
// of parts of the longest key path (table headers, dotted keys and inline
// tables together), plus one for each level of array. Real files use 3 or
// 4 (plugins.<name>.<key>); the limit is there because the TOML decoder's
// work grows with the square of the depth, so that a small file of nested
// inline tables would take minutes of CPU.
const MaxNesting = 32

// ErrTooDeep is the error (inside an *Error) of a configuration nested
// deeper than MaxNesting.
var ErrTooDeep = errors.New("too deeply nested")

// checkNesting rejects a TOML text nested deeper than MaxNesting, in one
// pass over the text, before the decoder sees it. It returns the 1-based
// line where the limit is first passed, or 0.
//
// It follows TOML's lexical rules (strings, comments, table headers,
// dotted keys, inline tables and arrays). On invalid TOML it may count
// wrong after the first error, but the decoder stops at that error, and
// up to it the count is right: what the decoder parses is never deeper
// than what this scan allowed.
func checkNesting(text string) (line int) {
	type frame struct {
		inline bool // an inline table (else an array)
		depth  int  // depth of the keys (inline) or of the elements (array)
	}
	var stack []frame
	line = 1
	base := 0         // parts of the current table header
	keyMode := true   // reading a key (else a value)
	lineStart := true // at the start of a top-level line
	i := 0
	// skipString moves i past the string starting at i and counts its lines.
	skipString := func() {
		q := text[i]
		if i+2 < len(text) && text[i+1] == q && text[i+2] == q {
			i += 3
			for i < len(text) {
				switch {
				case text[i] == '\\' && q == '"':
					i++
				case text[i] == '\n':
					line++
				case text[i] == q && i+2 < len(text) && text[i+1] == q && text[i+2] == q:
					i += 3
					for i < len(text) && text[i] == q {
						i++
					}
					return
				}
				i++
			}
			return
		}
		i++
		for i < len(text) && text[i] != '\n' {
			if text[i] == '\\' && q == '"' {
				i += 2
				continue
			}
			if text[i] == q {
				i++
				return
			}
			i++
		}
	}
	// readKey reads a possibly dotted key at i and returns its parts.
	readKey := func() int {
		parts := 0
		for i < len(text) {
			for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
				i++
			}
			if i >= len(text) {
				break
			}
			switch c := text[i]; {
			case c == '"' || c == '\'':
				skipString()
			case isBareKeyByte(c):
				for i < len(text) && isBareKeyByte(text[i]) {
					i++
				}
			default:
				return parts
			}
			parts++
			for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
				i++
			}
			if i >= len(text) || text[i] != '.' {
				return parts
			}
			i++
		}
		return parts
	}
	curDepth := 0 // depth of the value being read
	for i < len(text) {
		c := text[i]
		switch {
		case c == '\n':
			line++
			i++
			if len(stack) == 0 {
				keyMode, lineStart = true, true
			}
			continue
		case c == ' ' || c == '\t' || c == '\r':
			i++
			continue
		case c == '#':
			for i < len(text) && text[i] != '\n' {
				i++
			}
			continue
		}
		if len(stack) == 0 && lineStart && c == '[' {
			// A table header: [a.b] or [[a.b]].
			i++
			if i < len(text) && text[i] == '[' {
				i++
			}
			base = readKey()
			if base > MaxNesting {
				return line
			}
			for i < len(text) && text[i] != '\n' && text[i] != '#' {
				i++
			}
			continue
		}
		lineStart = false
		if keyMode {
			if c == '}' && len(stack) > 0 && stack[len(stack)-1].inline {
				stack = stack[:len(stack)-1]
				keyMode = false
				i++
				continue
			}
			if c == ',' {
				i++
				continue
			}
			keyBase := base
			if len(stack) > 0 {
				keyBase = stack[len(stack)-1].depth
			}
			start := i
			parts := readKey()
			if keyBase+parts > MaxNesting {
				return line
			}
			if i == start {
				i++ // not a key: invalid TOML, skip the byte
				continue
			}
			for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
				i++
			}
			if i < len(text) && text[i] == '=' {
				i++
			}
			keyMode, curDepth = false, keyBase+parts
			continue
		}
		// A value, or what follows one.
		switch c {
		case '"', '\'':
			skipString()
		case '{':
			stack = append(stack, frame{inline: true, depth: curDepth})
			keyMode = true
			i++
		case '[':
			curDepth++
			if curDepth > MaxNesting {
				return line
			}
			stack = append(stack, frame{depth: curDepth})
			i++
		case ',':
			i++
			if len(stack) > 0 {
				top := stack[len(stack)-1]
				keyMode, curDepth = top.inline, top.depth
			}
		case ']', '}':
			i++
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			if len(stack) > 0 {
				curDepth = stack[len(stack)-1].depth
			}
		default:
			// A number, boolean or date: up to a delimiter.
			// (every byte that ends one is handled above: i always moves).
			for i < len(text) && !isValueEnd(text[i]) {
				i++
			}
		}
	}
	return 0
}

func isValueEnd(c byte) bool {
	switch c {
	case ',', ']', '}', '#', '\n', '\r', ' ', '\t':
		return true
	}
	return false
}

// nestingError is the error of a text nested deeper than MaxNesting at line.
func nestingError() error {
	return fmt.Errorf("%w: more than %d levels of tables, inline tables, arrays and dotted keys "+
		"(a configuration needs 3 or 4: plugins.<name>.<key>)", ErrTooDeep, MaxNesting)
}
