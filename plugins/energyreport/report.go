package energyreport

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/alumet-go/alumet-agent/energy"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
	"github.com/alumet-go/alumet-agent/plugin"
)

// seriesKey identifies a series: the node (or the resource), the metric
// and the run (exec --repeat index, 0 otherwise).
type seriesKey struct {
	node, metric string
	run          int
	// part tells apart the counters of one node and energy metric (one
	// per CPU socket): each is converted on its own, and the node's row
	// is their sum. "" for power series.
	part string
}

func (k seriesKey) nodeMetric() nodeMetric { return nodeMetric{k.node, k.metric} }

// lineKey names the part of a series (one counter of several) where a
// (node, metric) is not enough: its plot line and history baseline.
func (k seriesKey) lineKey() nodeMetric {
	if k.part == "" {
		return k.nodeMetric()
	}
	return nodeMetric{k.node, k.metric + " " + k.part}
}

// rawSample is one reading as kept until Finish: 16 bytes.
type rawSample struct {
	t int64 // Unix ns
	w float64
}

// series is the samples of one (node, metric, run) and what its energy
// point needs: the resource and consumer of its first point.
type series struct {
	key      seriesKey
	resource measure.Resource
	consumer measure.Consumer
	site     string
	samples  sampleStore
	done     *compacted // the part already integrated (see compact.go)
	retryAt  int        // no compaction before this many samples
	count    int        // samples added
	readings int        // values received in the stream (an energy series' before conversion)
	kind     seriesKind
	// conv turns an energy series' values into power samples (nil for
	// power series).
	conv *converter
}

// sampleBlock is the size of the blocks the samples are kept in: growing
// a series costs no copy and no doubled capacity.
const sampleBlock = 1024

// sampleStore holds a series' samples in fixed-size blocks.
type sampleStore struct {
	blocks [][]rawSample
	n      int
}

func (st *sampleStore) push(x rawSample) {
	if k := len(st.blocks); k == 0 || len(st.blocks[k-1]) == sampleBlock {
		if k < cap(st.blocks) && cap(st.blocks[:k+1][k]) == sampleBlock {
			// A block that refill left spare.
			st.blocks = st.blocks[:k+1]
			st.blocks[k] = st.blocks[k][:0]
		} else {
			st.blocks = append(st.blocks, make([]rawSample, 0, sampleBlock))
		}
	}
	k := len(st.blocks) - 1
	st.blocks[k] = append(st.blocks[k], x)
	st.n++
}

// all iterates over the samples in arrival order.
func (st *sampleStore) all(fn func(rawSample)) {
	for _, b := range st.blocks {
		for _, x := range b {
			fn(x)
		}
	}
}

// nodeOf names the node of a point: the id of a device_id resource
// (kwollect-input's points), otherwise the resource's kind/id.
func nodeOf(r measure.Resource) string {
	switch {
	case r.Kind == "device_id":
		return r.ID
	case r.ID == "":
		return r.Kind
	}
	return r.Kind + "/" + r.ID
}

// selects reports whether the report integrates metric m: a configured
// metric in W or of energy (see classify), or, with no metrics
// configured, any gauge in W and any energy metric.
func (r *report) selects(m measure.Metric) bool {
	_, _, ok := classify(m)
	if r.wanted != nil {
		return r.wanted[m.Name] && (ok || m.Unit == measure.Plain(measure.Watt))
	}
	return ok
}

// info returns what the transform knows of a metric id, looking it up in
// the registry (and warning about a configured metric that is not a power)
// the first time.
func (r *report) info(id measure.MetricID) (metricInfo, bool) {
	if mi, ok := r.metrics[id]; ok {
		return mi, true
	}
	m, ok := r.reg.Metric(id)
	if !ok {
		return metricInfo{}, false
	}
	mi := metricInfo{name: m.Name, selected: r.selects(m)}
	mi.kind, mi.scale, _ = classify(m)
	if r.wanted != nil && r.wanted[m.Name] {
		r.seenName[m.Name] = true
		if !mi.selected {
			r.log.Warn(fmt.Sprintf("metrics: %s is in %s, neither a power in W nor an energy (J or Wh, a counter or increments): it is not integrated", m.Name, unitText(m.Unit)))
		}
	}
	r.metrics[id] = mi
	return mi, true
}

func unitText(u measure.Unit) string {
	if s := u.DisplayName(); s != "" {
		return s
	}
	return u.UniqueName()
}

// runOf is the run attribute of a point (exec --repeat), 0 without.
func runOf(attrs []measure.Attribute) int {
	for i := len(attrs) - 1; i >= 0; i-- {
		if a := attrs[i]; a.Key == "run" && a.Value.Type == measure.AttrU64 {
			return int(a.Value.U64)
		}
	}
	return 0
}

// add keeps the samples of the selected metrics of buf.
func (r *report) add(buf *measure.Buffer) {
	if buf == nil || r.finished {
		return
	}
	for i := range buf.Points {
		p := &buf.Points[i]
		if s := r.seriesOf(p.Metric, p.Resource, p.Consumer, p.Attributes); s != nil {
			r.push(s, p.Timestamp.UnixNano(), p.Value.Float64())
		}
	}
	var last *measure.Series
	var s *series
	for i := range buf.Compact {
		p := &buf.Compact[i]
		if p.Series != last {
			last = p.Series
			s = r.seriesOf(last.Metric, last.Resource, last.Consumer, last.Attributes)
		}
		if s != nil {
			r.push(s, p.Time, p.Value.Float64())
		}
	}
}

// seriesOf returns the series of the points of a metric, resource,
// consumer and attributes; nil when the metric is not reported.
func (r *report) seriesOf(metric measure.MetricID, res measure.Resource, cons measure.Consumer, attrs []measure.Attribute) *series {
	mi, ok := r.info(metric)
	if !ok || !mi.selected {
		return nil
	}
	k, ok := r.keyOf(mi.name, mi.kind, res, cons, attrs)
	if !ok {
		return nil
	}
	k.run = runOf(attrs)
	s := r.series[k]
	if s == nil {
		s = &series{key: k, resource: res, consumer: cons, kind: mi.kind}
		if mi.kind != powerKind {
			s.conv = newConverter(mi.kind, mi.scale)
		}
		r.seedLeadIn(s)
		r.series[k] = s
		nmr := k
		nmr.part = ""
		r.byNMR[nmr] = append(r.byNMR[nmr], s)
		slices.SortFunc(r.byNMR[nmr], func(a, b *series) int { return strings.Compare(a.key.part, b.key.part) })
	}
	if s.site == "" {
		for _, a := range attrs {
			if a.Key == "site" && a.Value.Type == measure.AttrString {
				s.site = a.Value.Str
				break
			}
		}
	}
	return s
}

// push adds a sample (Unix ns, W; an energy series' value, converted to
// power) to s.
func (r *report) push(s *series, t int64, w float64) {
	s.readings++
	if s.conv != nil {
		s.conv.add(t, w, func(t int64, w float64) { r.pushPower(s, t, w) })
		return
	}
	r.pushPower(s, t, w)
}

func (r *report) pushPower(s *series, t int64, w float64) {
	s.samples.push(rawSample{t: t, w: w})
	s.count++
	r.maybeCompact(s)
}

// row is the result of one series over its run's window.
type row struct {
	key      seriesKey
	site     string
	resource measure.Resource
	consumer measure.Consumer
	// hasData: at least one sample contributed real data in the window.
	// Without, the energy (an extrapolation of data outside the window, or
	// nothing) is not reported.
	hasData bool
	res     energy.Result
	method  string
	gaps    []energy.Gap
	// baseline is the idle power of the series (NaN: none known).
	baseline float64
	// phases is the energy of each phase of the run (same order as the
	// run's phases), when the run has marks.
	phases []energy.Result
	// outcome is what the source obtained for the series in the run's
	// window (hasOutcome: the source said).
	outcome    pipeline.Outcome
	hasOutcome bool
	// late counts the samples that came after their time was integrated:
	// they are not in the energy.
	late int
	// resets counts the decreases of an energy counter (resets, wraps).
	resets int
	kind   seriesKind
}

// incompleteWarning says, for the report, that some series of a run are
// not complete: their energy, and the totals, are lower than the truth.
func incompleteWarning(rows []row) []string {
	var bad []string
	for _, rw := range rows {
		if rw.hasOutcome && rw.outcome.Status.Bad() {
			bad = append(bad, fmt.Sprintf("%s/%s %s", rw.key.node, rw.key.metric, strings.ToUpper(string(rw.outcome.Status))))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("%d of %d series are not complete (%s): their energy bridges, extrapolates or leaves out the missing data, so it and the totals are estimates, not measurements; see each series' outcome, coverage and gaps",
		len(bad), len(rows), strings.Join(bad, ", "))}
}

// noEnergyDoubt says why a row has no energy although its series had
// data ("" when it has an energy, or no data came): the source may call
// such a series complete, and the run must not read as all good.
func noEnergyDoubt(rw row, parts []*series) string {
	if rw.hasData {
		return ""
	}
	n := 0
	for _, s := range parts {
		n += s.readings
	}
	if n == 0 && !(rw.hasOutcome && rw.outcome.Samples > 0) {
		return ""
	}
	if n == 0 {
		n = rw.outcome.Samples
	}
	values := "values"
	if n == 1 {
		values = "value"
	}
	what := fmt.Sprintf("%s/%s has no energy although %d %s of it came", rw.key.node, rw.key.metric, n, values)
	if rw.kind == powerKind {
		return what + ", none in the window"
	}
	between := "two readings"
	if len(parts) > 0 && parts[0].conv != nil && parts[0].conv.integral {
		between = "two of its steps (integer readings)"
	}
	return what + ": an energy counter gives energy between " + between + ", and too few fell in or just around the window" +
		" (is edge_readings off in [plugins.kwollect-input]? Kwollect may not have had the readings after the window yet: fetch it again later)"
}

// lateWarning says, for the report, that samples of some series came
// after their time was integrated: the energy leaves them out.
func lateWarning(rows []row) []string {
	var bad []string
	n := 0
	for _, rw := range rows {
		if rw.late > 0 {
			bad = append(bad, fmt.Sprintf("%s/%s %d", rw.key.node, rw.key.metric, rw.late))
			n += rw.late
		}
	}
	if n == 0 {
		return nil
	}
	return []string{fmt.Sprintf("%d samples came after their time was integrated and are not in the energy (%s): the energy of those series may be off",
		n, strings.Join(bad, ", "))}
}

// dynamic is the energy above the baseline, NaN without one.
func (rw row) dynamic() float64 {
	return float64(rw.res.Energy) - rw.baseline*rw.res.Duration.Seconds()
}

// noDataMethod is the method text of a series with no sample in the window.
const noDataMethod = "none: no sample in the window"

// integrator returns an integrator loaded with the samples of s and set up
// for what they are: the sampling period is inferred from the data (the
// median gap between samples) by a first pass over [start, end], then
// energy.OptionsFor gives the method for that period (step integration of
// Kwollect's 1 s wattmetre averages, trapezoids for instantaneous
// readings). The same integrator then serves every sub-window (the phases),
// so that they add up to the whole.
func integrator(s *series, start, end time.Time, forced *energy.Method) (*energy.Integrator, error) {
	probe := energy.NewIntegrator(energy.Options{Method: energy.Trapezoid})
	probe.Grow(s.samples.n)
	s.samples.all(func(x rawSample) { probe.Add(time.Unix(0, x.t), x.w) })
	r0, err := probe.Result(start, end)
	if err != nil {
		return nil, err
	}
	in := energy.NewIntegrator(s.options(r0.Period, forced))
	in.Grow(probe.Len())
	s.samples.all(func(x rawSample) { in.Add(time.Unix(0, x.t), x.w) })
	return in, nil
}

// options is how s is integrated, given its sampling period (and the
// method key, forced is set).
func (s *series) options(period time.Duration, forced *energy.Method) energy.Options {
	if s.kind != powerKind {
		return energyOptions(period)
	}
	o := energy.OptionsFor(s.key.metric, period)
	if forced != nil {
		o.Method = *forced
	}
	return o
}

// runReport is the report of one run: its window, its phases and a row
// per series.
type runReport struct {
	win    window
	phases []phase
	rows   []row
	// compared is the per-node comparison of the sources (nodes with two
	// or more).
	compared []nodeComparison
	// carbon is the energy-to-carbon transform's intensity, when it runs.
	carbon *plugin.CarbonIntensity
}

// finish computes the report over the recorded windows; see Transform.Finish.
func (r *report) finish() (*measure.Buffer, error) {
	if r.finished {
		return nil, nil
	}
	r.finished = true
	r.mu.Lock()
	var wins []window
	for _, w := range r.wins {
		wins = append(wins, *w)
	}
	jobID := r.jobID
	baselines := r.historyBaselines()
	r.mu.Unlock()
	slices.SortFunc(wins, func(a, b window) int { return cmp.Compare(a.run, b.run) })

	for _, m := range r.cfg.Metrics {
		if !r.seenName[m] {
			r.log.Warn(fmt.Sprintf("metrics: no point of %s reached energy-report (is it fetched by a source?)", m))
		}
	}
	runs := r.runsOf(wins, jobID)
	if len(runs) == 0 {
		return nil, nil
	}
	r.warnLocalNode()
	ends := map[int]int64{}
	for _, rr := range runs {
		ends[rr.win.run] = rr.win.end.UnixNano()
	}
	r.applyTails(ends)
	errs := r.integrateRuns(runs, baselines)
	carbon, hasCarbon := r.directory.CarbonIntensity()
	for i := range runs {
		runs[i].compared = r.comparisons(runs[i])
		if hasCarbon {
			runs[i].carbon = &carbon
		}
	}
	if r.base.fromData() {
		r.warnMissingBaselines(runs, baselines)
	}
	buf, err := r.points(runs)
	if err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, r.write(runs, baselines)...)
	for _, s := range r.series {
		s.samples = sampleStore{} // done with them
	}
	for _, e := range errs {
		r.log.Error(e.Error())
	}
	return buf, errors.Join(errs...)
}

// warnLocalNode warns when the local_node key names a node that
// kwollect-input does not measure while on-node series came: they then
// stand alone, next to no wattmeter (a typo, or the wrong node).
func (r *report) warnLocalNode() {
	r.localMu.Lock()
	local := r.local
	r.localMu.Unlock()
	if r.cfg.LocalNode == "" || local != r.cfg.LocalNode || r.directory == nil {
		return
	}
	sites, _ := r.directory.Sites()
	if len(sites) == 0 {
		return
	}
	if _, ok := sites[local]; ok {
		return
	}
	nodes := slices.Sorted(maps.Keys(sites))
	if len(nodes) > 5 {
		nodes = append(nodes[:5], "…")
	}
	r.log.Warn(fmt.Sprintf("local_node = %q: kwollect-input does not measure this node (it measures %s): the on-node series (rapl) are reported under %s, compared with no wattmeter", local, strings.Join(nodes, ", "), local))
}

// runsOf returns the runs to report: the windows with a start and an end,
// or the OAR job's span (fetch --job-id); none, with a warning, otherwise.
func (r *report) runsOf(wins []window, jobID int64) []runReport {
	var runs []runReport
	for _, w := range wins {
		switch {
		case !w.hasStart || !w.hasEnd:
			r.log.Warn(fmt.Sprintf("%sno start or end event: not reported.", runText(w.run)))
		case !w.end.After(w.start):
			r.log.Warn(fmt.Sprintf("%sempty measurement window [%s, %s]: not reported.", runText(w.run), rfc3339(w.start), rfc3339(w.end)))
		default:
			runs = append(runs, runReport{win: w, phases: phasesOf(w)})
		}
	}
	if len(runs) == 0 && jobID != 0 {
		// fetch --job-id: the job's window is the span of its rows.
		if first, last, ok := r.directory.JobSpan(jobID); ok && last.After(first) {
			runs = append(runs, runReport{win: window{start: wall(first), end: wall(last), hasStart: true, hasEnd: true, jobSpan: jobID}})
		}
	}
	if len(runs) == 0 {
		if jobID != 0 {
			r.log.Warn(fmt.Sprintf("OAR job %d: no row, so no window: no energy report.", jobID))
		} else {
			r.log.Warn("No measurement window (no start or end event: nothing was measured, or no source publishes events): no energy report.")
		}
	}
	return runs
}

// pairs returns every (node, metric) of the report, sorted, with a series
// that stands for it (its resource, consumer and site): those seen in some
// run, and those a source was asked for but had no sample of (the totals
// must not silently leave a node out).
func (r *report) pairs(runs []runReport) ([]nodeMetric, map[nodeMetric]*series) {
	keys := slices.SortedFunc(maps.Keys(r.series), func(a, b seriesKey) int {
		return cmp.Or(strings.Compare(a.node, b.node), strings.Compare(a.metric, b.metric), cmp.Compare(a.run, b.run))
	})
	var pairs []nodeMetric
	seenPair := map[nodeMetric]*series{}
	unrun := 0
	for _, k := range keys {
		nm := k.nodeMetric()
		if seenPair[nm] == nil {
			seenPair[nm] = r.series[k]
			pairs = append(pairs, nm)
		}
		if k.run == 0 && repeated(runs) {
			unrun += r.series[k].count
		}
	}
	if r.outcomes != nil {
		for _, oc := range r.outcomes.All() {
			nm := nodeMetric{node: oc.Node, metric: oc.Metric}
			if seenPair[nm] != nil {
				continue
			}
			if m, ok := r.reg.ByName(oc.Metric); !ok || !r.selects(m) {
				continue
			}
			seenPair[nm] = &series{key: seriesKey{node: oc.Node, metric: oc.Metric}, resource: measure.Resource{Kind: "device_id", ID: oc.Node}, site: oc.Site}
			pairs = append(pairs, nm)
		}
		slices.SortFunc(pairs, func(a, b nodeMetric) int {
			return cmp.Or(strings.Compare(a.node, b.node), strings.Compare(a.metric, b.metric))
		})
	}
	if unrun > 0 {
		r.log.Warn(fmt.Sprintf("%d power samples carry no run attribute: with exec --repeat they belong to no run and are not in the report", unrun))
	}
	return pairs, seenPair
}

// integrateRuns fills every run's rows: every (node, metric) of the report
// has a row in every run, without data where the run had none.
func (r *report) integrateRuns(runs []runReport, baselines map[nodeMetric]float64) []error {
	pairs, seenPair := r.pairs(runs)
	var errs []error
	for i := range runs {
		rr := &runs[i]
		for _, nm := range pairs {
			k := seriesKey{node: nm.node, metric: nm.metric, run: rr.win.run}
			parts := r.partsOf(k)
			if len(parts) == 0 {
				like := seenPair[nm]
				parts = []*series{{key: k, resource: like.resource, consumer: like.consumer, site: like.site, kind: like.kind}}
			}
			var prows []row
			var err error
			for _, s := range parts {
				var rw row
				if rw, err = r.integrateRow(s, rr, baselines); err != nil {
					break
				}
				prows = append(prows, rw)
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			rw := prows[0]
			if parts[0].kind != powerKind {
				rw = sumParts(prows, parts, r.base.fromData())
			}
			if r.outcomes != nil {
				rw.outcome, rw.hasOutcome = r.outcomes.Of(rr.win.run, nm.node, nm.metric)
			}
			if d := noEnergyDoubt(rw, parts); d != "" {
				rr.win.warnings = append(rr.win.warnings, d)
				r.mu.Lock()
				r.doubts = append(r.doubts, runText(rr.win.run)+d)
				r.mu.Unlock()
			}
			rr.rows = append(rr.rows, rw)
		}
		rr.win.warnings = append(rr.win.warnings, incompleteWarning(rr.rows)...)
		rr.win.warnings = append(rr.win.warnings, lateWarning(rr.rows)...)
	}
	return errs
}

// write prints the table, writes the summary and the plot, and logs the
// totals.
func (r *report) write(runs []runReport, baselines map[nodeMetric]float64) []error {
	var errs []error
	if r.cfg.Table {
		if _, err := io.WriteString(r.out, r.table(runs)); err != nil {
			r.log.Warn(fmt.Sprintf("cannot print the energy table: %v", err))
		}
	}
	if !anyData(runs) {
		// An empty summary or plot would replace the previous run's files
		// with nothing to show: they stay as they are.
		if msg := r.noDataText(); msg != "" {
			r.log.Warn(msg)
		}
	} else if r.cfg.SummaryFile != "" {
		if err := writeSummary(r.cfg.SummaryFile, r.summary(runs)); err != nil {
			errs = append(errs, fmt.Errorf("summary_file: %w", err))
		} else {
			r.log.Info("Energy summary written to " + r.cfg.SummaryFile)
		}
	}
	if r.cfg.PlotFile != "" && anyData(runs) {
		if err := r.plot(runs, baselines); err != nil {
			errs = append(errs, fmt.Errorf("plot_file: %w", err))
		} else {
			r.log.Info("Power plot written to " + r.cfg.PlotFile)
		}
	}
	for _, rr := range runs {
		for _, t := range totals(rr.rows) {
			if t.hasData {
				r.log.Info(fmt.Sprintf("%sEnergy of %s over [%s, %s]: %v on %d series", runText(rr.win.run), t.metric, rfc3339(rr.win.start), rfc3339(rr.win.end), energy.Joules(t.energy), t.series))
			}
		}
	}
	return errs
}

// anyData reports whether a series of some run has a sample in its window.
func anyData(runs []runReport) bool {
	for _, rr := range runs {
		for _, rw := range rr.rows {
			if rw.hasData {
				return true
			}
		}
	}
	return false
}

// noDataText says that the summary and the plot are not written for lack
// of data, and that the files of an earlier run are kept; "" when neither
// is configured.
func (r *report) noDataText() string {
	var files []string
	kept := false
	for _, f := range []string{r.cfg.SummaryFile, r.cfg.PlotFile} {
		if f == "" {
			continue
		}
		files = append(files, f)
		if _, err := os.Stat(f); err == nil {
			kept = true
		}
	}
	if len(files) == 0 {
		return ""
	}
	msg := "no data: no power sample in the measured window: " + strings.Join(files, " and ") + " not written"
	switch {
	case kept && len(files) > 1:
		msg += ", the previous files are kept"
	case kept:
		msg += ", the previous file is kept"
	}
	return msg
}

// runText prefixes the messages about run i (exec --repeat).
func runText(run int) string {
	if run == 0 {
		return ""
	}
	return fmt.Sprintf("Run %d: ", run)
}

// integrateRow integrates one series over its run's window and phases.
func (r *report) integrateRow(s *series, rr *runReport, baselines map[nodeMetric]float64) (row, error) {
	w := rr.win
	k := s.key
	rw := row{key: k, site: s.site, resource: s.resource, consumer: s.consumer, method: noDataMethod, baseline: math.NaN(), kind: s.kind}
	if rw.site == "" && s.resource.Kind == "device_id" {
		rw.site = r.directory.Site(k.node)
	}
	if b, ok := r.baselineOf(k.lineKey(), baselines); ok {
		rw.baseline = b
	}
	var in *energy.Integrator
	var res energy.Result
	var rest []rawSample
	var err error
	if s.done != nil {
		rest = s.rest()
		rw.late = s.done.late
		if s.done.late > 0 {
			r.log.Warn(fmt.Sprintf("%s%s %s: %d samples came after their time was integrated (older than the series' samples already integrated): they are not in the energy, which may be off", runText(k.run), k.node, k.metric, s.done.late))
		}
		res, err = r.finalResult(s, rest, w.start, w.end)
	} else if in, err = integrator(s, w.start, w.end, r.forced); err == nil {
		res, err = in.Result(w.start, w.end)
	}
	switch {
	case err == nil && res.Samples > 0:
		rw.hasData, rw.res, rw.method, rw.gaps = true, res, res.Method, res.Gaps
		lost := false
		for _, ph := range rr.phases {
			var pres energy.Result
			var perr error
			if in != nil {
				pres, perr = in.Result(ph.start, ph.end)
			} else if p, ok := r.phaseResult(s, rest, ph.start, ph.end); ok {
				pres = p
			} else {
				perr, lost = errors.New("phase lost"), true
			}
			if perr != nil {
				pres = energy.Result{Start: ph.start, End: ph.end, Duration: ph.end.Sub(ph.start), Energy: energy.Joules(math.NaN())}
			}
			rw.phases = append(rw.phases, pres)
		}
		if lost {
			r.log.Warn(fmt.Sprintf("%s%s %s: a phase mark came after the samples of its instant were integrated: the phases of this series are not known", runText(k.run), k.node, k.metric))
		}
	case err == nil || errors.Is(err, energy.ErrNoSamples):
		rw.res = energy.Result{Start: w.start, End: w.end, Duration: w.end.Sub(w.start)}
		rw.gaps = []energy.Gap{{From: w.start, To: w.end}}
	default:
		return row{}, fmt.Errorf("%s%s %s: %w", runText(k.run), k.node, k.metric, err)
	}
	return rw, nil
}

// historyBaselines is the idle power of each series with history
// (baseline = before:D, or the span after the last run with after:D): the
// median of its values. r.mu must be held.
func (r *report) historyBaselines() map[nodeMetric]float64 {
	out := map[nodeMetric]float64{}
	src := r.hist
	switch r.base.Kind {
	case HistoryBaseline:
	case AfterBaseline:
		src = r.after
	default:
		return out
	}
	for k, samples := range src {
		vs := make([]float64, len(samples))
		for i, x := range samples {
			vs[i] = x.w
		}
		if m := median(vs); finite(m) {
			out[k] = m
		}
	}
	return out
}

// baselineOf is the idle power of series k: the constant of the config, or
// its history's median (hist, from historyBaselines); false when unknown.
func (r *report) baselineOf(k nodeMetric, hist map[nodeMetric]float64) (float64, bool) {
	switch r.base.Kind {
	case ConstantBaseline:
		return r.base.Watts, true
	case HistoryBaseline, AfterBaseline:
		b, ok := hist[k]
		return b, ok
	}
	return 0, false
}

// warnMissingBaselines says which series got no history (no baseline).
func (r *report) warnMissingBaselines(runs []runReport, baselines map[nodeMetric]float64) {
	seen := map[nodeMetric]bool{}
	for _, rr := range runs {
		for _, rw := range rr.rows {
			// rw.baseline: a node's counters' baselines are summed, so a
			// part without history leaves the row without one.
			k := rw.key.nodeMetric()
			if math.IsNaN(rw.baseline) && !seen[k] {
				seen[k] = true
				r.log.Warn(fmt.Sprintf("baseline: no sample of %s %s in %s: no baseline, no dynamic energy for it", k.node, k.metric, r.base.span()))
			}
		}
	}
}

// median of vs (NaN for none); vs is sorted in place.
func median(vs []float64) float64 {
	vs = slices.DeleteFunc(vs, func(v float64) bool { return !finite(v) })
	if len(vs) == 0 {
		return math.NaN()
	}
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
}

// points returns one <metric>_energy point per series with data: at the
// end of its run's window, on the series' resource and consumer, with the
// attribute metric_id (the layout of kwollect-input's rows) and run with
// exec --repeat.
func (r *report) points(runs []runReport) (*measure.Buffer, error) {
	buf := &measure.Buffer{}
	ids := map[string]measure.MetricID{}
	failed := map[string]bool{}
	var errs []error
	for _, rr := range runs {
		for _, rw := range rr.rows {
			name := rw.key.metric + "_energy"
			// An energy metric's own points are its energy already: no
			// <metric>_energy point (rapl_consumed_energy.package_total
			// would not even be a metric name).
			if rw.kind != powerKind || !rw.hasData || !finite(float64(rw.res.Energy)) || failed[name] {
				continue
			}
			id, ok := ids[name]
			if !ok {
				var err error
				id, err = r.reg.Register(measure.Metric{
					Name:        name,
					Unit:        measure.Plain(measure.Joule),
					Type:        measure.F64,
					Semantics:   measure.Delta,
					Description: "Energy of " + rw.key.metric + energyDescription,
				})
				if err != nil {
					errs = append(errs, err)
					failed[name] = true
					continue
				}
				ids[name] = id
			}
			attrs := []measure.Attribute{{Key: "metric_id", Value: measure.String(name)}}
			if rw.key.run > 0 {
				attrs = append(attrs, measure.Attribute{Key: "run", Value: measure.AttrValue{Type: measure.AttrU64, U64: uint64(rw.key.run)}})
			}
			buf.Push(measure.Point{
				Metric:     id,
				Timestamp:  rr.win.end.UTC(),
				Value:      measure.Float(float64(rw.res.Energy)),
				Resource:   rw.resource,
				Consumer:   rw.consumer,
				Attributes: attrs,
			})
		}
	}
	return buf, errors.Join(errs...)
}

// total is the sum over the nodes of one metric.
type total struct {
	metric      string
	series      int // with data
	samples     int
	hasData     bool
	energy      float64
	dynamic     float64 // NaN when a series has no baseline
	uncertainty float64
	methods     []string // distinct, in row order
}

// totals sums the rows per metric, metrics in name order.
func totals(rows []row) []total {
	by := map[string]*total{}
	var names []string
	for _, rw := range rows {
		t := by[rw.key.metric]
		if t == nil {
			t = &total{metric: rw.key.metric}
			by[rw.key.metric] = t
			names = append(names, rw.key.metric)
		}
		if !rw.hasData {
			continue
		}
		t.series++
		t.hasData = true
		t.samples += rw.res.Samples
		t.energy += float64(rw.res.Energy)
		t.dynamic += rw.dynamic()
		t.uncertainty += float64(rw.res.Uncertainty)
		if !slices.Contains(t.methods, rw.method) {
			t.methods = append(t.methods, rw.method)
		}
	}
	slices.Sort(names)
	out := make([]total, len(names))
	for i, n := range names {
		out[i] = *by[n]
	}
	return out
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// num is v for JSON, or nil (null) when it is NaN or infinite.
func num(v float64) *float64 {
	if !finite(v) {
		return nil
	}
	return &v
}

// rfc3339Layout is RFC 3339 with nanoseconds, always 9 digits.
const rfc3339Layout = "2006-01-02T15:04:05.000000000Z07:00"

func rfc3339(t time.Time) string { return t.UTC().Format(rfc3339Layout) }
