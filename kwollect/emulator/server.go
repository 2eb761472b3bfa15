package emulator

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HTTP layer. Request flow: Handler -> logging and stats -> control endpoint
// (/_emulator/, control.go, its own auth) -> whole-server black hole ->
// /healthz -> auth -> API routes. On the
// metrics endpoint, fault injection (faults.go) comes first, like a failing
// gateway in front of Kwollect, then the query, the row limit (statement
// timeout) and the streamed body, where body faults (slow body, truncation,
// reset, stall) act at row boundaries through writeRows's rowSink.

// APIPrefixes are the API versions served, all alike.
var APIPrefixes = []string{"stable", "sid", "3.0"}

// Handler returns the HTTP handler serving every route.
func (e *Emulator) Handler() http.Handler {
	return e.logRequests(http.HandlerFunc(e.serveHTTP))
}

// statusRecorder records what the handler did, for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status   int
	bytes    int64
	rows     int64
	user     string
	fault    FaultKind
	hijacked bool
	// stats receives the status when it is decided (nil: not counted).
	stats   *statsCounter
	counted bool
}

// count records the response status in the stats once (0 = no response).
func (s *statusRecorder) count(code int) {
	if s.counted || s.stats == nil {
		return
	}
	s.counted = true
	s.stats.update(func(st *Stats) { st.ByStatus[code]++ })
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
		s.count(code)
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
		s.count(http.StatusOK)
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

// logRequests logs method, path+query, status, rows, bytes, duration and
// the injected fault, and counts the request in the stats (except the
// control endpoint's). The Authorization header is never logged.
func (e *Emulator) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		if !(e.cfg.Control && isControlPath(r.URL.Path)) {
			rec.stats = e.stats
			e.stats.update(func(s *Stats) { s.Requests++ })
		}
		defer func() {
			if rec.status == 0 && !rec.hijacked {
				rec.count(http.StatusOK) // nothing written: net/http sends 200
			}
			attrs := []any{"method", r.Method, "uri", r.URL.RequestURI(), "status", rec.status,
				"rows", rec.rows, "bytes", rec.bytes, "duration", time.Since(start).Round(time.Microsecond)}
			if rec.fault != "" {
				attrs = append(attrs, "fault", string(rec.fault))
			}
			if rec.user != "" {
				attrs = append(attrs, "user", rec.user)
			}
			e.logger.Info("request", attrs...)
		}()
		next.ServeHTTP(rec, r)
	})
}

func isControlPath(p string) bool {
	return p == controlPrefix || strings.HasPrefix(p, controlPrefix+"/")
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
	if e.cfg.Control && isControlPath(path) {
		e.serveControl(w, r)
		return
	}
	if e.Blackhole() {
		e.stats.update(func(s *Stats) { s.Faults++; s.FaultsByKind[FaultBlackhole]++ })
		if rec := recorder(w); rec != nil {
			rec.fault = FaultBlackhole
		}
		e.hold(w, r)
		return
	}
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
		case get, r.Method == http.MethodPost:
			e.serveMetricsEndpoint(w, r, sd)
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

// serveMetricsEndpoint applies fault injection, then serves the GET or POST.
func (e *Emulator) serveMetricsEndpoint(w http.ResponseWriter, r *http.Request, sd *siteData) {
	post := r.Method == http.MethodPost
	e.stats.update(func(s *Stats) {
		if post {
			s.MetricsPOST++
		} else {
			s.MetricsGET++
		}
	})
	if !post {
		e.stats.flying(1)
		defer e.stats.flying(-1)
	}
	f := e.faults.pick(r.Method, e.now())
	if f != nil {
		e.stats.update(func(s *Stats) { s.Faults++; s.FaultsByKind[f.Kind]++ })
		if rec := recorder(w); rec != nil {
			rec.fault = f.Kind
		}
		if d := f.delay(); d > 0 && e.sleep(r.Context(), d) != nil {
			noResponse(w) // the client left
			return
		}
		if st := f.Kind.status(); st != 0 {
			if ra := f.retryAfter(); ra != "" {
				w.Header().Set("Retry-After", ra)
			}
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(st)
			_, _ = w.Write([]byte(gatewayPage(st)))
			return
		}
		if f.Kind == FaultReset && f.Rows == 0 && f.Bytes == 0 {
			cutConnection(w, true, false)
			return
		}
		if f.Kind == FaultBlackhole {
			e.hold(w, r)
			return
		}
	}
	if post {
		e.servePost(w, r, sd, f)
	} else {
		e.serveMetrics(w, r, sd, f)
	}
}

// noResponse records that the request got no response (client gone).
func noResponse(w http.ResponseWriter) {
	if rec := recorder(w); rec != nil {
		rec.count(0)
	}
}

// serveMetrics streams the rows of a GET query. With a row limit or a
// statement timeout, the rows are counted first (generated, not formatted)
// and a query over the limit gets the statement-timeout error instead (see
// statementLimit).
func (e *Emulator) serveMetrics(w http.ResponseWriter, r *http.Request, sd *siteData, f *FaultRule) {
	arrived := time.Now() // real time: the server's work is real waiting
	now := e.now().UnixMicro()
	q, perr := e.parseQuery(sd.site.UID, r.URL.Query(), now)
	if perr != nil {
		writePGError(w, perr)
		return
	}
	if lim, byTime := e.statementLimit(); lim >= 0 || e.cfg.StatementWork {
		n := countRows(r.Context(), e.stream(q, now, true), countLimit(lim))
		if n < 0 {
			noResponse(w)
			return
		}
		if lim >= 0 && n > lim {
			d := e.cfg.StatementDelay
			if byTime {
				e.stats.update(func(s *Stats) { s.StatementTimeouts++ })
				if !e.cfg.StatementFailFast {
					d = e.cfg.StatementTimeout - time.Since(arrived)
				}
			} else {
				e.stats.update(func(s *Stats) { s.RowLimitErrors++ })
			}
			if d > 0 && e.sleep(r.Context(), d) != nil {
				noResponse(w)
				return
			}
			writePGError(w, errTooMuchData())
			return
		}
		if e.cfg.StatementWork {
			// The server's work before the first byte (the count
			// included), as PostgreSQL builds the whole result first.
			d := time.Duration(float64(n)/e.cfg.StatementRowsPerSecond*float64(time.Second)) - time.Since(arrived)
			if d > 0 && e.sleep(r.Context(), d) != nil {
				noResponse(w)
				return
			}
		}
	}
	n := e.writeRowsResponse(w, r, e.stream(q, now, true), f, func(n int64) {
		e.stats.update(func(s *Stats) { s.RowsServed += n })
	})
	if rec := recorder(w); rec != nil {
		rec.rows = n
	}
}

// statementLimit returns the largest result (rows) a GET may have, -1 = no
// limit, and whether that limit is the time form (StatementTimeout ×
// StatementRowsPerSecond, rounded down) rather than RowLimit; the smaller
// wins, RowLimit on a tie.
func (e *Emulator) statementLimit() (limit int64, byTime bool) {
	limit = int64(e.cfg.RowLimit)
	if limit == 0 {
		limit = -1
	}
	if e.cfg.StatementTimeout <= 0 {
		return limit, false
	}
	t := math.Floor(e.cfg.StatementTimeout.Seconds() * e.cfg.StatementRowsPerSecond)
	tl := int64(math.MaxInt64 / 2)
	if t < float64(tl) {
		tl = int64(t)
	}
	if limit > 0 && limit <= tl {
		return limit, false
	}
	return tl, true
}

// countRows counts the rows of g, stopping at max; -1 if ctx is done first.
// countLimit is the count bound of a statement limit (-1: none).
func countLimit(lim int64) int64 {
	if lim < 0 {
		return math.MaxInt64
	}
	return lim + 1
}

func countRows(ctx context.Context, g rowGen, max int64) int64 {
	var n int64
	for n < max {
		if _, ok := g.next(); !ok {
			break
		}
		n++
		if n%4096 == 0 && ctx.Err() != nil {
			return -1
		}
	}
	return n
}

// writeRowsResponse sends 200 and the rows of g as a JSON array, shaped by
// the body fault f (slow-body, truncate, reset or stall after some output)
// if any. account is called with the number of rows written before the
// response is complete on the wire.
func (e *Emulator) writeRowsResponse(w http.ResponseWriter, r *http.Request, g rowGen, f *FaultRule, account func(int64)) int64 {
	ctx := r.Context()
	w.Header().Set("Content-Type", "application/json")
	compress := e.cfg.Gzip && acceptsGzip(r.Header)
	if e.cfg.Gzip {
		w.Header().Add("Vary", "Accept-Encoding")
	}
	if compress {
		w.Header().Set("Content-Encoding", "gzip")
	}
	w.WriteHeader(http.StatusOK)
	// A stall without pause is a truncation whose connection is held
	// instead of closed; with a pause, the body resumes after it.
	stall := f != nil && f.Kind == FaultStall
	cut := f != nil && (f.Kind.cuts() || stall && f.Pause == 0)
	paused := stall && f.Pause > 0
	resumed := true // false once a paused stall was cut short
	stalled := false
	rc := http.NewResponseController(w)
	var out io.Writer = w
	switch {
	case cut && f.Bytes > 0:
		out = &cutWriter{w: w, left: f.Bytes}
	case paused && f.Bytes > 0:
		out = &stallWriter{w: w, left: f.Bytes, stall: func() bool {
			stalled = true
			resumed = rc.Flush() == nil && e.pauseHeld(ctx, f.Pause)
			return resumed
		}}
	}
	// Rows -> bw -> gz (when compressing) -> out -> w: byte limits of
	// faults count the bytes on the wire (compressed).
	var gz *gzip.Writer
	if compress {
		gz = getGzipWriter(out)
		defer putGzipWriter(gz)
		out = gz
	}
	bw := bufio.NewWriterSize(out, 64<<10)
	// flush pushes everything written so far to w (not to the network).
	flush := func() error {
		if err := bw.Flush(); err != nil {
			return err
		}
		if gz != nil {
			return gz.Flush()
		}
		return nil
	}
	// stallHere flushes the body so far and pauses, unless the byte limit
	// already stalled it while flushing; false if the stall was cut short.
	stallHere := func() bool {
		if stalled {
			return resumed
		}
		if flush() != nil {
			resumed = false
			return false
		}
		if !stalled {
			stalled = true
			resumed = rc.Flush() == nil && e.pauseHeld(ctx, f.Pause)
		}
		return resumed
	}
	var sink rowSink
	switch {
	case cut && f.cutRows() > 0:
		limit := f.cutRows()
		sink = func(n int64) bool { return n < limit }
	case paused && f.cutRows() > 0:
		limit := f.cutRows()
		sink = func(n int64) bool { return n != limit || stallHere() }
	case f != nil && f.Kind == FaultSlowBody:
		every, pause := f.every(), f.pause()
		rc := http.NewResponseController(w)
		sink = func(n int64) bool {
			if n%every != 0 {
				return true
			}
			if flush() != nil || rc.Flush() != nil {
				return false
			}
			return e.sleep(ctx, pause) == nil
		}
	}
	n, done, err := writeRows(ctx, bw, g, sink)
	if done && err == nil && paused {
		// The whole body is shorter than the prefix: stall before the ']'.
		stallHere()
	}
	account(n)
	switch {
	case stall && !paused:
		_ = flush()    // up to the byte limit
		_ = rc.Flush() // Hijack would only send the headers
		e.hold(w, r)
		return n
	case cut:
		_ = flush() // up to the byte limit (a gzip stream without its end)
		cutConnection(w, f.Kind == FaultReset, true)
		return n
	case !resumed:
		cutConnection(w, false, false) // the client left or the emulator closed
		return n
	}
	if done && err == nil {
		_ = bw.WriteByte(']')
	}
	_ = bw.Flush()
	if gz != nil && done && err == nil {
		_ = gz.Close() // the gzip trailer only ends a complete body
	} else if gz != nil {
		_ = gz.Flush()
	}
	return n
}

// gzipWriters recycles the gzip writers (and their deflate state, ~1 MB).
var gzipWriters sync.Pool

func getGzipWriter(w io.Writer) *gzip.Writer {
	if gz, ok := gzipWriters.Get().(*gzip.Writer); ok {
		gz.Reset(w)
		return gz
	}
	gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	return gz
}

func putGzipWriter(gz *gzip.Writer) {
	gz.Reset(io.Discard)
	gzipWriters.Put(gz)
}

// acceptsGzip tells whether an Accept-Encoding header accepts gzip: a
// "gzip" (or "x-gzip") coding, or else "*", with a non-zero q.
func acceptsGzip(h http.Header) bool {
	star := false
	for _, line := range h.Values("Accept-Encoding") {
		for _, item := range strings.Split(line, ",") {
			coding, params, _ := strings.Cut(item, ";")
			coding = strings.ToLower(strings.TrimSpace(coding))
			ok := true
			for _, p := range strings.Split(params, ";") {
				k, v, found := strings.Cut(p, "=")
				if found && strings.EqualFold(strings.TrimSpace(k), "q") {
					q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
					ok = err == nil && q > 0
				}
			}
			switch coding {
			case "gzip", "x-gzip":
				return ok
			case "*":
				star = ok
			}
		}
	}
	return star
}

// stallWriter passes the first left bytes through, calls stall (a paused
// stall), and goes on if it returns true, fails otherwise.
type stallWriter struct {
	w     io.Writer
	left  int64
	stall func() bool
	done  bool
}

func (s *stallWriter) Write(p []byte) (int, error) {
	if s.done || int64(len(p)) < s.left {
		n, err := s.w.Write(p)
		s.left -= int64(n)
		return n, err
	}
	n, err := s.w.Write(p[:s.left])
	s.left -= int64(n)
	if err != nil {
		return n, err
	}
	s.done = true
	if !s.stall() {
		return n, errCut
	}
	m, err := s.w.Write(p[n:])
	return n + m, err
}

// errCut stops a body at its byte limit.
var errCut = errors.New("emulator: body cut by a fault")

// cutWriter passes the first left bytes through, then fails.
type cutWriter struct {
	w    io.Writer
	left int64
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errCut
	}
	if int64(len(p)) > c.left {
		n, err := c.w.Write(p[:c.left])
		c.left -= int64(n)
		if err == nil {
			err = errCut
		}
		return n, err
	}
	n, err := c.w.Write(p)
	c.left -= int64(n)
	return n, err
}

// cutConnection ends the response by closing its connection: with what
// was written flushed first (flush) or not, and with a TCP RST (rst,
// SO_LINGER 0) or an ordinary close. Without an HTTP/1 connection to
// hijack, it aborts the handler (net/http then drops the response).
func cutConnection(w http.ResponseWriter, rst, flush bool) {
	rc := http.NewResponseController(w)
	if flush {
		_ = rc.Flush()
	}
	conn, _, err := rc.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if rec := recorder(w); rec != nil {
		rec.hijacked = true
		if rec.status == 0 {
			rec.count(0)
		}
	}
	if tc, ok := conn.(*net.TCPConn); ok && rst {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// rowSink observes the rows as they are written (body faults); returning
// false stops the stream.
type rowSink func(n int64) bool

// writeRows streams "[" and the rows of g, json_agg style, but not the
// closing bracket; done tells whether g was exhausted. It never holds more
// than one row in memory besides the writer's buffer. It stops early when
// the sink says so, ctx is done or a write fails.
func writeRows(ctx context.Context, w *bufio.Writer, g rowGen, sink rowSink) (n int64, done bool, err error) {
	buf := make([]byte, 0, 512)
	if _, err := w.WriteString("["); err != nil {
		return 0, false, err
	}
	for {
		r, ok := g.next()
		if !ok {
			return n, true, nil
		}
		buf = buf[:0]
		if n > 0 {
			buf = append(buf, rowSeparator...)
		}
		buf = appendRow(buf, &r)
		if _, err := w.Write(buf); err != nil {
			return n, false, err
		}
		n++
		if sink != nil && !sink(n) {
			return n, false, nil
		}
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return n, false, err
			}
		}
	}
}

// servePost stores pushed rows and returns them (a status fault has
// already answered without storing them; body faults shape the answer of
// stored rows).
func (e *Emulator) servePost(w http.ResponseWriter, r *http.Request, sd *siteData, f *FaultRule) {
	now := e.now().UnixMicro()
	rows, perr := e.parsePost(r.Body, now)
	if perr != nil {
		writePGError(w, perr)
		return
	}
	e.posts.add(sd.site.UID, rows)
	e.stats.update(func(s *Stats) { s.RowsPosted += int64(len(rows)) })
	out := make([]row, len(rows))
	for i, pr := range rows {
		out[i] = row{ts: pr.ts, v: pr.v, s: pr.info}
	}
	n := e.writeRowsResponse(w, r, &sliceGen{rows: out}, f, func(int64) {})
	if rec := recorder(w); rec != nil {
		rec.rows = n
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
