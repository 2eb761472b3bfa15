package lineflate

import (
	"bytes"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
)

// The compressors alone on a reference-like batch (5000 lines of 10 series,
// as push.Queue's default batch): MB/s of line protocol and the ratio.

// benchBatchOf is a batch of 5000 lines of nodes series: with 200, a
// series' previous line is 40 KB back, out of the window.
func benchBatchOf(nodes int) ([]string, []line, []byte) {
	p, l := refLines(nodes, 5000, 1)
	var text []byte
	for _, x := range l {
		text = append(append(text, p[x.series]...), x.tail...)
	}
	return p, l, text
}

func BenchmarkLineflate(b *testing.B) { benchLineflate(b, 10) }

func BenchmarkLineflate200(b *testing.B) { benchLineflate(b, 200) }

func benchLineflate(b *testing.B, nodes int) {
	p, l, text := benchBatchOf(nodes)
	w := &Writer{}
	series := make([]*Series, len(p))
	for i := range p {
		series[i] = w.NewSeries([]byte(p[i]))
	}
	tails := make([][]byte, len(l))
	for i := range l {
		tails[i] = []byte(l[i].tail)
	}
	stream := make([]byte, 0, 1<<20)
	var gz []byte
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		stream = stream[:0]
		for i := range l {
			stream = w.AppendLine(stream, series[l[i].series], tails[i])
		}
		gz, _ = Finish(gz[:0], stream)
	}
	b.ReportMetric(float64(len(text))/float64(len(gz)), "ratio")
	b.ReportMetric(float64(len(gz))/float64(len(l)), "bytes/line")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(l)), "ns/line")
}

func BenchmarkKlauspostLevel1(b *testing.B) { benchKlauspost(b, 10) }

func BenchmarkKlauspostLevel1_200(b *testing.B) { benchKlauspost(b, 200) }

func benchKlauspost(b *testing.B, nodes int) {
	_, l, text := benchBatchOf(nodes)
	var buf bytes.Buffer
	zw, _ := kgzip.NewWriterLevel(&buf, kgzip.BestSpeed)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		zw.Reset(&buf)
		_, _ = zw.Write(text)
		_ = zw.Close()
	}
	b.ReportMetric(float64(len(text))/float64(buf.Len()), "ratio")
	b.ReportMetric(float64(buf.Len())/float64(len(l)), "bytes/line")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(l)), "ns/line")
}
