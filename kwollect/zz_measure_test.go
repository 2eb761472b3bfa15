package kwollect

import (
	"bytes"
	"context"
	"testing"
	"time"
)

func TestZZMeasureDefaults(t *testing.T) {
	from := time.Date(2025, 3, 21, 10, 0, 0, 0, time.UTC)
	api := NewMemAPI(1, 1, from, time.Minute)
	q := Query{Site: "lyon", Nodes: api.Nodes, Metrics: []string{"wattmetre_power_watt"}, Start: from, End: from.Add(time.Minute)}
	for _, mode := range []string{"blackhole", "stall"} {
		m, base := newMisbehave(t, api, mode)
		m.stallAt = 400
		c, _ := NewClient(Options{BaseURL: base})
		b := time.Now()
		_, err := c.Stream(context.Background(), q, func(*Row) error { return nil })
		t.Logf("%s with defaults: %v -> %v", mode, time.Since(b), err)
	}
}

func BenchmarkZZGeneralNoLimit(b *testing.B) {
	const rows = 100_000
	body := benchBody(rows)
	b.SetBytes(int64(len(body)))
	for i := 0; i < b.N; i++ {
		n, err := DecodeWith(bytes.NewReader(body), DecodeOptions{General: true, MaxRowBytes: -1}, func(*Row) error { return nil })
		if err != nil || n != rows {
			b.Fatalf("n=%d err=%v", n, err)
		}
	}
}

func TestZZMeasureComplete(t *testing.T) {
	from := time.Date(2025, 3, 21, 10, 0, 0, 0, time.UTC)
	api := NewMemAPI(2, 1, from, time.Minute)
	to := from.Add(2 * time.Minute)
	m, base := newMisbehave(t, api, "ok")
	s := sessionFor(t, base, api, Options{}, SessionOptions{})
	c := newCollector()
	if _, err := s.Fetch(context.Background(), from, to, c.sink); err != nil {
		t.Fatal(err)
	}
	m.mode.Store("blackhole")
	b := time.Now()
	rep, err := s.Complete(context.Background(), to, b.Add(2*time.Minute), c.sink)
	t.Logf("Complete, black hole, defaults, deadline 2m: returned after %v (%v past the deadline), %d queries: %v", time.Since(b), time.Since(b)-2*time.Minute, rep.Queries, Brief(err))
}
