package kwollect_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alumet-go/alumet-agent/kwollect"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
	"github.com/alumet-go/alumet-agent/plugin"
	"github.com/alumet-go/alumet-agent/plugins/csv"
	"github.com/alumet-go/alumet-agent/plugins/kwollectinput"
)

// countingOutput counts the points written through it.
type countingOutput struct {
	pipeline.Output
	points atomic.Int64
}

func (o *countingOutput) Write(ctx context.Context, buf *measure.Buffer) error {
	o.points.Add(int64(len(buf.Points)))
	return o.Output.Write(ctx, buf)
}

// BenchmarkFetchToCSV is the agent's hot path of `fetch --from --to`:
// 1,000,000 rows (10 nodes at 50 Hz for 2000 s, about 170 MB of JSON) are
// fetched from a loopback server that writes a pre-generated body, turned
// into points, and the pipeline hands them to the csv plugin's output,
// which writes the CSV to /dev/null (set ALUMET_BENCH_CSV to a directory to
// write a real file there). Run it with -cpu 1 for the one-core figure.
//
// plugin is the kwollect-input plugin as it is. sharedattrs is the same
// fetch with the row-to-point conversion proposed for it (see
// docs/performance.md): batches reused by the session, and the metric id
// and attribute slice looked up once per series instead of once per row.
func BenchmarkFetchToCSV(b *testing.B) {
	b.Run("plugin", func(b *testing.B) { benchFetchToCSV(b, false) })
	b.Run("sharedattrs", func(b *testing.B) { benchFetchToCSV(b, true) })
}

func benchFetchToCSV(b *testing.B, shared bool) {
	from := time.Date(2025, 3, 10, 10, 0, 0, 0, time.UTC)
	m := kwollect.NewMemAPI(10, 50, from, 2000*time.Second)
	url := kwollect.StartMemAPI(b, m)
	path := os.DevNull
	if dir := os.Getenv("ALUMET_BENCH_CSV"); dir != "" {
		path = filepath.Join(dir, "bench.csv")
	}
	logger := slog.New(slog.DiscardHandler)
	b.SetBytes(int64(m.Bytes()))
	b.ReportAllocs()
	total := int64(0)
	cpu0 := kwollect.CPUTime()
	for b.Loop() {
		reg := measure.NewRegistry()
		bl := pipeline.NewBuilder(reg, 0, logger)
		kcfg := kwollectinput.DefaultConfig()
		kcfg.Site = "lyon"
		kcfg.Nodes = m.Nodes
		kcfg.APIURL = url
		kcfg.Login, kcfg.Password = "bench", "bench" // no ~/.netrc lookup
		if shared {
			client, err := kwollect.NewClient(kwollect.Options{BaseURL: url})
			if err != nil {
				b.Fatal(err)
			}
			if err := bl.AddSource("kwollect-input", &sharedAttrsSource{client: client, reg: reg, nodes: m.Nodes}); err != nil {
				b.Fatal(err)
			}
		} else {
			env := plugin.Env{Pipeline: bl, Logger: logger, Mode: plugin.ModeFetch, StartTime: from}
			if err := kwollectinput.Factory().Start(context.Background(), kcfg, env); err != nil {
				b.Fatal(err)
			}
		}
		ccfg := csv.DefaultConfig()
		ccfg.OutputPath = path
		out, err := csv.OpenFile(ccfg, reg, logger)
		if err != nil {
			b.Fatal(err)
		}
		co := &countingOutput{Output: out}
		if err := bl.AddOutput("csv", co); err != nil {
			b.Fatal(err)
		}
		p := bl.Start(context.Background())
		for _, ev := range []pipeline.Event{
			{Kind: pipeline.StartConsumerMeasurement, Time: m.From},
			{Kind: pipeline.EndConsumerMeasurement, Time: m.To},
		} {
			if err := p.Publish(context.Background(), ev); err != nil {
				b.Fatal(err)
			}
		}
		if err := p.Stop(context.Background()); err != nil {
			b.Fatal(err)
		}
		if n := co.points.Load(); n != int64(m.Rows()) {
			b.Fatalf("%d points written, want %d", n, m.Rows())
		}
		total += co.points.Load()
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(total)/(kwollect.CPUTime()-cpu0).Seconds(), "rows/cpu-s")
}

// sharedAttrsSource fetches the window of the end event like kwollect-input
// does, with the row-to-point conversion proposed for it.
type sharedAttrsSource struct {
	client *kwollect.Client
	reg    *measure.Registry
	nodes  []string
	start  time.Time
}

func (s *sharedAttrsSource) Run(ctx context.Context, _ pipeline.Emitter) error {
	<-ctx.Done()
	return nil
}

func (s *sharedAttrsSource) HandleEvent(ctx context.Context, ev pipeline.Event, out pipeline.Emitter) error {
	if ev.Kind == pipeline.StartConsumerMeasurement {
		s.start = ev.Time
		return nil
	}
	var targets []kwollect.Target
	for _, n := range s.nodes {
		targets = append(targets, kwollect.Target{Site: "lyon", Node: n})
	}
	sess, err := s.client.NewSession(kwollect.Plan{Targets: targets, Metrics: []string{"wattmetre_power_watt"}},
		kwollect.SessionOptions{ReuseBatches: true})
	if err != nil {
		return err
	}
	_, err = sess.Fetch(ctx, s.start, ev.Time, newSharedSink(ctx, s.reg, out))
	return err
}

// newSharedSink converts rows to points: per series (device, metric,
// _device_orig, labels) the consumer and the attribute slice are built
// once per batch and shared by its points, with their capacity capped so
// that a transform appending to one point's attributes copies them.
func newSharedSink(ctx context.Context, reg *measure.Registry, out pipeline.Emitter) func([]kwollect.Row) error {
	ids := map[string]measure.MetricID{}
	type series struct {
		dev, metric string
		orig        []string
		labels      []kwollect.Label
		id          measure.MetricID
		consumer    measure.Consumer
		attrs       []measure.Attribute
	}
	var cache []series
	var slots [32]int // direct-mapped: device id → index in cache + 1
	same := func(a *series, r *kwollect.Row) bool {
		if a.dev != r.DeviceID || a.metric != r.MetricID || len(a.orig) != len(r.DeviceOrig) || len(a.labels) != len(r.Labels) {
			return false
		}
		for i := range a.orig {
			if a.orig[i] != r.DeviceOrig[i] {
				return false
			}
		}
		for i := range a.labels {
			if a.labels[i] != r.Labels[i] {
				return false
			}
		}
		return true
	}
	return func(rows []kwollect.Row) error {
		cache = cache[:0] // a new batch: its buffers get their own attributes
		clear(slots[:])
		buf := &measure.Buffer{Points: make([]measure.Point, 0, len(rows))}
		for i := range rows {
			r := &rows[i]
			if r.Null {
				continue
			}
			h := len(r.DeviceID) * 7
			if n := len(r.DeviceID); n > 0 {
				h += int(r.DeviceID[n-1]) * 31
			}
			slot := &slots[h&31]
			k := -1
			if j := *slot - 1; j >= 0 && same(&cache[j], r) {
				k = j
			} else {
				for j := range cache {
					if same(&cache[j], r) {
						k = j
						break
					}
				}
			}
			if k < 0 {
				id, ok := ids[r.MetricID]
				if !ok {
					var err error
					id, err = reg.Register(measure.Metric{Name: r.MetricID, Unit: measure.UnitFromKwollectMetric(r.MetricID), Type: measure.F64})
					if err != nil {
						return err
					}
					ids[r.MetricID] = id
				}
				cons := measure.Consumer{Kind: measure.KindLocalMachine}
				if len(r.DeviceOrig) > 0 {
					cons = measure.Consumer{Kind: "device_origin", ID: strings.Join(r.DeviceOrig, ",")}
				}
				attrs := make([]measure.Attribute, 0, 1+len(r.Labels))
				attrs = append(attrs, measure.Attribute{Key: "metric_id", Value: measure.String(r.MetricID)})
				for _, l := range r.Labels {
					attrs = append(attrs, measure.Attribute{Key: l.Key, Value: measure.String(l.Value)})
				}
				cache = append(cache, series{dev: r.DeviceID, metric: r.MetricID, orig: r.DeviceOrig, labels: r.Labels,
					id: id, consumer: cons, attrs: attrs[:len(attrs):len(attrs)]})
				k = len(cache) - 1
			}
			*slot = k + 1
			se := &cache[k]
			buf.Points = append(buf.Points, measure.Point{
				Metric:     se.id,
				Timestamp:  r.Timestamp.UTC(),
				Value:      measure.Float(r.Value),
				Resource:   measure.Resource{Kind: "device_id", ID: r.DeviceID},
				Consumer:   se.consumer,
				Attributes: se.attrs,
			})
		}
		return out.Emit(ctx, buf)
	}
}
