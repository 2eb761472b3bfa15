package parquet

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	pq "github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
)

// points returns a buffer of n points of one series, 20 ms apart from
// t0 plus start*20 ms, with values start, start+1, …
func points(id measure.MetricID, start, n int) *measure.Buffer {
	b := &measure.Buffer{}
	for i := start; i < start+n; i++ {
		b.Push(measure.Point{Metric: id, Timestamp: t0.Add(time.Duration(i) * 20 * time.Millisecond), Value: measure.Float(float64(i)),
			Resource: measure.Resource{Kind: "device_id", ID: "taurus-7"}, Attributes: []measure.Attribute{str("metric_id", "p")}})
	}
	return b
}

func values(rows []row) []float64 {
	var v []float64
	for _, r := range rows {
		v = append(v, r.Value)
	}
	return v
}

func seq(from, to int) []float64 {
	var v []float64
	for i := from; i < to; i++ {
		v = append(v, float64(i))
	}
	return v
}

// dirNames lists dir, hidden files included.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	require.NoError(t, err)
	var n []string
	for _, e := range es {
		n = append(n, e.Name())
	}
	return n
}

func TestRowGroupsBounded(t *testing.T) {
	reg := measure.NewRegistry()
	id := register(t, reg, "p", measure.Plain(measure.Watt), measure.F64)
	cfg := testConfig(t.TempDir())
	cfg.RowGroupRows = 1000
	writeFile(t, cfg, reg, points(id, 0, 2500), points(id, 2500, 1700))
	f, err := os.Open(cfg.OutputPath)
	require.NoError(t, err)
	defer f.Close()
	st, _ := f.Stat()
	pf, err := pq.OpenFile(f, st.Size())
	require.NoError(t, err)
	var sizes []int64
	for _, rg := range pf.RowGroups() {
		sizes = append(sizes, rg.NumRows())
	}
	require.Equal(t, []int64{1000, 1000, 1000, 1000, 200}, sizes)
	require.Equal(t, seq(0, 4200), values(readRows(t, cfg.OutputPath)))
}

func TestRotateRows(t *testing.T) {
	reg := measure.NewRegistry()
	id := register(t, reg, "p", measure.Plain(measure.Watt), measure.F64)
	dir := t.TempDir()
	// A file of an earlier run: numbering goes on after it.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "out-000007.parquet"), []byte("earlier"), 0o644))
	cfg := testConfig(dir)
	cfg.RotateRows = 1500
	cfg.RotateInterval = 0
	o, err := Open(cfg, reg, nil, true)
	require.NoError(t, err)
	require.NoError(t, o.Write(context.Background(), points(id, 0, 2000)))
	require.Equal(t, []string{filepath.Join(dir, "out-000008.parquet")}, o.Published())
	require.Contains(t, dirNames(t, dir), ".out-000009.parquet.tmp", "the unfinished file is hidden")
	require.NoError(t, o.Write(context.Background(), points(id, 2000, 2500)))
	require.NoError(t, o.Close())
	require.Equal(t, []string{"out-000007.parquet", "out-000008.parquet", "out-000009.parquet", "out-000010.parquet"}, dirNames(t, dir))
	var all []float64
	for i, n := range []int{8, 9, 10} {
		rows := readRows(t, numbered(cfg.OutputPath, n))
		require.Len(t, rows, []int{1500, 1500, 1500}[i])
		all = append(all, values(rows)...)
	}
	require.Equal(t, seq(0, 4500), all)
	got, err := os.ReadFile(filepath.Join(dir, "out-000007.parquet"))
	require.NoError(t, err)
	require.Equal(t, "earlier", string(got))
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestRotateInterval(t *testing.T) {
	reg := measure.NewRegistry()
	id := register(t, reg, "p", measure.Plain(measure.Watt), measure.F64)
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.RotateInterval = 3600e9
	clk := &fakeClock{t: t0}
	o, err := open(cfg, reg, nil, true, clk.now, time.Millisecond)
	require.NoError(t, err)
	require.NoError(t, o.Write(context.Background(), points(id, 0, 10)))
	clk.add(30 * time.Minute)
	require.NoError(t, o.Write(context.Background(), points(id, 10, 10)))
	require.Empty(t, o.Published())
	// An hour after the file was opened, the ticker publishes it, with no
	// point coming.
	clk.add(30 * time.Minute)
	require.Eventually(t, func() bool { return len(o.Published()) == 1 }, 5*time.Second, time.Millisecond)
	require.Equal(t, seq(0, 20), values(readRows(t, numbered(cfg.OutputPath, 1))))
	require.NoError(t, o.Write(context.Background(), points(id, 20, 5)))
	require.NoError(t, o.Close())
	require.Equal(t, seq(20, 25), values(readRows(t, numbered(cfg.OutputPath, 2))))
	require.Equal(t, []string{"out-000001.parquet", "out-000002.parquet"}, dirNames(t, dir))
}

// Without run mode, rotation keys change nothing: one file.
func TestNoRotationOutsideRunMode(t *testing.T) {
	reg := measure.NewRegistry()
	id := register(t, reg, "p", measure.Plain(measure.Watt), measure.F64)
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.RotateRows = 10
	writeFile(t, cfg, reg, points(id, 0, 25))
	require.Equal(t, []string{"out.parquet"}, dirNames(t, dir))
	require.Equal(t, seq(0, 25), values(readRows(t, cfg.OutputPath)))
}

// A run without data replaces nothing; a run with data replaces the
// previous file at once (rename), never leaving it half-written.
func TestNoDataKeepsPreviousFile(t *testing.T) {
	reg := measure.NewRegistry()
	id := register(t, reg, "p", measure.Plain(measure.Watt), measure.F64)
	dir := t.TempDir()
	cfg := testConfig(dir)
	writeFile(t, cfg, reg, points(id, 0, 3))
	writeFile(t, cfg, reg, &measure.Buffer{})
	require.Equal(t, seq(0, 3), values(readRows(t, cfg.OutputPath)))
	o, err := Open(cfg, reg, nil, false)
	require.NoError(t, err)
	require.NoError(t, o.Write(context.Background(), points(id, 3, 4)))
	require.Equal(t, seq(0, 3), values(readRows(t, cfg.OutputPath)), "the previous file stays until the new one is whole")
	require.NoError(t, o.Close())
	require.Equal(t, seq(3, 7), values(readRows(t, cfg.OutputPath)))
	require.Equal(t, []string{"out.parquet"}, dirNames(t, dir))
}

func TestOpenErrors(t *testing.T) {
	reg := measure.NewRegistry()
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub.parquet"), 0o755))
	for _, tc := range []struct {
		name, path, msg string
	}{
		{"missing directory", filepath.Join(dir, "nope", "x.parquet"), "no such file or directory"},
		{"a directory", filepath.Join(dir, "sub.parquet"), "is a directory"},
		{"parent is a file", filepath.Join(dir, "sub.parquet", "..", "file", "x.parquet"), "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.OutputPath = tc.path
			_, err := Open(cfg, reg, nil, false)
			require.ErrorContains(t, err, "cannot create the Parquet output file")
			require.ErrorContains(t, err, tc.msg)
		})
	}
	if os.Geteuid() != 0 {
		ro := filepath.Join(dir, "ro")
		require.NoError(t, os.Mkdir(ro, 0o555))
		cfg := DefaultConfig()
		cfg.OutputPath = filepath.Join(ro, "x.parquet")
		_, err := Open(cfg, reg, nil, false)
		require.ErrorIs(t, err, syscall.EACCES)
	}
}

// failingFile is a file whose writes fail with ENOSPC after limit bytes,
// or whose Sync or Close fails.
type failingFile struct {
	*os.File
	limit             int
	written           int
	syncErr, closeErr error
}

func (f *failingFile) Write(p []byte) (int, error) {
	if f.limit >= 0 && f.written+len(p) > f.limit {
		n, _ := f.File.Write(p[:f.limit-f.written])
		f.written += n
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	n, err := f.File.Write(p)
	f.written += n
	return n, err
}

func (f *failingFile) Sync() error {
	if f.syncErr != nil {
		return f.syncErr
	}
	return f.File.Sync()
}

func (f *failingFile) Close() error {
	err := f.File.Close()
	if f.closeErr != nil {
		return f.closeErr
	}
	return err
}

func TestFailuresAreLoud(t *testing.T) {
	reg := measure.NewRegistry()
	id := register(t, reg, "p", measure.Plain(measure.Watt), measure.F64)
	for _, tc := range []struct {
		name      string
		file      func(f *os.File) file
		rotate    bool
		writeErr  bool // the failure comes from a Write, not from Close
		lost      int64
		published []string
		msg       string
	}{
		{"disk full (met by the final flush)", func(f *os.File) file { return &failingFile{File: f, limit: 100} }, false, false, 3000, nil, "no space left on device"},
		{"disk full in the footer", func(f *os.File) file { return &failingFile{File: f, limit: -1, syncErr: syscall.ENOSPC} }, false, false, 3000, nil, "no space left on device"},
		{"close error", func(f *os.File) file { return &failingFile{File: f, limit: -1, closeErr: syscall.EIO} }, false, false, 3000, nil, "input/output error"},
		{"second rotated file fails", func(f *os.File) file {
			if filepath.Base(f.Name()) == ".out-000002.parquet.tmp" {
				return &failingFile{File: f, limit: 100}
			}
			return f
		}, true, true, 2000, []string{"out-000001.parquet"}, "no space left on device"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(dir)
			cfg.RowGroupRows = 500
			cfg.RotateRows = 1000
			o, err := Open(cfg, reg, nil, tc.rotate)
			require.NoError(t, err)
			o.create = func(name string) (file, error) {
				f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
				if err != nil {
					return nil, err
				}
				return tc.file(f), nil
			}
			var errs []error
			for i := range 3 {
				if err := o.Write(context.Background(), points(id, i*1000, 1000)); err != nil {
					errs = append(errs, err)
				}
			}
			if err := o.Close(); err != nil {
				errs = append(errs, err)
			}
			require.NotEmpty(t, errs)
			if !tc.writeErr {
				require.Len(t, errs, 1, "only Close fails")
			}
			last := errs[len(errs)-1]
			require.ErrorContains(t, last, tc.msg)
			var le pipeline.LossError
			require.True(t, errors.As(last, &le))
			require.Equal(t, tc.lost, le.LostPoints())
			var oe *OutputError
			require.True(t, errors.As(last, &oe))
			names := dirNames(t, dir)
			require.Equal(t, tc.published, names, "no unfinished or truncated file is left")
			for _, p := range tc.published {
				require.Len(t, readRows(t, filepath.Join(dir, p)), 1000)
			}
			t.Logf("%d error(s), the last: %v", len(errs), last)
		})
	}
}

// A failure of the rotation timer is reported to the pipeline at once.
func TestTickerFailureReported(t *testing.T) {
	reg := measure.NewRegistry()
	id := register(t, reg, "p", measure.Plain(measure.Watt), measure.F64)
	dir := t.TempDir()
	cfg := testConfig(dir)
	clk := &fakeClock{t: t0}
	o, err := open(cfg, reg, nil, true, clk.now, time.Millisecond)
	require.NoError(t, err)
	o.create = func(name string) (file, error) {
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
		return &failingFile{File: f, limit: -1, syncErr: syscall.EIO}, err
	}
	reported := make(chan error, 1)
	o.ReportFailuresTo(func(err error) { reported <- err })
	require.NoError(t, o.Write(context.Background(), points(id, 0, 10)))
	clk.add(2 * time.Hour)
	select {
	case err := <-reported:
		require.ErrorIs(t, err, syscall.EIO)
		require.ErrorContains(t, err, "10 point(s) lost")
	case <-time.After(5 * time.Second):
		t.Fatal("the failure was not reported")
	}
	err = o.Write(context.Background(), points(id, 10, 5))
	require.ErrorContains(t, err, "15 point(s) lost")
	require.NoError(t, o.Close(), "already returned")
	require.Empty(t, dirNames(t, dir))
}

func TestSkippedUnknownMetric(t *testing.T) {
	reg := measure.NewRegistry()
	id := register(t, reg, "p", measure.Plain(measure.Watt), measure.F64)
	cfg := testConfig(t.TempDir())
	o, err := Open(cfg, reg, nil, false)
	require.NoError(t, err)
	buf := points(id, 0, 3)
	buf.Points[1].Metric = 99
	err = o.Write(context.Background(), buf)
	var se *SkippedError
	require.ErrorAs(t, err, &se)
	require.Equal(t, 1, se.N)
	require.NoError(t, o.Close())
	require.Equal(t, []float64{0, 2}, values(readRows(t, cfg.OutputPath)))
}
