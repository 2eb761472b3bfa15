package parquet

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/parquet-go/parquet-go/format"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
)

var (
	_ pipeline.Output          = (*FileOutput)(nil)
	_ pipeline.CompactWriter   = (*FileOutput)(nil)
	_ pipeline.FailureReporter = (*FileOutput)(nil)
	_ pipeline.LossError       = (*OutputError)(nil)
	_ pipeline.LossError       = (*SkippedError)(nil)
)

// tickInterval is how often, with rotate_interval, an idle run-mode file
// is checked for its age (so that it is published without waiting for
// the next point).
const tickInterval = time.Second

// FileOutput is the parquet plugin's pipeline output. Write and Close
// follow pipeline.Output: Write from one goroutine, Close once after the
// last Write.
//
// Every file is written under a hidden temporary name in its directory
// (.<name>.tmp) and renamed to its name once its footer is written and it
// is synced: a file with the final name is always a whole Parquet file.
// Without rotation (exec, watch, fetch) there is one file, output_path,
// published by Close; in run mode with rotation the files are numbered
// (<stem>-000001<ext>, …, after the highest number already in the
// directory) and each is published when it is rotate_interval old or
// holds rotate_rows rows, and by Close.
//
// A failure (a write, sync, close or rename error: a full disk, an I/O
// error) fails the output for good: the temporary file is removed,
// nothing more is written, and every point not in a published file is
// counted as lost in an *OutputError, returned by the Write or Close that
// met it (or reported at once when the rotation timer met it).
type FileOutput struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	rotate bool // numbered files (run mode)
	// schema and orders are the file metadata's schema and column orders.
	schema    []format.SchemaElement
	orders    []format.ColumnOrder
	createdBy string

	mu sync.Mutex // guards everything below
	// enc holds the rows of the current row group of cur (none without cur).
	enc       *encoder
	cur       *segment
	next      int // number of the next rotated file
	published []string
	err       *pathErr // the failure, nil before one
	lost      int64
	reported  bool
	report    func(error)
	closed    bool

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	// create, when set (tests), creates the temporary files.
	create func(name string) (file, error)
}

// file is what a segment writes to: an *os.File, or a failing one in tests.
type file interface {
	Write(p []byte) (int, error)
	Sync() error
	Close() error
	Name() string
}

// segment is one Parquet file being written.
type segment struct {
	path, tmp string
	f         file
	w         *fileWriter
	rows      int64 // rows of the file: written, or in the encoder
	opened    time.Time
}

// OutputError is the failure of the Parquet output.
type OutputError struct {
	Path string // the file being written
	Err  error
	Lost int64 // points in no published file
}

func (e *OutputError) Error() string {
	return fmt.Sprintf("writing %s: %v; %d point(s) lost (the unfinished file is removed; files already published are whole)", e.Path, e.Err, e.Lost)
}

func (e *OutputError) Unwrap() error { return e.Err }

// LostPoints is the number of points not written (pipeline.LossError).
func (e *OutputError) LostPoints() int64 { return e.Lost }

// SkippedError reports points whose metric is not registered.
type SkippedError struct {
	N      int
	Metric measure.MetricID
}

func (e *SkippedError) Error() string {
	return fmt.Sprintf("%d point(s) skipped: metric id %d is not registered", e.N, e.Metric)
}

// LostPoints is the number of points skipped (pipeline.LossError).
func (e *SkippedError) LostPoints() int64 { return int64(e.N) }

// Open returns the output of cfg. rotate turns on the numbered files of
// run mode (when rotate_interval or rotate_rows is set). The directory of
// output_path must exist and be writable: that is checked here, before
// anything is measured. logger may be nil.
func Open(cfg *Config, reg *measure.Registry, logger *slog.Logger, rotate bool) (*FileOutput, error) {
	return open(cfg, reg, logger, rotate, time.Now, tickInterval)
}

func open(cfg *Config, reg *measure.Registry, logger *slog.Logger, rotate bool, now func() time.Time, tick time.Duration) (*FileOutput, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	rotate = rotate && (cfg.RotateInterval > 0 || cfg.RotateRows > 0)
	if err := checkDir(cfg.OutputPath, rotate); err != nil {
		return nil, err
	}
	rb := newRowBuilder(reg, Options{
		AppendUnitToMetricName: cfg.AppendUnitToMetricName,
		UseUnitDisplayName:     cfg.UseUnitDisplayName,
		AttributeColumns:       cfg.AttributeColumns,
	})
	o := &FileOutput{
		cfg:       *cfg,
		log:       logger,
		now:       now,
		enc:       newEncoder(rb, cfg.AttributeColumns, cfg.Compression, int(cfg.RowGroupRows)),
		createdBy: createdBy(),
		rotate:    rotate,
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	o.schema, o.orders = schemaElements(Schema(cfg.AttributeColumns, cfg.Compression))
	if rotate {
		n, err := highestNumber(cfg.OutputPath)
		if err != nil {
			return nil, err
		}
		o.next = n + 1
	}
	if rotate && cfg.RotateInterval > 0 {
		go o.ticker(tick)
	} else {
		close(o.done)
	}
	return o, nil
}

// checkDir makes sure the files can be created: the directory exists and
// is writable, and (without rotation) output_path is not a directory.
func checkDir(path string, rotate bool) error {
	fail := func(err error) error {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("cannot create the Parquet output file: %w", &fs.PathError{Op: "open", Path: path, Err: err})
	}
	if !rotate {
		if st, err := os.Stat(path); err == nil {
			if st.IsDir() {
				return fail(syscall.EISDIR)
			}
			if !st.Mode().IsRegular() {
				return fail(errors.New("not a regular file (a Parquet file is published by renaming a finished file, which needs a regular file)"))
			}
		}
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
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

// numbered returns the path of the rotated file n.
func numbered(path string, n int) string {
	ext := filepath.Ext(path)
	return fmt.Sprintf("%s-%06d%s", strings.TrimSuffix(path, ext), n, ext)
}

// highestNumber returns the highest n of the existing rotated files of
// path, 0 without any: a restarted agent goes on after them rather than
// replacing them.
func highestNumber(path string) (int, error) {
	ext := filepath.Ext(path)
	stem := filepath.Base(strings.TrimSuffix(path, ext))
	re := regexp.MustCompile("^" + regexp.QuoteMeta(stem) + `-([0-9]{6,})` + regexp.QuoteMeta(ext) + "$")
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return 0, fmt.Errorf("cannot list the Parquet output directory: %w", err)
	}
	high := 0
	for _, e := range entries {
		if m := re.FindStringSubmatch(e.Name()); m != nil {
			if n, err := strconv.Atoi(m[1]); err == nil && n > high {
				high = n
			}
		}
	}
	return high, nil
}

// tmpName is the hidden temporary name of path, in its directory.
func tmpName(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
}

// Published returns the files published so far, in order.
func (o *FileOutput) Published() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.published...)
}

// ReportFailuresTo implements pipeline.FailureReporter: a failure met by
// the rotation timer is given to report at once.
func (o *FileOutput) ReportFailuresTo(report func(error)) {
	o.mu.Lock()
	o.report = report
	o.mu.Unlock()
}

// WritesCompact says Write reads Buffer.Compact (pipeline.CompactWriter).
func (o *FileOutput) WritesCompact() {}

// Write adds one row per point of buf to the current file, opening it
// first (the first file is created by the first point, so that a run
// without data replaces nothing).
func (o *FileOutput) Write(_ context.Context, buf *measure.Buffer) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return fmt.Errorf("%s: write after close", o.cfg.OutputPath)
	}
	if o.err != nil {
		if buf != nil {
			o.lost += int64(buf.Len())
		}
		return o.failure()
	}
	if buf == nil || buf.Len() == 0 {
		return nil
	}
	if o.rotate && o.cfg.RotateInterval > 0 && o.cur != nil && o.now().Sub(o.cur.opened) >= o.cfg.RotateInterval.D() {
		if err := o.finish(); err != nil {
			return o.fail(err, int64(buf.Len()))
		}
	}
	st := writeState{total: buf.Len()}
	if err := o.writePoints(buf.Points, &st); err != nil {
		return err
	}
	if err := o.writeCompact(buf.Compact, &st); err != nil {
		return err
	}
	if st.unknown > 0 {
		return &SkippedError{N: st.unknown, Metric: st.firstUnknown}
	}
	return nil
}

// writeState is the progress of a Write through its buffer.
type writeState struct {
	total, done  int // points of the buffer, and those consumed
	unknown      int
	firstUnknown measure.MetricID
}

func (st *writeState) skip(id measure.MetricID) {
	if st.unknown == 0 {
		st.firstUnknown = id
	}
	st.unknown++
}

// room is how many rows may be added before the row group is full or the
// file is to be rotated.
func (o *FileOutput) room() int {
	r := int(o.cfg.RowGroupRows) - o.enc.rows()
	if o.rotate && o.cfg.RotateRows > 0 {
		var rows int64
		if o.cur != nil {
			rows = o.cur.rows
		}
		r = int(min(int64(r), o.cfg.RotateRows-rows))
	}
	return r
}

// writeCompact adds the rows of pts, in chunks that end where a row group
// or a file does.
func (o *FileOutput) writeCompact(pts []measure.SeriesPoint, st *writeState) error {
	e := o.enc
	for i := 0; i < len(pts); {
		n := min(o.room(), len(pts)-i)
		k := len(e.ts)
		e.grow(n)
		ts, vals, sids := e.ts[:k+n], e.vals[:k+n], e.sid[:k+n]
		lim, gen := k+n, e.gen
		j := i
		// The loop of every row: a slot of the series cache, three stores.
		for ; j < len(pts) && k < lim; j++ {
			p := &pts[j]
			s := p.Series
			sl := &e.series.slots[slotOf(s)]
			sid := sl.sid
			if sl.s != s || sl.gen != gen {
				var ok bool
				if sid, ok = e.compactMiss(s); !ok {
					st.skip(s.Metric)
					continue
				}
				if e.full {
					lim = k + 1
				}
			}
			ts[k], vals[k], sids[k] = p.Time, p.Value.Float64(), sid
			k++
		}
		added := k - len(e.ts)
		e.ts, e.vals, e.sid = ts[:k], vals[:k], sids[:k]
		st.done += j - i
		i = j
		if err := o.commit(added, st); err != nil {
			return err
		}
	}
	return nil
}

// writePoints adds the rows of pts, as writeCompact.
func (o *FileOutput) writePoints(pts []measure.Point, st *writeState) error {
	e := o.enc
	for i := 0; i < len(pts); {
		n := min(o.room(), len(pts)-i)
		start := len(e.ts)
		e.grow(n)
		j := i
		for ; j < len(pts) && len(e.ts)-start < n; j++ {
			p := &pts[j]
			sid, ok := e.pointSID(p)
			if !ok {
				st.skip(p.Metric)
				continue
			}
			e.ts = append(e.ts, p.Timestamp.UnixNano())
			e.vals = append(e.vals, p.Value.Float64())
			e.sid = append(e.sid, sid)
			if e.full {
				j++
				break
			}
		}
		st.done += j - i
		i = j
		if err := o.commit(len(e.ts)-start, st); err != nil {
			return err
		}
	}
	return nil
}

// commit accounts for added rows just given to the encoder: it opens the
// file first, writes the row group when full, and rotates the file when
// it reached rotate_rows. Points of the buffer not yet consumed are lost
// too if this fails.
func (o *FileOutput) commit(added int, st *writeState) error {
	if added == 0 {
		return nil
	}
	rest := int64(st.total - st.done)
	if o.cur == nil {
		if err := o.openSegment(); err != nil {
			o.enc.reset()
			return o.fail(err, int64(added)+rest)
		}
	}
	o.cur.rows += int64(added)
	if o.enc.rows() >= int(o.cfg.RowGroupRows) || o.enc.full {
		if err := o.enc.flush(o.cur.w); err != nil {
			return o.fail(err, rest)
		}
	}
	if o.rotate && o.cfg.RotateRows > 0 && o.cur.rows >= o.cfg.RotateRows {
		if err := o.finish(); err != nil {
			return o.fail(err, rest)
		}
	}
	return nil
}

// fail records err as the failure of the output (unless finish already
// did): the current file is removed and its rows, with the extra points
// not given to it, are lost.
func (o *FileOutput) fail(err error, extra int64) error {
	o.enc.reset()
	if o.err == nil {
		path := o.cfg.OutputPath
		if o.cur != nil {
			path = o.cur.path
			o.lost += o.cur.rows
			o.discard()
		}
		o.err = &pathErr{path: path, err: err}
	}
	o.lost += extra
	o.reported = true
	return o.failure()
}

type pathErr struct {
	path string
	err  error
}

func (o *FileOutput) failure() error {
	return &OutputError{Path: o.err.path, Err: o.err.err, Lost: o.lost}
}

// discard closes and removes the current, unfinished file.
func (o *FileOutput) discard() {
	s := o.cur
	o.cur = nil
	_ = s.f.Close()
	if err := os.Remove(s.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		o.log.Error(fmt.Sprintf("cannot remove the unfinished Parquet file %s: %v", s.tmp, err))
	}
}

func (o *FileOutput) openSegment() error {
	path := o.cfg.OutputPath
	if o.rotate {
		path = numbered(path, o.next)
		o.next++
	}
	tmp := tmpName(path)
	create := o.create
	if create == nil {
		create = func(name string) (file, error) {
			return os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
		}
	}
	f, err := create(tmp)
	if err != nil {
		o.err = &pathErr{path: path, err: err}
		return err
	}
	w, err := newFileWriter(f, o.schema, o.orders)
	o.cur = &segment{path: path, tmp: tmp, f: f, w: w, opened: o.now()}
	if err != nil {
		o.err = &pathErr{path: path, err: err}
		o.discard()
		return err
	}
	return nil
}

// finish writes the footer of the current file, syncs, closes and renames
// it to its name. On failure the file is removed and o.err is set.
func (o *FileOutput) finish() error {
	s := o.cur
	if s == nil {
		return nil
	}
	err := o.enc.flush(s.w)
	if err == nil {
		err = s.w.close(o.createdBy)
	}
	if err == nil {
		err = s.f.Sync()
	}
	if err != nil {
		o.lost += s.rows
		o.err = &pathErr{path: s.path, err: err}
		o.discard()
		return err
	}
	o.cur = nil
	if err := s.f.Close(); err != nil {
		return o.dropFinished(s, err)
	}
	if err := os.Rename(s.tmp, s.path); err != nil {
		return o.dropFinished(s, err)
	}
	syncDir(filepath.Dir(s.path))
	o.published = append(o.published, s.path)
	o.log.Debug(fmt.Sprintf("published %s (%d rows)", s.path, s.rows))
	return nil
}

func (o *FileOutput) dropFinished(s *segment, err error) error {
	o.lost += s.rows
	o.err = &pathErr{path: s.path, err: err}
	if rerr := os.Remove(s.tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		o.log.Error(fmt.Sprintf("cannot remove the unfinished Parquet file %s: %v", s.tmp, rerr))
	}
	return err
}

// syncDir makes a rename durable; a directory that cannot be synced is
// not a loss of data.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// ticker publishes the current run-mode file once it is rotate_interval
// old, even when no point comes.
func (o *FileOutput) ticker(every time.Duration) {
	defer close(o.done)
	t := time.NewTicker(every)
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

func (o *FileOutput) tick() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed || o.err != nil || o.cur == nil || o.now().Sub(o.cur.opened) < o.cfg.RotateInterval.D() {
		return
	}
	if o.finish() == nil {
		return
	}
	if o.report != nil {
		o.reported = true
		o.report(o.failure())
	} else {
		o.reported = false
	}
}

// Close writes the footer of the current file and publishes it. Every
// failure not yet returned or reported is returned. Later calls return
// the result of the first.
func (o *FileOutput) Close() error {
	o.closeOnce.Do(func() {
		close(o.stop)
		<-o.done
		o.mu.Lock()
		defer o.mu.Unlock()
		o.closed = true
		if o.err == nil {
			if o.cur == nil && len(o.published) == 0 {
				msg := "no data: " + o.cfg.OutputPath + " not written"
				if _, err := os.Stat(o.cfg.OutputPath); err == nil && !o.rotate {
					msg += ", the previous file is kept"
				}
				o.log.Warn(msg)
				return
			}
			if o.finish() == nil {
				return
			}
			o.reported = false
		}
		if !o.reported {
			o.reported = true
			o.closeErr = o.failure()
		}
	})
	return o.closeErr
}
