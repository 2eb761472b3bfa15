package csv

import (
	"bytes"
	"context"
	stdcsv "encoding/csv"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/testkit"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
	"github.com/alumet-go/alumet-agent/plugin"
)

func tempConfig(t *testing.T, mod func(c *Config)) *Config {
	c := DefaultConfig()
	c.OutputPath = filepath.Join(t.TempDir(), "out.csv")
	if mod != nil {
		mod(c)
	}
	return c
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// fileOrMissing is the file's content, or "(missing)".
func fileOrMissing(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "(missing)"
	}
	require.NoError(t, err)
	return string(b)
}

// The file is created (truncated) by the first row only: a run without
// data keeps the previous run's file, byte for byte, and says so.
func TestOpenTruncatesAtFirstRow(t *testing.T) {
	const old = "old content\n"
	tests := []struct {
		name     string
		previous bool // a file from an earlier run
		force    bool
		bufs     func(reg *measure.Registry) []*measure.Buffer
		want     string
		wantLog  string
	}{
		{name: "no row keeps the file", previous: true, force: true, want: old,
			wantLog: "WARN no data: %s not written, the previous file is kept"},
		{name: "empty buffers keep the file", previous: true, bufs: func(*measure.Registry) []*measure.Buffer { return []*measure.Buffer{{}, {}} }, want: old,
			wantLog: "WARN no data: %s not written, the previous file is kept"},
		{name: "no row, no file", want: "(missing)", wantLog: "WARN no data: %s not written"},
		{name: "rows replace the file", previous: true, force: true, want: specExample,
			bufs: func(reg *measure.Registry) []*measure.Buffer { return []*measure.Buffer{{}, kwollectBuffer(t, reg)} }},
		{name: "buffered rows replace the file", previous: true, want: specExample,
			bufs: func(reg *measure.Registry) []*measure.Buffer { return []*measure.Buffer{kwollectBuffer(t, reg)} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tempConfig(t, func(c *Config) { c.ForceFlush = tt.force })
			if tt.previous {
				require.NoError(t, os.WriteFile(cfg.OutputPath, []byte(old), 0o644))
			}
			var logs testkit.Logs
			reg := measure.NewRegistry()
			o, err := openFile(cfg, reg, logs.Logger(), time.Now, time.Hour, false)
			require.NoError(t, err)
			require.Equal(t, cfg.OutputPath, o.Path())
			want := old
			if !tt.previous {
				want = "(missing)"
			}
			require.Equal(t, want, fileOrMissing(t, cfg.OutputPath), "untouched by the open")
			if tt.bufs != nil {
				for _, b := range tt.bufs(reg) {
					require.NoError(t, o.Write(context.Background(), b))
				}
			}
			require.NoError(t, o.Close())
			require.Equal(t, tt.want, fileOrMissing(t, cfg.OutputPath))
			if tt.wantLog != "" {
				require.Equal(t, []string{fmt.Sprintf(tt.wantLog, cfg.OutputPath)}, logs.Lines())
			} else {
				require.Empty(t, logs.Lines())
			}
		})
	}
}

// The checks at open fail as the creation would, naming the file, and
// leave nothing behind.
func TestOpenChecksCreation(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	require.NoError(t, os.Mkdir(sub, 0o755))
	notDir := filepath.Join(dir, "plain")
	require.NoError(t, os.WriteFile(notDir, []byte("x"), 0o644))
	tests := []struct {
		name string
		path string
		want error
	}{
		{"missing directory", filepath.Join(dir, "nope", "x.csv"), fs.ErrNotExist},
		{"a directory", sub, syscall.EISDIR},
		{"parent not a directory", filepath.Join(notDir, "x.csv"), syscall.ENOTDIR},
	}
	if os.Geteuid() != 0 {
		ro := filepath.Join(dir, "ro")
		require.NoError(t, os.Mkdir(ro, 0o555))
		roFile := filepath.Join(sub, "ro.csv")
		require.NoError(t, os.WriteFile(roFile, []byte("old"), 0o444))
		tests = append(tests,
			struct {
				name string
				path string
				want error
			}{"read-only directory", filepath.Join(ro, "x.csv"), fs.ErrPermission},
			struct {
				name string
				path string
				want error
			}{"read-only file", roFile, fs.ErrPermission})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := OpenFile(&Config{OutputPath: tt.path, CSVDelimiter: ";", CSVLateDelimiter: ","}, measure.NewRegistry(), nil)
			require.ErrorIs(t, err, tt.want)
			require.ErrorContains(t, err, "cannot create the CSV output file: open "+tt.path+": ")
		})
	}
	_, err := os.Stat(filepath.Join(sub, "x.csv"))
	require.ErrorIs(t, err, fs.ErrNotExist)
}

func TestOpenErrorNamesPath(t *testing.T) {
	for _, appendMode := range []bool{false, true} {
		cfg := tempConfig(t, func(c *Config) {
			c.OutputPath = filepath.Join(c.OutputPath, "missing-dir", "x.csv")
			c.Append = appendMode
		})
		_, err := OpenFile(cfg, measure.NewRegistry(), nil)
		require.ErrorContains(t, err, cfg.OutputPath)
		require.ErrorIs(t, err, os.ErrNotExist)
	}
	_, err := OpenFile(&Config{OutputPath: "x", CSVDelimiter: ";", CSVLateDelimiter: ";"}, measure.NewRegistry(), nil)
	require.ErrorContains(t, err, "csv_late_delimiter")
}

// appendCase starts from an existing file, appends buffers and compares the
// result with a golden file.
func TestAppend(t *testing.T) {
	existing := "metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;domain;__late_attributes\n" +
		"rapl_consumed_energy_J;2025-04-25T15:08:53.99636522Z;12.5;cpu_package;0;local_machine;;package;\n"
	cases := []struct {
		name     string
		existing *string // nil: no file
		golden   string
		warn     string
		contains []string
	}{
		{
			name: "reuses header", existing: &existing, golden: "append_reuse.csv",
			contains: []string{"wattmetre1-port6;;metric_id=wattmetre_power_watt\n"},
		},
		{name: "missing file is new", golden: "spec_example.csv"},
		{name: "empty file is new", existing: ptr(""), golden: "spec_example.csv"},
		{
			name: "header only", existing: ptr("metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;metric_id;__late_attributes\n"),
			golden: "spec_example.csv",
		},
		{
			name: "header only, no final newline", existing: ptr("metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;metric_id;__late_attributes"),
			golden: "spec_example.csv", warn: "the last line was incomplete",
		},
		{
			name: "header without attribute columns", existing: ptr("metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;__late_attributes\n"),
			golden: "append_no_columns.csv", contains: []string{"wattmetre1-port6;metric_id=wattmetre_power_watt\n"},
		},
		{
			name: "quoted header cells", existing: ptr(`"metric";timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;"metric;id";metric_id;__late_attributes` + "\n"),
			golden: "append_quoted_header.csv", contains: []string{"wattmetre1-port6;;wattmetre_power_watt;\n"},
		},
		{
			name: "missing final newline", existing: ptr(strings.TrimSuffix(existing, "\n")), golden: "append_reuse.csv",
			warn: "the last line was incomplete",
		},
		{
			name:     "interrupted inside a quoted cell",
			existing: ptr(existing + `rapl_consumed_energy_J;2025-04-25T15:08:54Z;1;cpu_package;0;cgroup;"/a;b`),
			golden:   "append_interrupted_quote.csv", warn: "the last line was incomplete",
			contains: []string{"cgroup;\"/a;b\"\nwattmetre_power_watt_W;"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tempConfig(t, func(c *Config) { c.Append = true })
			if tc.existing != nil {
				require.NoError(t, os.WriteFile(cfg.OutputPath, []byte(*tc.existing), 0o644))
			}
			var logs testkit.Logs
			reg := measure.NewRegistry()
			o, err := OpenFile(cfg, reg, logs.Logger())
			require.NoError(t, err)
			require.NoError(t, o.Write(context.Background(), kwollectBuffer(t, reg)))
			require.NoError(t, o.Close())
			got := readFile(t, cfg.OutputPath)
			checkGolden(t, tc.golden, []byte(got))
			for _, c := range tc.contains {
				require.Contains(t, got, c)
			}
			if tc.warn != "" {
				require.Len(t, logs.Lines(), 1)
				require.Contains(t, logs.Lines()[0], "WARN "+cfg.OutputPath+": "+tc.warn)
			} else {
				require.Empty(t, logs.Lines())
			}
			// Whatever was there, the result is valid CSV with one header.
			r := stdcsv.NewReader(strings.NewReader(got))
			r.Comma = ';'
			r.FieldsPerRecord = -1
			recs, err := r.ReadAll()
			require.NoError(t, err)
			require.Equal(t, "metric", recs[0][0])
			require.Equal(t, 1, strings.Count(got, "__late_attributes"))
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestAppendTwoRuns(t *testing.T) {
	cfg := tempConfig(t, func(c *Config) { c.Append = true })
	for range 2 {
		reg := measure.NewRegistry()
		o, err := OpenFile(cfg, reg, nil)
		require.NoError(t, err)
		require.NoError(t, o.Write(context.Background(), kwollectBuffer(t, reg)))
		require.NoError(t, o.Close())
	}
	body := strings.TrimPrefix(specExample, strings.SplitAfter(specExample, "\n")[0])
	require.Equal(t, specExample+body, readFile(t, cfg.OutputPath))
}

func TestAppendBadHeader(t *testing.T) {
	cases := []struct {
		name, content, msg string
		mod                func(c *Config)
	}{
		{"not a csv of ours", "hello world\nfoo\n", "does not start with the columns metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id", nil},
		{"other delimiter", strings.ReplaceAll(specExample, ";", ","), "check csv_delimiter", nil},
		{"missing late column", "metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;domain\n", "does not end with the column __late_attributes", nil},
		{"only fixed columns", "metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id\n", "does not end with the column __late_attributes", nil},
		{"reordered", "timestamp;metric;value;resource_kind;resource_id;consumer_kind;consumer_id;__late_attributes\n", "does not start with", nil},
		{"bad quotes", "metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;a\"b;__late_attributes\n", "cannot parse the existing header", nil},
		{"tab file with default delimiter", "metric\ttimestamp\tvalue\tresource_kind\tresource_id\tconsumer_kind\tconsumer_id\t__late_attributes\n", "does not start with", nil},
		{"header too long", "metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;" + strings.Repeat("x", maxHeaderSize) + ";__late_attributes\n", "longer than", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tempConfig(t, func(c *Config) { c.Append = true })
			require.NoError(t, os.WriteFile(cfg.OutputPath, []byte(tc.content), 0o644))
			_, err := OpenFile(cfg, measure.NewRegistry(), nil)
			require.ErrorContains(t, err, cfg.OutputPath)
			require.ErrorContains(t, err, tc.msg)
			// The file is left alone.
			require.Equal(t, tc.content, readFile(t, cfg.OutputPath))
		})
	}
}

func TestAppendCustomDelimiter(t *testing.T) {
	cfg := tempConfig(t, func(c *Config) { c.Append = true; c.CSVDelimiter = "\t"; c.CSVLateDelimiter = "|" })
	require.NoError(t, os.WriteFile(cfg.OutputPath,
		[]byte("metric\ttimestamp\tvalue\tresource_kind\tresource_id\tconsumer_kind\tconsumer_id\tmetric_id\t__late_attributes\n"), 0o644))
	reg := measure.NewRegistry()
	o, err := OpenFile(cfg, reg, nil)
	require.NoError(t, err)
	require.NoError(t, o.Write(context.Background(), kwollectBuffer(t, reg)))
	require.NoError(t, o.Close())
	require.Equal(t, strings.ReplaceAll(specExample, ";", "\t"), readFile(t, cfg.OutputPath))
}

func TestForceFlushWritesEachBuffer(t *testing.T) {
	cfg := tempConfig(t, nil)
	reg := measure.NewRegistry()
	o, err := OpenFile(cfg, reg, nil)
	require.NoError(t, err)
	require.NoError(t, o.Write(context.Background(), kwollectBuffer(t, reg)))
	// On disk before Close.
	require.Equal(t, specExample, readFile(t, cfg.OutputPath))
	require.NoError(t, o.Close())
	require.Equal(t, specExample, readFile(t, cfg.OutputPath))
}

// fakeClock is a manual clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestNoForceFlushWithClock(t *testing.T) {
	cfg := tempConfig(t, func(c *Config) { c.ForceFlush = false })
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	reg := measure.NewRegistry()
	o, err := openFile(cfg, reg, nil, clock.now, FlushInterval, false)
	require.NoError(t, err)
	buf := kwollectBuffer(t, reg)
	one := &measure.Buffer{Points: buf.Points[:1]}
	two := &measure.Buffer{Points: buf.Points[1:2]}
	three := &measure.Buffer{Points: buf.Points[2:]}
	lines := strings.SplitAfter(specExample, "\n")

	require.NoError(t, o.Write(context.Background(), one))
	require.Equal(t, "(missing)", fileOrMissing(t, cfg.OutputPath), "buffered, not flushed yet: the file is created by the first flush")

	clock.advance(999 * time.Millisecond)
	o.tick() // what the background flusher does every interval
	require.Equal(t, lines[0]+lines[1], readFile(t, cfg.OutputPath))

	require.NoError(t, o.Write(context.Background(), two))
	require.Equal(t, lines[0]+lines[1], readFile(t, cfg.OutputPath))
	clock.advance(time.Second)
	require.NoError(t, o.Write(context.Background(), three)) // a second since the last flush: flushed by Write
	require.Equal(t, specExample, readFile(t, cfg.OutputPath))

	require.NoError(t, o.Write(context.Background(), kwollectBuffer(t, reg)))
	require.Equal(t, specExample, readFile(t, cfg.OutputPath))
	require.NoError(t, o.Close())
	require.Equal(t, specExample+strings.Join(lines[1:], ""), readFile(t, cfg.OutputPath))
	require.NoError(t, o.Close(), "Close is idempotent")
	require.ErrorContains(t, o.Write(context.Background(), one), "write after close")
}

func TestNoForceFlushBackground(t *testing.T) {
	cfg := tempConfig(t, func(c *Config) { c.ForceFlush = false })
	reg := measure.NewRegistry()
	o, err := openFile(cfg, reg, nil, time.Now, 5*time.Millisecond, true)
	require.NoError(t, err)
	require.NoError(t, o.Write(context.Background(), kwollectBuffer(t, reg)))
	// The background goroutine flushes without any further Write. Eventually
	// with a generous deadline: no assertion on how fast.
	require.Eventually(t, func() bool { return fileOrMissing(t, cfg.OutputPath) == specExample }, 10*time.Second, 5*time.Millisecond)
	for range 20 {
		require.NoError(t, o.Write(context.Background(), kwollectBuffer(t, reg)))
	}
	require.NoError(t, o.Close())
	require.Equal(t, 1+21*3, strings.Count(readFile(t, cfg.OutputPath), "\n"))
}

func TestDiskFull(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	reg := measure.NewRegistry()
	t.Run("force_flush reports at Write", func(t *testing.T) {
		cfg := &Config{OutputPath: "/dev/full", ForceFlush: true, CSVDelimiter: ";", CSVLateDelimiter: ","}
		o, err := OpenFile(cfg, reg, nil)
		require.NoError(t, err)
		err = o.Write(context.Background(), kwollectBuffer(t, reg))
		require.ErrorIs(t, err, syscall.ENOSPC)
		require.ErrorContains(t, err, "/dev/full")
		require.NoError(t, o.Close(), "already reported")
	})
	t.Run("buffered reports at Close", func(t *testing.T) {
		cfg := &Config{OutputPath: "/dev/full", ForceFlush: false, CSVDelimiter: ";", CSVLateDelimiter: ","}
		o, err := openFile(cfg, reg, nil, time.Now, time.Hour, false)
		require.NoError(t, err)
		require.NoError(t, o.Write(context.Background(), kwollectBuffer(t, reg)))
		require.ErrorIs(t, o.Close(), syscall.ENOSPC)
	})
	t.Run("background flush failure reported at next Write", func(t *testing.T) {
		cfg := &Config{OutputPath: "/dev/full", ForceFlush: false, CSVDelimiter: ";", CSVLateDelimiter: ","}
		o, err := openFile(cfg, reg, nil, time.Now, time.Hour, false)
		require.NoError(t, err)
		require.NoError(t, o.Write(context.Background(), kwollectBuffer(t, reg)))
		o.tick()
		require.ErrorIs(t, o.Write(context.Background(), kwollectBuffer(t, reg)), syscall.ENOSPC)
		require.NoError(t, o.Close(), "already reported")
	})
	t.Run("background flush failure reported at Close", func(t *testing.T) {
		cfg := &Config{OutputPath: "/dev/full", ForceFlush: false, CSVDelimiter: ";", CSVLateDelimiter: ","}
		o, err := openFile(cfg, reg, nil, time.Now, time.Hour, false)
		require.NoError(t, err)
		require.NoError(t, o.Write(context.Background(), kwollectBuffer(t, reg)))
		o.tick()
		err = o.Close()
		require.ErrorIs(t, err, syscall.ENOSPC)
		require.Equal(t, 1, strings.Count(err.Error(), "no space left"), "reported once: %v", err)
	})
}

// testSource emits its buffers as soon as it runs, then waits for the stop.
type testSource struct {
	bufs    func() []*measure.Buffer
	emitted chan struct{}
}

func (s *testSource) Run(ctx context.Context, out pipeline.Emitter) error {
	// Emit with a context that the stop request does not cancel.
	ectx := context.WithoutCancel(ctx)
	for _, b := range s.bufs() {
		if err := out.Emit(ectx, b); err != nil {
			close(s.emitted)
			return err
		}
	}
	close(s.emitted)
	<-ctx.Done()
	return nil
}

func runPipeline(t *testing.T, cfg *Config, bufs func(reg *measure.Registry) []*measure.Buffer) error {
	t.Helper()
	reg := measure.NewRegistry()
	b := pipeline.NewBuilder(reg, 0, slog.New(slog.DiscardHandler))
	f := Factory()
	_, before := os.Stat(cfg.OutputPath)
	require.NoError(t, f.Start(context.Background(), cfg, plugin.Env{Pipeline: b, Logger: slog.New(slog.DiscardHandler), Mode: plugin.ModeExec}))
	if _, err := os.Stat(cfg.OutputPath); errors.Is(before, fs.ErrNotExist) {
		require.ErrorIs(t, err, fs.ErrNotExist, "the file is created by the first row")
	}
	src := &testSource{bufs: func() []*measure.Buffer { return bufs(reg) }, emitted: make(chan struct{})}
	require.NoError(t, b.AddSource("test", src))
	p := b.Start(context.Background())
	<-src.emitted
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p.Stop(ctx)
}

func TestPluginEndToEnd(t *testing.T) {
	for _, force := range []bool{true, false} {
		cfg := tempConfig(t, func(c *Config) { c.ForceFlush = force })
		err := runPipeline(t, cfg, func(reg *measure.Registry) []*measure.Buffer {
			k := kwollectBuffer(t, reg)
			return []*measure.Buffer{{}, {Points: k.Points[:1]}, {Points: k.Points[1:]}}
		})
		require.NoError(t, err)
		checkGolden(t, "spec_example.csv", []byte(readFile(t, cfg.OutputPath)))
	}
}

func TestPluginNoRows(t *testing.T) {
	cfg := tempConfig(t, nil)
	require.NoError(t, runPipeline(t, cfg, func(*measure.Registry) []*measure.Buffer { return nil }))
	require.Equal(t, "(missing)", fileOrMissing(t, cfg.OutputPath), "no row, no file")
}

func TestPluginWriteErrorFailsStop(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	cfg := &Config{OutputPath: "/dev/full", ForceFlush: false, CSVDelimiter: ";", CSVLateDelimiter: ","}
	err := runPipeline(t, cfg, func(reg *measure.Registry) []*measure.Buffer { return []*measure.Buffer{kwollectBuffer(t, reg)} })
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.EqualError(t, err, "output csv failed: writing /dev/full: no space left on device (not a regular file, nothing to truncate: it got whole rows only): 3 points lost")
}

func TestFactory(t *testing.T) {
	f := Factory()
	require.Equal(t, "csv", f.Name)
	require.Equal(t, "0.2.0", f.Version)
	require.Equal(t, "plugin_csv", f.LogTarget)
	cfg, ok := f.DefaultConfig().(*Config)
	require.True(t, ok)
	require.Equal(t, DefaultConfig(), cfg)
	require.NotSame(t, f.DefaultConfig(), f.DefaultConfig())

	b := pipeline.NewBuilder(measure.NewRegistry(), 0, nil)
	require.ErrorContains(t, f.Start(context.Background(), fakeConfig{}, plugin.Env{Pipeline: b}), "plugin csv: configuration of type csv.fakeConfig, want *csv.Config")

	// A failing start leaves no output behind and names the file.
	bad := tempConfig(t, func(c *Config) { c.OutputPath = filepath.Join(c.OutputPath, "nope", "x.csv") })
	err := f.Start(context.Background(), bad, plugin.Env{Pipeline: b})
	require.ErrorContains(t, err, bad.OutputPath)
	_, _, outputs := b.Counts()
	require.Zero(t, outputs)

	// A second csv output is refused by the builder, and the file is closed.
	good := tempConfig(t, nil)
	require.NoError(t, f.Start(context.Background(), good, plugin.Env{Pipeline: b}))
	require.Error(t, f.Start(context.Background(), tempConfig(t, nil), plugin.Env{Pipeline: b}))
	require.NoError(t, b.Start(context.Background()).Stop(context.Background()))
}

type fakeConfig struct{}

func (fakeConfig) Validate() error { return nil }

// The header of the file parses back into the writer's columns.
func TestHeaderRoundTrip(t *testing.T) {
	reg := measure.NewRegistry()
	buf := kwollectBuffer(t, reg)
	buf.Points[0].Attributes = append(buf.Points[0].Attributes, str("a;b", "1"), str("q\"", "2"), str("nl\nx", "3"))
	cfg := tempConfig(t, nil)
	o, err := OpenFile(cfg, reg, nil)
	require.NoError(t, err)
	require.NoError(t, o.Write(context.Background(), buf))
	require.NoError(t, o.Close())
	f, err := os.Open(cfg.OutputPath)
	require.NoError(t, err)
	defer f.Close()
	st, err := f.Stat()
	require.NoError(t, err)
	keys, err := readHeader(f, st.Size(), ';')
	require.NoError(t, err)
	require.Equal(t, []string{"a;b", "metric_id", "nl\nx", "q\""}, keys)
	require.True(t, bytes.HasPrefix([]byte(readFile(t, cfg.OutputPath)), []byte(`metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;"a;b";metric_id;"nl`+"\n"+`x";"q""";__late_attributes`+"\n")))
}

// A file that can no longer be created when the first rows come (its
// directory removed during the run) fails loudly: at Write with
// force_flush, at Close otherwise, naming the file, without "no data".
func TestCreationFailsAtFirstRow(t *testing.T) {
	for _, force := range []bool{true, false} {
		t.Run(fmt.Sprint("force_flush=", force), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "gone")
			require.NoError(t, os.Mkdir(dir, 0o755))
			cfg := &Config{OutputPath: filepath.Join(dir, "out.csv"), ForceFlush: force, CSVDelimiter: ";", CSVLateDelimiter: ","}
			var logs testkit.Logs
			reg := measure.NewRegistry()
			o, err := openFile(cfg, reg, logs.Logger(), time.Now, time.Hour, false)
			require.NoError(t, err)
			require.NoError(t, os.Remove(dir))
			werr := o.Write(context.Background(), kwollectBuffer(t, reg))
			cerr := o.Close()
			if force {
				require.ErrorIs(t, werr, fs.ErrNotExist)
				require.ErrorContains(t, werr, "cannot create the CSV output file: open "+cfg.OutputPath)
				require.NoError(t, cerr, "already reported")
			} else {
				require.NoError(t, werr)
				require.ErrorIs(t, cerr, fs.ErrNotExist)
				require.ErrorContains(t, cerr, cfg.OutputPath)
			}
			require.Empty(t, logs.Lines(), "not a run without data")
		})
	}
}
