package config

import (
	"bytes"
	"cmp"
	"fmt"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"
)

// Generate returns the default configuration of specs: one
// [plugins.<name>] table per plugin in the given order, with a blank line
// between them, encoded from DefaultConfig (keys in struct field order,
// Duration fields in humantime form), with the comments of the plugin's
// sample section (withComments). The general keys are optional and left
// out, as in Alumet.
func Generate(specs []PluginSpec) ([]byte, error) {
	var out bytes.Buffer
	for _, s := range specs {
		if s.DefaultConfig == nil {
			return nil, fmt.Errorf("plugin %s: internal error: no default configuration", s.Name)
		}
		cfg := s.DefaultConfig()
		if s.GeneratedConfig != nil {
			cfg = s.GeneratedConfig()
		}
		if cfg == nil {
			return nil, fmt.Errorf("plugin %s: internal error: the default configuration is nil", s.Name)
		}
		text, err := encodeSection(s.Name, cfg)
		if err != nil {
			return nil, fmt.Errorf("plugin %s: cannot encode the default configuration: %w", s.Name, err)
		}
		if s.GeneratedOff {
			// After the table's header: the loader reads enabled itself.
			header, rest, _ := strings.Cut(text, "\n")
			text = header + "\nenabled = false\n" + rest
		}
		text = withComments(text, s.Sample)
		if out.Len() > 0 {
			out.WriteByte('\n')
		}
		out.WriteString(text)
	}
	return out.Bytes(), nil
}

// encodeSection encodes cfg as the table plugins.<name> (and its
// sub-tables), with a blank line before each sub-table.
func encodeSection(name string, cfg any) (string, error) {
	var buf bytes.Buffer
	enc := toml.NewEncoder(&buf)
	enc.Indent = ""
	if err := enc.Encode(map[string]any{"plugins": map[string]any{name: cfg}}); err != nil {
		return "", err
	}
	return normalizeTables(buf.String(), "[plugins]"), nil
}

// normalizeTables removes the header skip (an empty parent table) and blank
// lines, then puts one blank line before each table header but the first.
// It relies on BurntSushi/toml writing every key/value on one line (strings
// are escaped, arrays inline).
func normalizeTables(text, skip string) string {
	var b strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line == skip {
			continue
		}
		if strings.HasPrefix(line, "[") && b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// Redacted renders a plugin configuration (a pointer to a struct with toml
// tags) as TOML for DEBUG logs, with the non-empty values of secret keys
// (see IsSecretKey) replaced by "<redacted>". Keys keep the struct order.
func Redacted(cfg any) string {
	var buf bytes.Buffer
	enc := toml.NewEncoder(&buf)
	enc.Indent = ""
	if err := enc.Encode(cfg); err != nil {
		return fmt.Sprintf("<cannot render the configuration: %v>", err)
	}
	text, err := redactTOML(buf.String(), "")
	if err != nil {
		return "<cannot render the configuration>"
	}
	return text
}

// redactTOML replaces the secrets of an encoder's TOML output (skip: see
// normalizeTables).
func redactTOML(raw, skip string) (string, error) {
	text := urlPassword.ReplaceAllString(normalizeTables(redactLines(raw), skip), "${1}:"+redactedText+"@")
	if !leaksSecret(text) {
		return text, nil
	}
	// The line-based redaction missed something (e.g. an inline table):
	// redact the decoded tree instead, losing the key order.
	var m map[string]any
	if _, err := toml.Decode(raw, &m); err != nil {
		return "", err
	}
	redactTree(nil, m)
	var out bytes.Buffer
	enc := toml.NewEncoder(&out)
	enc.Indent = ""
	if err := enc.Encode(m); err != nil {
		return "", err
	}
	return normalizeTables(out.String(), skip), nil
}

// Effective renders what l runs with as one TOML file, secrets redacted:
// the top-level keys, then every enabled plugin's section with every key
// (defaults, ${VAR} substitutions and overrides applied), in start order.
// It is what a run directory keeps as config.toml, and it loads again.
func Effective(l *Loaded) (string, error) {
	var buf bytes.Buffer
	g := l.General
	fmt.Fprintf(&buf, "max_update_interval = %q\nsource_channel_size = %d\nshutdown_timeout = %q\nadd_host_attribute = %t\n",
		FormatDuration(g.MaxUpdateInterval.D()), g.SourceChannelSize, FormatDuration(g.ShutdownTimeout.D()), g.AddHostAttribute)
	enc := toml.NewEncoder(&buf)
	enc.Indent = ""
	for _, ep := range l.Enabled {
		buf.WriteString("\n")
		if err := enc.Encode(map[string]any{"plugins": map[string]any{ep.Spec.Name: ep.Config}}); err != nil {
			return "", fmt.Errorf("plugin %s: %w", ep.Spec.Name, err)
		}
	}
	return redactTOML(buf.String(), "[plugins]")
}

// urlPassword matches the password of a URL's userinfo (https://user:pw@host).
var urlPassword = regexp.MustCompile(`(://[^/\s:@"']*):[^@/\s"']*@`)

// redactLines replaces the values of secret keys on the key/value lines of
// an encoder's output.
func redactLines(text string) string {
	lines := strings.Split(text, "\n")
	eachSecretLine(lines, func(i int, _ []string, assign, value string) {
		if value == `""` || value == "''" {
			return
		}
		line := lines[i]
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		lines[i] = indent + assign + `= "` + redactedText + `"`
	})
	return strings.Join(lines, "\n")
}

// eachSecretLine calls fn for every key/value line of the TOML lines whose
// key is a secret (isSecretPath), with the line's index, the key's full
// path (tables included), the line up to its '=' and the value as written.
// It reads the raw text, so a file the TOML parser rejects is still read.
func eachSecretLine(lines []string, fn func(i int, path []string, assign, value string)) {
	var table []string
	for i, line := range lines {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		sc := &keyScanner{s: trimmed, line: 1}
		if trimmed[0] == '[' {
			sc.i = 1
			if sc.peek() == '[' {
				sc.i++
			}
			table = sc.parseKey()
			continue
		}
		key := sc.parseKey()
		sc.skipWS()
		if len(key) == 0 || sc.peek() != '=' {
			continue
		}
		full := append(append([]string(nil), table...), key...)
		if isSecretPath(full) {
			fn(i, full, trimmed[:sc.i], strings.TrimSpace(trimmed[sc.i+1:]))
		}
	}
}

// leaksSecret reports whether a secret key of the TOML text holds a value
// other than "" or "<redacted>" (or the text does not parse).
func leaksSecret(text string) bool {
	var m map[string]any
	if _, err := toml.Decode(text, &m); err != nil {
		return true
	}
	return treeLeaks(nil, m)
}

func treeLeaks(path []string, v any) bool {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if treeLeaks(append(path[:len(path):len(path)], k), e) {
				return true
			}
		}
		return false
	case []map[string]any:
		for _, e := range x {
			if treeLeaks(path, e) {
				return true
			}
		}
		return false
	case []any:
		if isSecretPath(path) {
			return len(x) > 0
		}
		for _, e := range x {
			if treeLeaks(path, e) {
				return true
			}
		}
		return false
	}
	if !isSecretPath(path) {
		return false
	}
	s, ok := v.(string)
	return !ok || (s != "" && s != redactedText)
}

// redactTree replaces the values of secret keys in a decoded TOML tree.
func redactTree(path []string, m map[string]any) {
	for k, v := range m {
		p := append(path[:len(path):len(path)], k)
		if isSecretPath(p) && !isEmptyValue(v) {
			if _, table := v.(map[string]any); !table {
				m[k] = redactedText
				continue
			}
		}
		redactValue(p, v)
	}
}

// redactValue redacts the tables inside v, at path.
func redactValue(path []string, v any) {
	switch x := v.(type) {
	case map[string]any:
		redactTree(path, x)
	case []map[string]any:
		for _, e := range x {
			redactTree(path, e)
		}
	case []any:
		for _, e := range x {
			redactValue(path, e)
		}
	}
}

func isEmptyValue(v any) bool {
	switch x := v.(type) {
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	}
	return false
}

// commentColumn is where withComments aligns the comments that end a line.
const commentColumn = 34

// withComments puts the comments of sample, a commented section of the
// same keys, into text, a generated one: the comment lines before a key of
// sample (commented-out optional keys included) before that key's line,
// the comment at the end of its line at the end of the generated line, and
// what follows the last key at the end. Keys that sample lacks stay as
// they are; sample's values are not used.
func withComments(text, sample string) string {
	if sample == "" {
		return text
	}
	before, after := map[string][]string{}, map[string]string{}
	var pending []string
	var table string
	for _, line := range strings.Split(strings.TrimRight(sample, "\n"), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "#"):
			pending = append(pending, trimmed)
		case strings.HasPrefix(trimmed, "["):
			table = trimmed
		case trimmed != "":
			key := table + " " + keyOfLine(trimmed)
			before[key] = pending
			pending = nil
			if c := trailingComment(trimmed); c != "" {
				after[key] = c
			}
		}
	}
	var b strings.Builder
	table = ""
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "[") || trimmed == "" {
			table = cmp.Or(trimmed, table)
			b.WriteString(line + "\n")
			continue
		}
		key := table + " " + keyOfLine(trimmed)
		for _, c := range before[key] {
			b.WriteString(c + "\n")
		}
		if c := after[key]; c != "" {
			line += strings.Repeat(" ", max(1, commentColumn-len(line))) + c
		}
		b.WriteString(line + "\n")
	}
	for _, c := range pending {
		b.WriteString(c + "\n")
	}
	return b.String()
}

// keyOfLine is the key of a key/value line, as written.
func keyOfLine(line string) string {
	k, _, _ := strings.Cut(line, "=")
	return strings.TrimSpace(k)
}

// trailingComment returns the comment ending a key/value line ("" if
// none), outside of the quoted strings of its value.
func trailingComment(line string) string {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0 && c == '\\' && quote == '"':
			i++
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '"' || c == '\''):
			quote = c
		case quote == 0 && c == '#':
			return line[i:]
		}
	}
	return ""
}
