package kwollectinput

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/alumet-go/alumet-agent/kwollect"
)

// preflightWindow is how far back the pre-flight check looks for data.
const preflightWindow = 2 * time.Minute

// Preflight checks, before the command is spawned, that every node/metric
// has recent data, so that a missing meter fails in seconds rather than
// leaving an empty file after hours of experiment.
func (s *Source) Preflight(ctx context.Context) error {
	if s.cfg.Preflight == PreflightOff || s.mode != "exec" {
		return nil
	}
	cat := s.catalogFor(ctx)
	now := s.clock()
	seen := map[string]bool{} // node/metric
	sites, bySite := s.targets.bySite()
	query := func(q kwollect.Query) error {
		qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		s.log.Debug("pre-flight query: " + s.client.URL(q))
		_, err := s.client.Stream(qctx, q, func(r *kwollect.Row) error {
			seen[r.DeviceID+"/"+r.MetricID] = true
			return nil
		})
		return err
	}
	for _, site := range sites {
		q := kwollect.Query{Site: site, Nodes: bySite[site], Metrics: s.cfg.Metrics, Start: now.Add(-preflightWindow), End: now}
		if err := query(q); err != nil {
			return fmt.Errorf("pre-flight query to Kwollect failed: %w (set preflight = false to skip the check)", err)
		}
	}
	var missing []string
	for _, t := range s.targets.Nodes {
		for _, m := range s.cfg.Metrics {
			if !seen[t.Node+"/"+m] {
				missing = append(missing, fmt.Sprintf("%s/%s: %s", t.Node, m, cat.noDataHint(t.Node, m)))
			}
		}
	}
	if len(s.targets.Nodes) == 0 && s.targets.JobID != 0 {
		q := kwollect.Query{Site: s.targets.JobSite, JobID: s.targets.JobID, Metrics: s.cfg.Metrics, Start: now.Add(-preflightWindow), End: now}
		if err := query(q); err != nil {
			return fmt.Errorf("pre-flight query to Kwollect failed: %w (set preflight = false to skip the check)", err)
		}
		if len(seen) == 0 {
			missing = append(missing, fmt.Sprintf("OAR job %d: no data for %s", s.targets.JobID, strings.Join(s.cfg.Metrics, ", ")))
		}
	}
	if len(missing) == 0 {
		s.log.Info(fmt.Sprintf("Pre-flight check passed: every node and metric has data from the last %v.", preflightWindow))
		return nil
	}
	msg := fmt.Sprintf("no data in the last %v for:\n  %s", preflightWindow, strings.Join(missing, "\n  "))
	if s.cfg.Preflight == PreflightWarn {
		s.log.Warn("Pre-flight check: " + msg + "\n(preflight = \"warn\": running the command anyway)")
		return nil
	}
	return fmt.Errorf("%s\nFix the configuration, or set preflight = \"warn\" (or false) in [plugins.kwollect-input] to run anyway", msg)
}
