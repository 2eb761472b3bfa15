package rapl

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/alumet-go/alumet-agent/measure"
)

// newSource discovers and opens the counters and registers the metric.
func newSource(c *Config, fsys *sysfs, reg *measure.Registry, log *slog.Logger) (*Source, error) {
	if log == nil {
		log = slog.Default()
	}
	p, err := choose(fsys.discover(), c.NoPerfEvents, log)
	if err != nil {
		return nil, err
	}
	log.Info(fmt.Sprintf("Available RAPL domains%s: %s", p.origin, p.domains))
	chans, iface, err := fsys.openPlan(p, log)
	if err != nil {
		return nil, err
	}
	id, err := RegisterMetric(reg)
	if err != nil {
		closeAll(chans)
		return nil, err
	}
	log.Debug(fmt.Sprintf("reading %d RAPL counters through %s every %s", len(chans), iface, c.PollInterval))
	return &Source{
		chans: chans, metric: id, poll: c.PollInterval.D(), flush: c.FlushInterval.D(),
		log: log, now: time.Now, iface: iface,
	}, nil
}
