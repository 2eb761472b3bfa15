package emulator

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Job is an OAR job known to the emulator, used by job_id queries and, with a
// "monitor" or "monitor=<regexp>" type, to switch its nodes to the optional
// (high-frequency / on-demand) periods while it runs.
type Job struct {
	ID    int64
	Site  string // "" = the job is known at every site
	Nodes []string
	Start time.Time
	Stop  time.Time // zero = still running
	// Types are OAR job types. "monitor" enables every optional metric,
	// "monitor=<regexp>" those whose id matches the regexp anchored at the
	// start (Python re.match). Other types are ignored.
	Types []string
}

// LoadPhase scripts a utilisation level (0..1) on nodes over a time range:
// the nodes draw idle + DynamicRange × Util (summed with overlapping phases
// and the CPU-load mode, capped at 1).
type LoadPhase struct {
	Nodes []string
	Start time.Time
	Stop  time.Time // zero = open-ended
	Util  float64
}

// interval is a half-open time range [s, e) in µs.
type interval struct{ s, e int64 }

type monitorRule struct {
	nodes map[string]bool
	all   bool
	re    *regexp.Regexp
	iv    interval
}

func ceilSecond(t int64) int64 { return ceilDiv(t, usPerSec) * usPerSec }

// monitorRules compiles Config.Monitored and the jobs' monitor types.
func monitorRules(monitored []string, jobs []Job) ([]monitorRule, error) {
	var rules []monitorRule
	if len(monitored) > 0 {
		r := monitorRule{nodes: map[string]bool{}, all: true, iv: interval{negInf, posInf}}
		for _, n := range monitored {
			r.nodes[cutFQDN(n)] = true
		}
		rules = append(rules, r)
	}
	for _, j := range jobs {
		iv := interval{ceilSecond(j.Start.UnixMicro()), posInf}
		if !j.Stop.IsZero() {
			iv.e = ceilSecond(j.Stop.UnixMicro())
		}
		nodes := map[string]bool{}
		for _, n := range j.Nodes {
			nodes[cutFQDN(n)] = true
		}
		for _, typ := range j.Types {
			typ = strings.TrimSpace(typ)
			switch {
			case typ == "monitor":
				rules = append(rules, monitorRule{nodes: nodes, all: true, iv: iv})
			case strings.HasPrefix(typ, "monitor="):
				expr := strings.Trim(strings.TrimPrefix(typ, "monitor="), `'"`)
				re, err := regexp.Compile(`^(?:` + expr + `)`)
				if err != nil {
					return nil, fmt.Errorf("job %d: bad monitor regexp %q: %w", j.ID, expr, err)
				}
				rules = append(rules, monitorRule{nodes: nodes, re: re, iv: iv})
			}
		}
	}
	return rules, nil
}

// monitoredIntervals returns the sorted, merged intervals during which node
// is monitored for a metric known under any of names (catalogue name and
// produced id).
func monitoredIntervals(rules []monitorRule, node string, names ...string) []interval {
	var ivs []interval
	for _, r := range rules {
		if !r.nodes[node] || r.iv.e <= r.iv.s {
			continue
		}
		ok := r.all
		for _, n := range names {
			if !ok && r.re != nil && r.re.MatchString(n) {
				ok = true
			}
		}
		if ok {
			ivs = append(ivs, r.iv)
		}
	}
	sort.Slice(ivs, func(i, j int) bool { return ivs[i].s < ivs[j].s })
	var out []interval
	for _, iv := range ivs {
		if len(out) > 0 && iv.s <= out[len(out)-1].e {
			out[len(out)-1].e = max(out[len(out)-1].e, iv.e)
			continue
		}
		out = append(out, iv)
	}
	return out
}

// findJob returns (a copy of) the job with that id known at site, or nil.
func (e *Emulator) findJob(site string, id int64) *Job {
	e.jobsMu.RLock()
	defer e.jobsMu.RUnlock()
	for i := range e.jobs {
		if j := e.jobs[i]; j.ID == id && (j.Site == "" || j.Site == site) {
			return &j
		}
	}
	return nil
}

// Jobs returns the jobs known to the emulator (configured and added).
func (e *Emulator) Jobs() []Job {
	e.jobsMu.RLock()
	defer e.jobsMu.RUnlock()
	out := make([]Job, len(e.jobs))
	for i, j := range e.jobs {
		j.Nodes = append([]string(nil), j.Nodes...)
		j.Types = append([]string(nil), j.Types...)
		out[i] = j
	}
	return out
}

// AddJob adds an OAR job at runtime, as if it had been in Config.Jobs: it is
// known to job_id queries at once and its monitor types switch its nodes to
// the optional periods over its whole [start, stop) range, past included. An
// id already known at the same site (or at every site) is refused.
func (e *Emulator) AddJob(j Job) error {
	if err := e.checkJob(j); err != nil {
		return err
	}
	j.Nodes = append([]string(nil), j.Nodes...)
	j.Types = append([]string(nil), j.Types...)
	e.jobsMu.Lock()
	defer e.jobsMu.Unlock()
	for _, x := range e.jobs {
		if x.ID == j.ID && (x.Site == "" || j.Site == "" || x.Site == j.Site) {
			return fmt.Errorf("%w: %d", ErrJobExists, j.ID)
		}
	}
	e.jobs = append(e.jobs, j)
	return e.updateMonitoringLocked()
}

// Monitor puts nodes in a permanent monitor job at runtime (like
// Config.Monitored: for all time, past included).
func (e *Emulator) Monitor(nodes ...string) error {
	if err := e.checkNodes("Monitor", nodes); err != nil {
		return err
	}
	e.jobsMu.Lock()
	defer e.jobsMu.Unlock()
	for _, n := range nodes {
		if !contains(e.monitored, n) {
			e.monitored = append(e.monitored, n)
		}
	}
	return e.updateMonitoringLocked()
}

// MonitoredNodes returns the nodes in the permanent monitor job.
func (e *Emulator) MonitoredNodes() []string {
	e.jobsMu.RLock()
	defer e.jobsMu.RUnlock()
	return append([]string{}, e.monitored...)
}

// updateMonitoringLocked recomputes every series' monitored intervals;
// queries already running keep the intervals they started with.
func (e *Emulator) updateMonitoringLocked() error {
	rules, err := monitorRules(e.monitored, e.jobs)
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	for _, d := range e.descs {
		d.setMonitoring(rules)
	}
	return nil
}

// jobWindow is [start, stop or now] of a job, in µs.
func jobWindow(j *Job, now int64) (int64, int64) {
	end := now
	if !j.Stop.IsZero() {
		end = j.Stop.UnixMicro()
	}
	return j.Start.UnixMicro(), end
}

// cutFQDN cuts a device id at its first '.', as the server does.
func cutFQDN(s string) string {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return s[:i]
	}
	return s
}
