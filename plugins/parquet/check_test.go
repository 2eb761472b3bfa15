package parquet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"testing"

	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
	"github.com/stretchr/testify/require"
)

// readGeneric reads every row of a Parquet file with parquet-go, whatever
// its schema, each cell in a canonical text form (floats by their bits,
// so that NaN equals NaN and -0 does not equal 0).
func readGeneric(t testing.TB, path string) [][]string {
	t.Helper()
	rows := readValues(t, path)
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = make([]string, len(r))
		for j, v := range r {
			out[i][j] = canonical(v)
		}
	}
	return out
}

func canonical(v pq.Value) string {
	switch {
	case v.IsNull():
		return "null"
	case v.Kind() == pq.Int64:
		return fmt.Sprintf("i:%d", v.Int64())
	case v.Kind() == pq.Double:
		return fmt.Sprintf("d:%016x", math.Float64bits(v.Double()))
	case v.Kind() == pq.ByteArray:
		return fmt.Sprintf("b:%q", v.ByteArray())
	}
	return fmt.Sprintf("?%v", v)
}

// readValues reads every row of a file with parquet-go.
func readValues(t testing.TB, path string) []pq.Row {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	r := pq.NewReader(f)
	defer r.Close()
	var rows []pq.Row
	buf := make([]pq.Row, 64)
	for {
		n, err := r.ReadRows(buf)
		for _, row := range buf[:n] {
			rows = append(rows, row.Clone())
		}
		if errors.Is(err, io.EOF) {
			return rows
		}
		require.NoError(t, err)
	}
}

// openFile returns the bytes of the Parquet file at path and the file
// opened by parquet-go (closed at the end of the test).
func openFile(t testing.TB, path string) ([]byte, *pq.File) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	f, err := os.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	pf, err := pq.OpenFile(f, int64(len(data)))
	require.NoError(t, err)
	return data, pf
}

// checkStructure checks what a reader relies on besides the rows, against
// the rows parquet-go reads back: per row group and column chunk, the
// metadata (values, sizes, offsets, encodings, statistics), every page
// header (sizes, CRC, rows, nulls, statistics), the column index (null
// pages and counts, bounds, boundary order) and the offset index.
func checkStructure(t testing.TB, path string) {
	t.Helper()
	data, pf := openFile(t, path)
	require.Equal(t, magic, string(data[:4]))
	require.Equal(t, magic, string(data[len(data)-4:]))
	md := pf.Metadata()
	rows := readValues(t, path)
	require.Equal(t, int64(len(rows)), md.NumRows)
	require.Equal(t, createdBy(), md.CreatedBy)
	leaves := md.Schema[1:]
	require.Len(t, md.ColumnOrders, len(leaves))
	cis, ois := pf.ColumnIndexes(), pf.OffsetIndexes()
	require.Len(t, cis, len(md.RowGroups)*len(leaves))
	first := 0
	for i, rg := range md.RowGroups {
		require.Equal(t, int16(i), rg.Ordinal)
		require.Len(t, rg.Columns, len(leaves))
		var total, compressed int64
		for j, cc := range rg.Columns {
			el := leaves[j]
			m := cc.MetaData
			where := fmt.Sprintf("row group %d column %s", i, el.Name)
			vals := make([]pq.Value, rg.NumRows)
			for r := range vals {
				vals[r] = rows[first+r][j]
			}
			typ, _ := el.Type.Get()
			rep, _ := el.RepetitionType.Get()
			require.Equal(t, typ, m.Type, where)
			require.Equal(t, []string{el.Name}, []string(m.PathInSchema), where)
			require.Equal(t, rg.NumRows, m.NumValues, where)
			dict := m.DictionaryPageOffset != 0
			require.Equal(t, typ == format.ByteArray, dict, where)
			wantEnc := map[format.Type][]format.Encoding{format.ByteArray: {format.Plain, format.RLEDictionary}, format.Double: {format.Plain}}[typ]
			switch {
			case typ == format.Int64 && rep == format.Optional:
				wantEnc = []format.Encoding{format.Plain, format.RLE}
			case typ == format.Int64:
				wantEnc = []format.Encoding{format.DeltaBinaryPacked}
			case typ == format.ByteArray && rep == format.Optional:
				wantEnc = []format.Encoding{format.Plain, format.RLE, format.RLEDictionary}
			}
			require.Equal(t, wantEnc, []format.Encoding(m.Encoding), where)
			lo, hi, nulls, ok := bounds(typ, vals)
			checkStats(t, where, typ, m.Statistics, lo, hi, nulls, ok)
			if rep == format.Optional {
				require.Equal(t, []int64{nulls, rg.NumRows - nulls}, []int64(m.SizeStatistics.DefinitionLevelHistogram), where)
			}

			start := m.DataPageOffset
			if dict {
				start = m.DictionaryPageOffset
			}
			if j == 0 {
				require.Equal(t, start, rg.FileOffset, where)
			}
			chunk := data[start : start+m.TotalCompressedSize]
			ci, oi := cis[i*len(leaves)+j], ois[i*len(leaves)+j]
			var uncompressed int64
			page, row := 0, 0
			for off := start; len(chunk) > 0; {
				r := new(thrift.CompactProtocol).NewReaderFromBytes(chunk)
				var h format.PageHeader
				require.NoError(t, thrift.NewDecoder(r).Decode(&h), where)
				n := r.BytesRead()
				body := chunk[n : n+int(h.CompressedPageSize)]
				require.Equal(t, uint32(h.CRC), crc32.ChecksumIEEE(body), "%s: page CRC", where)
				uncompressed += int64(n) + int64(h.UncompressedPageSize)
				if h.Type == format.DictionaryPage {
					require.True(t, dict && off == m.DictionaryPageOffset, where)
				} else {
					require.Equal(t, format.DataPageV2, h.Type, where)
					if page == 0 {
						require.Equal(t, m.DataPageOffset, off, where)
					}
					loc := oi.PageLocations[page]
					require.Equal(t, format.PageLocation{Offset: off, CompressedPageSize: int32(n) + h.CompressedPageSize, FirstRowIndex: int64(row)}, loc, where)
					v2 := h.DataPageHeaderV2.V
					pv := vals[row : row+int(v2.NumRows)]
					plo, phi, pnulls, pok := bounds(typ, pv)
					pw := fmt.Sprintf("%s page %d", where, page)
					require.Equal(t, v2.NumRows, v2.NumValues, pw)
					require.Equal(t, int32(pnulls), v2.NumNulls, pw)
					checkStats(t, pw, typ, v2.Statistics, plo, phi, pnulls, pok)
					require.Equal(t, pnulls == int64(len(pv)), ci.NullPages[page], pw)
					require.Equal(t, pnulls, ci.NullCounts[page], pw)
					checkIndexBounds(t, pw, typ, ci.MinValues[page], ci.MaxValues[page], pv, pok)
					if rep == format.Optional {
						require.Equal(t, []int64{pnulls, int64(len(pv)) - pnulls}, []int64(ci.DefinitionLevelHistogram[2*page:2*page+2]), pw)
					}
					row += int(v2.NumRows)
					page++
				}
				off += int64(n) + int64(h.CompressedPageSize)
				chunk = chunk[n+int(h.CompressedPageSize):]
			}
			require.Equal(t, int(rg.NumRows), row, where)
			require.Len(t, oi.PageLocations, page, where)
			require.Equal(t, uncompressed, m.TotalUncompressedSize, where)
			checkOrder(t, where, typ, ci)
			total += m.TotalUncompressedSize
			compressed += m.TotalCompressedSize
		}
		require.Equal(t, total, rg.TotalByteSize)
		require.Equal(t, compressed, rg.TotalCompressedSize)
		first += int(rg.NumRows)
	}
}

// bounds returns the min and max of the non-null values (NaN left out),
// the number of nulls, and whether there is a bound.
func bounds(typ format.Type, vals []pq.Value) (lo, hi pq.Value, nulls int64, ok bool) {
	for _, v := range vals {
		if v.IsNull() {
			nulls++
			continue
		}
		if typ == format.Double && math.IsNaN(v.Double()) {
			continue
		}
		if !ok || less(typ, v, lo) {
			lo = v
		}
		if !ok || less(typ, hi, v) {
			hi = v
		}
		ok = true
	}
	return lo, hi, nulls, ok
}

func less(typ format.Type, a, b pq.Value) bool {
	switch typ {
	case format.Int64:
		return a.Int64() < b.Int64()
	case format.Double:
		return a.Double() < b.Double()
	}
	return bytes.Compare(a.ByteArray(), b.ByteArray()) < 0
}

func plainBytes(typ format.Type, v pq.Value) []byte {
	switch typ {
	case format.Int64:
		return binary.LittleEndian.AppendUint64(nil, uint64(v.Int64()))
	case format.Double:
		return binary.LittleEndian.AppendUint64(nil, math.Float64bits(v.Double()))
	}
	return v.ByteArray()
}

// boundBytes is plainBytes of a min (max false) or max: a zero min is
// written -0, a zero max +0.
func boundBytes(typ format.Type, v pq.Value, max bool) []byte {
	if typ == format.Double && v.Double() == 0 {
		z := math.Copysign(0, -1)
		if max {
			z = 0
		}
		return binary.LittleEndian.AppendUint64(nil, math.Float64bits(z))
	}
	return plainBytes(typ, v)
}

// checkStats checks statistics: the null count, and the exact bounds
// when there are (strings longer than maxStatBytes left out).
func checkStats(t testing.TB, where string, typ format.Type, st format.Statistics, lo, hi pq.Value, nulls int64, ok bool) {
	t.Helper()
	require.Equal(t, nulls, st.NullCount, "%s: null count", where)
	if ok && (typ != format.ByteArray || len(lo.ByteArray()) <= maxStatBytes && len(hi.ByteArray()) <= maxStatBytes) {
		require.Equal(t, boundBytes(typ, lo, false), st.MinValue, "%s: min", where)
		require.Equal(t, boundBytes(typ, hi, true), st.MaxValue, "%s: max", where)
		return
	}
	require.Nil(t, st.MinValue, "%s: min", where)
	require.Nil(t, st.MaxValue, "%s: max", where)
}

// checkIndexBounds checks a page's bounds in the column index: exact for
// numbers (NaN for a page of NaN only), a truncated lower and upper bound
// for strings.
func checkIndexBounds(t testing.TB, where string, typ format.Type, min, max []byte, vals []pq.Value, ok bool) {
	t.Helper()
	lo, hi, nulls, _ := bounds(typ, vals)
	switch {
	case nulls == int64(len(vals)):
		require.Empty(t, min, where)
		require.Empty(t, max, where)
	case !ok: // NaN only
		require.True(t, math.IsNaN(math.Float64frombits(binary.LittleEndian.Uint64(min))), where)
		require.True(t, math.IsNaN(math.Float64frombits(binary.LittleEndian.Uint64(max))), where)
	case typ == format.ByteArray:
		l, h := lo.ByteArray(), hi.ByteArray()
		require.LessOrEqual(t, len(min), columnIndexBytes, where)
		require.True(t, bytes.HasPrefix(l, min), "%s: index min %q of %q", where, min, l)
		require.GreaterOrEqual(t, bytes.Compare(max, h), 0, "%s: index max %q of %q", where, max, h)
		if len(h) <= columnIndexBytes {
			require.Equal(t, h, max, where)
		}
	default:
		require.Equal(t, boundBytes(typ, lo, false), min, where)
		require.Equal(t, boundBytes(typ, hi, true), max, where)
	}
}

// checkOrder checks the column index's boundary order against its bounds.
func checkOrder(t testing.TB, where string, typ format.Type, ci format.ColumnIndex) {
	t.Helper()
	if ci.BoundaryOrder == format.Unordered {
		return
	}
	cmp := func(a, b []byte) int {
		switch typ {
		case format.Int64:
			return compare(int64(binary.LittleEndian.Uint64(a)), int64(binary.LittleEndian.Uint64(b)))
		case format.Double:
			return compare(math.Float64frombits(binary.LittleEndian.Uint64(a)), math.Float64frombits(binary.LittleEndian.Uint64(b)))
		}
		return bytes.Compare(a, b)
	}
	prev := -1
	for k := range ci.NullPages {
		if ci.NullPages[k] {
			continue
		}
		if prev >= 0 {
			a, b := cmp(ci.MinValues[prev], ci.MinValues[k]), cmp(ci.MaxValues[prev], ci.MaxValues[k])
			if ci.BoundaryOrder == format.Ascending {
				require.True(t, a <= 0 && b <= 0, "%s: pages %d and %d not ascending", where, prev, k)
			} else {
				require.True(t, a >= 0 && b >= 0, "%s: pages %d and %d not descending", where, prev, k)
			}
		}
		prev = k
	}
}

// readerAt opens path for pq.OpenFile, closed at the end of the test.
func readerAt(t testing.TB, path string) (io.ReaderAt, int64) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	require.NoError(t, err)
	return f, st.Size()
}
