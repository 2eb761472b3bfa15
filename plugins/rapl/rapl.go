// Package rapl is the rapl source, compatible with Alumet's: it reads the
// RAPL energy counters of the local machine through perf_events, or through
// the powercap sysfs, and emits rapl_consumed_energy, the joules each
// counter counted since the previous poll.
//
// Points, per poll (the first poll only stores the counters), with Alumet's
// resources and domain attribute:
//
//	domain=package, pp0, pp1   cpu_package/<socket>
//	domain=dram                dram/<socket>
//	domain=platform            local_machine (psys)
//	domain=<d>_total           local_machine, the sum over the sockets of domain d
//
// The consumer is local_machine; the timestamp is the poll's instant.
//
// Interfaces. As Alumet: perf_events first (one event per domain and
// socket, on the CPUs of <sysfs_root>/devices/power/cpumask), powercap as
// the fallback (<sysfs_root>/devices/virtual/powercap/intel-rapl, walked
// recursively; package-N gives the socket, children inherit it, psys is on
// local_machine; an unknown zone name is an error naming it). When both
// list their domains and the lists differ, only the domains both report are
// measured, with a warning. Neither usable is a start-up error giving the
// reason of each.
//
// Counters. A reading below the previous one is a wrap, corrected as
// max − prev + new + 1 (max_energy_range_uj for powercap, 2^64 − 1 for
// perf). A difference that would mean more than MaxPlausiblePower over the
// interval is not energy but a reset (a reloaded driver, a counter that
// jumped): that interval is not counted, a warning says so, and the next
// one is measured from the new value. A counter that cannot be read any
// more (a zone that disappears) stops with a warning; the others go on.
// At the stop, the counters are read once more, so that the energy up to
// the stop is counted (Alumet drops that partial interval).
package rapl

import (
	"context"
	"fmt"
	"runtime"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/plugin"
)

// Plugin identity. Version is Alumet's rapl plugin version
// (plugins/rapl/Cargo.toml at afb0aa12).
const (
	Name      = "rapl"
	Version   = "0.3.1"
	LogTarget = "plugin_rapl"
)

// MetricName is the metric of the points.
const MetricName = "rapl_consumed_energy"

// Factory returns the rapl plugin.
func Factory() plugin.Factory {
	return plugin.Typed[Config, *Config]{
		Name:          Name,
		Version:       Version,
		LogTarget:     LogTarget,
		DefaultConfig: DefaultConfig,
		Sample:        SampleConfig,
		GeneratedOff:  true, // root-only on Grid'5000, absent from VMs: the default config must start
		Measures:      true,
		Start:         start,
	}.Factory()
}

func start(_ context.Context, c *Config, env plugin.Env) error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("rapl is Linux only (this agent runs on %s): RAPL counters are read from the Linux sysfs and perf_events", runtime.GOOS)
	}
	src, err := newSource(c, newSysfs(c.root()), env.Pipeline.Registry(), env.Logger)
	if err != nil {
		return err
	}
	return env.Pipeline.AddSource(Name, src)
}

// RegisterMetric registers rapl_consumed_energy: joules since the previous
// poll, so Delta semantics (Alumet's CounterDiff).
func RegisterMetric(reg *measure.Registry) (measure.MetricID, error) {
	return reg.Register(measure.Metric{
		Name:        MetricName,
		Unit:        measure.Plain(measure.Joule),
		Type:        measure.F64,
		Semantics:   measure.Delta,
		Description: "Energy consumed since the previous measurement, as reported by RAPL.",
	})
}
