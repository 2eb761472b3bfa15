package emulator

import (
	"math"
	"net/url"
	"strconv"
	"strings"
)

// query is a parsed GET /sites/{site}/metrics request.
type query struct {
	site    string
	ids     []string        // requested device ids, cut at '.', deduplicated
	metrics map[string]bool // nil = every metric
	start   int64           // µs, inclusive
	end     int64           // µs, inclusive
	summary bool
	asRate  bool
}

const defaultWindowUs = 5 * 60 * usPerSec

// param returns the first value of a parameter and whether it was given.
func param(v url.Values, name string) (string, bool) {
	vs, ok := v[name]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

// splitIDs splits a comma-separated list without trimming and cuts each item
// at its first '.'.
func splitIDs(s string) []string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = cutFQDN(p)
	}
	return parts
}

// parsePGBool parses a PostgreSQL boolean literal.
func parsePGBool(s string) (val, ok bool) {
	t := strings.ToLower(strings.TrimSpace(s))
	n := len(t)
	if n == 0 {
		return false, false
	}
	switch t[0] {
	case 't':
		return true, strings.HasPrefix("true", t)
	case 'y':
		return true, strings.HasPrefix("yes", t)
	case 'f':
		return false, strings.HasPrefix("false", t)
	case 'n':
		return false, strings.HasPrefix("no", t)
	case 'o':
		if t == "on" {
			return true, true
		}
		if t == "of" || t == "off" {
			return false, true
		}
	case '1':
		return true, n == 1
	case '0':
		return false, n == 1
	}
	return false, false
}

// parsePGInt4 parses a PostgreSQL integer literal.
func parsePGInt4(s string) (int64, *pgError) {
	t := strings.TrimSpace(s)
	body := strings.TrimLeft(t, "+-")
	if len(t)-len(body) > 1 || body == "" || strings.Trim(body, "0123456789") != "" {
		return 0, errBadSyntax("integer", s)
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v > math.MaxInt32 || v < math.MinInt32 {
		return 0, errIntRange(s)
	}
	return v, nil
}

// parseQuery validates the parameters in the order the server does:
// PostgREST casts (job_id, summary, as_rate), then the missing-argument
// check, the job lookup, and the time bounds. Unknown parameters are ignored.
func (e *Emulator) parseQuery(site string, v url.Values, now int64) (*query, *pgError) {
	q := &query{site: site}
	var jobID int64
	jobStr, hasJob := param(v, "job_id")
	if hasJob {
		id, perr := parsePGInt4(jobStr)
		if perr != nil {
			return nil, perr
		}
		jobID = id
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{{"summary", &q.summary}, {"as_rate", &q.asRate}} {
		if s, ok := param(v, b.name); ok {
			val, ok := parsePGBool(s)
			if !ok {
				return nil, errBadSyntax("boolean", s)
			}
			*b.dst = val
		}
	}
	nodes, _ := param(v, "nodes")
	devices, _ := param(v, "devices")
	if nodes == "" && devices == "" && !hasJob {
		return nil, errMissing()
	}
	var job *Job
	if hasJob {
		if job = e.findJob(site, jobID); job == nil {
			return nil, errUnknownJob()
		}
	}
	var ids []string
	if nodes != "" {
		ids = append(ids, splitIDs(nodes)...)
	}
	if devices != "" {
		ids = append(ids, splitIDs(devices)...)
	}
	if len(ids) == 0 && job != nil {
		for _, n := range job.Nodes {
			ids = append(ids, cutFQDN(n))
		}
	}
	q.ids = dedup(ids)
	if m, _ := param(v, "metrics"); m != "" {
		q.metrics = map[string]bool{}
		for _, x := range strings.Split(m, ",") {
			q.metrics[x] = true
		}
	}
	startStr, hasStart := param(v, "start_time")
	endStr, hasEnd := param(v, "end_time")
	hasStart = hasStart && startStr != ""
	hasEnd = hasEnd && endStr != ""
	var start, end int64
	if hasStart {
		t, perr := parseBound(startStr, now)
		if perr != nil {
			return nil, perr
		}
		start = t
	}
	if hasEnd {
		t, perr := parseBound(endStr, now)
		if perr != nil {
			return nil, perr
		}
		end = t
	}
	q.start, q.end = e.window(job, hasStart, hasEnd, start, end, now)
	return q, nil
}

// window applies the default-window rules of Kwollect 1.3.1 (or the legacy
// "until now" rule when only start_time is given).
func (e *Emulator) window(job *Job, hasStart, hasEnd bool, start, end, now int64) (int64, int64) {
	if job != nil {
		js, je := jobWindow(job, now)
		if !hasStart {
			start = js
		}
		if !hasEnd {
			end = je
		}
		return start, end
	}
	switch {
	case hasStart && hasEnd:
	case hasStart:
		if e.cfg.LegacyUntilNow {
			end = now
		} else {
			end = satAdd(start, defaultWindowUs)
		}
	case hasEnd:
		start = satAdd(end, -defaultWindowUs)
	default:
		start, end = now-defaultWindowUs, now
	}
	return start, end
}

// satAdd adds keeping the infinities infinite.
func satAdd(t, d int64) int64 {
	if t >= posInf || t <= negInf {
		return t
	}
	return t + d
}

func dedup(ids []string) []string {
	seen := map[string]bool{}
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
