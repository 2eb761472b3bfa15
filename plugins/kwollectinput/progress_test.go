package kwollectinput

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/kwollect"
)

var progressT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// step is one report at a time after the call's start.
type step struct {
	at time.Duration
	pr kwollect.Progress
}

func TestEstimatorMonotone(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []step
		// wantFrac: the fraction shown after each step (-1: not checked).
		wantFrac []float64
		// etaMayGrow: at which steps the ETA may grow (a setback).
		etaMayGrow map[int]bool
	}{
		{
			name: "steady rows",
			steps: []step{
				{1 * time.Second, kwollect.Progress{Rows: 100, EstimatedRows: 1000, ChunksDone: 1, ChunksTotal: 10}},
				{2 * time.Second, kwollect.Progress{Rows: 200, EstimatedRows: 1000, ChunksDone: 2, ChunksTotal: 10}},
				{3 * time.Second, kwollect.Progress{Rows: 300, EstimatedRows: 1000, ChunksDone: 3, ChunksTotal: 10}},
				{10 * time.Second, kwollect.Progress{Rows: 1000, EstimatedRows: 1000, ChunksDone: 10, ChunksTotal: 10}},
			},
			wantFrac: []float64{0.1, 0.2, 0.3, 1},
		},
		{
			name: "the estimate grows: the percentage holds",
			steps: []step{
				{1 * time.Second, kwollect.Progress{Rows: 500, EstimatedRows: 1000, ChunksDone: 1, ChunksTotal: 2}},
				{2 * time.Second, kwollect.Progress{Rows: 600, EstimatedRows: 2000, ChunksDone: 1, ChunksTotal: 4}},
				{3 * time.Second, kwollect.Progress{Rows: 1200, EstimatedRows: 2000, ChunksDone: 2, ChunksTotal: 4}},
			},
			wantFrac: []float64{0.5, 0.5, 0.6},
		},
		{
			name: "chunks split: the percentage holds",
			steps: []step{
				{1 * time.Second, kwollect.Progress{Rows: 10, ChunksDone: 2, ChunksTotal: 4}},
				{2 * time.Second, kwollect.Progress{Rows: 20, ChunksDone: 3, ChunksTotal: 9}},
				{3 * time.Second, kwollect.Progress{Rows: 30, ChunksDone: 6, ChunksTotal: 9}},
			},
			wantFrac: []float64{0.5, 0.5, 6.0 / 9},
		},
		{
			name: "the estimate turns up late",
			steps: []step{
				{1 * time.Second, kwollect.Progress{Rows: 10, ChunksDone: 3, ChunksTotal: 10}},
				{2 * time.Second, kwollect.Progress{Rows: 20, EstimatedRows: 100, ChunksDone: 4, ChunksTotal: 10}},
				{3 * time.Second, kwollect.Progress{Rows: 50, EstimatedRows: 100, ChunksDone: 5, ChunksTotal: 10}},
			},
			wantFrac: []float64{0.3, 0.3, 0.5},
		},
		{
			name: "rows past the estimate: 99% until done",
			steps: []step{
				{1 * time.Second, kwollect.Progress{Rows: 1500, EstimatedRows: 1000, ChunksDone: 3, ChunksTotal: 4}},
				{2 * time.Second, kwollect.Progress{Rows: 1600, EstimatedRows: 1000, ChunksDone: 4, ChunksTotal: 4}},
			},
			wantFrac: []float64{0.99, 1},
		},
		{
			name: "a stall then a retry: the ETA may grow only at the retry",
			steps: []step{
				{1 * time.Second, kwollect.Progress{Rows: 100, EstimatedRows: 1000, ChunksDone: 1, ChunksTotal: 10}},
				{2 * time.Second, kwollect.Progress{Rows: 200, EstimatedRows: 1000, ChunksDone: 2, ChunksTotal: 10}},
				{20 * time.Second, kwollect.Progress{Rows: 210, EstimatedRows: 1000, ChunksDone: 2, ChunksTotal: 10}},
				{40 * time.Second, kwollect.Progress{Rows: 220, EstimatedRows: 1000, ChunksDone: 3, ChunksTotal: 10, Retries: 1}},
				{41 * time.Second, kwollect.Progress{Rows: 230, EstimatedRows: 1000, ChunksDone: 3, ChunksTotal: 10, Retries: 1}},
			},
			wantFrac:   []float64{0.1, 0.2, 0.21, 0.22, 0.23},
			etaMayGrow: map[int]bool{3: true},
		},
		{
			name: "updates closer than the rate step",
			steps: []step{
				{10 * time.Millisecond, kwollect.Progress{Rows: 10, EstimatedRows: 1000, ChunksDone: 1, ChunksTotal: 100}},
				{20 * time.Millisecond, kwollect.Progress{Rows: 20, EstimatedRows: 1000, ChunksDone: 2, ChunksTotal: 100}},
				{500 * time.Millisecond, kwollect.Progress{Rows: 500, EstimatedRows: 1000, ChunksDone: 50, ChunksTotal: 100}},
				{600 * time.Millisecond, kwollect.Progress{Rows: 600, EstimatedRows: 1000, ChunksDone: 60, ChunksTotal: 100}},
			},
			wantFrac: []float64{0.01, 0.02, 0.5, 0.6},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e estimator
			e.reset(progressT0)
			var prev estimate
			var prevAt time.Duration
			for i, st := range tc.steps {
				got := e.observe(progressT0.Add(st.at), st.pr)
				require.True(t, got.Known, "step %d", i)
				require.InDelta(t, tc.wantFrac[i], got.Frac, 1e-9, "step %d", i)
				require.GreaterOrEqual(t, got.Frac, prev.Frac, "step %d: the percentage went back", i)
				if got.ETAKnown && prev.ETAKnown && !tc.etaMayGrow[i] {
					require.LessOrEqual(t, got.ETA, prev.ETA-(st.at-prevAt), "step %d: the ETA grew", i)
				}
				require.GreaterOrEqual(t, got.RowRate, 0.0)
				if got.Frac == 1 {
					require.False(t, got.ETAKnown, "done: no ETA")
				}
				prev, prevAt = got, st.at
			}
		})
	}
}

func TestEstimatorSteadyETA(t *testing.T) {
	// 100 rows/s of 1000: the ETA is about what is left.
	var e estimator
	e.reset(progressT0)
	var got estimate
	for s := 1; s <= 5; s++ {
		got = e.observe(progressT0.Add(time.Duration(s)*time.Second), kwollect.Progress{Rows: 100 * s, EstimatedRows: 1000, ChunksDone: s, ChunksTotal: 10})
	}
	require.True(t, got.ETAKnown)
	require.InDelta(t, 5*time.Second, got.ETA, float64(100*time.Millisecond))
	require.InDelta(t, 100, got.RowRate, 1)
}

func TestEstimatorETARunsOut(t *testing.T) {
	// The clamp counts down; once it runs out before the end the ETA is
	// unknown rather than "0s" for long.
	var e estimator
	e.reset(progressT0)
	e.observe(progressT0.Add(time.Second), kwollect.Progress{Rows: 500, EstimatedRows: 1000, ChunksDone: 1, ChunksTotal: 2})
	got := e.observe(progressT0.Add(1500*time.Millisecond), kwollect.Progress{Rows: 900, EstimatedRows: 1000, ChunksDone: 1, ChunksTotal: 2})
	require.True(t, got.ETAKnown)
	got = e.observe(progressT0.Add(time.Minute), kwollect.Progress{Rows: 910, EstimatedRows: 1000, ChunksDone: 1, ChunksTotal: 2})
	require.False(t, got.ETAKnown)
	require.InDelta(t, 0.91, got.Frac, 1e-9)
}

func TestProgressLogLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		pr   kwollect.Progress
		e    estimate
		want string
	}{
		{"full", kwollect.Progress{Rows: 410_000, EstimatedRows: 1_000_000, Bytes: 68_000_000, ChunksDone: 4, ChunksTotal: 10},
			estimate{Frac: 0.41, Known: true, RowRate: 1.2e6, ETA: 3 * time.Second, ETAKnown: true},
			"Kwollect: 41% (410,000/1,000,000 rows, 68 MB), 4/10 chunks, 1.2 M rows/s, ETA 3s"},
		{"no estimate nor bytes yet", kwollect.Progress{Rows: 1234, ChunksDone: 1, ChunksTotal: 8},
			estimate{Frac: 0.125, Known: true, RowRate: 850},
			"Kwollect: 12% (1,234 rows), 1/8 chunks, 850 rows/s"},
		{"nothing known", kwollect.Progress{ChunksTotal: 1},
			estimate{},
			"Kwollect: 0 rows, 0/1 chunks"},
		{"setbacks", kwollect.Progress{Rows: 5, EstimatedRows: 10, ChunksDone: 1, ChunksTotal: 3, Retries: 2, FailedChunks: 1, Incomplete: 4},
			estimate{Frac: 0.5, Known: true, RowRate: 12_345, ETA: 125 * time.Second, ETAKnown: true},
			"Kwollect: 50% (5/10 rows), 1/3 chunks, 12 k rows/s, ETA 2m05s, 2 retries, 1 chunks FAILED, 4 series not yet complete"},
		{"done", kwollect.Progress{Rows: 1_000_000, EstimatedRows: 1_000_000, Bytes: 2_100_000_000, ChunksDone: 10, ChunksTotal: 10},
			estimate{Frac: 1, Known: true, RowRate: 1.25e5, Elapsed: 8300 * time.Millisecond},
			"Kwollect: 100% (1,000,000 rows, 2.1 GB), 10/10 chunks, 125 k rows/s, done in 8s"},
		{"never 100% before done", kwollect.Progress{Rows: 999, EstimatedRows: 1000, ChunksDone: 9, ChunksTotal: 10},
			estimate{Frac: 0.999, Known: true},
			"Kwollect: 99% (999/1,000 rows), 9/10 chunks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, logLine(tc.pr, tc.e))
		})
	}
}

func TestProgressBarLine(t *testing.T) {
	pr := kwollect.Progress{Rows: 410_000, EstimatedRows: 1_000_000, Bytes: 68_000_000, ChunksDone: 4, ChunksTotal: 10}
	e := estimate{Frac: 0.5, Known: true, RowRate: 1.2e6, ETA: 3 * time.Second, ETAKnown: true}
	for _, width := range []int{0, 40, 80, 120, 200} {
		line := barLine(pr, e, width)
		w := width
		if w == 0 {
			w = 80
		}
		require.Less(t, len([]rune(line)), w, "width %d: %q", width, line)
		require.True(t, strings.HasPrefix(line, "Kwollect"), line)
	}
	require.Equal(t, "Kwollect [============>           ]  50% 410,000/1,000,000 rows, 68 MB, 4/10 chunks, 1.2 M rows/s, ETA 3s", barLine(pr, e, 200))
	require.Equal(t, "Kwollect: 50% 410,000/1,000,000 rows, 68 MB, 4/10 chunks, 1.2 M rows/s, ETA 3s", barLine(pr, e, 90))
}

// fakeProgress is a progress with a fake clock, logging to a buffer, and
// a fake terminal if tty.
type fakeProgress struct {
	*progress
	now    time.Time
	logs   *bytes.Buffer
	screen []string
}

func newFakeProgress(tty bool) *fakeProgress {
	f := &fakeProgress{now: progressT0, logs: &bytes.Buffer{}}
	log := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == slog.LevelKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	p := newProgress(log)
	p.tty = tty
	p.now = func() time.Time { return f.now }
	p.status = func(s string) { f.screen = append(f.screen, s) }
	p.width = func() int { return 200 }
	p.created, p.lastLog = f.now, f.now.Add(firstLog-logEvery)
	f.progress = p
	return f
}

func (f *fakeProgress) lines() []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(f.logs.String()), "\n") {
		if l != "" {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(l, `msg="`), `"`))
		}
	}
	return out
}

func TestProgressLogRateLimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []step // at: since the progress was made
		want  []string
	}{
		{
			name: "a short fetch logs nothing",
			steps: []step{
				{time.Second, kwollect.Progress{Rows: 10, ChunksDone: 1, ChunksTotal: 2}},
				{2 * time.Second, kwollect.Progress{Rows: 20, ChunksDone: 2, ChunksTotal: 2}},
			},
		},
		{
			name: "the first line after 5 s, then one per 10 s, and the final one",
			steps: []step{
				{1 * time.Second, kwollect.Progress{Rows: 100, EstimatedRows: 1000, ChunksDone: 1, ChunksTotal: 10}},
				{5 * time.Second, kwollect.Progress{Rows: 500, EstimatedRows: 1000, ChunksDone: 5, ChunksTotal: 10}},
				{6 * time.Second, kwollect.Progress{Rows: 600, EstimatedRows: 1000, ChunksDone: 6, ChunksTotal: 10}},
				{14 * time.Second, kwollect.Progress{Rows: 700, EstimatedRows: 1000, ChunksDone: 7, ChunksTotal: 10}},
				{15 * time.Second, kwollect.Progress{Rows: 800, EstimatedRows: 1000, ChunksDone: 8, ChunksTotal: 10}},
				{16 * time.Second, kwollect.Progress{Rows: 1000, EstimatedRows: 1000, ChunksDone: 10, ChunksTotal: 10}},
			},
			want: []string{
				"Kwollect: 50% (500/1,000 rows), 5/10 chunks, 100 rows/s, ETA 5s",
				"Kwollect: 80% (800/1,000 rows), 8/10 chunks, 56 rows/s, ETA 4s",
				"Kwollect: 100% (1,000 rows), 10/10 chunks, 70 rows/s, done in 16s",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeProgress(false)
			for _, st := range tc.steps {
				f.now = progressT0.Add(st.at)
				f.update(st.pr)
			}
			f.finish()
			require.Equal(t, tc.want, f.lines())
			require.Empty(t, f.screen, "no bar without a terminal")
		})
	}
}

func TestProgressTerminal(t *testing.T) {
	f := newFakeProgress(true)
	f.now = progressT0.Add(time.Second)
	f.update(kwollect.Progress{Rows: 100, EstimatedRows: 1000, ChunksDone: 1, ChunksTotal: 10})
	f.now = f.now.Add(10 * time.Millisecond) // too soon: not redrawn
	f.update(kwollect.Progress{Rows: 110, EstimatedRows: 1000, ChunksDone: 1, ChunksTotal: 10})
	require.Len(t, f.screen, 1)
	require.True(t, strings.HasPrefix(f.screen[0], "\r\x1b[KKwollect ["), f.screen[0])
	require.False(t, strings.HasSuffix(f.screen[0], "\n"))
	f.now = f.now.Add(time.Second)
	f.update(kwollect.Progress{Rows: 1000, EstimatedRows: 1000, ChunksDone: 10, ChunksTotal: 10})
	require.Len(t, f.screen, 2)
	require.True(t, strings.HasSuffix(f.screen[1], "\n"), "the completed bar stays: %q", f.screen[1])
	require.Contains(t, f.screen[1], "100%")
	// The tail: its status says what is awaited, and finish removes it.
	f.detail = func() string { return "waiting for 2 series" }
	f.now = f.now.Add(time.Second)
	f.update(kwollect.Progress{Rows: 5, ChunksDone: 1, ChunksTotal: 1})
	require.Equal(t, "\r\x1b[KKwollect: waiting for 2 series", f.screen[2])
	f.finish()
	require.Equal(t, "\r\x1b[K", f.screen[3])
	f.finish()
	require.Len(t, f.screen, 4, "removed once")
	require.Empty(t, f.lines(), "no log line on a terminal")
}

func TestProgressNewCallResets(t *testing.T) {
	// A tail round is a new call: its counters start again, and so does
	// its percentage.
	f := newFakeProgress(false)
	f.now = progressT0.Add(time.Second)
	f.update(kwollect.Progress{Rows: 900, EstimatedRows: 1000, ChunksDone: 9, ChunksTotal: 10})
	f.now = progressT0.Add(2 * time.Second)
	f.update(kwollect.Progress{Rows: 10, EstimatedRows: 100, ChunksDone: 1, ChunksTotal: 10})
	require.InDelta(t, 0.1, f.est.frac, 1e-9)
}

func TestUnits(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{grouped(0), "0"}, {grouped(999), "999"}, {grouped(1000), "1,000"}, {grouped(-1234567), "-1,234,567"},
		{bytesText(950), "950 B"}, {bytesText(1500), "1.5 kB"}, {bytesText(68_000_000), "68 MB"},
		{rateText(850), "850 rows/s"}, {rateText(1.2e6), "1.2 M rows/s"},
		{shortDuration(400 * time.Millisecond), "0.4s"}, {shortDuration(3 * time.Second), "3s"},
		{shortDuration(125 * time.Second), "2m05s"}, {shortDuration(80 * time.Minute), "1h20m"},
	} {
		require.Equal(t, tc.want, tc.got)
	}
}
