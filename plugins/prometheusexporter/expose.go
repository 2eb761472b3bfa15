package prometheusexporter

import (
	"compress/gzip"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/alumet-go/alumet-agent/measure"
)

// The exposition formats.
const (
	// ContentTypeOpenMetrics is what Alumet always serves, and what this
	// exporter serves unless the scraper prefers the text format.
	ContentTypeOpenMetrics = "application/openmetrics-text; version=1.0.0; charset=utf-8"
	// ContentTypeText is Prometheus' text format 0.0.4.
	ContentTypeText = "text/plain; version=0.0.4; charset=utf-8"
)

// NegotiateOpenMetrics reports whether a request with this Accept header
// gets OpenMetrics: unless text/plain has a higher quality than
// application/openmetrics-text (a missing Accept, */* and ties give
// OpenMetrics, Alumet's format).
func NegotiateOpenMetrics(accept string) bool {
	if strings.TrimSpace(accept) == "" {
		return true
	}
	om, text, any := -1.0, -1.0, -1.0
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if v, err := strconv.ParseFloat(s, 64); err == nil && v >= 0 && v <= 1 {
				q = v
			}
		}
		switch mt {
		case "application/openmetrics-text":
			om = max(om, q)
		case "text/plain":
			text = max(text, q)
		case "*/*", "application/*", "text/*":
			any = max(any, q)
		}
	}
	if om < 0 {
		om = any
	}
	if text < 0 {
		text = any
	}
	return !(text > om)
}

// ServeHTTP serves GET (and HEAD) /metrics; other paths are 404 Not Found
// as in Alumet, other methods 405.
func (x *Exporter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/metrics" {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	om := NegotiateOpenMetrics(r.Header.Get("Accept"))
	bp := bufPool.Get().(*[]byte)
	body := x.Render((*bp)[:0], om)
	h := w.Header()
	if om {
		h.Set("Content-Type", ContentTypeOpenMetrics)
	} else {
		h.Set("Content-Type", ContentTypeText)
	}
	h.Set("Vary", "Accept, Accept-Encoding")
	if r.Method == http.MethodGet && len(body) > 1024 && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		zw := gzipPool.Get().(*gzip.Writer)
		zw.Reset(w)
		_, _ = zw.Write(body)
		_ = zw.Close()
		gzipPool.Put(zw)
	} else {
		h.Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
	}
	if cap(body) <= 64<<20 {
		*bp = body[:0]
		bufPool.Put(bp)
	}
}

var (
	samplePool = sync.Pool{New: func() any { return new([]sample) }}
	bufPool    = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}
	gzipPool   = sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed); return w }}
)

func acceptsGzip(ae string) bool {
	for _, part := range strings.Split(ae, ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) != "gzip" {
			continue
		}
		if q, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if v, err := strconv.ParseFloat(q, 64); err == nil && v == 0 {
				return false
			}
		}
		return true
	}
	return false
}

// Render appends the exposition of the table to b: OpenMetrics 1.0.0 (with
// # UNIT lines and # EOF) or the text format 0.0.4. Families come in name
// order, each with # HELP and # TYPE gauge, and its series in label order.
// Series not written for stale_after are dropped first.
func (x *Exporter) Render(b []byte, openMetrics bool) []byte {
	sp := samplePool.Get().(*[]sample)
	s := x.t.snapshot(x.now(), *sp)
	defer func() {
		clear(s.samples) // no pointer kept to removed series
		*sp = s.samples[:0]
		samplePool.Put(sp)
	}()
	k := 0
	for i, f := range s.fams {
		b = append(b, "# HELP "...)
		b = append(b, f.name...)
		b = append(b, ' ')
		b = appendHelp(b, f.help, openMetrics)
		b = append(b, "\n# TYPE "...)
		b = append(b, f.name...)
		b = append(b, " gauge\n"...)
		if openMetrics && f.unit != "" {
			b = append(b, "# UNIT "...)
			b = append(b, f.name...)
			b = append(b, ' ')
			b = append(b, f.unit...)
			b = append(b, '\n')
		}
		for _, smp := range s.samples[k : k+s.counts[i]] {
			b = append(b, f.name...)
			b = append(b, smp.e.labels...)
			b = append(b, ' ')
			b = appendValue(b, smp.value)
			if x.cfg.ExposeTimestamps {
				b = append(b, ' ')
				b = appendTimestamp(b, smp.ts, openMetrics)
			}
			b = append(b, '\n')
		}
		k += s.counts[i]
	}
	if openMetrics {
		b = append(b, "# EOF\n"...)
	}
	return b
}

// appendValue appends a sample value: a u64 in decimal, a float in its
// shortest form without exponent (Alumet's), NaN, +Inf or -Inf.
func appendValue(b []byte, v measure.Value) []byte {
	if v.Type() == measure.U64 {
		return strconv.AppendUint(b, v.Uint64(), 10)
	}
	f := v.Float64()
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	}
	return measure.AppendFloat(b, f)
}

// appendTimestamp appends a sample timestamp: seconds with up to 9
// decimals in OpenMetrics, milliseconds in the text format.
func appendTimestamp(b []byte, ns int64, openMetrics bool) []byte {
	if !openMetrics {
		return strconv.AppendInt(b, floorDiv(ns, 1e6), 10)
	}
	u := uint64(ns)
	if ns < 0 {
		b = append(b, '-')
		u = -u
	}
	sec, frac := u/1e9, u%1e9
	b = strconv.AppendUint(b, sec, 10)
	if frac == 0 {
		return b
	}
	d := strconv.AppendUint(make([]byte, 0, 10), frac+1e9, 10)[1:] // 9 digits
	n := len(d)
	for d[n-1] == '0' {
		n--
	}
	b = append(b, '.')
	return append(b, d[:n]...)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
