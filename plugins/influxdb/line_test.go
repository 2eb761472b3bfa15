package influxdb

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/plugins/internal/lineflate"
)

func encodeAll(enc *encoder, buf *measure.Buffer) ([]byte, []result) {
	var b []byte
	var rs []result
	var r result
	for i := range buf.Points {
		b, r = enc.appendPoint(b, &buf.Points[i])
		rs = append(rs, r)
	}
	for i := range buf.Compact {
		b, r = enc.appendCompact(b, &buf.Compact[i])
		rs = append(rs, r)
	}
	return b, rs
}

// encodeAllZ is encodeAll with gzip: the lineflate stream, finished and
// inflated.
func encodeAllZ(t testing.TB, enc *encoder, buf *measure.Buffer) ([]byte, []result) {
	t.Helper()
	var b []byte
	var rs []result
	var r result
	for i := range buf.Points {
		b, r = enc.appendPointZ(b, &buf.Points[i])
		rs = append(rs, r)
	}
	for i := range buf.Compact {
		b, r = enc.appendCompactZ(b, &buf.Compact[i])
		rs = append(rs, r)
	}
	if len(b) == 0 {
		return nil, rs
	}
	z, err := lineflate.Finish(nil, b)
	require.NoError(t, err)
	return []byte(gunzip(t, z)), rs
}

// The spec's P with the defaults, byte for byte.
func TestLineP(t *testing.T) {
	reg := measure.NewRegistry()
	id := register(t, reg, "wattmetre_power_watt", measure.F64)
	buf := &measure.Buffer{Points: []measure.Point{pointP(id)}}
	for _, tc := range []struct {
		name string
		cfg  func(*Config)
		want string
	}{
		{"defaults", func(*Config) {},
			`wattmetre_power_watt,resource_kind=device_id,resource_id=taurus-7,resource_consumer_kind=device_origin,resource_consumer_id=wattmetre1-port6 metric_id="wattmetre_power_watt",value=112.73 1795556357000000000` + "\n"},
		{"attributes_as_tags", func(c *Config) { c.AttributesAsTags = []string{"metric_id"} },
			`wattmetre_power_watt,resource_kind=device_id,resource_id=taurus-7,resource_consumer_kind=device_origin,resource_consumer_id=wattmetre1-port6,metric_id=wattmetre_power_watt value=112.73 1795556357000000000` + "\n"},
		{"attributes_as tag, metric_id as field", func(c *Config) { c.AttributesAs = "tag"; c.AttributesAsFields = []string{"metric_id"} },
			`wattmetre_power_watt,resource_kind=device_id,resource_id=taurus-7,resource_consumer_kind=device_origin,resource_consumer_id=wattmetre1-port6 metric_id="wattmetre_power_watt",value=112.73 1795556357000000000` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.cfg(c)
			require.NoError(t, c.Validate())
			got, _ := encodeAll(newEncoder(reg, c.asTag(), false, false), buf)
			require.Equal(t, tc.want, string(got))
			gotc, _ := encodeAll(newEncoder(reg, c.asTag(), false, false), compactOf(buf))
			require.Equal(t, tc.want, string(gotc), "compact")
			for _, b := range []*measure.Buffer{buf, compactOf(buf)} {
				gotz, _ := encodeAllZ(t, newEncoder(reg, c.asTag(), false, true), b)
				require.Equal(t, tc.want, string(gotz), "gzip")
			}
		})
	}
}

// goldenCases are the line protocol's corners, one buffer each.
func goldenCases(t testing.TB, reg *measure.Registry) []struct {
	name string
	cfg  func(*Config)
	buf  *measure.Buffer
} {
	w := register(t, reg, "wattmetre_power_watt", measure.F64)
	e := register(t, reg, "rapl_consumed_energy", measure.U64)
	odd := register(t, reg, "odd name,with=signs", measure.F64)
	ts := time.Date(2026, 11, 24, 21, 39, 17, 20_000_000, time.UTC)
	p := func(id measure.MetricID, v measure.Value, r measure.Resource, c measure.Consumer, attrs ...measure.Attribute) measure.Point {
		return measure.Point{Metric: id, Timestamp: ts, Value: v, Resource: r, Consumer: c, Attributes: attrs}
	}
	dev := measure.Resource{Kind: "device_id", ID: "taurus-7"}
	port := measure.Consumer{Kind: "device_origin", ID: "wattmetre1-port6"}
	local := measure.Consumer(measure.LocalMachine)
	buf := func(ps ...measure.Point) *measure.Buffer { return &measure.Buffer{Points: ps} }
	allTypes := []measure.Attribute{
		str("domain", "package"),
		{Key: "socket", Value: measure.AttrValue{Type: measure.AttrU64, U64: 1}},
		{Key: "ratio", Value: measure.AttrValue{Type: measure.AttrF64, F64: 0.25}},
		{Key: "ok", Value: measure.AttrValue{Type: measure.AttrBool, Bool: true}},
		{Key: "cpus", Value: measure.AttrValue{Type: measure.AttrU64List, List: []uint64{0, 2, 4}}},
	}
	return []struct {
		name string
		cfg  func(*Config)
		buf  *measure.Buffer
	}{
		{"floats in Alumet's form", nil, buf(
			p(w, measure.Float(131), dev, port), p(w, measure.Float(0.001), dev, port), p(w, measure.Float(-12.5), dev, port),
			p(w, measure.Float(1e21), dev, port), p(w, measure.Float(1.5e-7), dev, port), p(w, measure.Float(123456789.123), dev, port))},
		{"u64 value", nil, buf(p(e, measure.Uint(18446744073709551615), measure.Resource{Kind: "cpu_package", ID: "0"}, local, str("domain", "package")))},
		{"u64 in v1 mode", func(c *Config) { c.API = APIv1; c.Database = "db" }, buf(
			p(e, measure.Uint(123), measure.Resource{Kind: "cpu_package", ID: "0"}, local, allTypes[1]),
			p(e, measure.Uint(18446744073709551615), measure.Resource{Kind: "cpu_package", ID: "0"}, local))},
		{"every attribute type as fields", nil, buf(p(w, measure.Float(1), dev, port, allTypes...))},
		{"every attribute type as tags", func(c *Config) { c.AttributesAs = "tag" }, buf(p(w, measure.Float(1), dev, port, allTypes...))},
		{"empty ids omitted (local_machine)", nil, buf(p(e, measure.Uint(5), measure.LocalMachine, local, str("domain", "platform_total")))},
		{"reserved names renamed", nil, buf(p(w, measure.Float(1), dev, port, str("resource_id", "x"), str("value", "v"), str("resource_consumer_kind", "y")))},
		{"reserved names renamed as tags", func(c *Config) { c.AttributesAs = "tag" }, buf(p(w, measure.Float(1), dev, port, str("resource_id", "x"), str("value", "v")))},
		{"escaping", func(c *Config) { c.AttributesAsTags = []string{"a tag,k=ey"} }, buf(p(odd, measure.Float(2),
			measure.Resource{Kind: "de vice", ID: "a,b=c"}, measure.Consumer{Kind: "x\ny", ID: `back\slash`},
			str("a tag,k=ey", "v a,l=ue"), str("f ie,l=d", `say "hi" \ bye`)))},
		{"NaN and Inf skipped, NaN attribute field left out", nil, buf(
			p(w, measure.Float(math.NaN()), dev, port), p(w, measure.Float(math.Inf(1)), dev, port),
			p(w, measure.Float(math.Inf(-1)), dev, port),
			p(w, measure.Float(3), dev, port, measure.Attribute{Key: "r", Value: measure.AttrValue{Type: measure.AttrF64, F64: math.NaN()}}))},
		{"unregistered metric skipped", nil, buf(p(measure.MetricID(99), measure.Float(1), dev, port), p(w, measure.Float(4), dev, port))},
	}
}

// The bytes of every corner, in a golden file; compact points give the
// same bytes.
func TestLineGolden(t *testing.T) {
	reg := measure.NewRegistry()
	var out bytes.Buffer
	for _, tc := range goldenCases(t, reg) {
		c := DefaultConfig()
		if tc.cfg != nil {
			tc.cfg(c)
		}
		require.NoError(t, c.Validate(), tc.name)
		got, rs := encodeAll(newEncoder(reg, c.asTag(), c.api() == APIv1, false), tc.buf)
		gotc, rsc := encodeAll(newEncoder(reg, c.asTag(), c.api() == APIv1, false), compactOf(tc.buf))
		require.Equal(t, string(got), string(gotc), tc.name)
		require.Equal(t, rs, rsc, tc.name)
		// With gzip, the same bytes inflated.
		for _, b := range []*measure.Buffer{tc.buf, compactOf(tc.buf)} {
			gotz, rsz := encodeAllZ(t, newEncoder(reg, c.asTag(), c.api() == APIv1, true), b)
			require.Equal(t, string(got), string(gotz), tc.name)
			require.Equal(t, rs, rsz, tc.name)
		}
		fmt.Fprintf(&out, "# %s %v\n%s", tc.name, rs, got)
	}
	checkGolden(t, "lines.golden", out.Bytes())
}

// parseLine splits a line at its unescaped spaces outside quotes: the
// series, the fields and the timestamp; it checks the escapes.
func parseLine(line string) ([]string, error) {
	var parts []string
	var cur strings.Builder
	inQuote, afterEq := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		wasEq := afterEq
		afterEq = c == '=' && !inQuote
		switch {
		case c == '\\' && i+1 < len(line):
			cur.WriteByte(c)
			cur.WriteByte(line[i+1])
			i++
		case c == '"' && len(parts) == 1 && (inQuote || wasEq):
			// a string field value: '"' after the '=' of a field
			inQuote = !inQuote
			cur.WriteByte(c)
		case c == ' ' && !inQuote:
			parts = append(parts, cur.String())
			cur.Reset()
		case c == '\n' || c == '\r':
			if !inQuote {
				return nil, fmt.Errorf("raw newline at %d", i)
			}
			cur.WriteByte(c)
		default:
			cur.WriteByte(c)
		}
	}
	if inQuote {
		return nil, fmt.Errorf("unterminated string")
	}
	return append(parts, cur.String()), nil
}

// Whatever the names and values, a point gives one line of three parts,
// or nothing (NaN).
func FuzzLine(f *testing.F) {
	f.Add("wattmetre_power_watt", "device_id", "taurus-7", "metric_id", "wattmetre_power_watt", 112.73, false)
	f.Add("a b,c", "k=v", `x\`, "value", `"q"\`, math.NaN(), true)
	f.Add("m", "", "", "resource_id", "\n", 1e300, true)
	f.Fuzz(func(t *testing.T, metric, kind, id, key, val string, v float64, asTag bool) {
		if metric == "" {
			return
		}
		reg := measure.NewRegistry()
		mid, err := reg.Register(measure.Metric{Name: metric, Type: measure.F64})
		if err != nil {
			return
		}
		c := DefaultConfig()
		if asTag {
			c.AttributesAs = "tag"
		}
		enc := newEncoder(reg, c.asTag(), false, false)
		pt := measure.Point{Metric: mid, Timestamp: time.Unix(0, 1795556357000000000), Value: measure.Float(v),
			Resource: measure.Resource{Kind: kind, ID: id}, Attributes: []measure.Attribute{str(key, val)}}
		b, r := enc.appendPoint(nil, &pt)
		if r != written {
			require.Empty(t, b)
			require.True(t, math.IsNaN(v) || math.IsInf(v, 0))
			return
		}
		require.Equal(t, byte('\n'), b[len(b)-1])
		line := string(b[:len(b)-1])
		parts, err := parseLine(line)
		require.NoError(t, err, "%q", line)
		require.Len(t, parts, 3, "%q", line)
		require.Equal(t, "1795556357000000000", parts[2])
		require.True(t, strings.HasSuffix(parts[1], "value="+measure.Float(v).String()), "%q", line)
		// With gzip: the same line, twice (the second one matched).
		two := &measure.Buffer{Points: []measure.Point{pt, pt}}
		gotz, _ := encodeAllZ(t, newEncoder(reg, c.asTag(), false, true), two)
		require.Equal(t, string(b)+string(b), string(gotz))
	})
}
