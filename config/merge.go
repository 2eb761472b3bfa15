package config

import (
	"errors"
	"fmt"
	"strings"

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
	locs  map[string]location // pathKey → where the value was set
	order map[string]int      // pathKey → rank of its first appearance
}

func newDocument(file string, data map[string]any) *document {
	if data == nil {
		data = map[string]any{}
	}
	return &document{file: file, data: data, locs: map[string]location{}, order: map[string]int{}}
}

// addOrder ranks the keys (and their parent tables) after those already seen.
func (d *document) addOrder(keys []toml.Key) {
	for _, k := range keys {
		for n := 1; n <= len(k); n++ {
			pk := pathKey(k[:n]...)
			if _, ok := d.order[pk]; !ok {
				d.order[pk] = len(d.order)
			}
		}
	}
}

// rank is the rank of path's first appearance, or a large number.
func (d *document) rank(path ...string) int {
	if r, ok := d.order[pathKey(path...)]; ok {
		return r
	}
	return int(^uint(0) >> 1)
}

// locate returns where path was set: the location of the path itself or of
// its nearest recorded parent.
func (d *document) locate(path ...string) location {
	for n := len(path); n > 0; n-- {
		if l, ok := d.locs[pathKey(path[:n]...)]; ok {
			return l
		}
	}
	return location{}
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
	pk := pathKey(path...)
	for k := range d.locs {
		if k == pk || strings.HasPrefix(k, pk+"\x00") {
			delete(d.locs, k)
		}
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
		d.locs[pathKey(p...)] = location{flag: flag}
	}
}

// parseOverride parses one --config-override document.
func parseOverride(text, flag string) (map[string]any, []toml.Key, error) {
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
