package kwollect

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// MemAPI serves a pre-generated Kwollect response body from memory: the
// rows of N nodes at a fixed rate, in time order, in the emulator's shape
// (wattmetre frames with their _device_orig port). A GET of
// /…/sites/{site}/metrics writes the slice of the body within
// [start_time, end_time] in one call, so that benchmarks measure the
// client and not the server. The node list and metrics are not filtered:
// every node of the body is expected to be asked for.
//
// It is exported (in a test file) for the benchmarks of package
// kwollect_test.
type MemAPI struct {
	Nodes []string
	From  time.Time // first row
	To    time.Time // last row
	body  []byte    // row i is body[offs[i]:offs[i+1]], ",\n" included
	offs  []int
	ts    []int64 // µs of row i
}

var memAPIs sync.Map // key string -> *MemAPI

// NewMemAPI returns the body of nodes nodes at hz rows per second each,
// over dur from from (cached: the same arguments share one body).
func NewMemAPI(nodes, hz int, from time.Time, dur time.Duration) *MemAPI {
	key := fmt.Sprint(nodes, hz, from.UnixNano(), dur)
	if m, ok := memAPIs.Load(key); ok {
		return m.(*MemAPI)
	}
	m := &MemAPI{From: from}
	for i := 1; i <= nodes; i++ {
		m.Nodes = append(m.Nodes, fmt.Sprintf("taurus-%d", i))
	}
	period := time.Second / time.Duration(hz)
	steps := int(dur / period)
	n := steps * nodes
	m.offs = make([]int, 0, n+1)
	m.ts = make([]int64, 0, n)
	paris := time.FixedZone("", 3600)
	b := make([]byte, 0, n*180)
	for s := 0; s < steps; s++ {
		t := from.Add(time.Duration(s) * period)
		stamp := t.In(paris).AppendFormat(nil, "2006-01-02T15:04:05.999999-07:00")
		for k, node := range m.Nodes {
			m.offs = append(m.offs, len(b))
			m.ts = append(m.ts, t.UnixMicro())
			v := float64(9000+(s*7+k*13)%4000) / 100
			b = append(b, `{"timestamp":"`...)
			b = append(b, stamp...)
			b = append(b, `","device_id":"`...)
			b = append(b, node...)
			b = append(b, `","metric_id":"wattmetre_power_watt","value":`...)
			b = strconv.AppendFloat(b, v, 'f', -1, 64)
			b = append(b, `,"labels":{"_device_orig": ["wattmetre1-port`...)
			b = strconv.AppendInt(b, int64(k), 10)
			b = append(b, "\"]}},\n"...)
		}
		m.To = t
	}
	m.offs = append(m.offs, len(b))
	m.body = b
	actual, _ := memAPIs.LoadOrStore(key, m)
	return actual.(*MemAPI)
}

// Rows returns the number of rows of the body.
func (m *MemAPI) Rows() int { return len(m.ts) }

// Bytes returns the size of the whole body.
func (m *MemAPI) Bytes() int { return len(m.body) }

// Targets returns the nodes as session targets on lyon.
func (m *MemAPI) Targets() []Target {
	var out []Target
	for _, n := range m.Nodes {
		out = append(out, Target{"lyon", n})
	}
	return out
}

// parseEpochUS parses epoch seconds with up to 6 fraction digits.
func parseEpochUS(s string) (int64, bool) {
	ip, fp, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(ip, 10, 64)
	if err != nil || len(fp) > 6 {
		return 0, false
	}
	us := int64(0)
	if fp != "" {
		f, err := strconv.ParseInt((fp + "000000")[:6], 10, 64)
		if err != nil {
			return 0, false
		}
		us = f
	}
	return sec*1_000_000 + us, true
}

func (m *MemAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/metrics") {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	lo, ok1 := parseEpochUS(q.Get("start_time"))
	hi, ok2 := parseEpochUS(q.Get("end_time"))
	if !ok1 || !ok2 {
		http.Error(w, "bad bounds", http.StatusBadRequest)
		return
	}
	a := sort.Search(len(m.ts), func(i int) bool { return m.ts[i] >= lo })
	b := sort.Search(len(m.ts), func(i int) bool { return m.ts[i] > hi })
	w.Header().Set("Content-Type", "application/json")
	if a >= b {
		_, _ = w.Write([]byte("[]"))
		return
	}
	_, _ = w.Write([]byte("["))
	_, _ = w.Write(m.body[m.offs[a] : m.offs[b]-2]) // without the last ",\n"
	_, _ = w.Write([]byte("]"))
}

// StartMemAPI serves m on a loopback test server and returns its base URL
// (with /stable).
func StartMemAPI(tb testing.TB, m *MemAPI) string {
	srv := httptest.NewServer(m)
	tb.Cleanup(srv.Close)
	return srv.URL + "/stable"
}

// CPUTime returns the CPU time (user + system) of the process so far:
// benchmarks report rows per CPU second too, a figure that other processes
// on a shared machine disturb less than the wall time.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memFrom is the start of the benchmark bodies: far in the past, so that
// nothing waits for ingestion.
var memFrom = time.Date(2025, 3, 10, 10, 0, 0, 0, time.UTC)

// BenchmarkSessionFetchMem measures the client side of a fetch: HTTP from a
// loopback server that writes a pre-generated body (1,000,000 rows: 10
// nodes at 50 Hz for 2000 s, about 180 MB), decoding, verification and
// deduplication, batching, and a sink that drops the rows. Run it with
// -cpu 1 for the one-core figure.
func BenchmarkSessionFetchMem(b *testing.B) {
	m := NewMemAPI(10, 50, memFrom, 2000*time.Second)
	client, err := NewClient(Options{BaseURL: StartMemAPI(b, m)})
	if err != nil {
		b.Fatal(err)
	}
	plan := Plan{Targets: m.Targets(), Metrics: []string{watt}}
	opts := SessionOptions{Periods: map[string]time.Duration{watt: 20 * time.Millisecond}}
	b.SetBytes(int64(m.Bytes()))
	b.ReportAllocs()
	total := 0
	cpu0 := CPUTime()
	for b.Loop() {
		s, err := client.NewSession(plan, opts)
		if err != nil {
			b.Fatal(err)
		}
		rep, err := s.Fetch(context.Background(), m.From, m.To, func([]Row) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		if rep.Rows != m.Rows() {
			b.Fatalf("%d rows, want %d", rep.Rows, m.Rows())
		}
		total += rep.Rows
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(total)/(CPUTime()-cpu0).Seconds(), "rows/cpu-s")
}
