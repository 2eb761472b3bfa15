package emulator

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// cpuSampler measures this machine's CPU utilisation every slot (100 ms) from
// /proc/stat and keeps a bounded history (a ring of slots). CPU-load nodes
// draw idle + dynamicRange × utilisation. Times before the first sample (or
// evicted from the ring) count as idle; times after the newest sample reuse
// the newest utilisation.
type cpuSampler struct {
	read   func() (busy, total uint64, err error)
	logger *slog.Logger

	mu        sync.RWMutex
	utils     []float64 // ring, indexed by slot mod len
	cums      []float64 // ring: cumulative util-seconds at the end of the slot
	first     int64     // oldest retained slot
	last      int64     // newest filled slot (first > last: empty)
	baseCum   float64   // cumulative util-seconds at the start of slot first
	prevBusy  uint64
	prevTotal uint64
	havePrev  bool
	failed    bool

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

const cpuSlotUs = 100_000 // 100 ms

// newCPUSampler creates a sampler keeping capacity slots (72000 = 2 h).
func newCPUSampler(read func() (uint64, uint64, error), capacity int, logger *slog.Logger) *cpuSampler {
	if read == nil {
		read = readProcStat
	}
	return &cpuSampler{
		read: read, logger: logger,
		utils: make([]float64, capacity), cums: make([]float64, capacity),
		first: 1, last: 0,
		stop: make(chan struct{}), done: make(chan struct{}),
	}
}

// readProcStat returns the busy and total jiffies of all CPUs.
func readProcStat() (busy, total uint64, err error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	return parseProcStat(data)
}

func parseProcStat(data []byte) (busy, total uint64, err error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 || f[0] != "cpu" {
			continue
		}
		var v [8]uint64
		for i := 1; i < len(f) && i <= 8; i++ {
			x, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("/proc/stat: %w", err)
			}
			v[i-1] = x
		}
		for _, x := range v {
			total += x
		}
		idle := v[3] + v[4] // idle + iowait
		return total - idle, total, nil
	}
	return 0, 0, errors.New("/proc/stat: no aggregate cpu line")
}

func slotOf(t int64) int64 { return floorDiv(t, cpuSlotUs) }

// sample takes one measurement at time now and fills the slots that ended
// since the previous one.
func (s *cpuSampler) sample(now time.Time) {
	busy, total, err := s.read()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if !s.failed && s.logger != nil {
			s.logger.Warn("CPU-load mode: cannot read CPU statistics; CPU-load nodes stay idle", "err", err)
		}
		s.failed = true
		return
	}
	cur := slotOf(now.UnixMicro()) - 1 // newest slot that has fully elapsed
	if !s.havePrev {
		s.havePrev, s.prevBusy, s.prevTotal = true, busy, total
		s.first, s.last = cur+1, cur
		return
	}
	u := 0.0
	if total > s.prevTotal && busy >= s.prevBusy {
		u = float64(busy-s.prevBusy) / float64(total-s.prevTotal)
	} else if s.last >= s.first {
		u = s.utils[s.idx(s.last)]
	}
	u = min(1, max(0, u))
	s.prevBusy, s.prevTotal = busy, total
	n := int64(len(s.utils))
	if cur-s.last > n { // long stall: skip what cannot be kept
		s.baseCum = s.cumEnd(s.last) + u*float64(cur-n-s.last)*float64(cpuSlotUs)/float64(usPerSec)
		s.first, s.last = cur-n+1, cur-n
	}
	for slot := s.last + 1; slot <= cur; slot++ {
		prev := s.cumEnd(slot - 1)
		if slot-s.first >= n { // evict the oldest slot
			s.baseCum = s.cums[s.idx(s.first)]
			s.first++
		}
		s.utils[s.idx(slot)] = u
		s.cums[s.idx(slot)] = prev + u*float64(cpuSlotUs)/float64(usPerSec)
		s.last = slot
	}
}

func (s *cpuSampler) idx(slot int64) int {
	n := int64(len(s.utils))
	return int(((slot % n) + n) % n)
}

// cumEnd is the cumulative util-seconds at the end of slot (caller holds mu).
func (s *cpuSampler) cumEnd(slot int64) float64 {
	if s.last < s.first || slot < s.first {
		return s.baseCum
	}
	if slot > s.last {
		slot = s.last
	}
	return s.cums[s.idx(slot)]
}

// util returns the utilisation at time t (µs).
func (s *cpuSampler) util(t int64) float64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.last < s.first {
		return 0
	}
	slot := slotOf(t)
	switch {
	case slot < s.first:
		return 0
	case slot > s.last:
		return s.utils[s.idx(s.last)]
	}
	return s.utils[s.idx(slot)]
}

// cumUtil returns ∫ util dt (seconds) from the sampler start to t (µs).
func (s *cpuSampler) cumUtil(t int64) float64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.last < s.first {
		return s.baseCum
	}
	slot := slotOf(t)
	if slot < s.first {
		return s.baseCum
	}
	if slot > s.last {
		u := s.utils[s.idx(s.last)]
		return s.cumEnd(s.last) + u*float64(t-(s.last+1)*cpuSlotUs)/float64(usPerSec)
	}
	return s.cumEnd(slot-1) + s.utils[s.idx(slot)]*float64(t-slot*cpuSlotUs)/float64(usPerSec)
}

// run samples every 100 ms until close.
func (s *cpuSampler) run() {
	defer close(s.done)
	s.sample(time.Now())
	tk := time.NewTicker(cpuSlotUs * time.Microsecond)
	defer tk.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-tk.C:
			s.sample(now)
		}
	}
}

func (s *cpuSampler) close() {
	s.stopOnce.Do(func() { close(s.stop) })
}
