package kwollectinput

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/alumet-go/alumet-agent/config"
	"github.com/alumet-go/alumet-agent/kwollect"
)

// Diagnosis: before anything is measured, the configured names are checked
// against the Reference API. A name it proves wrong (it answered 200 with a
// list that lacks the name) is an error that stops the agent: a wrong node
// name must never pass for a dead meter. When the Reference API cannot
// answer (network, 5xx, partial list), nothing is concluded.

// refTimeout bounds each Reference API request of the diagnosis.
const refTimeout = 10 * time.Second

// diagnosisTimeout bounds the whole diagnosis.
const diagnosisTimeout = 30 * time.Second

// NameError is a site, cluster, node or metric name that the Reference API
// proved wrong. Msg says what is wrong and, when a name is near, suggests it.
type NameError struct {
	Msg string
	// Site, when set, is the site that has the cluster (the configured
	// site was the wrong one).
	Site string
	// Node, when set, is the node the message suggests instead.
	Node string
}

func (e *NameError) Error() string { return e.Msg }

// Diagnose checks the configured site, nodes and metrics against the
// Reference API, once (later calls return the first result). It logs the
// warnings (site name not in canonical case, a metric only some nodes
// have, an on-demand metric) and returns an error naming every proven
// wrong name, or a credentials error (401/403). It fails on nothing else:
// an unreachable Reference API is only a debug line.
//
// The exec pre-flight calls it; the other modes should call it when the
// source starts.
func (s *Source) Diagnose(ctx context.Context) error {
	return s.catalogFor(ctx).diagErr
}

// diagnose is run once, right after the catalogues are read.
func (s *Source) diagnose(ctx context.Context, c *catalog) error {
	ctx, cancel := context.WithTimeout(ctx, diagnosisTimeout)
	defer cancel()
	if site := s.cfg.Site; site != "" && site != canonicalSite(site) {
		s.log.Warn(fmt.Sprintf("site = %q: Grid'5000 site names are lower case; using %q (write site = %q)", site, canonicalSite(site), canonicalSite(site)))
	}
	r := newRefChecker(s.client)
	var problems []string
	seen := map[string]bool{}
	add := func(msg string) {
		if !seen[msg] {
			seen[msg] = true
			problems = append(problems, msg)
		}
	}
	cannot := func(what string, err error) {
		s.log.Debug(fmt.Sprintf("cannot check %s against the Reference API (%v): going on, Kwollect's data will tell", what, err))
	}
	absentWarned := map[string]bool{}
	for _, t := range s.targets.Nodes {
		err := r.checkNode(ctx, t.Site, t.Node)
		var ne *NameError
		switch {
		case err == nil:
		case errors.As(err, &ne):
			add(s.configAdvice(ne, t.Node))
			continue // its metrics cannot be checked
		case kwollect.IsAuthError(err):
			return s.credentialError(err)
		default:
			cannot("node "+t.Node, err)
		}
		cluster := kwollect.ClusterOf(t.Node)
		ms := c.byCluster[cluster]
		if ms == nil {
			continue
		}
		for _, m := range s.cfg.Metrics {
			p := metricProblem(ms, t.Site, t.Node, m, s.cfg.Metrics)
			switch {
			case p.err != "":
				add(p.err)
			case p.absent != "":
				// In exec mode the pre-flight check says it (and fails).
				if key := cluster + "/" + m; !absentWarned[key] && (s.mode != "exec" || s.cfg.Preflight == PreflightOff) {
					absentWarned[key] = true
					s.log.Warn(p.absent)
				}
			case p.warn != "":
				if key := cluster + "/" + m + "/warn"; !absentWarned[key] {
					absentWarned[key] = true
					s.log.Warn(p.warn)
				}
			case p.debug != "":
				s.log.Debug(p.debug)
			}
		}
	}
	if len(s.targets.Nodes) == 0 && s.targets.JobSite != "" {
		err := r.checkSite(ctx, s.targets.JobSite)
		var ne *NameError
		switch {
		case err == nil:
		case errors.As(err, &ne) && ne.Site != "":
			add(WithAdvice(ne.Msg, fmt.Sprintf("set site = %q", ne.Site)))
		case errors.As(err, &ne):
			add(ne.Msg)
		case kwollect.IsAuthError(err):
			return s.credentialError(err)
		default:
			cannot("site "+s.targets.JobSite, err)
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("the Grid'5000 Reference API does not know these names in [plugins.kwollect-input]:\n  %s", strings.Join(problems, "\n  "))
}

// configAdvice adds to a name error what to change in the config, as the
// setting to write ("set hostname = ..."), never as a bare key = value:
// next to a wrong name, that would read as a quote of the config.
func (s *Source) configAdvice(ne *NameError, node string) string {
	key, values, written := s.nodeEntry(node)
	_, _, writtenSite := splitNodeSite(written)
	switch {
	case ne.Site != "" && ne.Node == "" && writtenSite:
		return WithAdvice(ne.Msg, "set "+setting(key, values, written, replaceNode(written, node, ne.Site)))
	case ne.Site != "" && ne.Node == "":
		return WithAdvice(ne.Msg, fmt.Sprintf("set site = %q, or write the node as %s.%s.grid5000.fr", ne.Site, node, ne.Site))
	case ne.Site != "" && writtenSite:
		// The site is in the name: site = would not change it.
		return WithAdvice(ne.Msg, "set "+setting(key, values, written, replaceNode(written, ne.Node, ne.Site)))
	case ne.Site != "":
		return WithAdvice(ne.Msg, fmt.Sprintf("set site = %q and %s", ne.Site, setting(key, values, written, replaceNode(written, ne.Node, ""))))
	case ne.Node != "":
		return WithAdvice(ne.Msg, "set "+setting(key, values, written, replaceNode(written, ne.Node, "")))
	}
	return ne.Msg
}

// nodeEntry returns the key (hostname or nodes) that names node, its
// values and the entry as written (maybe a FQDN). A node that no key names
// (this host, measured by default) is reported as hostname = node, the
// setting that would name it.
func (s *Source) nodeEntry(node string) (key string, values []string, written string) {
	for _, k := range []struct {
		key    string
		values []string
	}{{"hostname", s.cfg.Hostname}, {"nodes", s.cfg.Nodes}} {
		for _, v := range k.values {
			if n, _, _ := splitNodeSite(v); n == node {
				return k.key, k.values, v
			}
		}
	}
	return "hostname", []string{node}, node
}

// replaceNode is the entry written with newNode instead of its node name,
// keeping its ".site.grid5000.fr" part (with newSite as the site, if set).
func replaceNode(written, newNode, newSite string) string {
	node, _, fqdn := splitNodeSite(written)
	if !fqdn {
		if newSite != "" {
			return newNode + "." + newSite + ".grid5000.fr"
		}
		return newNode
	}
	suffix := strings.TrimSpace(written)[len(node):]
	if newSite != "" {
		suffix = "." + newSite + ".grid5000.fr"
	}
	return newNode + suffix
}

// setting writes key = values (a string when there is one value, else an
// array) with the value old replaced by new.
func setting(key string, values []string, old, new string) string {
	vals := slices.Clone(values)
	if i := slices.Index(vals, old); i >= 0 {
		vals[i] = new
	}
	if len(vals) == 1 {
		return fmt.Sprintf("%s = %q", key, vals[0])
	}
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = strconv.Quote(v)
	}
	return fmt.Sprintf("%s = [%s]", key, strings.Join(q, ", "))
}

// WithAdvice appends advice to a message: in parentheses after a question,
// after a colon otherwise.
func WithAdvice(msg, advice string) string {
	if strings.HasSuffix(msg, "?") {
		return msg + " (" + advice + ")"
	}
	return msg + ": " + advice
}

// credentialError explains a 401/403: which credentials were sent. It
// never advises to skip the pre-flight check: that would not fix them.
func (s *Source) credentialError(err error) error {
	src := s.cfg.credSource
	if src == "" {
		src = "no credentials"
	}
	if kwollect.StatusOf(err) == 401 {
		return fmt.Errorf("bad credentials (sent: %s): %w", src, err)
	}
	return fmt.Errorf("access denied (sent: %s): %w", src, err)
}

// canonicalSite is the site uid of a configured site name: Grid'5000 uids
// are lower case.
func canonicalSite(site string) string { return strings.ToLower(strings.TrimSpace(site)) }

// refChecker answers name questions from the Reference API, each list read
// at most once.
type refChecker struct {
	client   *kwollect.Client
	sites    *listResult
	clusters map[string]*listResult // by site
	nodes    map[string]*listResult // by site/cluster
}

type listResult struct {
	uids []string
	err  error
}

func newRefChecker(c *kwollect.Client) *refChecker {
	return &refChecker{client: c, clusters: map[string]*listResult{}, nodes: map[string]*listResult{}}
}

func fetchList(ctx context.Context, f func(context.Context) ([]string, error)) *listResult {
	ctx, cancel := context.WithTimeout(ctx, refTimeout)
	defer cancel()
	var uids []string
	err := retryTransient(ctx, func(ctx context.Context) error {
		var err error
		uids, err = f(ctx)
		return err
	})
	return &listResult{uids: uids, err: err}
}

// transientPolicy: 3 attempts, 250 ms then 500 ms apart (or the server's
// Retry-After).
var transientPolicy = kwollect.RetryPolicy{Base: 250 * time.Millisecond, Max: 500 * time.Millisecond, Multiplier: 2, MaxAttempts: 3}

// retryTransient calls f up to 3 times while it fails with a transient
// error (kwollect.IsRetryable), within ctx: the start-up lookups
// (catalogue, Reference API) must not fail on one 503.
func retryTransient(ctx context.Context, f func(context.Context) error) error {
	return kwollect.Retry(ctx, transientPolicy, nil, f)
}

func (r *refChecker) siteList(ctx context.Context) *listResult {
	if r.sites == nil {
		r.sites = fetchList(ctx, r.client.SiteUIDs)
	}
	return r.sites
}

func (r *refChecker) clusterList(ctx context.Context, site string) *listResult {
	if r.clusters[site] == nil {
		r.clusters[site] = fetchList(ctx, func(ctx context.Context) ([]string, error) { return r.client.SiteClusters(ctx, site) })
	}
	return r.clusters[site]
}

func (r *refChecker) nodeList(ctx context.Context, site, cluster string) *listResult {
	k := site + "/" + cluster
	if r.nodes[k] == nil {
		r.nodes[k] = fetchList(ctx, func(ctx context.Context) ([]string, error) { return r.client.ClusterNodes(ctx, site, cluster) })
	}
	return r.nodes[k]
}

// checkSite returns a *NameError when the Reference API proves that site
// does not exist, nil when it exists, another error when it cannot tell.
func (r *refChecker) checkSite(ctx context.Context, site string) error {
	cl := r.clusterList(ctx, site)
	if cl.err == nil {
		return nil
	}
	if !kwollect.IsNotFound(cl.err) {
		return cl.err
	}
	sl := r.siteList(ctx)
	if sl.err != nil || slices.Contains(sl.uids, site) {
		return cl.err // a 404 from a wrong api_url, or a site without clusters document
	}
	msg := fmt.Sprintf("unknown site %s", site)
	if near := nearest(site, sl.uids); len(near) > 0 {
		return &NameError{Msg: fmt.Sprintf("%s; did you mean %s?", msg, orList(near)), Site: near[0]}
	}
	return &NameError{Msg: fmt.Sprintf("%s (HTTP 404 from the Reference API); Grid'5000 sites: %s", msg, strings.Join(sl.uids, ", "))}
}

// checkNode returns a *NameError when the Reference API proves that node
// is not a node of site, nil when it is, another error when it cannot tell.
func (r *refChecker) checkNode(ctx context.Context, site, node string) error {
	if err := r.checkSite(ctx, site); err != nil {
		return err
	}
	clusters := r.clusterList(ctx, site).uids
	cluster := kwollect.ClusterOf(node)
	if !slices.Contains(clusters, cluster) {
		return r.unknownCluster(ctx, site, cluster, node, clusters)
	}
	nl := r.nodeList(ctx, site, cluster)
	if nl.err != nil {
		return nl.err
	}
	if slices.Contains(nl.uids, node) {
		return nil
	}
	msg := fmt.Sprintf("no node %s in cluster %s (%s)", node, cluster, site)
	if near := nearestNode(node, nl.uids); len(near) > 0 {
		return &NameError{Msg: fmt.Sprintf("%s; did you mean %s?", msg, orList(near)), Node: near[0]}
	}
	return &NameError{Msg: fmt.Sprintf("%s; it has %s", msg, describeNodes(nl.uids))}
}

// unknownCluster explains a cluster that site does not have: it is on
// another site, or it is a typo of one of site's clusters.
func (r *refChecker) unknownCluster(ctx context.Context, site, cluster, node string, clusters []string) error {
	if other := r.findCluster(ctx, cluster, site); other != "" {
		msg := fmt.Sprintf("%s is a %s cluster, not %s", cluster, other, site)
		if nl := r.nodeList(ctx, other, cluster); nl.err == nil && !slices.Contains(nl.uids, node) {
			msg += fmt.Sprintf(", and it has no node %s", node)
			if near := nearestNode(node, nl.uids); len(near) > 0 {
				return &NameError{Msg: fmt.Sprintf("%s; did you mean %s?", msg, orList(near)), Site: other, Node: near[0]}
			}
			return &NameError{Msg: fmt.Sprintf("%s (it has %s)", msg, describeNodes(nl.uids)), Site: other}
		}
		return &NameError{Msg: msg, Site: other}
	}
	msg := fmt.Sprintf("no cluster %s on %s", cluster, site)
	near := nearest(cluster, clusters)
	if len(near) == 0 {
		if c, other := r.findNearCluster(ctx, cluster, site); c != "" {
			return &NameError{Msg: fmt.Sprintf("%s; did you mean %s (a %s cluster)?", msg, c, other)}
		}
		if len(clusters) == 0 {
			return &NameError{Msg: fmt.Sprintf("%s: site %s has no cluster in the Reference API", msg, site)}
		}
		return &NameError{Msg: fmt.Sprintf("%s (its clusters: %s)", msg, strings.Join(clusters, ", "))}
	}
	// tauros-7 → taurus-7, when taurus has a node 7.
	suffix := strings.TrimPrefix(node, cluster)
	var nodes []string
	for _, c := range near {
		if nl := r.nodeList(ctx, site, c); nl.err == nil && slices.Contains(nl.uids, c+suffix) {
			nodes = append(nodes, c+suffix)
		}
	}
	if len(nodes) > 0 {
		return &NameError{Msg: fmt.Sprintf("%s; did you mean %s (cluster %s)?", msg, orList(nodes), orList(near)), Node: nodes[0]}
	}
	return &NameError{Msg: fmt.Sprintf("%s; did you mean %s?", msg, orList(near))}
}

// findCluster returns the site, other than except, that has cluster, or "".
func (r *refChecker) findCluster(ctx context.Context, cluster, except string) string {
	sl := r.siteList(ctx)
	if sl.err != nil {
		return ""
	}
	for _, site := range sl.uids {
		if site == except {
			continue
		}
		if cl := r.clusterList(ctx, site); cl.err == nil && slices.Contains(cl.uids, cluster) {
			return site
		}
	}
	return ""
}

// findNearCluster returns a cluster near cluster on a site other than
// except, and its site, or "".
func (r *refChecker) findNearCluster(ctx context.Context, cluster, except string) (string, string) {
	sl := r.siteList(ctx)
	if sl.err != nil {
		return "", ""
	}
	for _, site := range sl.uids {
		if site == except {
			continue
		}
		if cl := r.clusterList(ctx, site); cl.err == nil {
			if near := nearest(cluster, cl.uids); len(near) > 0 {
				return near[0], site
			}
		}
	}
	return "", ""
}

// metricCheck is what the catalogue says of a configured metric on a node:
// err, a proven typo; absent, a metric this node lacks; warn, something to
// know (on demand, not in the catalogue); debug, a detail.
type metricCheck struct {
	err, absent, warn, debug string
}

// metricProblem checks metric, one of the configured metrics, on node.
func metricProblem(ms []kwollect.MetricInfo, site, node, metric string, configured []string) metricCheck {
	cluster := kwollect.ClusterOf(node)
	info, ok := find(ms, metric)
	see := fmt.Sprintf("see `alumet-agent kwollect metrics --site %s --node %s`", site, node)
	switch {
	case ok && !info.AppliesTo(node):
		return metricCheck{absent: fmt.Sprintf("no meter on this node: %s has no %s (only %s have it), so it will have no data", node, metric, describeNodes(info.OnlyFor))}
	case ok && info.Period == 0:
		return metricCheck{warn: fmt.Sprintf("%q is an on-demand metric on %s: it has data only during an OAR job of type monitor (oarsub -t monitor='%s')", metric, cluster, metric)}
	case ok:
		return metricCheck{}
	}
	var names []string
	for _, m := range ms {
		if !slices.Contains(names, m.Name) {
			names = append(names, m.Name)
		}
	}
	if near := nearest(metric, names); len(near) > 0 {
		return metricCheck{err: fmt.Sprintf("cluster %s (%s) has no metric %s; did you mean %s? (set %s; %s)",
			cluster, site, metric, orList(near), setting("metrics", configured, metric, near[0]), see)}
	}
	if strings.HasPrefix(metric, "prom_") {
		// The catalogue lists Prometheus groups, not their metrics.
		return metricCheck{debug: fmt.Sprintf("%s is not in the catalogue of %s: a metric of a Prometheus group has data only when the group is collected", metric, cluster)}
	}
	return metricCheck{warn: fmt.Sprintf("cluster %s (%s) has no metric %q in its catalogue: only a custom metric pushed to Kwollect would have data (%s)", cluster, site, metric, see)}
}

// nearest returns the candidates nearest to name (case-insensitive edit
// distance with transpositions, at most 1 for names up to 5 characters,
// else 2), shortest first, at most 3.
func nearest(name string, candidates []string) []string {
	return nearestWithin(name, candidates, min(2, max(1, len([]rune(name))/3)))
}

// nearestNode is nearest for node names, whose meaningful part is a short
// number: one edit at most ("orion-99" is not near "orion-1").
func nearestNode(name string, candidates []string) []string {
	return nearestWithin(name, candidates, 1)
}

func nearestWithin(name string, candidates []string, maxDist int) []string {
	best := maxDist + 1
	var near []string
	lname := strings.ToLower(name)
	for _, c := range candidates {
		if c == name {
			continue
		}
		d := config.EditDistance(lname, strings.ToLower(c))
		switch {
		case d > maxDist:
		case d < best:
			best, near = d, []string{c}
		case d == best:
			near = append(near, c)
		}
	}
	sort.SliceStable(near, func(i, j int) bool {
		if len(near[i]) != len(near[j]) {
			return len(near[i]) < len(near[j])
		}
		return near[i] < near[j]
	})
	if len(near) > 3 {
		near = near[:3]
	}
	return near
}

// orList writes "a", "a or b", "a, b or c".
func orList(items []string) string {
	if len(items) <= 1 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// describeNodes writes a node list briefly: "gros-41 … gros-76" for a run
// of consecutive nodes of one cluster, else the first names and a count.
func describeNodes(nodes []string) string {
	if len(nodes) == 0 {
		return "no node"
	}
	if len(nodes) == 1 {
		return nodes[0]
	}
	cluster := kwollect.ClusterOf(nodes[0])
	nums := make([]int, 0, len(nodes))
	for _, n := range nodes {
		k, err := strconv.Atoi(strings.TrimPrefix(n, cluster+"-"))
		if kwollect.ClusterOf(n) != cluster || err != nil {
			nums = nil
			break
		}
		nums = append(nums, k)
	}
	if nums != nil {
		sorted := slices.Sorted(slices.Values(nums))
		if sorted[len(sorted)-1]-sorted[0] == len(sorted)-1 && len(slices.Compact(slices.Clone(sorted))) == len(sorted) {
			return fmt.Sprintf("%s-%d … %s-%d", cluster, sorted[0], cluster, sorted[len(sorted)-1])
		}
	}
	if len(nodes) <= 8 {
		return strings.Join(nodes, ", ")
	}
	return fmt.Sprintf("%s, … (%d nodes)", strings.Join(nodes[:6], ", "), len(nodes))
}

// CheckNode checks against the Reference API that node is a node of site.
// It returns a *NameError when the API proves it is not (unknown site,
// unknown cluster, cluster of another site, unknown node; with the names
// near it), an error for which kwollect.IsAuthError is true for a 401/403,
// nil when the node exists, and any other error when the API cannot tell.
func CheckNode(ctx context.Context, client *kwollect.Client, site, node string) error {
	ctx, cancel := context.WithTimeout(ctx, diagnosisTimeout)
	defer cancel()
	return newRefChecker(client).checkNode(ctx, site, node)
}
