package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/bench/kwgen"
	"github.com/alumet-go/alumet-agent/kwollect"
	"github.com/alumet-go/alumet-agent/measure"
	csvout "github.com/alumet-go/alumet-agent/plugins/csv"
)

// fixture is a generated response served by an httptest server on
// 127.0.0.1 at the Kwollect URL shape.
type fixture struct {
	body    []byte
	sum     kwgen.Summary
	srv     *httptest.Server
	queries atomic.Int64
}

func newFixture(tb testing.TB, c kwgen.Config) *fixture {
	tb.Helper()
	var buf bytes.Buffer
	sum, err := kwgen.Generate(&buf, c)
	require.NoError(tb, err)
	f := &fixture{body: buf.Bytes(), sum: sum}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stable/sites/{site}/metrics", func(w http.ResponseWriter, r *http.Request) {
		f.queries.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(f.body)))
		_, _ = w.Write(f.body)
	})
	f.srv = httptest.NewServer(mux)
	tb.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) client(tb testing.TB) *kwollect.Client {
	tb.Helper()
	c, err := kwollect.NewClient(kwollect.Options{BaseURL: f.srv.URL + "/stable"})
	require.NoError(tb, err)
	return c
}

// window covers every row: from the first row's second to one second after
// the last row.
func (f *fixture) window() (from, to time.Time) {
	return f.sum.First.Truncate(time.Second), f.sum.Last.Truncate(time.Second).Add(time.Second)
}

func (f *fixture) targets() []kwollect.Target {
	ts := make([]kwollect.Target, len(f.sum.Nodes))
	for i, n := range f.sum.Nodes {
		ts[i] = kwollect.Target{Site: f.sum.Site, Node: n}
	}
	return ts
}

// csvSink turns rows into points the way the kwollect-input plugin does (a
// new buffer per batch, attributes metric_id and the labels, consumer
// device_origin) and formats them with the csv plugin's Writer. The
// pipeline between them (queue, plugin machinery) is not included.
type csvSink struct {
	reg  *measure.Registry
	ids  map[string]measure.MetricID
	w    *csvout.Writer
	rows int
}

func newCSVSink(out io.Writer) *csvSink {
	reg := measure.NewRegistry()
	return &csvSink{reg: reg, ids: map[string]measure.MetricID{}, w: csvout.NewWriter(out, reg, csvout.DefaultOptions())}
}

func (s *csvSink) metric(name string) (measure.MetricID, error) {
	if id, ok := s.ids[name]; ok {
		return id, nil
	}
	id, err := s.reg.Register(measure.Metric{Name: name, Unit: measure.UnitFromKwollectMetric(name), Type: measure.F64})
	if err == nil {
		s.ids[name] = id
	}
	return id, err
}

func (s *csvSink) write(rows []kwollect.Row) error {
	buf := &measure.Buffer{Points: make([]measure.Point, 0, len(rows))}
	for i := range rows {
		r := &rows[i]
		if r.Null {
			continue
		}
		id, err := s.metric(r.MetricID)
		if err != nil {
			return err
		}
		consumer := measure.Consumer{Kind: measure.KindLocalMachine}
		if len(r.DeviceOrig) > 0 {
			consumer = measure.Consumer{Kind: "device_origin", ID: strings.Join(r.DeviceOrig, ",")}
		}
		attrs := make([]measure.Attribute, 0, 1+len(r.Labels))
		attrs = append(attrs, measure.Attribute{Key: "metric_id", Value: measure.String(r.MetricID)})
		for _, l := range r.Labels {
			attrs = append(attrs, measure.Attribute{Key: l.Key, Value: measure.String(l.Value)})
		}
		buf.Push(measure.Point{
			Metric:     id,
			Timestamp:  r.Timestamp.UTC(),
			Value:      measure.Float(r.Value),
			Resource:   measure.Resource{Kind: "device_id", ID: r.DeviceID},
			Consumer:   consumer,
			Attributes: attrs,
		})
	}
	s.rows += len(buf.Points)
	return s.w.WriteBuffer(buf)
}

// fetchSession fetches the fixture's window with a Session, as alumet-agent
// fetch does (row budget large enough for one query).
func fetchSession(ctx context.Context, f *fixture, c *kwollect.Client, sink func([]kwollect.Row) error) (int, error) {
	s, err := c.NewSession(kwollect.Plan{Targets: f.targets(), Metrics: []string{kwgen.Metric}}, kwollect.SessionOptions{
		RowBudget: int(f.sum.Rows)*2 + 1000,
		Periods:   map[string]time.Duration{kwgen.Metric: f.sum.Period},
	})
	if err != nil {
		return 0, err
	}
	from, to := f.window()
	rep, err := s.Fetch(ctx, from, to, sink)
	return rep.Rows, err
}

// fetchStream sends one query with Client.Stream and batches the rows.
func fetchStream(ctx context.Context, f *fixture, c *kwollect.Client, sink func([]kwollect.Row) error) (int, error) {
	from, to := f.window()
	batch := make([]kwollect.Row, 0, 4096)
	n, err := c.Stream(ctx, kwollect.Query{Site: f.sum.Site, Nodes: f.sum.Nodes, Metrics: []string{kwgen.Metric}, Start: from, End: to},
		func(r *kwollect.Row) error {
			batch = append(batch, *r)
			if len(batch) == cap(batch) {
				err := sink(batch)
				batch = batch[:0]
				return err
			}
			return nil
		})
	if err == nil && len(batch) > 0 {
		err = sink(batch)
	}
	return n, err
}

type fetchFunc func(context.Context, *fixture, *kwollect.Client, func([]kwollect.Row) error) (int, error)

var fetchers = []struct {
	name  string
	fetch fetchFunc
}{{"session", fetchSession}, {"stream", fetchStream}}

// expectedCSV is the CSV the agent writes for a generated body, built from
// the body by hand (string operations, no shared code): the row order is
// the response's.
func expectedCSV(t *testing.T, body []byte) []string {
	t.Helper()
	lines := []string{"metric;timestamp;value;resource_kind;resource_id;consumer_kind;consumer_id;metric_id;__late_attributes"}
	elems := strings.Split(string(body[1:len(body)-1]), ", \n ")
	for _, e := range elems {
		field := func(key, end string) string {
			i := strings.Index(e, key)
			require.GreaterOrEqual(t, i, 0, "%s in %s", key, e)
			rest := e[i+len(key):]
			return rest[:strings.Index(rest, end)]
		}
		ts, err := time.Parse(time.RFC3339Nano, field(`"timestamp":"`, `"`))
		require.NoError(t, err)
		lines = append(lines, fmt.Sprintf("wattmetre_power_watt_W;%s;%s;device_id;%s;device_origin;%s;wattmetre_power_watt;",
			ts.UTC().Format(time.RFC3339Nano), field(`"value":`, `,`), field(`"device_id":"`, `"`), field(`"_device_orig": ["`, `"`)))
	}
	return lines
}

func TestFetchToCSV(t *testing.T) {
	for _, hz := range []int{1, 50} {
		f := newFixture(t, kwgen.Config{Rows: 5000, Nodes: 10, Hz: hz, Seed: 7})
		want := expectedCSV(t, f.body)
		for _, fe := range fetchers {
			t.Run(fmt.Sprintf("%s/%dHz", fe.name, hz), func(t *testing.T) {
				f.queries.Store(0)
				var out bytes.Buffer
				sink := newCSVSink(&out)
				n, err := fe.fetch(context.Background(), f, f.client(t), sink.write)
				require.NoError(t, err)
				require.NoError(t, sink.w.Flush())
				require.Equal(t, 5000, n)
				require.Equal(t, 5000, sink.rows)
				require.Equal(t, int64(1), f.queries.Load(), "one query for the whole window")
				var got []string
				sc := bufio.NewScanner(&out)
				for sc.Scan() {
					got = append(got, sc.Text())
				}
				require.Empty(t, cmp.Diff(want, got))
			})
		}
	}
}

// benchRows keeps each benchmark well under a second at -benchtime=1x.
const benchRows = 200_000

// BenchmarkFetchToCSV measures alumet-agent's path in process: HTTP on
// 127.0.0.1 (httptest, body in memory) → kwollect decoder (Session or
// Stream) → points → csv Writer → io.Discard, for a kwgen response of
// 200,000 rows from 10 nodes.
func BenchmarkFetchToCSV(b *testing.B) {
	for _, hz := range []int{50, 1} {
		f := newFixture(b, kwgen.Config{Rows: benchRows, Nodes: 10, Hz: hz, Seed: 1})
		for _, fe := range fetchers {
			b.Run(fmt.Sprintf("%s/%dHz", fe.name, hz), func(b *testing.B) {
				c := f.client(b)
				b.SetBytes(int64(len(f.body)))
				b.ReportAllocs()
				rows := 0
				for b.Loop() {
					sink := newCSVSink(io.Discard)
					n, err := fe.fetch(context.Background(), f, c, sink.write)
					if err == nil {
						err = sink.w.Flush()
					}
					if err != nil || n != benchRows {
						b.Fatalf("rows=%d err=%v", n, err)
					}
					rows += n
				}
				b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}

// BenchmarkGenerate measures kwgen: 200,000 rows of 10 nodes at 50 Hz to
// io.Discard.
func BenchmarkGenerate(b *testing.B) {
	for _, hz := range []int{50, 1} {
		b.Run(fmt.Sprintf("%dHz", hz), func(b *testing.B) {
			b.ReportAllocs()
			var size int64
			for b.Loop() {
				s, err := kwgen.Generate(io.Discard, kwgen.Config{Rows: benchRows, Nodes: 10, Hz: hz, Seed: 1})
				if err != nil {
					b.Fatal(err)
				}
				size = s.Bytes
			}
			b.SetBytes(size)
			b.ReportMetric(float64(benchRows*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// TestScriptsMatchAgentCSV checks that to_csv.py (and to_csv.jq when jq is
// installed) write the CSV of the in-process path above, on a generated
// response and on testdata/edge.json (NaN, ±Inf, labels, odd numbers).
// compare.sh checks them against the alumet-agent binary itself.
func TestScriptsMatchAgentCSV(t *testing.T) {
	if testing.Short() {
		t.Skip("runs python3")
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	edge, err := os.ReadFile("testdata/edge.json")
	require.NoError(t, err)
	gen := newFixture(t, kwgen.Config{Rows: 3000, Nodes: 4, Hz: 100, Seed: 5})
	cases := []struct {
		name    string
		body    []byte
		nodes   []string
		metrics []string
		// jqDiff are the lines jq writes differently (exponent notation).
		jqDiff map[string]string
	}{
		{"generated", gen.body, gen.sum.Nodes, []string{kwgen.Metric}, nil},
		{"edge", edge, []string{"taurus-7"}, []string{kwgen.Metric, "bmc_node_power_watt"}, map[string]string{";0.0000001;": ";1e-07;"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(tc.body)
			}))
			defer srv.Close()
			c, err := kwollect.NewClient(kwollect.Options{BaseURL: srv.URL + "/stable"})
			require.NoError(t, err)
			q := kwollect.Query{Site: "lyon", Nodes: tc.nodes, Metrics: tc.metrics, Start: time.Unix(1, 0), End: time.Unix(2e9, 0)}
			var want bytes.Buffer
			sink := newCSVSink(&want)
			batch := []kwollect.Row{}
			_, err = c.Stream(context.Background(), q, func(r *kwollect.Row) error {
				batch = append(batch, *r)
				return nil
			})
			require.NoError(t, err)
			require.NoError(t, sink.write(batch))
			require.NoError(t, sink.w.Flush())

			out := filepath.Join(t.TempDir(), "py.csv")
			cmd := exec.Command(py, "to_csv.py", c.URL(q), out)
			cmd.Stderr = io.Discard
			require.NoError(t, cmd.Run())
			got, err := os.ReadFile(out)
			require.NoError(t, err)
			require.Empty(t, cmp.Diff(strings.Split(want.String(), "\n"), strings.Split(string(got), "\n")), "python")

			jq, err := exec.LookPath("jq")
			if err != nil {
				return
			}
			cmd = exec.Command(jq, "-r", "-f", "to_csv.jq")
			cmd.Stdin = bytes.NewReader(tc.body)
			got, err = cmd.Output()
			require.NoError(t, err)
			exp := want.String()
			for from, to := range tc.jqDiff {
				exp = strings.ReplaceAll(exp, from, to)
			}
			require.Empty(t, cmp.Diff(strings.Split(exp, "\n"), strings.Split(string(got), "\n")), "jq")
		})
	}
}
