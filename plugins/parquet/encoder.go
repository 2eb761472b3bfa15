package parquet

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"unsafe"

	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding/plain"
	"github.com/parquet-go/parquet-go/encoding/rle"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// colKind is how a column is stored.
type colKind uint8

const (
	kindDict      colKind = iota // BYTE_ARRAY, RLE_DICTIONARY (required or optional)
	kindTimestamp                // required INT64, DELTA_BINARY_PACKED
	kindValue                    // required DOUBLE, PLAIN
	kindInt                      // optional INT64, PLAIN
)

// Where a dictionary column takes its string from in a series' cells.
const (
	srcMetric = -1 - iota
	srcLate
	// 0…3 are cells.fixed, 4+i the attribute column i.
)

// colSpec is a column of the schema, in its order.
type colSpec struct {
	name     string
	kind     colKind
	optional bool
	// slot is the column's index among the dictionary columns (kindDict)
	// or the integer columns (kindInt): its place in a series' entry.
	slot int
	src  int // kindDict: srcMetric, srcLate, 0…3 fixed, 4+i attribute i; kindInt: the attribute column
}

// columnsOf returns the columns of Schema(attrs, …), in order.
func columnsOf(attrs []string) (cols []colSpec, nDict, nInt int) {
	dict := func(name string, src int, optional bool) {
		cols = append(cols, colSpec{name: name, kind: kindDict, optional: optional, slot: nDict, src: src})
		nDict++
	}
	dict("metric", srcMetric, false)
	cols = append(cols, colSpec{name: "timestamp", kind: kindTimestamp}, colSpec{name: "value", kind: kindValue})
	for i, n := range FixedColumns[colResourceKind:] {
		dict(n, i, false)
	}
	for i, a := range attrs {
		if kindOf(a) == attrInt64 {
			cols = append(cols, colSpec{name: a, kind: kindInt, optional: true, slot: nInt, src: i})
			nInt++
			continue
		}
		dict(a, 4+i, true)
	}
	dict(LateColumn, srcLate, true)
	return cols, nDict, nInt
}

// pageRows is the most rows of a data page: 1 MiB of the 8-byte columns,
// parquet-mr's and Arrow's default page size (parquet-go's is 256 KiB, but
// pages of 1 MiB compress 4 % better). A variable for tests.
var pageRows = 128 * 1024

// maxDictBytes bounds the dictionaries of a row group (their PLAIN bytes,
// every column): past it the row group is written early, so that a page
// stays far below Parquet's 2 GiB limit whatever the strings. A variable
// for tests.
var maxDictBytes = 256 << 20

// dictionary is the dictionary of a string column in a row group: its
// values in the order they came.
type dictionary struct {
	index  map[string]int32
	values []string
}

func (d *dictionary) insert(s string) (idx int32, added bool) {
	if i, ok := d.index[s]; ok {
		return i, false
	}
	i := int32(len(d.values))
	d.index[s] = i
	d.values = append(d.values, s)
	return i, true
}

// sidCount is a series of a page and its number of rows there.
type sidCount struct{ sid, n uint32 }

// encoder holds the rows of the current row group, by series, and writes
// them as column chunks. Per row it keeps the timestamp, the value and
// the series' index in the row group; per series of the row group, the
// dictionary index of each string column (computed once) and its integer
// columns. It is not safe for concurrent use.
type encoder struct {
	cols        []colSpec
	nDict, nInt int
	rgRows      int
	codec       compress.Codec
	compressed  bool // codec is not "none" (data page v2 is_compressed)

	gen   uint32 // the row group's number, for the series caches
	ts    []int64
	vals  []float64
	sid   []uint32
	sdict []int32 // per series of the row group, per dictionary column: its index, -1 for null
	sint  []int64 // per series, per integer column
	sok   []bool  // per series, per integer column: not null
	dicts []dictionary
	// dictBytes is the PLAIN size of the dictionaries; full is set when it
	// passed maxDictBytes.
	dictBytes int
	full      bool

	series seriesCache

	// scratch of the row-group encoding, reused
	cnt      []uint32   // per series: rows in the current page
	pgSeries []sidCount // per page, its series (pgOff delimits them)
	pgOff    []int
	idx      []int32
	levels   []uint8
	i64      []int64
	raw      []byte // a page's values before compression
	packed   []byte // RLE/bit-packed indices
	lv       []byte // a page's encoded definition levels
	out      []byte // a page's values compressed
	dict     []byte
	shared   [][]byte // per page, the compressed indices shared by identity columns
	sharedU  []int    // their uncompressed sizes
	sharedOK []bool
}

func newEncoder(rb *rowBuilder, attrs []string, compression string, rgRows int) *encoder {
	// gen starts at 1: a zero gen is no row group's (new cache entries and slots).
	e := &encoder{codec: writerCodec(compression), compressed: compression != "none", gen: 1}
	e.cols, e.nDict, e.nInt = columnsOf(attrs)
	e.rgRows = rgRows
	e.dicts = make([]dictionary, e.nDict)
	for i := range e.dicts {
		e.dicts[i].index = map[string]int32{}
	}
	e.series.init(rb)
	return e
}

func (e *encoder) rows() int { return len(e.ts) }

// grow makes room for n more rows. The row slices double, up to a row
// group (append's growth of large slices, 1.25 times, would copy them
// five times over).
func (e *encoder) grow(n int) {
	if len(e.ts)+n <= cap(e.ts) {
		return
	}
	c := min(max(2*cap(e.ts), len(e.ts)+n, 1024), max(e.rgRows, len(e.ts)+n))
	e.ts = append(make([]int64, 0, c), e.ts...)
	e.vals = append(make([]float64, 0, c), e.vals...)
	e.sid = append(make([]uint32, 0, c), e.sid...)
}

// addSeries adds a series of the row group with cells c and returns its index.
func (e *encoder) addSeries(c *cells) uint32 {
	sid := uint32(len(e.sdict) / e.nDict)
	for i := range e.cols {
		col := &e.cols[i]
		switch col.kind {
		case kindDict:
			s, ok := c.dictCell(col.src)
			idx := int32(-1)
			if ok {
				var added bool
				if idx, added = e.dicts[col.slot].insert(s); added {
					e.dictBytes += 4 + len(s)
				}
			}
			e.sdict = append(e.sdict, idx)
		case kindInt:
			a := c.attrs[col.src]
			e.sint = append(e.sint, a.i64)
			e.sok = append(e.sok, a.ok)
		}
	}
	if e.dictBytes > maxDictBytes {
		e.full = true
	}
	return sid
}

// dictCell is the string of a dictionary column of source src, false for null.
func (c *cells) dictCell(src int) (string, bool) {
	switch {
	case src == srcMetric:
		return c.metric, true
	case src == srcLate:
		return c.late, c.hasLate
	case src < 4:
		return c.fixed[src], true
	default:
		a := c.attrs[src-4]
		return a.str, a.ok
	}
}

// reset drops the rows and series of the row group.
func (e *encoder) reset() {
	if e.gen++; e.gen == 0 {
		e.gen = 1
	}
	e.ts, e.vals, e.sid = e.ts[:0], e.vals[:0], e.sid[:0]
	e.sdict, e.sint, e.sok = e.sdict[:0], e.sint[:0], e.sok[:0]
	for i := range e.dicts {
		clear(e.dicts[i].index)
		clear(e.dicts[i].values) // the strings are not kept alive
		e.dicts[i].values = e.dicts[i].values[:0]
	}
	e.dictBytes, e.full = 0, false
}

// flush writes the buffered rows as a row group of f and resets them.
func (e *encoder) flush(f *fileWriter) error {
	defer e.reset()
	n := len(e.ts)
	if n == 0 {
		return nil
	}
	e.pageSeries()
	rg := format.RowGroup{NumRows: int64(n), FileOffset: f.off, Columns: make([]format.ColumnChunk, len(e.cols))}
	cis := make([]format.ColumnIndex, len(e.cols))
	ois := make([]format.OffsetIndex, len(e.cols))
	np := e.pages()
	e.sharedOK = slices.Grow(e.sharedOK[:0], np)[:np]
	clear(e.sharedOK)
	for len(e.shared) < np {
		e.shared = append(e.shared, nil)
		e.sharedU = append(e.sharedU, 0)
	}
	for i := range e.cols {
		cw := chunkWriter{e: e, f: f, col: &e.cols[i]}
		var err error
		switch cw.col.kind {
		case kindDict:
			err = cw.dictColumn()
		case kindTimestamp:
			err = cw.timestampColumn()
		case kindValue:
			err = cw.valueColumn()
		case kindInt:
			err = cw.intColumn()
		}
		if err != nil {
			return err
		}
		md := cw.meta(n)
		rg.Columns[i] = format.ColumnChunk{MetaData: md}
		rg.TotalByteSize += md.TotalUncompressedSize
		rg.TotalCompressedSize += md.TotalCompressedSize
		cw.ci.BoundaryOrder = boundaryOrder(md.Type, cw.ci.NullPages, cw.ci.MinValues, cw.ci.MaxValues)
		cis[i], ois[i] = cw.ci, cw.oi
	}
	f.addRowGroup(rg, cis, ois)
	return nil
}

// pages returns the number of data pages of the row group.
func (e *encoder) pages() int { return (len(e.ts) + pageRows - 1) / pageRows }

// page returns the rows of page p.
func (e *encoder) page(p int) (lo, hi int) {
	return p * pageRows, min((p+1)*pageRows, len(e.ts))
}

// pageSeries lists the series of each page with their number of rows:
// what the string and integer columns' pages need, whatever their number
// of rows.
func (e *encoder) pageSeries() {
	nSeries := len(e.sdict) / e.nDict
	if cap(e.cnt) < nSeries {
		e.cnt = make([]uint32, nSeries)
	}
	cnt := e.cnt[:nSeries]
	e.pgSeries, e.pgOff = e.pgSeries[:0], append(e.pgOff[:0], 0)
	for p := range e.pages() {
		lo, hi := e.page(p)
		start := len(e.pgSeries)
		for _, s := range e.sid[lo:hi] {
			if cnt[s] == 0 {
				e.pgSeries = append(e.pgSeries, sidCount{sid: s})
			}
			cnt[s]++
		}
		for i := start; i < len(e.pgSeries); i++ {
			sc := &e.pgSeries[i]
			sc.n, cnt[sc.sid] = cnt[sc.sid], 0
		}
		e.pgOff = append(e.pgOff, len(e.pgSeries))
	}
}

// chunkWriter writes one column chunk of a row group.
type chunkWriter struct {
	e   *encoder
	f   *fileWriter
	col *colSpec

	md       format.ColumnMetaData
	ci       format.ColumnIndex
	oi       format.OffsetIndex
	dataOff  int64
	dictOff  int64
	nulls    int64
	minV     []byte // row-group bounds, nil without a non-null value
	maxV     []byte
	nDataPgs int32
}

// meta returns the column chunk's metadata, its pages written.
func (cw *chunkWriter) meta(rows int) format.ColumnMetaData {
	col := cw.col
	md := &cw.md
	md.PathInSchema = []string{col.name}
	md.Codec = cw.e.codec.CompressionCodec()
	md.NumValues = int64(rows)
	md.DataPageOffset = cw.dataOff
	md.Statistics = format.Statistics{NullCount: cw.nulls, MinValue: cw.minV, MaxValue: cw.maxV}
	switch col.kind {
	case kindDict:
		md.Type = format.ByteArray
		md.DictionaryPageOffset = cw.dictOff
		md.Encoding = []format.Encoding{format.Plain, format.RLEDictionary}
		if col.optional {
			md.Encoding = []format.Encoding{format.Plain, format.RLE, format.RLEDictionary}
		}
		md.EncodingStats = []format.PageEncodingStats{
			{PageType: format.DictionaryPage, Encoding: format.Plain, Count: 1},
			{PageType: format.DataPageV2, Encoding: format.RLEDictionary, Count: cw.nDataPgs}}
	case kindTimestamp:
		md.Type = format.Int64
		md.Encoding = []format.Encoding{format.DeltaBinaryPacked}
		md.EncodingStats = []format.PageEncodingStats{{PageType: format.DataPageV2, Encoding: format.DeltaBinaryPacked, Count: cw.nDataPgs}}
	case kindValue:
		md.Type = format.Double
		md.Encoding = []format.Encoding{format.Plain}
		md.EncodingStats = []format.PageEncodingStats{{PageType: format.DataPageV2, Encoding: format.Plain, Count: cw.nDataPgs}}
	case kindInt:
		md.Type = format.Int64
		md.Encoding = []format.Encoding{format.Plain, format.RLE}
		md.EncodingStats = []format.PageEncodingStats{{PageType: format.DataPageV2, Encoding: format.Plain, Count: cw.nDataPgs}}
	}
	if col.optional {
		md.SizeStatistics.DefinitionLevelHistogram = []int64{cw.nulls, int64(rows) - cw.nulls}
	}
	return *md
}

// compress compresses src into e.out.
func (cw *chunkWriter) compress(src []byte) ([]byte, error) {
	out, err := cw.e.codec.Encode(cw.e.out[:0], src)
	if err != nil {
		return nil, fmt.Errorf("%s compression: %w", cw.e.codec, err)
	}
	cw.e.out = out
	return out, nil
}

// dataPage writes a data page (v2) of rows rows, nulls of them null.
// levels are the encoded definition levels (nil for a required column),
// data the values, uncompressed bytes of them before compression. min and
// max are the page's bounds in the column index, statMin and statMax
// those of its statistics (nil when left out).
func (cw *chunkWriter) dataPage(enc format.Encoding, rows, nulls int, levels, data []byte, uncompressed int, min, max, statMin, statMax []byte) error {
	st := format.Statistics{NullCount: int64(nulls), MinValue: statMin, MaxValue: statMax}
	if cw.col.kind != kindDict {
		// The deprecated fields too, as parquet-go: their signed order is
		// the numbers' order.
		st.Min, st.Max = statMin, statMax
	}
	h := format.PageHeader{Type: format.DataPageV2}
	h.DataPageHeaderV2.Set(format.DataPageHeaderV2{
		NumValues:                  int32(rows),
		NumNulls:                   int32(nulls),
		NumRows:                    int32(rows),
		Encoding:                   enc,
		DefinitionLevelsByteLength: int32(len(levels)),
		IsCompressed:               thrift.New(cw.e.compressed),
		Statistics:                 st,
	})
	off := cw.f.off
	if cw.nDataPgs == 0 {
		cw.dataOff = off
	}
	size, header, err := cw.f.writePage(&h, uncompressed, levels, data)
	if err != nil {
		return err
	}
	cw.md.TotalCompressedSize += int64(size)
	cw.md.TotalUncompressedSize += int64(header) + int64(h.UncompressedPageSize)
	cw.oi.PageLocations = append(cw.oi.PageLocations, format.PageLocation{
		Offset: off, CompressedPageSize: int32(size), FirstRowIndex: int64(cw.nDataPgs) * int64(pageRows)})
	null := nulls == rows
	if null {
		min, max = []byte{}, []byte{}
	}
	cw.ci.NullPages = append(cw.ci.NullPages, null)
	cw.ci.NullCounts = append(cw.ci.NullCounts, int64(nulls))
	cw.ci.MinValues = append(cw.ci.MinValues, min)
	cw.ci.MaxValues = append(cw.ci.MaxValues, max)
	if cw.col.optional {
		cw.ci.DefinitionLevelHistogram = append(cw.ci.DefinitionLevelHistogram, int64(nulls), int64(rows-nulls))
	}
	cw.nulls += int64(nulls)
	cw.nDataPgs++
	return nil
}

// timestampColumn writes the timestamps, delta-encoded.
func (cw *chunkWriter) timestampColumn() error {
	e := cw.e
	var lo64, hi64 int64
	for p := range e.pages() {
		lo, hi := e.page(p)
		ts := e.ts[lo:hi]
		mn, mx := ts[0], ts[0]
		for _, t := range ts[1:] {
			mn, mx = min(mn, t), max(mx, t)
		}
		if p == 0 {
			lo64, hi64 = mn, mx
		}
		lo64, hi64 = min(lo64, mn), max(hi64, mx)
		// At most 8 bytes a delta, and the headers: grown once.
		raw := appendDeltaInt64(slices.Grow(e.raw[:0], 9*len(ts)+64), ts)
		e.raw = raw
		out, err := cw.compress(raw)
		if err != nil {
			return err
		}
		b := int64Bytes(mn, mx)
		if err := cw.dataPage(format.DeltaBinaryPacked, len(ts), 0, nil, out, len(raw), b[:8], b[8:], b[:8], b[8:]); err != nil {
			return err
		}
	}
	b := int64Bytes(lo64, hi64)
	cw.minV, cw.maxV = b[:8], b[8:]
	return nil
}

func int64Bytes(lo, hi int64) []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint64(b, uint64(lo))
	binary.LittleEndian.PutUint64(b[8:], uint64(hi))
	return b
}

// float64Bytes returns the bounds lo and hi, a zero min as -0 and a zero
// max as +0, as the format asks of writers (readers cannot tell which
// zeros a page has).
func float64Bytes(lo, hi float64) []byte {
	if lo == 0 {
		lo = math.Copysign(0, -1)
	}
	if hi == 0 {
		hi = 0
	}
	b := make([]byte, 16)
	binary.LittleEndian.PutUint64(b, math.Float64bits(lo))
	binary.LittleEndian.PutUint64(b[8:], math.Float64bits(hi))
	return b
}

// valueColumn writes the values, PLAIN. Bounds leave NaN out; a page of
// NaN only has NaN bounds in the column index (parquet-go's) and none in
// its statistics.
func (cw *chunkWriter) valueColumn() error {
	e := cw.e
	rgLo, rgHi := math.Inf(1), math.Inf(-1)
	for p := range e.pages() {
		lo, hi := e.page(p)
		vals := e.vals[lo:hi]
		mn, mx := math.Inf(1), math.Inf(-1)
		for _, v := range vals {
			if v < mn {
				mn = v
			}
			if v > mx {
				mx = v
			}
		}
		raw := plainDoubles(&e.raw, vals)
		out, err := cw.compress(raw)
		if err != nil {
			return err
		}
		var ciB, stB []byte
		if mn <= mx {
			ciB = float64Bytes(mn, mx)
			stB = ciB
			rgLo, rgHi = min(rgLo, mn), max(rgHi, mx)
		} else {
			ciB = float64Bytes(math.NaN(), math.NaN())
		}
		if err := cw.dataPage(format.Plain, len(vals), 0, nil, out, len(raw), ciB[:8], ciB[8:], sub(stB, 0, 8), sub(stB, 8, 16)); err != nil {
			return err
		}
	}
	if rgLo <= rgHi {
		b := float64Bytes(rgLo, rgHi)
		cw.minV, cw.maxV = b[:8], b[8:]
	}
	return nil
}

// sub is b[i:j], nil for a nil b.
func sub(b []byte, i, j int) []byte {
	if b == nil {
		return nil
	}
	return b[i:j]
}

// levelRun appends a run of n definition levels v (bit width 1).
func levelRun(dst []byte, n int, v byte) []byte {
	return append(binary.AppendUvarint(dst, uint64(n)<<1), v)
}

// definitionLevels encodes the definition levels of rows [lo, hi) of an
// optional column, whose series are null when null(sid).
func (cw *chunkWriter) definitionLevels(lo, hi, nulls int, null func(sid uint32) bool) ([]byte, error) {
	e := cw.e
	n := hi - lo
	switch nulls {
	case 0:
		e.lv = levelRun(e.lv[:0], n, 1)
		return e.lv, nil
	case n:
		e.lv = levelRun(e.lv[:0], n, 0)
		return e.lv, nil
	}
	lv := slices.Grow(e.levels[:0], n)[:n]
	for i, s := range e.sid[lo:hi] {
		lv[i] = 1
		if null(s) {
			lv[i] = 0
		}
	}
	e.levels = lv
	out, err := (&rle.Encoding{BitWidth: 1}).EncodeLevels(e.lv[:0], lv)
	if err != nil {
		return nil, err
	}
	e.lv = out
	return out, nil
}

// intColumn writes an optional integer attribute column, PLAIN.
func (cw *chunkWriter) intColumn() error {
	e := cw.e
	slot := cw.col.slot
	at := func(sid uint32) int { return int(sid)*e.nInt + slot }
	null := func(sid uint32) bool { return !e.sok[at(sid)] }
	var rgLo, rgHi int64
	rgAny := false
	for p := range e.pages() {
		lo, hi := e.page(p)
		nulls := 0
		var mn, mx int64
		any := false
		for _, sc := range e.pgSeries[e.pgOff[p]:e.pgOff[p+1]] {
			if null(sc.sid) {
				nulls += int(sc.n)
				continue
			}
			v := e.sint[at(sc.sid)]
			if !any {
				mn, mx, any = v, v, true
			}
			mn, mx = min(mn, v), max(mx, v)
		}
		levels, err := cw.definitionLevels(lo, hi, nulls, null)
		if err != nil {
			return err
		}
		vals := e.i64[:0]
		if nulls < hi-lo {
			for _, s := range e.sid[lo:hi] {
				if !null(s) {
					vals = append(vals, e.sint[at(s)])
				}
			}
		}
		e.i64 = vals
		raw, err := (&plain.Encoding{}).EncodeInt64(e.raw[:0], vals)
		if err != nil {
			return err
		}
		e.raw = raw
		out, err := cw.compress(raw)
		if err != nil {
			return err
		}
		var b []byte
		if any {
			b = int64Bytes(mn, mx)
			if !rgAny {
				rgLo, rgHi, rgAny = mn, mx, true
			}
			rgLo, rgHi = min(rgLo, mn), max(rgHi, mx)
		}
		if err := cw.dataPage(format.Plain, hi-lo, nulls, levels, out, len(raw), sub(b, 0, 8), sub(b, 8, 16), sub(b, 0, 8), sub(b, 8, 16)); err != nil {
			return err
		}
	}
	if rgAny {
		b := int64Bytes(rgLo, rgHi)
		cw.minV, cw.maxV = b[:8], b[8:]
	}
	return nil
}

// maxStatBytes bounds a string statistic: a longer min or max is left out
// of the statistics (as Arrow does past 4 KiB), so that long JSON values
// do not swell the footer. The column index truncates them instead.
const maxStatBytes = 4096

// columnIndexBytes is how long a string bound of the column index may be,
// parquet-go's default (truncated beyond, as the format allows).
const columnIndexBytes = 16

// dictColumn writes a string column: its dictionary page, then data pages
// of RLE/bit-packed dictionary indices.
func (cw *chunkWriter) dictColumn() error {
	e := cw.e
	slot := cw.col.slot
	d := &e.dicts[slot]
	at := func(sid uint32) int32 { return e.sdict[int(sid)*e.nDict+slot] }
	null := func(sid uint32) bool { return at(sid) < 0 }

	// The dictionary page: PLAIN byte arrays, and the row group's bounds.
	raw := e.dict[:0]
	minI, maxI := -1, -1
	for i, s := range d.values {
		raw = plain.AppendByteArrayString(raw, s)
		if minI < 0 || s < d.values[minI] {
			minI = i
		}
		if maxI < 0 || s > d.values[maxI] {
			maxI = i
		}
	}
	e.dict = raw
	out, err := cw.compress(raw)
	if err != nil {
		return err
	}
	h := format.PageHeader{Type: format.DictionaryPage}
	h.DictionaryPageHeader.Set(format.DictionaryPageHeader{NumValues: int32(len(d.values)), Encoding: format.Plain})
	cw.dictOff = cw.f.off
	size, header, err := cw.f.writePage(&h, len(raw), nil, out)
	if err != nil {
		return err
	}
	cw.md.TotalCompressedSize += int64(size)
	cw.md.TotalUncompressedSize += int64(header) + int64(len(raw))
	if minI >= 0 && len(d.values[minI]) <= maxStatBytes && len(d.values[maxI]) <= maxStatBytes {
		cw.minV, cw.maxV = []byte(d.values[minI]), []byte(d.values[maxI])
	}

	bitWidth := 0
	if len(d.values) > 1 {
		bitWidth = bits.Len32(uint32(len(d.values) - 1))
	}
	// identity: the index of every series is its number (each series has
	// a value of its own, in the order they came), so that the indices are
	// the rows' series numbers, encoded once for every such column.
	identity := true
	for s := range len(e.sdict) / e.nDict {
		if at(uint32(s)) != int32(s) {
			identity = false
			break
		}
	}
	for p := range e.pages() {
		lo, hi := e.page(p)
		nulls := 0
		first, constant := int32(-1), true
		pMin, pMax := int32(-1), int32(-1)
		for _, sc := range e.pgSeries[e.pgOff[p]:e.pgOff[p+1]] {
			i := at(sc.sid)
			if i < 0 {
				nulls += int(sc.n)
				continue
			}
			switch {
			case first < 0:
				first, pMin, pMax = i, i, i
				continue
			case i != first:
				constant = false
			}
			if i != pMin && d.values[i] < d.values[pMin] {
				pMin = i
			}
			if i != pMax && d.values[i] > d.values[pMax] {
				pMax = i
			}
		}
		var levels []byte
		if cw.col.optional {
			if levels, err = cw.definitionLevels(lo, hi, nulls, null); err != nil {
				return err
			}
		}
		var data []byte
		var rawLen int
		switch {
		case nulls == hi-lo:
			e.raw = append(e.raw[:0], byte(bitWidth))
			data, rawLen = e.raw, 1
			if data, err = cw.compress(data); err != nil {
				return err
			}
		case constant:
			e.raw = binary.AppendUvarint(append(e.raw[:0], byte(bitWidth)), uint64(hi-lo-nulls)<<1)
			for b := 0; b < (bitWidth+7)/8; b++ {
				e.raw = append(e.raw, byte(uint32(first)>>(8*b)))
			}
			rawLen = len(e.raw)
			if data, err = cw.compress(e.raw); err != nil {
				return err
			}
		case identity && e.sharedOK[p]:
			data, rawLen = e.shared[p], e.sharedU[p]
		default:
			var idx []int32
			if identity {
				idx = unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(e.sid[lo:hi]))), hi-lo)
			} else {
				idx = e.idx[:0]
				for _, s := range e.sid[lo:hi] {
					if i := at(s); i >= 0 {
						idx = append(idx, i)
					}
				}
				e.idx = idx
			}
			packed, err := (&rle.Encoding{BitWidth: bitWidth}).EncodeInt32(e.packed[:0], idx)
			if err != nil {
				return err
			}
			e.packed = packed
			e.raw = append(append(e.raw[:0], byte(bitWidth)), packed...)
			rawLen = len(e.raw)
			if data, err = cw.compress(e.raw); err != nil {
				return err
			}
			if identity {
				e.shared[p] = append(e.shared[p][:0], data...)
				e.sharedU[p], e.sharedOK[p] = rawLen, true
			}
		}
		var ciMin, ciMax, stMin, stMax []byte
		if pMin >= 0 {
			mn, mx := d.values[pMin], d.values[pMax]
			ciMin, ciMax = truncMin(mn), truncMax(mx)
			if len(mn) <= maxStatBytes && len(mx) <= maxStatBytes {
				stMin, stMax = []byte(mn), []byte(mx)
			}
		}
		if err := cw.dataPage(format.RLEDictionary, hi-lo, nulls, levels, data, rawLen, ciMin, ciMax, stMin, stMax); err != nil {
			return err
		}
	}
	return nil
}

// truncMin is a lower bound of s of at most columnIndexBytes bytes: its prefix.
func truncMin(s string) []byte {
	if len(s) > columnIndexBytes {
		s = s[:columnIndexBytes]
	}
	return []byte(s)
}

// truncMax is an upper bound of s of at most columnIndexBytes bytes: its
// prefix with the last byte incremented (carrying), or s whole when no
// such prefix exists (all 0xff).
func truncMax(s string) []byte {
	b := []byte(s)
	if len(b) <= columnIndexBytes {
		return b
	}
	b = b[:columnIndexBytes]
	for i := len(b) - 1; i >= 0; i-- {
		b[i]++
		if b[i] != 0 {
			return b[:i+1]
		}
	}
	return []byte(s)
}

// boundaryOrder says whether the non-null pages' bounds of a column index
// ascend or descend, for readers' binary searches.
func boundaryOrder(t format.Type, null []bool, mins, maxs [][]byte) format.BoundaryOrder {
	cmp := func(a, b []byte) int {
		switch t {
		case format.Int64:
			x, y := int64(binary.LittleEndian.Uint64(a)), int64(binary.LittleEndian.Uint64(b))
			return compare(x, y)
		case format.Double:
			x, y := math.Float64frombits(binary.LittleEndian.Uint64(a)), math.Float64frombits(binary.LittleEndian.Uint64(b))
			if math.IsNaN(x) || math.IsNaN(y) {
				return 2 // unordered
			}
			return compare(x, y)
		default:
			return bytes.Compare(a, b)
		}
	}
	asc, desc := true, true
	prev := -1
	for i := range null {
		if null[i] {
			continue
		}
		if prev >= 0 {
			a, b := cmp(mins[prev], mins[i]), cmp(maxs[prev], maxs[i])
			if a == 2 || b == 2 {
				return format.Unordered
			}
			asc = asc && a <= 0 && b <= 0
			desc = desc && a >= 0 && b >= 0
		}
		prev = i
	}
	switch {
	case asc:
		return format.Ascending
	case desc:
		return format.Descending
	}
	return format.Unordered
}

func compare[T int64 | float64](x, y T) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// littleEndian: PLAIN values are the machine's bytes.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// plainDoubles returns vals PLAIN: their own bytes on a little-endian
// machine (no copy), else encoded into *buf.
func plainDoubles(buf *[]byte, vals []float64) []byte {
	if littleEndian {
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(vals))), 8*len(vals))
	}
	*buf, _ = (&plain.Encoding{}).EncodeDouble((*buf)[:0], vals)
	return *buf
}
