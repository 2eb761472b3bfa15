package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// fieldInfo is a key of a config struct.
type fieldInfo struct {
	key    string // the toml tag name, or the field name
	tagged bool
	index  []int
	typ    reflect.Type
	tag    reflect.StructTag
}

var (
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	tomlUnmarshalerType = reflect.TypeFor[toml.Unmarshaler]()
	durationType        = reflect.TypeFor[time.Duration]()
)

// customDecoded reports whether values of t are decoded by t itself.
func customDecoded(t reflect.Type) bool {
	for _, tt := range []reflect.Type{t, reflect.PointerTo(t)} {
		if tt.Implements(textUnmarshalerType) || tt.Implements(tomlUnmarshalerType) {
			return true
		}
	}
	return false
}

// structFields lists the keys of struct type t, as BurntSushi/toml sees them:
// exported fields named by their toml tag or their name, `toml:"-"` skipped,
// untagged embedded structs flattened. Keys keep the field order.
func structFields(t reflect.Type) []fieldInfo {
	var out []fieldInfo
	seen := map[string]bool{}
	var walk func(t reflect.Type, index []int)
	walk = func(t reflect.Type, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("toml")
			name, _, _ := strings.Cut(tag, ",")
			if tag == "-" {
				continue
			}
			idx := append(index[:len(index):len(index)], i)
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct && !customDecoded(f.Type) {
				walk(f.Type, idx)
				continue
			}
			if !f.IsExported() {
				continue
			}
			fi := fieldInfo{key: name, tagged: name != "", index: idx, typ: f.Type, tag: f.Tag}
			if name == "" {
				fi.key = f.Name
			}
			if seen[fi.key] {
				continue
			}
			seen[fi.key] = true
			out = append(out, fi)
		}
	}
	walk(t, nil)
	return out
}

// lookupField finds the field of key. Tagged fields match exactly, as in
// Alumet (serde is case-sensitive); untagged fields also match
// case-insensitively, as in BurntSushi/toml.
func lookupField(fields []fieldInfo, key string) (fieldInfo, bool) {
	for _, f := range fields {
		if f.key == key {
			return f, true
		}
	}
	for _, f := range fields {
		if !f.tagged && strings.EqualFold(f.key, key) {
			return f, true
		}
	}
	return fieldInfo{}, false
}

func fieldKeys(fields []fieldInfo) []string {
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	return keys
}

// unknownKeyError is the message for an unknown key among valid keys.
func unknownKeyError(key string, valid []string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "unknown key %q (", key)
	if len(valid) == 0 {
		b.WriteString("this section takes no keys")
	} else {
		b.WriteString("valid keys: " + strings.Join(valid, ", "))
	}
	if near := suggest(key, valid); len(near) > 0 {
		fmt.Fprintf(&b, "; did you mean %q?", near[0])
	}
	b.WriteString(")")
	return errors.New(b.String())
}

// pluginDecoder decodes a plugin table into the plugin's config struct.
type pluginDecoder struct {
	doc     *document
	section string   // "plugins.csv"
	path    []string // ["plugins", "csv"]
}

func (pd *pluginDecoder) errAt(key []string, err error) *Error {
	return pd.doc.errorAt(pd.section, append(pd.path[:len(pd.path):len(pd.path)], key...), err)
}

// decode fills cfg (a pointer to a struct holding the defaults) from tbl.
// Keys missing from tbl keep their defaults.
func (pd *pluginDecoder) decode(cfg any, tbl map[string]any) error {
	rv := reflect.ValueOf(cfg)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return &Error{Section: pd.section, Err: fmt.Errorf("internal error: the default configuration is a %T, not a pointer to a struct", cfg)}
	}
	return pd.decodeStruct(rv.Elem(), tbl, nil)
}

// decodeStruct decodes tbl, the table at keyPath inside the plugin's table,
// into the struct st, key by key in file order. A table going into a struct
// field is decoded recursively, so that errors point at the nested key.
func (pd *pluginDecoder) decodeStruct(st reflect.Value, tbl map[string]any, keyPath []string) error {
	fields := structFields(st.Type())
	prefix := ""
	if len(keyPath) > 0 {
		prefix = strings.Join(keyPath, ".") + "."
	}
	tablePath := append(pd.path[:len(pd.path):len(pd.path)], keyPath...)
	for _, k := range pd.doc.sortedKeys(tablePath, tbl) {
		p := append(keyPath[:len(keyPath):len(keyPath)], k)
		name := prefix + k
		f, ok := lookupField(fields, k)
		if !ok {
			return pd.errAt(p, unknownKeyError(name, prefixAll(prefix, fieldKeys(fields))))
		}
		v := tbl[k]
		fv := st.FieldByIndex(f.index)
		if sub, ok := v.(map[string]any); ok {
			ft := f.typ
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && !customDecoded(ft) && !customDecoded(f.typ) {
				target := fv
				if f.typ.Kind() == reflect.Pointer {
					fv.Set(detached(fv))
					if fv.IsNil() {
						fv.Set(reflect.New(ft))
					}
					target = fv.Elem()
				}
				if err := pd.decodeStruct(target, sub, p); err != nil {
					return err
				}
				continue
			}
		}
		if err := checkType(f.typ, v); err != nil {
			return pd.errAt(p, fmt.Errorf("%s: %s, got %s", name, err, describeValue(p, v)))
		}
		nested, err := decodeValue(fv, v)
		if err != nil {
			if isSecretPath(p) {
				err = scrub(err, stringValues(v))
			}
			return pd.errAt(p, fmt.Errorf("%s: %w", name, err))
		}
		shown := renderValue(v)
		if isSecretPath(p) {
			shown = redactedText
		}
		if err := checkDurationBounds(f, fv, shown); err != nil {
			return pd.errAt(p, fmt.Errorf("%s = %w", name, err))
		}
		if nested != nil {
			full := append(p, nested...)
			valid := validNestedKeys(f.typ, nested[:len(nested)-1])
			return pd.errAt(full, unknownKeyError(strings.Join(full, "."), prefixAll(strings.Join(full[:len(full)-1], ".")+".", valid)))
		}
	}
	return nil
}

// DurationTag is the struct tag that bounds a Duration (or time.Duration)
// key of a plugin's config, e.g. `toml:"fetch_delay" duration:"max=1h"` or
// `duration:"min=1s,max=1h"`. The loader checks the bounds when the key is
// set in the file or an override, and its error quotes the value as
// written: `fetch_delay = "290y": too long (at most 1h)`. Without the tag,
// a duration is only bounded by ParseDuration (about 292 years).
const DurationTag = "duration"

// durationBounds reads the DurationTag of a field; 0 means no bound.
func durationBounds(tag reflect.StructTag) (lo, hi time.Duration, err error) {
	spec, ok := tag.Lookup(DurationTag)
	if !ok {
		return 0, 0, nil
	}
	for _, part := range strings.Split(spec, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		d, perr := ParseDuration(v)
		if perr != nil {
			return 0, 0, fmt.Errorf("internal error: bad %s tag %q: %w", DurationTag, spec, perr)
		}
		switch k {
		case "min":
			lo = d
		case "max":
			hi = d
		default:
			return 0, 0, fmt.Errorf("internal error: bad %s tag %q", DurationTag, spec)
		}
	}
	return lo, hi, nil
}

// checkDurationBounds checks the decoded value of a duration field against
// its DurationTag. The error text starts with shown, the value as written
// (or <redacted>).
func checkDurationBounds(f fieldInfo, fv reflect.Value, shown string) error {
	lo, hi, err := durationBounds(f.tag)
	if err != nil || (lo == 0 && hi == 0) {
		return err
	}
	t := fv.Type()
	if t.Kind() == reflect.Pointer {
		if fv.IsNil() {
			return nil
		}
		fv, t = fv.Elem(), t.Elem()
	}
	if t.Kind() != reflect.Int64 {
		return nil
	}
	return durationRangeError(shown, time.Duration(fv.Int()), lo, hi)
}

// durationRangeError says why d (written shown) is out of [lo, hi]; a zero
// bound is no bound.
func durationRangeError(shown string, d, lo, hi time.Duration) error {
	switch {
	case hi > 0 && d > hi:
		return fmt.Errorf("%s: too long (at most %s)", shown, FormatDuration(hi))
	case lo > 0 && d < lo:
		return fmt.Errorf("%s: too short (at least %s)", shown, FormatDuration(lo))
	}
	return nil
}

func prefixAll(prefix string, keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = prefix + k
	}
	return out
}

// stringValues lists the strings inside v.
func stringValues(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, stringValues(e)...)
		}
		return out
	case []map[string]any:
		var out []string
		for _, e := range x {
			out = append(out, stringValues(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for _, e := range x {
			out = append(out, stringValues(e)...)
		}
		return out
	}
	return nil
}

// tomlErrPrefix is the location prefix of BurntSushi/toml's decoding errors,
// which refer to the temporary document of decodeValue.
var tomlErrPrefix = regexp.MustCompile(`^toml: (line \d+ )?(\(last key "[^"]*"\): )?`)

// decodeValue decodes v into fv with BurntSushi/toml's rules (so
// TextUnmarshaler and toml.Unmarshaler types work), through a one-key
// document. It returns the path of the first key under v that matches no
// struct field, if any.
func decodeValue(fv reflect.Value, v any) (unknown []string, err error) {
	wt := reflect.StructOf([]reflect.StructField{{Name: "V", Type: fv.Type(), Tag: `toml:"v"`}})
	w := reflect.New(wt)
	w.Elem().Field(0).Set(detached(fv))
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(map[string]any{"v": v}); err != nil {
		return nil, fmt.Errorf("cannot decode the value: %w", err)
	}
	md, err := toml.Decode(buf.String(), w.Interface())
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &msgError{msg: pe.Message, err: err}
		}
		msg := tomlErrPrefix.ReplaceAllString(err.Error(), "")
		return nil, &msgError{msg: msg, err: err}
	}
	for _, k := range md.Undecoded() {
		if len(k) < 2 {
			continue
		}
		if n := unknownNestedKey(fv.Type(), k[1:]); n > 0 {
			return []string(k[1 : 1+n]), nil
		}
	}
	fv.Set(w.Elem().Field(0))
	return nil, nil
}

// detached returns the value to decode into instead of fv, so that decoding
// never writes into memory shared with the defaults (a default slice, map or
// pointer may come from a package variable): a TOML array or table replaces
// a slice or map default entirely, as in Alumet, and a pointer's target is
// copied.
func detached(fv reflect.Value) reflect.Value {
	switch fv.Kind() {
	case reflect.Slice, reflect.Map:
		return reflect.Zero(fv.Type())
	case reflect.Pointer:
		if !fv.IsNil() {
			cp := reflect.New(fv.Type().Elem())
			cp.Elem().Set(fv.Elem())
			return cp
		}
	}
	return fv
}

// elemType removes pointers, slices and arrays around t.
func elemType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
		t = t.Elem()
	}
	return t
}

// unknownNestedKey returns n > 0 when path[:n] names no field of the struct
// type t (following nested structs), 0 when the path is known or leads into
// a map, an interface or a custom-decoded type.
func unknownNestedKey(t reflect.Type, path []string) int {
	for i, p := range path {
		t = elemType(t)
		if t.Kind() != reflect.Struct || customDecoded(t) {
			return 0
		}
		f, ok := lookupField(structFields(t), p)
		if !ok {
			return i + 1
		}
		t = f.typ
	}
	return 0
}

// validNestedKeys lists the keys of the struct reached by path from t.
func validNestedKeys(t reflect.Type, path []string) []string {
	for _, p := range path {
		t = elemType(t)
		if t.Kind() != reflect.Struct {
			return nil
		}
		f, ok := lookupField(structFields(t), p)
		if !ok {
			return nil
		}
		t = f.typ
	}
	t = elemType(t)
	if t.Kind() != reflect.Struct {
		return nil
	}
	return fieldKeys(structFields(t))
}

// checkType gives a readable error when v obviously cannot go into a field of
// type t ("expected a boolean"); finer checks are left to the decoder.
func checkType(t reflect.Type, v any) error {
	if customDecoded(t) {
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		return checkType(t.Elem(), v)
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return errors.New("expected a boolean")
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			return errors.New("expected a string")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if t == durationType {
			if _, ok := v.(string); ok {
				return nil
			}
		}
		n, ok := v.(int64)
		if !ok {
			return errors.New("expected an integer")
		}
		bits := t.Bits()
		if bits < 64 && (n < -(1<<(bits-1)) || n > 1<<(bits-1)-1) {
			return fmt.Errorf("expected an integer between %d and %d", -(1 << (bits - 1)), 1<<(bits-1)-1)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, ok := v.(int64)
		if !ok {
			return errors.New("expected a non-negative integer")
		}
		bits := t.Bits()
		if n < 0 || (bits < 64 && uint64(n) > 1<<bits-1) {
			return fmt.Errorf("expected an integer between 0 and %d", uint64(math.MaxUint64)>>(64-bits))
		}
	case reflect.Float32, reflect.Float64:
		switch v.(type) {
		case float64, int64:
		default:
			return errors.New("expected a number")
		}
	case reflect.Slice, reflect.Array:
		switch x := v.(type) {
		case []any:
			for i, e := range x {
				if err := checkType(t.Elem(), e); err != nil {
					if _, nested := e.([]any); nested {
						return fmt.Errorf("element %d: %w", i, err)
					}
					return fmt.Errorf("expected an array of %s (element %d is %s)", pluralNoun(t.Elem()), i, withArticle(tomlTypeName(e)))
				}
			}
		case []map[string]any:
		default:
			return errors.New("expected an array")
		}
	case reflect.Struct, reflect.Map:
		if _, ok := v.(map[string]any); !ok {
			return errors.New("expected a table")
		}
	}
	return nil
}

// pluralNoun names the values of type t in the plural, for array errors.
func pluralNoun(t reflect.Type) string {
	if customDecoded(t) {
		return "values"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return pluralNoun(t.Elem())
	case reflect.Bool:
		return "booleans"
	case reflect.String:
		return "strings"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "integers"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "non-negative integers"
	case reflect.Float32, reflect.Float64:
		return "numbers"
	case reflect.Slice, reflect.Array:
		return "arrays"
	case reflect.Struct, reflect.Map:
		return "tables"
	}
	return "values"
}

// withArticle prefixes a noun with "a" or "an".
func withArticle(noun string) string {
	if noun != "" && strings.ContainsRune("aeiou", rune(noun[0])) {
		return "an " + noun
	}
	return "a " + noun
}
