package parquet

import (
	"slices"

	kzstd "github.com/klauspost/compress/zstd"
	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/gzip"
	"github.com/parquet-go/parquet-go/compress/lz4"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/compress/uncompressed"
	"github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/parquet-go/parquet-go/format"
)

// LateColumn is the last column: the attributes without a column of their
// own, as a JSON object (null when there are none).
const LateColumn = "__late_attributes"

// FixedColumns are the first seven columns, the CSV's.
var FixedColumns = [...]string{"metric", "timestamp", "value", "resource_kind", "resource_id", "consumer_kind", "consumer_id"}

// Column indexes of the fixed columns.
const (
	colMetric = iota
	colTimestamp
	colValue
	colResourceKind
	colResourceID
	colConsumerKind
	colConsumerID
	nFixed
)

// reservedColumn reports whether name is a fixed column or the late one.
func reservedColumn(name string) bool {
	return name == LateColumn || slices.Contains(FixedColumns[:], name)
}

// attrKind is the Parquet type of an attribute column.
type attrKind uint8

const (
	attrString attrKind = iota // the attribute's text form (the CSV cell)
	attrInt64                  // an unsigned integer attribute up to 2^63-1
)

// typedAttributes are the known attributes whose column is not a string:
// run, the repetition number that kwollect-input and energy-report set
// as an integer.
var typedAttributes = map[string]attrKind{"run": attrInt64}

func kindOf(name string) attrKind { return typedAttributes[name] }

// codec returns the compression codec of a validated compression name.
func codec(name string) compress.Codec {
	switch name {
	case "snappy":
		return &snappy.Codec{}
	case "gzip":
		return &gzip.Codec{}
	case "lz4":
		return &lz4.Codec{}
	case "none":
		return &uncompressed.Codec{}
	default:
		return &zstd.Codec{Level: zstd.SpeedDefault}
	}
}

// Schema returns the file schema for the attribute columns attrs: the
// fixed columns, one optional column per attribute, the late column, in
// this order (the CSV's order; parquet.Group alone would sort them).
func Schema(attrs []string, compression string) *pq.Schema {
	c := codec(compression)
	dict := func(n pq.Node) pq.Node { return pq.Compressed(pq.Encoded(n, &pq.RLEDictionary), c) }
	plain := func(n pq.Node) pq.Node { return pq.Compressed(n, c) }
	g := orderedGroup{Group: pq.Group{}}
	add := func(name string, n pq.Node) {
		g.Group[name] = n
		g.order = append(g.order, name)
	}
	add("metric", dict(pq.String()))
	// Delta encoding: regular sampling makes the deltas nearly constant.
	add("timestamp", pq.Compressed(pq.Encoded(pq.Timestamp(pq.Nanosecond), &pq.DeltaBinaryPacked), c))
	add("value", plain(pq.Leaf(pq.DoubleType)))
	add("resource_kind", dict(pq.String()))
	add("resource_id", dict(pq.String()))
	add("consumer_kind", dict(pq.String()))
	add("consumer_id", dict(pq.String()))
	for _, a := range attrs {
		switch kindOf(a) {
		case attrInt64:
			add(a, pq.Optional(plain(pq.Int(64))))
		default:
			add(a, pq.Optional(dict(pq.String())))
		}
	}
	add(LateColumn, pq.Optional(dict(pq.JSON())))
	return pq.NewSchema("alumet", g)
}

// orderedGroup is a parquet.Group whose fields come in a given order.
type orderedGroup struct {
	pq.Group
	order []string
}

func (g orderedGroup) Fields() []pq.Field {
	fields := g.Group.Fields()
	rank := make(map[string]int, len(g.order))
	for i, n := range g.order {
		rank[n] = i
	}
	slices.SortStableFunc(fields, func(a, b pq.Field) int { return rank[a.Name()] - rank[b.Name()] })
	return fields
}

// schemaElements returns the file metadata's schema of s (the root, then
// its leaves) and their column orders, as parquet-go's writer fills them.
func schemaElements(s *pq.Schema) ([]format.SchemaElement, []format.ColumnOrder) {
	fields := s.Fields()
	elems := make([]format.SchemaElement, 0, 1+len(fields))
	root := format.SchemaElement{Name: s.Name()}
	root.NumChildren.Set(int32(len(fields)))
	elems = append(elems, root)
	orders := make([]format.ColumnOrder, 0, len(fields))
	for _, f := range fields {
		t := f.Type()
		el := format.SchemaElement{Name: f.Name()}
		switch {
		case f.Optional():
			el.RepetitionType.Set(format.Optional)
		case f.Repeated():
			el.RepetitionType.Set(format.Repeated)
		default:
			el.RepetitionType.Set(format.Required)
		}
		if lt := t.LogicalType(); lt != nil {
			el.LogicalType = *lt
		}
		// parquet-go records the bit length of fixed-size types here too
		// (64 for INT64 and DOUBLE); readers ignore it but files stay as
		// they were.
		if n := int32(t.Length()); n > 0 {
			el.TypeLength.Set(n)
		}
		if pt := t.PhysicalType(); pt != nil {
			el.Type.Set(*pt)
		}
		if ct := t.ConvertedType(); ct != nil {
			el.ConvertedType.Set(*ct)
		}
		elems = append(elems, el)
		orders = append(orders, *t.ColumnOrder())
	}
	return elems, orders
}

// createdBy is the created_by of the file metadata, as parquet-go formats it.
func createdBy() string {
	c := pq.DefaultWriterConfig()
	pq.CreatedBy("alumet-agent parquet", Version, "").ConfigureWriter(c)
	return c.CreatedBy
}

// writerCodec returns the codec the writer compresses pages with: that of
// codec, except for zstd an encoder of its own, kept for the output's
// life (parquet-go's codec takes one from a sync.Pool at each page, so
// that after a garbage collection the next page allocates and clears a new
// encoder's 16 MiB of history).
func writerCodec(name string) compress.Codec {
	if name != "zstd" {
		return codec(name)
	}
	enc, err := kzstd.NewWriter(nil,
		kzstd.WithEncoderConcurrency(1),
		kzstd.WithEncoderLevel(zstdLevel),
		// A page is at most about 1 MiB: a larger window would not find
		// more, and would cost 16 MiB of history instead of 2.
		kzstd.WithWindowSize(1<<20),
		kzstd.WithZeroFrames(true),
		kzstd.WithEncoderCRC(false))
	if err != nil {
		panic(err) // only for invalid options
	}
	return &zstdCodec{enc: enc}
}

// zstdLevel is the zstd level of the pages: the fastest (about zstd's
// level 1). On the reference workload it costs 20 % less CPU than the
// default (level 3) for files 10 % larger (4.3 MB for a million rows, the
// default 3.9 MB), still smaller than parquet-go's at the default level
// (4.7 MB): the writer's CPU is what issue 13 bounds.
const zstdLevel = kzstd.SpeedFastest

// zstdCodec is parquet-go's zstd codec with an encoder of its own.
type zstdCodec struct {
	zstd.Codec
	enc *kzstd.Encoder
}

func (c *zstdCodec) Encode(dst, src []byte) ([]byte, error) {
	return c.enc.EncodeAll(src, dst[:0]), nil
}
