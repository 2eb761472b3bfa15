package kwollectinput

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/alumet-go/alumet-agent/kwollect"
	"github.com/alumet-go/alumet-agent/pipeline"
)

// catalog holds the metric catalogues of the targets' clusters, read from the
// Reference API: which metrics exist, their periods, which are on demand.
type catalog struct {
	byCluster map[string][]kwollect.MetricInfo // nil entry: the catalogue could not be read
	// diagErr is the result of the diagnosis run once the catalogues are
	// read (see Diagnose).
	diagErr error
}

// catalogTimeout bounds the reading of every metric catalogue together.
const catalogTimeout = 20 * time.Second

// catalogFor reads the catalogues once, then checks the configured names
// against the Reference API (see Diagnose). Failing to read a catalogue is
// not fatal: it only gives less precise chunk sizes and hints.
func (s *Source) catalogFor(ctx context.Context) *catalog {
	s.catalogOnce.Do(func() {
		c := &catalog{byCluster: map[string][]kwollect.MetricInfo{}}
		type key struct{ site, cluster string }
		seen := map[key]bool{}
		// One budget for every catalogue: an API that does not answer
		// must not hold the start 20 s per cluster.
		qctx, cancel := context.WithTimeout(ctx, catalogTimeout)
		defer cancel()
		silent := false
		for _, t := range s.targets.Nodes {
			k := key{t.Site, kwollect.ClusterOf(t.Node)}
			if seen[k] {
				continue
			}
			seen[k] = true
			var ms []kwollect.MetricInfo
			err := qctx.Err()
			if err == nil {
				err = retryTransient(qctx, func(ctx context.Context) error {
					var err error
					ms, err = s.client.ClusterMetrics(ctx, t.Site, k.cluster)
					return err
				})
			}
			if err != nil {
				silent = silent || qctx.Err() != nil
				s.log.Debug(fmt.Sprintf("metric catalogue of %s/%s unavailable: %v", t.Site, k.cluster, err))
				if _, ok := c.byCluster[k.cluster]; !ok {
					c.byCluster[k.cluster] = nil
				}
				continue
			}
			c.byCluster[k.cluster] = ms
		}
		switch {
		case silent && ctx.Err() == nil:
			// The Reference API is on the same host: no diagnosis either.
			s.log.Warn(fmt.Sprintf("Kwollect's metric catalogue did not answer within %s: going on without it (no name check, chunk sizes guessed). If the API stays silent, the fetch fails at its time budget (fetch_timeout).", pipeline.HumanDuration(catalogTimeout)))
		case !silent:
			c.diagErr = s.diagnose(ctx, c)
		}
		s.catalog = c
	})
	return s.catalog
}

func find(ms []kwollect.MetricInfo, name string) (kwollect.MetricInfo, bool) {
	for _, m := range ms {
		if m.Name == name {
			return m, true
		}
	}
	return kwollect.MetricInfo{}, false
}

// periods returns the sampling period of each metric for chunk sizing: the
// shortest catalogue period (or on-demand period) across the clusters.
func (c *catalog) periods(metrics []string) map[string]time.Duration {
	return c.shortest(metrics, func(info kwollect.MetricInfo) []time.Duration {
		if info.Period == 0 {
			return []time.Duration{info.OptionalPeriod}
		}
		return []time.Duration{info.Period}
	})
}

// fastPeriods returns, per metric, the shortest period it can have: the
// catalogue's optional_period (a node in a monitor job). Without a
// catalogue the wattmeter's raw frames are assumed (20 ms), so that a
// monitored node's first query stays within the row budget.
func (c *catalog) fastPeriods(metrics []string) map[string]time.Duration {
	if c == nil || len(c.byCluster) == 0 {
		out := map[string]time.Duration{}
		for _, name := range metrics {
			if name == "wattmetre_power_watt" {
				out[name] = 20 * time.Millisecond
			}
		}
		return out
	}
	return c.shortest(metrics, func(info kwollect.MetricInfo) []time.Duration {
		return []time.Duration{info.Period, info.OptionalPeriod}
	})
}

// shortest returns, per metric, the shortest positive period that periodsOf
// gives for it across the clusters.
func (c *catalog) shortest(metrics []string, periodsOf func(kwollect.MetricInfo) []time.Duration) map[string]time.Duration {
	out := map[string]time.Duration{}
	if c == nil {
		return out
	}
	for _, ms := range c.byCluster {
		for _, name := range metrics {
			info, ok := find(ms, name)
			if !ok {
				continue
			}
			for _, p := range periodsOf(info) {
				if p > 0 && (out[name] == 0 || p < out[name]) {
					out[name] = p
				}
			}
		}
	}
	return out
}

// promGroup finds the Prometheus group of the catalogue that collects
// metric (prom_X: a group whose source ids list X): the catalogue lists
// the groups, not their metrics.
func promGroup(ms []kwollect.MetricInfo, metric string) (kwollect.MetricInfo, bool) {
	id, ok := strings.CutPrefix(metric, "prom_")
	if !ok {
		return kwollect.MetricInfo{}, false
	}
	for _, info := range ms {
		var src struct {
			Protocol string          `json:"protocol"`
			ID       json.RawMessage `json:"id"`
		}
		if json.Unmarshal(info.Source, &src) != nil || src.Protocol != "prometheus" {
			continue
		}
		var ids []string
		if json.Unmarshal(src.ID, &ids) == nil && slices.Contains(ids, id) {
			return info, true
		}
	}
	return kwollect.MetricInfo{}, false
}

// noDataHint says why a node may have no data for a metric.
func (c *catalog) noDataHint(node, metric string) string {
	if reason, ok := c.absent(node, metric); ok {
		return "no meter on this node: " + reason
	}
	if c != nil {
		if ms := c.byCluster[kwollect.ClusterOf(node)]; ms != nil {
			if info, ok := find(ms, metric); ok && info.Period == 0 {
				return fmt.Sprintf("on-demand metric: it has data only during an OAR job of type monitor (oarsub -t monitor='%s')", metric)
			}
			return "the meter is down or Kwollect does not collect it now (check https://www.grid5000.fr/status/)"
		}
	}
	return "the meter is down, Kwollect does not collect it now, or it is an on-demand metric that needs an OAR job with -t monitor (check https://www.grid5000.fr/status/)"
}

// absent says whether the catalogue proves that node has no metric at all
// (the cluster lacks it, or only some other nodes have it), and why: such a
// series is not waited for at the end of a window.
func (c *catalog) absent(node, metric string) (reason string, ok bool) {
	if c == nil {
		return "", false
	}
	ms, known := c.byCluster[kwollect.ClusterOf(node)]
	if !known || ms == nil {
		return "", false
	}
	info, found := find(ms, metric)
	switch {
	case !found && strings.HasPrefix(metric, "prom_"):
		// The catalogue lists Prometheus groups, not their metrics: say
		// which group collects it, and when. (Not waited for at the end
		// of a window, as before: its rows come as they are.)
		if g, ok := promGroup(ms, metric); ok {
			if g.Period == 0 {
				return fmt.Sprintf("on-demand metric: the catalogue's Prometheus group %s collects it only during an OAR job of type monitor (oarsub -t monitor='%s')", g.Name, g.Name), true
			}
			return fmt.Sprintf("the catalogue's Prometheus group %s collects it every %v: the node's exporter may be down", g.Name, g.Period), true
		}
		return fmt.Sprintf("no Prometheus group of the catalogue of cluster %s collects it: only a custom exporter would give it", kwollect.ClusterOf(node)), true
	case !found:
		return fmt.Sprintf("cluster %s has no metric %s in its catalogue", kwollect.ClusterOf(node), metric), true
	case !info.AppliesTo(node):
		return fmt.Sprintf("%s has no %s meter (only %s have it)", node, metric, describeNodes(info.OnlyFor)), true
	}
	return "", false
}
