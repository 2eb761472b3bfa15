package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault injection. Rules are evaluated in order on every request to the
// metrics endpoint (GET, and POST for rules that ask for it) that passed
// authentication; the first rule whose triggers all hold fires. /healthz,
// the reference documents and the control endpoint are never faulted (the
// whole-server black hole, Config.Blackhole, takes every route but the
// control endpoint).

// FaultKind names an injected fault.
type FaultKind string

// The fault kinds.
const (
	// Fault500 .. Fault504 and Fault429 answer with that status and a
	// gateway-style HTML body (not the PostgREST JSON), without touching
	// the data (a POST is not stored).
	Fault500 FaultKind = "500"
	Fault502 FaultKind = "502"
	Fault503 FaultKind = "503"
	Fault504 FaultKind = "504"
	Fault429 FaultKind = "429" // with Retry-After (default 1 s)
	// FaultSlowFirstByte waits Delay (default 1 s) before answering normally.
	FaultSlowFirstByte FaultKind = "slow-first-byte"
	// FaultSlowBody flushes the rows every Every rows (default 100) and
	// pauses Pause (default 100 ms) each time.
	FaultSlowBody FaultKind = "slow-body"
	// FaultReset closes the connection with a TCP RST (SO_LINGER 0): at once
	// (no response at all) or, with Rows or Bytes, after a 200, its headers
	// and that much of the body.
	FaultReset FaultKind = "reset"
	// FaultTruncate sends 200 and a prefix of the JSON array, Rows rows
	// (default 1) or Bytes bytes of it, without Content-Length, then closes
	// the connection: the client sees an unexpected EOF.
	FaultTruncate FaultKind = "truncate"
	// FaultBlackhole accepts the request and never answers: no byte is sent,
	// the connection is held open until the client goes away or the
	// emulator closes (Close), then closed.
	FaultBlackhole FaultKind = "blackhole"
	// FaultStall sends 200, its headers and a prefix of the body (Rows rows,
	// default 1, or Bytes bytes, like truncate), flushed, then nothing
	// more: the connection is held open like a black hole. With Pause, the
	// body resumes after that pause and completes normally.
	FaultStall FaultKind = "stall"
)

// FaultKinds lists every kind.
var FaultKinds = []FaultKind{Fault500, Fault502, Fault503, Fault504, Fault429,
	FaultSlowFirstByte, FaultSlowBody, FaultReset, FaultTruncate, FaultBlackhole, FaultStall}

// status returns the HTTP status of a status fault, 0 otherwise.
func (k FaultKind) status() int {
	switch k {
	case Fault500, Fault502, Fault503, Fault504, Fault429:
		n, _ := strconv.Atoi(string(k))
		return n
	}
	return 0
}

func (k FaultKind) cuts() bool { return k == FaultReset || k == FaultTruncate }

// prefix tells whether the kind takes Rows and Bytes (a body prefix).
func (k FaultKind) prefix() bool { return k.cuts() || k == FaultStall }

// FaultRule is one fault-injection rule: a kind, triggers and parameters.
// Zero values mean "not set". Its text form (String, ParseFaultRule) is
//
//	kind=503;p=0.2;next=3;requests=2-5;from=10s;to=40s;methods=GET,POST;delay=2s;retry-after=5
//	kind=blackhole;next=1
//	kind=stall;rows=3;pause=30s
type FaultRule struct {
	Kind FaultKind

	// Triggers: the rule fires on a request when every trigger it sets holds.

	// P is the probability (0 < P <= 1) that the rule fires on a request
	// its other triggers accept, drawn from the FaultSeed generator; 0 = 1.
	P float64
	// Next: the rule fires at most Next times ("the next N requests");
	// 0 = no limit.
	Next int64
	// FirstRequest..LastRequest (inclusive, 1-based) select requests by
	// their number among the requests the rule applies to (by method) since
	// the rule was installed (emulator start for Config.Faults), whether or
	// not another rule fired on them. 0 = unbounded.
	FirstRequest, LastRequest int64
	// From, To: the rule fires while From <= now < To on the emulator
	// clock (Config.Now). Zero = unbounded.
	From, To time.Time
	// Methods are "GET" (also HEAD) and "POST"; empty = GET only.
	Methods []string

	// Parameters.

	// Delay is waited before the first byte of the response, whatever the
	// kind (slow-first-byte: default 1 s).
	Delay time.Duration
	// RetryAfter is the Retry-After header of the status kinds, as sent
	// (seconds or an HTTP date); "" = "1" for 429 and no header otherwise;
	// "none" = no header.
	RetryAfter string
	// Every and Pause shape slow-body (defaults 100 rows, 100 ms). Pause
	// is also how long a stall lasts before the body resumes (0 = until
	// the client goes away or the emulator closes).
	Every int64
	Pause time.Duration
	// Rows or Bytes (of the body, '[' included) are sent before truncate
	// or reset cuts the connection, or stall stops sending, whichever comes
	// first. Truncate and stall with neither: 1 row. Reset with neither:
	// before the status line.
	Rows, Bytes int64
}

// Defaults of the parameters.
const (
	defaultSlowFirstByte = time.Second
	defaultSlowEvery     = 100
	defaultSlowPause     = 100 * time.Millisecond
)

func (r *FaultRule) delay() time.Duration {
	if r.Kind == FaultSlowFirstByte && r.Delay == 0 {
		return defaultSlowFirstByte
	}
	return r.Delay
}

func (r *FaultRule) every() int64 {
	if r.Every > 0 {
		return r.Every
	}
	return defaultSlowEvery
}

func (r *FaultRule) pause() time.Duration {
	if r.Pause > 0 {
		return r.Pause
	}
	return defaultSlowPause
}

// cutRows is the number of rows after which truncate/reset cut, or stall
// stops (0 = no row limit).
func (r *FaultRule) cutRows() int64 {
	if (r.Kind == FaultTruncate || r.Kind == FaultStall) && r.Rows == 0 && r.Bytes == 0 {
		return 1
	}
	return r.Rows
}

// retryAfter is the Retry-After header value to send ("" = none).
func (r *FaultRule) retryAfter() string {
	switch {
	case r.RetryAfter == "none":
		return ""
	case r.RetryAfter == "" && r.Kind == Fault429:
		return "1"
	}
	return r.RetryAfter
}

// appliesTo tells whether the rule considers requests of that method.
func (r *FaultRule) appliesTo(method string) bool {
	if method == http.MethodHead {
		method = http.MethodGet
	}
	if len(r.Methods) == 0 {
		return method == http.MethodGet
	}
	for _, m := range r.Methods {
		if strings.EqualFold(m, method) {
			return true
		}
	}
	return false
}

// Validate checks a rule and normalises its methods to upper case.
func (r *FaultRule) Validate() error {
	known := false
	for _, k := range FaultKinds {
		known = known || k == r.Kind
	}
	if !known {
		return fmt.Errorf("unknown fault kind %q (want one of %s)", r.Kind, kindList())
	}
	if !(r.P >= 0 && r.P <= 1) {
		return fmt.Errorf("p must be in (0, 1], got %v", r.P)
	}
	if r.Next < 0 || r.FirstRequest < 0 || r.LastRequest < 0 || r.Every < 0 || r.Rows < 0 || r.Bytes < 0 {
		return errors.New("next, requests, every, rows and bytes must not be negative")
	}
	if r.FirstRequest > 0 && r.LastRequest > 0 && r.LastRequest < r.FirstRequest {
		return fmt.Errorf("empty request range %d-%d", r.FirstRequest, r.LastRequest)
	}
	if !r.From.IsZero() && !r.To.IsZero() && !r.To.After(r.From) {
		return errors.New("to must be after from")
	}
	for i, m := range r.Methods {
		m = strings.ToUpper(strings.TrimSpace(m))
		if m != http.MethodGet && m != http.MethodPost {
			return fmt.Errorf("method %q: want GET or POST", r.Methods[i])
		}
		r.Methods[i] = m
	}
	if r.Delay < 0 || r.Pause < 0 {
		return errors.New("negative delay or pause")
	}
	if r.Every != 0 && r.Kind != FaultSlowBody {
		return errors.New("every only applies to slow-body")
	}
	if r.Pause != 0 && r.Kind != FaultSlowBody && r.Kind != FaultStall {
		return errors.New("pause only applies to slow-body and stall")
	}
	if (r.Rows != 0 || r.Bytes != 0) && !r.Kind.prefix() {
		return errors.New("rows and bytes only apply to truncate, reset and stall")
	}
	if r.RetryAfter != "" {
		if r.Kind.status() == 0 {
			return errors.New("retry-after only applies to the status kinds (429, 5xx)")
		}
		if r.RetryAfter != "none" {
			if _, err := strconv.ParseUint(r.RetryAfter, 10, 32); err != nil {
				if _, err := http.ParseTime(r.RetryAfter); err != nil {
					return fmt.Errorf("retry-after %q: want seconds, an HTTP date or none", r.RetryAfter)
				}
			}
		}
	}
	return nil
}

func kindList() string {
	s := make([]string, len(FaultKinds))
	for i, k := range FaultKinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// specTimeLayout renders absolute times in rule specs (µs, UTC).
const specTimeLayout = "2006-01-02T15:04:05.999999Z07:00"

func formatRange(first, last int64) string {
	switch {
	case first == last:
		return strconv.FormatInt(first, 10)
	case last == 0:
		return strconv.FormatInt(first, 10) + "-"
	case first == 0:
		return "-" + strconv.FormatInt(last, 10)
	}
	return strconv.FormatInt(first, 10) + "-" + strconv.FormatInt(last, 10)
}

// String renders the rule in the text syntax ParseFaultRule reads, times
// as absolute UTC instants.
func (r FaultRule) String() string {
	f := r.fields()
	parts := make([]string, 0, len(f))
	for _, kv := range f {
		parts = append(parts, kv[0]+"="+kv[1])
	}
	return strings.Join(parts, ";")
}

// fields returns the set fields as (key, text value) in canonical order.
func (r FaultRule) fields() [][2]string {
	out := [][2]string{{"kind", string(r.Kind)}}
	add := func(k, v string) { out = append(out, [2]string{k, v}) }
	if r.P > 0 {
		add("p", strconv.FormatFloat(r.P, 'g', -1, 64))
	}
	if r.Next > 0 {
		add("next", strconv.FormatInt(r.Next, 10))
	}
	if r.FirstRequest > 0 || r.LastRequest > 0 {
		add("requests", formatRange(r.FirstRequest, r.LastRequest))
	}
	if !r.From.IsZero() {
		add("from", r.From.UTC().Format(specTimeLayout))
	}
	if !r.To.IsZero() {
		add("to", r.To.UTC().Format(specTimeLayout))
	}
	if len(r.Methods) > 0 {
		add("methods", strings.Join(r.Methods, ","))
	}
	if r.Delay > 0 {
		add("delay", r.Delay.String())
	}
	if r.RetryAfter != "" {
		add("retry-after", r.RetryAfter)
	}
	if r.Every > 0 {
		add("every", strconv.FormatInt(r.Every, 10))
	}
	if r.Pause > 0 {
		add("pause", r.Pause.String())
	}
	if r.Rows > 0 {
		add("rows", strconv.FormatInt(r.Rows, 10))
	}
	if r.Bytes > 0 {
		add("bytes", strconv.FormatInt(r.Bytes, 10))
	}
	return out
}

// ParseFaultRule parses the text syntax of a rule: ';'-separated key=value
// items (a leading bare item is the kind):
//
//	kind      500 502 503 504 429 slow-first-byte slow-body reset truncate
//	          blackhole stall (required)
//	p         probability in (0, 1]
//	next      fire at most N times
//	requests  i-j, i-, -j or i: the rule's i-th to j-th request since installed
//	from, to  window [from, to): a Go duration relative to start ("10s",
//	          "-1m"), "now" or "now±<duration>" relative to now, or an
//	          absolute time as start_time takes it (epoch seconds, RFC 3339...)
//	methods   GET, POST or GET,POST (default GET)
//	delay     wait before the first byte (Go duration)
//	retry-after  Retry-After of the status kinds: seconds, an HTTP date or none
//	every, pause  slow-body: rows between flushes, pause per flush;
//	              pause also: stall: resume the body after that (default never)
//	rows, bytes   truncate/reset/stall: how much of the body to send first
func ParseFaultRule(spec string, start, now time.Time) (FaultRule, error) {
	fields := map[string]string{}
	for i, part := range strings.Split(spec, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			if i == 0 {
				k, v = "kind", part
			} else {
				return FaultRule{}, fmt.Errorf("%q is not key=value", part)
			}
		}
		k = normKey(k)
		if _, dup := fields[k]; dup {
			return FaultRule{}, fmt.Errorf("%s given twice", k)
		}
		fields[k] = strings.TrimSpace(v)
	}
	return faultFromFields(fields, start, now)
}

func normKey(k string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(k)), "_", "-")
}

// faultFromFields builds a rule from text fields (the flag syntax and the
// control endpoint's JSON share it).
func faultFromFields(f map[string]string, start, now time.Time) (FaultRule, error) {
	var r FaultRule
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	posInt := func(k, v string) (int64, error) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return 0, fmt.Errorf("%s=%q: want an integer >= 1", k, v)
		}
		return n, nil
	}
	dur := func(k, v string) (time.Duration, error) {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("%s=%q: want a non-negative Go duration (2s, 150ms)", k, v)
		}
		return d, nil
	}
	for _, k := range keys {
		v := f[k]
		var err error
		switch k {
		case "kind":
			r.Kind = FaultKind(strings.ToLower(v))
		case "p":
			r.P, err = strconv.ParseFloat(v, 64)
			if err != nil || !(r.P > 0 && r.P <= 1) {
				err = fmt.Errorf("p=%q: want a probability in (0, 1]", v)
			}
		case "next":
			r.Next, err = posInt(k, v)
		case "requests":
			r.FirstRequest, r.LastRequest, err = parseRange(v)
		case "from", "to":
			var t time.Time
			if t, err = ParseTimeSpec(v, start, now); err == nil {
				t = t.Round(time.Microsecond).UTC()
				if k == "from" {
					r.From = t
				} else {
					r.To = t
				}
			} else {
				err = fmt.Errorf("%s=%q: %v", k, v, err)
			}
		case "methods":
			for _, m := range strings.Split(v, ",") {
				if m = strings.TrimSpace(m); m != "" {
					r.Methods = append(r.Methods, m)
				}
			}
		case "delay":
			r.Delay, err = dur(k, v)
		case "retry-after":
			r.RetryAfter = v
		case "every":
			r.Every, err = posInt(k, v)
		case "pause":
			r.Pause, err = dur(k, v)
		case "rows":
			r.Rows, err = posInt(k, v)
		case "bytes":
			r.Bytes, err = posInt(k, v)
		default:
			err = fmt.Errorf("unknown key %q", k)
		}
		if err != nil {
			return FaultRule{}, err
		}
	}
	if r.Kind == "" {
		return FaultRule{}, errors.New("kind is required")
	}
	if err := r.Validate(); err != nil {
		return FaultRule{}, err
	}
	return r, nil
}

// parseRange parses "i-j", "i-", "-j" or "i".
func parseRange(s string) (int64, int64, error) {
	bad := fmt.Errorf("requests=%q: want i-j, i-, -j or i (1-based)", s)
	a, b, isRange := strings.Cut(s, "-")
	num := func(x string) (int64, bool) {
		if x == "" {
			return 0, isRange
		}
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		return n, err == nil && n >= 1
	}
	first, ok1 := num(strings.TrimSpace(a))
	last, ok2 := num(strings.TrimSpace(b))
	if !isRange {
		last, ok2 = first, true
	}
	if !ok1 || !ok2 || (first == 0 && last == 0) || (last > 0 && last < first) {
		return 0, 0, bad
	}
	return first, last, nil
}

// FaultStatus is a rule and its counters.
type FaultStatus struct {
	FaultRule
	// Seen counts the requests the rule applied to (by method) since it was
	// installed, Injected the times it fired.
	Seen, Injected int64
}

type faultState struct {
	rule     FaultRule
	seen     int64
	injected int64
}

// faultSet holds the active rules and the seeded generator.
type faultSet struct {
	mu    sync.Mutex
	seed  int64
	rng   *rand.Rand
	rules []*faultState
}

func newFaultSet(seed int64) *faultSet {
	return &faultSet{seed: seed, rng: newFaultRNG(seed)}
}

func newFaultRNG(seed int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x6b776f6c6c656374))
}

func prepareRules(rules []FaultRule) ([]*faultState, error) {
	out := make([]*faultState, len(rules))
	for i, r := range rules {
		r.Methods = append([]string(nil), r.Methods...)
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("emulator: fault rule %d: %w", i+1, err)
		}
		out[i] = &faultState{rule: r}
	}
	return out, nil
}

// set replaces the rules, resets their counters and restarts the random
// sequence from the seed.
func (f *faultSet) set(rules []FaultRule) error {
	st, err := prepareRules(rules)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = st
	f.rng = newFaultRNG(f.seed)
	return nil
}

// add appends rules (the random sequence goes on).
func (f *faultSet) add(rules []FaultRule) error {
	st, err := prepareRules(rules)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, st...)
	return nil
}

func (f *faultSet) list() []FaultStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]FaultStatus, len(f.rules))
	for i, s := range f.rules {
		r := s.rule
		r.Methods = append([]string(nil), r.Methods...)
		out[i] = FaultStatus{FaultRule: r, Seen: s.seen, Injected: s.injected}
	}
	return out
}

// pick evaluates the rules for a request and returns the rule that fires
// (a copy), or nil.
func (f *faultSet) pick(method string, now time.Time) *FaultRule {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.rules {
		if s.rule.appliesTo(method) {
			s.seen++
		}
	}
	for _, s := range f.rules {
		r := &s.rule
		switch {
		case !r.appliesTo(method),
			r.Next > 0 && s.injected >= r.Next,
			r.FirstRequest > 0 && s.seen < r.FirstRequest,
			r.LastRequest > 0 && s.seen > r.LastRequest,
			!r.From.IsZero() && now.Before(r.From),
			!r.To.IsZero() && !now.Before(r.To):
			continue
		}
		if r.P > 0 && r.P < 1 && f.rng.Float64() >= r.P {
			continue
		}
		s.injected++
		out := *r
		return &out
	}
	return nil
}

// SetFaults replaces the fault rules (nil clears them), resets their
// counters and restarts the random sequence from Config.FaultSeed.
func (e *Emulator) SetFaults(rules []FaultRule) error { return e.faults.set(rules) }

// AddFaults appends fault rules after the current ones.
func (e *Emulator) AddFaults(rules ...FaultRule) error { return e.faults.add(rules) }

// Faults returns the current rules with their counters.
func (e *Emulator) Faults() []FaultStatus { return e.faults.list() }

// gatewayPage is the HTML body of a status fault, as an nginx front end
// writes it.
func gatewayPage(status int) string {
	title := strconv.Itoa(status) + " " + http.StatusText(status)
	return "<html>\r\n<head><title>" + title + "</title></head>\r\n<body>\r\n<center><h1>" + title +
		"</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
}

// --- JSON form (control endpoint) ----------------------------------------

// faultJSON is the JSON form of a rule and its counters: the keys of the
// text syntax (retry_after with an underscore), typed values.
type faultJSON struct {
	Kind       FaultKind `json:"kind"`
	P          float64   `json:"p,omitempty"`
	Next       int64     `json:"next,omitempty"`
	Requests   string    `json:"requests,omitempty"`
	From       string    `json:"from,omitempty"`
	To         string    `json:"to,omitempty"`
	Methods    []string  `json:"methods,omitempty"`
	Delay      string    `json:"delay,omitempty"`
	RetryAfter string    `json:"retry_after,omitempty"`
	Every      int64     `json:"every,omitempty"`
	Pause      string    `json:"pause,omitempty"`
	Rows       int64     `json:"rows,omitempty"`
	Bytes      int64     `json:"bytes,omitempty"`
	Spec       string    `json:"spec"`
	Seen       int64     `json:"seen"`
	Injected   int64     `json:"injected"`
}

func toFaultJSON(s FaultStatus) faultJSON {
	r := s.FaultRule
	j := faultJSON{Kind: r.Kind, P: r.P, Next: r.Next, Methods: r.Methods, RetryAfter: r.RetryAfter,
		Every: r.Every, Rows: r.Rows, Bytes: r.Bytes, Spec: r.String(), Seen: s.Seen, Injected: s.Injected}
	for _, kv := range r.fields() {
		switch kv[0] {
		case "requests":
			j.Requests = kv[1]
		case "from":
			j.From = kv[1]
		case "to":
			j.To = kv[1]
		case "delay":
			j.Delay = kv[1]
		case "pause":
			j.Pause = kv[1]
		}
	}
	return j
}

// decodeFaults reads a control body (JSON): a rule object, a text spec as a
// JSON string, or an array of them. Objects use the text syntax's keys with
// string or number values (methods may be an array); spec, seen and
// injected are ignored, so a GET listing can be sent back, except that an
// object with a spec and no kind ({"spec": "kind=503;p=0.2"}) is that spec.
func decodeFaults(data []byte, start, now time.Time) ([]FaultRule, error) {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	var top any
	if err := dec.Decode(&top); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if dec.More() {
		return nil, errors.New("invalid JSON: trailing data")
	}
	items, isList := top.([]any)
	if !isList {
		items = []any{top}
	}
	out := make([]FaultRule, 0, len(items))
	for i, it := range items {
		var r FaultRule
		var err error
		switch x := it.(type) {
		case string:
			r, err = ParseFaultRule(x, start, now)
		case map[string]any:
			r, err = faultFromObject(x, start, now)
		default:
			err = errors.New("want a rule object or a text spec")
		}
		if err != nil {
			return nil, fmt.Errorf("rule %d: %w", i+1, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func faultFromObject(obj map[string]any, start, now time.Time) (FaultRule, error) {
	if spec, ok := obj["spec"].(string); ok && obj["kind"] == nil {
		// {"spec": "kind=503;p=0.2"}: the text form inside a JSON body.
		for k := range obj {
			if k != "spec" && k != "kind" && k != "seen" && k != "injected" {
				return FaultRule{}, fmt.Errorf("%s: not allowed beside spec without kind", k)
			}
		}
		return ParseFaultRule(spec, start, now)
	}
	fields := map[string]string{}
	for k, v := range obj {
		k = normKey(k)
		switch k {
		case "spec", "seen", "injected":
			continue
		}
		if _, dup := fields[k]; dup {
			return FaultRule{}, fmt.Errorf("%s given twice", k)
		}
		switch x := v.(type) {
		case nil:
			continue
		case string:
			fields[k] = x
		case json.Number:
			fields[k] = x.String()
		case []any:
			parts := make([]string, len(x))
			for i, e := range x {
				s, ok := e.(string)
				if !ok {
					return FaultRule{}, fmt.Errorf("%s: want strings", k)
				}
				parts[i] = s
			}
			fields[k] = strings.Join(parts, ",")
		default:
			return FaultRule{}, fmt.Errorf("%s: want a string or a number", k)
		}
	}
	return faultFromFields(fields, start, now)
}
