package parquet

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"slices"
	"unsafe"

	"github.com/alumet-go/alumet-agent/measure"
)

// maxSeries bounds the series whose cells are cached: past it, the cache
// starts afresh.
const maxSeries = 4096

// seriesSlots is the size of the direct-mapped cache of compact series:
// one pointer comparison per row instead of a map lookup.
const seriesSlots = 256

// pointSlots is the size of the direct-mapped cache of plain points' series.
const pointSlots = 64

// seriesSlot maps a compact series to its number in the row group gen.
type seriesSlot struct {
	s   *measure.Series
	sid uint32
	gen uint32
}

// seriesEntry is a series whose cells are computed, and its number in the
// row group gen.
type seriesEntry struct {
	c   cells
	gen uint32
	sid uint32
	// Plain points: what the series is, and the next entry of its hash.
	key  pointKey
	next *seriesEntry
}

// pointKey is what identifies the series of a plain point. Its attributes
// are a copy: a refilled buffer may reuse the point's.
type pointKey struct {
	metric   measure.MetricID
	resource measure.Resource
	consumer measure.Consumer
	attrs    []measure.Attribute
}

// seriesCache finds the series of a point: by address for compact points
// (a *measure.Series must not change once a point refers to it), by value
// for plain points.
type seriesCache struct {
	rb       *rowBuilder
	slots    [seriesSlots]seriesSlot
	bySeries map[*measure.Series]*seriesEntry
	pslots   [pointSlots]*seriesEntry
	byHash   map[uint64]*seriesEntry
	n        int
	hash     maphash.Hash
}

func (c *seriesCache) init(rb *rowBuilder) {
	c.rb = rb
	c.bySeries = map[*measure.Series]*seriesEntry{}
	c.byHash = map[uint64]*seriesEntry{}
}

// entry returns a new entry, the cache started afresh when full.
func (c *seriesCache) entry() *seriesEntry {
	if c.n >= maxSeries {
		clear(c.bySeries)
		clear(c.byHash)
		c.pslots = [pointSlots]*seriesEntry{}
		c.n = 0
	}
	c.n++
	return &seriesEntry{}
}

// slotOf is the slot of a compact series: a multiplicative hash of its address.
func slotOf(s *measure.Series) int {
	return int((uint64(uintptr(unsafe.Pointer(s))) * 0x9e3779b97f4a7c15) >> (64 - 8))
}

// compactMiss returns the number of s in the row group, adding it, when
// its slot did not have it; false when its metric is unknown.
func (e *encoder) compactMiss(s *measure.Series) (uint32, bool) {
	c := &e.series
	en := c.bySeries[s]
	if en == nil {
		metric, ok := c.rb.metricName(s.Metric)
		if !ok {
			return 0, false
		}
		en = c.entry()
		c.rb.cellsOf(&en.c, metric, s.Resource, s.Consumer, s.Attributes)
		c.bySeries[s] = en
	}
	if en.gen != e.gen {
		en.sid, en.gen = e.addSeries(&en.c), e.gen
	}
	c.slots[slotOf(s)] = seriesSlot{s: s, sid: en.sid, gen: e.gen}
	return en.sid, true
}

// pointSID returns the number of p's series in the row group, adding it
// when new; false when its metric is unknown.
func (e *encoder) pointSID(p *measure.Point) (uint32, bool) {
	c := &e.series
	metric, ok := c.rb.metricName(p.Metric)
	if !ok {
		return 0, false
	}
	ps := &c.pslots[pointSlot(p)]
	en := *ps
	if en == nil || !en.key.matches(p) {
		h := c.hashOf(p)
		en = c.byHash[h]
		for en != nil && !en.key.matches(p) {
			en = en.next
		}
		if en == nil {
			en = c.entry()
			en.key = keyOf(p)
			c.rb.cellsOf(&en.c, metric, p.Resource, p.Consumer, p.Attributes)
			en.next = c.byHash[h]
			c.byHash[h] = en
		}
		*ps = en
	}
	if en.gen != e.gen {
		en.sid, en.gen = e.addSeries(&en.c), e.gen
	}
	return en.sid, true
}

// pointSlot picks the slot of a plain point from its metric and the ends
// of its ids (node and port names differ at the end: taurus-1, taurus-2…).
func pointSlot(p *measure.Point) int {
	h := uint(p.Metric) * 17
	for _, id := range [2]string{p.Resource.ID, p.Consumer.ID} {
		h = h*31 + uint(len(id))
		if n := len(id); n > 0 {
			h = h*131 + uint(id[n-1])
			if n > 1 {
				h = h*7 + uint(id[n-2])
			}
		}
	}
	return int(h & (pointSlots - 1))
}

func (c *seriesCache) hashOf(p *measure.Point) uint64 {
	h := &c.hash
	h.Reset()
	var b [8]byte
	num := func(u uint64) {
		binary.LittleEndian.PutUint64(b[:], u)
		_, _ = h.Write(b[:])
	}
	str := func(s string) {
		num(uint64(len(s)))
		_, _ = h.WriteString(s)
	}
	num(uint64(p.Metric))
	str(p.Resource.Kind)
	str(p.Resource.ID)
	str(p.Consumer.Kind)
	str(p.Consumer.ID)
	for i := range p.Attributes {
		a := &p.Attributes[i]
		str(a.Key)
		num(uint64(a.Value.Type))
		str(a.Value.Str)
		num(a.Value.U64)
		num(math.Float64bits(a.Value.F64))
		if a.Value.Bool {
			num(1)
		}
		num(uint64(len(a.Value.List)))
		for _, u := range a.Value.List {
			num(u)
		}
	}
	return h.Sum64()
}

func keyOf(p *measure.Point) pointKey {
	attrs := slices.Clone(p.Attributes)
	for i := range attrs {
		attrs[i].Value.List = slices.Clone(attrs[i].Value.List)
	}
	return pointKey{metric: p.Metric, resource: p.Resource, consumer: p.Consumer, attrs: attrs}
}

// matches reports whether p is of the series k (attributes compared by
// value, floats bitwise: NaN matches NaN and 0 does not match -0).
func (k *pointKey) matches(p *measure.Point) bool {
	if k.metric != p.Metric || k.resource != p.Resource || k.consumer != p.Consumer || len(k.attrs) != len(p.Attributes) {
		return false
	}
	for i := range k.attrs {
		a, b := &k.attrs[i], &p.Attributes[i]
		if a.Key != b.Key || a.Value.Type != b.Value.Type || a.Value.Str != b.Value.Str || a.Value.U64 != b.Value.U64 ||
			a.Value.Bool != b.Value.Bool || math.Float64bits(a.Value.F64) != math.Float64bits(b.Value.F64) ||
			!slices.Equal(a.Value.List, b.Value.List) {
			return false
		}
	}
	return true
}
