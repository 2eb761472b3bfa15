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

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
)

var _ pipeline.Output = (*FileOutput)(nil)

// FlushInterval is the longest time data stays in the buffer when
// force_flush is false.
const FlushInterval = time.Second

// maxHeaderSize bounds the header line read from an existing file in append mode.
const maxHeaderSize = 1 << 20

// FileOutput is the csv plugin's pipeline output: a Writer on a file.
// Write and Close follow pipeline.Output: Write from one goroutine, Close
// once after the last Write. A background goroutine flushes every second
// when force_flush is false.
type FileOutput struct {
	path       string
	f          *lazyFile
	log        *slog.Logger
	forceFlush bool
	interval   time.Duration
	now        func() time.Time

	mu        sync.Mutex // guards everything below, and w
	w         *Writer
	lastFlush time.Time
	reported  error // the last error returned by Write
	asyncErr  error // a failed background flush, returned by the next Write or Close
	closed    bool

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

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
		err    error
	)
	if cfg.Append {
		f.f, header, err = openAppend(cfg.OutputPath, opts.Delimiter, logger)
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

// Write writes the rows of buf. With force_flush they reach the OS before
// Write returns; otherwise within FlushInterval.
func (o *FileOutput) Write(_ context.Context, buf *measure.Buffer) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return fmt.Errorf("%s: write after close", o.path)
	}
	if err := o.asyncErr; err != nil {
		o.asyncErr = nil
		o.reported = err
		return err
	}
	err := o.w.WriteBuffer(buf)
	if o.forceFlush || o.now().Sub(o.lastFlush) >= o.interval {
		if ferr := o.flushLocked(); ferr != nil && !errors.Is(err, ferr) {
			err = errors.Join(err, ferr)
		}
	}
	if err != nil {
		o.reported = err
	}
	return err
}

func (o *FileOutput) flushLocked() error {
	err := o.w.Flush()
	if err == nil {
		o.lastFlush = o.now()
	}
	return err
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

// tick flushes what is buffered; a failure is kept for the next Write or Close.
func (o *FileOutput) tick() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed || o.asyncErr != nil || o.w.Buffered() == 0 {
		return
	}
	if err := o.flushLocked(); err != nil && !errors.Is(o.reported, err) {
		o.asyncErr = err
	}
}

// Close flushes the buffered rows, fsyncs and closes the file. Every failure
// is returned, except one Write already returned. Later calls return the
// result of the first.
func (o *FileOutput) Close() error {
	o.closeOnce.Do(func() {
		close(o.stop)
		<-o.done
		o.mu.Lock()
		defer o.mu.Unlock()
		o.closed = true
		var errs []error
		if o.asyncErr != nil {
			errs = append(errs, o.asyncErr)
		}
		if err := o.w.Flush(); err != nil && !errors.Is(o.reported, err) && !errors.Is(o.asyncErr, err) {
			errs = append(errs, err)
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
			if err := o.f.f.Sync(); err != nil && !syncUnsupported(err) {
				errs = append(errs, err)
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
	return l.f.Write(p)
}

// syncUnsupported reports an fsync error of a file that cannot be synced
// (a pipe, a terminal, /dev/stdout): not a loss of data.
func syncUnsupported(err error) bool {
	return errors.Is(err, syscall.EINVAL) || errors.Is(err, errors.ErrUnsupported)
}

// openAppend opens path for appending. A missing or empty file is new (nil
// header). Otherwise the header must start with the fixed columns and end
// with __late_attributes; its attribute columns are returned (non-nil). A
// last line without '\n' (a crash during a write) is terminated, and closed
// with a quote when it ends inside a quoted cell, so that the appended rows
// start on a line of their own.
func openAppend(path string, delim rune, logger *slog.Logger) (f *os.File, header []string, err error) {
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o666)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot open the CSV output file for appending: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			f = nil
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("cannot open the CSV output file for appending: %w", err)
	}
	size := st.Size()
	if !st.Mode().IsRegular() || size == 0 {
		return f, nil, nil
	}
	header, err = readHeader(f, size, delim)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot append to %s: %w", path, err)
	}
	var last [1]byte
	if _, err := f.ReadAt(last[:], size-1); err != nil {
		return nil, nil, fmt.Errorf("cannot append to %s: %w", path, err)
	}
	if last[0] != '\n' {
		quotes, err := countQuotes(f, size)
		if err != nil {
			return nil, nil, fmt.Errorf("cannot append to %s: %w", path, err)
		}
		end := []byte("\n")
		if quotes%2 == 1 {
			end = []byte("\"\n")
		}
		if _, err := f.Write(end); err != nil {
			return nil, nil, fmt.Errorf("cannot append to %s: %w", path, err)
		}
		logger.Warn(fmt.Sprintf("%s: the last line was incomplete (no final newline, probably an interrupted write); it was terminated before appending", path))
	}
	return f, header, nil
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
