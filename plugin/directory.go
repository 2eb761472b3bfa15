package plugin

import (
	"strings"
	"sync"
	"time"
)

// Directory holds what the sources know about the measured nodes that
// their points do not carry: the site of a node, the span of an OAR job (kwollect-input's points
// have no site attribute, which would change the CSV's columns). It is
// safe for concurrent use.
type Directory struct {
	mu          sync.RWMutex
	sites       map[string]string
	defaultSite string
	jobs        map[int64][2]time.Time
	carbon      *CarbonIntensity
}

// SetJobSpan records the time of the first and last rows a source fetched
// for an OAR job (fetch --job-id), whose window is otherwise unknown here.
func (d *Directory) SetJobSpan(id int64, first, last time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.jobs == nil {
		d.jobs = map[int64][2]time.Time{}
	}
	d.jobs[id] = [2]time.Time{first, last}
}

// JobSpan is what SetJobSpan recorded for job id.
func (d *Directory) JobSpan(id int64) (first, last time.Time, ok bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	s, ok := d.jobs[id]
	return s[0], s[1], ok
}

// SetSite records the site of node (a name or an FQDN: it is cut at its
// first dot).
func (d *Directory) SetSite(node, site string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sites == nil {
		d.sites = map[string]string{}
	}
	d.sites[shortName(node)] = site
}

// SetDefaultSite records the site of the nodes not named with SetSite (the
// site of an OAR job whose nodes Kwollect resolves); the first one wins.
func (d *Directory) SetDefaultSite(site string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.defaultSite == "" {
		d.defaultSite = site
	}
}

// Site is the site of node, "" when unknown.
func (d *Directory) Site(node string) string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if s, ok := d.sites[shortName(node)]; ok {
		return s
	}
	return d.defaultSite
}

func shortName(node string) string {
	node = strings.TrimSpace(node)
	if i := strings.IndexByte(node, '.'); i >= 0 {
		return node[:i]
	}
	return node
}

// Sites returns a copy of the sites recorded with SetSite (node -> site)
// and the default site.
func (d *Directory) Sites() (sites map[string]string, defaultSite string) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	sites = make(map[string]string, len(d.sites))
	for n, s := range d.sites {
		sites[n] = s
	}
	return sites, d.defaultSite
}

// JobSpans returns a copy of the spans recorded with SetJobSpan.
func (d *Directory) JobSpans() map[int64][2]time.Time {
	d.mu.RLock()
	defer d.mu.RUnlock()
	spans := make(map[int64][2]time.Time, len(d.jobs))
	for id, s := range d.jobs {
		spans[id] = s
	}
	return spans
}
