package parquet

import (
	"fmt"
	"os"
	"strings"
	"testing"

	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/measure"
)

// describe lists the schema of a written file and, per column chunk of its
// first row group, its physical type, logical type, codec and encodings:
// what a reader relies on.
func describe(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	st, err := f.Stat()
	require.NoError(t, err)
	pf, err := pq.OpenFile(f, st.Size())
	require.NoError(t, err)
	var sb strings.Builder
	sb.WriteString(pf.Schema().String())
	sb.WriteString("\n\n")
	md := pf.Metadata()
	for i, el := range md.Schema[1:] {
		cc := md.RowGroups[0].Columns[i].MetaData
		var enc []string
		for _, e := range cc.Encoding {
			enc = append(enc, e.String())
		}
		logical := el.LogicalType.String()
		if logical == "" {
			logical = "-"
		}
		rep, _ := el.RepetitionType.Get()
		typ, _ := el.Type.Get()
		fmt.Fprintf(&sb, "%s: %s %s %s codec=%s encodings=%s\n", el.Name, rep, typ, logical, cc.Codec, strings.Join(enc, ","))
	}
	return sb.String()
}

// The schema of the default configuration, as a file holds it.
func TestSchemaGolden(t *testing.T) {
	reg := measure.NewRegistry()
	id := register(t, reg, "wattmetre_power_watt", measure.Plain(measure.Watt), measure.F64)
	cfg := testConfig(t.TempDir())
	writeFile(t, cfg, reg, &measure.Buffer{Points: []measure.Point{{Metric: id, Timestamp: t0, Value: measure.Float(1),
		Resource: measure.Resource{Kind: "device_id", ID: "n"}, Attributes: []measure.Attribute{str("metric_id", "m"), str("x", "y")}}}})
	checkGolden(t, "schema_default.txt", []byte(describe(t, cfg.OutputPath)))
}

func TestSchemaColumnsInOrder(t *testing.T) {
	for _, tc := range []struct {
		attrs []string
		want  []string
	}{
		{nil, []string{"metric", "timestamp", "value", "resource_kind", "resource_id", "consumer_kind", "consumer_id", "__late_attributes"}},
		{[]string{"zz", "cpu", "aa"}, []string{"metric", "timestamp", "value", "resource_kind", "resource_id", "consumer_kind", "consumer_id", "zz", "cpu", "aa", "__late_attributes"}},
	} {
		var got []string
		for _, f := range Schema(tc.attrs, "zstd").Fields() {
			got = append(got, f.Name())
		}
		require.Equal(t, tc.want, got)
	}
}

// Every codec writes a file that reads back.
func TestCompressionCodecs(t *testing.T) {
	reg := measure.NewRegistry()
	id := register(t, reg, "p", measure.Plain(measure.Watt), measure.F64)
	for _, name := range codecs {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			cfg.Compression = name
			writeFile(t, cfg, reg, &measure.Buffer{Points: []measure.Point{{Metric: id, Timestamp: t0, Value: measure.Float(2)}}})
			rows := readRows(t, cfg.OutputPath)
			require.Len(t, rows, 1)
			require.Equal(t, 2.0, rows[0].Value)
			want := map[string]format.CompressionCodec{"zstd": format.Zstd, "snappy": format.Snappy, "gzip": format.Gzip, "lz4": format.Lz4Raw, "none": format.Uncompressed}[name]
			require.Contains(t, describe(t, cfg.OutputPath), "codec="+want.String())
		})
	}
}
