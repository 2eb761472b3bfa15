package parquet

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// magic starts and ends every Parquet file.
const magic = "PAR1"

// writeBufferSize is the buffer between the encoder and the file, as
// parquet-go's default: small row groups reach the file in few writes.
const writeBufferSize = 32 * 1024

// fileWriter writes the structure of one Parquet file: the magic, the
// pages of the row groups as the encoder gives them, then the page index
// (column and offset indexes) and the footer.
type fileWriter struct {
	w   *bufio.Writer
	off int64 // bytes written so far, buffered ones included

	rowGroups []format.RowGroup
	colIdx    [][]format.ColumnIndex // per row group, per column
	offIdx    [][]format.OffsetIndex

	schema []format.SchemaElement
	orders []format.ColumnOrder

	hdr bytes.Buffer // a page header, thrift-encoded
	enc *thrift.Encoder
}

func newFileWriter(w io.Writer, schema []format.SchemaElement, orders []format.ColumnOrder) (*fileWriter, error) {
	f := &fileWriter{w: bufio.NewWriterSize(w, writeBufferSize), schema: schema, orders: orders}
	f.enc = thrift.NewEncoder(new(thrift.CompactProtocol).NewWriter(&f.hdr))
	return f, f.write([]byte(magic))
}

func (f *fileWriter) write(b []byte) error {
	n, err := f.w.Write(b)
	f.off += int64(n)
	return err
}

// writePage writes a page: h (its sizes and CRC set from levels and data
// here), then levels (uncompressed, data page v2), then data. It returns
// the size of the page, header included, and of its header.
func (f *fileWriter) writePage(h *format.PageHeader, uncompressed int, levels, data []byte) (size, header int, err error) {
	h.UncompressedPageSize = int32(len(levels) + uncompressed)
	h.CompressedPageSize = int32(len(levels) + len(data))
	h.CRC = int32(crc32.Update(crc32.ChecksumIEEE(levels), crc32.IEEETable, data))
	f.hdr.Reset()
	if err := f.enc.Encode(h); err != nil {
		return 0, 0, fmt.Errorf("encoding a page header: %w", err)
	}
	header = f.hdr.Len()
	for _, b := range [...][]byte{f.hdr.Bytes(), levels, data} {
		if err := f.write(b); err != nil {
			return 0, 0, err
		}
	}
	return header + len(levels) + len(data), header, nil
}

// addRowGroup records a written row group and its page index.
func (f *fileWriter) addRowGroup(rg format.RowGroup, ci []format.ColumnIndex, oi []format.OffsetIndex) {
	rg.Ordinal = int16(len(f.rowGroups))
	f.rowGroups = append(f.rowGroups, rg)
	f.colIdx = append(f.colIdx, ci)
	f.offIdx = append(f.offIdx, oi)
}

// close writes the page index and the footer, and flushes the buffer. The
// underlying file is left to the caller.
func (f *fileWriter) close(createdBy string) error {
	enc := thrift.NewEncoder(new(thrift.CompactProtocol).NewWriter(countingWriter{f}))
	// The page index: every column index, then every offset index, as
	// parquet-go lays them out.
	for i, cis := range f.colIdx {
		for j := range cis {
			c := &f.rowGroups[i].Columns[j]
			c.ColumnIndexOffset = f.off
			if err := enc.Encode(&cis[j]); err != nil {
				return err
			}
			c.ColumnIndexLength = int32(f.off - c.ColumnIndexOffset)
		}
	}
	for i, ois := range f.offIdx {
		for j := range ois {
			c := &f.rowGroups[i].Columns[j]
			c.OffsetIndexOffset = f.off
			if err := enc.Encode(&ois[j]); err != nil {
				return err
			}
			c.OffsetIndexLength = int32(f.off - c.OffsetIndexOffset)
		}
	}
	var rows int64
	for i := range f.rowGroups {
		rows += f.rowGroups[i].NumRows
	}
	md := format.FileMetaData{
		Version:      2, // the format version parquet-go writes: data pages v2
		Schema:       f.schema,
		NumRows:      rows,
		RowGroups:    f.rowGroups,
		CreatedBy:    createdBy,
		ColumnOrders: f.orders,
	}
	start := f.off
	if err := enc.Encode(&md); err != nil {
		return err
	}
	var tail [8]byte
	binary.LittleEndian.PutUint32(tail[:4], uint32(f.off-start))
	copy(tail[4:], magic)
	if err := f.write(tail[:]); err != nil {
		return err
	}
	return f.w.Flush()
}

// countingWriter writes to a fileWriter, counting the offset.
type countingWriter struct{ f *fileWriter }

func (c countingWriter) Write(b []byte) (int, error) {
	n, err := c.f.w.Write(b)
	c.f.off += int64(n)
	return n, err
}
