// Command kwollect-emulator serves an emulated Grid'5000 Kwollect metrics API
// on a loopback address, for tests, demos and offline use.
//
// On start it prints exactly one line on stdout:
//
//	kwollect-emulator listening on http://127.0.0.1:PORT
//
// and, with --control, the control endpoint's bearer token after a space:
//
//	kwollect-emulator listening on http://127.0.0.1:PORT control-token=TOKEN
//
// (parse the first field after "listening on" as the URL, then key=value
// fields). The API base to give clients is http://127.0.0.1:PORT/stable. Requests
// are logged on stderr. SIGINT/SIGTERM shut it down gracefully (exit 0).
// See kwollect/emulator/README.md for the flags and examples.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alumet-go/alumet-agent/kwollect/emulator"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// listFlag is a repeatable flag whose values may also be comma lists.
type listFlag struct {
	vals  []string
	comma bool
}

func (l *listFlag) String() string { return strings.Join(l.vals, ",") }
func (l *listFlag) Set(s string) error {
	if !l.comma {
		l.vals = append(l.vals, s)
		return nil
	}
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			l.vals = append(l.vals, v)
		}
	}
	return nil
}

const usage = `Usage: kwollect-emulator [flags]

Serves an emulated Grid'5000 Kwollect API (GET/POST /{stable,sid,3.0}/sites/{site}/metrics,
cluster, node and PDU documents, GET /healthz). Prints one line on stdout:
  kwollect-emulator listening on http://127.0.0.1:PORT
with --control followed by " control-token=TOKEN" (the control endpoint's bearer token).
Give clients the base URL http://127.0.0.1:PORT/stable.

Job syntax (--job, repeatable):  'id=42;site=lyon;nodes=taurus-7,taurus-8;start=-10m;stop=+1h;types=monitor'
  start/stop: RFC 3339, epoch seconds, a naive time (Europe/Paris), "now", or a Go duration relative
  to the emulator start (-10m, +1h). start defaults to now; no stop = still running. types is a
  comma list: monitor, monitor=<regexp>, others ignored. site may be omitted (any site).
Load syntax (--load, repeatable):  'nodes=taurus-7;start=-5m;stop=+5m;util=0.8'
Signal syntax (--signal, repeatable): an exact analytic power P(t) replacing the nodes' power model
  (no slow variation, no noise, no load) between the optional start= and stop= (times as for --job;
  outside: the normal model; a node's signals must not overlap):
  'nodes=taurus-7,taurus-8;kind=constant;watts=150'
  'nodes=taurus-7;kind=ramp;from=100;to=200;period=10s'   (sawtooth: from -> to over each period)
  'nodes=taurus-7;kind=square;low=100;high=200;period=10s;duty=0.25'   (high for the first
    duty x period of each period, low for the rest)
  Watts in [0, 1e6]; period: Go duration, whole microseconds; duty in (0, 1], default 0.5. Periods
  begin at the Unix epoch (a 10s period switches on whole seconds), or at origin=<time> (origin=start:
  at start). wattmetre_power_watt: 1 Hz row of second s = exact mean of P over [s, s+1) rounded to
  2 decimals, raw frames (monitored) = P(frame timestamp) to 2 decimals, each PSU port its share;
  bmc_node_power_watt, pdu_outlet_power_watt: P(timestamp) rounded to the watt;
  bmc_node_power_watthour_total integrates P.
Gap syntax (--gap, repeatable): no generated row stamped in [start, stop) for those nodes' series
  (own, aliased ports/outlets also when queried by device id, multi-PSU sums, summary inputs):
  'nodes=taurus-7;start=-5m;stop=-4m;metrics=wattmetre_power_watt'
  start defaults to the emulator start, no stop = open-ended, no metrics = every metric.
Fault syntax (--fault, repeatable; rules are tried in order, the first that fires wins):
  'kind=503;p=0.2'  'kind=429;next=3;retry-after=2'  'kind=502;from=10s;to=40s'  'kind=truncate;rows=5'
  'kind=blackhole;p=0.25'  'kind=stall;rows=3'  'kind=stall;bytes=100;pause=30s'
  kind: 500 502 503 504 429 slow-first-byte slow-body reset truncate blackhole stall
    blackhole: accept, read the request, never answer (held until the client leaves or shutdown);
    stall: 200, headers and a body prefix (rows=, default 1, or bytes=) flushed, then nothing more
    (held likewise), or with pause=<D> the rest of the body after D
  triggers (all must hold): p=<0..1>, next=<N times>, requests=i-j (1-based), from=/to= (a Go duration
    relative to the start, now±D, RFC 3339 or epoch seconds), methods=GET,POST (default GET)
  parameters: delay=<D before the first byte>, retry-after=<s|HTTP date|none>, every=<rows>;pause=<D>
    (slow-body), rows=<N> or bytes=<N> sent before truncate/reset cut the connection or stall stops,
    pause=<D> (stall: resume after D; default never)
--blackhole: every request but the control endpoint's is accepted and never answered (a fault rule
  'kind=blackhole' only takes the metrics endpoint); PUT/DELETE /_emulator/blackhole switch it.
With --control, GET/POST/PUT/DELETE /_emulator/faults, GET /_emulator/stats, GET/POST /_emulator/jobs,
GET/POST /_emulator/monitor and GET/PUT/DELETE /_emulator/blackhole drive it at runtime. Every control
request needs "Authorization: Bearer TOKEN" (the token on the start line, or --control-token) or, with
--user, the API's Basic credentials; all but GET need "Content-Type: application/json" (see
kwollect/emulator/README.md).

Flags:
`

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kwollect-emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	listen := fs.String("listen", "127.0.0.1:8080", "address to listen on (127.0.0.1:0 picks a free port)")
	allowRemote := fs.Bool("allow-remote", false, "allow listening on a non-loopback address")
	lag := fs.Duration("lag", 3*time.Second, "ingestion lag (rows visible once now >= timestamp + lag)")
	summaryLag := fs.Duration("summary-lag", 10*time.Minute, "summary=true only returns buckets that ended before now - summary-lag")
	seed := fs.Int64("seed", 0, "seed of the synthetic data")
	legacy := fs.Bool("legacy-until-now", false, "with only start_time, end the window now (older Kwollect) instead of start+5min")
	caller := fs.String("caller-device", "emulator-caller", "device_id of POSTed rows without one")
	nanRate := fs.Float64("bmc-nan-rate", 0, "probability of a missing (NaN) bmc_node_power_watt reading")
	dynRange := fs.Float64("dynamic-range", 120, "watts a node adds at 100% utilisation")
	quiet := fs.Bool("quiet", false, "do not log requests")
	rowLimit := fs.Int("row-limit", 0, "a GET of more rows fails like Kwollect's statement timeout (500 XX000); 0 = no limit")
	stmtDelay := fs.Duration("statement-timeout-delay", 0, "wait before answering the row-limit error (and the --statement-timeout one with --statement-fail-fast)")
	stmtTimeout := fs.Duration("statement-timeout", 0, "a GET whose rows / --statement-rows-per-second exceed this fails like Kwollect's statement timeout (500 XX000), once this has passed; 0 = none (the real one is 5m)")
	stmtRate := fs.Float64("statement-rows-per-second", emulator.DefaultStatementRowsPerSecond, "server work rate (result rows per second) for --statement-timeout and --statement-work")
	stmtFailFast := fs.Bool("statement-fail-fast", false, "answer the --statement-timeout error after --statement-timeout-delay instead of after the timeout")
	stmtWork := fs.Bool("statement-work", false, "every metrics GET answered with rows waits rows / --statement-rows-per-second before its first byte (the server time of a valid query)")
	raplMode := fs.String("rapl", "default", "which clusters serve node_exporter's RAPL counters prom_node_rapl_{package,dram}_joules_total (an emulator extension): default (every cluster but taurus, whose catalogue is the reference excerpt), all, off")
	gzipOn := fs.Bool("gzip", false, "gzip the metrics rows responses (streamed) when the request's Accept-Encoding accepts gzip")
	faultSeed := fs.Int64("fault-seed", 0, "seed of the probabilistic fault rules")
	control := fs.Bool("control", false, "mount the control endpoint /_emulator/ (faults, stats, jobs, monitor, blackhole)")
	controlToken := fs.String("control-token", "", "bearer token of the control endpoint (>= 16 visible ASCII characters); default: a random one, printed on the start line")
	blackholeMode := fs.Bool("blackhole", false, "start as a black hole: accept every request but the control endpoint's and never answer")
	usersFile := fs.String("users-file", "", "file of login:password lines for Basic auth (keeps passwords out of the process list)")
	users := &listFlag{}
	monitor := &listFlag{comma: true}
	cpuNodes := &listFlag{comma: true}
	jobs := &listFlag{}
	loads := &listFlag{}
	faults := &listFlag{}
	signals := &listFlag{}
	gaps := &listFlag{}
	fs.Var(users, "user", "login:password accepted by Basic auth (repeatable); none = no auth")
	fs.Var(monitor, "monitor", "node in a permanent monitor job (repeatable or comma list)")
	fs.Var(cpuNodes, "cpu-load-node", "node whose power follows this machine's CPU load (repeatable or comma list)")
	fs.Var(jobs, "job", "OAR job, see the syntax above (repeatable)")
	fs.Var(loads, "load", "scripted utilisation phase, see the syntax above (repeatable)")
	fs.Var(faults, "fault", "fault-injection rule, see the syntax above (repeatable)")
	fs.Var(signals, "signal", "analytic power signal of nodes, see the syntax above (repeatable)")
	fs.Var(gaps, "gap", "range without rows for nodes (and metrics), see the syntax above (repeatable)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kwollect-emulator: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	level := slog.LevelInfo
	if *quiet {
		level = slog.LevelWarn
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "kwollect-emulator: "+format+"\n", a...)
		return 2
	}

	startTime := time.Now()
	cfg := emulator.Config{
		Seed: *seed, Lag: *lag, SummaryLag: *summaryLag, LegacyUntilNow: *legacy,
		Monitored: monitor.vals, CPULoadNodes: cpuNodes.vals, CallerDevice: *caller,
		BMCNaNRate: *nanRate, DynamicRange: *dynRange, Logger: logger, Start: startTime,
		RowLimit: *rowLimit, StatementDelay: *stmtDelay, FaultSeed: *faultSeed, Control: *control,
		ControlToken: *controlToken, Blackhole: *blackholeMode,
		StatementTimeout: *stmtTimeout, StatementRowsPerSecond: *stmtRate, StatementFailFast: *stmtFailFast,
		StatementWork: *stmtWork,
		Gzip:          *gzipOn,
	}
	rm, err := emulator.ParseRAPLMode(*raplMode)
	if err != nil {
		return fail("--rapl: %v", err)
	}
	cfg.RAPL = rm
	if *controlToken != "" && !*control {
		return fail("--control-token needs --control")
	}
	if *rowLimit < 0 || *stmtDelay < 0 {
		return fail("--row-limit and --statement-timeout-delay must not be negative")
	}
	if *stmtTimeout < 0 {
		return fail("--statement-timeout must not be negative")
	}
	if !(*stmtRate > 0) || math.IsInf(*stmtRate, 0) {
		return fail("--statement-rows-per-second must be a positive number")
	}
	if *summaryLag == 0 {
		cfg.SummaryLag = -1 // explicit 0 = no lag
	}
	cfg.Users = map[string]string{}
	userLines := users.vals
	if *usersFile != "" {
		data, err := os.ReadFile(*usersFile)
		if err != nil {
			return fail("%v", err)
		}
		sc := bufio.NewScanner(strings.NewReader(string(data)))
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
				userLines = append(userLines, line)
			}
		}
	}
	for _, u := range userLines {
		login, pw, ok := strings.Cut(u, ":")
		if !ok || login == "" {
			return fail("--user wants login:password")
		}
		cfg.Users[login] = pw
	}
	for _, j := range jobs.vals {
		job, err := parseJob(j, startTime)
		if err != nil {
			return fail("--job %q: %v", j, err)
		}
		cfg.Jobs = append(cfg.Jobs, job)
	}
	for _, f := range faults.vals {
		rule, err := emulator.ParseFaultRule(f, startTime, startTime)
		if err != nil {
			return fail("--fault %q: %v", f, err)
		}
		cfg.Faults = append(cfg.Faults, rule)
	}
	for _, l := range loads.vals {
		ph, err := parseLoad(l, startTime)
		if err != nil {
			return fail("--load %q: %v", l, err)
		}
		cfg.Load = append(cfg.Load, ph)
	}
	for _, s := range signals.vals {
		sp, err := emulator.ParseSignal(s, startTime)
		if err != nil {
			return fail("--signal %q: %v", s, err)
		}
		cfg.Signals = append(cfg.Signals, sp)
	}
	for _, g := range gaps.vals {
		gp, err := emulator.ParseGap(g, startTime)
		if err != nil {
			return fail("--gap %q: %v", g, err)
		}
		cfg.Gaps = append(cfg.Gaps, gp)
	}

	if !*allowRemote && !isLoopback(*listen) {
		return fail("refusing to listen on non-loopback address %q (use --allow-remote)", *listen)
	}
	emu, err := emulator.New(cfg)
	if err != nil {
		return fail("%v", err)
	}
	defer emu.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fail("%v", err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	line := "kwollect-emulator listening on http://" + net.JoinHostPort(addr.IP.String(), strconv.Itoa(addr.Port))
	if *control {
		line += " control-token=" + emu.ControlToken()
	}
	fmt.Fprintln(stdout, line)
	if f, ok := stdout.(interface{ Sync() error }); ok {
		_ = f.Sync()
	}

	srv := &http.Server{Handler: emu.Handler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		logger.Error("server stopped", "err", err)
		return 1
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	emu.Close() // releases the held connections (black hole, stall) first
	shCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shCtx); err != nil {
		_ = srv.Close()
	}
	return 0
}

// isLoopback tells whether a listen address is on a loopback interface.
func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// kv parses "k=v;k=v".
func kv(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(s, ";") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not key=value", part)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, nil
}

// parseTime accepts a duration relative to base (-10m, +1h), "now",
// "now±D", epoch seconds, RFC 3339 or any form the API's start_time accepts.
func parseTime(s string, base time.Time) (time.Time, error) {
	return emulator.ParseTimeSpec(s, base, base)
}

func parseJob(s string, base time.Time) (emulator.Job, error) {
	m, err := kv(s)
	if err != nil {
		return emulator.Job{}, err
	}
	var j emulator.Job
	for k := range m {
		switch k {
		case "id", "site", "nodes", "start", "stop", "types":
		default:
			return j, fmt.Errorf("unknown key %q", k)
		}
	}
	if j.ID, err = strconv.ParseInt(m["id"], 10, 64); err != nil {
		return j, fmt.Errorf("bad id: %v", err)
	}
	j.Site = m["site"]
	for _, n := range strings.Split(m["nodes"], ",") {
		if n = strings.TrimSpace(n); n != "" {
			j.Nodes = append(j.Nodes, n)
		}
	}
	if len(j.Nodes) == 0 {
		return j, errors.New("no nodes")
	}
	j.Start = base
	if v := m["start"]; v != "" {
		if j.Start, err = parseTime(v, base); err != nil {
			return j, fmt.Errorf("start: %v", err)
		}
	}
	if v := m["stop"]; v != "" {
		if j.Stop, err = parseTime(v, base); err != nil {
			return j, fmt.Errorf("stop: %v", err)
		}
	}
	for _, t := range strings.Split(m["types"], ",") {
		if t = strings.TrimSpace(t); t != "" {
			j.Types = append(j.Types, t)
		}
	}
	return j, nil
}

func parseLoad(s string, base time.Time) (emulator.LoadPhase, error) {
	m, err := kv(s)
	if err != nil {
		return emulator.LoadPhase{}, err
	}
	var l emulator.LoadPhase
	for k := range m {
		switch k {
		case "nodes", "start", "stop", "util":
		default:
			return l, fmt.Errorf("unknown key %q", k)
		}
	}
	for _, n := range strings.Split(m["nodes"], ",") {
		if n = strings.TrimSpace(n); n != "" {
			l.Nodes = append(l.Nodes, n)
		}
	}
	if len(l.Nodes) == 0 {
		return l, errors.New("no nodes")
	}
	l.Start = base
	if v := m["start"]; v != "" {
		if l.Start, err = parseTime(v, base); err != nil {
			return l, fmt.Errorf("start: %v", err)
		}
	}
	if v := m["stop"]; v != "" {
		if l.Stop, err = parseTime(v, base); err != nil {
			return l, fmt.Errorf("stop: %v", err)
		}
	}
	if l.Util, err = strconv.ParseFloat(m["util"], 64); err != nil || l.Util < 0 || l.Util > 1 {
		return l, errors.New("util must be a number in [0, 1]")
	}
	return l, nil
}
