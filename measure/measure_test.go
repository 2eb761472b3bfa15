package measure

import (
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestValueText(t *testing.T) {
	tests := []struct {
		v    Value
		want string
	}{
		{Float(0.5), "0.5"},
		{Float(131), "131"},
		{Float(1.72e9), "1720000000"},
		{Float(129.87), "129.87"},
		{Float(math.NaN()), "NaN"},
		{Float(math.Inf(1)), "inf"},
		{Float(math.Inf(-1)), "-inf"},
		{Float(-0.25), "-0.25"},
		{Uint(0), "0"},
		{Uint(math.MaxUint64), "18446744073709551615"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, tt.v.String())
	}
	require.Equal(t, U64, Uint(3).Type())
	require.InDelta(t, 3.0, Uint(3).Float64(), 0)
}

func TestAttrText(t *testing.T) {
	tests := []struct {
		v    AttrValue
		want string
	}{
		{String("package"), "package"},
		{AttrValue{Type: AttrBool, Bool: true}, "true"},
		{AttrValue{Type: AttrU64, U64: 7}, "7"},
		{AttrValue{Type: AttrF64, F64: 1.5}, "1.5"},
		{AttrValue{Type: AttrU64List, List: []uint64{1, 2, 3}}, "[1, 2, 3]"},
		{AttrValue{Type: AttrU64List}, "[]"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, tt.v.String())
	}
}

func TestParseUnit(t *testing.T) {
	tests := []struct {
		in              string
		unique, display string
		wantErr         bool
	}{
		{in: "W", unique: "W", display: "W"},
		{in: "ms", unique: "millis", display: "ms"},
		{in: "millis", unique: "millis", display: "ms"},
		{in: "kW", unique: "kiloW", display: "kW"},
		{in: "MJ", unique: "megaJ", display: "MJ"},
		{in: "μs", unique: "micros", display: "μs"},
		{in: "W.h", unique: "W.h", display: "Wh"},
		{in: "Wh", unique: "W.h", display: "Wh"},
		{in: "By", unique: "By", display: "B"},
		{in: "B", unique: "By", display: "B"},
		{in: "Cel", unique: "Cel", display: "°C"},
		{in: "1", unique: "1", display: ""},
		{in: "min", wantErr: true},
		{in: "metrics", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			u, err := ParseUnit(tt.in)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.unique, u.UniqueName())
			require.Equal(t, tt.display, u.DisplayName())
		})
	}
}

func TestUnitFromKwollectMetric(t *testing.T) {
	tests := []struct{ metric, unique, display string }{
		{"wattmetre_power_watt", "W", "W"},
		{"bmc_node_power_watt", "W", "W"},
		{"pdu_outlet_power_watt", "W", "W"},
		{"bmc_node_power_watthour_total", "W.h", "Wh"},
		{"bmc_cpu_temp_celsius", "Cel", "°C"},
		{"network_ifacein_bytes_total", "By", "B"},
		{"network_ifacein_packets_total", "1", ""},
		{"network_ifacein_packets_discard_total", "1", ""},
		{"network_ifacein_packets_error_total", "1", ""},
		{"prom_default_metrics", "metrics", "metrics"},
		{"prom_node_load1", "load1", "load1"},
		{"bmc_fan_speed_percent", "%", "%"},
		{"bmc_psu_volt", "V", "V"},
		{"x_kilowatt", "kiloW", "kW"},
		{"total", "total", "total"},
	}
	for _, tt := range tests {
		t.Run(tt.metric, func(t *testing.T) {
			u := UnitFromKwollectMetric(tt.metric)
			require.Equal(t, tt.unique, u.UniqueName())
			require.Equal(t, tt.display, u.DisplayName())
		})
	}
}

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	w := Plain(Watt)
	id, err := r.Register(Metric{Name: "p", Unit: w, Type: F64})
	require.NoError(t, err)
	again, err := r.Register(Metric{Name: "p", Unit: w, Type: F64, Description: "other"})
	require.NoError(t, err)
	require.Equal(t, id, again)
	_, err = r.Register(Metric{Name: "p", Unit: Plain(Joule), Type: F64})
	require.ErrorContains(t, err, `metric "p" is already registered with unit "W"`)
	_, err = r.Register(Metric{Name: "p", Unit: w, Type: U64})
	require.Error(t, err)
	_, err = r.Register(Metric{})
	require.Error(t, err)
	m, ok := r.Metric(id)
	require.True(t, ok)
	require.Equal(t, "p", m.Name)
	_, ok = r.Metric(42)
	require.False(t, ok)
	m, ok = r.ByName("p")
	require.True(t, ok)
	require.Equal(t, id, m.ID)
	require.Len(t, r.All(), 1)
}

func TestBufferAttributeKeys(t *testing.T) {
	b := &Buffer{}
	b.Push(Point{Attributes: []Attribute{{Key: "z", Value: String("1")}, {Key: "a", Value: String("2")}}})
	b.Push(Point{Attributes: []Attribute{{Key: "m", Value: String("3")}, {Key: "a", Value: String("4")}}})
	require.Equal(t, []string{"a", "m", "z"}, b.AttributeKeys())
	require.Equal(t, 2, b.Len())
}

// FuzzAppendFloat checks the fast path of AppendFloat against strconv.
func FuzzAppendFloat(f *testing.F) {
	for _, v := range []float64{0, 1, -1, 0.1, 0.001, 0.0015, 97.35, 123456789.1234, 999999999.9999, 1e9, 1e-3, 5e-324, 1e21, 0.3, 2.675, 1.0000000001} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		for _, x := range []float64{v, math.Round(v*100) / 100, math.Round(v*10000) / 10000, float64(int64(v)) + 0.5} {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				continue
			}
			want := strconv.FormatFloat(x, 'f', -1, 64)
			if got := string(AppendFloat(nil, x)); got != want {
				t.Fatalf("AppendFloat(%v) = %q, want %q", x, got, want)
			}
		}
	})
}

func BenchmarkAppendFloat(b *testing.B) {
	buf := make([]byte, 0, 32)
	vals := []float64{97.35, 130.5, 0.25, 1234.5678, 180.07}
	for i := 0; b.Loop(); i++ {
		buf = AppendFloat(buf[:0], vals[i%len(vals)])
	}
}

func TestPooledBuffer(t *testing.T) {
	b := NewPooledBuffer(100)
	require.Equal(t, 0, b.Len())
	require.GreaterOrEqual(t, cap(b.Points), 100)
	b.Push(Point{Value: Float(1)})
	b.Release()
	require.Equal(t, 0, b.Len(), "released: emptied for the next user")
	// Other buffers are not pooled: Release leaves them alone.
	own := &Buffer{Points: []Point{{Value: Float(2)}}}
	own.Release()
	require.Equal(t, 1, own.Len())
	var nilBuf *Buffer
	nilBuf.Release()
}

// TestAppendFloatDecimals compares AppendFloat with strconv on every
// reading a meter gives with up to 4 decimals in a few ranges, and just
// past them (5 decimals: the slow path).
func TestAppendFloatDecimals(t *testing.T) {
	for _, base := range []float64{0, 1, 97, 999, 123456, 999999998} {
		for i := range 20000 {
			for _, scale := range []float64{100, 1e4, 1e5} {
				for _, sign := range []float64{1, -1} {
					x := sign * (base + float64(i)/scale)
					want := strconv.FormatFloat(x, 'f', -1, 64)
					if got := string(AppendFloat(nil, x)); got != want {
						t.Fatalf("AppendFloat(%v) = %q, want %q", x, got, want)
					}
				}
			}
		}
	}
}

// Expand gives the points the compact ones stand for, after the buffer's
// Points; AttributeKeys and Len count both forms; Release empties both.
func TestBufferCompact(t *testing.T) {
	s1 := &Series{Metric: 1, Resource: Resource{Kind: "device_id", ID: "a"}, Consumer: Consumer{Kind: "device_origin", ID: "p1"},
		Attributes: []Attribute{{Key: "z", Value: String("1")}}}
	s2 := &Series{Metric: 2, Attributes: []Attribute{{Key: "m", Value: String("2")}}}
	b := NewPooledCompactBuffer(4)
	b.Push(Point{Metric: 9, Attributes: []Attribute{{Key: "a", Value: String("0")}}})
	b.Compact = append(b.Compact, SeriesPoint{Series: s1, Time: -1, Value: Float(1.5)}, SeriesPoint{Series: s2, Time: 2_000_000_001, Value: Uint(7)}, SeriesPoint{Series: s1, Time: 3, Value: Float(2)})
	require.Equal(t, 4, b.Len())
	require.Equal(t, []string{"a", "m", "z"}, b.AttributeKeys())
	b.Expand()
	require.Empty(t, b.Compact)
	require.Len(t, b.Points, 4)
	require.Equal(t, MetricID(9), b.Points[0].Metric)
	require.Equal(t, Point{Metric: 1, Timestamp: time.Unix(0, -1).UTC(), Value: Float(1.5), Resource: s1.Resource, Consumer: s1.Consumer, Attributes: s1.Attributes}, b.Points[1])
	require.Equal(t, time.Unix(2, 1).UTC(), b.Points[2].Timestamp)
	require.Equal(t, Uint(7), b.Points[2].Value)
	require.Equal(t, MetricID(1), b.Points[3].Metric)
	b.Compact = append(b.Compact, SeriesPoint{Series: s2})
	b.Release()
	again := NewPooledCompactBuffer(1)
	require.Equal(t, 0, again.Len(), "a released buffer comes back empty")
	again.Release()
}
