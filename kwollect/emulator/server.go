package emulator

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// HTTP layer. Request flow: Handler -> logging -> auth -> route -> handlers.
//
// Extension points planned for the next round:
//   - fault injection (5xx/429 with Retry-After, slow first byte or body,
//     connection reset, truncated body): a middleware between logging and
//     auth (see Handler) decides per request; body-level faults (slow body,
//     truncation mid-array, reset) hook into writeRows through its rowSink
//     argument, which already sees every row boundary;
//   - per-response row limit and statement timeout: in writeRows, which
//     counts rows and can stop with an error before the first byte or abort
//     the stream.

// APIPrefixes are the API versions served, all alike.
var APIPrefixes = []string{"stable", "sid", "3.0"}

// Handler returns the HTTP handler serving every route.
func (e *Emulator) Handler() http.Handler {
	return e.logRequests(http.HandlerFunc(e.serveHTTP))
}

// statusRecorder records what the handler did, for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	rows   int64
	user   string
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// logRequests logs method, path+query, status, rows, bytes and duration.
// The Authorization header is never logged.
func (e *Emulator) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		attrs := []any{"method", r.Method, "uri", r.URL.RequestURI(), "status", rec.status,
			"rows", rec.rows, "bytes", rec.bytes, "duration", time.Since(start).Round(time.Microsecond)}
		if rec.user != "" {
			attrs = append(attrs, "user", rec.user)
		}
		e.logger.Info("request", attrs...)
	})
}

func recorder(w http.ResponseWriter) *statusRecorder {
	rec, _ := w.(*statusRecorder)
	return rec
}

func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg))
}

func notFound(w http.ResponseWriter, resource string) {
	writeText(w, http.StatusNotFound, "Cannot find resource "+resource)
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeText(w, http.StatusMethodNotAllowed, "Method not allowed\n")
}

func writePGError(w http.ResponseWriter, perr *pgError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(perr.status)
	_, _ = w.Write(perr.body())
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeText(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func (e *Emulator) serveHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if path == "/healthz" {
		writeText(w, http.StatusOK, "ok")
		return
	}
	user, ok := e.authorized(r)
	if !ok {
		writeUnauthorized(w)
		return
	}
	if rec := recorder(w); rec != nil {
		rec.user = user
	}
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if len(segs) < 2 || !contains(APIPrefixes, segs[0]) || segs[1] != "sites" {
		notFound(w, path)
		return
	}
	resource := "/" + strings.Join(segs[1:], "/")
	segs = segs[1:] // "sites", ...
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	if len(segs) == 1 {
		if !get {
			methodNotAllowed(w, "GET")
			return
		}
		e.serveSites(w)
		return
	}
	sd := e.sites[segs[1]]
	if sd == nil {
		notFound(w, resource)
		return
	}
	switch {
	case len(segs) == 2:
		if !get {
			methodNotAllowed(w, "GET")
			return
		}
		writeJSON(w, siteDoc(sd.site))
	case segs[2] == "metrics" && len(segs) == 3:
		switch {
		case get:
			e.serveMetrics(w, r, sd)
		case r.Method == http.MethodPost:
			e.servePost(w, r, sd)
		default:
			methodNotAllowed(w, "GET, POST")
		}
	case segs[2] == "metrics" && len(segs) == 4 && segs[3] == "dashboard" && get:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<!DOCTYPE html><html><head><title>Kwollect emulator</title></head><body><h1>Kwollect emulator: " +
			sd.site.UID + "</h1><p>No Grafana here. Query <code>metrics?nodes=...</code> instead.</p></body></html>\n"))
	case segs[2] == "clusters" && get:
		e.serveClusters(w, sd, segs[3:], resource)
	case segs[2] == "pdus" && get:
		e.servePDUs(w, sd, segs[3:], resource)
	case !get && (segs[2] == "clusters" || segs[2] == "pdus" || segs[2] == "metrics"):
		methodNotAllowed(w, "GET")
	default:
		notFound(w, resource)
	}
}

// serveMetrics streams the rows of a GET query.
func (e *Emulator) serveMetrics(w http.ResponseWriter, r *http.Request, sd *siteData) {
	now := e.now().UnixMicro()
	q, perr := e.parseQuery(sd.site.UID, r.URL.Query(), now)
	if perr != nil {
		writePGError(w, perr)
		return
	}
	g := e.stream(q, now, true)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	n, _ := writeRows(r.Context(), bw, g, nil)
	_ = bw.Flush()
	if rec := recorder(w); rec != nil {
		rec.rows = n
	}
}

// rowSink observes the rows as they are written (fault injection hook);
// returning false stops the stream.
type rowSink func(n int64) bool

// writeRows streams the rows of g as a JSON array, json_agg style. It never
// holds more than one row in memory besides the writer's buffer. It stops
// early when ctx is done or a write fails.
func writeRows(ctx context.Context, w *bufio.Writer, g rowGen, sink rowSink) (int64, error) {
	buf := make([]byte, 0, 512)
	if _, err := w.WriteString("["); err != nil {
		return 0, err
	}
	var n int64
	for {
		r, ok := g.next()
		if !ok {
			break
		}
		buf = buf[:0]
		if n > 0 {
			buf = append(buf, rowSeparator...)
		}
		buf = appendRow(buf, &r)
		if _, err := w.Write(buf); err != nil {
			return n, err
		}
		n++
		if sink != nil && !sink(n) {
			return n, nil
		}
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return n, err
			}
		}
	}
	_, err := w.WriteString("]")
	return n, err
}

// servePost stores pushed rows and returns them.
func (e *Emulator) servePost(w http.ResponseWriter, r *http.Request, sd *siteData) {
	now := e.now().UnixMicro()
	rows, perr := e.parsePost(r.Body, now)
	if perr != nil {
		writePGError(w, perr)
		return
	}
	e.posts.add(sd.site.UID, rows)
	buf := []byte{'['}
	for i, pr := range rows {
		if i > 0 {
			buf = append(buf, rowSeparator...)
		}
		buf = appendRow(buf, &row{ts: pr.ts, v: pr.v, s: pr.info})
	}
	buf = append(buf, ']')
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf)
	if rec := recorder(w); rec != nil {
		rec.rows = int64(len(rows))
	}
}

// --- reference API documents -------------------------------------------

type link struct {
	Rel  string `json:"rel"`
	Href string `json:"href"`
	Type string `json:"type"`
}

type collection struct {
	Total  int    `json:"total"`
	Offset int    `json:"offset"`
	Items  []any  `json:"items"`
	Links  []link `json:"links"`
}

func (e *Emulator) serveSites(w http.ResponseWriter) {
	c := collection{Links: []link{{"self", "/stable/sites", "application/vnd.grid5000.collection+json"}}, Items: []any{}}
	for _, s := range e.topo.Sites {
		c.Items = append(c.Items, siteDoc(s))
	}
	c.Total = len(c.Items)
	writeJSON(w, c)
}

func siteDoc(s *Site) map[string]any {
	base := "/stable/sites/" + s.UID
	return map[string]any{
		"uid": s.UID, "type": "site", "name": strings.ToUpper(s.UID[:1]) + s.UID[1:],
		"links": []link{
			{"self", base, "application/vnd.grid5000.item+json"},
			{"clusters", base + "/clusters", "application/vnd.grid5000.collection+json"},
			{"pdus", base + "/pdus", "application/vnd.grid5000.collection+json"},
			{"metrics", base + "/metrics", "application/json"},
		},
	}
}

func clusterDoc(s *Site, c *Cluster) map[string]any {
	base := "/stable/sites/" + s.UID + "/clusters/" + c.UID
	metrics := c.Metrics
	if metrics == nil {
		metrics = []MetricDesc{}
	}
	return map[string]any{
		"uid": c.UID, "type": "cluster", "model": c.Model, "metrics": metrics,
		"queues": []string{"default", "admin"}, "exotic": false,
		"links": []link{
			{"self", base, "application/vnd.grid5000.item+json"},
			{"nodes", base + "/nodes", "application/vnd.grid5000.collection+json"},
			{"parent", "/stable/sites/" + s.UID, "application/vnd.grid5000.item+json"},
		},
	}
}

func nodeDoc(s *Site, c *Cluster, n *Node) map[string]any {
	base := "/stable/sites/" + s.UID + "/clusters/" + c.UID + "/nodes/" + n.UID
	pdu := n.PDU
	if pdu == nil {
		pdu = []NodePDU{}
	}
	doc := map[string]any{
		"uid": n.UID, "type": "node", "cluster": c.UID,
		"network_address": n.UID + "." + s.UID + ".grid5000.fr",
		"pdu":             pdu,
		"links": []link{
			{"self", base, "application/vnd.grid5000.item+json"},
			{"parent", "/stable/sites/" + s.UID + "/clusters/" + c.UID, "application/vnd.grid5000.item+json"},
		},
	}
	if c.Switch != "" && n.SwitchPort > 0 {
		doc["network_adapters"] = []map[string]any{{"device": "eth0", "mounted": true,
			"switch": c.Switch, "switch_port": "port-" + strconv.Itoa(n.SwitchPort)}}
	}
	if n.GPUs > 0 {
		doc["gpu_devices"] = n.GPUs
	}
	return doc
}

func pduDoc(s *Site, p *PDU) map[string]any {
	ports := map[string]string{}
	for port, node := range p.Ports {
		ports[strconv.Itoa(port)] = node
	}
	var metrics []MetricDesc
	if p.IsWattmetre() {
		metrics = []MetricDesc{{Description: "Power consumption of node reported by wattmetre, in watt", Name: "wattmetre_power_watt",
			OptionalPeriod: p.RawPeriodMs(), Period: 1000, Source: MetricSource{Protocol: "wattmetre"}}}
	} else {
		metrics = []MetricDesc{{Description: "Power consumption of node reported by PDU, in watt", Name: "pdu_outlet_power_watt",
			Period: 1000, Source: MetricSource{Protocol: "pdu"}}}
	}
	return map[string]any{
		"uid": p.UID, "type": "pdu", "vendor": p.Vendor, "model": p.Model, "ip": p.IP,
		"metrics": metrics, "ports": ports,
		"links": []link{{"self", "/stable/sites/" + s.UID + "/pdus/" + p.UID, "application/vnd.grid5000.item+json"}},
	}
}

func (e *Emulator) serveClusters(w http.ResponseWriter, sd *siteData, segs []string, resource string) {
	s := sd.site
	if len(segs) == 0 {
		c := collection{Items: []any{}}
		for _, cl := range s.Clusters {
			c.Items = append(c.Items, clusterDoc(s, cl))
		}
		c.Total = len(c.Items)
		c.Links = []link{{"self", "/stable/sites/" + s.UID + "/clusters", "application/vnd.grid5000.collection+json"}}
		writeJSON(w, c)
		return
	}
	cl := s.Cluster(segs[0])
	if cl == nil {
		notFound(w, resource)
		return
	}
	switch {
	case len(segs) == 1:
		writeJSON(w, clusterDoc(s, cl))
	case len(segs) == 2 && segs[1] == "nodes":
		c := collection{Items: []any{}}
		for _, n := range cl.Nodes {
			c.Items = append(c.Items, nodeDoc(s, cl, n))
		}
		c.Total = len(c.Items)
		c.Links = []link{{"self", "/stable/sites/" + s.UID + "/clusters/" + cl.UID + "/nodes", "application/vnd.grid5000.collection+json"}}
		writeJSON(w, c)
	case len(segs) == 3 && segs[1] == "nodes":
		n := cl.Node(segs[2])
		if n == nil {
			notFound(w, resource)
			return
		}
		writeJSON(w, nodeDoc(s, cl, n))
	default:
		notFound(w, resource)
	}
}

func (e *Emulator) servePDUs(w http.ResponseWriter, sd *siteData, segs []string, resource string) {
	s := sd.site
	switch len(segs) {
	case 0:
		c := collection{Items: []any{}}
		pdus := append([]*PDU(nil), s.PDUs...)
		sort.Slice(pdus, func(i, j int) bool { return pdus[i].UID < pdus[j].UID })
		for _, p := range pdus {
			c.Items = append(c.Items, pduDoc(s, p))
		}
		c.Total = len(c.Items)
		c.Links = []link{{"self", "/stable/sites/" + s.UID + "/pdus", "application/vnd.grid5000.collection+json"}}
		writeJSON(w, c)
	case 1:
		p := s.PDU(segs[0])
		if p == nil {
			notFound(w, resource)
			return
		}
		writeJSON(w, pduDoc(s, p))
	default:
		notFound(w, resource)
	}
}
