package jsonl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/testkit"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	testkit.Golden(t, name, got, *update)
}

func str(k, v string) measure.Attribute { return measure.Attribute{Key: k, Value: measure.String(v)} }

// points registers two metrics and returns points of every kind of value
// and attribute, with strings that need escaping.
func points(t testing.TB, reg *measure.Registry) []measure.Point {
	t.Helper()
	w, err := reg.Register(measure.Metric{Name: "wattmetre_power_watt", Unit: measure.Plain(measure.Watt), Type: measure.F64})
	require.NoError(t, err)
	e, err := reg.Register(measure.Metric{Name: "rapl_consumed_energy", Unit: measure.Plain(measure.Joule), Type: measure.U64})
	require.NoError(t, err)
	ts := time.Date(2025, 7, 22, 11, 5, 26, 468_000, time.UTC)
	dev := measure.Resource{Kind: "device_id", ID: "taurus-3"}
	port := measure.Consumer{Kind: "device_origin", ID: "wattmetre1-port2"}
	return []measure.Point{
		{Metric: w, Timestamp: ts, Value: measure.Float(88.9), Resource: dev, Consumer: port, Attributes: []measure.Attribute{str("metric_id", "wattmetre_power_watt")}},
		{Metric: w, Timestamp: ts.Add(20 * time.Millisecond), Value: measure.Float(math.NaN()), Resource: dev, Consumer: port},
		{Metric: w, Timestamp: ts.Add(time.Second), Value: measure.Float(math.Inf(1)), Resource: dev, Consumer: port},
		{Metric: w, Timestamp: ts.Add(-time.Hour * 24 * 365 * 60), Value: measure.Float(math.Inf(-1)), Resource: dev, Consumer: port},
		{Metric: w, Timestamp: ts, Value: measure.Float(1e-7), Resource: dev, Consumer: port},
		{Metric: w, Timestamp: ts, Value: measure.Float(math.Copysign(0, -1)), Resource: dev, Consumer: port},
		{Metric: w, Timestamp: ts, Value: measure.Float(1.7976931348623157e308), Resource: dev, Consumer: port},
		{Metric: e, Timestamp: ts, Value: measure.Uint(math.MaxUint64), Resource: measure.LocalMachine, Consumer: measure.Consumer(measure.LocalMachine),
			Attributes: []measure.Attribute{
				{Key: "domain", Value: measure.String("package_total")},
				{Key: "n", Value: measure.AttrValue{Type: measure.AttrU64, U64: 7}},
				{Key: "f", Value: measure.AttrValue{Type: measure.AttrF64, F64: math.NaN()}},
				{Key: "g", Value: measure.AttrValue{Type: measure.AttrF64, F64: 2.5}},
				{Key: "ok", Value: measure.AttrValue{Type: measure.AttrBool, Bool: true}},
				{Key: "cpus", Value: measure.AttrValue{Type: measure.AttrU64List, List: []uint64{0, 12, 3}}},
				{Key: "empty", Value: measure.AttrValue{Type: measure.AttrU64List}},
			}},
		{Metric: w, Timestamp: ts, Value: measure.Float(1), Resource: measure.Resource{Kind: "device_id", ID: "a\"b\\c\nd\te\x01f\u2028g\xffh"},
			Consumer: port, Attributes: []measure.Attribute{str("k\"ey", "v<a>&b"), str("é", "ü")}},
		{Metric: 99, Timestamp: ts, Value: measure.Float(3), Resource: dev, Consumer: port}, // a metric the registry does not know
	}
}

func encodeAll(reg *measure.Registry, ps []measure.Point) []byte {
	e := newEncoder(reg)
	var b []byte
	for i := range ps {
		b = e.appendPoint(b, &ps[i])
	}
	return b
}

func TestGolden(t *testing.T) {
	reg := measure.NewRegistry()
	checkGolden(t, "points.jsonl", encodeAll(reg, points(t, reg)))
}

// Every line is one valid JSON object, decoded back to the point's fields.
func TestLinesDecode(t *testing.T) {
	reg := measure.NewRegistry()
	ps := points(t, reg)
	lines := strings.SplitAfter(string(encodeAll(reg, ps)), "\n")
	require.Len(t, lines, len(ps)+1)
	require.Empty(t, lines[len(ps)])
	for i, line := range lines[:len(ps)] {
		require.True(t, json.Valid([]byte(line)), "line %d: %s", i, line)
		var got map[string]any
		d := json.NewDecoder(strings.NewReader(line))
		d.UseNumber()
		require.NoError(t, d.Decode(&got))
		p := ps[i]
		require.Equal(t, string([]rune(p.Resource.ID)), got["resource_id"], "line %d", i)
		require.Equal(t, p.Consumer.ID, got["consumer_id"])
		ts, err := time.Parse(time.RFC3339Nano, got["timestamp"].(string))
		require.NoError(t, err)
		require.True(t, ts.Equal(p.Timestamp), "line %d: %v, want %v", i, ts, p.Timestamp)
		switch v := got["value"].(type) {
		case json.Number:
			if p.Value.Type() == measure.U64 {
				require.Equal(t, p.Value.String(), v.String())
			} else {
				f, err := v.Float64()
				require.NoError(t, err)
				require.Equal(t, p.Value.Float64(), f, "line %d", i)
			}
		case string:
			f := p.Value.Float64()
			require.True(t, math.IsNaN(f) && v == "NaN" || math.IsInf(f, 1) && v == "Infinity" || math.IsInf(f, -1) && v == "-Infinity", "line %d: %q for %v", i, v, f)
		default:
			t.Fatalf("line %d: value %T", i, v)
		}
		attrs := got["attributes"].(map[string]any)
		require.Len(t, attrs, len(p.Attributes))
	}
}

// Compact points give the bytes their points give.
func TestCompactSameBytes(t *testing.T) {
	reg := measure.NewRegistry()
	ps := points(t, reg)
	want := encodeAll(reg, append(ps, ps...))
	e := newEncoder(reg)
	var got []byte
	series := map[int]*measure.Series{}
	for range 2 {
		for i, p := range ps {
			s := series[i]
			if s == nil {
				s = &measure.Series{Metric: p.Metric, Resource: p.Resource, Consumer: p.Consumer, Attributes: p.Attributes}
				series[i] = s
			}
			got = e.appendCompact(got, &measure.SeriesPoint{Series: s, Time: p.Timestamp.UnixNano(), Value: p.Value})
		}
	}
	require.Equal(t, string(want), string(got))
}

// FuzzLine checks that every point gives one valid JSON line.
func FuzzLine(f *testing.F) {
	f.Add("taurus-3", "wattmetre_power_watt", "k", "v", 88.9, int64(1753182326000468000), uint64(0), false)
	f.Add("\xff", "\x00", "\"", "\\", math.NaN(), int64(-1), uint64(math.MaxUint64), true)
	f.Fuzz(func(t *testing.T, id, name, k, v string, fv float64, ns int64, u uint64, isU bool) {
		reg := measure.NewRegistry()
		m, err := reg.Register(measure.Metric{Name: "m" + name, Unit: measure.Custom(name), Type: measure.F64})
		if err != nil {
			t.Skip()
		}
		val := measure.Float(fv)
		if isU {
			val = measure.Uint(u)
		}
		p := measure.Point{Metric: m, Timestamp: time.Unix(0, ns), Value: val, Resource: measure.Resource{Kind: "device_id", ID: id},
			Attributes: []measure.Attribute{str(k, v), {Key: k, Value: measure.AttrValue{Type: measure.AttrF64, F64: fv}}}}
		line := encodeAll(reg, []measure.Point{p})
		if !bytes.HasSuffix(line, []byte("}\n")) || bytes.Count(line, []byte("\n")) != 1 || !json.Valid(line) {
			t.Fatalf("not one JSON line: %q", line)
		}
	})
}

func TestSampleConfig(t *testing.T) {
	var doc struct {
		Plugins struct {
			JSONL *Config `toml:"jsonl"`
		} `toml:"plugins"`
	}
	doc.Plugins.JSONL = DefaultConfig()
	doc.Plugins.JSONL.ForceFlush = false // must be set back by the sample
	doc.Plugins.JSONL.OutputPath = "x"
	md, err := toml.Decode(SampleConfig, &doc)
	require.NoError(t, err)
	require.Empty(t, md.Undecoded())
	require.Equal(t, DefaultConfig(), doc.Plugins.JSONL)
	for _, k := range []string{"output_path", "force_flush", "append"} {
		require.Contains(t, SampleConfig, k+" = ")
	}
	require.Error(t, (&Config{}).Validate())
}

func writeFile(t *testing.T, cfg *Config, reg *measure.Registry, bufs ...*measure.Buffer) error {
	t.Helper()
	o, err := Open(cfg, reg, nil)
	require.NoError(t, err)
	for _, b := range bufs {
		if err := o.Write(context.Background(), b); err != nil {
			o.Close()
			return err
		}
	}
	return o.Close()
}

func TestOutputFile(t *testing.T) {
	reg := measure.NewRegistry()
	ps := points(t, reg)
	want := encodeAll(reg, ps)
	for _, force := range []bool{true, false} {
		path := filepath.Join(t.TempDir(), "out.jsonl")
		cfg := &Config{OutputPath: path, ForceFlush: force}
		require.NoError(t, writeFile(t, cfg, reg, &measure.Buffer{Points: ps[:3]}, &measure.Buffer{}, &measure.Buffer{Points: ps[3:]}))
		got, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got), "force_flush %v", force)

		// Append: after the existing lines; a missing last newline is added.
		require.NoError(t, os.WriteFile(path, want[:len(want)-1], 0o644))
		cfg.Append = true
		require.NoError(t, writeFile(t, cfg, reg, &measure.Buffer{Points: ps}))
		got, err = os.ReadFile(path)
		require.NoError(t, err)
		require.Equal(t, string(want)+string(want), string(got))
		cfg.Append = false
		require.NoError(t, writeFile(t, cfg, reg, &measure.Buffer{Points: ps[:1]}))
		got, err = os.ReadFile(path)
		require.NoError(t, err)
		require.Equal(t, string(encodeAll(reg, ps[:1])), string(got), "truncated without append")
	}
}

// Without force_flush, lines reach the file within the flush interval,
// with no Write in between.
func TestBackgroundFlush(t *testing.T) {
	reg := measure.NewRegistry()
	ps := points(t, reg)
	path := filepath.Join(t.TempDir(), "out.jsonl")
	o, err := open(&Config{OutputPath: path}, reg, nil, time.Now, 10*time.Millisecond)
	require.NoError(t, err)
	require.NoError(t, o.Write(context.Background(), &measure.Buffer{Points: ps}))
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(path)
		return len(b) == len(encodeAll(reg, ps))
	}, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, o.Close())
}

// A full disk (/dev/full) fails the output loudly, with every point not
// written counted, by the Write that met it and every later one.
func TestWriteFailure(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	reg := measure.NewRegistry()
	ps := points(t, reg)
	big := &measure.Buffer{}
	for len(big.Points)*100 < 2*bufSize {
		big.Points = append(big.Points, ps...)
	}
	for _, force := range []bool{true, false} {
		o, err := Open(&Config{OutputPath: "/dev/full", ForceFlush: force}, reg, nil)
		require.NoError(t, err)
		err = o.Write(context.Background(), big)
		var le pipeline.LossError
		require.True(t, errors.As(err, &le), "force %v: %v", force, err)
		require.Equal(t, int64(len(big.Points)), le.LostPoints())
		require.ErrorContains(t, err, "writing /dev/full: ")
		require.ErrorContains(t, err, "no space left on device")
		err = o.Write(context.Background(), &measure.Buffer{Points: ps})
		require.True(t, errors.As(err, &le))
		require.Equal(t, int64(len(big.Points)+len(ps)), le.LostPoints())
		require.NoError(t, o.Close(), "already returned by Write")
	}
	// Met only at Close: returned by Close.
	o, err := Open(&Config{OutputPath: "/dev/full"}, reg, nil)
	require.NoError(t, err)
	require.NoError(t, o.Write(context.Background(), &measure.Buffer{Points: ps}))
	err = o.Close()
	var le pipeline.LossError
	require.True(t, errors.As(err, &le), "%v", err)
	require.Equal(t, int64(len(ps)), le.LostPoints())
}

// A torn write on a regular file is cut back to the last whole line.
func TestCutBack(t *testing.T) {
	reg := measure.NewRegistry()
	ps := points(t, reg)
	path := filepath.Join(t.TempDir(), "out.jsonl")
	o, err := Open(&Config{OutputPath: path, ForceFlush: true}, reg, nil)
	require.NoError(t, err)
	require.NoError(t, o.Write(context.Background(), &measure.Buffer{Points: ps[:2]}))
	// Simulate a short write: what a full disk does in the middle of a buffer.
	o.mu.Lock()
	_, err = o.f.Write([]byte(`{"metric":"torn`))
	require.NoError(t, err)
	o.mu.Unlock()
	require.Equal(t, "the file ends at its last whole line", o.cutBack(true))
	require.NoError(t, o.Close())
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(encodeAll(reg, ps[:2])), string(got))
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(&Config{OutputPath: filepath.Join(dir, "missing", "x.jsonl")}, measure.NewRegistry(), nil)
	require.ErrorContains(t, err, filepath.Join(dir, "missing", "x.jsonl"))
	_, err = Open(&Config{OutputPath: dir}, measure.NewRegistry(), nil)
	require.ErrorContains(t, err, dir)
	_, err = Open(&Config{}, measure.NewRegistry(), nil)
	require.ErrorContains(t, err, "output_path")
}

// A run without data (a refused pre-flight, an unreachable API) keeps an
// earlier run's file as it was, and leaves no empty file behind.
func TestNoDataKeepsEarlierFile(t *testing.T) {
	reg := measure.NewRegistry()
	ps := points(t, reg)
	dir := t.TempDir()
	earlier := filepath.Join(dir, "earlier.jsonl")
	require.NoError(t, os.WriteFile(earlier, []byte("{\"earlier\":1}\n"), 0o644))
	logs := &testkit.Logs{}
	o, err := Open(&Config{OutputPath: earlier, ForceFlush: true}, reg, logs.Logger())
	require.NoError(t, err)
	require.NoError(t, o.Write(context.Background(), &measure.Buffer{}))
	require.NoError(t, o.Close())
	b, err := os.ReadFile(earlier)
	require.NoError(t, err)
	require.Equal(t, "{\"earlier\":1}\n", string(b))
	require.Contains(t, logs.Text("INFO"), "no data: "+earlier+" not written, the previous file is kept")

	fresh := filepath.Join(dir, "fresh.jsonl")
	o, err = Open(&Config{OutputPath: fresh}, reg, nil)
	require.NoError(t, err)
	require.NoError(t, o.Close())
	_, err = os.Stat(fresh)
	require.ErrorIs(t, err, os.ErrNotExist)

	// With data, the earlier file is replaced.
	require.NoError(t, writeFile(t, &Config{OutputPath: earlier, ForceFlush: true}, reg, &measure.Buffer{Points: ps[:1]}))
	b, err = os.ReadFile(earlier)
	require.NoError(t, err)
	require.Equal(t, string(encodeAll(reg, ps[:1])), string(b))
}
