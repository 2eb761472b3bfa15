package kwgen

import (
	"bytes"
	"encoding/json"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/kwollect"
	"github.com/alumet-go/alumet-agent/kwollect/emulator"
)

func generate(t *testing.T, c Config) ([]byte, Summary) {
	t.Helper()
	var b bytes.Buffer
	s, err := Generate(&b, c)
	require.NoError(t, err)
	require.Equal(t, int64(b.Len()), s.Bytes)
	return b.Bytes(), s
}

func decode(t *testing.T, body []byte) []kwollect.Row {
	t.Helper()
	var rows []kwollect.Row
	n, err := kwollect.DecodeWith(bytes.NewReader(body), kwollect.DecodeOptions{OnBadRow: func(e *kwollect.RowError) {
		t.Errorf("bad row: %v", e)
	}}, func(r *kwollect.Row) error {
		rows = append(rows, *r)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, len(rows), n)
	return rows
}

// rowRE is the exact shape of one element (PostgREST record, jsonb labels).
var rowRE = regexp.MustCompile(`^\{"timestamp":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{0,5}[1-9])?[+-]\d\d:\d\d)",` +
	`"device_id":"([a-z]+-\d+)","metric_id":"wattmetre_power_watt","value":(\d+(?:\.\d?[1-9])?),` +
	`"labels":\{"_device_orig": \["([a-z0-9-]+-port\d+)"\]\}\}$`)

func TestGenerateShape(t *testing.T) {
	for _, hz := range []int{1, 50, 100} {
		t.Run(strconv.Itoa(hz), func(t *testing.T) {
			body, sum := generate(t, Config{Rows: 2000, Nodes: 7, Hz: hz, Seed: 3})
			require.True(t, bytes.HasPrefix(body, []byte(`[{"timestamp":"`)))
			require.True(t, bytes.HasSuffix(body, []byte(`}}]`)))
			require.True(t, json.Valid(body))
			elems := strings.Split(string(body[1:len(body)-1]), ", \n ")
			require.Len(t, elems, 2000, "json_agg separators")
			rows := decode(t, body)
			require.Len(t, rows, 2000)
			require.Equal(t, int64(2000), sum.Rows)
			require.Equal(t, rows[0].Timestamp.UTC(), sum.First)
			require.Equal(t, rows[len(rows)-1].Timestamp.UTC(), sum.Last)

			port := map[string]string{}
			for i, n := range sum.Nodes {
				port[n] = sum.Devices[i]
			}
			perNode := map[string]int{}
			last := map[string]time.Time{}
			for i, e := range elems {
				m := rowRE.FindStringSubmatch(e)
				require.NotNil(t, m, "element %d: %s", i, e)
				r := rows[i]
				require.Equal(t, emulator.FormatTimestamp(r.Timestamp), m[1], "timestamp formatted as the emulator does")
				require.Equal(t, m[2], r.DeviceID)
				require.Equal(t, []string{port[r.DeviceID]}, r.DeviceOrig)
				require.Equal(t, m[4], port[r.DeviceID])
				require.Equal(t, strconv.FormatFloat(r.Value, 'f', -1, 64), m[3], "shortest form")
				require.InDelta(t, 150, r.Value, 100)
				if hz == 1 {
					require.Zero(t, r.Timestamp.Nanosecond(), "1 Hz means are on whole seconds")
				}
				if p, ok := last[r.DeviceID]; ok {
					gap := r.Timestamp.Sub(p)
					period := time.Second / time.Duration(hz)
					require.InDelta(t, float64(period), float64(gap), float64(maxJitterUs*time.Microsecond), "period of %s", r.DeviceID)
				}
				last[r.DeviceID] = r.Timestamp
				perNode[r.DeviceID]++
				if i > 0 {
					p := rows[i-1]
					require.False(t, r.Timestamp.Before(p.Timestamp), "ordered by timestamp: row %d", i)
					if r.Timestamp.Equal(p.Timestamp) {
						require.Less(t, p.DeviceID, r.DeviceID, "ties in device_id order")
					}
				}
			}
			require.Len(t, perNode, 7, "every node interleaved")
			for n, c := range perNode {
				require.InDelta(t, 2000/7, c, 2, n)
			}
		})
	}
}

func TestGenerateDeterministic(t *testing.T) {
	c := Config{Rows: 5000, Nodes: 4, Hz: 100, Seed: 42, Site: "rennes"}
	a, sa := generate(t, c)
	b, sb := generate(t, c)
	require.True(t, bytes.Equal(a, b), "same seed, same bytes")
	require.Empty(t, cmp.Diff(sa, sb))
	require.Equal(t, []string{"paradoxe-1", "paradoxe-2", "paradoxe-3", "paradoxe-4"}, sa.Nodes)

	c.Seed = 43
	d, _ := generate(t, c)
	require.False(t, bytes.Equal(a, d), "another seed, other values")

	// A prefix of a longer response is the shorter response (the rows do
	// not depend on the requested count).
	c.Seed, c.Rows = 42, 6000
	e, _ := generate(t, c)
	require.True(t, bytes.HasPrefix(e, a[:len(a)-1]))
}

func TestGenerateBytes(t *testing.T) {
	body, sum := generate(t, Config{Bytes: 1 << 20, Seed: 1})
	require.GreaterOrEqual(t, sum.Bytes, int64(1<<20))
	require.Less(t, sum.Bytes, int64(1<<20)+300, "stops at the first row that reaches the size")
	rows := decode(t, body)
	require.Equal(t, sum.Rows, int64(len(rows)))
	// About 180 bytes per row at 50 Hz: the reference file (1M rows) is
	// about 180 MB.
	per := float64(sum.Bytes) / float64(sum.Rows)
	require.InDelta(t, 180, per, 10)
}

func TestGenerateDST(t *testing.T) {
	// 2025-10-26 03:00 CEST becomes 02:00 CET: the offset changes
	// mid-response, the UTC instants stay regular.
	start := time.Date(2025, 10, 26, 0, 59, 58, 0, time.UTC)
	body, _ := generate(t, Config{Rows: 8, Nodes: 2, Hz: 1, Start: start})
	require.Contains(t, string(body), `"2025-10-26T02:59:59+02:00"`)
	require.Contains(t, string(body), `"2025-10-26T02:00:00+01:00"`)
	rows := decode(t, body)
	for i := 0; i < len(rows); i += 2 {
		require.Equal(t, start.Add(time.Duration(i/2)*time.Second), rows[i].Timestamp.UTC())
	}
}

func TestGenerateErrors(t *testing.T) {
	for _, c := range []Config{{}, {Rows: 1, Hz: 25}, {Rows: -1}, {Rows: 1, Nodes: -2}} {
		_, err := Generate(io.Discard, c)
		require.Error(t, err, "%+v", c)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"1000": 1000, "180MB": 180e6, "1GB": 1e9, "1gb": 1e9, "1.5GB": 1.5e9, "512MiB": 512 << 20, "64KiB": 64 << 10, "2 GiB": 2 << 30, "10B": 10,
	} {
		got, err := ParseSize(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "GB", "-1MB", "1XB", "abc"} {
		_, err := ParseSize(in)
		require.Error(t, err, in)
	}
}

func TestNodeNames(t *testing.T) {
	nodes, devs, cl := NodeNames("lyon", 50, 7)
	require.Equal(t, "taurus", cl)
	require.Equal(t, "taurus-7", nodes[6])
	require.Equal(t, "wattmetre1-port6", devs[6], "the seed README's port")
	nodes, _, _ = NodeNames("nancy", 50, 2)
	require.Equal(t, []string{"gros-41", "gros-42"}, nodes)
}
