package push

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
)

// Sample records are the records of the outputs whose request groups the
// points of a batch (by series, by metric: prometheus-remote-write,
// opentelemetry): Write records each point as (series number, time,
// value), and Send builds the request from the batch's records and the
// output's table of series.

// MaxSeries bounds the series an output numbers (their encoded labels stay
// in memory, about 200 bytes each).
const MaxSeries = 1 << 20

// SampleSize is a record's most bytes: a series number (uvarint, at most
// 3 bytes below MaxSeries), the time and the value (8 bytes each).
const SampleSize = 3 + 16

// SampleBatchBytes is Options.BatchBytes for sample records: a batch
// sealed by its points, its buffer sized for them.
func SampleBatchBytes(batchPoints int) int {
	return max(batchPoints, DefaultBatchPoints) * SampleSize
}

// AppendSample appends the record of a sample of series.
func AppendSample(b []byte, series uint32, ns int64, v float64) []byte {
	b = binary.AppendUvarint(b, uint64(series))
	b = binary.LittleEndian.AppendUint64(b, uint64(ns))
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
}

// ErrCorruptBatch is what NextSample's caller returns (as a
// PermanentError) for a batch it cannot read.
var ErrCorruptBatch = errors.New("a corrupt batch of sample records")

// NextSample reads the first record of b; ok is false when b does not
// start with a whole record.
func NextSample(b []byte) (series uint32, ns int64, v float64, rest []byte, ok bool) {
	id, n := binary.Uvarint(b)
	if n <= 0 || len(b) < n+16 || id >= MaxSeries {
		return 0, 0, 0, b, false
	}
	return uint32(id), int64(binary.LittleEndian.Uint64(b[n:])), math.Float64frombits(binary.LittleEndian.Uint64(b[n+8:])), b[n+16:], true
}

// AppendSamples appends the records of buf's points to q. pointSeries and
// compactSeries number a point's series; when they give none (past
// MaxSeries) the point is left out and counted in over.
func AppendSamples(q *Queue, buf *measure.Buffer, pointSeries func(*measure.Point) (uint32, bool),
	compactSeries func(*measure.Series) (uint32, bool)) (over int64, err error) {
	if buf.Len() == 0 {
		return 0, nil
	}
	err = q.Append(buf.Len(), func(a *Appender) {
		for i := range buf.Points {
			p := &buf.Points[i]
			id, ok := pointSeries(p)
			if !ok {
				over++
				continue
			}
			a.Buf = AppendSample(a.Buf, id, p.Timestamp.UnixNano(), p.Value.Float64())
			a.End()
		}
		for i := range buf.Compact {
			p := &buf.Compact[i]
			id, ok := compactSeries(p.Series)
			if !ok {
				over++
				continue
			}
			a.Buf = AppendSample(a.Buf, id, p.Time, p.Value.Float64())
			a.End()
		}
	})
	return over, err
}

// ExtraLoss adds the points an output lost itself (left out, or refused
// by the server inside an accepted request) to its queue's losses (Err,
// the Queue's Close error, may be nil): a pipeline.LossError.
type ExtraLoss struct {
	Name string // the output
	Why  string // "rejected by the collector", "of series beyond 1048576 left out"
	N    int64
	Err  error
}

var _ pipeline.LossError = (*ExtraLoss)(nil)

// LostPoints implements pipeline.LossError.
func (e *ExtraLoss) LostPoints() int64 {
	var le pipeline.LossError
	if errors.As(e.Err, &le) {
		return le.LostPoints() + e.N
	}
	return e.N
}

func (e *ExtraLoss) Error() string {
	msg := fmt.Sprintf("%s: %s points %s", e.Name, pipeline.GroupDigits(e.N), e.Why)
	if e.Err != nil {
		msg = e.Err.Error() + "; " + msg
	}
	return msg
}

func (e *ExtraLoss) Unwrap() error { return e.Err }
