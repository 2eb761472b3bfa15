package parquet

import (
	"context"
	"flag"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	pq "github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/testkit"
	"github.com/alumet-go/alumet-agent/measure"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// checkGolden compares got with testdata/<name>, or rewrites it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	testkit.Golden(t, name, got, *update)
}

func register(t testing.TB, reg *measure.Registry, name string, unit measure.Unit, typ measure.ValueType) measure.MetricID {
	t.Helper()
	id, err := reg.Register(measure.Metric{Name: name, Unit: unit, Type: typ, Description: "test " + name})
	require.NoError(t, err)
	return id
}

func str(k, v string) measure.Attribute { return measure.Attribute{Key: k, Value: measure.String(v)} }

func u64(k string, v uint64) measure.Attribute {
	return measure.Attribute{Key: k, Value: measure.AttrValue{Type: measure.AttrU64, U64: v}}
}

// row is a row of the default schema, as the tests read it back.
type row struct {
	Metric       string    `parquet:"metric"`
	Timestamp    time.Time `parquet:"timestamp,timestamp(nanosecond)"`
	Value        float64   `parquet:"value"`
	ResourceKind string    `parquet:"resource_kind"`
	ResourceID   string    `parquet:"resource_id"`
	ConsumerKind string    `parquet:"consumer_kind"`
	ConsumerID   string    `parquet:"consumer_id"`
	MetricID     *string   `parquet:"metric_id,optional"`
	Run          *int64    `parquet:"run,optional"`
	Late         *string   `parquet:"__late_attributes,optional"`
}

func ptr[T any](v T) *T { return &v }

// readRows reads a file of the default schema with parquet-go.
func readRows(t testing.TB, path string) []row {
	t.Helper()
	rows, err := pq.ReadFile[row](path)
	require.NoError(t, err)
	for i := range rows {
		rows[i].Timestamp = rows[i].Timestamp.UTC()
	}
	return rows
}

// testConfig is the default configuration writing to dir/out.parquet.
func testConfig(dir string) *Config {
	c := DefaultConfig()
	c.OutputPath = filepath.Join(dir, "out.parquet")
	return c
}

// writeFile writes bufs through a FileOutput of cfg (no rotation) and closes it.
func writeFile(t testing.TB, cfg *Config, reg *measure.Registry, bufs ...*measure.Buffer) {
	t.Helper()
	o, err := Open(cfg, reg, nil, false)
	require.NoError(t, err)
	for _, b := range bufs {
		require.NoError(t, o.Write(context.Background(), b))
	}
	require.NoError(t, o.Close())
}

// compactOf returns buf with every point in compact form, points of equal
// series sharing one *measure.Series.
func compactOf(buf *measure.Buffer) *measure.Buffer {
	var series []*measure.Series
	seriesOf := func(p *measure.Point) *measure.Series {
		for _, s := range series {
			if s.Metric == p.Metric && s.Resource == p.Resource && s.Consumer == p.Consumer &&
				cmp.Equal(s.Attributes, p.Attributes) {
				return s
			}
		}
		s := &measure.Series{Metric: p.Metric, Resource: p.Resource, Consumer: p.Consumer, Attributes: p.Attributes}
		series = append(series, s)
		return s
	}
	c := &measure.Buffer{}
	for j := range buf.Points {
		p := &buf.Points[j]
		c.Compact = append(c.Compact, measure.SeriesPoint{Series: seriesOf(p), Time: p.Timestamp.UnixNano(), Value: p.Value})
	}
	return c
}

func parseInt(t testing.TB, s string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err)
	return v
}

func parseFloat(t testing.TB, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err)
	return v
}
