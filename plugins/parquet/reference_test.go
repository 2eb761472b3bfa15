package parquet

import (
	"os"
	"testing"

	pq "github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/measure"
)

// refWriter is how this package wrote Parquet before its own encoder:
// each point a parquet-go Row (the rowBuilder of then: pointRow,
// compactRow, appendTail), written by parquet-go's GenericWriter with
// the same options. The differential tests compare its files with the
// encoder's, row by row.
type refWriter struct {
	reg     *measure.Registry
	opts    Options
	cols    map[string]int // attribute key → its column (nFixed + i)
	kinds   []attrKind
	late    int
	metrics map[measure.MetricID][]byte
	which   []int
	late1   *rowBuilder // for its lateJSON
	w       *pq.GenericWriter[any]
	f       *os.File
}

func newRefWriter(t testing.TB, cfg *Config, reg *measure.Registry, path string) *refWriter {
	t.Helper()
	opts := Options{AppendUnitToMetricName: cfg.AppendUnitToMetricName, UseUnitDisplayName: cfg.UseUnitDisplayName, AttributeColumns: cfg.AttributeColumns}
	r := &refWriter{reg: reg, opts: opts, cols: map[string]int{}, kinds: make([]attrKind, len(opts.AttributeColumns)),
		metrics: map[measure.MetricID][]byte{}, which: make([]int, len(opts.AttributeColumns)), late1: newRowBuilder(reg, opts)}
	for i, k := range opts.AttributeColumns {
		r.cols[k] = nFixed + i
		r.kinds[i] = kindOf(k)
	}
	r.late = nFixed + len(opts.AttributeColumns)
	f, err := os.Create(path)
	require.NoError(t, err)
	r.f = f
	schema := Schema(cfg.AttributeColumns, cfg.Compression)
	wopts := []pq.WriterOption{schema, pq.MaxRowsPerRowGroup(cfg.RowGroupRows), pq.CreatedBy("alumet-agent parquet", Version, "")}
	for _, fl := range schema.Fields() {
		if fl.Type().Kind() == pq.ByteArray {
			wopts = append(wopts, pq.SkipPageBounds(fl.Name()))
		}
	}
	r.w = pq.NewGenericWriter[any](f, wopts...)
	return r
}

func (r *refWriter) metricName(id measure.MetricID) ([]byte, bool) {
	if n, ok := r.metrics[id]; ok {
		return n, true
	}
	m, ok := r.reg.Metric(id)
	if !ok {
		return nil, false
	}
	name := m.Name
	if r.opts.AppendUnitToMetricName {
		unit := m.Unit.UniqueName()
		if r.opts.UseUnitDisplayName {
			unit = m.Unit.DisplayName()
		}
		if unit != "" {
			name += "_" + unit
		}
	}
	r.metrics[id] = []byte(name)
	return r.metrics[id], true
}

func (r *refWriter) write(t testing.TB, buf *measure.Buffer) {
	t.Helper()
	var rows []pq.Row
	add := func(id measure.MetricID, ns int64, v measure.Value, res measure.Resource, c measure.Consumer, attrs []measure.Attribute) {
		metric, ok := r.metricName(id)
		if !ok {
			return
		}
		row := pq.Row{
			pq.ByteArrayValue(metric).Level(0, 0, colMetric),
			pq.Int64Value(ns).Level(0, 0, colTimestamp),
			pq.DoubleValue(v.Float64()).Level(0, 0, colValue)}
		rows = append(rows, r.appendTail(row, res, c, attrs))
	}
	for i := range buf.Points {
		p := &buf.Points[i]
		add(p.Metric, p.Timestamp.UnixNano(), p.Value, p.Resource, p.Consumer, p.Attributes)
	}
	for i := range buf.Compact {
		p := &buf.Compact[i]
		s := p.Series
		add(s.Metric, p.Time, p.Value, s.Resource, s.Consumer, s.Attributes)
	}
	_, err := r.w.WriteRows(rows)
	require.NoError(t, err)
}

func (r *refWriter) close(t testing.TB) {
	t.Helper()
	require.NoError(t, r.w.Close())
	require.NoError(t, r.f.Close())
}

// appendTail is the old rowBuilder.appendTail, verbatim but for the names.
func (r *refWriter) appendTail(row pq.Row, res measure.Resource, c measure.Consumer, attrs []measure.Attribute) pq.Row {
	str := func(s string) []byte { return []byte(s) }
	row = append(row,
		pq.ByteArrayValue(str(res.Kind)).Level(0, 0, colResourceKind),
		pq.ByteArrayValue(str(res.ID)).Level(0, 0, colResourceID),
		pq.ByteArrayValue(str(c.Kind)).Level(0, 0, colConsumerKind),
		pq.ByteArrayValue(str(c.ID)).Level(0, 0, colConsumerID))
	b := r.late1
	for i := range r.which {
		r.which[i] = -1
	}
	b.lateIdx = b.lateIdx[:0]
	for j := range attrs {
		col, ok := r.cols[attrs[j].Key]
		if ok && b.fits(r.kinds[col-nFixed], attrs[j].Value) {
			r.which[col-nFixed] = j
			continue
		}
		b.lateIdx = append(b.lateIdx, j)
	}
	for _, j := range b.lateIdx {
		if col, ok := r.cols[attrs[j].Key]; ok && r.which[col-nFixed] >= 0 && r.which[col-nFixed] < j {
			r.which[col-nFixed] = -1
		}
	}
	for i, j := range r.which {
		col := nFixed + i
		switch {
		case j < 0:
			row = append(row, pq.NullValue().Level(0, 0, col))
		case r.kinds[i] == attrInt64:
			row = append(row, pq.Int64Value(int64(attrs[j].Value.U64)).Level(0, 1, col))
		case attrs[j].Value.Type == measure.AttrString:
			row = append(row, pq.ByteArrayValue(str(attrs[j].Value.Str)).Level(0, 1, col))
		default:
			row = append(row, pq.ByteArrayValue(attrs[j].Value.AppendText(nil)).Level(0, 1, col))
		}
	}
	if len(b.lateIdx) == 0 {
		return append(row, pq.NullValue().Level(0, 0, r.late))
	}
	return append(row, pq.ByteArrayValue(b.lateJSON(attrs)).Level(0, 1, r.late))
}

// writeReference writes bufs to path with the reference writer.
func writeReference(t testing.TB, cfg *Config, reg *measure.Registry, path string, bufs ...*measure.Buffer) {
	t.Helper()
	r := newRefWriter(t, cfg, reg, path)
	for _, b := range bufs {
		r.write(t, b)
	}
	r.close(t)
}
