package emulator

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestStreamingLargeWindow serves one hour of 100 Hz frames of a monitored
// v3 node (360 000 rows, ~60 MB) through a real HTTP server and checks, while
// reading, that the heap stays far below the body size: rows are generated
// lazily and written through a buffered writer, never collected.
func TestStreamingLargeWindow(t *testing.T) {
	dur := time.Hour
	if testing.Short() {
		dur = 5 * time.Minute
	}
	now := winterNow
	e, _ := newEmu(t, Config{Seed: 1, Lag: 3 * time.Second, Monitored: []string{"gemini-1"}}, now)
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	a := now.Add(-2 * time.Hour)
	url := srv.URL + "/stable/sites/lyon/metrics?nodes=gemini-1&metrics=wattmetre_power_watt&start_time=" + epoch(a) + "&end_time=" + epoch(a.Add(dur-time.Microsecond))

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseline := ms.HeapAlloc

	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Empty(t, resp.Header.Get("Content-Length"), "streamed with chunked encoding")
	rd := bufio.NewReaderSize(resp.Body, 64<<10)
	var rows, bytesRead int64
	var peak uint64
	first, err := rd.ReadByte()
	require.NoError(t, err)
	require.Equal(t, byte('['), first)
	for {
		line, err := rd.ReadSlice('\n')
		bytesRead += int64(len(line))
		if len(line) > 0 {
			require.True(t, bytes.Contains(line, []byte(`"timestamp"`)), string(line))
			rows++
			if rows%30000 == 0 {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc)
			}
		}
		if err == io.EOF {
			require.True(t, bytes.HasSuffix(line, []byte("}]")), "complete array")
			break
		}
		require.NoError(t, err)
	}
	want := int64(dur / (10 * time.Millisecond))
	require.Equal(t, want, rows)
	t.Logf("%d rows, %d MB streamed, heap peak %d MB over a %d MB baseline", rows, bytesRead>>20, peak>>20, baseline>>20)
	if !testing.Short() {
		require.Greater(t, bytesRead, int64(40<<20))
	}
	require.Less(t, peak, baseline+24<<20, "the response is not built in memory")
}

// discardWriter is a ResponseWriter that throws the body away.
type discardWriter struct {
	h http.Header
	n int64
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Write(b []byte) (int, error) { d.n += int64(len(b)); return len(b), nil }

// BenchmarkServe measures the streaming throughput on 10 minutes of 100 Hz
// frames of two monitored two-PSU nodes (120 000 rows per operation).
func BenchmarkServe(b *testing.B) {
	now := winterNow
	e, _ := newEmu(b, Config{Seed: 1, Monitored: []string{"gemini-1", "gemini-2"}}, now)
	a := now.Add(-time.Hour)
	target := "/stable/sites/lyon/metrics?nodes=gemini-1,gemini-2&metrics=wattmetre_power_watt&start_time=" + epoch(a) + "&end_time=" + epoch(a.Add(10*time.Minute-time.Microsecond))
	h := e.Handler()
	req := httptest.NewRequest("GET", target, nil)
	b.ReportAllocs()
	b.ResetTimer()
	var bytesOut int64
	for i := 0; i < b.N; i++ {
		w := &discardWriter{h: http.Header{}}
		h.ServeHTTP(w, req)
		bytesOut += w.n
	}
	rows := float64(b.N) * 120000
	b.ReportMetric(rows/b.Elapsed().Seconds(), "rows/s")
	b.SetBytes(bytesOut / int64(b.N))
}

// BenchmarkOneHertz measures 1 Hz means (each the mean of 100 frames) over
// 2 hours of 4 nodes.
func BenchmarkOneHertz(b *testing.B) {
	now := winterNow
	e, _ := newEmu(b, Config{Seed: 1}, now)
	a := now.Add(-3 * time.Hour)
	target := "/stable/sites/lyon/metrics?nodes=gemini-1,gemini-2,taurus-1,taurus-2&metrics=wattmetre_power_watt&start_time=" + epoch(a) + "&end_time=" + epoch(a.Add(2*time.Hour-time.Microsecond))
	h := e.Handler()
	req := httptest.NewRequest("GET", target, nil)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.ServeHTTP(&discardWriter{h: http.Header{}}, req)
	}
	b.ReportMetric(float64(b.N)*4*7200/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkGenerateMonitored measures generation alone (rows generated and
// merged, not formatted: what the row limit and the statement timeout
// count) on 10 minutes of 50 Hz frames of 10 monitored nodes (300 000 rows
// per operation).
func BenchmarkGenerateMonitored(b *testing.B) {
	now := winterNow
	var nodes []string
	for i := 1; i <= 10; i++ {
		nodes = append(nodes, "taurus-"+strconv.Itoa(i))
	}
	e, _ := newEmu(b, Config{Seed: 1, Monitored: nodes}, now)
	a := now.Add(-time.Hour)
	q, perr := e.parseQuery("lyon", vals("nodes", strings.Join(nodes, ","), "metrics", wpw,
		"start_time", epoch(a), "end_time", epoch(a.Add(10*time.Minute-time.Microsecond))), now.UnixMicro())
	require.Nil(b, perr)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if n := countRows(context.Background(), e.stream(q, now.UnixMicro(), true), 1<<62); n != 300000 {
			b.Fatalf("%d rows", n)
		}
	}
	b.ReportMetric(float64(b.N)*300000/b.Elapsed().Seconds(), "rows/s")
}
