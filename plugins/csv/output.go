package csv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	stdcsv "encoding/csv"

	"github.com/alumet-go/alumet-agent/internal/writeback"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
)

var (
	_ pipeline.Output          = (*FileOutput)(nil)
	_ pipeline.FailureReporter = (*FileOutput)(nil)
	_ pipeline.CompactWriter   = (*FileOutput)(nil)
	_ pipeline.LossError       = (*OutputError)(nil)
	_ pipeline.LossError       = (*WriteError)(nil)
	_ pipeline.LossError       = (*SkippedError)(nil)
)

// FlushInterval is the longest time data stays in the buffer when
// force_flush is false.
const FlushInterval = time.Second

// maxHeaderSize bounds the header line read from an existing file in append mode.
const maxHeaderSize = 1 << 20

// FileOutput is the csv plugin's pipeline output: a Writer on a file.
// Write and Close follow pipeline.Output: Write from one goroutine, Close
// once after the last Write. A background goroutine flushes every second
// when force_flush is false.
//
// A write error (ENOSPC, EFBIG, EIO, EPIPE…) fails the output for good:
// a regular file is truncated back to its last whole row, nothing more is
// written, and every point not written (those buffered then, the rest of
// the buffer being written, every later one) is counted. The error, an
// *OutputError, is returned by the Write that met it and by every later
// one, or by Close when the final flush met it, or given at once to the
// pipeline when the background flush met it (ReportFailuresTo).
type FileOutput struct {
	path       string
	f          *lazyFile
	log        *slog.Logger
	forceFlush bool
	interval   time.Duration
	now        func() time.Time
	base       int64 // the file's size before the Writer's first byte (append mode)

	mu        sync.Mutex // guards everything below, and w
	w         *Writer
	lastFlush time.Time
	settled   bool        // the failure was dealt with (the file cut back)
	end       string      // how the file ends after the failure
	reported  bool        // the failure was returned by Write or given to report
	report    func(error) // the pipeline's, for failures of the background flush
	closed    bool

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// OutputError is the failure of the CSV output: the write error, the
// points lost when it was returned, and how the file ends.
type OutputError struct {
	Path string
	Err  error // the write error, or the file's creation error
	Lost int64 // points not written
	End  string
}

func (e *OutputError) Error() string {
	var msg string
	var pe *fs.PathError
	switch {
	case errors.As(e.Err, &pe) && pe.Op == "write":
		msg = "writing " + e.Path + ": " + pe.Err.Error()
	case strings.Contains(e.Err.Error(), e.Path):
		msg = e.Err.Error()
	default:
		msg = "writing " + e.Path + ": " + e.Err.Error()
	}
	if e.End != "" {
		msg += " (" + e.End + ")"
	}
	return msg
}

func (e *OutputError) Unwrap() error { return e.Err }

// LostPoints is the number of points not written (pipeline.LossError).
func (e *OutputError) LostPoints() int64 { return e.Lost }

// OpenFile opens the output file of cfg: with cfg.Append, kept and appended
// to after its header; otherwise created (truncated) by the first row, so
// that a run without data keeps the previous run's file (see the package
// doc). Errors name the path; a file that could not be created fails here
// already, before anything is measured. logger may be nil.
func OpenFile(cfg *Config, reg *measure.Registry, logger *slog.Logger) (*FileOutput, error) {
	return openFile(cfg, reg, logger, time.Now, FlushInterval, true)
}

// openFile is OpenFile with an injectable clock, flush period and background
// flusher (tests).
func openFile(cfg *Config, reg *measure.Registry, logger *slog.Logger, now func() time.Time, interval time.Duration, background bool) (*FileOutput, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts := cfg.Options()
	var (
		f      = &lazyFile{path: cfg.OutputPath}
		header []string
		base   int64
		err    error
	)
	if cfg.Append {
		f.f, header, base, err = openAppend(cfg.OutputPath, opts.Delimiter, logger)
		f.wb.Reset(base)
	} else {
		err = f.check()
	}
	if err != nil {
		return nil, err
	}
	o := &FileOutput{
		path:       cfg.OutputPath,
		f:          f,
		log:        logger,
		forceFlush: cfg.ForceFlush,
		interval:   interval,
		now:        now,
		base:       base,
		w:          NewWriter(f, reg, opts),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	o.lastFlush = now()
	if header != nil {
		o.w.AssumeHeader(header)
	}
	if !cfg.ForceFlush && background {
		go o.flusher()
	} else {
		close(o.done)
	}
	return o, nil
}

// Path returns the output file's path.
func (o *FileOutput) Path() string { return o.path }

// ReportFailuresTo implements pipeline.FailureReporter: a failure of the
// background flush is given to report at once (and not returned again by
// Write or Close).
func (o *FileOutput) ReportFailuresTo(report func(error)) {
	o.mu.Lock()
	o.report = report
	o.mu.Unlock()
}

// Lost returns the points not written because of a write error, 0 without one.
func (o *FileOutput) Lost() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.w.Lost()
}

// Write writes the rows of buf. With force_flush they reach the OS before
// Write returns; otherwise within FlushInterval. After a write error it
// writes nothing, counts buf's points as lost and returns the failure.
// WritesCompact says Write reads Buffer.Compact (pipeline.CompactWriter).
func (o *FileOutput) WritesCompact() {}

func (o *FileOutput) Write(_ context.Context, buf *measure.Buffer) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return fmt.Errorf("%s: write after close", o.path)
	}
	err := o.w.WriteBuffer(buf)
	if o.w.Err() == nil && (o.forceFlush || o.now().Sub(o.lastFlush) >= o.interval) {
		o.flushLocked()
	}
	if o.w.Err() != nil {
		o.settle()
		o.reported = true
		return o.failure()
	}
	return err // nil, or a *SkippedError
}

func (o *FileOutput) flushLocked() {
	if o.w.Flush() == nil {
		o.lastFlush = o.now()
	}
}

// settle deals with the Writer's failure, once: a regular file that ends
// in a part of a row is truncated back to its last whole row.
func (o *FileOutput) settle() {
	if o.settled || o.w.Err() == nil {
		return
	}
	o.settled = true
	const whole = "the file ends at its last whole row"
	if o.f.f == nil {
		return // its creation failed: nothing was written
	}
	torn := o.w.torn
	st, err := o.f.f.Stat()
	switch {
	case err != nil && torn:
		o.end = fmt.Sprintf("cannot tell whether it can be truncated: %v; it may end in a torn row", err)
	case err != nil || st.Mode().IsRegular() && !torn:
		o.end = whole // the failing write wrote nothing
	case !st.Mode().IsRegular() && torn:
		o.end = "not a regular file, so not truncated: its reader may have got a torn last row"
	case !st.Mode().IsRegular():
		o.end = "not a regular file, nothing to truncate: it got whole rows only"
	default:
		size := o.base + o.w.Committed()
		switch err := o.f.f.Truncate(size); {
		case err != nil:
			o.end = fmt.Sprintf("truncating it back to its last whole row failed: %v; it may end in a torn row", err)
		case size == 0:
			o.end = "the file is left empty: not even the header fitted"
		default:
			o.end = whole
		}
	}
}

func (o *FileOutput) failure() error {
	return &OutputError{Path: o.path, Err: o.w.Err(), Lost: o.w.Lost(), End: o.end}
}

// flusher flushes the buffered rows every interval until Close.
func (o *FileOutput) flusher() {
	defer close(o.done)
	t := time.NewTicker(o.interval)
	defer t.Stop()
	for {
		select {
		case <-o.stop:
			return
		case <-t.C:
			o.tick()
		}
	}
}

// tick flushes what is buffered. A failure is given to the pipeline at
// once when it asked for it (ReportFailuresTo), and otherwise returned by
// the next Write or Close.
func (o *FileOutput) tick() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed || o.w.Err() != nil || o.w.Buffered() == 0 {
		return
	}
	o.flushLocked()
	if o.w.Err() == nil {
		return
	}
	o.settle()
	if o.report != nil {
		// The pipeline's report takes its own lock only, never o.mu.
		o.reported = true
		o.report(o.failure())
	}
}

// Close flushes the buffered rows, fsyncs and closes the file. Every failure
// is returned, except one already returned by Write or reported. Later
// calls return the result of the first.
func (o *FileOutput) Close() error {
	o.closeOnce.Do(func() {
		close(o.stop)
		<-o.done
		o.mu.Lock()
		defer o.mu.Unlock()
		o.closed = true
		var errs []error
		_ = o.w.Flush() // whole rows, or a failure dealt with below
		if o.w.Err() != nil {
			o.settle()
			if !o.reported {
				o.reported = true
				errs = append(errs, o.failure())
			}
		}
		switch {
		case o.f.f == nil && o.f.tried:
			// Its creation failed: the error is Write's or the flush's.
		case o.f.f == nil:
			// No row: the file was never created, an earlier one is intact.
			msg := "no data: " + o.path + " not written"
			if _, err := os.Stat(o.path); err == nil {
				msg += ", the previous file is kept"
			}
			o.log.Warn(msg)
		default:
			// After a failure too: the whole rows before it are kept.
			if err := o.f.f.Sync(); err != nil && !syncUnsupported(err) {
				errs = append(errs, fmt.Errorf("syncing %s: the rows written may not all be on disk: %w", o.path, err))
			}
			if err := o.f.f.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		o.closeErr = errors.Join(errs...)
	})
	return o.closeErr
}

// lazyFile is the CSV file, created and truncated by its first write (the
// Writer's first flush, which holds the header and rows): a run that ends
// without any row leaves the previous run's file as it was, rather than
// replacing it with an empty one. Streaming is unchanged: rows go to the
// file as they come (a temporary file renamed at the end would hide them
// until then, and lose them all on a crash). A file that is not a regular
// one (a pipe, a device, /dev/stdout) holds no earlier result: it is opened
// at once, as before.
type lazyFile struct {
	path  string
	f     *os.File // nil until created
	tried bool     // rows came: a nil f then is a failed creation, already reported
	// write, when set (tests), writes to f instead of f.Write: a disk that
	// fills up after so many bytes.
	write func(f *os.File, p []byte) (int, error)
	wb    writeback.Tracker // starts the writeback of the rows as they are written
}

// check opens a special file at once, and otherwise makes sure the file
// can be created, without creating or truncating it: the same failure as
// the creation would be, with the path, but before anything is measured.
func (l *lazyFile) check() error {
	fail := func(err error) error {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("cannot create the CSV output file: %w", &fs.PathError{Op: "open", Path: l.path, Err: err})
	}
	st, err := os.Stat(l.path)
	switch {
	case err == nil && st.IsDir():
		return fail(syscall.EISDIR)
	case err == nil && !st.Mode().IsRegular():
		return l.open()
	case err == nil:
		if err := syscall.Access(l.path, 2 /* W_OK */); err != nil {
			return fail(err)
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fail(err)
	}
	dir := filepath.Dir(l.path)
	st, err = os.Stat(dir)
	switch {
	case err != nil:
		return fail(err)
	case !st.IsDir():
		return fail(syscall.ENOTDIR)
	}
	if err := syscall.Access(dir, 2|1 /* W_OK|X_OK */); err != nil {
		return fail(err)
	}
	return nil
}

func (l *lazyFile) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
	if err != nil {
		return fmt.Errorf("cannot create the CSV output file: %w", err)
	}
	l.f = f
	return nil
}

func (l *lazyFile) Write(p []byte) (int, error) {
	if l.f == nil {
		l.tried = true
		if err := l.open(); err != nil {
			return 0, err
		}
	}
	var n int
	var err error
	if l.write != nil {
		n, err = l.write(l.f, p)
	} else {
		n, err = l.f.Write(p)
	}
	l.wb.Wrote(l.f, n)
	return n, err
}

// syncUnsupported reports an fsync error of a file that cannot be synced
// (a pipe, a terminal, /dev/stdout): not a loss of data.
func syncUnsupported(err error) bool {
	return errors.Is(err, syscall.EINVAL) || errors.Is(err, errors.ErrUnsupported)
}

// openAppend opens path for appending, and returns its size (where the
// Writer's bytes start). A missing or empty file is new (nil header). Otherwise the header must start with the fixed columns and end
// with __late_attributes; its attribute columns are returned (non-nil). A
// last line without '\n' (a crash during a write) is terminated, and closed
// with a quote when it ends inside a quoted cell, so that the appended rows
// start on a line of their own.
func openAppend(path string, delim rune, logger *slog.Logger) (f *os.File, header []string, size int64, err error) {
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o666)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("cannot open the CSV output file for appending: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			f = nil
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, 0, fmt.Errorf("cannot open the CSV output file for appending: %w", err)
	}
	size = st.Size()
	if !st.Mode().IsRegular() || size == 0 {
		return f, nil, size, nil
	}
	header, err = readHeader(f, size, delim)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("cannot append to %s: %w", path, err)
	}
	var last [1]byte
	if _, err := f.ReadAt(last[:], size-1); err != nil {
		return nil, nil, 0, fmt.Errorf("cannot append to %s: %w", path, err)
	}
	if last[0] != '\n' {
		quotes, err := countQuotes(f, size)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("cannot append to %s: %w", path, err)
		}
		end := []byte("\n")
		if quotes%2 == 1 {
			end = []byte("\"\n")
		}
		if _, err := f.Write(end); err != nil {
			return nil, nil, 0, fmt.Errorf("cannot append to %s: %w", path, err)
		}
		size += int64(len(end))
		logger.Warn(fmt.Sprintf("%s: the last line was incomplete (no final newline, probably an interrupted write); it was terminated before appending", path))
	}
	return f, header, size, nil
}

// readHeader parses the first record of the file with the configured delimiter.
func readHeader(f *os.File, size int64, delim rune) ([]string, error) {
	r := stdcsv.NewReader(io.NewSectionReader(f, 0, min(size, maxHeaderSize)))
	r.Comma = delim
	r.FieldsPerRecord = -1
	rec, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("cannot parse the existing header: %w", err)
	}
	if end := r.InputOffset(); end < size {
		var b [1]byte
		if _, err := f.ReadAt(b[:], end-1); err != nil {
			return nil, err
		}
		if b[0] != '\n' {
			return nil, fmt.Errorf("the header line is longer than %d bytes", maxHeaderSize)
		}
	}
	fixed := FixedColumns[:]
	if len(rec) < len(fixed) || !slices.Equal(rec[:len(fixed)], fixed) {
		return nil, fmt.Errorf("the existing header %q does not start with the columns %s (check csv_delimiter)",
			truncate(strings.Join(rec, string(delim)), 200), strings.Join(fixed, string(delim)))
	}
	if len(rec) == len(fixed) || rec[len(rec)-1] != LateColumn {
		return nil, fmt.Errorf("the existing header does not end with the column %s", LateColumn)
	}
	return slices.Clone(rec[len(fixed) : len(rec)-1]), nil
}

func countQuotes(f *os.File, size int64) (int, error) {
	n := 0
	buf := make([]byte, 64<<10)
	r := io.NewSectionReader(f, 0, size)
	for {
		k, err := r.Read(buf)
		n += bytes.Count(buf[:k], []byte{'"'})
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
