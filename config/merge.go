package config

import (
	"errors"
	"fmt"

	"github.com/BurntSushi/toml"
)

// location tells where a value was set: a line of the file, or a flag.
type location struct {
	line int    // 1-based line in the file; 0 when unknown or from a flag
	flag string // "--config-override #N" or "--output-file"; "" for the file
}

// document is the parsed configuration with the origin of every key.
type document struct {
	file  string
	data  map[string]any
	keys  *keyNode // where every key was set, and the rank of its first appearance
	ranks int      // ranks given so far
}

// keyNode is a key path in a tree of the keys of the document, so that
// finding, ranking and forgetting a path costs its length, whatever the
// depth and the number of keys.
type keyNode struct {
	children map[string]*keyNode
	rank     int // rank of the first appearance; -1 if not ranked
	loc      location
	hasLoc   bool
}

func newKeyNode() *keyNode { return &keyNode{rank: -1} }

// child returns the child named k, created if needed.
func (n *keyNode) child(k string) *keyNode {
	c, ok := n.children[k]
	if !ok {
		if n.children == nil {
			n.children = map[string]*keyNode{}
		}
		c = newKeyNode()
		n.children[k] = c
	}
	return c
}

// find returns the node of path, or nil.
func (n *keyNode) find(path []string) *keyNode {
	for _, k := range path {
		if n = n.children[k]; n == nil {
			return nil
		}
	}
	return n
}

// node returns the node of path, created if needed.
func (n *keyNode) node(path []string) *keyNode {
	for _, k := range path {
		n = n.child(k)
	}
	return n
}

// forgetLocs removes the locations of n and everything under it.
func (n *keyNode) forgetLocs() {
	n.loc, n.hasLoc = location{}, false
	for _, c := range n.children {
		c.forgetLocs()
	}
}

func newDocument(file string, data map[string]any) *document {
	if data == nil {
		data = map[string]any{}
	}
	return &document{file: file, data: data, keys: newKeyNode()}
}

// addOrder ranks the keys (and their parent tables) after those already seen.
func (d *document) addOrder(keys []toml.Key) {
	for _, k := range keys {
		n := d.keys
		for _, part := range k {
			n = n.child(part)
			if n.rank < 0 {
				n.rank = d.ranks
				d.ranks++
			}
		}
	}
}

// rank is the rank of path's first appearance, or a large number.
func (d *document) rank(path ...string) int {
	if n := d.keys.find(path); n != nil && n.rank >= 0 {
		return n.rank
	}
	return int(^uint(0) >> 1)
}

// locate returns where path was set: the location of the path itself or of
// its nearest recorded parent.
func (d *document) locate(path ...string) location {
	var l location
	n := d.keys
	for _, k := range path {
		if n = n.children[k]; n == nil {
			break
		}
		if n.hasLoc {
			l = n.loc
		}
	}
	return l
}

// errorAt builds an *Error about path in section.
func (d *document) errorAt(section string, path []string, err error) *Error {
	l := d.locate(path...)
	return &Error{File: d.file, Line: l.line, Origin: l.flag, Section: section, Err: err}
}

// where renders the location of path: "file:line", or "file (from flag)".
func (d *document) where(path ...string) string {
	return d.errorAt("", path, nil).location()
}

// forget removes the locations of path and everything under it.
func (d *document) forget(path []string) {
	if n := d.keys.find(path); n != nil {
		n.forgetLocs()
	}
}

// merge deep-merges an override into the document: a table into a table
// recursively, any other value (arrays included) replaced.
func (d *document) merge(override map[string]any, keys []toml.Key, flag string) {
	d.addOrder(keys)
	d.mergeInto(d.data, override, nil, flag)
}

func (d *document) mergeInto(dst, src map[string]any, path []string, flag string) {
	for k, v := range src {
		p := append(path[:len(path):len(path)], k)
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				d.mergeInto(dm, sm, p, flag)
				continue
			}
		}
		d.forget(p)
		dst[k] = v
		n := d.keys.node(p)
		n.loc, n.hasLoc = location{flag: flag}, true
	}
}

// parseOverride parses one --config-override document.
func parseOverride(text, flag string) (map[string]any, []toml.Key, error) {
	if line := checkNesting(text); line > 0 {
		return nil, nil, &Error{Origin: flag, Line: line, Err: nestingError()}
	}
	var m map[string]any
	md, err := toml.Decode(text, &m)
	if err != nil {
		e := &Error{Origin: flag, Err: fmt.Errorf("invalid TOML: %w", err)}
		var pe toml.ParseError
		if errors.As(err, &pe) {
			e.Line, e.Column = pe.Position.Line, pe.Position.Col
			e.Err = &msgError{msg: "invalid TOML: " + pe.Message, err: err}
		}
		return nil, nil, e
	}
	return m, md.Keys(), nil
}
