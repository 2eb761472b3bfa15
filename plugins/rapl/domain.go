package rapl

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/alumet-go/alumet-agent/measure"
)

// domain is a RAPL domain, in Alumet's order (its totals come in this order).
type domain uint8

const (
	domainPackage  domain = iota // the whole socket
	domainPP0                    // power plane 0: the cores
	domainPP1                    // power plane 1: uncore, integrated GPU
	domainDRAM                   // the memory attached to the socket
	domainPlatform               // psys: the whole platform (recent client machines)
	numDomains
)

var domainNames = [numDomains]string{"package", "pp0", "pp1", "dram", "platform"}

// String is the value of the domain attribute.
func (d domain) String() string {
	if d < numDomains {
		return domainNames[d]
	}
	return "domain(" + strconv.Itoa(int(d)) + ")"
}

// total is the domain attribute of the domain's total over the sockets.
func (d domain) total() string { return d.String() + "_total" }

// resource is where Alumet puts a point of this domain on socket.
func (d domain) resource(socket int) measure.Resource {
	id := strconv.Itoa(socket)
	switch d {
	case domainDRAM:
		return measure.Resource{Kind: "dram", ID: id}
	case domainPlatform:
		return measure.LocalMachine
	}
	return measure.Resource{Kind: "cpu_package", ID: id}
}

// domainSet is a set of domains.
type domainSet uint8

func (s domainSet) has(d domain) bool         { return s&(1<<d) != 0 }
func (s *domainSet) add(d domain)             { *s |= 1 << d }
func (s domainSet) and(o domainSet) domainSet { return s & o }

func (s domainSet) String() string {
	var names []string
	for d := domain(0); d < numDomains; d++ {
		if s.has(d) {
			names = append(names, d.String())
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// zoneDomain maps a powercap zone name to its domain, as Alumet does:
// package-N (socket N), core, uncore, dram, psys. hasSocket tells whether
// the name carries the socket (package-N). Any other name is an error.
func zoneDomain(name string) (d domain, socket int, hasSocket bool, err error) {
	switch name {
	case "psys":
		return domainPlatform, 0, false, nil
	case "core":
		return domainPP0, 0, false, nil
	case "uncore":
		return domainPP1, 0, false, nil
	case "dram":
		return domainDRAM, 0, false, nil
	}
	if rest, ok := strings.CutPrefix(name, "package-"); ok {
		n, perr := strconv.ParseUint(rest, 10, 31)
		if perr != nil {
			return 0, 0, false, fmt.Errorf("powercap zone %q: cannot read the package number %q", name, rest)
		}
		return domainPackage, int(n), true, nil
	}
	return 0, 0, false, fmt.Errorf("unknown RAPL powercap zone %q (known: package-N, core, uncore, dram, psys)", name)
}

// perfEventName returns the event name of a file of
// <sysfs>/devices/power/events: "pkg" for energy-pkg; ok is false for
// other files (energy-pkg.scale, energy-pkg.unit, other events).
func perfEventName(file string) (name string, ok bool) {
	if strings.Contains(file, ".") {
		return "", false
	}
	name, ok = strings.CutPrefix(file, "energy-")
	if !ok || name == "" {
		return "", false
	}
	return name, true
}

// perfDomain maps a perf event name to its domain, as Alumet does.
func perfDomain(name string) (domain, error) {
	switch name {
	case "pkg":
		return domainPackage, nil
	case "cores":
		return domainPP0, nil
	case "gpu":
		return domainPP1, nil
	case "ram":
		return domainDRAM, nil
	case "psys":
		return domainPlatform, nil
	}
	return 0, fmt.Errorf("unknown RAPL perf event energy-%s (known: energy-pkg, energy-cores, energy-gpu, energy-ram, energy-psys)", name)
}

// parseEventConfig reads an event file's content, "event=0x02": the
// perf_event_attr config of the event. Only the event term is accepted
// (the power PMU has no other).
func parseEventConfig(content string) (uint64, error) {
	s := strings.TrimSpace(content)
	v, ok := strings.CutPrefix(s, "event=")
	if !ok {
		return 0, fmt.Errorf("want event=0xNN, got %q", s)
	}
	hex, ok := strings.CutPrefix(v, "0x")
	if !ok {
		return 0, fmt.Errorf("want event=0xNN, got %q", s)
	}
	code, err := strconv.ParseUint(hex, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("want event=0xNN, got %q", s)
	}
	return code, nil
}

// parseScale reads a .scale file: the joules per count, positive and finite.
func parseScale(content string) (float64, error) {
	s := strings.TrimSpace(content)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f > 0) || f > 1e300 {
		return 0, fmt.Errorf("want a positive number, got %q", s)
	}
	return f, nil
}

// maxCPUs bounds a cpumask list, against a corrupt file.
const maxCPUs = 1 << 16

// parseCPUList reads a kernel CPU list, "0", "0,64", "0-1,64-66".
func parseCPUList(content string) ([]int, error) {
	s := strings.TrimSpace(content)
	if s == "" {
		return nil, fmt.Errorf("empty CPU list")
	}
	var cpus []int
	for _, item := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(item, "-")
		a, err := strconv.ParseUint(lo, 10, 31)
		if err != nil {
			return nil, fmt.Errorf("bad CPU list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 31); err != nil || b < a {
				return nil, fmt.Errorf("bad CPU list %q", s)
			}
		}
		if uint64(len(cpus))+b-a+1 > maxCPUs {
			return nil, fmt.Errorf("CPU list %q: more than %d CPUs", s, maxCPUs)
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, int(c))
		}
	}
	return cpus, nil
}

// parseCounter reads a counter file's content (energy_uj,
// max_energy_range_uj): a decimal u64 and an optional newline.
func parseCounter(content []byte) (uint64, error) {
	s := strings.TrimRight(string(content), "\n")
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("want a decimal counter, got %q", s)
	}
	return v, nil
}
