package emulator

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var (
	// winterNow is 2025-01-15T10:00:00+01:00.
	winterNow = time.Date(2025, 1, 15, 9, 0, 0, 0, time.UTC)
	// summerNow is 2025-07-15T10:00:00+02:00.
	summerNow = time.Date(2025, 7, 15, 8, 0, 0, 0, time.UTC)
)

// newEmu builds an emulator on a fake clock set to now.
func newEmu(t testing.TB, cfg Config, now time.Time) (*Emulator, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: now}
	cfg.Now = clk.Now
	e, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(e.Close)
	return e, clk
}

type response struct {
	status int
	header http.Header
	body   string
}

func do(t testing.TB, e *Emulator, method, target string, body string, hdr map[string]string) response {
	t.Helper()
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	} else {
		rd = strings.NewReader("")
	}
	req := httptest.NewRequest(method, target, rd)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.Handler().ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.String()}
}

func get(t testing.TB, e *Emulator, target string) response {
	t.Helper()
	return do(t, e, http.MethodGet, target, "", nil)
}

// jsonRow is a decoded response row.
type jsonRow struct {
	Timestamp string          `json:"timestamp"`
	DeviceID  string          `json:"device_id"`
	MetricID  string          `json:"metric_id"`
	Value     json.RawMessage `json:"value"`
	Labels    map[string]any  `json:"labels"`
}

func (r jsonRow) time(t testing.TB) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, r.Timestamp)
	require.NoError(t, err)
	return ts
}

func (r jsonRow) float(t testing.TB) float64 {
	t.Helper()
	s := string(r.Value)
	switch s {
	case `"NaN"`:
		return math.NaN()
	case "null":
		return math.NaN()
	}
	var f float64
	require.NoError(t, json.Unmarshal(r.Value, &f), s)
	return f
}

func decodeRows(t testing.TB, body string) []jsonRow {
	t.Helper()
	var rows []jsonRow
	dec := json.NewDecoder(strings.NewReader(body))
	require.NoError(t, dec.Decode(&rows), body)
	return rows
}

// rowsOf GETs a metrics query on lyon (or the given site path) and decodes it.
func rowsOf(t testing.TB, e *Emulator, site string, params url.Values) []jsonRow {
	t.Helper()
	res := get(t, e, "/stable/sites/"+site+"/metrics?"+params.Encode())
	require.Equal(t, http.StatusOK, res.status, res.body)
	require.Equal(t, "application/json", res.header.Get("Content-Type"))
	return decodeRows(t, res.body)
}

// epoch renders a time as exact epoch seconds.
func epoch(t time.Time) string { return formatEpoch(t) }

func vals(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// filter keeps the rows of one metric (and device when not empty).
func filter(rows []jsonRow, metric, device string) []jsonRow {
	var out []jsonRow
	for _, r := range rows {
		if r.MetricID == metric && (device == "" || r.DeviceID == device) {
			out = append(out, r)
		}
	}
	return out
}

func countBy(rows []jsonRow, key func(jsonRow) string) map[string]int {
	m := map[string]int{}
	for _, r := range rows {
		m[key(r)]++
	}
	return m
}

func sprint(v ...any) string { return fmt.Sprint(v...) }

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// ctlHdr are the headers of an authorised JSON control request.
func ctlHdr(e *Emulator) map[string]string {
	return map[string]string{"Authorization": "Bearer " + e.ControlToken(), "Content-Type": "application/json"}
}
