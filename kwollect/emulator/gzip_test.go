package emulator

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// rawClient does not ask for gzip nor inflate: the test sets
// Accept-Encoding itself and sees the bytes on the wire.
func rawClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}, Timeout: 30 * time.Second}
}

// rawGet GETs url with an Accept-Encoding header (none if empty).
func rawGet(t *testing.T, url, acceptEncoding string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	res, err := rawClient().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, b, err
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	require.NoError(t, err)
	out, err := io.ReadAll(zr)
	require.NoError(t, err)
	return out
}

func TestGzip(t *testing.T) {
	// Two minutes of 100 Hz frames (12 000 rows, ~2 MB), so the body is
	// streamed in many pieces.
	a := winterNow.Add(-time.Hour)
	big := "/stable/sites/lyon/metrics?" + vals("nodes", "gemini-1", "metrics", wpw,
		"start_time", epoch(a), "end_time", epoch(a.Add(2*time.Minute-time.Microsecond))).Encode()
	for _, tc := range []struct {
		name           string
		gzip           bool
		acceptEncoding string
		target         string
		wantGzip       bool
	}{
		{"gzip", true, "gzip", tenRows, true},
		{"big body", true, "gzip", big, true},
		{"with others and q", true, "br, GZIP;q=0.5, deflate", tenRows, true},
		{"x-gzip", true, "x-gzip", tenRows, true},
		{"star", true, "deflate, *", tenRows, true},
		{"refused by q=0", true, "gzip;q=0, *", tenRows, false},
		{"star refused", true, "*;q=0", tenRows, false},
		{"not asked", true, "", tenRows, false},
		{"identity", true, "identity", big, false},
		{"disabled", false, "gzip", big, false},
		{"empty result", true, "gzip", "/stable/sites/lyon/metrics?nodes=nobody", true},
		{"errors are not compressed", true, "gzip", "/stable/sites/lyon/metrics?metrics=x", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := newEmu(t, Config{Seed: 1, Gzip: tc.gzip, Monitored: []string{"gemini-1"}}, winterNow)
			srv := serve(t, e)
			plainRes, plain, err := rawGet(t, srv.URL+tc.target, "")
			require.NoError(t, err)
			require.Empty(t, plainRes.Header.Get("Content-Encoding"))
			res, body, err := rawGet(t, srv.URL+tc.target, tc.acceptEncoding)
			require.NoError(t, err)
			require.Equal(t, plainRes.StatusCode, res.StatusCode)
			require.Equal(t, plainRes.Header.Get("Content-Type"), res.Header.Get("Content-Type"))
			if !tc.wantGzip {
				require.Empty(t, res.Header.Get("Content-Encoding"))
				require.Equal(t, string(plain), string(body))
				return
			}
			require.Equal(t, http.StatusOK, res.StatusCode)
			require.Equal(t, "gzip", res.Header.Get("Content-Encoding"))
			require.Equal(t, "Accept-Encoding", res.Header.Get("Vary"))
			inflated := gunzip(t, body)
			require.Equal(t, string(plain), string(inflated))
			if tc.target == big {
				require.Empty(t, res.Header.Get("Content-Length"), "streamed")
				require.Len(t, decodeRows(t, string(inflated)), 12000)
				require.Less(t, len(body)*3, len(plain), "compressed")
			}
			require.Equal(t, map[int]int64{200: 2}, e.Stats().ByStatus)
		})
	}
}

// TestGzipDefaultClient: Go's client asks for gzip and inflates it
// transparently (then hides Content-Encoding and sets Uncompressed).
func TestGzipDefaultClient(t *testing.T) {
	e, _ := newEmu(t, Config{Seed: 1, Gzip: true}, winterNow)
	srv := serve(t, e)
	res, body, err := fetch(t, freshClient(), srv.URL+tenRows)
	require.NoError(t, err)
	require.True(t, res.Uncompressed)
	require.Len(t, decodeRows(t, body), 10)
}

// TestGzipBodyFaults: body faults act on the compressed stream: a cut
// after N rows leaves a gzip stream without its end whose inflated prefix
// holds exactly the rows sent; a stall with a pause still inflates to the
// whole body; POST answers are compressed too.
func TestGzipBodyFaults(t *testing.T) {
	e, _ := newEmu(t, Config{Seed: 1, Gzip: true}, winterNow)
	srv := serve(t, e)
	_, plain, err := rawGet(t, srv.URL+tenRows, "")
	require.NoError(t, err)
	sep := []byte(rowSeparator)
	for _, tc := range []struct {
		name string
		rule FaultRule
		rows int // rows of the inflated prefix; 0 = the whole body
	}{
		{"truncate", FaultRule{Kind: FaultTruncate, Rows: 3}, 3},
		{"reset", FaultRule{Kind: FaultReset, Rows: 4}, 4},
		{"slow body", FaultRule{Kind: FaultSlowBody, Every: 2, Pause: time.Millisecond}, 0},
		{"paused stall", FaultRule{Kind: FaultStall, Rows: 2, Pause: 50 * time.Millisecond}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, e.SetFaults([]FaultRule{tc.rule}))
			res, body, _ := rawGet(t, srv.URL+tenRows, "gzip")
			require.Equal(t, http.StatusOK, res.StatusCode)
			require.Equal(t, "gzip", res.Header.Get("Content-Encoding"))
			zr, err := gzip.NewReader(bytes.NewReader(body))
			require.NoError(t, err)
			got, err := io.ReadAll(zr)
			if tc.rows == 0 {
				require.NoError(t, err)
				require.Equal(t, string(plain), string(got))
				return
			}
			require.ErrorIs(t, err, io.ErrUnexpectedEOF, "no gzip trailer")
			require.True(t, bytes.HasPrefix(plain, got))
			require.Equal(t, tc.rows-1, bytes.Count(got, sep), string(got))
			require.True(t, bytes.HasSuffix(got, []byte("}")), string(got))
		})
	}
	require.NoError(t, e.SetFaults(nil))
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/stable/sites/lyon/metrics", strings.NewReader(`[{"metric_id":"m","value":1,"timestamp":1736931600}]`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept-Encoding", "gzip")
	res, err := rawClient().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "gzip", res.Header.Get("Content-Encoding"))
	require.Len(t, decodeRows(t, string(gunzip(t, b))), 1)
}

func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   bool
	}{
		{nil, false},
		{[]string{"gzip"}, true},
		{[]string{"deflate", "gzip;q=1.0"}, true},
		{[]string{"gzip ; q=0.001"}, true},
		{[]string{"gzip;q=0"}, false},
		{[]string{"gzip;q=0.0, *"}, false},
		{[]string{"gzip;q=bad"}, false},
		{[]string{"*"}, true},
		{[]string{"identity, br"}, false},
		{[]string{"gzipx"}, false},
	} {
		h := http.Header{"Accept-Encoding": tc.values}
		require.Equal(t, tc.want, acceptsGzip(h), "%q", tc.values)
	}
}

// TestGzipStreaming: a compressed body is streamed too: 20 minutes of
// 100 Hz frames (120 000 rows, ~20 MB of JSON) read through Go's
// transparent inflation while the heap stays far below the body size.
func TestGzipStreaming(t *testing.T) {
	now := winterNow
	e, _ := newEmu(t, Config{Seed: 1, Gzip: true, Monitored: []string{"gemini-1"}}, now)
	srv := serve(t, e)
	a := now.Add(-2 * time.Hour)
	url := srv.URL + "/stable/sites/lyon/metrics?" + vals("nodes", "gemini-1", "metrics", wpw,
		"start_time", epoch(a), "end_time", epoch(a.Add(20*time.Minute-time.Microsecond))).Encode()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseline := ms.HeapAlloc
	res, err := freshClient().Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.True(t, res.Uncompressed, "sent gzipped, inflated by the client")
	rd := bufio.NewReaderSize(res.Body, 64<<10)
	var rows, n int64
	var peak uint64
	for {
		line, err := rd.ReadSlice('\n')
		n += int64(len(line))
		if len(line) > 0 {
			rows++
			if rows%20000 == 0 {
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
	require.Equal(t, int64(120000), rows)
	require.Greater(t, n, int64(15<<20))
	require.Less(t, peak, baseline+24<<20, "the response is not built in memory")
}
