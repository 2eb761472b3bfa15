// Package testkit holds the test helpers that know nothing of the agent's
// packages: a buffer safe for concurrent writes (a child process's stderr,
// a logger written from several goroutines) and a slog handler that
// records what is logged. The pipeline's recording sink is in
// pipeline/pipelinetest, the emulator's start-up helpers in
// kwollect/emulator/emutest.
package testkit

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
)

// LockedBuffer is a bytes.Buffer safe for concurrent writers and readers:
// give it to exec.Cmd.Stderr or slog.NewTextHandler and read it with
// String while they write. The zero value is empty and ready to use; it
// must not be copied after first use.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p. It never fails.
func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Len returns the number of bytes written so far.
func (l *LockedBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}

// Logs is a slog.Handler that records every record, at every level, as a
// line "LEVEL message" (slog's level names: DEBUG, INFO, WARN, ERROR).
// Attributes and groups are not recorded: tests assert on the messages the
// user reads. It is safe for concurrent use; the zero value is ready.
type Logs struct {
	mu    sync.Mutex
	lines []string
}

// Logger returns a logger writing to l.
func (l *Logs) Logger() *slog.Logger { return slog.New(l) }

// Enabled is true at every level.
func (l *Logs) Enabled(context.Context, slog.Level) bool { return true }

// Handle records r.
func (l *Logs) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, r.Level.String()+" "+r.Message)
	return nil
}

// WithAttrs returns l: attributes are not recorded.
func (l *Logs) WithAttrs([]slog.Attr) slog.Handler { return l }

// WithGroup returns l: groups are not recorded.
func (l *Logs) WithGroup(string) slog.Handler { return l }

// Lines returns a copy of the recorded lines, "LEVEL message", in order
// (nil if nothing was logged).
func (l *Logs) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) == 0 {
		return nil
	}
	return append([]string(nil), l.lines...)
}

// Text returns the lines logged at level ("WARN", say; "" for every
// level), joined with newlines.
func (l *Logs) Text(level string) string {
	var out []string
	for _, s := range l.Lines() {
		if level == "" || strings.HasPrefix(s, level+" ") {
			out = append(out, s)
		}
	}
	return strings.Join(out, "\n")
}
