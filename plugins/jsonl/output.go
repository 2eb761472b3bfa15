package jsonl

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/alumet-go/alumet-agent/internal/writeback"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
)

var (
	_ pipeline.Output          = (*Output)(nil)
	_ pipeline.CompactWriter   = (*Output)(nil)
	_ pipeline.FailureReporter = (*Output)(nil)
	_ pipeline.LossError       = (*WriteError)(nil)
)

// flushInterval is the longest time lines stay buffered without
// force_flush.
const flushInterval = time.Second

// bufSize is the size of the line buffer: the file gets whole lines, in
// writes of about this size.
const bufSize = 256 << 10

// Output writes one JSON line per point. A write error fails it for good:
// a regular file is truncated back to its last whole line, nothing more is
// written, and every point not written is counted (WriteError), so that a
// reader never takes a torn or silently short file for a whole one.
type Output struct {
	path       string
	log        *slog.Logger
	forceFlush bool
	now        func() time.Time

	mu        sync.Mutex // guards everything below
	f         *os.File
	regular   bool
	enc       *encoder
	buf       []byte
	pending   int64 // points whose lines are in buf
	committed int64 // bytes of the file that are whole lines
	truncate  bool  // the earlier content goes at the first write
	created   bool  // the file did not exist before Open
	wrote     bool  // lines were written
	wb        writeback.Tracker
	err       *WriteError
	reported  bool
	report    func(error)
	lastFlush time.Time
	closed    bool

	stop, done chan struct{}
	closeOnce  sync.Once
	closeErr   error
}

// WriteError is the output's failure: the error, the points not written,
// and how the file ends.
type WriteError struct {
	Path string
	Err  error
	Lost int64
	End  string
}

func (e *WriteError) Error() string {
	msg := fmt.Sprintf("writing %s: %v", e.Path, e.Err)
	if e.End != "" {
		msg += " (" + e.End + ")"
	}
	return msg
}

func (e *WriteError) Unwrap() error { return e.Err }

// LostPoints is the number of points not written (pipeline.LossError).
func (e *WriteError) LostPoints() int64 { return e.Lost }

// Open opens the file of cfg for writing, creating it if needed; without
// cfg.Append it is truncated by the first lines, not at start, so that a
// run without data (a refused pre-flight, an unreachable API) keeps an
// earlier run's file as it was, as the csv output does. logger may be nil.
func Open(cfg *Config, reg *measure.Registry, logger *slog.Logger) (*Output, error) {
	return open(cfg, reg, logger, time.Now, flushInterval)
}

func open(cfg *Config, reg *measure.Registry, logger *slog.Logger, now func() time.Time, interval time.Duration) (*Output, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	flags := os.O_WRONLY | os.O_CREATE
	if cfg.Append {
		flags |= os.O_APPEND
	}
	_, statErr := os.Stat(cfg.OutputPath)
	f, err := os.OpenFile(cfg.OutputPath, flags, 0o644)
	if err != nil {
		return nil, err // names the path
	}
	o := &Output{path: cfg.OutputPath, log: logger, forceFlush: cfg.ForceFlush, now: now, f: f,
		enc: newEncoder(reg), buf: make([]byte, 0, bufSize+4096), stop: make(chan struct{}), done: make(chan struct{})}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", cfg.OutputPath, err)
	}
	o.regular = st.Mode().IsRegular()
	o.created = errors.Is(statErr, fs.ErrNotExist)
	o.truncate = o.regular && !cfg.Append
	if o.regular && cfg.Append {
		o.committed = st.Size()
		o.wb.Reset(o.committed)
		if cfg.Append && st.Size() > 0 {
			if err := o.endLine(); err != nil {
				f.Close()
				return nil, err
			}
		}
	}
	o.lastFlush = now()
	if !cfg.ForceFlush {
		go o.flusher(interval)
	} else {
		close(o.done)
	}
	return o, nil
}

// endLine makes an appended file end with a newline: a line cut by an
// earlier interrupted write stays broken (jq reports it), but the new lines
// are whole.
func (o *Output) endLine() error {
	last := make([]byte, 1)
	if _, err := o.f.ReadAt(last, o.committed-1); err != nil {
		// O_WRONLY: read through another descriptor.
		r, err := os.Open(o.path)
		if err != nil {
			return err
		}
		defer r.Close()
		if _, err := r.ReadAt(last, o.committed-1); err != nil {
			return fmt.Errorf("%s: reading its last byte: %w", o.path, err)
		}
	}
	if last[0] == '\n' {
		return nil
	}
	o.log.Warn(fmt.Sprintf("%s does not end with a newline (an interrupted write?): a newline is added before the new lines; its last line stays broken", o.path))
	n, err := o.f.Write([]byte{'\n'})
	o.committed += int64(n)
	if err != nil {
		return fmt.Errorf("writing %s: %w", o.path, err)
	}
	return nil
}

// Path returns the file's path.
func (o *Output) Path() string { return o.path }

// WritesCompact says Write reads Buffer.Compact (pipeline.CompactWriter).
func (o *Output) WritesCompact() {}

// ReportFailuresTo implements pipeline.FailureReporter: a failure of the
// background flush is given to report at once.
func (o *Output) ReportFailuresTo(report func(error)) {
	o.mu.Lock()
	o.report = report
	o.mu.Unlock()
}

// Write appends the lines of buf's points.
func (o *Output) Write(_ context.Context, buf *measure.Buffer) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return fmt.Errorf("%s: write after close", o.path)
	}
	if o.err != nil {
		o.err.Lost += int64(buf.Len())
		return o.failure()
	}
	for i := range buf.Points {
		o.buf = o.enc.appendPoint(o.buf, &buf.Points[i])
		o.pending++
		if len(o.buf) >= bufSize && !o.flushLocked() {
			o.err.Lost += int64(len(buf.Points) - i - 1 + len(buf.Compact))
			return o.failure()
		}
	}
	for i := range buf.Compact {
		o.buf = o.enc.appendCompact(o.buf, &buf.Compact[i])
		o.pending++
		if len(o.buf) >= bufSize && !o.flushLocked() {
			o.err.Lost += int64(len(buf.Compact) - i - 1)
			return o.failure()
		}
	}
	if o.forceFlush || o.now().Sub(o.lastFlush) >= flushInterval {
		if !o.flushLocked() {
			return o.failure()
		}
	}
	return nil
}

// failure returns the error once to whoever meets it first; Write keeps
// returning it so that the pipeline counts the lost points.
func (o *Output) failure() error {
	o.reported = true
	e := *o.err
	return &e
}

// flushLocked writes the buffered lines; false when that failed (o.err is
// then set and the file cut back to its last whole line).
func (o *Output) flushLocked() bool {
	if o.err != nil {
		return false
	}
	if len(o.buf) == 0 {
		o.lastFlush = o.now()
		return true
	}
	if o.truncate {
		// The first lines replace the earlier file.
		if err := o.f.Truncate(0); err != nil {
			o.err = &WriteError{Path: o.path, Err: err, Lost: o.pending, End: "the earlier file is unchanged"}
			o.buf, o.pending = o.buf[:0], 0
			o.log.Error(o.err.Error())
			return false
		}
		o.truncate = false
	}
	o.wrote = true
	n, err := o.f.Write(o.buf)
	o.wb.Wrote(o.f, n)
	if err == nil {
		o.committed += int64(n)
		o.buf, o.pending = o.buf[:0], 0
		o.lastFlush = o.now()
		return true
	}
	o.err = &WriteError{Path: o.path, Err: err, Lost: o.pending}
	o.buf, o.pending = o.buf[:0], 0
	o.err.End = o.cutBack(n > 0)
	o.log.Error(o.err.Error())
	return false
}

// cutBack truncates a regular file back to its last whole line after a
// failed write, and says how the file ends.
func (o *Output) cutBack(torn bool) string {
	const whole = "the file ends at its last whole line"
	switch {
	case !torn:
		return whole
	case !o.regular:
		return "not a regular file, so not truncated: its reader may have got a torn last line"
	}
	if err := o.f.Truncate(o.committed); err != nil {
		return fmt.Sprintf("truncating it back to its last whole line failed: %v; it may end in a torn line", err)
	}
	return whole
}

func (o *Output) flusher(interval time.Duration) {
	defer close(o.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-o.stop:
			return
		case <-t.C:
			o.mu.Lock()
			if !o.closed && o.err == nil && len(o.buf) > 0 && !o.flushLocked() && o.report != nil {
				o.report(o.failure())
			}
			o.mu.Unlock()
		}
	}
}

// Close writes the buffered lines, fsyncs and closes the file. A failure
// not yet returned by Write or reported is returned.
func (o *Output) Close() error {
	o.closeOnce.Do(func() {
		close(o.stop)
		<-o.done
		o.mu.Lock()
		defer o.mu.Unlock()
		o.closed = true
		var err error
		if !o.flushLocked() && !o.reported {
			err = o.failure()
		}
		if o.regular && o.err == nil {
			if serr := o.f.Sync(); serr != nil {
				err = &WriteError{Path: o.path, Err: fmt.Errorf("fsync: %w", serr), End: "the lines may not all be on disk"}
			}
		}
		if cerr := o.f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing %s: %w", o.path, cerr)
		}
		if !o.wrote && o.truncate {
			// Nothing came: an earlier run's file stays as it was.
			if o.created {
				os.Remove(o.path)
			}
			o.log.Info(fmt.Sprintf("no data: %s not written, the previous file is kept", o.path))
		}
		o.closeErr = err
	})
	return o.closeErr
}
