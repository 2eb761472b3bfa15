package energyreport

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/alumet-go/alumet-agent/energy"
	"github.com/alumet-go/alumet-agent/measure"
)

// seriesKind says what the values of a reported metric are.
type seriesKind uint8

const (
	// powerKind: power readings (W), integrated as they are.
	powerKind seriesKind = iota
	// counterKind: the readings of a cumulative energy counter
	// (Prometheus' *_joules_total, a BMC's *_watthour_total).
	counterKind
	// incrementKind: the energy of the interval that ends at each point
	// (Delta semantics: rapl_consumed_energy, Alumet's CounterDiff).
	incrementKind
)

// raplMetric is the rapl source's metric: its per-domain totals over the
// sockets (domain "<d>_total", on local_machine) are reported, each as
// its own series; the per-socket points, which they sum, are not.
const raplMetric = "rapl_consumed_energy"

// classify says whether the report integrates m, as what, and the joules
// of one unit of its values. Power: a gauge in W. Energy: a metric in J
// or Wh (any prefix) with Delta semantics (increments) or Counter ones, a
// *_total gauge in J or Wh, and Kwollect's *_joules_total (whose unit the
// name gives as "joules") and *_watthour_total. The report's own
// <metric>_energy points are not read back.
func classify(m measure.Metric) (kind seriesKind, scale float64, ok bool) {
	if m.Unit == measure.Plain(measure.Watt) {
		return powerKind, 1, m.Semantics == measure.Gauge
	}
	if isReportEnergy(m) {
		return 0, 0, false
	}
	total := strings.HasSuffix(m.Name, "_total")
	switch {
	case m.Unit.Base == measure.Joule || m.Unit.Base == measure.WattHour:
		scale = prefixFactor(m.Unit.Prefix)
		if m.Unit.Base == measure.WattHour {
			scale *= 3600
		}
	case strings.HasSuffix(m.Name, "_joules_total"):
		scale = 1
	default:
		return 0, 0, false
	}
	switch {
	case m.Semantics == measure.Delta:
		return incrementKind, scale, true
	case m.Semantics == measure.Counter || total:
		return counterKind, scale, true
	}
	return 0, 0, false
}

// energyDescription is the description of the report's <metric>_energy
// points, which tells them apart from a source's energy metric.
const energyDescription = " over the measured window"

func isReportEnergy(m measure.Metric) bool {
	return strings.HasSuffix(m.Name, "_energy") && m.Semantics == measure.Delta &&
		strings.HasPrefix(m.Description, "Energy of ") && strings.HasSuffix(m.Description, energyDescription)
}

// prefixFactor is what an SI prefix multiplies by.
func prefixFactor(p measure.Prefix) float64 {
	switch p {
	case measure.Nano:
		return 1e-9
	case measure.Micro:
		return 1e-6
	case measure.Milli:
		return 1e-3
	case measure.Kilo:
		return 1e3
	case measure.Mega:
		return 1e6
	case measure.Giga:
		return 1e9
	}
	return 1
}

// energyName is the series name of an energy metric's point: the metric,
// with the rapl source's domain ("rapl_consumed_energy.package_total");
// skip is true for the rapl source's per-socket points.
func energyName(metric string, attrs []measure.Attribute) (name string, skip bool) {
	if metric != raplMetric {
		return metric, false
	}
	for _, a := range attrs {
		if a.Key == "domain" && a.Value.Type == measure.AttrString {
			if !strings.HasSuffix(a.Value.Str, "_total") {
				return "", true
			}
			return metric + "." + a.Value.Str, false
		}
	}
	return metric, false
}

// partOf names, among the series of one node and energy metric, the one
// of a point: its labels (a counter per CPU socket: index=0, index=1) and
// device origin. Each part is a counter of its own, converted on its own,
// and the node's energy is the sum of its parts.
func partOf(cons measure.Consumer, attrs []measure.Attribute) string {
	var parts []string
	for _, a := range attrs {
		switch a.Key {
		case "metric_id", "run", "site", "domain":
			continue
		}
		parts = append(parts, a.Key+"="+a.Value.String())
	}
	if cons.Kind == "device_origin" {
		parts = append(parts, "origin="+cons.ID)
	}
	return strings.Join(parts, ",")
}

// converter turns one energy series (a counter's readings, or the
// increments of its intervals) into the mean power of each interval,
// stamped at the interval's end (energy.IntervalMean): the report then
// integrates, plots and baselines it like any power series. Points come
// in time order (the sources deliver a series so); an older or repeated
// one is dropped and counted.
type converter struct {
	kind  seriesKind
	scale float64 // J per unit of the values
	has   bool
	lastT int64
	lastV float64
	// An increment series' first point: its interval is not known until
	// the second one gives the period.
	pending  bool
	pendT    int64
	pendJ    float64
	resets   int  // decreases of a counter (a reset or a wrap)
	disorder int  // points older than the previous one, dropped
	integral bool // every reading so far is an integer (a coarse counter)
	stepped  bool // a coarse counter stepped once: its differences start there
	// firsts are the first readings given (at most maxFirsts, in the
	// metric's unit): the run before ends its differences with them.
	firsts []rawSample
}

// maxFirsts bounds converter.firsts: a coarse counter's next step is
// within a few readings.
const maxFirsts = 16

func newConverter(kind seriesKind, scale float64) *converter {
	return &converter{kind: kind, scale: scale, integral: true}
}

// add converts the point (t ns, v in the metric's unit), giving emit the
// power samples it yields.
func (c *converter) add(t int64, v float64, emit func(t int64, w float64)) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return // a counter's missing reading: the next one covers its interval
	}
	if len(c.firsts) < maxFirsts {
		c.firsts = append(c.firsts, rawSample{t: t, w: v})
	}
	if v != math.Trunc(v) {
		c.integral = false
	}
	if c.has && t <= c.lastT {
		c.disorder++
		return
	}
	j := v * c.scale
	switch c.kind {
	case counterKind:
		if c.has {
			d := j - c.lastV
			switch {
			case d == 0 && c.integral:
				// A coarse counter (a BMC's integer watt-hours) that has
				// not stepped yet: the interval joins the next one, whose
				// step then spreads over both, rather than reading 0 W
				// then a step's worth over one interval.
				return
			case d > 0 && c.integral && !c.stepped:
				// Its first step: the counter's fraction of a step before
				// it is unknown, so the differences start here (one step
				// between two steps is exact); before, the power is
				// extrapolated (bridged) from the next intervals'.
				c.stepped = true
			case d >= 0:
				emit(t, d/(float64(t-c.lastT)/1e9))
			default:
				// A reset or a wrap of unknown range: no energy for this
				// interval from the readings; IntervalMean gives it the
				// next interval's power (the next sample covers both).
				c.resets++
			}
		}
	case incrementKind:
		switch {
		case !c.has:
			c.pending, c.pendT, c.pendJ = true, t, j
		case c.pending:
			d := float64(t-c.lastT) / 1e9
			emit(c.pendT, c.pendJ/d)
			emit(t, j/d)
			c.pending = false
		default:
			emit(t, j/(float64(t-c.lastT)/1e9))
		}
	}
	c.has, c.lastT, c.lastV = true, t, j
}

// quantum is the energy of one step of a coarse counter (integer readings:
// a BMC's watt-hour counter steps by 3600 J): the readings at the two ends
// of a window are each off by up to one step, so the energy is off by up
// to one step.
func (c *converter) quantum() float64 {
	if c.kind == counterKind && c.integral && c.has {
		return c.scale
	}
	return 0
}

// energyOptions is the integration of the power derived from an energy
// series: each sample covers the interval that ends at it.
func energyOptions(period time.Duration) energy.Options {
	return energy.Options{Method: energy.IntervalMean, Period: period, GapFactor: energy.DefaultGapFactor}
}

// localNode names the node of the points of on-node sources (resource
// local_machine: the rapl source's totals), so that they sit next to the
// same node's Kwollect series: the local_node key; else, on a Grid'5000
// node, its short name; else the one node kwollect-input measures; else
// "local_machine".
func (r *report) localNode() string {
	r.localMu.Lock()
	defer r.localMu.Unlock()
	if r.local != "" {
		return r.local
	}
	r.local = "local_machine"
	switch {
	case r.cfg.LocalNode != "":
		r.local = r.cfg.LocalNode
	case r.hostname != "" && strings.HasSuffix(r.hostname, ".grid5000.fr"):
		r.local, _, _ = strings.Cut(r.hostname, ".")
	default:
		if sites, _ := r.directory.Sites(); len(sites) == 1 {
			for n := range sites {
				r.local = n
			}
		}
	}
	return r.local
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

// energyMethod is a row's method text for an energy series: the
// integration, what the power came from, and how many counters were
// summed and reset.
func energyMethod(base string, kind seriesKind, parts []string, resets int) string {
	from := "counter readings"
	if kind == incrementKind {
		from = "per-interval energy"
	}
	out := base + ", from " + from
	if len(parts) > 1 || len(parts) == 1 && parts[0] != "" {
		out += fmt.Sprintf("; the sum of %d counters (%s)", len(parts), strings.Join(slices.Clone(parts), "; "))
	}
	if resets > 0 {
		out += fmt.Sprintf("; %d decrease(s) of the counter (a reset or a wrap): the energy of those intervals is estimated from the next reading's", resets)
	}
	return out
}

// coarseText is said of a coarse counter: its intervals are those between
// its steps, not between its readings.
func coarseText(step float64) string {
	return fmt.Sprintf("; a coarse counter (integer readings, %s J a step): the intervals are those between its steps, and one step is in the uncertainty", strconv.FormatFloat(step, 'f', -1, 64))
}

// partsOf returns the series of k's node, metric and run, one per part
// (k.part is ignored), in part order; with r.byNMR kept up to date by
// seriesOf.
func (r *report) partsOf(k seriesKey) []*series {
	k.part = ""
	return r.byNMR[k]
}

// sumParts is the row of a node and energy metric: the sum of its
// counters' rows (one row: it only gets the method text). The energy,
// uncertainty, samples and bridged energy add up; the coverage is the
// worst part's, the gaps those of every part; the mean and the peak are
// of the sum (the peak an upper bound: the parts' peaks added).
//
// sumBaselines: the parts' baselines (their history's medians) add up too;
// a constant baseline is the row's as it is.
func sumParts(rows []row, parts []*series, sumBaselines bool) row {
	out := rows[0]
	out.key.part = ""
	var names []string
	resets, disorder := 0, 0
	quantum := 0.0
	for i, s := range parts {
		names = append(names, s.key.part)
		if s.conv != nil {
			resets += s.conv.resets
			disorder += s.conv.disorder
			quantum += s.conv.quantum()
		}
		if i == 0 {
			continue
		}
		rw := rows[i]
		if !rw.hasData {
			continue
		}
		if !out.hasData {
			keep := out.key
			out = rw
			out.key = keep
			continue
		}
		out.res = addResults(out.res, rw.res)
		out.gaps = append(out.gaps, rw.gaps...)
		out.late += rw.late
		for j := range out.phases {
			if j < len(rw.phases) {
				out.phases[j] = addResults(out.phases[j], rw.phases[j])
			}
		}
		if sumBaselines {
			out.baseline += rw.baseline // NaN when a part has none
		}
	}
	slices.SortFunc(out.gaps, func(a, b energy.Gap) int { return a.From.Compare(b.From) })
	out.res.Gaps = out.gaps
	if out.hasData {
		out.res.Uncertainty += energy.Joules(quantum)
		for j := range out.phases {
			out.phases[j].Uncertainty += energy.Joules(quantum)
		}
		out.method = energyMethod(out.res.Method, parts[0].kind, names, resets)
		if quantum > 0 {
			out.method += coarseText(parts[0].conv.scale)
		}
		if disorder > 0 {
			out.method += fmt.Sprintf("; %d readings older than the one before skipped (the later readings cover their intervals)", disorder)
		}
		out.resets = resets
	}
	return out
}

// addResults adds b, a part of the same node and metric over the same
// window, to a.
func addResults(a, b energy.Result) energy.Result {
	a.Samples += b.Samples
	a.Energy += b.Energy
	a.BridgedEnergy += b.BridgedEnergy
	a.Uncertainty += b.Uncertainty
	a.Peak += b.Peak
	a.Coverage = min(a.Coverage, b.Coverage)
	a.Bridged = 1 - a.Coverage
	a.Resets += b.Resets
	if sec := a.Duration.Seconds(); sec > 0 {
		a.Mean = energy.Watts(float64(a.Energy) / sec)
	}
	return a
}

// leadSpan is the history span addLeadIn reads: a counter's readings
// before the run are in it (kwollect-input fetches a minute for them).
const leadSpan = time.Minute

// edgeSeries says whether the readings just outside a window matter to a
// series of metric and kind: an energy counter's, or a power series' other
// than the wattmetres' (a 5 s BMC reading is far from the edge; a
// wattmetre's are 1 s means the window's query covers, or dense frames).
func edgeSeries(kind seriesKind, metric string) bool {
	return kind == counterKind || kind == powerKind && metric != energy.WattmetreMetric
}

// edgeKey is the series (run 0) of a history point when edgeSeries says
// its readings around the window matter. r.mu held.
func (r *report) edgeKey(m measure.Metric, p *measure.Point) (seriesKey, bool) {
	if kind, _, ok := classify(m); ok && edgeSeries(kind, m.Name) {
		return r.keyOf(m.Name, kind, p.Resource, p.Consumer, p.Attributes)
	}
	return seriesKey{}, false
}

// keyOf is the series (run 0) of a point of metric, of kind: a power
// series is its node's and metric's; an energy series is also named by
// the rapl source's domain, told apart by its part, and on-node points go
// under localNode. ok is false for the points energyName skips.
func (r *report) keyOf(metric string, kind seriesKind, res measure.Resource, cons measure.Consumer, attrs []measure.Attribute) (k seriesKey, ok bool) {
	k = seriesKey{node: nodeOf(res), metric: metric}
	if kind == powerKind {
		return k, true
	}
	name, skip := energyName(metric, attrs)
	if skip {
		return seriesKey{}, false
	}
	k.metric, k.part = name, partOf(cons, attrs)
	if res.Kind == measure.KindLocalMachine {
		k.node = r.localNode()
	}
	return k, true
}

// addLeadIn keeps, from the history, the readings in the minute before
// the first run of every series edgeKey takes: a counter starts its
// differences from them, so that the run's first interval is measured,
// not bridged (a coarse counter's step before the window included); a
// power series gets its last reading before the window, which the
// integration interpolates the window's start from.
func (r *report) addLeadIn(buf *measure.Buffer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range buf.Points {
		p := &buf.Points[i]
		m, ok := r.reg.Metric(p.Metric)
		if !ok || !r.selects(m) {
			continue
		}
		k, ok := r.edgeKey(m, p)
		if !ok {
			continue
		}
		r.leadIn[k] = append(r.leadIn[k], rawSample{t: p.Timestamp.UnixNano(), w: p.Value.Float64()})
	}
}

// seedLeadIn starts the converter of s, a new energy series: the first
// run's from its readings before the run; a later run's where the run
// before it left off (exec --repeat: one counter across the runs, so the
// interval that spans a window's start is measured in every run).
func (r *report) seedLeadIn(s *series) {
	if s.conv == nil {
		r.seedPowerLead(s)
		return
	}
	k := s.key
	if k.run > 1 {
		k.run--
		if prev := r.series[k]; prev != nil && prev.conv != nil && prev.conv.has {
			c := *prev.conv
			c.resets, c.disorder, c.firsts = 0, 0, nil
			*s.conv = c
		}
		return
	}
	if s.kind != counterKind {
		return
	}
	k.run = 0
	r.mu.Lock()
	xs := slices.Clone(r.leadIn[k])
	r.mu.Unlock()
	slices.SortFunc(xs, func(a, b rawSample) int { return cmp.Compare(a.t, b.t) })
	for _, x := range xs {
		s.conv.add(x.t, x.w, func(int64, float64) {})
	}
}

// seedPowerLead gives s, a new power series (not a wattmetre's), the last
// reading before its window: the history's for the first run, the run
// before's last one for a later run.
func (r *report) seedPowerLead(s *series) {
	if s.kind != powerKind || !edgeSeries(s.kind, s.key.metric) {
		return
	}
	k := s.key
	if k.run > 1 {
		k.run--
		if prev := r.series[k]; prev != nil && prev.samples.n > 0 {
			last := prev.samples.blocks[len(prev.samples.blocks)-1]
			r.pushPower(s, last[len(last)-1].t, last[len(last)-1].w)
		}
		return
	}
	k.run = 0
	r.mu.Lock()
	xs := r.leadIn[k]
	var last rawSample
	for _, x := range xs {
		if x.t > last.t {
			last = x
		}
	}
	r.mu.Unlock()
	if len(xs) > 0 {
		r.pushPower(s, last.t, last.w)
	}
}

// tailKey is a counter's series after the window that ended at end (ns).
type tailKey struct {
	node, metric, part string
	end                int64
}

// addTail keeps, from the span after a window, every energy counter's
// readings in the minute after it: the window's series ends its
// differences with them, so that its last interval is measured, not
// extrapolated (a coarse counter's next step included), until finish
// applies them.
func (r *report) addTail(buf *measure.Buffer, from time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := from.UnixNano()
	for i := range buf.Points {
		p := &buf.Points[i]
		m, ok := r.reg.Metric(p.Metric)
		if !ok || !r.selects(m) {
			continue
		}
		sk, ok := r.edgeKey(m, p)
		if !ok {
			continue
		}
		t := p.Timestamp.UnixNano()
		if t <= f || t > f+leadSpan.Nanoseconds() {
			continue
		}
		k := tailKey{node: sk.node, metric: sk.metric, part: sk.part, end: f}
		r.tailIn[k] = append(r.tailIn[k], rawSample{t: t, w: p.Value.Float64()})
	}
}

// applyTails ends every energy series with the readings after its run's
// window: those of the span after it, when it was fetched, else the first
// ones of the next run's series (exec --repeat). Transform goroutine, at
// finish: every point of the windows has come.
func (r *report) applyTails(ends map[int]int64) {
	r.mu.Lock()
	tails := maps.Clone(r.tailIn)
	r.mu.Unlock()
	for k, s := range r.series {
		end, ok := ends[k.run]
		if !ok {
			continue
		}
		if s.conv == nil {
			r.powerTail(s, tails[tailKey{node: k.node, metric: k.metric, end: end}])
			continue
		}
		xs := tails[tailKey{node: k.node, metric: k.metric, part: k.part, end: end}]
		if len(xs) == 0 && k.run > 0 {
			nk := k
			nk.run++
			if next := r.series[nk]; next != nil && next.conv != nil {
				xs = next.conv.firsts
			}
		}
		xs = slices.Clone(xs)
		slices.SortFunc(xs, func(a, b rawSample) int { return cmp.Compare(a.t, b.t) })
		for _, x := range xs {
			s.conv.add(x.t, x.w, func(t int64, w float64) { r.pushPower(s, t, w) })
		}
	}
}

// powerTail ends s, a power series (not a wattmetre's), with the first
// reading after its window: the span after it's, or the next run's first
// one (exec --repeat, uncompacted).
func (r *report) powerTail(s *series, after []rawSample) {
	if s.kind != powerKind || !edgeSeries(s.kind, s.key.metric) {
		return
	}
	var first rawSample
	for _, x := range after {
		if first.t == 0 || x.t < first.t {
			first = x
		}
	}
	if first.t == 0 && s.key.run > 0 {
		nk := s.key
		nk.run++
		if next := r.series[nk]; next != nil && next.done == nil && next.samples.n > 0 {
			next.samples.all(func(x rawSample) {
				if first.t == 0 || x.t < first.t {
					first = x
				}
			})
		}
	}
	if first.t != 0 {
		r.pushPower(s, first.t, first.w)
	}
}
