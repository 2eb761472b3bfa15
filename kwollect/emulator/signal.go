package emulator

import (
	"hash/fnv"
	"math"
)

// Synthetic signals. Every value is a pure function of (seed, device, metric,
// time), except for the dynamic part of CPU-load nodes, which follows this
// machine's measured CPU utilisation.

const (
	usPerSec = int64(1_000_000)
	// t0Us is the origin of the slow variations and of the energy counters.
	t0Us = int64(1420070400) * usPerSec // 2015-01-01T00:00:00Z
	// dataStartUs: the emulated database holds no generated row before this.
	dataStartUs = int64(946684800) * usPerSec // 2000-01-01T00:00:00Z
	// posInf and negInf stand for unbounded times (µs).
	posInf = int64(math.MaxInt64 / 4)
	negInf = -posInf
)

// mix64 is the splitmix64 finaliser.
func mix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// hashStr hashes a seed and strings into 64 bits.
func hashStr(seed int64, parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		_, _ = h.Write([]byte(p))
		_, _ = h.Write([]byte{0})
	}
	return mix64(h.Sum64() ^ mix64(uint64(seed)))
}

// unit maps a hash to [0, 1).
func unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }

// noise returns a deterministic value in [-1, 1) for sample k of a series.
func noise(h uint64, k int64) float64 {
	return 2*unit(mix64(h^mix64(uint64(k)))) - 1
}

// floorDiv and ceilDiv divide rounding towards -inf / +inf.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }

// loadPhase is a scripted utilisation level of a node.
type loadPhase struct {
	start, stop int64 // µs, stop = posInf when open
	util        float64
}

// nodeModel holds the per-node parameters of the power model.
type nodeModel struct {
	uid        string
	h          uint64
	idle       float64 // W
	dyn        float64 // W added at 100 % utilisation
	phi1, phi2 float64
	cpu        *cpuSampler // non-nil for CPU-load nodes
	phases     []loadPhase
	sigs       []sigPhase // analytic signals replacing the model, sorted, disjoint
}

const (
	slowAmp1, slowPer1 = 4.0, 617.0  // W, s
	slowAmp2, slowPer2 = 2.0, 3607.0 // W, s
)

func newNodeModel(seed int64, uid string, dyn float64) *nodeModel {
	h := hashStr(seed, "node", uid)
	return &nodeModel{
		uid:  uid,
		h:    h,
		idle: 90 + math.Round(90*unit(mix64(h^1))*10)/10,
		dyn:  dyn,
		phi1: 2 * math.Pi * unit(mix64(h^2)),
		phi2: 2 * math.Pi * unit(mix64(h^3)),
	}
}

// util is the node utilisation in [0, 1] at time t (µs).
func (n *nodeModel) util(t int64) float64 {
	u := 0.0
	for _, p := range n.phases {
		if t >= p.start && t < p.stop {
			u += p.util
		}
	}
	if n.cpu != nil {
		u += n.cpu.util(t)
	}
	return math.Max(0, math.Min(1, u))
}

// cumUtil is ∫ util dt in seconds, up to time t (µs); non-decreasing.
func (n *nodeModel) cumUtil(t int64) float64 {
	c := 0.0
	for _, p := range n.phases {
		if t > p.start {
			c += p.util * float64(min(t, p.stop)-p.start) / float64(usPerSec)
		}
	}
	if n.cpu != nil {
		c += n.cpu.cumUtil(t)
	}
	return c
}

// slow is the slow variation (W) of the node, constant over each second.
func (n *nodeModel) slow(t int64) float64 {
	s := float64(floorDiv(t-t0Us, usPerSec))
	return slowAmp1*math.Sin(2*math.Pi*s/slowPer1+n.phi1) + slowAmp2*math.Sin(2*math.Pi*s/slowPer2+n.phi2)
}

// power is the node's true power (W) at time t (µs), without sensor noise.
func (n *nodeModel) power(t int64) float64 {
	return n.idle + n.slow(t) + n.dyn*n.util(t)
}

// energy is the node's energy (J) since t0Us (clamped at 0 before it),
// computed from a continuous version of power, with the exact energy of the
// analytic signals over their ranges; non-decreasing in t.
func (n *nodeModel) energy(t int64) float64 {
	e := n.modelEnergy(t)
	for i := range n.sigs {
		p := &n.sigs[i]
		s, u := max(p.s, t0Us), min(t, p.e)
		if u <= s {
			continue
		}
		e += p.sig.energy(instant{us: s}, instant{us: u}) - (n.modelEnergy(u) - n.modelEnergy(s))
	}
	return e
}

// modelEnergy is energy without the analytic signals.
func (n *nodeModel) modelEnergy(t int64) float64 {
	if t < t0Us {
		return 0
	}
	s := float64(t-t0Us) / float64(usPerSec)
	slowInt := func(amp, per, phi float64) float64 {
		k := 2 * math.Pi / per
		return amp / k * (math.Cos(phi) - math.Cos(k*s+phi))
	}
	return n.idle*s + slowInt(slowAmp1, slowPer1, n.phi1) + slowInt(slowAmp2, slowPer2, n.phi2) +
		n.dyn*(n.cumUtil(t)-n.cumUtil(t0Us))
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }
