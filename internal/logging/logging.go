// Package logging writes log/slog records in env_logger's format, the one
// Alumet users scrape: "[2025-08-05T07:44:46Z INFO  target] message".
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/alumet-go/alumet-agent/internal/redact"
	"golang.org/x/term"
)

// LevelTrace is below slog's Debug, for env_logger's trace.
const LevelTrace = slog.LevelDebug - 4

// TargetKey is the attribute that carries a record's target.
const TargetKey = "target"

// Filter is a parsed RUST_LOG directive list, with env_logger's semantics
// (env_filter 2.0, the version Alumet 0.9.5 links):
//
//   - "info" (a bare level) sets the level of every target;
//   - "plugin_kwollect_input=debug" sets the level of the targets that start
//     with that string (a plain prefix: "alumet" also matches "alumet_agent");
//     the longest matching name wins, and a later directive replaces an
//     earlier one with the same name;
//   - "plugin_kwollect_input" alone (a word that is not a level) enables that
//     prefix at every level;
//   - a target that no directive matches is off: RUST_LOG=plugin_kwollect_input=debug
//     prints that plugin's lines and nothing else;
//   - no directive at all (RUST_LOG="/x" or ",") leaves only errors;
//   - "…/regex" also keeps only the lines whose message matches the regex.
//
// Levels are trace, debug, info, warn, error and off, in any case.
type Filter struct {
	// Default is the level of the targets no directive names (LevelOff
	// when the directives name targets only).
	Default slog.Level
	// Targets are the named directives, longest prefix wins.
	Targets []TargetLevel
	// Regex, when set, keeps only the messages it matches.
	Regex *regexp.Regexp
}

// TargetLevel is one "target=level" directive.
type TargetLevel struct {
	Target string
	Level  slog.Level
}

// LevelOff is above every level: nothing is logged at it.
const LevelOff = slog.LevelError + 100

// levels are the log crate's names, compared as it does (ASCII case only).
var levels = []struct {
	name  string
	level slog.Level
}{{"off", LevelOff}, {"error", slog.LevelError}, {"warn", slog.LevelWarn}, {"info", slog.LevelInfo}, {"debug", slog.LevelDebug}, {"trace", LevelTrace}}

// ParseLevel parses an env_logger level name, in any ASCII case.
func ParseLevel(s string) (slog.Level, error) {
	for _, l := range levels {
		if asciiEqualFold(s, l.name) {
			return l.level, nil
		}
	}
	return 0, fmt.Errorf("invalid log level %q (valid: trace, debug, info, warn, error, off)", s)
}

// asciiEqualFold is Rust's eq_ignore_ascii_case: strings.EqualFold also
// folds non-ASCII letters (the Kelvin sign K is k there).
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// DefaultFilter is the filter without RUST_LOG, ALUMET_LOG nor --log-level:
// info for every target, as Alumet's default_filter_or("info").
func DefaultFilter() Filter { return Filter{Default: slog.LevelInfo} }

// ParseFilter parses a RUST_LOG value as env_logger does. Like env_logger
// it keeps what it can: each invalid part is skipped and reported in the
// returned errors ("invalid logging spec 'loud'"), which env_logger prints
// as "warning: <error>, ignoring it".
func ParseFilter(spec string) (Filter, []error) {
	var errs []error
	f := Filter{Default: LevelOff}
	mods, regex, hasRegex := strings.Cut(spec, "/")
	if hasRegex && strings.Contains(regex, "/") {
		return Filter{Default: slog.LevelError}, []error{fmt.Errorf("invalid logging spec '%s' (too many '/'s)", spec)}
	}
	// A bare level and the empty name ("=debug") both match every target
	// with a name of length 0: the one given first is kept in place and the
	// one placed later wins, as in env_logger's sorted directive list.
	var (
		n                    int // directives placed
		defPos, emptyPos     = -1, -1
		defLevel, emptyLevel slog.Level
	)
	for _, d := range strings.Split(mods, ",") {
		d = strings.TrimSpace(d)
		if d == "" {
			continue
		}
		parts := strings.Split(d, "=")
		var (
			name  string
			level slog.Level
			bare  bool // a level alone: the default
		)
		switch {
		case len(parts) == 1:
			if l, err := ParseLevel(parts[0]); err == nil {
				level, bare = l, true
			} else {
				name, level = parts[0], LevelTrace
			}
		case len(parts) == 2 && strings.TrimSpace(parts[1]) == "":
			name, level = parts[0], LevelTrace
		case len(parts) == 2:
			l, err := ParseLevel(strings.TrimSpace(parts[1]))
			if err != nil {
				errs = append(errs, fmt.Errorf("invalid logging spec '%s'", strings.TrimSpace(parts[1])))
				continue
			}
			name, level = parts[0], l
		default:
			errs = append(errs, fmt.Errorf("invalid logging spec '%s'", d))
			continue
		}
		n++
		switch {
		case bare:
			if defPos < 0 {
				defPos = n
			}
			defLevel = level
		case name == "":
			if emptyPos < 0 {
				emptyPos = n
			}
			emptyLevel = level
		default:
			f.set(name, level)
		}
	}
	switch {
	case n == 0:
		f.Default = slog.LevelError
	case emptyPos > defPos:
		f.Default = emptyLevel
	case defPos >= 0:
		f.Default = defLevel
	}
	if hasRegex {
		re, err := regexp.Compile(regex)
		if err != nil {
			errs = append(errs, fmt.Errorf("invalid regex filter - %w", err))
		} else {
			f.Regex = re
		}
	}
	return f, errs
}

// set adds a directive, replacing one with the same name (env_logger's
// insert_directive).
func (f *Filter) set(name string, l slog.Level) {
	for i := range f.Targets {
		if f.Targets[i].Target == name {
			f.Targets[i].Level = l
			return
		}
	}
	f.Targets = append(f.Targets, TargetLevel{Target: name, Level: l})
}

// LevelFor returns the minimum level enabled for target (LevelOff: none).
// The longest directive name that prefixes target decides, else Default.
func (f Filter) LevelFor(target string) slog.Level {
	best, bestLen := f.Default, 0
	for _, t := range f.Targets {
		if len(t.Target) > bestLen && strings.HasPrefix(target, t.Target) {
			best, bestLen = t.Level, len(t.Target)
		}
	}
	return best
}

// Enabled reports whether a record of target at level l with message msg
// is printed.
func (f Filter) Enabled(target string, l slog.Level, msg string) bool {
	lf := f.LevelFor(target)
	if lf >= LevelOff || l < lf {
		return false
	}
	return f.Regex == nil || f.Regex.MatchString(msg)
}

func (f Filter) minLevel() slog.Level {
	m := f.Default
	for _, t := range f.Targets {
		m = min(m, t.Level)
	}
	return m
}

// writeMu serialises every write of log lines and status lines, so that a
// progress line never cuts a log line in two.
var (
	writeMu       sync.Mutex
	statusPending bool // a status line without newline is on the terminal
)

// WriteStatus writes s (a progress line, "\r…") to w under the lock the log
// handlers use; the next log line first erases it.
func WriteStatus(w io.Writer, s string) {
	writeMu.Lock()
	defer writeMu.Unlock()
	_, _ = io.WriteString(w, s)
	statusPending = !strings.HasSuffix(s, "\n")
}

// Handler is a slog.Handler writing env_logger lines.
type Handler struct {
	w      io.Writer
	filter Filter
	color  bool
	target string
	attrs  string           // pre-rendered " key=value" attributes
	now    func() time.Time // tests pin the clock; nil = the record's time
}

// NewHandler returns a handler writing to w. Colours are used when color is set.
func NewHandler(w io.Writer, f Filter, color bool) *Handler {
	return &Handler{w: w, filter: f, color: color, target: "alumet_agent"}
}

// Enabled reports whether some target logs at level l; Handle filters per target.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.filter.minLevel() }

// WithAttrs returns a handler whose records carry attrs; a "target" attribute sets the target.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range attrs {
		if a.Key == TargetKey {
			c.target = a.Value.String()
			continue
		}
		appendAttr(&b, a)
	}
	c.attrs = b.String()
	return &c
}

// WithGroup is not used by the agent; groups are flattened.
func (h *Handler) WithGroup(string) slog.Handler { return h }

func levelName(l slog.Level) string {
	switch {
	case l < slog.LevelDebug:
		return "TRACE"
	case l < slog.LevelInfo:
		return "DEBUG"
	case l < slog.LevelWarn:
		return "INFO "
	case l < slog.LevelError:
		return "WARN "
	}
	return "ERROR"
}

var levelColor = map[string]string{"TRACE": "\x1b[36m", "DEBUG": "\x1b[34m", "INFO ": "\x1b[32m", "WARN ": "\x1b[33m", "ERROR": "\x1b[31m"}

// Handle writes one line (or the message's lines as they are).
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	target := h.target
	var b strings.Builder
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == TargetKey {
			target = a.Value.String()
			return true
		}
		appendAttr(&b, a)
		return true
	})
	if !h.filter.Enabled(target, r.Level, r.Message) {
		return nil
	}
	t := r.Time
	if h.now != nil {
		t = h.now()
	} else if t.IsZero() {
		t = time.Now()
	}
	lvl := levelName(r.Level)
	if h.color {
		lvl = levelColor[lvl] + lvl + "\x1b[0m"
	}
	// Every message and attribute value goes through redact.String (the
	// attributes when they are rendered, see appendAttr; those of WithAttrs
	// again now, for the secrets registered since).
	line := fmt.Sprintf("[%s %s %s] %s%s%s\n", t.UTC().Format("2006-01-02T15:04:05Z"), lvl, target, redact.String(r.Message), redact.String(h.attrs), b.String())
	writeMu.Lock()
	defer writeMu.Unlock()
	if statusPending {
		line = "\r\x1b[K" + line
		statusPending = false
	}
	_, err := io.WriteString(h.w, line)
	return err
}

func appendAttr(b *strings.Builder, a slog.Attr) {
	if a.Equal(slog.Attr{}) {
		return
	}
	b.WriteByte(' ')
	b.WriteString(a.Key)
	b.WriteByte('=')
	v := redact.String(a.Value.Resolve().String())
	if strings.ContainsAny(v, " \"=") {
		fmt.Fprintf(b, "%q", v)
	} else {
		b.WriteString(v)
	}
}

// IsTerminal reports whether f is a terminal: a character device that
// answers the terminal ioctl, TCGETS on Linux (/dev/null is a character
// device, not a TTY).
func IsTerminal(f *os.File) bool {
	return term.IsTerminal(int(f.Fd()))
}

// Target returns a logger whose records carry the given target.
func Target(l *slog.Logger, target string) *slog.Logger {
	return l.With(slog.String(TargetKey, target))
}
