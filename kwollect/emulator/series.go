package emulator

import (
	"container/heap"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
)

// This file holds the row generators: one lazy generator per stored series,
// the multi-PSU alias sum, the 5-minute summary, the k-way merge and the
// as_rate transform. Nothing here knows about HTTP.

// seriesInfo identifies an output series (device_id, metric_id, labels).
type seriesInfo struct {
	device     string
	metric     string
	labels     map[string]any // string, []string (_device_orig) or decoded JSON (pushed rows)
	labelsJSON []byte         // PostgreSQL jsonb rendering
	key        string         // deterministic tie-break key
}

func newSeriesInfo(device, metric string, labels map[string]any) *seriesInfo {
	if labels == nil {
		labels = map[string]any{}
	}
	lj := appendJSONB(nil, labels)
	return &seriesInfo{device: device, metric: metric, labels: labels, labelsJSON: lj,
		key: device + "\x00" + metric + "\x00" + string(lj)}
}

// row is one output row. ts is in µs since the epoch.
type row struct {
	ts   int64
	v    float64
	null bool // as_rate null
	s    *seriesInfo
}

// rowGen yields rows in non-decreasing timestamp order.
type rowGen interface {
	next() (row, bool)
}

type genKind uint8

const (
	kWattmetre genKind = iota
	kPDU
	kBMCPower
	kBMCEnergy
	kCPUTemp
	kNetIn
	kPromLoad1
	kGPUPower
	kRAPLPackage
	kRAPLDRAM
)

// seriesDesc describes one stored series and how to generate it.
type seriesDesc struct {
	kind   genKind
	device string // stored device id
	alias  string // node the device is an alias of ("" = stored under the node)
	metric string
	labels map[string]string
	node   *nodeModel
	h      uint64
	period int64 // µs between rows outside monitoring (0 = none)
	opt    int64 // µs between rows while monitored (0 = as period)
	phase  int64 // constant offset (µs) of the rows from the period grid
	// mon holds the sorted monitored intervals; it changes when jobs or
	// monitored nodes are added at runtime (monNode, monNames: the node and
	// the names monitor=<regexp> types match).
	mon      atomic.Pointer[[]interval]
	monNode  string
	monNames []string
	// wattmetre
	frameUs int64
	wmHash  uint64
	share   float64 // port share of the node's power; RAPL: socket share
	// misc
	idx     int     // cpu index (temperature), gpu index or RAPL socket
	nanRate float64 // probability of a NaN reading (BMC power)
	base    float64 // counter base (RAPL: µJ)
	// gaps are the sorted, disjoint ranges without rows (Config.Gaps)
	gaps []interval
	// output identities
	info    *seriesInfo // device = stored device (own series or raw device query)
	nanInfo *seriesInfo // same with value_str label
}

const maxJitterUs = 50

// setMonitoring recomputes the monitored intervals from the rules.
func (d *seriesDesc) setMonitoring(rules []monitorRule) {
	ivs := monitoredIntervals(rules, d.monNode, d.monNames...)
	d.mon.Store(&ivs)
}

// monitoring returns the current monitored intervals.
func (d *seriesDesc) monitoring() []interval {
	if p := d.mon.Load(); p != nil {
		return *p
	}
	return nil
}

// step returns the row period in the given monitoring state.
func (d *seriesDesc) step(monitored bool) int64 {
	if monitored && d.opt > 0 {
		return d.opt
	}
	if monitored && d.kind == kWattmetre {
		return d.frameUs
	}
	return d.period
}

// offset returns the timestamp offset of the row of grid point g.
func (d *seriesDesc) offset(g int64, monitored bool) int64 {
	if d.kind == kWattmetre {
		if !monitored {
			return 0
		}
		return d.jitter(g)
	}
	return d.phase
}

func (d *seriesDesc) jitter(g int64) int64 {
	return int64(unit(mix64(d.wmHash^uint64(g/d.frameUs))) * maxJitterUs)
}

func (d *seriesDesc) maxOffset() int64 {
	if d.kind == kWattmetre {
		return maxJitterUs
	}
	return d.phase
}

// centiwatts is the raw wattmetre reading (W × 100) of frame grid point g,
// stamped at ts: the port's share of an analytic signal's P(ts), or of the
// model with noise.
func (d *seriesDesc) centiwatts(g, ts int64, base float64) int64 {
	if sig := d.node.signalAt(ts); sig != nil {
		return int64(math.Round(d.share * sig.at(instant{us: ts}) * 100))
	}
	p := base + d.node.dyn*d.node.util(ts)
	return int64(math.Round((d.share*p + 1.5*noise(d.h, g/d.frameUs)) * 100))
}

// value computes the row value at grid point g / timestamp ts. It returns
// nan=true for a missing reading (value NaN with label value_str).
func (d *seriesDesc) value(g, ts int64, monitored bool) (v float64, nan bool) {
	n := d.node
	switch d.kind {
	case kWattmetre:
		base := n.idle + n.slow(g)
		if monitored {
			return float64(d.centiwatts(g, ts, base)) / 100, false
		}
		// 1 Hz row: mean of the raw frames of second g, rounded to 2
		// decimals like the frames; under an analytic signal, its exact
		// mean over the second.
		if sig := n.signalOver(g, g+usPerSec); sig != nil {
			return round2(d.share * sig.energy(instant{us: g}, instant{us: g + usPerSec})), false
		}
		frames := usPerSec / d.frameUs
		var sum int64
		for k := int64(0); k < frames; k++ {
			fg := g + k*d.frameUs
			sum += d.centiwatts(fg, fg+d.jitter(fg), base)
		}
		return math.Round(float64(sum)/float64(frames)) / 100, false
	}
	k := g / max(1, d.step(monitored)) // sample index
	switch d.kind {
	case kPDU:
		if sig := n.signalAt(ts); sig != nil {
			return math.Round(sig.at(instant{us: ts})), false
		}
		return math.Round(n.power(ts)*1.02 + noise(d.h, k)), false
	case kBMCPower:
		if d.nanRate > 0 && unit(mix64(d.h^uint64(k)^0x5eed)) < d.nanRate {
			return math.NaN(), true
		}
		if sig := n.signalAt(ts); sig != nil {
			return math.Round(sig.at(instant{us: ts})), false
		}
		return math.Round(n.power(ts)*1.04 + 2*noise(d.h, k)), false
	case kBMCEnergy:
		return math.Floor(d.base + n.energy(ts)/3600), false
	case kCPUTemp:
		return math.Round(36 + 3*float64(d.idx) + 22*n.util(ts) + 0.6*noise(d.h, k)), false
	case kNetIn:
		s := max(0, float64(ts-t0Us)/float64(usPerSec))
		return math.Floor(d.base + 1500*s + 40000*(n.cumUtil(ts)-n.cumUtil(t0Us))), false
	case kPromLoad1:
		return round2(0.03 + 30*n.util(ts) + 0.03*math.Abs(noise(d.h, k))), false
	case kGPUPower:
		return math.Round((38.5+0.8*float64(d.idx)+1.5*noise(d.h, k))*1000) / 1000, false
	case kRAPLPackage, kRAPLDRAM:
		pkg, dram := n.raplEnergy(ts)
		if d.kind == kRAPLDRAM {
			pkg = dram
		}
		return raplCounter(d.base, d.share*pkg), false
	}
	return 0, false
}

// descGen generates the rows of one stored series over [a, b], visible ones
// only: a row is visible when ts + extra <= vis, extra being 1 s for 1 Hz
// wattmetre means (written once their second is over), 0 otherwise.
type descGen struct {
	d    *seriesDesc
	mon  []interval // snapshot of d's monitored intervals
	info *seriesInfo
	p    int64 // next candidate grid point is >= p
	a, b int64
	vis  int64
	mi   int
	gi   int // first gap that may hold the next row
	done bool
}

func newDescGen(d *seriesDesc, info *seriesInfo, a, b, vis int64) *descGen {
	p := max(a-d.maxOffset(), dataStartUs)
	return &descGen{d: d, mon: d.monitoring(), info: info, p: p, a: a, b: min(b, vis), vis: vis}
}

func (g *descGen) next() (row, bool) {
	d := g.d
	for !g.done {
		mon := g.mon
		for g.mi < len(mon) && mon[g.mi].e <= g.p {
			g.mi++
		}
		monitored := g.mi < len(mon) && mon[g.mi].s <= g.p
		segEnd := posInf
		if monitored {
			segEnd = mon[g.mi].e
		} else if g.mi < len(mon) {
			segEnd = mon[g.mi].s
		}
		step := d.step(monitored)
		if step <= 0 {
			if segEnd >= posInf || segEnd > g.b {
				g.done = true
				break
			}
			g.p = segEnd
			continue
		}
		gp := ceilDiv(g.p, step) * step
		if gp >= segEnd {
			g.p = segEnd
			continue
		}
		if gp > g.b {
			g.done = true
			break
		}
		g.p = gp + 1
		ts := gp + d.offset(gp, monitored)
		if ts < g.a {
			continue
		}
		if ts > g.b {
			g.done = true
			break
		}
		if d.kind == kWattmetre && !monitored && ts+usPerSec > g.vis {
			g.done = true
			break
		}
		// Gaps: timestamps increase with the grid point (offsets are below
		// the step), so every grid point before gap end - maxOffset after
		// this one is in the gap too.
		for g.gi < len(d.gaps) && d.gaps[g.gi].e <= ts {
			g.gi++
		}
		if g.gi < len(d.gaps) && d.gaps[g.gi].s <= ts {
			if e := d.gaps[g.gi].e; e >= posInf {
				g.done = true
			} else {
				g.p = max(g.p, e-d.maxOffset())
			}
			continue
		}
		v, nan := d.value(gp, ts, monitored)
		if nan {
			return row{ts: ts, v: v, s: d.nanInfo}, true
		}
		return row{ts: ts, v: v, s: g.info}, true
	}
	return row{}, false
}

// sliceGen yields pre-sorted rows.
type sliceGen struct {
	rows []row
	i    int
}

func (g *sliceGen) next() (row, bool) {
	if g.i >= len(g.rows) {
		return row{}, false
	}
	g.i++
	return g.rows[g.i-1], true
}

// aliasGroup is the set of stored series aliased to one node that share a
// metric and labels (several PSUs on several ports).
type aliasGroup struct {
	metric string
	labels map[string]string
	descs  []*seriesDesc // sorted by device id
}

// sumGen merges the series of an alias group: rows with the same timestamp
// are summed into one row whose _device_orig lists the contributing devices.
type sumGen struct {
	node   string
	grp    *aliasGroup
	ins    []rowGen
	heads  []row
	live   []bool
	infos  map[uint64]*seriesInfo
	primed bool
}

func newSumGen(node string, grp *aliasGroup, ins []rowGen) *sumGen {
	return &sumGen{node: node, grp: grp, ins: ins, heads: make([]row, len(ins)), live: make([]bool, len(ins)), infos: map[uint64]*seriesInfo{}}
}

func (g *sumGen) next() (row, bool) {
	if !g.primed {
		for i, in := range g.ins {
			g.heads[i], g.live[i] = in.next()
		}
		g.primed = true
	}
	minTS, found := int64(0), false
	for i := range g.ins {
		if g.live[i] && (!found || g.heads[i].ts < minTS) {
			minTS, found = g.heads[i].ts, true
		}
	}
	if !found {
		return row{}, false
	}
	var mask uint64
	sum := 0.0
	for i := range g.ins {
		if g.live[i] && g.heads[i].ts == minTS {
			mask |= 1 << uint(i%64)
			sum += g.heads[i].v
			g.heads[i], g.live[i] = g.ins[i].next()
		}
	}
	info := g.infos[mask]
	if info == nil {
		var orig []string
		for i, d := range g.grp.descs {
			if mask&(1<<uint(i%64)) != 0 {
				orig = append(orig, d.device)
			}
		}
		labels := map[string]any{"_device_orig": orig}
		for k, v := range g.grp.labels {
			labels[k] = v
		}
		info = newSeriesInfo(g.node, g.grp.metric, labels)
		g.infos[mask] = info
	}
	return row{ts: minTS, v: sum, s: info}, true
}

const bucketUs = 5 * 60 * usPerSec

// summaryGen aggregates its input into 5-minute buckets: AVG, or MAX for
// metrics ending in _total; one row per bucket and series.
type summaryGen struct {
	in      rowGen
	head    row
	hasHead bool
	primed  bool
	pending []row
}

func (g *summaryGen) next() (row, bool) {
	if len(g.pending) > 0 {
		r := g.pending[0]
		g.pending = g.pending[1:]
		return r, true
	}
	if !g.primed {
		g.head, g.hasHead = g.in.next()
		g.primed = true
	}
	if !g.hasHead {
		return row{}, false
	}
	bucket := floorDiv(g.head.ts, bucketUs) * bucketUs
	type acc struct {
		s     *seriesInfo
		sum   float64
		max   float64
		n     int
		isMax bool
	}
	var accs []*acc
	for g.hasHead && g.head.ts < bucket+bucketUs {
		var a *acc
		for _, x := range accs {
			if x.s == g.head.s {
				a = x
				break
			}
		}
		if a == nil {
			a = &acc{s: g.head.s, max: g.head.v, isMax: strings.HasSuffix(g.head.s.metric, "_total")}
			accs = append(accs, a)
		}
		a.sum += g.head.v
		if g.head.v > a.max || math.IsNaN(g.head.v) {
			a.max = g.head.v
		}
		a.n++
		g.head, g.hasHead = g.in.next()
	}
	sort.Slice(accs, func(i, j int) bool { return accs[i].s.key < accs[j].s.key })
	for _, a := range accs {
		v := a.sum / float64(a.n)
		if a.isMax {
			v = a.max
		}
		g.pending = append(g.pending, row{ts: bucket, v: v, s: a.s})
	}
	return g.next()
}

// mergeGen is a k-way merge of generators ordered by (timestamp, series key,
// generator index).
type mergeGen struct {
	items mergeHeap
	init  bool
	gens  []rowGen
}

type mergeItem struct {
	r   row
	g   rowGen
	idx int
}

type mergeHeap []mergeItem

func (h mergeHeap) Len() int { return len(h) }
func (h mergeHeap) Less(i, j int) bool {
	a, b := &h[i], &h[j]
	if a.r.ts != b.r.ts {
		return a.r.ts < b.r.ts
	}
	if a.r.s != b.r.s && a.r.s.key != b.r.s.key {
		return a.r.s.key < b.r.s.key
	}
	return a.idx < b.idx
}
func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)   { *h = append(*h, x.(mergeItem)) }
func (h *mergeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func newMergeGen(gens []rowGen) *mergeGen { return &mergeGen{gens: gens} }

func (m *mergeGen) next() (row, bool) {
	if !m.init {
		m.init = true
		for i, g := range m.gens {
			if r, ok := g.next(); ok {
				m.items = append(m.items, mergeItem{r: r, g: g, idx: i})
			}
		}
		heap.Init(&m.items)
	}
	if len(m.items) == 0 {
		return row{}, false
	}
	top := &m.items[0]
	out := top.r
	if r, ok := top.g.next(); ok {
		top.r = r
		heap.Fix(&m.items, 0)
	} else {
		heap.Pop(&m.items)
	}
	return out, true
}

// rateGen implements as_rate on a merged stream: per series (device,
// metric, labels), the first row and rows with the previous row's timestamp
// are null; otherwise (v - p)/Δt, or (runmax - p + v)/Δt when v < p.
type rateGen struct {
	in rowGen
	st map[string]*rateState
}

type rateState struct {
	ts     int64
	v      float64
	runmax float64
}

func newRateGen(in rowGen) *rateGen { return &rateGen{in: in, st: map[string]*rateState{}} }

func (g *rateGen) next() (row, bool) {
	r, ok := g.in.next()
	if !ok {
		return r, false
	}
	p := g.st[r.s.key]
	if p == nil {
		g.st[r.s.key] = &rateState{ts: r.ts, v: r.v, runmax: r.v}
		r.null = true
		return r, true
	}
	v := r.v
	switch {
	case r.ts == p.ts:
		r.null = true
	case v >= p.v:
		r.v = (v - p.v) / (float64(r.ts-p.ts) / float64(usPerSec))
	default:
		r.v = (p.runmax - p.v + v) / (float64(r.ts-p.ts) / float64(usPerSec))
	}
	if v > p.runmax || math.IsNaN(v) {
		p.runmax = v
	}
	p.ts, p.v = r.ts, v
	return r, true
}

// labelsKey renders string labels deterministically (for hashing).
func labelsKey(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(strconv.Quote(k) + "=" + strconv.Quote(l[k]) + ";")
	}
	return b.String()
}
