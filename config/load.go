package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/alumet-go/alumet-agent/internal/redact"
	"github.com/alumet-go/alumet-agent/plugin"
)

const (
	// DefaultPath is the configuration file used without --config and
	// $ALUMET_CONFIG, relative to the working directory.
	DefaultPath = "alumet-config.toml"
	// PathEnv is the environment variable naming the configuration file.
	PathEnv = "ALUMET_CONFIG"
)

// Defaults of the general keys.
const (
	DefaultMaxUpdateInterval = Duration(2 * time.Second)
	DefaultSourceChannelSize = 2048
	DefaultShutdownTimeout   = Duration(30 * time.Second)
	// MaxGeneralDuration bounds max_update_interval and shutdown_timeout:
	// beyond an hour, a value is a typo ("30m" meant "30s" is fine, "290y"
	// is not), and the agent would wait for it.
	MaxGeneralDuration = time.Hour
)

// PluginSpec is what the loader needs to know about a plugin.
type PluginSpec struct {
	Name    string
	Version string
	// DefaultConfig returns a new default configuration: a pointer to a
	// struct with toml tags, into which the plugin's table is decoded.
	DefaultConfig func() plugin.Config
	// GeneratedConfig, if set, is what a generated file holds instead of
	// DefaultConfig: values that fit this host (a Grid'5000 node's own name)
	// but must not be merged into a user's section.
	GeneratedConfig func() plugin.Config
	// Sample, if set, is the plugin's commented section: Generate puts its
	// comments next to the generated values.
	Sample string
	// GeneratedOff: Generate writes the section with enabled = false.
	GeneratedOff bool
}

// SpecOf returns the PluginSpec of a plugin factory.
func SpecOf(f plugin.Factory) PluginSpec {
	return PluginSpec{Name: f.Name, Version: f.Version, DefaultConfig: f.DefaultConfig, GeneratedConfig: f.GeneratedConfig, Sample: f.Sample, GeneratedOff: f.GeneratedOff}
}

// SpecsOf returns the PluginSpecs of plugin factories, in the same order.
func SpecsOf(factories []plugin.Factory) []PluginSpec {
	specs := make([]PluginSpec, len(factories))
	for i, f := range factories {
		specs[i] = SpecOf(f)
	}
	return specs
}

// Options are the inputs of Load and Regen, mostly from the command line.
type Options struct {
	// Path is the --config flag; "" means $ALUMET_CONFIG, else DefaultPath.
	Path string
	// NoDefaultConfig (--no-default-config) makes a missing file an error
	// instead of generating it.
	NoDefaultConfig bool
	// Overrides are the --config-override TOML documents, in command-line
	// order (a later one wins).
	Overrides []string
	// OutputFile (--output-file) is applied as the override
	// plugins.csv.output_path = OutputFile after all Overrides.
	OutputFile string
	// Plugins is the --plugins list; entries may hold comma-separated names,
	// blanks are trimmed. nil means the flag was not given.
	Plugins []string
	// Specs are the plugins of this binary, in registration order.
	Specs []PluginSpec
	// Getenv looks up environment variables; nil means os.LookupEnv.
	Getenv func(string) (string, bool)
	// Logger receives warnings and informational messages; nil means
	// slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.Getenv == nil {
		o.Getenv = os.LookupEnv
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Loaded is a loaded configuration.
type Loaded struct {
	// Path is the configuration file that was used.
	Path string
	// Generated is set when the file was missing and the default
	// configuration was written to Path.
	Generated bool
	// General holds the top-level keys.
	General General
	// Enabled are the enabled plugins in start order: the order of their
	// sections in the file (sections added by overrides come after), then
	// the --plugins entries without a section, in flag order.
	Enabled []EnabledPlugin
	// Disabled are the other plugins of the binary, in registration order.
	Disabled []PluginSpec
}

// EnabledPlugin is an enabled plugin with its decoded and validated
// configuration.
type EnabledPlugin struct {
	Spec   PluginSpec
	Config plugin.Config
}

// General holds the top-level (non-plugin) keys of the configuration.
type General struct {
	// MaxUpdateInterval is max_update_interval: the maximum latency of source
	// commands (Alumet's key; default 2s).
	MaxUpdateInterval Duration
	// SourceChannelSize is source_channel_size: the capacity of the source
	// queue in buffers (Alumet's key; default 2048).
	SourceChannelSize int
	// ShutdownTimeout is shutdown_timeout (Go-only; default 30s).
	ShutdownTimeout Duration
	// AddHostAttribute is add_host_attribute (Go-only; default false).
	AddHostAttribute bool
}

// DefaultGeneral returns the defaults of the top-level keys.
func DefaultGeneral() General {
	return General{
		MaxUpdateInterval: DefaultMaxUpdateInterval,
		SourceChannelSize: DefaultSourceChannelSize,
		ShutdownTimeout:   DefaultShutdownTimeout,
	}
}

// ResolvePath returns the configuration file of o: o.Path, else
// $ALUMET_CONFIG (through o.Getenv, or os.LookupEnv), else DefaultPath.
func ResolvePath(o Options) string {
	if o.Path != "" {
		return o.Path
	}
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.LookupEnv
	}
	if p, ok := getenv(PathEnv); ok && p != "" {
		return p
	}
	return DefaultPath
}

// SplitPlugins splits --plugins values on commas, trims blanks and drops
// empty and repeated names. given is false when list is nil (flag absent).
func SplitPlugins(list []string) (names []string, given bool) {
	if list == nil {
		return nil, false
	}
	seen := map[string]bool{}
	names = []string{}
	for _, entry := range list {
		for _, n := range strings.Split(entry, ",") {
			n = strings.TrimSpace(n)
			if n != "" && !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	return names, true
}

func specIndex(specs []PluginSpec) map[string]int {
	idx := make(map[string]int, len(specs))
	for i, s := range specs {
		if _, dup := idx[s.Name]; !dup {
			idx[s.Name] = i
		}
	}
	return idx
}

func specNames(specs []PluginSpec) []string {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	return names
}

// selectSpecs returns the plugins enabled by --plugins (all without it), in
// registration order.
func selectSpecs(specs []PluginSpec, names []string, given bool) []PluginSpec {
	if !given {
		return specs
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []PluginSpec
	for _, s := range specs {
		if want[s.Name] {
			out = append(out, s)
		}
	}
	return out
}

// logUnavailable logs Alumet's ERROR for the --plugins names this binary
// lacks (Alumet plugins, once CheckPluginNames has rejected the others).
func logUnavailable(logger *slog.Logger, specs []PluginSpec, names []string) {
	idx := specIndex(specs)
	for _, n := range names {
		if _, ok := idx[n]; !ok {
			logger.Error(fmt.Sprintf("Plugin %s is not available in this binary of Alumet Agent.", n))
		}
	}
}

// writeDefault writes the default configuration of the selected plugins to
// path and logs it.
func writeDefault(path string, o Options, names []string, given bool) ([]byte, error) {
	data, err := Generate(selectSpecs(o.Specs, names, given))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, data, 0o666); err != nil {
		return nil, &Error{File: path, Err: &msgError{msg: "cannot write the default configuration file: " + pathErrorCause(err), err: err}}
	}
	o.Logger.Info("Default configuration file written to: " + path)
	return data, nil
}

// Regen writes the default configuration of the enabled plugins (all of
// o.Specs, or those of the --plugins list, in registration order) to the
// resolved path, as `alumet-agent config regen`, and returns the path. It
// logs `Default configuration file written to: <path>` once. An existing
// file that differs is kept as the first free name among <path>.bak,
// <path>.bak.1, … (an older backup is never replaced; the backup keeps the
// mode, and the new file gets the same permissions) and a WARN line names
// it: it may hold credentials or an api_url that the defaults do not. A file that
// already holds the defaults is left alone ("unchanged").
func Regen(o Options) (path string, err error) {
	o.setDefaults()
	path = ResolvePath(o)
	names, given := SplitPlugins(o.Plugins)
	if err := CheckPluginNames(names, o.Specs); err != nil {
		return path, &Error{Origin: "--plugins", Err: err}
	}
	logUnavailable(o.Logger, o.Specs, names)
	old, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		_, err = writeDefault(path, o, names, given)
		return path, err
	case err != nil:
		return path, &Error{File: path, Err: &msgError{
			msg: "cannot read the existing configuration file (to keep it as " + filepath.Base(path) + ".bak): " + pathErrorCause(err),
			err: err,
		}}
	}
	data, err := Generate(selectSpecs(o.Specs, names, given))
	if err != nil {
		return path, err
	}
	if bytes.Equal(old, data) {
		o.Logger.Info("Default configuration file unchanged: " + path + " (it already holds this configuration)")
		return path, nil
	}
	return path, replaceKeepingBackup(path, old, data, o.Logger)
}

// maxBackups bounds the search for a free backup name, so that a directory
// full of backups ends in an error rather than a long loop.
const maxBackups = 1000

// replaceKeepingBackup writes data to path through a temporary file, after
// keeping the current file under the first free name among path.bak,
// path.bak.1, path.bak.2, …: an existing backup is never replaced, since
// the oldest one may be the only copy of the hand-edited file (a second
// regen would otherwise lose the api_url and credentials of the first).
func replaceKeepingBackup(path string, old, data []byte, logger *slog.Logger) error {
	writeErr := func(err error) error {
		return &Error{File: path, Err: &msgError{msg: "cannot write the default configuration file: " + pathErrorCause(err), err: err}}
	}
	info, err := os.Stat(path)
	if err != nil {
		return writeErr(err)
	}
	// The temporary file is in the same directory so that the final rename
	// is atomic: path is never half-written.
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return writeErr(err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(info.Mode().Perm())
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return writeErr(err)
	}
	bak, linked, err := keepBackup(path)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		// Undo the backup so that a failed regen leaves things as they were.
		if linked {
			_ = os.Remove(bak) // path is still the old file
			return writeErr(err)
		}
		if rerr := os.Rename(bak, path); rerr != nil {
			return &Error{File: path, Err: &msgError{msg: "cannot write the default configuration file: " + pathErrorCause(err) +
				"; the previous configuration is in " + bak, err: err}}
		}
		return writeErr(err)
	}
	logger.Info("Default configuration file written to: " + path)
	logger.Warn(backupMessage(path, bak, old, info.Mode().Perm()))
	return nil
}

// keepBackup gives the current file at path the first free backup name and
// returns it. It hard-links when it can, because a link never replaces an
// existing file (no race between the check and the move) and path stays in
// place until the new file is renamed over it (linked is then true); on a
// file system without hard links, it renames.
func keepBackup(path string) (bak string, linked bool, err error) {
	keepErr := func(bak string, err error) error {
		return &Error{File: path, Err: &msgError{msg: "cannot keep the previous configuration as " + bak +
			" (nothing was changed): " + pathErrorCause(err), err: err}}
	}
	for i := 0; i < maxBackups; i++ {
		bak = path + ".bak"
		if i > 0 {
			bak += "." + strconv.Itoa(i)
		}
		err := os.Link(path, bak)
		if err == nil {
			return bak, true, nil
		}
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if _, serr := os.Lstat(bak); serr == nil {
			continue
		} else if !errors.Is(serr, fs.ErrNotExist) {
			return "", false, keepErr(bak, serr)
		}
		if rerr := os.Rename(path, bak); rerr != nil {
			return "", false, keepErr(bak, rerr)
		}
		return bak, false, nil
	}
	err = fmt.Errorf("%s to %s.bak.%d already exist: %w", filepath.Base(path)+".bak", filepath.Base(path), maxBackups-1, fs.ErrExist)
	return "", false, &Error{File: path, Err: &msgError{msg: "cannot keep the previous configuration (nothing was changed): " + err.Error() +
		"; remove the backups you no longer need and run config regen again", err: err}}
}

// backupMessage is the warning that names the backup of the user's file
// (regen changed it, so it is more than information), and says when the
// backup holds a literal secret while group or others can read it: the
// backup keeps the old file's mode, and a forgotten .bak is easy to leak.
func backupMessage(path, bak string, old []byte, perm fs.FileMode) string {
	msg := "Previous configuration kept as " + bak
	if bak != path+".bak" {
		msg += " (the older backups are kept too)"
	}
	keys := literalSecrets(string(old))
	if len(keys) == 0 || perm&0o044 == 0 {
		return msg
	}
	what := "a literal secret (" + strings.Join(keys, ", ") + ")"
	if len(keys) > 1 {
		what = "literal secrets (" + strings.Join(keys, ", ") + ")"
	}
	return msg + fmt.Sprintf("; it holds %s and is readable by group or others (mode %04o): run chmod 600 %s (or delete it once you have copied "+
		"what you need), and write %s = \"${VAR}\" with VAR set in the environment instead",
		what, perm, bak, lastKey(keys[0]))
}

// literalSecrets returns the dotted paths of the secret keys (IsSecretKey)
// whose values in the TOML text are non-empty strings written out, not
// ${VAR} references. It reads the raw text line by line, like redactLines,
// so that a file the TOML parser rejects (or whose ${VAR} are not set) is
// still checked.
func literalSecrets(text string) []string {
	var out []string
	eachSecretLine(strings.Split(text, "\n"), func(_ int, path []string, _, value string) {
		if value == "" || (value[0] != '"' && value[0] != '\'') {
			return
		}
		q := value[:1]
		body, _, _ := strings.Cut(value[1:], q)
		if body == "" || strings.Contains(body, "${") {
			return
		}
		out = append(out, strings.Join(path, "."))
	})
	return out
}

// lastKey is the last part of a dotted key path.
func lastKey(path string) string {
	return path[strings.LastIndex(path, ".")+1:]
}

// pathErrorCause is the cause of a *fs.PathError without the path, which
// the messages already name.
func pathErrorCause(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err.Error()
	}
	return err.Error()
}

// Load reads, generates if needed, and checks the configuration, following
// alumet-compat.md §4. All errors are *Error values (or errors.Join of them
// for several validation errors) whose text never holds a secret value.
func Load(o Options) (*Loaded, error) {
	o.setDefaults()
	path := ResolvePath(o)
	names, given := SplitPlugins(o.Plugins)
	if err := CheckPluginNames(names, o.Specs); err != nil {
		// Before anything is generated: a typo must not write a config
		// without the plugin the user meant.
		return nil, &Error{Origin: "--plugins", Err: err}
	}
	logUnavailable(o.Logger, o.Specs, names)

	ld := &Loaded{Path: path}
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		if o.NoDefaultConfig {
			return nil, &Error{File: path, Err: &msgError{
				msg: "the configuration file does not exist and --no-default-config is set " +
					"(create it, e.g. with 'alumet-agent config regen')",
				err: err,
			}}
		}
		raw, err = writeDefault(path, o, names, given)
		if err != nil {
			return nil, err
		}
		ld.Generated = true
	default:
		cause := err
		var pe *fs.PathError
		if errors.As(err, &pe) {
			cause = pe.Err
		}
		return nil, &Error{File: path, Err: &msgError{msg: "cannot read the configuration file: " + cause.Error(), err: err}}
	}
	if err := loadText(ld, string(raw), o, names, given); err != nil {
		return nil, err
	}
	return ld, nil
}

// loadText does the work of Load once the raw text is known.
func loadText(ld *Loaded, raw string, o Options, names []string, given bool) error {
	path := ld.Path
	sub, err := substitute(path, raw, o.Getenv)
	if err != nil {
		return err
	}
	if line := checkNesting(sub.text); line > 0 {
		return &Error{File: path, Line: sub.originalLine(line), Err: nestingError()}
	}
	var data map[string]any
	md, err := toml.Decode(sub.text, &data)
	if err != nil {
		e := &Error{File: path, Err: &msgError{msg: "invalid TOML: " + scrubString(err.Error(), sub.values), err: err}}
		var pe toml.ParseError
		if errors.As(err, &pe) {
			e.Line, e.Column = sub.originalLine(pe.Position.Line), pe.Position.Col
			e.Err = &msgError{msg: "invalid TOML: " + scrubString(pe.Message, sub.values), err: err}
		}
		return e
	}
	doc := newDocument(path, data)
	doc.addOrder(md.Keys())
	scanKeyLines(sub.text, doc.keys, sub.originalLine)
	for i, text := range o.Overrides {
		flag := fmt.Sprintf("--config-override #%d", i+1)
		m, keys, err := parseOverride(text, flag)
		if err != nil {
			return err
		}
		doc.merge(m, keys, flag)
	}
	if o.OutputFile != "" {
		m := map[string]any{"plugins": map[string]any{"csv": map[string]any{"output_path": o.OutputFile}}}
		doc.merge(m, []toml.Key{{"plugins", "csv", "output_path"}}, "--output-file")
	}

	if ld.General, err = parseGeneral(doc, o.Logger); err != nil {
		return err
	}
	return loadPlugins(ld, doc, o, names, given)
}

// sortedKeys returns the keys of tbl (the table at path) in order of first
// appearance.
func (d *document) sortedKeys(path []string, tbl map[string]any) []string {
	keys := make([]string, 0, len(tbl))
	for k := range tbl {
		keys = append(keys, k)
	}
	rank := func(k string) int { return d.rank(append(path[:len(path):len(path)], k)...) }
	sort.Slice(keys, func(i, j int) bool {
		if ri, rj := rank(keys[i]), rank(keys[j]); ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	return keys
}

// parseGeneral type-checks the known top-level keys and warns about the
// unknown ones.
func parseGeneral(doc *document, logger *slog.Logger) (General, error) {
	g := DefaultGeneral()
	for _, k := range doc.sortedKeys(nil, doc.data) {
		v := doc.data[k]
		p := []string{k}
		bad := func(expected string) error {
			return doc.errorAt("", p, fmt.Errorf("%s: expected %s, got %s", k, expected, describeValue(p, v)))
		}
		switch k {
		case "plugins":
		case "max_update_interval", "shutdown_timeout":
			s, ok := v.(string)
			if !ok {
				return g, bad(`a duration string such as "1s" or "1m 30s"`)
			}
			d, err := ParseDuration(s)
			if err != nil {
				return g, doc.errorAt("", p, fmt.Errorf("%s: %w", k, err))
			}
			if d <= 0 {
				return g, doc.errorAt("", p, fmt.Errorf("%s: must be greater than zero", k))
			}
			if err := durationRangeError(strconv.Quote(s), d, 0, MaxGeneralDuration); err != nil {
				return g, doc.errorAt("", p, fmt.Errorf("%s = %w", k, err))
			}
			if k == "max_update_interval" {
				g.MaxUpdateInterval = Duration(d)
			} else {
				g.ShutdownTimeout = Duration(d)
			}
		case "source_channel_size":
			n, ok := v.(int64)
			if !ok || n <= 0 || n > math.MaxInt32 {
				return g, bad("a positive integer")
			}
			g.SourceChannelSize = int(n)
		case "add_host_attribute":
			b, ok := v.(bool)
			if !ok {
				return g, bad("a boolean")
			}
			g.AddHostAttribute = b
		default:
			logger.Warn(fmt.Sprintf("Unknown top-level key %q in the configuration (%s) is ignored.", k, doc.where(p...)))
		}
	}
	return g, nil
}

// section is a plugins.<name> table of the configuration.
type section struct {
	name    string
	tbl     map[string]any // without enabled/enable
	enabled bool
}

// enableKeys are the keys that turn a plugin off, removed before decoding.
var enableKeys = []string{"enabled", "enable"}

// readEnabled returns the value of enabled/enable (true when absent) and tbl
// without those keys.
func readEnabled(doc *document, name string, tbl map[string]any) (bool, map[string]any, error) {
	enabled := true
	out := tbl
	copied := false
	for _, k := range enableKeys {
		v, ok := tbl[k]
		if !ok {
			continue
		}
		p := []string{"plugins", name, k}
		b, isBool := v.(bool)
		if !isBool {
			return false, nil, doc.errorAt("plugins."+name, p, fmt.Errorf("%s: expected a boolean, got %s", k, describeValue(p, v)))
		}
		enabled = enabled && b
		if !copied {
			out = make(map[string]any, len(tbl))
			for kk, vv := range tbl {
				out[kk] = vv
			}
			copied = true
		}
		delete(out, k)
	}
	return enabled, out, nil
}

func loadPlugins(ld *Loaded, doc *document, o Options, names []string, given bool) error {
	idx := specIndex(o.Specs)
	available := strings.Join(specNames(o.Specs), ", ")
	var ptbl map[string]any
	if pv, ok := doc.data["plugins"]; ok {
		if ptbl, ok = pv.(map[string]any); !ok {
			return doc.errorAt("", []string{"plugins"}, fmt.Errorf("unexpected type for plugins: expected table, got %s", tomlTypeName(pv)))
		}
	}
	listed := map[string]bool{}
	for _, n := range names {
		listed[n] = true
	}

	var sections []section
	for _, name := range doc.sortedKeys([]string{"plugins"}, ptbl) {
		p := []string{"plugins", name}
		tbl, ok := ptbl[name].(map[string]any)
		if !ok {
			return doc.errorAt("", p, fmt.Errorf("unexpected type for plugins.%s: expected table, got %s", name, tomlTypeName(ptbl[name])))
		}
		enabled, tbl, err := readEnabled(doc, name, tbl)
		if err != nil {
			return err
		}
		if given {
			enabled = listed[name]
		}
		if _, known := idx[name]; known {
			sections = append(sections, section{name: name, tbl: tbl, enabled: enabled})
			continue
		}
		if !isAlumetOnly(name) {
			msg := fmt.Sprintf("unknown plugin '%s' in configuration", name)
			if near := suggest(name, specNames(o.Specs)); len(near) > 0 {
				msg += fmt.Sprintf("; did you mean %s?", orList(near))
			}
			return doc.errorAt("", p, fmt.Errorf("%s (available plugins: %s)", msg, available))
		}
		switch {
		case given && listed[name]:
			// Already reported by logUnavailable, as Alumet does.
		case enabled:
			return doc.errorAt("", p, fmt.Errorf("plugin '%s' is not implemented by this agent "+
				"(available plugins: %s); remove its section, set enabled = false in it, or leave it out of --plugins",
				name, available))
		default:
			o.Logger.Warn(fmt.Sprintf("Plugin '%s' is configured (%s) but is not implemented by this agent; its section is ignored.",
				name, doc.where(p...)))
		}
	}

	// Decide the enabled plugins, in start order.
	type pending struct {
		spec PluginSpec
		tbl  map[string]any // nil when the plugin has no section
	}
	var todo []pending
	inTodo := map[string]bool{}
	for _, s := range sections {
		spec := o.Specs[idx[s.name]]
		if s.enabled {
			todo = append(todo, pending{spec: spec, tbl: s.tbl})
			inTodo[s.name] = true
		}
	}
	if given {
		for _, n := range names {
			if i, ok := idx[n]; ok && !inTodo[n] {
				todo = append(todo, pending{spec: o.Specs[i]})
				inTodo[n] = true
			}
		}
	}

	for _, t := range todo {
		cfg, err := decodePlugin(doc, t.spec, t.tbl)
		if err != nil {
			return err
		}
		if o.Logger.Enabled(context.Background(), slog.LevelDebug) {
			o.Logger.Debug(fmt.Sprintf("Configuration of plugin %s:\n%s", t.spec.Name, Redacted(cfg)))
		}
		ld.Enabled = append(ld.Enabled, EnabledPlugin{Spec: t.spec, Config: cfg})
	}
	for _, s := range o.Specs {
		if !inTodo[s.Name] {
			ld.Disabled = append(ld.Disabled, s)
		}
	}
	return nil
}

// decodePlugin builds the configuration of an enabled plugin: its defaults,
// overwritten by its table (tbl may be nil), then validated.
func decodePlugin(doc *document, spec PluginSpec, tbl map[string]any) (plugin.Config, error) {
	sectionName := "plugins." + spec.Name
	path := []string{"plugins", spec.Name}
	if spec.DefaultConfig == nil {
		return nil, &Error{Section: sectionName, Err: errors.New("internal error: the plugin has no default configuration")}
	}
	cfg := spec.DefaultConfig()
	if cfg == nil {
		return nil, &Error{Section: sectionName, Err: errors.New("internal error: the plugin's default configuration is nil")}
	}
	if tbl != nil {
		// The values of secret keys are secrets for every message of the
		// process, not only for the errors of this section.
		for _, v := range secretValues(nil, tbl) {
			redact.Register(v)
		}
		pd := &pluginDecoder{doc: doc, section: sectionName, path: path}
		if err := pd.decode(cfg, tbl); err != nil {
			return nil, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, validationError(doc, sectionName, path, tbl != nil, err, secretValues(nil, tbl))
	}
	return cfg, nil
}

// secretValues lists the non-empty strings held by secret keys of tbl.
func secretValues(path []string, tbl map[string]any) []string {
	var out []string
	for k, v := range tbl {
		p := append(path[:len(path):len(path)], k)
		if sub, ok := v.(map[string]any); ok {
			out = append(out, secretValues(p, sub)...)
			continue
		}
		if isSecretPath(p) {
			out = append(out, stringValues(v)...)
		}
	}
	return out
}

// leafErrors flattens errors.Join trees.
func leafErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			if e != nil {
				out = append(out, leafErrors(e)...)
			}
		}
		return out
	}
	return []error{err}
}

// validationError locates the errors of Validate: a *plugin.FieldError at
// its key's line, any other error at the section.
func validationError(doc *document, sectionName string, path []string, hasSection bool, err error, secrets []string) error {
	var errs []error
	for _, leaf := range leafErrors(err) {
		at := path
		var fe *plugin.FieldError
		if errors.As(leaf, &fe) && fe.Key != "" {
			at = append(path[:len(path):len(path)], strings.Split(fe.Key, ".")...)
		}
		e := doc.errorAt(sectionName, at, scrub(leaf, secrets))
		if !hasSection {
			// Only defaults: no place in the file to point at.
			e.File, e.Line, e.Origin = "", 0, ""
		}
		errs = append(errs, e)
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}
