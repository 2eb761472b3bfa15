package emulator

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// RAPL counters as node_exporter's rapl collector exposes them and Kwollect
// would store them through the Prometheus default group (an emulator
// extension: the real catalogue does not list them, see README.md).
//
// Model, per node (P is the wall power the wattmetre sees, idle the node's
// idle power):
//
//	package (all sockets) = raplPackageFrac × (P − raplStaticFrac × idle)
//	dram    (all sockets) = raplDRAMFrac × P
//
// The static part (fans, disks, board, PSU losses) is what RAPL never sees.
// At idle RAPL (package + DRAM) is 0.85 × 0.6 + 0.08 = 59 % of the wall
// power; the share grows with the load (≈ 78 % at 210 W for a 90 W idle
// node). Under an analytic signal the static part is capped at half the
// signal's lowest level, so the package power never goes negative.
const (
	raplStaticFrac  = 0.40
	raplPackageFrac = 0.85
	raplDRAMFrac    = 0.08
	// raplMaxUJ is the usual max_energy_range_uj: energy_uj, and so
	// node_exporter's joules (energy_uj / 1e6), wrap to 0 past it.
	raplMaxUJ = int64(262143328850)
	// RAPLMaxJoules is the value past which the emulated RAPL counters wrap
	// to 0 (max_energy_range_uj / 1e6).
	RAPLMaxJoules = float64(raplMaxUJ) / 1e6

	raplPackageMetric = "prom_node_rapl_package_joules_total"
	raplDRAMMetric    = "prom_node_rapl_dram_joules_total"
)

// raplIDs are the node_exporter names listed in the Prometheus default
// group, in the group's (sorted) order.
var raplIDs = []string{"node_rapl_dram_joules_total", "node_rapl_package_joules_total"}

// RAPLMode selects the clusters whose Prometheus default group
// (prom_default_metrics) lists the RAPL counters, and so serves them.
type RAPLMode int

const (
	// RAPLDefault (the zero value): the catalogues as DefaultTopology builds
	// them, i.e. every cluster whose catalogue the emulator makes up lists
	// them; lyon/taurus, whose catalogue is the verbatim reference excerpt,
	// does not. A custom Topology is taken as is.
	RAPLDefault RAPLMode = iota
	// RAPLAll adds them to every cluster's Prometheus default group
	// (taurus included, whose catalogue then differs from the reference).
	RAPLAll
	// RAPLOff removes them from every catalogue: no RAPL rows anywhere.
	RAPLOff
)

// String returns the mode's name, as ParseRAPLMode reads it.
func (m RAPLMode) String() string {
	switch m {
	case RAPLDefault:
		return "default"
	case RAPLAll:
		return "all"
	case RAPLOff:
		return "off"
	}
	return "RAPLMode(" + strconv.Itoa(int(m)) + ")"
}

// ParseRAPLMode reads "default", "all" or "off".
func ParseRAPLMode(s string) (RAPLMode, error) {
	for _, m := range []RAPLMode{RAPLDefault, RAPLAll, RAPLOff} {
		if strings.EqualFold(strings.TrimSpace(s), m.String()) {
			return m, nil
		}
	}
	return 0, fmt.Errorf("RAPL mode %q: want default, all or off", s)
}

// sourceIDs returns a Prometheus group's id list ([]string or, decoded from
// JSON, []any); nil for anything else.
func sourceIDs(id any) []string {
	switch l := id.(type) {
	case []string:
		return l
	case []any:
		out := make([]string, 0, len(l))
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// isNodeExporterGroup tells whether a catalogue entry is the node_exporter
// default group (the one Kwollect scrapes on port 9100 with an id list).
func isNodeExporterGroup(md MetricDesc) bool {
	return md.Source.Protocol == "prometheus" && md.Source.Port == 9100 && md.Name == "prom_default_metrics"
}

// withRAPLIDs returns ids with the RAPL names added (on) or removed (off),
// the node_* names kept sorted and anything else (kwollect_custom) after
// them, as in the reference group.
func withRAPLIDs(ids []string, on bool) []string {
	var nodes, rest []string
	for _, id := range ids {
		switch {
		case contains(raplIDs, id):
		case strings.HasPrefix(id, "node_"):
			nodes = append(nodes, id)
		default:
			rest = append(rest, id)
		}
	}
	if on {
		nodes = append(nodes, raplIDs...)
	}
	sort.Strings(nodes)
	return append(nodes, rest...)
}

// applyRAPLMode returns the topology with the mode applied to its
// catalogues: t itself for RAPLDefault, otherwise a copy (sites and
// clusters copied, nodes and PDUs shared) so the caller's topology is left
// alone.
func applyRAPLMode(t *Topology, mode RAPLMode) (*Topology, error) {
	switch mode {
	case RAPLDefault:
		return t, nil
	case RAPLAll, RAPLOff:
	default:
		return nil, fmt.Errorf("emulator: unknown RAPL mode %d", int(mode))
	}
	out := &Topology{}
	for _, s := range t.Sites {
		sc := *s
		sc.Clusters = nil
		for _, c := range s.Clusters {
			cc := *c
			cc.Metrics = make([]MetricDesc, len(c.Metrics))
			for i, md := range c.Metrics {
				if isNodeExporterGroup(md) {
					md.Source.ID = withRAPLIDs(sourceIDs(md.Source.ID), mode == RAPLAll)
				}
				cc.Metrics[i] = md
			}
			sc.Clusters = append(sc.Clusters, &cc)
		}
		out.Sites = append(out.Sites, &sc)
	}
	return out, nil
}

// sockets returns the node's CPU socket count (RAPL zones per domain).
func (n *Node) sockets() int {
	if n.Sockets > 0 {
		return n.Sockets
	}
	return 2
}

// raplShare is socket i's share of a domain's power among n sockets:
// socket 0 draws a little more (it runs most of the OS housekeeping),
// spread ±spread/2 around an equal split.
func raplShare(i, n int, spread float64) float64 {
	if n <= 1 {
		return 1
	}
	return (1 + spread*(0.5-float64(i)/float64(n-1))) / float64(n)
}

// raplSeries returns the package and DRAM counter series of a node, one per
// socket, labelled {"index": "<socket>"} like node_exporter's zones (which
// also carry a path label the emulator leaves out).
func raplSeries(seed int64, n *Node, mk func(kind genKind, metric string, labels map[string]string) *seriesDesc) []*seriesDesc {
	var out []*seriesDesc
	ns := n.sockets()
	for _, dom := range []struct {
		kind   genKind
		metric string
		spread float64
	}{{kRAPLPackage, raplPackageMetric, 0.06}, {kRAPLDRAM, raplDRAMMetric, 0.02}} {
		for i := 0; i < ns; i++ {
			idx := strconv.Itoa(i)
			d := mk(dom.kind, dom.metric, map[string]string{"index": idx})
			d.idx = i
			d.share = raplShare(i, ns, dom.spread)
			// The counter's value at t0Us, a whole number of µJ below the wrap.
			d.base = float64(hashStr(seed, "rapl-base", n.UID, dom.metric, idx) % uint64(raplMaxUJ))
			out = append(out, d)
		}
	}
	return out
}

// raplCounter renders a counter as node_exporter does: whole µJ (base + the
// energy since t0Us), wrapped at max_energy_range_uj, divided by 1e6.
func raplCounter(baseUJ, joules float64) float64 {
	uj := int64(baseUJ) + int64(math.Floor(joules*1e6))
	return float64(uj%raplMaxUJ) / 1e6
}

// lowest returns the signal's lowest power level.
func (s *Signal) lowest() float64 {
	switch s.Kind {
	case SignalConstant:
		return s.Watts
	case SignalRamp:
		return min(s.From, s.To)
	}
	if s.duty() >= 1 {
		return s.High
	}
	return min(s.Low, s.High)
}

// raplEnergy returns the node's package and DRAM energy (J, all sockets)
// since t0Us (0 before it); non-decreasing in t.
//
// It sums the model and signal segments up to t one by one, rather than
// correcting the model's energy like energy does: the earlier segments are
// the same float operations whatever t, so over a zero-power signal level
// the result is exactly constant and a counter cannot step back by a
// rounding error, which a consumer would take for a wrap.
func (n *nodeModel) raplEnergy(t int64) (pkg, dram float64) {
	if t <= t0Us {
		return 0, 0
	}
	static := raplStaticFrac * n.idle
	var wall, stat float64
	model := func(a, b int64) {
		wall += n.modelEnergy(b) - n.modelEnergy(a)
		stat += static * float64(b-a) / float64(usPerSec)
	}
	cur := t0Us
	for i := range n.sigs {
		p := &n.sigs[i]
		s, u := max(p.s, cur), min(t, p.e)
		if u <= s {
			continue
		}
		if s > cur {
			model(cur, s)
		}
		wall += p.sig.energy(instant{us: s}, instant{us: u})
		stat += min(static, p.sig.lowest()/2) * float64(u-s) / float64(usPerSec)
		cur = u
	}
	if cur < t {
		model(cur, t)
	}
	return raplPackageFrac * (wall - stat), raplDRAMFrac * wall
}
