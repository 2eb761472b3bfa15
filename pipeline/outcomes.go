package pipeline

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// Status is what a source obtained for one requested series over one
// measured window.
type Status string

// The statuses, from best to worst.
const (
	// StatusComplete: samples cover the whole window.
	StatusComplete Status = "complete"
	// StatusPartial: some samples, but parts of the window have none.
	StatusPartial Status = "partial"
	// StatusEmpty: no sample at all in the window.
	StatusEmpty Status = "empty"
	// StatusFailed: the queries for the series failed; what they missed
	// is unknown.
	StatusFailed Status = "failed"
)

// Bad reports whether the status is anything but complete.
func (s Status) Bad() bool { return s != StatusComplete }

// Interval is a span of time, [From, To].
type Interval struct{ From, To time.Time }

// Outcome is what a source obtained for one requested (node, metric) over
// one measured window (a run of exec, the window of watch or fetch, the
// whole of run mode).
type Outcome struct {
	Run            int // exec --repeat index, 0 otherwise
	Node, Site     string
	Metric         string
	Window         Interval
	Status         Status
	Samples        int
	First, Last    time.Time  // zero without samples
	Coverage       float64    // share of the window with samples, 0..1
	Missing        []Interval // the parts of the window without samples
	Lag            time.Duration
	LagKnown       bool   // Lag was observed (Kwollect was seen behind)
	Reason         string // why the series is not complete, in a few words
	Period         time.Duration
	FetchedLaterOK bool // a later fetch may still get the missing data (lag, failed queries)
	// Anomalies says what was wrong in the source's answers for the
	// window (rows skipped or dropped as duplicates, trailing data), "" if
	// nothing: the data kept is sound, but a reader of the numbers should
	// know.
	Anomalies string
}

// Outcomes is the side channel on which sources record, per window, what
// they obtained for each requested series, so that the agent can say it
// at the end and exit accordingly, and elements (energy-report) can put it
// in their reports. It is safe for concurrent use.
type Outcomes struct {
	mu      sync.Mutex
	list    []Outcome
	fetches []Fetch
}

// Record adds or replaces (same run, node, metric and window start) the
// outcome of a series.
func (o *Outcomes) Record(oc Outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, x := range o.list {
		if x.Run == oc.Run && x.Node == oc.Node && x.Metric == oc.Metric && x.Window.From.Equal(oc.Window.From) {
			o.list[i] = oc
			return
		}
	}
	o.list = append(o.list, oc)
}

// All returns the outcomes recorded, in run, node, metric order.
func (o *Outcomes) All() []Outcome {
	o.mu.Lock()
	out := slices.Clone(o.list)
	o.mu.Unlock()
	slices.SortStableFunc(out, func(a, b Outcome) int {
		if a.Run != b.Run {
			return a.Run - b.Run
		}
		if a.Node != b.Node {
			if a.Node < b.Node {
				return -1
			}
			return 1
		}
		if a.Metric < b.Metric {
			return -1
		}
		if a.Metric > b.Metric {
			return 1
		}
		return a.Window.From.Compare(b.Window.From)
	})
	return out
}

// Of returns the outcome of node and metric in run, if recorded.
func (o *Outcomes) Of(run int, node, metric string) (Outcome, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, x := range o.list {
		if x.Run == run && x.Node == node && x.Metric == metric {
			return x, true
		}
	}
	return Outcome{}, false
}

// Bad returns the outcomes that are not complete.
func (o *Outcomes) Bad() []Outcome {
	var out []Outcome
	for _, x := range o.All() {
		if x.Status.Bad() {
			out = append(out, x)
		}
	}
	return out
}

// Describe says an outcome in a few words: its status, coverage,
// the missing intervals and why.
func (oc Outcome) Describe() string {
	var b strings.Builder
	switch oc.Status {
	case StatusComplete:
		fmt.Fprintf(&b, "complete, %d samples", oc.Samples)
		if oc.LagKnown {
			fmt.Fprintf(&b, ", Kwollect was %s behind", HumanDuration(oc.Lag))
		}
		return b.String()
	case StatusPartial:
		fmt.Fprintf(&b, "PARTIAL, %.1f %% covered, %d samples", math.Floor(1000*oc.Coverage)/10, oc.Samples)
	case StatusEmpty:
		b.WriteString("EMPTY, no sample")
	case StatusFailed:
		b.WriteString("FAILED")
	}
	if len(oc.Missing) > 0 && oc.Status == StatusPartial {
		b.WriteString(", missing ")
		for i, m := range oc.Missing {
			if i == 3 {
				fmt.Fprintf(&b, " and %d more", len(oc.Missing)-3)
				break
			}
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "[%s, %s]", ClockTime(m.From), ClockTime(m.To))
		}
	}
	if oc.Reason != "" {
		b.WriteString(": " + oc.Reason)
	}
	return b.String()
}

// ClockTime is a time of day in UTC, to the millisecond when it has a
// fraction.
func ClockTime(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond() == 0 {
		return t.Format("15:04:05Z")
	}
	return t.Format("15:04:05.000Z")
}

// HumanDuration is a duration for people: "38 s", "2.5 s", "6 min 10 s".
func HumanDuration(d time.Duration) string {
	switch {
	case d >= 10*time.Minute:
		return d.Round(time.Minute).String()
	case d >= time.Minute:
		d = d.Round(time.Second)
		return fmt.Sprintf("%d min %d s", int(d.Minutes()), int(d.Seconds())%60)
	case d >= 10*time.Second:
		return fmt.Sprintf("%.0f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// Fetch is what a source did to get one window: its queries, for the
// provenance of a run directory.
type Fetch struct {
	Source  string // the source's plugin
	Run     int
	Window  Interval
	Rows    int
	Queries int
	Retries int
	// FailedChunks counts the parts of the window whose queries failed for
	// good.
	FailedChunks int
	Anomalies    string
}

// RecordFetch adds what a source did for a window.
func (o *Outcomes) RecordFetch(f Fetch) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fetches = append(o.fetches, f)
}

// Fetches returns the fetches recorded, in order.
func (o *Outcomes) Fetches() []Fetch {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.fetches)
}
