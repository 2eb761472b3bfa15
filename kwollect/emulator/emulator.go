// Package emulator is a local emulator of the Grid'5000 Kwollect metrics API
// (the PostgREST service behind https://api.grid5000.fr/stable/sites/{site}/metrics)
// and of the few reference-API documents a Kwollect client needs (cluster
// metric catalogues, node PDU lists, wattmetre port maps).
//
// It serves deterministic synthetic data with the API's semantics: query
// parameters, default windows, inclusive bounds, job_id, summary, as_rate,
// multi-PSU sums, Europe/Paris timestamps, PostgREST errors, Basic auth and
// ingestion lag. See README.md for what is reproduced and what is simplified.
package emulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config configures an Emulator. The zero value is usable: no lag, no auth,
// no monitored node, the default topology and the real clock.
type Config struct {
	// Seed selects the synthetic data; same seed, same data.
	Seed int64
	// Lag is the ingestion lag: a row stamped ts is visible once
	// now >= ts + Lag, except a 1 Hz wattmetre mean of second S, which is
	// written once the second is over (visible once now >= S + 1s + Lag).
	Lag time.Duration
	// SummaryLag: summary=true only returns 5-minute buckets that ended
	// before now - SummaryLag. 0 means the default, 10 minutes; a negative
	// value means no lag.
	SummaryLag time.Duration
	// Users maps Basic-auth logins to passwords; empty = no auth required.
	Users map[string]string
	// Monitored nodes are in a permanent "monitor" job: raw wattmetre frames
	// (20 ms on v2, 10 ms on v3) instead of 1 Hz means, and the on-demand
	// (period 0) metrics at their optional period.
	Monitored []string
	// CPULoadNodes draw idle + DynamicRange × (this machine's CPU
	// utilisation), sampled every 100 ms from /proc/stat.
	CPULoadNodes []string
	// Load scripts utilisation phases on nodes (deterministic busy periods).
	Load []LoadPhase
	// Signals replace the power model of nodes by exact analytic signals
	// over time ranges (see SignalSpec, ParseSignal); a node's signals must
	// not overlap.
	Signals []SignalSpec
	// Gaps remove the generated rows of nodes over time ranges (see Gap,
	// ParseGap).
	Gaps []Gap
	// Jobs are the OAR jobs known to job_id queries; "monitor" types
	// enable the optional periods of their nodes while they run.
	Jobs []Job
	// LegacyUntilNow: with only start_time, the window ends now (older
	// Kwollect) instead of start_time + 5 min.
	LegacyUntilNow bool
	// Now is the clock (default time.Now); tests pass a fake one.
	Now func() time.Time
	// Topology is the emulated reference repository; nil = DefaultTopology().
	Topology *Topology
	// DynamicRange is the power (W) a node adds at 100 % utilisation;
	// 0 = 120 W.
	DynamicRange float64
	// CallerDevice is the device_id of POSTed rows that have none (on
	// Grid'5000 the calling node); default "emulator-caller".
	CallerDevice string
	// RAPL selects the clusters that serve node_exporter's RAPL counters
	// (prom_node_rapl_package_joules_total, prom_node_rapl_dram_joules_total,
	// an emulator extension): the zero value RAPLDefault = every cluster but
	// lyon/taurus, whose catalogue is the verbatim reference excerpt; RAPLAll
	// = taurus too; RAPLOff = none.
	RAPL RAPLMode
	// BMCNaNRate is the probability that a bmc_node_power_watt reading is
	// missing (value "NaN" with label value_str "N/A"); default 0.
	BMCNaNRate float64
	// CPUHistory bounds the CPU-load history kept (default 2 h).
	CPUHistory time.Duration
	// Logger receives request logs and warnings; nil = discard.
	Logger *slog.Logger
	// Start is the emulator start, the origin of relative times (fault
	// windows, jobs added at runtime); zero = Now() when New is called.
	Start time.Time

	// RowLimit > 0 makes a GET whose result would exceed RowLimit rows fail
	// like Kwollect's statement timeout (500, XX000 "Exception: Request
	// timeout, too much data to process."), decided before the first byte.
	RowLimit int
	// StatementDelay is how long the server works before answering that
	// error (the real timeout is 5 min); 0 = at once.
	StatementDelay time.Duration
	// StatementTimeout > 0 is the time form of the statement timeout: the
	// server works through StatementRowsPerSecond result rows per second,
	// so a GET whose result exceeds StatementTimeout × StatementRowsPerSecond
	// rows fails with the same error, decided before the first byte (the
	// rows are counted, generated up to that limit + 1, not formatted). The
	// error comes once the timeout has passed since the request arrived
	// (the count included), as on the real API, whose timeout is 5 min;
	// with StatementFailFast, after StatementDelay instead (0 = at once).
	// With RowLimit too, the smaller limit decides.
	StatementTimeout time.Duration
	// StatementRowsPerSecond is the server's work rate for StatementTimeout
	// and StatementWork; 0 = DefaultStatementRowsPerSecond.
	StatementRowsPerSecond float64
	// StatementFailFast answers the StatementTimeout error after
	// StatementDelay instead of after the timeout.
	StatementFailFast bool
	// StatementWork makes every metrics GET that is answered with rows
	// wait rows / StatementRowsPerSecond (counted from its arrival, the
	// row count included) before its first byte: the server time of a
	// valid query, which Kwollect (PostgreSQL) spends building the whole
	// result before answering. Works with or without StatementTimeout.
	StatementWork bool
	// Gzip compresses the rows responses of the metrics endpoint (GET and
	// POST, streamed, a fast level) with "Content-Encoding: gzip" when the
	// request's Accept-Encoding accepts gzip. Errors and documents are sent
	// uncompressed.
	Gzip bool
	// Faults are the fault-injection rules active from the start (see
	// FaultRule); SetFaults and the control endpoint change them at runtime.
	Faults []FaultRule
	// FaultSeed seeds the probabilistic fault rules.
	FaultSeed int64
	// Control mounts the control endpoint under /_emulator/ (faults, stats,
	// jobs, monitored nodes, black hole). Its requests must carry
	// "Authorization: Bearer <ControlToken>" or, when Users is set, the API's
	// Basic credentials; those other than GET/HEAD must also be
	// "Content-Type: application/json" (415 otherwise).
	Control bool
	// ControlToken is the control endpoint's bearer token; empty = a random
	// one (see Emulator.ControlToken). At least 16 visible ASCII characters.
	ControlToken string
	// Blackhole starts the emulator as a black hole: every request but the
	// control endpoint's is accepted, its headers read, and never answered
	// (the connection is held until the client goes away or Close). The
	// control endpoint (PUT/DELETE /_emulator/blackhole) and SetBlackhole
	// switch it at runtime.
	Blackhole bool

	// cpuSampler, when set by tests, replaces the /proc/stat sampler
	// goroutine (the test drives it).
	cpuSampler *cpuSampler
}

// DefaultStatementRowsPerSecond is the default work rate of
// Config.StatementTimeout and Config.StatementWork.
const DefaultStatementRowsPerSecond = 1e6

// Row is one metric row as the GET endpoint returns it.
type Row struct {
	Timestamp time.Time // in Europe/Paris, µs precision
	DeviceID  string
	MetricID  string
	Value     float64 // NaN for "NaN"
	// Null is true for the null values of as_rate (Value is then 0).
	Null bool
	// Labels as decoded from JSON, except _device_orig, which is []string.
	Labels map[string]any
}

// Emulator is an emulated Kwollect service. It is safe for concurrent use.
type Emulator struct {
	cfg     Config
	now     func() time.Time
	topo    *Topology
	sites   map[string]*siteData
	sampler *cpuSampler
	posts   *postStore
	logger  *slog.Logger
	start   time.Time

	// Runtime-mutable monitoring: jobs and monitored nodes (guarded by
	// jobsMu); descs are every stored series, whose monitored intervals are
	// recomputed when they change.
	jobsMu    sync.RWMutex
	jobs      []Job
	monitored []string
	allNodes  map[string]bool
	descs     []*seriesDesc

	faults *faultSet
	stats  *statsCounter
	// holds tracks the held connections (black hole, stall); blackhole is
	// the whole-server switch; controlToken authorises the control
	// endpoint.
	holds        *holdSet
	blackhole    blackhole
	controlToken string
	// sleep waits d or until ctx is done (tests replace it).
	sleep func(ctx context.Context, d time.Duration) error

	closeOnce sync.Once
}

// siteData holds the stored series of one site.
type siteData struct {
	site     *Site
	idx      *siteIndex
	own      map[string][]*seriesDesc // node -> series stored under the node
	alias    map[string][]*aliasGroup // node -> series of devices aliased to it
	raw      map[string][]*seriesDesc // wattmetre port / PDU outlet / switch port -> series
	portNode map[string]string        // device -> node
}

// New builds an emulator. It starts the CPU sampler when CPULoadNodes is
// not empty; call Close to stop it.
func New(cfg Config) (*Emulator, error) {
	e := &Emulator{cfg: cfg, now: cfg.Now, topo: cfg.Topology, posts: newPostStore(), logger: cfg.Logger}
	if e.now == nil {
		e.now = time.Now
	}
	if e.topo == nil {
		e.topo = DefaultTopology()
	}
	if e.logger == nil {
		e.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if e.cfg.SummaryLag == 0 {
		e.cfg.SummaryLag = 10 * time.Minute
	} else if e.cfg.SummaryLag < 0 {
		e.cfg.SummaryLag = 0
	}
	if e.cfg.DynamicRange == 0 {
		e.cfg.DynamicRange = 120
	}
	if e.cfg.CallerDevice == "" {
		e.cfg.CallerDevice = "emulator-caller"
	}
	if e.cfg.CPUHistory <= 0 {
		e.cfg.CPUHistory = 2 * time.Hour
	}
	if e.cfg.Lag < 0 {
		return nil, errors.New("emulator: negative Lag")
	}
	if e.cfg.RowLimit < 0 || e.cfg.StatementDelay < 0 {
		return nil, errors.New("emulator: negative RowLimit or StatementDelay")
	}
	if e.cfg.StatementTimeout < 0 {
		return nil, errors.New("emulator: negative StatementTimeout")
	}
	if r := e.cfg.StatementRowsPerSecond; r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
		return nil, fmt.Errorf("emulator: StatementRowsPerSecond %v: want a positive number (0 = default)", r)
	}
	if e.cfg.StatementRowsPerSecond == 0 {
		e.cfg.StatementRowsPerSecond = DefaultStatementRowsPerSecond
	}
	e.start = cfg.Start
	if e.start.IsZero() {
		e.start = e.now()
	}
	e.sleep = sleepCtx
	e.stats = newStatsCounter()
	e.holds = newHoldSet()
	e.blackhole.on.Store(cfg.Blackhole)
	if cfg.Control {
		if e.controlToken = cfg.ControlToken; e.controlToken == "" {
			e.controlToken = newControlToken()
		} else if err := checkControlToken(e.controlToken); err != nil {
			return nil, err
		}
	}
	e.faults = newFaultSet(cfg.FaultSeed)
	if err := e.faults.set(cfg.Faults); err != nil {
		return nil, err
	}
	topo, err := applyRAPLMode(e.topo, cfg.RAPL)
	if err != nil {
		return nil, err
	}
	e.topo = topo
	idx, err := e.topo.index()
	if err != nil {
		return nil, err
	}
	e.allNodes = map[string]bool{}
	for _, si := range idx {
		for n := range si.nodes {
			e.allNodes[n] = true
		}
	}
	if err := e.checkNodes("Monitored", cfg.Monitored); err != nil {
		return nil, err
	}
	if err := e.checkNodes("CPULoadNodes", cfg.CPULoadNodes); err != nil {
		return nil, err
	}
	for _, j := range cfg.Jobs {
		if err := e.checkJob(j); err != nil {
			return nil, err
		}
	}
	for _, l := range cfg.Load {
		if err := e.checkNodes("Load", l.Nodes); err != nil {
			return nil, err
		}
	}
	for i, sp := range cfg.Signals {
		if err := sp.Validate(); err != nil {
			return nil, fmt.Errorf("emulator: Signals[%d]: %w", i, err)
		}
		if err := e.checkNodes("Signals", sp.Nodes); err != nil {
			return nil, err
		}
	}
	for i, g := range cfg.Gaps {
		if err := g.Validate(); err != nil {
			return nil, fmt.Errorf("emulator: Gaps[%d]: %w", i, err)
		}
		if err := e.checkNodes("Gaps", g.Nodes); err != nil {
			return nil, err
		}
	}
	e.jobs = append([]Job(nil), cfg.Jobs...)
	e.monitored = append([]string(nil), cfg.Monitored...)
	rules, err := monitorRules(e.monitored, e.jobs)
	if err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	if len(cfg.CPULoadNodes) > 0 {
		if cfg.cpuSampler != nil {
			e.sampler = cfg.cpuSampler
		} else {
			e.sampler = newCPUSampler(nil, int(e.cfg.CPUHistory/(cpuSlotUs*time.Microsecond)), e.logger)
			go e.sampler.run()
		}
	}
	cpuNodes := map[string]bool{}
	for _, n := range cfg.CPULoadNodes {
		cpuNodes[cutFQDN(n)] = true
	}
	e.sites = map[string]*siteData{}
	for _, s := range e.topo.Sites {
		sd, err := e.buildSite(s, idx[s.UID], rules, cpuNodes)
		if err != nil {
			e.Close()
			return nil, err
		}
		e.sites[s.UID] = sd
	}
	if err := e.applyGaps(); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// applyGaps gives every series its gap intervals; a gap metric no series of
// its nodes produces is an error (likely a typo).
func (e *Emulator) applyGaps() error {
	if len(e.cfg.Gaps) == 0 {
		return nil
	}
	used := make([]map[string]bool, len(e.cfg.Gaps))
	for i := range used {
		used[i] = map[string]bool{}
	}
	for _, d := range e.descs {
		d.gaps = gapIntervals(e.cfg.Gaps, d.monNode, d.metric)
		for i, g := range e.cfg.Gaps {
			if containsNode(g.Nodes, d.monNode) {
				used[i][d.metric] = true
			}
		}
	}
	for i, g := range e.cfg.Gaps {
		for _, m := range g.Metrics {
			if !used[i][m] {
				return fmt.Errorf("emulator: Gaps[%d]: no series of metric %q on nodes %s", i, m, strings.Join(g.Nodes, ","))
			}
		}
	}
	return nil
}

// checkNodes fails on a node unknown to the topology.
func (e *Emulator) checkNodes(what string, nodes []string) error {
	for _, n := range nodes {
		if !e.allNodes[cutFQDN(n)] {
			return fmt.Errorf("emulator: %s: unknown node %q", what, n)
		}
	}
	return nil
}

// checkJob validates a job's nodes, site and monitor types.
func (e *Emulator) checkJob(j Job) error {
	if err := e.checkNodes(fmt.Sprintf("job %d", j.ID), j.Nodes); err != nil {
		return err
	}
	if j.Site != "" && e.topo.Site(j.Site) == nil {
		return fmt.Errorf("emulator: job %d: unknown site %q", j.ID, j.Site)
	}
	if _, err := monitorRules(nil, []Job{j}); err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	return nil
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close releases the held connections (black hole, stall: their clients
// see the connection closed) and waits for their handlers, then stops the
// CPU sampler. It does not stop an HTTP server serving Handler, and requests
// served after it are no longer held. It is safe to call more than once.
func (e *Emulator) Close() {
	e.closeOnce.Do(func() {
		e.holds.close()
		if e.sampler != nil && e.cfg.cpuSampler == nil {
			e.sampler.close()
			<-e.sampler.done
		}
	})
}

// buildSite creates the series descriptors of every node of a site.
func (e *Emulator) buildSite(s *Site, si *siteIndex, rules []monitorRule, cpuNodes map[string]bool) (*siteData, error) {
	sd := &siteData{site: s, idx: si, own: map[string][]*seriesDesc{}, alias: map[string][]*aliasGroup{},
		raw: map[string][]*seriesDesc{}, portNode: map[string]string{}}
	seed := e.cfg.Seed
	for _, c := range s.Clusters {
		for _, n := range c.Nodes {
			nm := newNodeModel(seed, n.UID, e.cfg.DynamicRange)
			if cpuNodes[n.UID] {
				nm.cpu = e.sampler
			}
			for _, l := range e.cfg.Load {
				for _, ln := range l.Nodes {
					if cutFQDN(ln) == n.UID {
						ph := loadPhase{start: l.Start.UnixMicro(), stop: posInf, util: l.Util}
						if !l.Stop.IsZero() {
							ph.stop = l.Stop.UnixMicro()
						}
						nm.phases = append(nm.phases, ph)
					}
				}
			}
			for _, sp := range e.cfg.Signals {
				if containsNode(sp.Nodes, n.UID) {
					if err := nm.addSignal(sp); err != nil {
						return nil, fmt.Errorf("emulator: Signals: %w", err)
					}
				}
			}
			var descs []*seriesDesc
			for _, md := range c.Metrics {
				if len(md.OnlyFor) > 0 && !contains(md.OnlyFor, n.UID) {
					continue
				}
				descs = append(descs, e.nodeSeries(s, c, n, nm, md, rules)...)
			}
			e.descs = append(e.descs, descs...)
			for _, d := range descs {
				d.info = newSeriesInfo(d.device, d.metric, stringLabels(d.labels))
				nanLabels := stringLabels(d.labels)
				nanLabels["value_str"] = "N/A"
				d.nanInfo = newSeriesInfo(d.device, d.metric, nanLabels)
				if d.alias == "" {
					sd.own[n.UID] = append(sd.own[n.UID], d)
					continue
				}
				sd.raw[d.device] = append(sd.raw[d.device], d)
				sd.portNode[d.device] = n.UID
				var grp *aliasGroup
				for _, g := range sd.alias[n.UID] {
					if g.metric == d.metric && labelsKey(g.labels) == labelsKey(d.labels) {
						grp = g
					}
				}
				if grp == nil {
					grp = &aliasGroup{metric: d.metric, labels: d.labels}
					sd.alias[n.UID] = append(sd.alias[n.UID], grp)
				}
				grp.descs = append(grp.descs, d)
			}
			for _, g := range sd.alias[n.UID] {
				sort.Slice(g.descs, func(i, j int) bool { return g.descs[i].device < g.descs[j].device })
			}
		}
	}
	return sd, nil
}

func stringLabels(l map[string]string) map[string]any {
	m := make(map[string]any, len(l)+1)
	for k, v := range l {
		m[k] = v
	}
	return m
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// nodeSeries returns the stored series a catalogue entry produces for a node.
// Generated: wattmetre_power_watt, pdu_outlet_power_watt,
// bmc_node_power_watt, bmc_node_power_watthour_total, bmc_cpu_temp_celsius,
// network_ifacein_bytes_total, and from the Prometheus groups
// prom_node_load1, prom_node_rapl_{package,dram}_joules_total and
// prom_DCGM_FI_DEV_POWER_USAGE. Other entries have no data.
func (e *Emulator) nodeSeries(s *Site, c *Cluster, n *Node, nm *nodeModel, md MetricDesc, rules []monitorRule) []*seriesDesc {
	seed := e.cfg.Seed
	ms := int64(1000)
	mk := func(kind genKind, device, alias, metric string, labels map[string]string) *seriesDesc {
		d := &seriesDesc{
			kind: kind, device: device, alias: alias, metric: metric, labels: labels, node: nm,
			h:      hashStr(seed, device, metric, labelsKey(labels)),
			period: int64(md.Period) * ms, opt: int64(md.OptionalPeriod) * ms,
			monNode: n.UID, monNames: []string{md.Name, metric},
		}
		d.setMonitoring(rules)
		return d
	}
	bmcPhase := int64(hashStr(seed, "bmc-phase", n.UID) % uint64(usPerSec))
	var out []*seriesDesc
	switch md.Source.Protocol {
	case "wattmetre":
		var ports []NodePDU
		for _, np := range n.PDU {
			if p := s.PDU(np.UID); p != nil && p.IsWattmetre() {
				ports = append(ports, np)
			}
		}
		for i, np := range ports {
			p := s.PDU(np.UID)
			dev := p.PortDevice(np.Port)
			d := mk(kWattmetre, dev, n.UID, md.Name, md.Labels)
			d.period = usPerSec
			d.frameUs = int64(p.RawPeriodMs()) * ms
			if md.OptionalPeriod > 0 {
				d.frameUs = int64(md.OptionalPeriod) * ms
			}
			d.opt = d.frameUs
			d.wmHash = hashStr(seed, "wattmetre-frames", p.UID)
			d.share = 1
			if len(ports) > 1 {
				d.share = (1 + 0.08*(float64(i)/float64(len(ports)-1)-0.5)) / float64(len(ports))
			}
			out = append(out, d)
		}
	case "pdu":
		for _, np := range n.PDU {
			if p := s.PDU(np.UID); p != nil && !p.IsWattmetre() {
				dev := p.PortDevice(np.Port)
				d := mk(kPDU, dev, n.UID, md.Name, md.Labels)
				d.phase = int64(hashStr(seed, "pdu-phase", dev) % uint64(usPerSec))
				out = append(out, d)
			}
		}
	case "snmp", "snmpv1", "ipmisensor", "https":
		var d *seriesDesc
		switch md.Name {
		case "bmc_node_power_watt":
			d = mk(kBMCPower, n.UID, "", md.Name, md.Labels)
			d.nanRate = e.cfg.BMCNaNRate
		case "bmc_node_power_watthour_total":
			d = mk(kBMCEnergy, n.UID, "", md.Name, md.Labels)
			d.base = float64(20000 + hashStr(seed, "wh-base", n.UID)%30000)
		case "bmc_cpu_temp_celsius":
			d = mk(kCPUTemp, n.UID, "", md.Name, md.Labels)
			d.idx, _ = strconv.Atoi(md.Labels["cpu"])
		}
		if d != nil {
			d.phase = bmcPhase
			out = append(out, d)
		}
	case "network_equipment":
		if md.Name == "network_ifacein_bytes_total" && c.Switch != "" && n.SwitchPort > 0 {
			dev := c.Switch + "-port-" + strconv.Itoa(n.SwitchPort)
			d := mk(kNetIn, dev, n.UID, md.Name, md.Labels)
			d.phase = int64(hashStr(seed, "net-phase", dev) % uint64(usPerSec))
			d.base = float64(hashStr(seed, "net-base", dev) % 1_000_000_000_000)
			out = append(out, d)
		}
	case "prometheus":
		ids, _ := md.Source.ID.([]any)
		has := func(name string) bool {
			for _, x := range ids {
				if x == name {
					return true
				}
			}
			if l, ok := md.Source.ID.([]string); ok {
				return contains(l, name)
			}
			return false
		}
		phase := int64(hashStr(seed, "prom-phase", n.UID) % uint64(usPerSec))
		if has("node_load1") {
			d := mk(kPromLoad1, n.UID, "", "prom_node_load1", nil)
			d.phase = phase
			out = append(out, d)
		}
		// One scrape: the RAPL counters share node_load1's timestamps.
		if has("node_rapl_package_joules_total") || has("node_rapl_dram_joules_total") {
			for _, d := range raplSeries(seed, n, func(kind genKind, metric string, labels map[string]string) *seriesDesc {
				return mk(kind, n.UID, "", metric, labels)
			}) {
				if has(strings.TrimPrefix(d.metric, "prom_")) {
					d.phase = phase
					out = append(out, d)
				}
			}
		}
		if has("DCGM_FI_DEV_POWER_USAGE") {
			for g := 0; g < n.GPUs; g++ {
				d := mk(kGPUPower, n.UID, "", "prom_DCGM_FI_DEV_POWER_USAGE", map[string]string{"gpu": strconv.Itoa(g)})
				d.idx = g
				d.phase = phase
				out = append(out, d)
			}
		}
	}
	return out
}

// gens returns the generators of a query over [a, b] (µs). vis is the
// visibility limit of lagged rows (now - Lag; now for Expected).
func (e *Emulator) gens(sd *siteData, ids []string, metrics map[string]bool, a, b, vis int64, summary bool, now int64) []rowGen {
	if summary {
		first := ceilDiv(a, bucketUs) * bucketUs
		lastOK := floorDiv(now-e.cfg.SummaryLag.Microseconds(), bucketUs)*bucketUs - bucketUs
		last := min(floorDiv(b, bucketUs)*bucketUs, lastOK)
		if first > last {
			return nil
		}
		a, b, vis = first, last+bucketUs-1, posInf
	}
	wrap := func(g rowGen) rowGen {
		if summary {
			return &summaryGen{in: g}
		}
		return g
	}
	want := func(metric string) bool { return metrics == nil || metrics[metric] }
	var out []rowGen
	for _, id := range ids {
		if _, isNode := sd.idx.nodes[id]; isNode {
			for _, d := range sd.own[id] {
				if want(d.metric) {
					out = append(out, wrap(newDescGen(d, d.info, a, b, vis)))
				}
			}
			for _, grp := range sd.alias[id] {
				if !want(grp.metric) {
					continue
				}
				ins := make([]rowGen, len(grp.descs))
				for i, d := range grp.descs {
					ins[i] = wrap(newDescGen(d, d.info, a, b, vis))
				}
				out = append(out, newSumGen(id, grp, ins))
			}
		} else {
			for _, d := range sd.raw[id] {
				if want(d.metric) {
					out = append(out, wrap(newDescGen(d, d.info, a, b, vis)))
				}
			}
		}
		for _, g := range e.posts.gens(sd.site.UID, id, metrics, a, b, summary) {
			out = append(out, wrap(g))
		}
	}
	return out
}

// stream returns the row iterator of a parsed query at time now, with the
// ingestion lag applied when lag is true.
func (e *Emulator) stream(q *query, now int64, lag bool) rowGen {
	sd := e.sites[q.site]
	vis := now
	if lag {
		vis = now - e.cfg.Lag.Microseconds()
	}
	var g rowGen = newMergeGen(e.gens(sd, q.ids, q.metrics, q.start, q.end, vis, q.summary, now))
	if q.asRate {
		g = newRateGen(g)
	}
	return g
}

// Expected returns the rows the metrics endpoint would return for this
// query if there were no ingestion lag (rows stamped up to now, 1 Hz
// wattmetre means up to now - 1 s), with the same values in the same order.
// nodes and metrics follow the GET semantics (items cut at the first '.',
// exact match, empty metrics = all); both bounds are inclusive.
func (e *Emulator) Expected(site string, nodes, metrics []string, start, end time.Time) ([]Row, error) {
	v := url.Values{}
	v.Set("nodes", strings.Join(nodes, ","))
	if len(metrics) > 0 {
		v.Set("metrics", strings.Join(metrics, ","))
	}
	v.Set("start_time", formatEpoch(start))
	v.Set("end_time", formatEpoch(end))
	return e.ExpectedQuery(site, v)
}

// ExpectedQuery is Expected for any GET parameter set (job_id, summary,
// as_rate, default windows...), still without ingestion lag.
func (e *Emulator) ExpectedQuery(site string, params url.Values) ([]Row, error) {
	if e.sites[site] == nil {
		return nil, fmt.Errorf("emulator: unknown site %q", site)
	}
	now := e.now().UnixMicro()
	q, perr := e.parseQuery(site, params, now)
	if perr != nil {
		return nil, perr
	}
	g := e.stream(q, now, false)
	var out []Row
	for {
		r, ok := g.next()
		if !ok {
			return out, nil
		}
		out = append(out, exportRow(&r))
	}
}

// formatEpoch renders t as exact epoch seconds with 6 decimals.
func formatEpoch(t time.Time) string {
	us := t.UnixMicro()
	sign := ""
	if us < 0 {
		sign, us = "-", -us
	}
	return fmt.Sprintf("%s%d.%06d", sign, us/usPerSec, us%usPerSec)
}

func exportRow(r *row) Row {
	out := Row{
		Timestamp: time.UnixMicro(r.ts).In(paris),
		DeviceID:  r.s.device, MetricID: r.s.metric,
		Value: r.v, Null: r.null,
		Labels: exportLabels(r.s.labels),
	}
	if r.null {
		out.Value = 0
	}
	return out
}

// exportLabels deep-copies labels, turning json.Number into float64 and
// _device_orig into []string.
func exportLabels(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = exportValue(v)
	}
	if l, ok := out["_device_orig"].([]any); ok {
		ss := make([]string, 0, len(l))
		for _, x := range l {
			if s, ok := x.(string); ok {
				ss = append(ss, s)
			}
		}
		if len(ss) == len(l) {
			out["_device_orig"] = ss
		}
	}
	return out
}

func exportValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return x.String()
		}
		return f
	case []string:
		return append([]string(nil), x...)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = exportValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = exportValue(e)
		}
		return out
	}
	return v
}
