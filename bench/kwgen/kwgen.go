// Package kwgen generates realistic Kwollect responses for benchmarks: the
// body of GET /stable/sites/{site}/metrics?metrics=wattmetre_power_watt for
// N nodes, byte for byte in the shape the production API returns (see
// ../shared/spec/kwollect-api.md §3 and kwollect/emulator/format.go):
//
//	[{"timestamp":"2025-07-22T13:05:26.021345+02:00","device_id":"taurus-7","metric_id":"wattmetre_power_watt","value":130.45,"labels":{"_device_orig": ["wattmetre1-port6"]}},␠
//	 {"timestamp":…}]
//
// (␠ is a space.) In detail:
//
//   - one JSON array, json_agg style: elements separated by ", \n ";
//   - each element a compact PostgREST record with the fields timestamp,
//     device_id, metric_id, value, labels in that order, labels written by
//     jsonb (": " and ", " separators) with _device_orig always an array;
//   - timestamps in Europe/Paris with their offset (+01:00 or +02:00, also
//     across a DST change), microsecond precision, trailing zeros of the
//     fraction dropped: 1 Hz means sit on whole seconds (no fraction), raw
//     50/100 Hz frames on a 20/10 ms grid with a per-node phase and a
//     per-frame jitter of up to 50 µs;
//   - values in watts with at most 2 decimals, in shortest form (130.45,
//     130.4, 131);
//   - rows ordered by timestamp only, as Kwollect's ORDER BY timestamp does,
//     the nodes' rows interleaved; equal timestamps (1 Hz) come in device_id
//     order, the emulator's deterministic tie-break (Kwollect's is arbitrary).
//
// Generate streams the output with constant memory (O(nodes)) and is a pure
// function of its Config: the same seed gives the same bytes.
package kwgen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // Europe/Paris without relying on the system database
)

// Metric is the metric id of every generated row.
const Metric = "wattmetre_power_watt"

// Defaults of Config.
const (
	DefaultNodes = 10
	DefaultHz    = 50
	DefaultSite  = "lyon"
)

// DefaultStart is the default first instant, the seed README's example day
// (summer time, +02:00).
var DefaultStart = time.Date(2025, 7, 22, 13, 5, 26, 0, Paris)

// Paris is Europe/Paris, the zone of every Kwollect timestamp.
var Paris = mustParis()

func mustParis() *time.Location {
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		panic("kwgen: cannot load Europe/Paris: " + err.Error())
	}
	return loc
}

// Config describes one response. Zero fields take the defaults.
type Config struct {
	// Rows is the exact number of rows. When 0, Bytes decides.
	Rows int64
	// Bytes, used when Rows is 0, stops at the first row that brings the
	// body (closing bracket included) to at least Bytes bytes.
	Bytes int64
	// Nodes is the number of nodes (default 10).
	Nodes int
	// Hz is the wattmetre rate: 1 (per-second means, the default outside
	// a monitor job), 50 (raw v2 frames) or 100 (raw v3 frames); default 50.
	Hz int
	// Start is the first instant (default DefaultStart). 1 Hz rows start
	// at its whole second.
	Start time.Time
	// Site is the Grid'5000 site (default lyon); it picks the cluster
	// names.
	Site string
	// Seed makes the output reproducible.
	Seed uint64
}

func (c Config) withDefaults() (Config, error) {
	if c.Rows < 0 || c.Bytes < 0 {
		return c, errors.New("kwgen: Rows and Bytes must not be negative")
	}
	if c.Rows == 0 && c.Bytes == 0 {
		return c, errors.New("kwgen: set Rows or Bytes")
	}
	if c.Nodes == 0 {
		c.Nodes = DefaultNodes
	}
	if c.Nodes < 0 {
		return c, fmt.Errorf("kwgen: Nodes = %d, want at least 1", c.Nodes)
	}
	if c.Hz == 0 {
		c.Hz = DefaultHz
	}
	switch c.Hz {
	case 1, 50, 100:
	default:
		return c, fmt.Errorf("kwgen: Hz = %d, want 1, 50 or 100", c.Hz)
	}
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	if c.Site == "" {
		c.Site = DefaultSite
	}
	return c, nil
}

// Period is the time between two rows of one node.
func (c Config) Period() time.Duration {
	if c.Hz == 0 {
		return time.Second / DefaultHz
	}
	return time.Second / time.Duration(c.Hz)
}

// Summary describes a generated response.
type Summary struct {
	Rows, Bytes int64
	// First and Last are the first and last row timestamps (UTC).
	First, Last time.Time
	Site        string
	Hz          int
	Period      time.Duration
	Nodes       []string // device_id of each node, in generation order
	Devices     []string // the matching _device_orig (wattmetre port)
	Cluster     string
}

// cluster is where the nodes of a site live: the wattmetre clusters of
// the spec's hardware table (v2 wattmetres give 50 Hz, v3 100 Hz). The
// port numbers are plausible, not the reference repository's.
type cluster struct {
	name, wattmetre string
	first           int // number of the first node
}

var clusters = map[string][2]cluster{ // [v2, v3]
	"lyon":     {{"taurus", "wattmetre1", 1}, {"neowise", "wattmetrev3-1", 1}},
	"grenoble": {{"yeti", "wattmetre1", 1}, {"yeti", "wattmetre1", 1}},
	"nancy":    {{"gros", "gros-wattmetre2", 41}, {"gros", "gros-wattmetre2", 41}},
	"lille":    {{"chirop", "wattmetrev3-1", 1}, {"chirop", "wattmetrev3-1", 1}},
	"rennes":   {{"paradoxe", "wattmetrev3-1", 1}, {"paradoxe", "wattmetrev3-1", 1}},
}

// NodeNames returns the device_id and _device_orig of the n nodes of a
// response for site at hz: taurus-1 … taurus-n on wattmetre1-port0 … at
// lyon, 50 Hz (taurus-7 is on port 6, as in the seed README).
func NodeNames(site string, hz, n int) (nodes, devices []string, clusterName string) {
	cs, ok := clusters[site]
	if !ok {
		cs = [2]cluster{{"node", "wattmetre1", 1}, {"node", "wattmetrev3-1", 1}}
	}
	c := cs[0]
	if hz == 100 {
		c = cs[1]
	}
	for i := range n {
		num := c.first + i
		nodes = append(nodes, c.name+"-"+strconv.Itoa(num))
		devices = append(devices, c.wattmetre+"-port"+strconv.Itoa(num-1))
	}
	return nodes, devices, c.name
}

// ParseSize reads a byte size: 1000, 180MB, 1GB (powers of 1000), 1GiB,
// 512MiB, 64KiB (powers of 1024); a decimal number is allowed (1.5GB).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   float64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
		{"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"B", 1},
	}
	mult := 1.0
	for _, u := range units {
		if len(t) > len(u.suffix) && strings.EqualFold(t[len(t)-len(u.suffix):], u.suffix) {
			mult, t = u.mult, strings.TrimSpace(t[:len(t)-len(u.suffix)])
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) || v*mult >= math.MaxInt64 {
		return 0, fmt.Errorf("invalid size %q: want e.g. 180MB, 1GB, 512MiB or a number of bytes", s)
	}
	return int64(v * mult), nil
}

// node is the state of one node's series.
type node struct {
	rank   int   // position in device_id order (tie-break)
	next   int64 // timestamp (µs since the epoch) of the next row
	k      int64 // frame index of the next row
	phase  int64 // µs offset of the node's frames from the grid
	rng    *rand.Rand
	idle   float64 // W
	dyn    float64 // W at full load
	load   float64 // smoothed load, 0..1
	target float64 // load the node is heading to
	until  int64   // frame index at which the target changes
	// head and tail are the constant parts of the row around the
	// timestamp and the value.
	head, tail []byte
}

const (
	maxJitterUs = 50 // raw frames: jitter of the timestamps
	usPerSec    = 1_000_000
)

// value returns the reading of the node's frame k in centiwatts and moves
// the node on to the next frame.
func (n *node) value(perSec int) int64 {
	if n.k >= n.until {
		// A new phase of the workload: idle, or busy at some level,
		// for 5 to 60 s.
		if n.rng.Float64() < 0.4 {
			n.target = 0
		} else {
			n.target = 0.2 + 0.8*n.rng.Float64()
		}
		n.until = n.k + int64(5+n.rng.IntN(56))*int64(perSec)
	}
	// First-order response with a time constant of about 0.5 s.
	alpha := min(1, 2/float64(perSec))
	n.load += alpha * (n.target - n.load)
	sigma := 1.5 // W, raw frames
	if perSec == 1 {
		sigma = 0.4 // per-second means are smoother
	}
	w := n.idle + n.dyn*n.load + sigma*n.rng.NormFloat64()
	return max(0, int64(math.Round(w*100)))
}

// nodeHeap orders the nodes by (next timestamp, device_id).
type nodeHeap []*node

func (h nodeHeap) less(i, j int) bool {
	if h[i].next != h[j].next {
		return h[i].next < h[j].next
	}
	return h[i].rank < h[j].rank
}

func (h nodeHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// rowSeparator is what json_agg puts between elements.
const rowSeparator = ", \n "

// Generate writes the response described by c to w and returns its
// summary. Memory stays constant whatever the size.
func Generate(w io.Writer, c Config) (Summary, error) {
	c, err := c.withDefaults()
	if err != nil {
		return Summary{}, err
	}
	names, devices, clusterName := NodeNames(c.Site, c.Hz, c.Nodes)
	sum := Summary{Site: c.Site, Hz: c.Hz, Period: c.Period(), Nodes: names, Devices: devices, Cluster: clusterName}

	order := make([]int, c.Nodes)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(names[a], names[b]) })
	rank := make([]int, c.Nodes)
	for r, i := range order {
		rank[i] = r
	}

	perSec := c.Hz
	periodUs := int64(usPerSec / perSec)
	startUs := c.Start.UnixMicro()
	if perSec == 1 {
		startUs = c.Start.Truncate(time.Second).UnixMicro()
	}
	h := make(nodeHeap, c.Nodes)
	for i := range h {
		rng := rand.New(rand.NewPCG(c.Seed, uint64(i+1)*0x9e3779b97f4a7c15))
		n := &node{rank: rank[i], rng: rng}
		n.idle = 90 + 50*rng.Float64()
		n.dyn = 40 + 80*rng.Float64()
		if perSec > 1 {
			n.phase = rng.Int64N(periodUs - maxJitterUs)
		}
		n.head = fmt.Appendf(nil, `","device_id":%s,"metric_id":%s,"value":`, strconv.Quote(names[i]), strconv.Quote(Metric))
		n.tail = fmt.Appendf(nil, `,"labels":{"_device_orig": [%s]}}`, strconv.Quote(devices[i]))
		n.next = n.timestamp(startUs, periodUs, perSec)
		h[i] = n
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}

	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 256<<10)
	buf := make([]byte, 0, 512)
	if err := bw.WriteByte('['); err != nil {
		return sum, err
	}
	var ts tsCache
	for {
		if c.Rows > 0 && sum.Rows >= c.Rows {
			break
		}
		if c.Rows == 0 && cw.n+int64(bw.Buffered())+1 >= c.Bytes {
			break
		}
		n := h[0]
		buf = buf[:0]
		if sum.Rows > 0 {
			buf = append(buf, rowSeparator...)
		}
		buf = append(buf, `{"timestamp":"`...)
		buf = ts.append(buf, n.next)
		buf = append(buf, n.head...)
		buf = appendCentiwatts(buf, n.value(perSec))
		buf = append(buf, n.tail...)
		if _, err := bw.Write(buf); err != nil {
			return sum, err
		}
		if sum.Rows == 0 {
			sum.First = time.UnixMicro(n.next).UTC()
		}
		sum.Last = time.UnixMicro(n.next).UTC()
		sum.Rows++
		n.k++
		n.next = n.timestamp(startUs, periodUs, perSec)
		h.down(0)
	}
	if err := bw.WriteByte(']'); err != nil {
		return sum, err
	}
	if err := bw.Flush(); err != nil {
		return sum, err
	}
	sum.Bytes = cw.n
	return sum, nil
}

// timestamp returns the timestamp of the node's frame n.k.
func (n *node) timestamp(startUs, periodUs int64, perSec int) int64 {
	ts := startUs + n.k*periodUs
	if perSec > 1 {
		ts += n.phase + n.rng.Int64N(maxJitterUs)
	}
	return ts
}

// appendCentiwatts writes cw/100 in shortest form: 13045 → 130.45,
// 13040 → 130.4, 13100 → 131.
func appendCentiwatts(b []byte, cw int64) []byte {
	b = strconv.AppendInt(b, cw/100, 10)
	switch f := cw % 100; {
	case f == 0:
	case f%10 == 0:
		b = append(b, '.', byte('0'+f/10))
	default:
		b = append(b, '.', byte('0'+f/10), byte('0'+f%10))
	}
	return b
}

// tsCache formats Kwollect timestamps, reusing the date, time and offset
// of the current second.
type tsCache struct {
	sec    int64
	valid  bool
	prefix []byte // 2006-01-02T15:04:05
	offset []byte // -07:00
}

func (c *tsCache) append(b []byte, us int64) []byte {
	sec := us / usPerSec
	frac := us % usPerSec
	if frac < 0 {
		sec, frac = sec-1, frac+usPerSec
	}
	if !c.valid || sec != c.sec {
		t := time.Unix(sec, 0).In(Paris)
		c.prefix = t.AppendFormat(c.prefix[:0], "2006-01-02T15:04:05")
		c.offset = t.AppendFormat(c.offset[:0], "-07:00")
		c.sec, c.valid = sec, true
	}
	b = append(b, c.prefix...)
	if frac != 0 {
		var d [7]byte
		d[0] = '.'
		for i := 6; i >= 1; i-- {
			d[i] = byte('0' + frac%10)
			frac /= 10
		}
		end := 7
		for d[end-1] == '0' {
			end--
		}
		b = append(b, d[:end]...)
	}
	return append(b, c.offset...)
}
