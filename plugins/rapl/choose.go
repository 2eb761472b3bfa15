package rapl

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
)

// discovery is what each interface lists: the perf events (or why not) and
// the powercap zones (or why not).
type discovery struct {
	perfDirMissing bool
	perf           []perfEvent
	perfErr        error
	zones          []zone
	zonesErr       error
}

func (s *sysfs) discover() discovery {
	var d discovery
	if _, err := os.Stat(s.perfDir()); err != nil && errors.Is(err, os.ErrNotExist) {
		d.perfDirMissing = true
	}
	d.perf, d.perfErr = s.perfEvents()
	d.zones, d.zonesErr = s.zones()
	return d
}

// plan is what the plugin will try: perf_events first when usePerf, then
// powercap when usePowercap, for the domains both interfaces agree on.
type plan struct {
	usePerf, usePowercap bool
	perf                 []perfEvent
	zones                []zone
	domains              domainSet
	origin               string // how the domains were chosen, for the log
	// why each interface is off, for the error when nothing works
	perfOff, powercapOff error
}

func perfDomains(evs []perfEvent) domainSet {
	var s domainSet
	for _, e := range evs {
		s.add(e.domain)
	}
	return s
}

func zoneDomains(zs []zone) domainSet {
	var s domainSet
	for _, z := range zs {
		s.add(z.domain)
	}
	return s
}

// choose decides as Alumet does. perf_events is used unless noPerf; when
// its directory is missing, it is off and the domains are not checked.
// When both interfaces list domains and the lists differ, a warning says so
// and only the intersection is used (the "safe subset"), unless one of
// them is empty.
func choose(d discovery, noPerf bool, log *slog.Logger) (plan, error) {
	p := plan{usePerf: !noPerf, usePowercap: true}
	if noPerf {
		p.perfOff = errors.New("disabled by no_perf_events = true")
	}
	check := true
	if d.perfDirMissing {
		check = false
		if p.usePerf {
			log.Error(fmt.Sprintf("%v", d.perfErr))
			log.Warn("Because of the previous error, I will disable perf_events and fall back to powercap.")
			p.usePerf = false
			p.perfOff = d.perfErr
		}
	}
	switch {
	case d.perfErr == nil && d.zonesErr == nil:
		pd, zd := perfDomains(d.perf), zoneDomains(d.zones)
		p.perf, p.zones = d.perf, d.zones
		switch {
		case !check || pd == zd:
			p.domains = pd | zd
		case pd == 0:
			log.Warn("perf_events returned an empty list of RAPL domains, I will disable perf_events and use powercap instead.")
			p.usePerf, p.perfOff, p.domains, p.origin = false, errors.New("no RAPL domain"), zd, " (from powercap)"
		case zd == 0:
			log.Warn("powercap returned an empty list of RAPL domains, I will disable powercap and use perf_events instead.")
			p.usePowercap, p.powercapOff, p.domains, p.origin = false, errors.New("no RAPL domain"), pd, " (from perf_events)"
		default:
			log.Warn("Powercap and perf_events don't report the same RAPL domains. This may be caused by a bug in powercap or in perf_events. " +
				"Upgrading to a newer kernel could fix the problem. On AMD CPUs, only package (and sometimes core) is supported, " +
				"and old kernels (before 5.17) list events that do not work.")
			log.Warn("Perf_events: " + pd.String())
			log.Warn("Powercap:    " + zd.String())
			p.domains, p.origin = pd.and(zd), ` ("safe subset")`
			if p.domains == 0 {
				//lint:ignore ST1005 Alumet's words, which users look for
				return p, fmt.Errorf("I can use neither perf_events nor powercap: they agree on no RAPL domain (perf_events: %s; powercap: %s)", pd, zd)
			}
		}
		if !check {
			p.origin = " (from powercap)"
		}
	case d.perfErr == nil:
		log.Error(fmt.Sprintf("Cannot read the list of RAPL domains available via the powercap interface: %v.", d.zonesErr))
		log.Warn("The consistency of the RAPL domains reported by the different interfaces of the Linux kernel cannot be checked.")
		p.perf, p.domains, p.origin = d.perf, perfDomains(d.perf), " (from perf_events)"
		p.usePowercap, p.powercapOff = false, d.zonesErr
	case d.zonesErr == nil:
		if !d.perfDirMissing {
			log.Warn(fmt.Sprintf("Cannot read the list of RAPL domains available via the perf_events interface: %v.", d.perfErr))
			log.Warn("The consistency of the RAPL domains reported by the different interfaces of the Linux kernel cannot be checked.")
			if p.usePerf {
				log.Warn("Because of the previous error, I will disable perf_events and fall back to powercap.")
			}
		}
		if !noPerf {
			p.perfOff = d.perfErr
		}
		p.usePerf = false
		p.zones, p.domains, p.origin = d.zones, zoneDomains(d.zones), " (from powercap)"
	default:
		if !noPerf {
			p.perfOff = d.perfErr
		}
		return p, neitherError(p.perfOff, d.zonesErr)
	}
	p.perf = filter(p.perf, func(e perfEvent) bool { return p.domains.has(e.domain) })
	p.zones = filter(p.zones, func(z zone) bool { return p.domains.has(z.domain) })
	if !p.usePerf && !p.usePowercap {
		return p, neitherError(p.perfOff, p.powercapOff)
	}
	return p, nil
}

func filter[T any](s []T, keep func(T) bool) []T {
	var out []T
	for _, v := range s {
		if keep(v) {
			out = append(out, v)
		}
	}
	return out
}

// neitherError is Alumet's error when no interface works, with the reason
// of each.
func neitherError(perfErr, powercapErr error) error {
	return &NeitherError{Perf: perfErr, Powercap: powercapErr}
}

// NeitherError is the start-up error when neither interface can be used.
type NeitherError struct{ Perf, Powercap error }

func (e *NeitherError) Error() string {
	return fmt.Sprintf("I can use neither perf_events nor powercap: impossible to measure RAPL counters.\n  perf_events: %v\n  powercap: %v", e.Perf, e.Powercap)
}

// Unwrap gives both reasons (errors.Is finds a permission error in either).
func (e *NeitherError) Unwrap() []error {
	var errs []error
	for _, err := range []error{e.Perf, e.Powercap} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// open opens the plan's counters: perf_events first, powercap as the
// fallback. The second result names the interface used.
func (s *sysfs) openPlan(p plan, log *slog.Logger) ([]*channel, string, error) {
	perfErr := p.perfOff
	if p.usePerf {
		chans, err := s.openPerf(p.perf)
		if err == nil {
			return chans, "perf_events", nil
		}
		perfErr = err
		if p.usePowercap {
			log.Warn(fmt.Sprintf("I could not use perf_events to read RAPL energy counters: %v", err))
			log.Warn("I will fall back to the powercap sysfs, but perf_events is more efficient (see https://hal.science/hal-04420527).")
		}
	}
	powercapErr := p.powercapOff
	if p.usePowercap {
		var chans []*channel
		var err error
		for _, z := range p.zones {
			var c *channel
			if c, err = s.openZone(z); err != nil {
				break
			}
			chans = append(chans, c)
		}
		if err == nil && len(chans) == 0 {
			err = errors.New("no powercap zone to read")
		}
		if err == nil {
			return chans, "powercap", nil
		}
		closeAll(chans)
		powercapErr = err
	}
	return nil, "", neitherError(perfErr, powercapErr)
}
