package csv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
	"github.com/alumet-go/alumet-agent/pipeline/pipelinetest"
)

// fullWriter takes limit bytes, then fails every write with err after
// taking what still fits: a disk that fills up.
type fullWriter struct {
	out    bytes.Buffer
	limit  int
	err    error
	writes int // calls after the first failure
	failed bool
}

func (f *fullWriter) Write(p []byte) (int, error) {
	if f.failed {
		f.writes++
	}
	room := f.limit - f.out.Len()
	if len(p) <= room {
		return f.out.Write(p)
	}
	f.failed = true
	f.out.Write(p[:max(room, 0)])
	return max(room, 0), f.err
}

// rowsOf returns the header and rows that bufs give with a healthy writer.
func rowsOf(t *testing.T, reg *measure.Registry, bufs ...*measure.Buffer) []string {
	t.Helper()
	return strings.SplitAfter(strings.TrimSuffix(string(writeAll(t, reg, DefaultOptions(), bufs...)), "\n"), "\n")
}

// wholeRows checks that got is the first whole lines of full and returns
// how many rows (lines after the header) it holds.
func wholeRows(t *testing.T, got string, full []string) int {
	t.Helper()
	if got == "" {
		return 0
	}
	require.True(t, strings.HasSuffix(got, "\n"), "a torn last line: %q", got[max(0, len(got)-40):])
	lines := strings.SplitAfter(strings.TrimSuffix(got, "\n"), "\n")
	require.LessOrEqual(t, len(lines), len(full))
	require.Equal(t, strings.Join(full[:len(lines)], ""), got, "not the first lines of the full output")
	return len(lines) - 1
}

// The Writer flushes whole rows only, and a failing write fails it for
// good: Committed is the end of the last whole row, every point whose row
// is not below it is counted as lost, and nothing more is written.
func TestWriterFailureWholeRows(t *testing.T) {
	reg := measure.NewRegistry()
	bufs := []*measure.Buffer{kwollectBuffer(t, reg), kwollectBuffer(t, reg), kwollectBuffer(t, reg)}
	full := rowsOf(t, reg, bufs...)
	header, row := len(full[0]), len(full[1])
	const points = 9
	tests := []struct {
		name     string
		limit    int
		bufSize  int
		wantRows int
	}{
		{"during the header", 10, 0, 0},
		{"at the end of the header", header, 0, 0},
		{"at the final flush, one write of everything", header + 2*row + row/2, 0, 0},
		{"one row per write, at a row boundary", header + 2*row, 1, 2},
		{"one row per write, mid-row", header + 2*row + row/2, 1, 2},
		{"one row per write, one byte short of the end", header + 9*row - 1, 1, 8},
		{"small buffer, two rows per write, mid-write", header + 4*row, 2 * row, 3},
		{"small buffer, two rows per write, mid-row", header + 4*row + 1, 2*row + 7, 3},
		{"rows larger than the buffer, mid-row", header + 5*row + 3, 16, 5},
		{"rows larger than the buffer, during the header", 1, 16, 0},
	}
	for _, tt := range tests {
		for _, cause := range []error{syscall.ENOSPC, syscall.EIO, syscall.EFBIG, syscall.EPIPE} {
			t.Run(fmt.Sprintf("%s/%v", tt.name, cause), func(t *testing.T) {
				fw := &fullWriter{limit: tt.limit, err: cause}
				w := NewWriter(fw, reg, Options{BufferSize: tt.bufSize, AppendUnitToMetricName: true, UseUnitDisplayName: true})
				var first error
				for _, b := range bufs {
					if err := w.WriteBuffer(b); err != nil && first == nil {
						first = err
					}
				}
				ferr := w.Flush()
				require.ErrorIs(t, ferr, cause)
				if first != nil {
					require.ErrorIs(t, first, cause)
				}
				var we *WriteError
				require.ErrorAs(t, ferr, &we)
				require.Equal(t, int64(points-tt.wantRows), we.Lost, "lost = points - whole rows before the failure")
				require.Equal(t, int64(points-tt.wantRows), w.Lost())
				require.ErrorIs(t, w.Err(), cause)

				// What reached the writer up to Committed is whole lines;
				// whatever is after it is a torn part of the failed write.
				got := fw.out.String()
				require.LessOrEqual(t, int(w.Committed()), len(got))
				require.Equal(t, we.Torn, int(w.Committed()) < len(got))
				require.Equal(t, tt.wantRows, wholeRows(t, got[:w.Committed()], full))

				// Failed for good: nothing more is written, points are counted.
				require.ErrorIs(t, w.WriteBuffer(bufs[0]), cause)
				require.ErrorIs(t, w.Flush(), cause)
				require.Zero(t, fw.writes, "writes after the failure")
				require.Equal(t, int64(points+3-tt.wantRows), w.Lost())
				require.Contains(t, w.WriteBuffer(nil).Error(), fmt.Sprintf("(%d point(s) not written)", points+3-tt.wantRows))
			})
		}
	}
}

// Every failing byte offset, with several buffer sizes: the part before
// Committed is always whole lines, and lost + rows written = points.
func TestWriterFailureEveryOffset(t *testing.T) {
	reg := measure.NewRegistry()
	bufs := []*measure.Buffer{kwollectBuffer(t, reg), raplBuffer(t, reg), kwollectBuffer(t, reg)}
	full := rowsOf(t, reg, bufs...)
	points := 0
	for _, b := range bufs {
		points += len(b.Points)
	}
	size := len(strings.Join(full, ""))
	for _, bufSize := range []int{1, 64, 150, 0} {
		for limit := 0; limit < size; limit++ {
			fw := &fullWriter{limit: limit, err: syscall.ENOSPC}
			w := NewWriter(fw, reg, Options{BufferSize: bufSize, AppendUnitToMetricName: true, UseUnitDisplayName: true})
			for _, b := range bufs {
				_ = w.WriteBuffer(b)
			}
			require.ErrorIs(t, w.Flush(), syscall.ENOSPC, "limit %d", limit)
			rows := wholeRows(t, fw.out.String()[:w.Committed()], full)
			require.Equal(t, int64(points-rows), w.Lost(), "buffer %d, limit %d", bufSize, limit)
		}
	}
}

// A writer that takes fewer bytes without an error is a failure too.
type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

func TestWriterShortWrite(t *testing.T) {
	reg := measure.NewRegistry()
	w := NewWriter(shortWriter{}, reg, DefaultOptions())
	require.NoError(t, w.WriteBuffer(kwollectBuffer(t, reg)))
	err := w.Flush()
	require.ErrorIs(t, err, io.ErrShortWrite)
	require.Equal(t, int64(3), w.Lost())
	require.Zero(t, w.Committed())
}

// limitFile makes the file fail with err once it holds limit bytes
// written by the output (a disk that fills up): what still fits is
// written, as the kernel does.
func limitFile(limit int64, err error) func(f *os.File, p []byte) (int, error) {
	var written int64
	return func(f *os.File, p []byte) (int, error) {
		room := limit - written
		if int64(len(p)) <= room {
			n, werr := f.Write(p)
			written += int64(n)
			return n, werr
		}
		n, _ := f.Write(p[:max(room, 0)])
		written += int64(n)
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: err}
	}
}

// openFailing opens a FileOutput on cfg whose file fails after limit bytes,
// with a Writer buffer of bufSize bytes.
func openFailing(t *testing.T, cfg *Config, reg *measure.Registry, limit int64, cause error, bufSize int) *FileOutput {
	t.Helper()
	o, err := openFile(cfg, reg, nil, time.Now, time.Hour, false)
	require.NoError(t, err)
	o.f.write = limitFile(limit, cause)
	opts := cfg.Options()
	opts.BufferSize = bufSize
	hdr := o.w.Header()
	assumed := o.w.HeaderWritten()
	o.w = NewWriter(o.f, reg, opts)
	if assumed {
		o.w.AssumeHeader(hdr)
	}
	return o
}

// The CSV file never ends in a torn line: on a write error the file is
// truncated back to its last whole row (the header counts as one), the
// output writes nothing more, and the error says how many points are lost
// and how the file ends.
func TestFileOutputFailureTruncates(t *testing.T) {
	reg := measure.NewRegistry()
	mk := func() *measure.Buffer { return kwollectBuffer(t, reg) }
	full := rowsOf(t, reg, mk(), mk(), mk(), mk())
	existing := strings.Join(full[:3], "") // append mode: a header and two rows
	rows := full[1:]
	maxRow := 0
	for _, r := range rows {
		maxRow = max(maxRow, len(r))
	}
	// written is the bytes the output writes up to its k-th row.
	written := func(appendMode bool, k int) int64 {
		n := len(strings.Join(rows[:k], ""))
		if !appendMode {
			n += len(full[0])
		}
		return int64(n)
	}
	tests := []struct {
		name     string
		force    bool
		append   bool
		bufSize  int
		limit    int64 // bytes the output may write
		wantRows int   // rows in the file at the end (existing ones included)
		failAt   string
	}{
		{name: "during the header", force: true, limit: 20, failAt: "write"},
		{name: "at the end of the header", force: true, limit: written(false, 0), failAt: "write"},
		{name: "mid-row", force: true, limit: written(false, 4) + 5, wantRows: 3, failAt: "write"},
		{name: "at a row boundary", force: true, limit: written(false, 3), wantRows: 3, failAt: "write"},
		{name: "one row per write, mid-row", force: true, bufSize: maxRow + 3, limit: written(false, 4) + 5, wantRows: 4, failAt: "write"},
		{name: "at the final flush, mid-row", limit: written(false, 7) + 1, failAt: "close"},
		{name: "one row per write, fails in a later Write", bufSize: maxRow + 3, limit: written(false, 7) + 1, wantRows: 7, failAt: "write"},
		{name: "one row per write, at the final flush", bufSize: maxRow + 3, limit: written(false, 11) + 1, wantRows: 11, failAt: "close"},
		{name: "append, mid-row", append: true, force: true, limit: written(true, 4) + 30, wantRows: 2 + 3, failAt: "write"},
		{name: "append, at once", append: true, force: true, limit: 1, wantRows: 2, failAt: "write"},
		{name: "append, at the final flush", append: true, limit: written(true, 5) - 1, wantRows: 2, failAt: "close"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tempConfig(t, func(c *Config) { c.ForceFlush = tt.force; c.Append = tt.append })
			if tt.append {
				require.NoError(t, os.WriteFile(cfg.OutputPath, []byte(existing), 0o644))
			}
			o := openFailing(t, cfg, reg, tt.limit, syscall.ENOSPC, tt.bufSize)
			var werr error
			for range 3 { // 9 points
				if err := o.Write(context.Background(), mk()); err != nil && werr == nil {
					werr = err
				}
			}
			if tt.failAt == "write" {
				require.ErrorIs(t, werr, syscall.ENOSPC)
				// Failed for good: the next buffer is counted, not written.
				before := readFile(t, cfg.OutputPath)
				err := o.Write(context.Background(), mk())
				require.ErrorIs(t, err, syscall.ENOSPC)
				require.Equal(t, before, readFile(t, cfg.OutputPath), "nothing written after the failure")
			} else {
				require.NoError(t, werr)
				require.NoError(t, o.Write(context.Background(), mk()))
			}
			cerr := o.Close()
			var oe *OutputError
			if tt.failAt == "write" {
				require.NoError(t, cerr, "already returned by Write")
				require.ErrorAs(t, werr, &oe)
			} else {
				require.ErrorIs(t, cerr, syscall.ENOSPC)
				require.ErrorAs(t, cerr, &oe)
			}
			got := readFile(t, cfg.OutputPath)
			want, old := full, 0
			if tt.append {
				want, old = append(slices.Clone(full[:3]), rows...), 2
			}
			n := wholeRows(t, got, want)
			require.Equal(t, tt.wantRows, n)
			require.Equal(t, int64(12-(n-old)), o.Lost(), "every point without a row in the file is counted")
			end := "the file ends at its last whole row"
			if got == "" {
				end = "the file is left empty: not even the header fitted"
			}
			require.Equal(t, "writing "+cfg.OutputPath+": no space left on device ("+end+")", oe.Error())
			require.Equal(t, cfg.OutputPath, oe.Path)
		})
	}
}

// Not a regular file (/dev/full): nothing to truncate; the error says so
// and counts the points.
func TestDevFullFailure(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	for _, force := range []bool{true, false} {
		t.Run(fmt.Sprint("force_flush=", force), func(t *testing.T) {
			reg := measure.NewRegistry()
			cfg := &Config{OutputPath: "/dev/full", ForceFlush: force, CSVDelimiter: ";", CSVLateDelimiter: ","}
			o, err := openFile(cfg, reg, nil, time.Now, time.Hour, false)
			require.NoError(t, err)
			err = o.Write(context.Background(), kwollectBuffer(t, reg))
			if !force {
				require.NoError(t, err, "buffered")
				err = o.Close()
			}
			require.ErrorIs(t, err, syscall.ENOSPC)
			var oe *OutputError
			require.ErrorAs(t, err, &oe)
			require.Equal(t, int64(3), oe.LostPoints())
			require.EqualError(t, err, "writing /dev/full: no space left on device (not a regular file, nothing to truncate: it got whole rows only)")
			if force {
				require.ErrorIs(t, o.Write(context.Background(), kwollectBuffer(t, reg)), syscall.ENOSPC)
				require.Equal(t, int64(6), o.Lost())
				require.NoError(t, o.Close(), "already returned by Write")
			} else {
				require.ErrorContains(t, o.Write(context.Background(), kwollectBuffer(t, reg)), "write after close")
				require.Equal(t, int64(3), o.Lost())
			}
		})
	}
}

// The background flush's failure reaches the pipeline at once: OutputFailed
// is closed before Stop, the later points are dropped and counted, the
// file ends at a whole row, and the other outputs keep everything.
func TestPipelineHearsBackgroundFailure(t *testing.T) {
	reg := measure.NewRegistry()
	full := rowsOf(t, reg, kwollectBuffer(t, reg), kwollectBuffer(t, reg))
	cfg := tempConfig(t, func(c *Config) { c.ForceFlush = false })
	o := openFailing(t, cfg, reg, int64(len(full[0])+3*len(full[1])+7), syscall.ENOSPC, 0)
	b := pipeline.NewBuilder(reg, 0, slog.New(slog.DiscardHandler))
	require.NoError(t, b.AddOutput("csv", o))
	other := &pipelinetest.Recorder{}
	require.NoError(t, b.AddOutput("other", other))
	emit := make(chan *measure.Buffer)
	require.NoError(t, b.AddSource("test", sourceFunc(func(ctx context.Context, out pipeline.Emitter) error {
		for buf := range emit {
			if err := out.Emit(context.WithoutCancel(ctx), buf); err != nil {
				return err
			}
		}
		return nil
	})))
	p := b.Start(context.Background())
	emit <- kwollectBuffer(t, reg)
	require.Eventually(t, func() bool { return o.written() > 0 }, time.Minute, time.Millisecond)
	o.tick() // the background flush: the header and 3 rows fit
	emit <- kwollectBuffer(t, reg)
	require.Eventually(t, func() bool { return o.written() > 0 }, time.Minute, time.Millisecond)
	select {
	case <-p.OutputFailed():
		t.Fatal("failed before any failure")
	default:
	}
	o.tick() // the background flush, failing mid-row
	<-p.OutputFailed()
	fs := p.OutputFailures()
	require.Len(t, fs, 1)
	require.Equal(t, "csv", fs[0].Output)
	require.Equal(t, int64(3), fs[0].Lost, "the buffered rows")
	for range 4 {
		emit <- kwollectBuffer(t, reg)
	}
	close(emit)
	err := p.Stop(context.Background())
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.EqualError(t, err, "output csv failed: writing "+cfg.OutputPath+": no space left on device (the file ends at its last whole row): 15 points lost")
	fs = p.OutputFailures()
	require.Len(t, fs, 1)
	require.Equal(t, int64(3+4*3), fs[0].Lost)
	require.True(t, fs[0].LostKnown)
	require.Equal(t, 3, wholeRows(t, readFile(t, cfg.OutputPath), full))
	require.Equal(t, 18, other.Len())
}

// written returns the points given to the output's Writer so far.
func (o *FileOutput) written() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return int(o.w.pending) + len(o.w.buf)
}

type sourceFunc func(ctx context.Context, out pipeline.Emitter) error

func (f sourceFunc) Run(ctx context.Context, out pipeline.Emitter) error { return f(ctx, out) }

// A failure at Write, through the plugin in a pipeline: the count covers
// the failed buffer and every later one, the file ends at a whole row.
func TestPipelineWriteFailureCount(t *testing.T) {
	reg := measure.NewRegistry()
	full := rowsOf(t, reg, kwollectBuffer(t, reg), kwollectBuffer(t, reg))
	cfg := tempConfig(t, nil) // force_flush
	o := openFailing(t, cfg, reg, int64(len(full[0])+4*len(full[1])+1), syscall.EIO, 0)
	b := pipeline.NewBuilder(reg, 0, slog.New(slog.DiscardHandler))
	require.NoError(t, b.AddOutput("csv", o))
	require.NoError(t, b.AddSource("test", sourceFunc(func(ctx context.Context, out pipeline.Emitter) error {
		for range 10 {
			if err := out.Emit(context.WithoutCancel(ctx), kwollectBuffer(t, reg)); err != nil {
				return err
			}
		}
		return nil
	})))
	p := b.Start(context.Background())
	<-p.OutputFailed()
	err := p.Stop(context.Background())
	require.ErrorIs(t, err, syscall.EIO)
	require.ErrorContains(t, err, "output csv failed: writing "+cfg.OutputPath+": input/output error (the file ends at its last whole row): 27 points lost")
	require.Equal(t, 3, wholeRows(t, readFile(t, cfg.OutputPath), full))
}

// countWriter counts the calls to Write.
type countWriter struct {
	calls, bytes int
}

func (c *countWriter) Write(p []byte) (int, error) {
	c.calls++
	c.bytes += len(p)
	return len(p), nil
}

// Tracking the last whole row costs no write of its own: the Writer makes
// one call per buffer-full of rows, as bufio did.
func TestWriterOneWritePerBufferFull(t *testing.T) {
	reg := measure.NewRegistry()
	first, buf := benchBuffers(t, reg, false, false)
	cw := &countWriter{}
	w := NewWriter(cw, reg, DefaultOptions())
	require.NoError(t, w.WriteBuffer(first))
	for range 100 {
		require.NoError(t, w.WriteBuffer(buf))
	}
	require.NoError(t, w.Flush())
	rows := 1 + 100*len(buf.Points)
	require.Equal(t, int64(cw.bytes), w.Committed())
	maxRow := 200 // the bench rows are about 100 bytes
	require.LessOrEqual(t, cw.calls, cw.bytes/(DefaultBufferSize-maxRow)+1, "%d rows", rows)
}
