package kwollect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/alumet-go/alumet-agent/internal/racetest"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

const boundRow = `{"timestamp":"2024-10-03T08:12:41+02:00","device_id":"n-1","metric_id":"m","value":1}`

func bigRow(labelLen int) string {
	return `{"timestamp":"2024-10-03T08:12:42+02:00","device_id":"n-1","metric_id":"m","value":2,"labels":{"x":"` +
		strings.Repeat("a", labelLen) + `"}}`
}

func TestDecodeOversized(t *testing.T) {
	const limit = 200
	big := bigRow(300)
	exact := bigRow(limit - len(bigRow(0)))
	require.Len(t, exact, limit)
	nested := `{"labels":{"a":"]}]}\"[` + strings.Repeat("x", 300) + `"}}`
	tests := []struct {
		name    string
		body    string
		rows    int
		bad     map[int]int64 // index -> size of the oversized elements
		errIs   error
		trunc   bool
		noLimit bool
	}{
		{"object in the middle", `[` + boundRow + `,` + big + `,` + boundRow + `]`, 2, map[int]int64{1: int64(len(big))}, nil, false, false},
		{"first", `[` + big + `,` + boundRow + `]`, 1, map[int]int64{0: int64(len(big))}, nil, false, false},
		{"last", `[` + boundRow + `, ` + big + "\n]", 1, map[int]int64{1: int64(len(big))}, nil, false, false},
		{"several", `[` + big + `,` + big + `,` + boundRow + `,` + big + `]`, 1, map[int]int64{0: int64(len(big)), 1: int64(len(big)), 3: int64(len(big))}, nil, false, false},
		{"string element", `[` + boundRow + `,"` + strings.Repeat("s", 500) + `",` + boundRow + `]`, 2, map[int]int64{1: 502}, nil, false, false},
		{"number element", `[` + boundRow + `,` + strings.Repeat("9", 300) + `,` + boundRow + `]`, 2, map[int]int64{1: 300}, nil, false, false},
		{"nested with brackets in strings", `[` + nested + `,` + boundRow + `]`, 1, map[int]int64{0: int64(len(nested))}, nil, false, false},
		{"exactly the limit is kept", `[` + exact + `]`, 1, nil, nil, false, false},
		{"no limit", `[` + big + `]`, 1, nil, nil, false, true},
		{"cut inside an oversized element", `[` + boundRow + `,` + big[:250], 1, nil, nil, true, false},
		{"trailing data after an oversized element", `[` + big + `] x`, 0, map[int]int64{0: int64(len(big))}, ErrTrailingData, false, false},
	}
	for _, tt := range tests {
		for _, general := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/general=%v", tt.name, general), func(t *testing.T) {
				opts := DecodeOptions{General: general, MaxRowBytes: limit}
				if tt.noLimit {
					opts.MaxRowBytes = -1
				}
				got := map[int]int64{}
				opts.OnBadRow = func(e *RowError) {
					require.ErrorIs(t, e, ErrRowTooLarge)
					var size int64
					_, err := fmt.Sscanf(e.Err.Error(), "element too large: %d bytes", &size)
					require.NoError(t, err)
					require.Contains(t, e.Error(), fmt.Sprintf("row %d skipped", e.Index))
					got[e.Index] = size
				}
				n, err := DecodeWith(strings.NewReader(tt.body), opts, func(*Row) error { return nil })
				require.Equal(t, tt.rows, n)
				switch {
				case tt.trunc:
					require.ErrorAs(t, err, new(*TruncatedError))
				case tt.errIs != nil:
					require.ErrorIs(t, err, tt.errIs)
				default:
					require.NoError(t, err)
				}
				if tt.bad == nil {
					tt.bad = map[int]int64{}
				}
				require.Empty(t, cmp.Diff(tt.bad, got))
			})
		}
	}
}

// hugeElement streams [row, {one element of size bytes}, row] without
// holding it.
type hugeElement struct {
	head, tail []byte
	fill       int64 // bytes of the label value still to send
}

func newHugeElement(size int64) *hugeElement {
	open := `[` + boundRow + `,{"timestamp":"2024-10-03T08:12:42+02:00","device_id":"n-1","metric_id":"m","value":2,"labels":{"x":"`
	closing := `"}},` + strings.Replace(boundRow, "41+02", "43+02", 1) + `]`
	return &hugeElement{head: []byte(open), tail: []byte(closing), fill: size}
}

func (h *hugeElement) Read(p []byte) (int, error) {
	switch {
	case len(h.head) > 0:
		n := copy(p, h.head)
		h.head = h.head[n:]
		return n, nil
	case h.fill > 0:
		n := int(min(int64(len(p)), h.fill))
		for i := range p[:n] {
			p[i] = 'a'
		}
		h.fill -= int64(n)
		return n, nil
	case len(h.tail) > 0:
		n := copy(p, h.tail)
		h.tail = h.tail[n:]
		return n, nil
	}
	return 0, io.EOF
}

// A 100 MB element costs neither decoder anything near 100 MB: it is
// skipped as it streams (measured as the bytes allocated during the
// decode; generous bound, not a timing).
func TestDecodeHugeElementMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 100 MB")
	}
	racetest.WithoutRace(t) // one goroutine; TestDecodeOversized covers the path under -race
	const size = 100 << 20
	for _, general := range []bool{false, true} {
		t.Run(fmt.Sprintf("general=%v", general), func(t *testing.T) {
			var bad []*RowError
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			n, err := DecodeWith(newHugeElement(size), DecodeOptions{General: general, OnBadRow: func(e *RowError) { bad = append(bad, e) }},
				func(*Row) error { return nil })
			runtime.ReadMemStats(&after)
			require.NoError(t, err)
			require.Equal(t, 2, n, "the rows around it are read")
			require.Len(t, bad, 1)
			require.Equal(t, 1, bad[0].Index)
			require.ErrorIs(t, bad[0], ErrRowTooLarge)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("100 MB element: %.1f MB allocated, peak heap %.1f MB (general=%v)", float64(alloc)/(1<<20), float64(after.HeapSys)/(1<<20), general)
			require.Less(t, alloc, uint64(24<<20))
		})
	}
}

// FuzzDecodeLimit runs both decoders with a small element limit: they
// agree, every oversized report is over the limit, and every delivered
// row came from an element within it.
func FuzzDecodeLimit(f *testing.F) {
	f.Add([]byte(`[`+boundRow+`,`+bigRow(100)+`,`+boundRow+`]`), uint8(120), uint8(7))
	f.Add([]byte(`[`+boundRow+`,"`+strings.Repeat("s", 200)+`",1e5]`), uint8(90), uint8(0))
	f.Add([]byte(`[`+boundRow+`] [`+boundRow+`]`), uint8(100), uint8(3))
	f.Add([]byte(`[`+bigRow(50)), uint8(60), uint8(1))
	for _, s := range fastSeeds(f)[:1] {
		f.Add(s, uint8(150), uint8(7))
	}
	f.Fuzz(func(t *testing.T, body []byte, limit, chunk uint8) {
		lim := int(limit) + 1
		want := runDecodeLimit(bytes.NewReader(body), true, 0, lim)
		for _, r := range []struct {
			r   io.Reader
			buf int
		}{
			{bytes.NewReader(body), fastBufSize},
			{&chunkReader{body, int(chunk)%17 + 1}, int(chunk)%17 + 1},
		} {
			got := runDecodeLimit(r.r, false, r.buf, lim)
			if diff := cmp.Diff(want, got, strictRows); diff != "" {
				t.Fatalf("limit %d, body %q: fast decoder differs (-general +fast):\n%s", lim, body, diff)
			}
		}
	})
}

func runDecodeLimit(r io.Reader, general bool, bufSize, limit int) decodeResult {
	var res decodeResult
	opts := DecodeOptions{General: general, MaxRowBytes: limit, OnBadRow: func(e *RowError) {
		res.Bad = append(res.Bad, fmt.Sprintf("%d|%v|%s", e.Index, e.Err, e.Raw))
		if errors.Is(e.Err, ErrRowTooLarge) {
			var size int
			if _, err := fmt.Sscanf(e.Err.Error(), "element too large: %d bytes", &size); err != nil || size <= limit {
				panic(fmt.Sprintf("oversized report of %d bytes for limit %d: %v", size, limit, e))
			}
		}
	}}
	fn := func(r *Row) error {
		res.Rows = append(res.Rows, *r)
		return nil
	}
	var err error
	if general {
		res.N, err = DecodeWith(r, opts, fn)
	} else {
		res.N, err = decodeFast(r, bufSize, opts, fn)
	}
	if err != nil {
		res.Err = fmt.Sprintf("%T: %v", err, err)
	}
	return res
}

// oneBody answers every metrics query with body.
func oneBody(t *testing.T, body string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/stable"
}

// The anomalies of a body are in the Report; none fails the fetch, and
// the rows are kept.
func TestSessionReportsAnomalies(t *testing.T) {
	from := time.Date(2024, 10, 3, 6, 12, 40, 0, time.UTC)
	to := from.Add(10 * time.Second)
	at := func(sec int, node string) string {
		return fmt.Sprintf(`{"timestamp":"2024-10-03T08:12:%02d+02:00","device_id":"%s","metric_id":"m","value":%d}`, sec, node, sec)
	}
	tests := []struct {
		name                            string
		body                            string
		rows, dups, oversized, trailing int
	}{
		{"clean", `[` + at(41, "a") + `,` + at(41, "b") + `,` + at(42, "a") + `]`, 3, 0, 0, 0},
		{"repeated row", `[` + at(41, "a") + `,` + at(41, "a") + `,` + at(41, "b") + `,` + at(42, "a") + `,` + at(42, "a") + `]`, 3, 2, 0, 0},
		{"repeat after another series", `[` + at(41, "a") + `,` + at(41, "b") + `,` + at(41, "a") + `]`, 2, 1, 0, 0},
		{"oversized", `[` + at(41, "a") + `,` + bigRow(2000) + `,` + at(42, "a") + `]`, 2, 0, 1, 0},
		{"second array", `[` + at(41, "a") + `][` + at(41, "a") + `]`, 1, 0, 0, 1},
		{"garbage", `[` + at(41, "a") + `]<html>`, 1, 0, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var bad []*RowError
			c, err := NewClient(Options{BaseURL: oneBody(t, tt.body), MaxRowBytes: 1000, OnBadRow: func(e *RowError) { bad = append(bad, e) }})
			require.NoError(t, err)
			s, err := c.NewSession(Plan{Targets: []Target{{"lyon", "a"}, {"lyon", "b"}}, Metrics: []string{"m"}},
				SessionOptions{Concurrency: 1})
			require.NoError(t, err)
			col := newCollector()
			rep, err := s.Fetch(context.Background(), from, to, col.sink)
			require.NoError(t, err)
			require.Equal(t, tt.rows, rep.Rows)
			require.Equal(t, tt.rows, col.count())
			require.Equal(t, tt.dups, rep.Duplicates)
			require.Equal(t, tt.oversized, rep.Oversized)
			require.Equal(t, tt.trailing, rep.Trailing)
			require.Len(t, bad, tt.oversized)
			for k, n := range col.keys {
				require.Equal(t, 1, n, "row %s delivered %d times", k, n)
			}
		})
	}
}
