package kwollectinput

import (
	"strings"
	"sync"
	"time"
)

// seriesPrior is what is known of a (node, metric) from before the
// measured window: the pre-flight check or the history. A series that had
// data then and has none yet at the end of the window is lagging, not
// dead; its period tells when the window's tail is complete.
type seriesPrior struct {
	Last   time.Time     // newest sample seen (zero: none)
	Period time.Duration // smallest gap between its samples (0: unknown)
}

// priors holds the seriesPrior of every (node, metric) seen, by
// "node/metric". It is safe for concurrent use.
type priors struct {
	mu   sync.Mutex
	m    map[string]seriesPrior
	dead map[string]string    // node/metric known to be down, and why
	next map[string]time.Time // node/metric: the first sample seen after the window
}

// noteAfter records a sample of node/metric after the window's end (gap:
// to its previous sample, for the period).
func (p *priors) noteAfter(node, metric string, t time.Time, gap time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next == nil {
		p.next = map[string]time.Time{}
	}
	k := node + "/" + metric
	if n, ok := p.next[k]; !ok || t.Before(n) {
		p.next[k] = t
	}
	if gap > 0 {
		sp := p.m[k]
		if sp.Period == 0 || gap < sp.Period {
			sp.Period = gap
			if p.m == nil {
				p.m = map[string]seriesPrior{}
			}
			p.m[k] = sp
		}
	}
}

// after returns the first sample of node/metric seen after the window.
func (p *priors) after(node, metric string) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.next[node+"/"+metric]
	return t, ok
}

// newWindow forgets what was judged about the previous window (exec
// --repeat runs one after the other): the samples after it and the
// meters found down.
func (p *priors) newWindow() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next, p.dead = nil, nil
}

// markDead records that node/metric is down, and why.
func (p *priors) markDead(node, metric, why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead == nil {
		p.dead = map[string]string{}
	}
	p.dead[node+"/"+metric] = why
}

// deadReason says why node/metric is known to be down ("" if it is not).
func (p *priors) deadReason(node, metric string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dead[node+"/"+metric]
}

// note records a sample of node/metric at t; gap, if positive, is the gap
// to its previous sample.
func (p *priors) note(node, metric string, t time.Time, gap time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]seriesPrior{}
	}
	k := node + "/" + metric
	sp := p.m[k]
	if t.After(sp.Last) {
		sp.Last = t
	}
	if gap > 0 && (sp.Period == 0 || gap < sp.Period) {
		sp.Period = gap
	}
	p.m[k] = sp
}

// get returns what is known of node/metric.
func (p *priors) get(node, metric string) (seriesPrior, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sp, ok := p.m[node+"/"+metric]
	return sp, ok
}

// shortName is a node's name as Kwollect's rows carry it: cut at the
// first dot (an FQDN gives its host name).
func shortName(node string) string {
	if i := strings.IndexByte(node, '.'); i >= 0 {
		return node[:i]
	}
	return node
}
