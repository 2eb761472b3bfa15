package csv

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/measure"
)

// Compact points are written byte for byte as the same points would be:
// columns, late attributes, escaped cells, every delimiter, timestamps
// before 1970 and at whole seconds, and points in both forms in a buffer.
func TestCompactSameBytes(t *testing.T) {
	for _, tc := range []struct {
		name         string
		late, escape bool
	}{{"columns", false, false}, {"late", true, false}, {"escape", false, true}, {"late escape", true, true}} {
		for _, ds := range fuzzDelimiters {
			t.Run(tc.name+" "+string(ds.d), func(t *testing.T) {
				opts := Options{Delimiter: ds.d, LateDelimiter: ds.l, AppendUnitToMetricName: true}
				reg := measure.NewRegistry()
				first, buf := benchBuffers(t, reg, tc.late, tc.escape)
				odd := &measure.Buffer{}
				for i, ts := range []time.Time{
					time.Date(1969, 12, 31, 23, 59, 59, 999_999_000, time.UTC),
					time.Date(1900, 1, 1, 0, 0, 0, 1, time.UTC),
					time.Unix(0, 0).UTC(),
					time.Date(2025, 7, 22, 11, 5, 27, 0, time.UTC),
					time.Date(2262, 1, 1, 0, 0, 0, 5, time.UTC),
				} {
					p := buf.Points[i]
					p.Timestamp = ts
					odd.Push(p)
				}
				want := writeAll(t, reg, opts, first, buf, odd, buf)
				requireCompactSame(t, reg, opts, want, first, buf, odd, buf)

				// One buffer with points in both forms: Points first.
				c := compactOf(buf)[0]
				mixed := &measure.Buffer{Points: odd.Points, Compact: c.Compact}
				var both bytes.Buffer
				w := NewWriter(&both, reg, opts)
				require.NoError(t, w.WriteBuffer(first))
				require.NoError(t, w.WriteBuffer(mixed))
				require.NoError(t, w.Flush())
				require.Equal(t, string(writeAll(t, reg, opts, first, odd, buf)), both.String())
			})
		}
	}
}

// A header decided by a compact buffer is the one its points give.
func TestCompactHeader(t *testing.T) {
	reg := measure.NewRegistry()
	first, buf := benchBuffers(t, reg, true, false)
	want := writeAll(t, reg, DefaultOptions(), buf, first)
	requireCompactSame(t, reg, DefaultOptions(), want, buf, first)
}

// The series cache starts afresh past maxSeriesTails series, and a
// failed Writer counts compact points as lost.
func TestCompactManySeriesAndLoss(t *testing.T) {
	reg := measure.NewRegistry()
	id := register(t, reg, "m", measure.Plain(measure.Watt), measure.F64)
	buf := &measure.Buffer{}
	for i := range maxSeriesTails + 10 {
		s := &measure.Series{Metric: id, Resource: measure.Resource{Kind: "device_id", ID: "n"}, Consumer: measure.Consumer{Kind: "c", ID: string(rune('a' + i%26))}}
		buf.Compact = append(buf.Compact, measure.SeriesPoint{Series: s, Time: int64(i), Value: measure.Float(1)})
	}
	w := NewWriter(io.Discard, reg, DefaultOptions())
	require.NoError(t, w.WriteBuffer(buf))
	require.LessOrEqual(t, len(w.seriesTails), maxSeriesTails)

	fw := NewWriter(failingWriter{io.ErrClosedPipe}, reg, Options{BufferSize: 64})
	err := fw.WriteBuffer(buf)
	require.Error(t, err)
	var we *WriteError
	require.ErrorAs(t, err, &we)
	require.Equal(t, int64(buf.Len()), we.Lost, "every point is lost: none was written")
}
