package emulator

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Analytic power signals and data gaps.
//
// A SignalSpec replaces the power model of some nodes by an exact analytic
// signal P(t) (no slow variation, no noise, no utilisation) over a time
// range, so that tests know the exact energy a client should report. A Gap
// removes every generated row of some nodes (and metrics) over a time range,
// as if the meter was down.

// SignalKind names the shape of an analytic signal.
type SignalKind string

// The signal kinds.
const (
	// SignalConstant: P(t) = Watts.
	SignalConstant SignalKind = "constant"
	// SignalRamp: a sawtooth, P rises linearly from From to To over each
	// period, then jumps back to From.
	SignalRamp SignalKind = "ramp"
	// SignalSquare: P = High during the first Duty × Period of each
	// period, Low for the rest.
	SignalSquare SignalKind = "square"
)

// MaxSignalWatts bounds the power levels of a signal.
const MaxSignalWatts = 1e6

// Signal is an exact analytic power signal P(t), in watts. Periods start at
// Origin + k × Period (k any integer); with a zero Origin, at the Unix epoch,
// so that a period of whole seconds switches on whole seconds.
//
// Fields that the kind does not use are ignored.
type Signal struct {
	Kind  SignalKind
	Watts float64 // constant
	// From and To are the ramp's levels at the beginning and (just before)
	// the end of each period.
	From, To float64
	// Low and High are the square levels.
	Low, High float64
	// Duty is the fraction of each period, at its beginning, the square
	// signal spends at High, in (0, 1]; 0 means 0.5.
	Duty float64
	// Period of ramp and square signals: positive, whole microseconds.
	Period time.Duration
	// Origin is the beginning of one period (zero = the Unix epoch); whole
	// microseconds.
	Origin time.Time
}

// SignalSpec applies a Signal to nodes over [Start, Stop). Outside that
// range the nodes follow the normal power model.
type SignalSpec struct {
	Nodes []string
	// Start and Stop bound where the signal applies; zero = unbounded.
	// They are used at microsecond precision (rounded).
	Start, Stop time.Time
	Signal
}

// Validate checks the signal's parameters.
func (s Signal) Validate() error {
	level := func(name string, w float64) error {
		if math.IsNaN(w) || w < 0 || w > MaxSignalWatts {
			return fmt.Errorf("%s=%v: want watts in [0, %g]", name, w, float64(MaxSignalWatts))
		}
		return nil
	}
	var errs []error
	switch s.Kind {
	case SignalConstant:
		return level("watts", s.Watts)
	case SignalRamp:
		errs = append(errs, level("from", s.From), level("to", s.To))
	case SignalSquare:
		errs = append(errs, level("low", s.Low), level("high", s.High))
		if math.IsNaN(s.Duty) || s.Duty < 0 || s.Duty > 1 {
			errs = append(errs, fmt.Errorf("duty=%v: want a fraction in (0, 1]", s.Duty))
		}
	default:
		return fmt.Errorf("unknown signal kind %q (want constant, ramp or square)", s.Kind)
	}
	if s.Period <= 0 || s.Period%time.Microsecond != 0 {
		errs = append(errs, fmt.Errorf("period=%v: want a positive duration of whole microseconds", s.Period))
	}
	if s.Origin.Nanosecond()%1000 != 0 {
		errs = append(errs, fmt.Errorf("origin %v: want whole microseconds", s.Origin))
	}
	return errors.Join(errs...)
}

// Validate checks the spec: nodes given, a valid signal, Stop after Start.
func (s SignalSpec) Validate() error {
	if len(s.Nodes) == 0 {
		return errors.New("no nodes")
	}
	if !s.Start.IsZero() && !s.Stop.IsZero() && !s.Stop.Round(time.Microsecond).After(s.Start.Round(time.Microsecond)) {
		return errors.New("stop must be after start")
	}
	return s.Signal.Validate()
}

// instant is a time as whole µs since the epoch plus ns in [0, 1000).
type instant struct{ us, ns int64 }

func instantOf(t time.Time) instant {
	return instant{us: t.UnixMicro(), ns: int64(t.Nanosecond() % 1000)}
}

// seconds returns b - a in seconds.
func (a instant) secondsTo(b instant) float64 {
	return float64(b.us-a.us)/float64(usPerSec) + float64(b.ns-a.ns)/1e9
}

func (s *Signal) duty() float64 {
	if s.Duty == 0 {
		return 0.5
	}
	return s.Duty
}

func (s *Signal) originUs() int64 {
	if s.Origin.IsZero() {
		return 0
	}
	return s.Origin.UnixMicro()
}

// pos returns the index of the period holding t and t's fraction of it, in
// [0, 1).
func (s *Signal) pos(t instant) (int64, float64) {
	per := max(1, s.Period.Microseconds())
	d := t.us - s.originUs()
	k := floorDiv(d, per)
	return k, (float64(d-k*per) + float64(t.ns)/1000) / float64(per)
}

// level is P at fraction f of a period (periodic kinds).
func (s *Signal) level(f float64) float64 {
	if s.Kind == SignalRamp {
		return s.From + (s.To-s.From)*f
	}
	if f < s.duty() {
		return s.High
	}
	return s.Low
}

// partial is ∫ P over the first fraction f of a period, in J.
func (s *Signal) partial(f float64) float64 {
	T := s.Period.Seconds()
	if s.Kind == SignalRamp {
		return T * f * (s.From + (s.To-s.From)*f/2)
	}
	d := s.duty()
	return T * (s.High*min(f, d) + s.Low*max(0, f-d))
}

func (s *Signal) at(t instant) float64 {
	if s.Kind == SignalConstant {
		return s.Watts
	}
	_, f := s.pos(t)
	return s.level(f)
}

func (s *Signal) energy(a, b instant) float64 {
	if s.Kind == SignalConstant {
		return s.Watts * a.secondsTo(b)
	}
	ka, fa := s.pos(a)
	kb, fb := s.pos(b)
	return float64(kb-ka)*s.partial(1) + s.partial(fb) - s.partial(fa)
}

// At returns P(t) in watts.
func (s Signal) At(t time.Time) float64 { return s.at(instantOf(t)) }

// Energy returns the exact energy ∫P dt over [from, to], in joules
// (negative when to is before from). It ignores the Start/Stop bounds of a
// SignalSpec: it is the energy the nodes draw when the window lies inside
// [Start, Stop).
func (s Signal) Energy(from, to time.Time) float64 {
	return s.energy(instantOf(from), instantOf(to))
}

// Mean returns the exact mean power over [from, to] in watts (P(from) when
// from equals to).
func (s Signal) Mean(from, to time.Time) float64 {
	a, b := instantOf(from), instantOf(to)
	if a == b {
		return s.at(a)
	}
	return s.energy(a, b) / a.secondsTo(b)
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// fmtTime renders a time ParseTimeSpec reads back exactly: RFC 3339 (UTC),
// or epoch seconds outside years 1-9999.
func fmtTime(t time.Time) string {
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return formatEpoch(t)
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// String renders the signal in the --signal syntax (without nodes and
// bounds): "kind=ramp;from=100;to=200;period=10s".
func (s Signal) String() string {
	parts := []string{"kind=" + string(s.Kind)}
	switch s.Kind {
	case SignalConstant:
		parts = append(parts, "watts="+fmtFloat(s.Watts))
	case SignalRamp:
		parts = append(parts, "from="+fmtFloat(s.From), "to="+fmtFloat(s.To), "period="+s.Period.String())
	case SignalSquare:
		parts = append(parts, "low="+fmtFloat(s.Low), "high="+fmtFloat(s.High), "period="+s.Period.String(), "duty="+fmtFloat(s.duty()))
	}
	if !s.Origin.IsZero() && s.Kind != SignalConstant {
		parts = append(parts, "origin="+fmtTime(s.Origin))
	}
	return strings.Join(parts, ";")
}

// String renders the spec in the --signal syntax, times absolute (UTC); it
// parses back to the same spec.
func (s SignalSpec) String() string {
	var b strings.Builder
	b.WriteString("nodes=" + strings.Join(s.Nodes, ",") + ";" + s.Signal.String())
	if !s.Start.IsZero() {
		b.WriteString(";start=" + fmtTime(s.Start))
	}
	if !s.Stop.IsZero() {
		b.WriteString(";stop=" + fmtTime(s.Stop))
	}
	return b.String()
}

// specFields splits "k=v;k=v" into lower-case keys, rejecting duplicates and
// keys not in allowed.
func specFields(spec string, allowed ...string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(spec, ";") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not key=value", strings.TrimSpace(part))
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if !contains(allowed, k) {
			return nil, fmt.Errorf("unknown key %q", k)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%s given twice", k)
		}
		out[k] = strings.TrimSpace(v)
	}
	return out, nil
}

// splitList splits a comma list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// specTime parses a start/stop/origin value like ParseTimeSpec with base as
// both the start and now, rounded to the microsecond.
func specTime(k, v string, base time.Time) (time.Time, error) {
	t, err := ParseTimeSpec(v, base, base)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s=%q: %v", k, v, err)
	}
	return t.Round(time.Microsecond).UTC(), nil
}

// specBounds parses the optional start and stop of a spec.
func specBounds(f map[string]string, base time.Time) (start, stop time.Time, err error) {
	if v, ok := f["start"]; ok {
		if start, err = specTime("start", v, base); err != nil {
			return
		}
	}
	if v, ok := f["stop"]; ok {
		if stop, err = specTime("stop", v, base); err != nil {
			return
		}
	}
	if !start.IsZero() && !stop.IsZero() && !stop.After(start) {
		err = errors.New("stop must be after start")
	}
	return
}

// ParseSignal parses a --signal spec:
//
//	nodes=taurus-7,taurus-8;kind=constant;watts=150
//	nodes=taurus-7;kind=ramp;from=100;to=200;period=10s
//	nodes=taurus-7;kind=square;low=100;high=200;period=10s;duty=0.25
//
// with optional start=, stop= (where the signal applies; default unbounded)
// and origin= (beginning of a period; default the Unix epoch; "start" = the
// start value). Times take the syntax of ParseTimeSpec with base as both the
// emulator start and now (a Go duration like -5m is relative to base); they
// are rounded to the microsecond. Watts are in [0, MaxSignalWatts]; period
// is a Go duration of whole microseconds; duty defaults to 0.5.
func ParseSignal(spec string, base time.Time) (SignalSpec, error) {
	var s SignalSpec
	f, err := specFields(spec, "nodes", "kind", "watts", "from", "to", "low", "high", "period", "duty", "start", "stop", "origin")
	if err != nil {
		return s, err
	}
	s.Nodes = splitList(f["nodes"])
	if len(s.Nodes) == 0 {
		return s, errors.New("no nodes")
	}
	s.Kind = SignalKind(strings.ToLower(f["kind"]))
	var params []string
	switch s.Kind {
	case SignalConstant:
		params = []string{"watts"}
	case SignalRamp:
		params = []string{"from", "to", "period"}
	case SignalSquare:
		params = []string{"low", "high", "period", "duty"}
	case "":
		return s, errors.New("no kind (constant, ramp or square)")
	default:
		return s, fmt.Errorf("unknown kind %q (want constant, ramp or square)", f["kind"])
	}
	for _, k := range []string{"watts", "from", "to", "low", "high", "period", "duty", "origin"} {
		if _, ok := f[k]; ok && !contains(params, k) && (k != "origin" || s.Kind == SignalConstant) {
			return s, fmt.Errorf("%s does not apply to kind %s", k, s.Kind)
		}
	}
	num := func(k string, dst *float64) error {
		v, ok := f[k]
		if !ok {
			if k == "duty" {
				*dst = 0.5
				return nil
			}
			return fmt.Errorf("%s missing", k)
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("%s=%q: not a number", k, v)
		}
		if k == "duty" && x == 0 {
			return errors.New("duty=0: want a fraction in (0, 1]")
		}
		*dst = x
		return nil
	}
	dsts := map[string]*float64{"watts": &s.Watts, "from": &s.From, "to": &s.To, "low": &s.Low, "high": &s.High, "duty": &s.Duty}
	for _, k := range params {
		if k == "period" {
			v, ok := f[k]
			if !ok {
				return s, errors.New("period missing")
			}
			if s.Period, err = time.ParseDuration(v); err != nil || s.Period <= 0 || s.Period%time.Microsecond != 0 {
				return s, fmt.Errorf("period=%q: want a positive Go duration of whole microseconds (10s, 500ms)", v)
			}
			continue
		}
		if err := num(k, dsts[k]); err != nil {
			return s, err
		}
	}
	if s.Start, s.Stop, err = specBounds(f, base); err != nil {
		return s, err
	}
	if v, ok := f["origin"]; ok {
		if strings.EqualFold(v, "start") {
			if s.Start.IsZero() {
				return s, errors.New("origin=start without start")
			}
			s.Origin = s.Start
		} else if s.Origin, err = specTime("origin", v, base); err != nil {
			return s, err
		}
	}
	if err := s.Validate(); err != nil {
		return s, err
	}
	return s, nil
}

// Gap removes every generated row of Nodes (only of Metrics when not empty)
// with a timestamp in [Start, Stop), as if the meter was down: own series,
// series of devices aliased to the nodes (wattmetre ports, PDU outlets,
// switch ports, also when queried by device id), 1 Hz means, raw frames,
// multi-PSU sums and summary buckets (which aggregate the remaining rows).
// POSTed rows are kept.
type Gap struct {
	Nodes   []string
	Metrics []string // metric ids; empty = every metric of the nodes
	// Start and Stop bound the gap (Stop zero = open-ended); they are used
	// at microsecond precision (rounded).
	Start, Stop time.Time
}

// Validate checks the gap: nodes given, Stop after Start.
func (g Gap) Validate() error {
	if len(g.Nodes) == 0 {
		return errors.New("no nodes")
	}
	if !g.Stop.IsZero() && !g.Stop.Round(time.Microsecond).After(g.Start.Round(time.Microsecond)) {
		return errors.New("stop must be after start")
	}
	return nil
}

// String renders the gap in the --gap syntax, times absolute (UTC).
func (g Gap) String() string {
	s := "nodes=" + strings.Join(g.Nodes, ",")
	if len(g.Metrics) > 0 {
		s += ";metrics=" + strings.Join(g.Metrics, ",")
	}
	s += ";start=" + fmtTime(g.Start)
	if !g.Stop.IsZero() {
		s += ";stop=" + fmtTime(g.Stop)
	}
	return s
}

// ParseGap parses a --gap spec:
//
//	nodes=taurus-7,taurus-8;start=-5m;stop=-4m;metrics=wattmetre_power_watt
//
// start defaults to base, no stop = open-ended, no metrics = every metric of
// the nodes. Times as in ParseSignal.
func ParseGap(spec string, base time.Time) (Gap, error) {
	var g Gap
	f, err := specFields(spec, "nodes", "metrics", "start", "stop")
	if err != nil {
		return g, err
	}
	g.Nodes = splitList(f["nodes"])
	g.Metrics = splitList(f["metrics"])
	if _, ok := f["start"]; !ok {
		f["start"] = "0s"
	}
	if g.Start, g.Stop, err = specBounds(f, base); err != nil {
		return g, err
	}
	return g, g.Validate()
}

// sigPhase is a signal applied to a node over [s, e) (µs).
type sigPhase struct {
	sig  Signal
	s, e int64
}

// boundsUs converts optional bounds to µs (negInf/posInf when zero).
func boundsUs(start, stop time.Time) (int64, int64) {
	s, e := negInf, posInf
	if !start.IsZero() {
		s = start.Round(time.Microsecond).UnixMicro()
	}
	if !stop.IsZero() {
		e = stop.Round(time.Microsecond).UnixMicro()
	}
	return s, e
}

// signalAt returns the signal applying at t (µs), or nil.
func (n *nodeModel) signalAt(t int64) *Signal {
	for i := range n.sigs {
		if p := &n.sigs[i]; t >= p.s && t < p.e {
			return &p.sig
		}
	}
	return nil
}

// signalOver returns the signal applying over all of [a, b) (µs), or nil.
func (n *nodeModel) signalOver(a, b int64) *Signal {
	for i := range n.sigs {
		if p := &n.sigs[i]; a >= p.s && b <= p.e {
			return &p.sig
		}
	}
	return nil
}

// addSignal adds a signal phase, failing when it overlaps another.
func (n *nodeModel) addSignal(sp SignalSpec) error {
	s, e := boundsUs(sp.Start, sp.Stop)
	for _, p := range n.sigs {
		if s < p.e && p.s < e {
			return fmt.Errorf("node %s: overlapping signals", n.uid)
		}
	}
	sig := sp.Signal
	sig.Duty = sig.duty()
	n.sigs = append(n.sigs, sigPhase{sig: sig, s: s, e: e})
	sort.Slice(n.sigs, func(i, j int) bool { return n.sigs[i].s < n.sigs[j].s })
	return nil
}

// gapIntervals returns the merged, sorted gap intervals of a series.
func gapIntervals(gaps []Gap, node, metric string) []interval {
	var ivs []interval
	for _, g := range gaps {
		if !containsNode(g.Nodes, node) || (len(g.Metrics) > 0 && !contains(g.Metrics, metric)) {
			continue
		}
		s, e := boundsUs(g.Start, g.Stop)
		ivs = append(ivs, interval{s, e})
	}
	sort.Slice(ivs, func(i, j int) bool { return ivs[i].s < ivs[j].s })
	var out []interval
	for _, iv := range ivs {
		if n := len(out); n > 0 && iv.s <= out[n-1].e {
			out[n-1].e = max(out[n-1].e, iv.e)
			continue
		}
		out = append(out, iv)
	}
	return out
}

func containsNode(nodes []string, uid string) bool {
	for _, n := range nodes {
		if cutFQDN(n) == uid {
			return true
		}
	}
	return false
}
