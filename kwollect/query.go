package kwollect

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Query selects metric values at one site. Zero fields are not sent.
type Query struct {
	Site string
	// Nodes are node names; each is trimmed and cut at its first '.' (the
	// server does the same, so FQDNs work), then duplicates are dropped,
	// order kept. Sent as nodes=a,b.
	Nodes []string
	// Devices are raw device ids (wattmetre ports, PDU outlets, switch
	// ports), trimmed and deduplicated. Sent as devices=.
	Devices []string
	// Metrics are exact metric ids. Always set them: without them every
	// metric of the devices comes back.
	Metrics []string
	// Start and End are inclusive bounds, sent as epoch seconds with
	// microsecond precision (Start truncated, End rounded up). Send both:
	// with one bound missing Kwollect picks a 5-minute window.
	Start, End time.Time
	// JobID is an OAR job id; without nodes, the job's nodes are used.
	JobID int64
	// Summary asks for 5-minute aggregates; AsRate for per-second rates of
	// counters.
	Summary, AsRate bool
}

// URL returns the full GET URL for q. It never contains credentials. The
// parameters come in the order nodes, devices, metrics, start_time,
// end_time, job_id, summary, as_rate; list items are escaped one by one
// and joined with literal commas, so the URL reads like Alumet's log line:
//
//	https://api.grid5000.fr/stable/sites/lyon/metrics?nodes=taurus-7&metrics=wattmetre_power_watt&start_time=1754379876&end_time=1754379886
func (c *Client) URL(q Query) string {
	var b strings.Builder
	b.WriteString(c.base)
	b.WriteString("/sites/")
	b.WriteString(url.PathEscape(strings.TrimSpace(q.Site)))
	b.WriteString("/metrics")
	if p := q.encode(); p != "" {
		b.WriteByte('?')
		b.WriteString(p)
	}
	return b.String()
}

// encode builds the query string. url.Values is not used because it sorts
// keys and escapes commas as %2C, which makes logged URLs hard to compare
// with Alumet's.
func (q Query) encode() string {
	var b strings.Builder
	add := func(k, v string) {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
	}
	list := func(k string, items []string) {
		if len(items) == 0 {
			return
		}
		esc := make([]string, len(items))
		for i, it := range items {
			esc[i] = url.QueryEscape(it)
		}
		add(k, strings.Join(esc, ","))
	}
	list("nodes", NormalizeNodes(q.Nodes))
	list("devices", normalizeList(q.Devices, false))
	list("metrics", normalizeList(q.Metrics, false))
	if !q.Start.IsZero() {
		add("start_time", FormatEpoch(q.Start))
	}
	if !q.End.IsZero() {
		add("end_time", FormatEpochCeil(q.End))
	}
	if q.JobID != 0 {
		add("job_id", strconv.FormatInt(q.JobID, 10))
	}
	if q.Summary {
		add("summary", "true")
	}
	if q.AsRate {
		add("as_rate", "true")
	}
	return b.String()
}

// NormalizeNodes trims node names, cuts FQDNs at the first '.'
// (orion-3.lyon.grid5000.fr -> orion-3, as the server does), drops empty
// names and duplicates, and keeps the order.
func NormalizeNodes(nodes []string) []string { return normalizeList(nodes, true) }

func normalizeList(items []string, cutFQDN bool) []string {
	var out []string
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		it = strings.TrimSpace(it)
		if cutFQDN {
			it = cutAtDot(it)
		}
		if it == "" || seen[it] {
			continue
		}
		seen[it] = true
		out = append(out, it)
	}
	return out
}

func cutAtDot(s string) string {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return s[:i]
	}
	return s
}

// ErrNoTarget is wrapped by the error for a query without nodes, devices
// or job id, which Kwollect would reject with "Missing 'devices', 'nodes'
// or 'job_id' argument".
var ErrNoTarget = errors.New("kwollect: no node, device or job_id to query")

func (q Query) validate() error {
	if strings.TrimSpace(q.Site) == "" {
		return fmt.Errorf("kwollect: no site given (one of %s)", strings.Join(Sites, ", "))
	}
	if len(NormalizeNodes(q.Nodes)) == 0 && len(normalizeList(q.Devices, false)) == 0 && q.JobID == 0 {
		return fmt.Errorf("%w: set hostname (the node(s) to query) in the kwollect-input configuration", ErrNoTarget)
	}
	if !q.Start.IsZero() && !q.End.IsZero() && q.End.Before(q.Start) {
		return fmt.Errorf("kwollect: end %s is before start %s", q.End.UTC().Format(time.RFC3339Nano), q.Start.UTC().Format(time.RFC3339Nano))
	}
	return nil
}
