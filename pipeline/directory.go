package pipeline

import (
	"strings"
	"sync"
)

// Directory holds what the sources know about the measured nodes that
// their points do not carry: the site of a node (kwollect-input's points
// have no site attribute, which would change the CSV's columns). It is
// safe for concurrent use.
type Directory struct {
	mu          sync.RWMutex
	sites       map[string]string
	defaultSite string
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
