package rapl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// perfEvent is an event of the power PMU: events/energy-<name>, its code,
// scale (joules per count) and unit.
type perfEvent struct {
	name   string // pkg, cores, gpu, ram, psys
	domain domain
	config uint64
	scale  float64
	unit   string
}

// perfEvents lists the power PMU's events, as Alumet does: the files
// events/energy-<x> without a dot, each with energy-<x>.scale and .unit.
// Sorted by domain.
func (s *sysfs) perfEvents() ([]perfEvent, error) {
	dir := filepath.Join(s.perfDir(), "events")
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s does not exist: the Intel RAPL PMU module may not be enabled (is the kernel too old? in a VM, RAPL is usually not exposed)", s.perfDir())
		}
		return nil, err
	}
	var out []perfEvent
	for _, e := range entries {
		name, ok := perfEventName(e.Name())
		if !ok || e.IsDir() {
			continue
		}
		base := filepath.Join(dir, e.Name())
		ev, err := s.perfEvent(base, name)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no RAPL event (energy-*) in %s", dir)
	}
	slices.SortFunc(out, func(a, b perfEvent) int { return int(a.domain) - int(b.domain) })
	return out, nil
}

func (s *sysfs) perfEvent(base, name string) (perfEvent, error) {
	d, err := perfDomain(name)
	if err != nil {
		return perfEvent{}, err
	}
	ev := perfEvent{name: name, domain: d}
	b, err := s.readFile(base)
	if err != nil {
		return perfEvent{}, err
	}
	if ev.config, err = parseEventConfig(string(b)); err != nil {
		return perfEvent{}, fmt.Errorf("%s: %w", base, err)
	}
	if b, err = s.readFile(base + ".scale"); err != nil {
		return perfEvent{}, err
	}
	if ev.scale, err = parseScale(string(b)); err != nil {
		return perfEvent{}, fmt.Errorf("%s.scale: %w", base, err)
	}
	if b, err = s.readFile(base + ".unit"); err != nil {
		return perfEvent{}, err
	}
	ev.unit = strings.TrimSpace(string(b))
	if ev.unit != "Joules" {
		return perfEvent{}, fmt.Errorf("%s.unit: want Joules, got %q", base, ev.unit)
	}
	return ev, nil
}

// perfPermissionError is a perf event the kernel refuses to open.
type perfPermissionError struct {
	event    string
	cpu      int
	paranoid string
	err      error
}

func (e *perfPermissionError) Error() string {
	return fmt.Sprintf("perf_event_open(power/energy-%s/, cpu %d): %v (kernel.perf_event_paranoid = %s): reading RAPL through perf_events "+
		"needs CAP_PERFMON (CAP_SYS_ADMIN before Linux 5.8) or kernel.perf_event_paranoid = -1. "+
		"Run the agent as root (sudo-g5k on Grid'5000, or a deploy job), or: sudo setcap cap_perfmon=ep <path of alumet-agent>, "+
		"or: sudo sysctl -w kernel.perf_event_paranoid=-1",
		e.event, e.cpu, e.err, e.paranoid)
}

func (e *perfPermissionError) Unwrap() error { return e.err }

// openPerf opens every event on one CPU per socket (cpumask's list, the
// socket being the CPU's position in it).
func (s *sysfs) openPerf(events []perfEvent) ([]*channel, error) {
	b, err := s.readFile(filepath.Join(s.perfDir(), "type"))
	if err != nil {
		return nil, err
	}
	pmu, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	if err != nil {
		return nil, fmt.Errorf("%s: want the PMU type, got %q", filepath.Join(s.perfDir(), "type"), strings.TrimSpace(string(b)))
	}
	mask := filepath.Join(s.perfDir(), "cpumask")
	if b, err = s.readFile(mask); err != nil {
		return nil, err
	}
	cpus, err := parseCPUList(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", mask, err)
	}
	var chans []*channel
	fail := func(err error) ([]*channel, error) {
		closeAll(chans)
		return nil, err
	}
	for _, ev := range events {
		for socket, cpu := range cpus {
			f, err := s.perfOpen(uint32(pmu), ev.config, cpu)
			if err != nil {
				if isPermission(err) {
					return fail(&perfPermissionError{event: ev.name, cpu: cpu, paranoid: s.paranoid(), err: err})
				}
				return fail(fmt.Errorf("perf_event_open(power/energy-%s/, cpu %d): %w", ev.name, cpu, err))
			}
			chans = append(chans, perfChannel(ev, socket, cpu, f))
		}
	}
	return chans, nil
}

// perfChannel reads a perf event's fd: every read gives the counter, a
// native-endian u64 of scale joules each, wrapping at 2^64.
func perfChannel(ev perfEvent, socket, cpu int, f *os.File) *channel {
	var buf [8]byte
	read := func() (uint64, error) {
		if _, err := io.ReadFull(f, buf[:]); err != nil {
			return 0, err
		}
		return binary.NativeEndian.Uint64(buf[:]), nil
	}
	return newChannel(ev.domain, socket, fmt.Sprintf("perf event power/energy-%s/ on cpu %d", ev.name, cpu),
		read, f.Close, math.MaxUint64, ev.scale)
}

func closeAll(chans []*channel) {
	for _, c := range chans {
		if c.close != nil {
			c.close()
		}
	}
}
