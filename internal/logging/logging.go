// Package logging writes log/slog records in env_logger's format, the one
// Alumet users scrape: "[2025-08-05T07:44:46Z INFO  target] message".
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
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

// Filter is a parsed RUST_LOG-style directive list: a default level and
// per-target levels, e.g. "info,plugin_kwollect_input=debug".
type Filter struct {
	Default slog.Level
	Targets []TargetLevel // longest prefix wins
}

// TargetLevel is one "target=level" directive.
type TargetLevel struct {
	Target string
	Level  slog.Level
}

// ParseLevel parses an env_logger level name.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "trace":
		return LevelTrace, nil
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	case "off":
		return slog.LevelError + 100, nil
	}
	return 0, fmt.Errorf("invalid log level %q (valid: trace, debug, info, warn, error, off)", s)
}

// ParseFilter parses "level", "target=level" and comma-separated lists of both.
// An empty string gives info.
func ParseFilter(s string) (Filter, error) {
	f := Filter{Default: slog.LevelInfo}
	for _, d := range strings.Split(s, ",") {
		d = strings.TrimSpace(d)
		if d == "" {
			continue
		}
		target, level, hasTarget := strings.Cut(d, "=")
		if !hasTarget {
			// A bare word is a level, or a target enabled at every level as in env_logger.
			if l, err := ParseLevel(d); err == nil {
				f.Default = l
			} else {
				f.Targets = append(f.Targets, TargetLevel{Target: d, Level: LevelTrace})
			}
			continue
		}
		l, err := ParseLevel(level)
		if err != nil {
			return Filter{}, fmt.Errorf("log filter %q: %w", d, err)
		}
		f.Targets = append(f.Targets, TargetLevel{Target: strings.TrimSpace(target), Level: l})
	}
	return f, nil
}

// LevelFor returns the minimum level enabled for target.
func (f Filter) LevelFor(target string) slog.Level {
	best, bestLen := f.Default, -1
	for _, t := range f.Targets {
		if len(t.Target) > bestLen && strings.HasPrefix(target, t.Target) {
			best, bestLen = t.Level, len(t.Target)
		}
	}
	return best
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
	if r.Level < h.filter.LevelFor(target) {
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
