package influxdb

import (
	"bytes"
	"compress/gzip"
	"flag"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/testkit"
	"github.com/alumet-go/alumet-agent/measure"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	testkit.Golden(t, name, got, *update)
}

func register(t testing.TB, reg *measure.Registry, name string, typ measure.ValueType) measure.MetricID {
	t.Helper()
	id, err := reg.Register(measure.Metric{Name: name, Unit: measure.Plain(measure.Watt), Type: typ})
	require.NoError(t, err)
	return id
}

func str(k, v string) measure.Attribute { return measure.Attribute{Key: k, Value: measure.String(v)} }

// pointP is the spec's P: taurus-7's wattmetre at 2026-11-24T21:39:17Z.
func pointP(id measure.MetricID) measure.Point {
	return measure.Point{
		Metric:     id,
		Timestamp:  time.Unix(0, 1795556357000000000).UTC(),
		Value:      measure.Float(112.73),
		Resource:   measure.Resource{Kind: "device_id", ID: "taurus-7"},
		Consumer:   measure.Consumer{Kind: "device_origin", ID: "wattmetre1-port6"},
		Attributes: []measure.Attribute{str("metric_id", "wattmetre_power_watt")},
	}
}

// compactOf returns buf's points in compact form, one series per point.
func compactOf(buf *measure.Buffer) *measure.Buffer {
	c := &measure.Buffer{}
	for i := range buf.Points {
		p := &buf.Points[i]
		s := &measure.Series{Metric: p.Metric, Resource: p.Resource, Consumer: p.Consumer, Attributes: p.Attributes}
		c.Compact = append(c.Compact, measure.SeriesPoint{Series: s, Time: p.Timestamp.UnixNano(), Value: p.Value})
	}
	return c
}

func newLogger() (*slog.Logger, *testkit.LockedBuffer) {
	s := &testkit.LockedBuffer{}
	return slog.New(slog.NewTextHandler(s, &slog.HandlerOptions{Level: slog.LevelDebug})), s
}

func gunzip(t testing.TB, z []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(z))
	require.NoError(t, err)
	b, err := io.ReadAll(zr)
	require.NoError(t, err)
	return string(b)
}
