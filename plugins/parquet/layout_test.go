package parquet

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
	"github.com/stretchr/testify/require"
)

// layout describes the structure of a Parquet file: its metadata, and per
// column chunk the metadata and every page header. It is what a reader
// relies on besides the rows.
func layout(t testing.TB, path string) string {
	t.Helper()
	data, pf := openFile(t, path)
	md := pf.Metadata()
	var sb strings.Builder
	fmt.Fprintf(&sb, "version=%d rows=%d created_by=%q kv=%v orders=%d row_groups=%d\n", md.Version, md.NumRows, md.CreatedBy, md.KeyValueMetadata, len(md.ColumnOrders), len(md.RowGroups))
	for _, el := range md.Schema {
		fmt.Fprintf(&sb, "schema %+v\n", el)
	}
	cis, ois := pf.ColumnIndexes(), pf.OffsetIndexes()
	for i, rg := range md.RowGroups {
		fmt.Fprintf(&sb, "row group %d: rows=%d bytes=%d compressed=%d file_offset=%d ordinal=%d sorting=%v\n", i, rg.NumRows, rg.TotalByteSize, rg.TotalCompressedSize, rg.FileOffset, rg.Ordinal, rg.SortingColumns)
		for j, cc := range rg.Columns {
			m := cc.MetaData
			fmt.Fprintf(&sb, "  column %v: type=%v enc=%v codec=%v values=%d size=%d/%d data=%d dict=%d index=%d file_offset=%d\n",
				m.PathInSchema, m.Type, m.Encoding, m.Codec, m.NumValues, m.TotalCompressedSize, m.TotalUncompressedSize, m.DataPageOffset, m.DictionaryPageOffset, m.IndexPageOffset, cc.FileOffset)
			fmt.Fprintf(&sb, "    stats=%s encstats=%v size_stats=%+v kv=%v bloom=%d/%d\n", stats(m.Statistics), m.EncodingStats, m.SizeStatistics, m.KeyValueMetadata, m.BloomFilterOffset, m.BloomFilterLength)
			fmt.Fprintf(&sb, "    column_index=%d/%d offset_index=%d/%d\n", cc.ColumnIndexOffset, cc.ColumnIndexLength, cc.OffsetIndexOffset, cc.OffsetIndexLength)
			if k := i*len(rg.Columns) + j; k < len(cis) {
				ci := cis[k]
				fmt.Fprintf(&sb, "    ci: nulls=%v min=%q max=%q order=%v null_counts=%v rep=%v def=%v\n", ci.NullPages, ci.MinValues, ci.MaxValues, ci.BoundaryOrder, ci.NullCounts, ci.RepetitionLevelHistogram, ci.DefinitionLevelHistogram)
			}
			if k := i*len(rg.Columns) + j; k < len(ois) {
				fmt.Fprintf(&sb, "    oi: %+v unenc=%v\n", ois[k].PageLocations, ois[k].UnencodedByteArrayDataBytes)
			}
			start := m.DataPageOffset
			if m.DictionaryPageOffset != 0 {
				start = m.DictionaryPageOffset
			}
			chunk := data[start : start+m.TotalCompressedSize]
			for len(chunk) > 0 {
				r := new(thrift.CompactProtocol).NewReaderFromBytes(chunk)
				var h format.PageHeader
				require.NoError(t, thrift.NewDecoder(r).Decode(&h))
				n := r.BytesRead()
				fmt.Fprintf(&sb, "    page type=%v size=%d/%d header=%d crc=%d", h.Type, h.CompressedPageSize, h.UncompressedPageSize, n, h.CRC)
				if d, ok := h.DictionaryPageHeader.Get(); ok {
					fmt.Fprintf(&sb, " dict{values=%d enc=%v sorted=%v}", d.NumValues, d.Encoding, d.IsSorted)
				}
				if d, ok := h.DataPageHeaderV2.Get(); ok {
					fmt.Fprintf(&sb, " v2{values=%d nulls=%d rows=%d enc=%v def=%d rep=%d compressed=%v stats=%s}", d.NumValues, d.NumNulls, d.NumRows, d.Encoding, d.DefinitionLevelsByteLength, d.RepetitionLevelsByteLength, d.IsCompressed, stats(d.Statistics))
				}
				if d, ok := h.DataPageHeader.Get(); ok {
					fmt.Fprintf(&sb, " v1{values=%d enc=%v stats=%s}", d.NumValues, d.Encoding, stats(d.Statistics))
				}
				sb.WriteString("\n")
				chunk = chunk[n+int(h.CompressedPageSize):]
			}
		}
	}
	return sb.String()
}

func stats(s format.Statistics) string {
	return fmt.Sprintf("{min=%q max=%q nulls=%d distinct=%d min_value=%q max_value=%q}", s.Min, s.Max, s.NullCount, s.DistinctCount, s.MinValue, s.MaxValue)
}

// TestLayoutDump prints the layout of $ALUMET_PARQUET_LAYOUT (a tool for
// looking at files, not a check).
func TestLayoutDump(t *testing.T) {
	path := os.Getenv("ALUMET_PARQUET_LAYOUT")
	if path == "" {
		t.Skip("set ALUMET_PARQUET_LAYOUT to a file")
	}
	fmt.Print(layout(t, path))
}
