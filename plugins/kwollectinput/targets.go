package kwollectinput

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/alumet-go/alumet-agent/kwollect"
)

// splitNodeSite reads "taurus-7.lyon.grid5000.fr" (or "taurus-7.lyon") as
// node taurus-7 on site lyon. A short name, or one whose second label is not
// a Grid'5000 site, has no site.
func splitNodeSite(name string) (node, site string, ok bool) {
	parts := strings.Split(strings.TrimSpace(name), ".")
	if len(parts) >= 2 && slices.Contains(kwollect.Sites, canonicalSite(parts[1])) {
		return parts[0], canonicalSite(parts[1]), true
	}
	return parts[0], "", false
}

// environment is what target resolution reads from the host; tests fake it.
type environment struct {
	getenv   func(string) string
	hostname func() (string, error)
	readFile func(string) ([]byte, error)
}

func realEnvironment() environment {
	return environment{getenv: os.Getenv, hostname: os.Hostname, readFile: os.ReadFile}
}

// local returns this host's node and site when it is a Grid'5000 node.
func (e environment) local() (node, site string, ok bool) {
	host, err := e.hostname()
	if err != nil {
		return "", "", false
	}
	return SplitFQDN(host)
}

// targets is what to query: nodes per site, or an OAR job that Kwollect resolves.
type targets struct {
	Nodes   []kwollect.Target
	JobID   int64
	JobSite string
}

func (t targets) String() string {
	var s []string
	for _, n := range t.Nodes {
		s = append(s, n.Node+"@"+n.Site)
	}
	if t.JobID != 0 && len(t.Nodes) == 0 {
		s = append(s, fmt.Sprintf("OAR job %d@%s", t.JobID, t.JobSite))
	}
	return strings.Join(s, ", ")
}

// bySite returns the target nodes of each site, sites in first-seen order.
func (t targets) bySite() (sites []string, nodes map[string][]string) {
	nodes = map[string][]string{}
	for _, n := range t.Nodes {
		if _, ok := nodes[n.Site]; !ok {
			sites = append(sites, n.Site)
		}
		nodes[n.Site] = append(nodes[n.Site], n.Node)
	}
	return sites, nodes
}

// resolveTargets turns hostname/nodes/job_id into per-site targets. An FQDN's
// site wins over `site`; job_id = "auto" reads $OAR_JOB_ID and $OAR_NODEFILE.
// Site names are folded to lower case, as Grid'5000 uids are (the
// diagnosis warns about a site written otherwise).
func (c *Config) resolveTargets(env environment) (targets, error) {
	var t targets
	seen := map[string]bool{}
	localName, localSite, onGrid5000 := env.local()
	configSite := canonicalSite(c.Site)
	defaultSite := configSite
	if defaultSite == "" && onGrid5000 {
		defaultSite = localSite // a short node name on a Grid'5000 node is on its site
	}
	add := func(name, defaultSite, origin string) error {
		node, site, ok := splitNodeSite(name)
		if node == "" {
			return nil
		}
		if !ok {
			site = defaultSite
		}
		if site == "" {
			return fmt.Errorf("%s: node %q has no site: set site = \"<site>\" or write it as %s.<site>.grid5000.fr", origin, node, node)
		}
		if seen[node] {
			return nil // node names are unique across sites
		}
		seen[node] = true
		t.Nodes = append(t.Nodes, kwollect.Target{Site: site, Node: node})
		return nil
	}
	for _, n := range c.Hostname {
		if err := add(n, defaultSite, "hostname"); err != nil {
			return t, err
		}
	}
	for _, n := range c.Nodes {
		if err := add(n, defaultSite, "nodes"); err != nil {
			return t, err
		}
	}
	if len(t.Nodes) == 0 && c.JobID.IsZero() && onGrid5000 {
		// Nothing named: measure the node the agent runs on.
		if err := add(localName, localSite, "this host"); err != nil {
			return t, err
		}
	}
	switch {
	case c.JobID.Auto:
		idText := env.getenv("OAR_JOB_ID")
		if idText == "" {
			return t, fmt.Errorf(`job_id = "auto" needs $OAR_JOB_ID: run the agent inside an OAR job (oarsub -I or a job script), or set job_id = <id> or hostname`)
		}
		id, err := strconv.ParseInt(strings.TrimSpace(idText), 10, 64)
		if err != nil || id <= 0 {
			return t, fmt.Errorf("job_id = \"auto\": $OAR_JOB_ID is %q, not a job id", idText)
		}
		t.JobID = id
		site := configSite
		if onGrid5000 {
			site = localSite
		}
		if len(c.Hostname) == 0 && len(c.Nodes) == 0 {
			path := env.getenv("OAR_NODEFILE")
			if path == "" {
				return t, fmt.Errorf(`job_id = "auto": $OAR_NODEFILE is not set, so the job's nodes are unknown`)
			}
			nodes, err := readNodefile(env, path)
			if err != nil {
				return t, err
			}
			for _, n := range nodes {
				if err := add(n, site, "$OAR_NODEFILE "+path); err != nil {
					return t, err
				}
			}
		}
		t.JobSite = site
		if t.JobSite == "" && len(t.Nodes) > 0 {
			t.JobSite = t.Nodes[0].Site
		}
	case c.JobID.ID != 0:
		t.JobID, t.JobSite = c.JobID.ID, defaultSite
		if t.JobSite == "" && len(t.Nodes) > 0 {
			t.JobSite = t.Nodes[0].Site
		}
		if t.JobSite == "" {
			return t, fmt.Errorf("job_id = %d: set site, the site of the job", t.JobID)
		}
	}
	if len(t.Nodes) == 0 && t.JobID == 0 {
		return t, fmt.Errorf("no node to measure: set hostname, nodes or job_id")
	}
	return t, nil
}

// readNodefile returns the distinct nodes of an OAR node file (one line per
// core, FQDNs), in order.
func readNodefile(env environment, path string) ([]string, error) {
	b, err := env.readFile(path)
	if err != nil {
		return nil, fmt.Errorf("job_id = \"auto\": reading $OAR_NODEFILE: %w", err)
	}
	var nodes []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		n := strings.TrimSpace(sc.Text())
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		nodes = append(nodes, n)
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("job_id = \"auto\": $OAR_NODEFILE %s lists no node", path)
	}
	return nodes, nil
}

// NodeSite reads a configured node name: "taurus-7.lyon.grid5000.fr" (or
// "taurus-7.lyon") is node taurus-7 on site lyon (ok true); a short name
// has no site.
func NodeSite(name string) (node, site string, ok bool) { return splitNodeSite(name) }

// CanonicalSite is the site uid of a site name as written: Grid'5000 uids
// are lower case ("Lyon" is lyon).
func CanonicalSite(site string) string { return canonicalSite(site) }
