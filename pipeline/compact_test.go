package pipeline

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/measure"
)

// compactOutput records what reaches it, in both forms.
type compactOutput struct {
	mu              sync.Mutex
	points, compact []float64
}

func (o *compactOutput) WritesCompact() {}

func (o *compactOutput) Write(_ context.Context, b *measure.Buffer) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, p := range b.Points {
		o.points = append(o.points, p.Value.Float64())
	}
	for _, p := range b.Compact {
		o.compact = append(o.compact, p.Value.Float64())
	}
	return nil
}

func (o *compactOutput) Close() error { return nil }

// compactCounter is a transform that reads compact points as they are.
type compactCounter struct{ n *int }

func (c compactCounter) ReadsCompact() {}
func (c compactCounter) Apply(b *measure.Buffer) error {
	*c.n += len(b.Compact)
	return nil
}

// A source is told it may emit compact points only when they reach every
// output as they are (through transforms that read them); when it emits them anyway, the pipeline expands them
// for transforms and for outputs that read Points only.
func TestCompactPoints(t *testing.T) {
	series := &measure.Series{Resource: measure.Resource{Kind: "device_id", ID: "taurus-7"}}
	compactBuf := func() *measure.Buffer {
		b := measure.NewPooledCompactBuffer(3)
		for i := range 3 {
			b.Compact = append(b.Compact, measure.SeriesPoint{Series: series, Time: int64(i), Value: measure.Float(float64(i + 1))})
		}
		return b
	}
	for _, tt := range []struct {
		name        string
		transform   bool
		plainOutput bool
		reader      bool // a compactCounter first
		accepts     bool
	}{
		{"compact outputs only", false, false, false, true},
		{"a transform", true, false, false, false},
		{"an output of Points", false, true, false, false},
		{"a transform that reads compact points", false, false, true, true},
		{"a compact reader before a transform", true, false, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBuilder(measure.NewRegistry(), 1, nil)
			var accepts bool
			require.NoError(t, b.AddSource("s", sourceFunc(func(ctx context.Context, em Emitter) error {
				ce, ok := em.(CompactEmitter)
				accepts = ok && ce.AcceptsCompact()
				return em.Emit(ctx, compactBuf())
			})))
			var counted int
			if tt.reader {
				require.NoError(t, b.AddTransform("count", compactCounter{&counted}))
			}
			if tt.transform {
				require.NoError(t, b.AddTransform("double", doubler{}))
			}
			co := &compactOutput{}
			require.NoError(t, b.AddOutput("compact", co))
			var plain *recordingOutput
			if tt.plainOutput {
				plain = &recordingOutput{}
				require.NoError(t, b.AddOutput("plain", plain))
			}
			p := b.Start(context.Background())
			require.NoError(t, p.Stop(context.Background()))
			require.Equal(t, tt.accepts, accepts)
			want := []float64{1, 2, 3}
			if tt.transform {
				want = []float64{2, 4, 6}
			}
			if tt.accepts {
				require.Equal(t, want, co.compact)
				require.Empty(t, co.points)
			} else {
				require.Equal(t, want, co.points, "expanded, in order")
				require.Empty(t, co.compact)
			}
			if plain != nil {
				require.Equal(t, want, plain.values)
			}
			if tt.reader && tt.accepts {
				require.Equal(t, 3, counted, "the reader saw them compact")
			}
		})
	}
}

func TestHistoryExpandsCompact(t *testing.T) {
	var h History
	var got []measure.Point
	h.Subscribe(func(b *measure.Buffer) { got = append(got, b.Points...) })
	s := &measure.Series{Metric: 3, Resource: measure.Resource{Kind: "device_id", ID: "n"}}
	h.Deliver(&measure.Buffer{Compact: []measure.SeriesPoint{{Series: s, Time: 1_500_000_000, Value: measure.Float(9)}}})
	require.Len(t, got, 1)
	require.Equal(t, measure.MetricID(3), got[0].Metric)
	require.Equal(t, "n", got[0].Resource.ID)
	require.Equal(t, int64(1_500_000_000), got[0].Timestamp.UnixNano())
}

// listener records the events it hears, and when.
type listener struct {
	name  string
	heard *[]string
	mu    *sync.Mutex
}

func (l listener) OnEvent(_ context.Context, ev Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	*l.heard = append(*l.heard, l.name+" "+ev.Kind.String())
	return nil
}

type listeningTransform struct{ listener }

func (listeningTransform) Apply(*measure.Buffer) error { return nil }

type listeningOutput struct{ listener }

func (listeningOutput) Write(context.Context, *measure.Buffer) error { return nil }
func (listeningOutput) Close() error                                 { return nil }

type recordingHandler struct{ listener }

func (h recordingHandler) Run(ctx context.Context, _ Emitter) error { <-ctx.Done(); return nil }
func (h recordingHandler) HandleEvent(ctx context.Context, ev Event, _ Emitter) error {
	return h.OnEvent(ctx, ev)
}

// Events reach the sources first, then the transforms and the outputs that
// listen, each in order; the capabilities are found on any element.
func TestEventsReachEveryElement(t *testing.T) {
	var heard []string
	var mu sync.Mutex
	l := func(name string) listener { return listener{name: name, heard: &heard, mu: &mu} }
	b := NewBuilder(measure.NewRegistry(), 1, nil)
	require.NoError(t, b.AddOutput("out", listeningOutput{l("output")}))
	require.NoError(t, b.AddTransform("t", listeningTransform{l("transform")}))
	require.NoError(t, b.AddSource("s", recordingHandler{l("source")}))
	require.False(t, b.WritesFiles())
	p := b.Start(context.Background())
	require.False(t, p.ReadsPhases())
	require.NoError(t, p.Publish(context.Background(), Event{Kind: StartConsumerMeasurement}))
	require.NoError(t, p.Publish(context.Background(), Event{Kind: EndConsumerMeasurement}))
	require.NoError(t, p.Stop(context.Background()))
	require.Equal(t, []string{
		"source StartConsumerMeasurement", "transform StartConsumerMeasurement", "output StartConsumerMeasurement",
		"source EndConsumerMeasurement", "transform EndConsumerMeasurement", "output EndConsumerMeasurement",
	}, heard)
}
