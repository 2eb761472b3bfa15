package parquet

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/measure"
)

// gen makes points of every kind from a source of randomness.
type gen struct {
	rng     *rand.Rand
	metrics []measure.MetricID // registered, and one that is not
	nIDs    int                // resource ids to draw from
}

func newGen(t testing.TB, seed uint64, nIDs int) (*gen, *measure.Registry) {
	reg := measure.NewRegistry()
	g := &gen{rng: rand.New(rand.NewPCG(seed, 7)), nIDs: nIDs}
	for _, m := range []measure.Metric{
		{Name: "wattmetre_power_watt", Unit: measure.Plain(measure.Watt), Type: measure.F64},
		{Name: "bmc_cpu_temp_celsius", Unit: measure.Plain(measure.Celsius), Type: measure.F64},
		{Name: "packets", Type: measure.U64},
		{Name: "énergie", Unit: measure.Custom("Wh"), Type: measure.F64},
	} {
		id, err := reg.Register(m)
		require.NoError(t, err)
		g.metrics = append(g.metrics, id)
	}
	g.metrics = append(g.metrics, 99) // not registered: skipped
	return g, reg
}

var texts = []string{"", "a", "taurus-7", "é", "😀 \"q\" ;,\\\n\t", "\x00\x1f", "\xff\xfe", "\u2028", "zz",
	strings.Repeat("long value ", 3), strings.Repeat("é", 12), strings.Repeat("\xff", 20), strings.Repeat("x", 5000)}

func (g *gen) text() string { return texts[g.rng.IntN(len(texts))] }

func (g *gen) attr() measure.Attribute {
	keys := []string{"metric_id", "run", "cpu", "x", "ok", "cores", "note", "value", LateColumn, "é", ""}
	k := keys[g.rng.IntN(len(keys))]
	var v measure.AttrValue
	switch g.rng.IntN(6) {
	case 0:
		v = measure.String(g.text())
	case 1:
		us := []uint64{0, 1, 7, math.MaxInt64, math.MaxInt64 + 1, math.MaxUint64}
		v = measure.AttrValue{Type: measure.AttrU64, U64: us[g.rng.IntN(len(us))]}
	case 2:
		fs := []float64{0.5, negZero, math.NaN(), math.Inf(1), math.Inf(-1), 1e300, 3}
		v = measure.AttrValue{Type: measure.AttrF64, F64: fs[g.rng.IntN(len(fs))]}
	case 3:
		v = measure.AttrValue{Type: measure.AttrBool, Bool: g.rng.IntN(2) == 0}
	case 4:
		v = measure.AttrValue{Type: measure.AttrU64List, List: []uint64{uint64(g.rng.IntN(4)), 9}}
	default:
		v = measure.AttrValue{Type: measure.AttrU64, U64: uint64(g.rng.IntN(3))}
	}
	return measure.Attribute{Key: k, Value: v}
}

func (g *gen) series() measure.Series {
	s := measure.Series{Metric: g.metrics[g.rng.IntN(len(g.metrics))]}
	switch g.rng.IntN(4) {
	case 0:
		s.Resource = measure.LocalMachine
	default:
		s.Resource = measure.Resource{Kind: "device_id", ID: fmt.Sprintf("taurus-%d", g.rng.IntN(g.nIDs))}
	}
	if g.rng.IntN(3) == 0 {
		s.Consumer = measure.Consumer{Kind: g.text(), ID: g.text()}
	} else {
		s.Consumer = measure.Consumer{Kind: "device_origin", ID: fmt.Sprintf("port%d", g.rng.IntN(4))}
	}
	for range g.rng.IntN(5) {
		s.Attributes = append(s.Attributes, g.attr())
	}
	return s
}

func (g *gen) value() measure.Value {
	switch g.rng.IntN(8) {
	case 0:
		return measure.Float([]float64{math.NaN(), math.Inf(1), math.Inf(-1), negZero, 0, math.MaxFloat64, math.SmallestNonzeroFloat64}[g.rng.IntN(7)])
	case 1:
		return measure.Uint([]uint64{0, 1 << 53, 1<<53 + 1, math.MaxUint64}[g.rng.IntN(4)])
	}
	return measure.Float(float64(g.rng.IntN(30000)) / 100)
}

func (g *gen) time(i int) int64 {
	switch g.rng.IntN(50) {
	case 0:
		return []int64{math.MinInt64, math.MaxInt64, 0, -1}[g.rng.IntN(4)]
	}
	return t0.UnixNano() + int64(i)*20e6 + int64(g.rng.IntN(50000))
}

// buffers returns nBufs buffers of about perBuf points of nSeries series,
// compact or plain (mixed when both), the points of a series coming
// several times and from series reused across buffers.
func (g *gen) buffers(nBufs, perBuf, nSeries int, compact, plain bool) []*measure.Buffer {
	series := make([]*measure.Series, nSeries)
	for i := range series {
		s := g.series()
		series[i] = &s
	}
	// Repeated keys of every kind: the last of a key wins, in its column
	// or in the late one, and a column whose key's last value went late
	// stays empty.
	three := measure.String("three")
	for i, attrs := range [][]measure.Attribute{
		{u64("run", 3), {Key: "run", Value: three}},
		{{Key: "run", Value: three}, u64("run", 3)},
		{u64("run", 3), u64("run", math.MaxUint64)},
		{str("metric_id", "a"), u64("metric_id", 5), str("x", "1"), str("x", "2")},
		{u64("run", 1), str("metric_id", "b"), u64("run", 2), {Key: "run", Value: three}, str("metric_id", "c")},
		{str(LateColumn, "l"), str("value", "v"), str("metric", "m")},
	} {
		if i < len(series) {
			series[i].Attributes = attrs
		}
	}
	var bufs []*measure.Buffer
	row := 0
	for range nBufs {
		b := &measure.Buffer{}
		for range g.rng.IntN(2*perBuf + 1) {
			s := series[g.rng.IntN(len(series))]
			if g.rng.IntN(10) == 0 {
				s = series[0]
			}
			c := compact && (!plain || g.rng.IntN(2) == 0)
			if c {
				b.Compact = append(b.Compact, measure.SeriesPoint{Series: s, Time: g.time(row), Value: g.value()})
			} else {
				ts := g.time(row)
				if ts < -1<<62 || ts > 1<<62 {
					ts = 0 // time.Time cannot stand for every int64
				}
				b.Points = append(b.Points, measure.Point{Metric: s.Metric, Timestamp: time.Unix(0, ts), Value: g.value(),
					Resource: s.Resource, Consumer: s.Consumer, Attributes: s.Attributes})
			}
			row++
		}
		bufs = append(bufs, b)
	}
	return bufs
}

// writeBoth writes bufs with the encoder (through a FileOutput) and with
// the reference writer, and returns the two files.
func writeBoth(t testing.TB, cfg *Config, reg *measure.Registry, bufs []*measure.Buffer) (got, want string) {
	t.Helper()
	dir := filepath.Dir(cfg.OutputPath)
	want = filepath.Join(dir, "reference.parquet")
	o, err := Open(cfg, reg, nil, false)
	require.NoError(t, err)
	for _, b := range bufs {
		if err := o.Write(context.Background(), b); err != nil {
			var se *SkippedError
			require.ErrorAs(t, err, &se)
		}
	}
	require.NoError(t, o.Close())
	writeReference(t, cfg, reg, want, bufs...)
	return cfg.OutputPath, want
}

// compareFiles checks that two files hold the same rows and the same
// schema and row groups, and that got is well formed.
func compareFiles(t testing.TB, got, want string) {
	t.Helper()
	gr, wr := readGeneric(t, got), readGeneric(t, want)
	if diff := cmp.Diff(wr, gr); diff != "" {
		t.Fatalf("rows differ from the reference writer's (-reference +encoder):\n%s", diff)
	}
	gm, wm := fileMeta(t, got), fileMeta(t, want)
	require.Equal(t, wm.Schema, gm.Schema)
	require.Equal(t, wm.CreatedBy, gm.CreatedBy)
	require.Equal(t, wm.NumRows, gm.NumRows)
	require.Equal(t, wm.ColumnOrders, gm.ColumnOrders)
	require.Equal(t, wm.Version, gm.Version)
	require.Len(t, gm.RowGroups, len(wm.RowGroups))
	for i := range wm.RowGroups {
		require.Equal(t, wm.RowGroups[i].NumRows, gm.RowGroups[i].NumRows)
		for j := range wm.RowGroups[i].Columns {
			w, g := wm.RowGroups[i].Columns[j].MetaData, gm.RowGroups[i].Columns[j].MetaData
			require.Equal(t, w.Type, g.Type)
			require.Equal(t, w.Encoding, g.Encoding)
			require.Equal(t, w.Codec, g.Codec)
			require.Equal(t, w.NumValues, g.NumValues)
			require.Equal(t, w.Statistics.NullCount, g.Statistics.NullCount)
			// parquet-go gave numbers bounds (strings none): the same ones,
			// but for NaN-only values, which get none here.
			switch {
			case w.Type == format.ByteArray || w.Statistics.MinValue == nil || nanBound(w):
			case w.Type == format.Double: // equal numbers: the zeros' signs may differ
				f := func(b []byte) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b)) }
				require.Equal(t, f(w.Statistics.MinValue), f(g.Statistics.MinValue))
				require.Equal(t, f(w.Statistics.MaxValue), f(g.Statistics.MaxValue))
			default:
				require.Equal(t, w.Statistics.MinValue, g.Statistics.MinValue)
				require.Equal(t, w.Statistics.MaxValue, g.Statistics.MaxValue)
			}
		}
	}
	checkStructure(t, got)
}

func nanBound(m format.ColumnMetaData) bool {
	f := func(b []byte) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b)) }
	return m.Type == format.Double && len(m.Statistics.MinValue) == 8 && (math.IsNaN(f(m.Statistics.MinValue)) || math.IsNaN(f(m.Statistics.MaxValue)))
}

func fileMeta(t testing.TB, path string) *format.FileMetaData {
	t.Helper()
	f, err := pq.OpenFile(readerAt(t, path))
	require.NoError(t, err)
	return f.Metadata()
}

// The encoder's files hold exactly the rows of the reference writer's
// (parquet-go's Rows), with the same schema, row groups, encodings,
// codecs and statistics, for every kind of point, attribute and value,
// compact or plain, with many series, several row groups and pages,
// and every codec.
func TestDifferential(t *testing.T) {
	defer func(p int) { pageRows = p }(pageRows)
	for _, tc := range []struct {
		name             string
		attrs            []string
		compression      string
		group, page      int
		ids, series      int
		bufs, perBuf     int
		compact, plain   bool
		appendUnit, disp bool
	}{
		{"compact, default columns", []string{"metric_id", "run"}, "zstd", 1000, 300, 20, 40, 12, 300, true, false, true, true},
		{"plain, default columns", []string{"metric_id", "run"}, "zstd", 1000, 300, 20, 40, 12, 300, false, true, true, true},
		{"mixed, snappy", []string{"metric_id", "run"}, "snappy", 700, 128, 20, 40, 12, 300, true, true, true, false},
		{"gzip, no attribute column", nil, "gzip", 500, 1000, 5, 10, 6, 200, true, true, false, false},
		{"lz4, every attribute a column", []string{"run", "cpu", "x", "ok", "cores", "note", "é", "metric_id", "zz"}, "lz4", 1500, 512, 20, 40, 8, 400, true, true, true, true},
		{"none, one row a group", []string{"metric_id"}, "none", 1, 1, 3, 5, 3, 10, true, true, true, true},
		{"many series: dictionaries past 255 values, the series cache refilled", []string{"metric_id", "run"}, "zstd", 20000, 4096, 3000, 6000, 6, 3000, true, true, true, true},
		{"one page a group", []string{"metric_id", "run"}, "zstd", 2048, 1 << 20, 50, 100, 10, 500, true, true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pageRows = tc.page
			g, reg := newGen(t, uint64(len(tc.name)), tc.ids)
			cfg := testConfig(t.TempDir())
			cfg.AttributeColumns = tc.attrs
			cfg.Compression = tc.compression
			cfg.RowGroupRows = int64(tc.group)
			cfg.AppendUnitToMetricName, cfg.UseUnitDisplayName = tc.appendUnit, tc.disp
			got, want := writeBoth(t, cfg, reg, g.buffers(tc.bufs, tc.perBuf, tc.series, tc.compact, tc.plain))
			compareFiles(t, got, want)
			t.Logf("%d rows, %d row groups", fileMeta(t, got).NumRows, len(fileMeta(t, got).RowGroups))
		})
	}
}

// byteSource is a rand.Source drawing from fuzz input, so that the
// fuzzer's changes to the input change the points bit by bit; then, once
// the input is used up, from a PCG (a source of zeros would never end
// rand's rejection loops).
type byteSource struct {
	b    []byte
	rest rand.PCG
}

func (s *byteSource) Uint64() uint64 {
	if len(s.b) == 0 {
		return s.rest.Uint64()
	}
	var x [8]byte
	n := copy(x[:], s.b)
	s.b = s.b[n:]
	return binary.LittleEndian.Uint64(x[:])
}

// FuzzWriter writes points drawn from the input, with a configuration
// drawn from it too (columns, codec, row group and page sizes), through
// the encoder and through the reference writer: the rows read back must
// be the same, and the file well formed.
func FuzzWriter(f *testing.F) {
	for _, seed := range [][]byte{nil, []byte("alumet"), make([]byte, 64), []byte(strings.Repeat("\xff\x01\x80", 100))} {
		f.Add(seed)
	}
	f.Fuzz(fuzzBody)
}

func fuzzBody(t *testing.T, data []byte) {
	{
		defer func(p int) { pageRows = p }(pageRows)
		src := &byteSource{b: data, rest: *rand.NewPCG(uint64(len(data)), 1)}
		rng := rand.New(src)
		g, reg := newGen(t, 0, 1+rng.IntN(300))
		g.rng = rng
		cfg := testConfig(t.TempDir())
		all := []string{"metric_id", "run", "cpu", "x", "note", "é"}
		cfg.AttributeColumns = nil
		for _, a := range all {
			if rng.IntN(2) == 0 {
				cfg.AttributeColumns = append(cfg.AttributeColumns, a)
			}
		}
		cfg.Compression = codecs[rng.IntN(len(codecs))]
		cfg.RowGroupRows = int64(1 + rng.IntN(100))
		pageRows = 1 + rng.IntN(50)
		compact := rng.IntN(3)
		// Up to a few hundred rows: enough for several row groups and
		// pages, few enough for many runs a second.
		bufs := g.buffers(1+rng.IntN(3), rng.IntN(60), 1+rng.IntN(30), compact > 0, compact < 2)
		got, want := writeBoth(t, cfg, reg, bufs)
		if fileMeta(t, want).NumRows == 0 {
			return
		}
		compareFiles(t, got, want)
	}
}

// Dictionaries past maxDictBytes end their row group early: the rows are
// the same, in more row groups.
func TestDictionaryBound(t *testing.T) {
	defer func(m int) { maxDictBytes = m }(maxDictBytes)
	maxDictBytes = 2000
	for _, compact := range []bool{true, false} {
		t.Run(fmt.Sprint("compact=", compact), func(t *testing.T) {
			reg := measure.NewRegistry()
			id := register(t, reg, "p", measure.Plain(measure.Watt), measure.F64)
			buf := &measure.Buffer{}
			for i := range 3000 {
				s := &measure.Series{Metric: id, Resource: measure.Resource{Kind: "device_id", ID: fmt.Sprintf("node-%d", i%500)}}
				if compact {
					buf.Compact = append(buf.Compact, measure.SeriesPoint{Series: s, Time: int64(i), Value: measure.Float(float64(i))})
				} else {
					buf.Push(measure.Point{Metric: id, Timestamp: time.Unix(0, int64(i)), Value: measure.Float(float64(i)), Resource: s.Resource})
				}
			}
			cfg := testConfig(t.TempDir())
			got, want := writeBoth(t, cfg, reg, []*measure.Buffer{buf})
			require.Equal(t, readGeneric(t, want), readGeneric(t, got))
			checkStructure(t, got)
			md := fileMeta(t, got)
			require.Greater(t, len(md.RowGroups), 10)
			for _, rg := range md.RowGroups[:len(md.RowGroups)-1] {
				// node-N: 4 + 6 to 8 bytes each, a row group ends with the
				// value that passed the bound.
				require.InDelta(t, 2000/11, rg.NumRows, 30)
			}
		})
	}
}

var negZero = math.Copysign(0, -1)
