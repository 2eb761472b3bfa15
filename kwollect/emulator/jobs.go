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

// findJob returns the job with that id known at site, or nil.
func (e *Emulator) findJob(site string, id int64) *Job {
	for i := range e.cfg.Jobs {
		j := &e.cfg.Jobs[i]
		if j.ID == id && (j.Site == "" || j.Site == site) {
			return j
		}
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
