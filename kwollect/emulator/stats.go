package emulator

import "sync"

// Stats are the emulator's counters since it started. Requests to the
// control endpoint are not counted.
type Stats struct {
	// Requests counts every request (authorised or not).
	Requests int64 `json:"requests"`
	// MetricsGET and MetricsPOST count the requests to the metrics
	// endpoint that passed authentication, faulted or not.
	MetricsGET  int64 `json:"metrics_get"`
	MetricsPOST int64 `json:"metrics_post"`
	// RowsServed counts the rows written by metrics GETs (truncated bodies
	// included), RowsPosted the rows stored by POSTs.
	RowsServed int64 `json:"rows_served"`
	RowsPosted int64 `json:"rows_posted"`
	// RowLimitErrors counts the "too much data" errors of Config.RowLimit.
	RowLimitErrors int64 `json:"row_limit_errors"`
	// StatementTimeouts counts the "too much data" errors of
	// Config.StatementTimeout (the time form).
	StatementTimeouts int64 `json:"statement_timeouts"`
	// Faults counts the injected faults, FaultsByKind per kind.
	Faults       int64               `json:"faults"`
	FaultsByKind map[FaultKind]int64 `json:"faults_by_kind"`
	// ByStatus counts the responses per HTTP status; 0 = the connection
	// was reset before any response.
	ByStatus map[int]int64 `json:"by_status"`
	// Held is a gauge: the connections held open right now by a black
	// hole or a stall (status 0 in ByStatus unless a stall's 200 was sent).
	Held int64 `json:"held"`
}

// Flight counts the metrics GETs being served (kept out of Stats, whose
// struct tests compare whole).
type Flight struct {
	// InFlight is a gauge: the metrics GETs being served right now (from
	// the moment they pass authentication until their handler returns:
	// faults, server work and the whole body included); MaxInFlight is
	// the largest InFlight seen, for asserting a client's concurrency
	// without timing.
	InFlight    int64 `json:"in_flight"`
	MaxInFlight int64 `json:"max_in_flight"`
}

// controlStats is what GET /_emulator/stats answers.
type controlStats struct {
	Stats
	Flight
}

// statsCounter is the concurrent form of Stats. Counters move before the
// response they describe is complete on the wire, so a client that has read
// a response sees it in Stats.
type statsCounter struct {
	mu sync.Mutex
	s  Stats
	f  Flight
}

func newStatsCounter() *statsCounter {
	return &statsCounter{s: Stats{FaultsByKind: map[FaultKind]int64{}, ByStatus: map[int]int64{}}}
}

func (c *statsCounter) update(f func(s *Stats)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.s)
}

func (c *statsCounter) snapshot() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.s
	out.FaultsByKind = make(map[FaultKind]int64, len(c.s.FaultsByKind))
	for k, v := range c.s.FaultsByKind {
		out.FaultsByKind[k] = v
	}
	out.ByStatus = make(map[int]int64, len(c.s.ByStatus))
	for k, v := range c.s.ByStatus {
		out.ByStatus[k] = v
	}
	return out
}

// Stats returns a snapshot of the counters.
func (e *Emulator) Stats() Stats { return e.stats.snapshot() }

// Flight returns the metrics GETs in flight now and at most so far.
func (e *Emulator) Flight() Flight {
	e.stats.mu.Lock()
	defer e.stats.mu.Unlock()
	return e.stats.f
}

// flying moves the in-flight gauge by d (+1 when a GET starts, -1 when
// it ends).
func (c *statsCounter) flying(d int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.f.InFlight += d
	c.f.MaxInFlight = max(c.f.MaxInFlight, c.f.InFlight)
}
