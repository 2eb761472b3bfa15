package parquet

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/measure"
)

// hyparquet reads a file of every kind of cell (several row groups, null
// and typed attribute columns, every late attribute type, a NaN value,
// nanoseconds, non-ASCII text) as written.
func TestIndependentReaderUnit(t *testing.T) {
	reg := measure.NewRegistry()
	power := register(t, reg, "bmc_cpu_temp_celsius", measure.Plain(measure.Celsius), measure.F64)
	cfg := testConfig(t.TempDir())
	cfg.RowGroupRows = 7
	buf := &measure.Buffer{}
	for i := range 20 {
		attrs := []measure.Attribute{str("metric_id", "bmc_cpu_temp_celsius")}
		if i%2 == 0 {
			attrs = append(attrs, u64("run", uint64(i)), str("cpu", "1"),
				measure.Attribute{Key: "ok", Value: measure.AttrValue{Type: measure.AttrBool, Bool: true}},
				measure.Attribute{Key: "cores", Value: measure.AttrValue{Type: measure.AttrU64List, List: []uint64{1, 2}}},
				str("note", `é "q" ;,\`+"\n"))
		}
		v := 40 + float64(i)/8
		if i == 5 {
			v = math.NaN()
		}
		buf.Push(measure.Point{Metric: power, Timestamp: t0.Add(time.Duration(i)*time.Second + 123456789), Value: measure.Float(v),
			Resource: measure.Resource{Kind: "device_id", ID: "taurus-7"}, Consumer: measure.Consumer{Kind: "local_machine"}, Attributes: attrs})
	}
	writeFile(t, cfg, reg, buf)
	f := readWithHyparquet(t, cfg.OutputPath)
	require.Equal(t, []string{"ZSTD"}, f.Meta.Codecs)
	require.Equal(t, 3, f.Meta.RowGroups)
	var names []string
	for _, c := range f.Meta.Columns {
		names = append(names, c.Name+":"+c.Type+":"+c.Repetition)
	}
	require.Equal(t, []string{"metric:BYTE_ARRAY:REQUIRED", "timestamp:INT64:REQUIRED", "value:DOUBLE:REQUIRED",
		"resource_kind:BYTE_ARRAY:REQUIRED", "resource_id:BYTE_ARRAY:REQUIRED", "consumer_kind:BYTE_ARRAY:REQUIRED",
		"consumer_id:BYTE_ARRAY:REQUIRED", "metric_id:BYTE_ARRAY:OPTIONAL", "run:INT64:OPTIONAL", "__late_attributes:BYTE_ARRAY:OPTIONAL"}, names)
	require.JSONEq(t, `{"type":"TIMESTAMP","isAdjustedToUTC":true,"unit":"NANOS"}`, string(f.Meta.Columns[1].Logical))
	require.Len(t, f.Rows, 20)
	for i, r := range f.Rows {
		p := &buf.Points[i]
		require.Equal(t, "bmc_cpu_temp_celsius_°C", *r["metric"])
		require.Equal(t, p.Timestamp.UnixNano(), parseInt(t, *r["timestamp"]), "row %d", i)
		if i == 5 {
			require.Equal(t, "NaN", *r["value"])
		} else {
			require.Equal(t, p.Value.Float64(), parseFloat(t, *r["value"]), "row %d", i)
		}
		require.Equal(t, "taurus-7", *r["resource_id"])
		require.Equal(t, "", *r["consumer_id"])
		require.Equal(t, "bmc_cpu_temp_celsius", *r["metric_id"])
		if i%2 == 1 {
			require.Nil(t, r["run"])
			require.Nil(t, r["__late_attributes"])
			continue
		}
		require.Equal(t, int64(i), parseInt(t, *r["run"]))
		require.Equal(t, map[string]string{"cpu": "1", "ok": "true", "cores": "[1, 2]", "note": `é "q" ;,\` + "\n"},
			lateText(t, *r["__late_attributes"]))
	}
}

// hyparquet reads from the encoder's files exactly what it reads from the
// old writer's (reference_test.go), for every codec, with several row
// groups and pages, null pages, many series and every kind of cell.
func TestIndependentReaderDifferential(t *testing.T) {
	needHyparquet(t)
	defer func(p int) { pageRows = p }(pageRows)
	pageRows = 100
	for _, name := range codecs {
		t.Run(name, func(t *testing.T) {
			g, reg := newGen(t, 3, 40)
			cfg := testConfig(t.TempDir())
			cfg.Compression = name
			cfg.RowGroupRows = 200
			got, want := writeBoth(t, cfg, reg, g.buffers(4, 150, 60, true, true))
			w, gr := readWithHyparquet(t, want), readWithHyparquet(t, got)
			require.Greater(t, w.Meta.RowGroups, 2)
			require.Equal(t, w.Meta, gr.Meta)
			require.Equal(t, w.Rows, gr.Rows)
		})
	}
}
