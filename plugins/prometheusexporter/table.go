package prometheusexporter

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/alumet-go/alumet-agent/measure"
)

// family is one exposed metric family: a name, its help and unit word, and
// its series.
type family struct {
	name   string
	help   string
	unit   string
	series map[string]*entry // by label text
	order  []*entry          // sorted by labels when !dirty
	dirty  bool
}

// entry is one series: its label text ({k="v",…}, immutable) and its last
// point.
type entry struct {
	fam     *family
	labels  string
	value   measure.Value
	ts      int64 // the point's time, Unix ns
	updated int64 // when it was last written (the exporter's clock, Unix ns)
	removed bool  // dropped as stale: a cached pointer must be looked up again
}

// table is the exporter's state: the last point of every series. Write
// updates it under mu, in chunks, and a scrape copies the values out under
// mu and formats them outside it.
type table struct {
	mu        sync.Mutex
	families  map[string]*family
	fams      []*family // sorted by name when !famDirty
	famDirty  bool
	nseries   int
	maxSeries int
	// staleAfter > 0 removes the series not written for that long (ns).
	staleAfter int64
	lastSweep  int64
	dropped    int64 // points of series refused because of maxSeries
	refused    int64 // series refused
	writes     uint64
	seen       uint64        // the writes the last scrape saw
	scraped    chan struct{} // closed and replaced by every scrape
}

func newTable(maxSeries int, staleAfter time.Duration) *table {
	return &table{families: map[string]*family{}, maxSeries: maxSeries, staleAfter: staleAfter.Nanoseconds(), scraped: make(chan struct{})}
}

// sweepEvery is how often a full table may be swept on write.
const sweepEvery = int64(time.Second)

// familyLocked returns the family of that name, created with help and unit
// on first use (the first metric of that name gives them).
func (t *table) familyLocked(name, help, unit string) *family {
	f := t.families[name]
	if f == nil {
		f = &family{name: name, help: help, unit: unit, series: map[string]*entry{}}
		t.families[name] = f
		t.fams = append(t.fams, f)
		t.famDirty = true
	}
	return f
}

// entryLocked returns the series of f with these labels, created if the
// bound allows; nil when it does not (the point is counted as dropped).
func (t *table) entryLocked(f *family, labels []byte, now int64) *entry {
	if e := f.series[string(labels)]; e != nil {
		return e
	}
	if t.nseries >= t.maxSeries && t.staleAfter > 0 && now-t.lastSweep >= sweepEvery {
		// Full: make room from the stale series first (at most once a
		// second, so that a flood of new series does not sweep per point).
		t.sweepLocked(now)
	}
	if t.nseries >= t.maxSeries {
		t.refused++
		return nil
	}
	e := &entry{fam: f, labels: string(labels), ts: minTime}
	f.series[e.labels] = e
	f.order = append(f.order, e)
	f.dirty = true
	t.nseries++
	return e
}

const minTime = -1 << 63

// setLocked records a point: it replaces the series' point unless it is
// older (an out-of-order point never moves a series back in time).
func (t *table) setLocked(e *entry, ts int64, v measure.Value, now int64) {
	if ts < e.ts {
		return
	}
	e.ts, e.value, e.updated = ts, v, now
}

// sample is a copy of an entry's point, taken under the lock.
type sample struct {
	e     *entry
	value measure.Value
	ts    int64
}

// snapshot is what a scrape renders: the families in name order, each
// followed by its samples in label order.
type snapshot struct {
	fams    []*family
	counts  []int
	samples []sample
}

// snapshot copies the table out into dst's memory, first dropping the
// series not written for staleAfter (when > 0).
func (t *table) snapshot(now time.Time, dst []sample) snapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.staleAfter > 0 {
		t.sweepLocked(now.UnixNano())
	}
	if t.famDirty {
		slices.SortFunc(t.fams, func(a, b *family) int { return cmp.Compare(a.name, b.name) })
		t.famDirty = false
	}
	s := snapshot{samples: slices.Grow(dst[:0], t.nseries)}
	for _, f := range t.fams {
		if len(f.order) == 0 {
			continue
		}
		if f.dirty {
			slices.SortFunc(f.order, func(a, b *entry) int { return cmp.Compare(a.labels, b.labels) })
			f.dirty = false
		}
		s.fams = append(s.fams, f)
		s.counts = append(s.counts, len(f.order))
		for _, e := range f.order {
			s.samples = append(s.samples, sample{e: e, value: e.value, ts: e.ts})
		}
	}
	t.seen = t.writes
	close(t.scraped)
	t.scraped = make(chan struct{})
	return s
}

// sweepLocked removes the series not written for staleAfter at now.
func (t *table) sweepLocked(now int64) {
	t.lastSweep = now
	cutoff := now - t.staleAfter
	for _, f := range t.fams {
		kept := f.order[:0]
		for _, e := range f.order {
			if e.updated < cutoff {
				delete(f.series, e.labels)
				e.removed = true
				t.nseries--
				continue
			}
			kept = append(kept, e)
		}
		clear(f.order[len(kept):])
		f.order = kept
	}
}

// waitScrape waits until a scrape has seen every write, or until the deadline.
// It reports whether one did.
func (t *table) waitScrape(deadline <-chan time.Time) bool {
	for {
		t.mu.Lock()
		done, ch := t.seen == t.writes, t.scraped
		t.mu.Unlock()
		if done {
			return true
		}
		select {
		case <-ch:
		case <-deadline:
			return false
		}
	}
}
