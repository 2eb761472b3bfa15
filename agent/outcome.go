package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/alumet-go/alumet-agent/internal/logging"
	"github.com/alumet-go/alumet-agent/pipeline"
)

// ExitIncomplete is the agent's exit code when the command (if any)
// succeeded but a requested series is not complete: partial, empty or
// failed. Everything fetched is written, and the log says how to fetch the
// rest later.
const ExitIncomplete = 3

// ResumeFunc returns the command line that fetches [from, to] (of run
// run, 0 without exec --repeat) later with the same configuration.
type ResumeFunc func(run int, from, to time.Time) string

// SetResume sets how the agent spells the command that fetches a window
// later (the command line knows the flags it was given).
func (a *Agent) SetResume(f ResumeFunc) { a.resume = f }

// EpochArg formats t as epoch seconds for --from/--to: whole seconds
// without a fraction, else to the nanosecond, trailing zeros cut.
func EpochArg(t time.Time) string {
	sec, ns := t.Unix(), t.Nanosecond()
	if ns == 0 {
		return strconv.FormatInt(sec, 10)
	}
	return strings.TrimRight(fmt.Sprintf("%d.%09d", sec, ns), "0")
}

// runPrefix prefixes the messages about run i of exec --repeat.
func runPrefix(run int) string {
	if run == 0 {
		return ""
	}
	return fmt.Sprintf("run %d: ", run)
}

// Finish stops the agent, then says the outcome of every requested series
// in the last lines of the log, and returns the code of the agent's own
// fate: 1 if data may be lost (shutdown errors) or the agent failed,
// ExitIncomplete if a series is not complete, else 0.
func (a *Agent) Finish(agentFailed bool) int {
	stopErr := a.Stop()
	incomplete := a.tellOutcomes()
	switch {
	case stopErr != nil || len(a.pipeline.OutputFailures()) > 0:
		return 1
	case incomplete:
		return ExitIncomplete
	case agentFailed:
		return 1
	}
	return 0
}

// resumeLine is the command that fetches [from, to] of run later.
func (a *Agent) resumeLine(run int, from, to time.Time) string {
	if a.resume == nil {
		return "alumet-agent fetch --from " + EpochArg(from) + " --to " + EpochArg(to)
	}
	return a.resume(run, from, to)
}

// maxListed bounds the series listed one per line in the final outcome.
const maxListed = 20

// tellOutcomes logs what every source obtained for each requested series,
// and reports whether any is not complete.
func (a *Agent) tellOutcomes() (incomplete bool) {
	all := a.pipeline.Outcomes().All()
	log := logging.Target(a.log, TargetAgent)
	for _, w := range a.lateWarnings {
		// Said when it happened too; repeated here so that the end of the
		// log does not read as all good.
		log.Warn("Warning: " + w)
	}
	doubts := a.pipeline.Doubts()
	if fs := a.pipeline.OutputFailures(); len(fs) > 0 {
		// Whatever the sources fetched, an output lost some of it: the
		// measurement is not complete where it was meant to be stored.
		var b strings.Builder
		fmt.Fprintf(&b, "Measurement INCOMPLETE: %d output(s) failed, what they were to write is lost:", len(fs))
		for _, f := range fs {
			b.WriteString("\n  " + f.Error())
		}
		if len(all) > 0 {
			fmt.Fprintf(&b, "\nThe sources fetched %d samples of %d series; fix the output (disk space, permissions) and fetch the window again:", samples(all), len(all))
			seen := map[pipeline.Interval]bool{}
			for _, oc := range all {
				if !seen[oc.Window] {
					seen[oc.Window] = true
					b.WriteString("\n  " + a.resumeLine(oc.Run, oc.Window.From, oc.Window.To))
				}
			}
		}
		sayDoubts(log, doubts)
		log.Error(b.String())
		return true
	}
	if len(all) == 0 {
		sayDoubts(log, doubts)
		return false
	}
	var bad []pipeline.Outcome
	for _, oc := range all {
		if oc.Status.Bad() {
			bad = append(bad, oc)
		}
	}
	name := func(oc pipeline.Outcome) string {
		n := oc.Node + "/" + oc.Metric
		if oc.Run > 0 {
			n = fmt.Sprintf("run %d, %s", oc.Run, n)
		}
		return n
	}
	if len(bad) == 0 {
		// The largest lag per node, over its metrics and runs.
		var nodes []string
		lag := map[string]time.Duration{}
		for _, oc := range all {
			if !oc.LagKnown {
				continue
			}
			if _, ok := lag[oc.Node]; !ok {
				nodes = append(nodes, oc.Node)
			}
			lag[oc.Node] = max(lag[oc.Node], oc.Lag)
		}
		var lags []string
		for _, n := range nodes {
			lags = append(lags, n+" "+pipeline.HumanDuration(lag[n]))
		}
		msg := fmt.Sprintf("Measurement complete: %d series, every one covers its whole window.", len(all))
		if len(all) == 1 {
			msg = fmt.Sprintf("Measurement complete: %s covers the whole window (%d samples).", name(all[0]), all[0].Samples)
		}
		if len(lags) > 0 {
			msg += " Kwollect was behind by at most: " + strings.Join(lags, ", ") + "."
		}
		if !a.writes() {
			msg += " No output is enabled: nothing is written."
		}
		an := anomalies(all)
		if an != "" {
			// Complete, but a reader of the numbers should know.
			msg += " But the API's answers had anomalies: " + an + "."
		}
		if len(doubts) > 0 {
			// The data is complete, a result made of it is not: the last
			// line says so.
			if an == "" {
				msg += " But"
			} else {
				msg += " And"
			}
			msg += " a result is doubtful: " + strings.Join(doubts, "; ")
		}
		if an != "" || len(doubts) > 0 {
			log.Warn(msg)
			return false
		}
		log.Info(msg)
		return false
	}
	counts := map[pipeline.Status]int{}
	for _, oc := range all {
		counts[oc.Status]++
	}
	var parts []string
	for _, st := range []pipeline.Status{pipeline.StatusFailed, pipeline.StatusEmpty, pipeline.StatusPartial, pipeline.StatusComplete} {
		if n := counts[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	written := "what was fetched is written"
	switch {
	case samples(all) == 0:
		written = "no sample was fetched, nothing is written"
	case !a.writes():
		written = "no output is enabled: nothing is written"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Measurement INCOMPLETE: %d of %d series are not complete (%s); %s.", len(bad), len(all), strings.Join(parts, ", "), written)
	for i, oc := range bad {
		if i == maxListed {
			fmt.Fprintf(&b, "\n  … and %d more", len(bad)-maxListed)
			break
		}
		fmt.Fprintf(&b, "\n  %s: %s", name(oc), oc.Describe())
	}
	// One command per window that lacks something.
	type window struct {
		run      int
		from, to time.Time
	}
	var windows []window
	seen := map[window]bool{}
	failed, later := false, false
	for _, oc := range bad {
		w := window{oc.Run, oc.Window.From, oc.Window.To}
		if !seen[w] {
			seen[w] = true
			windows = append(windows, w)
		}
		failed = failed || oc.Status == pipeline.StatusFailed
		later = later || oc.FetchedLaterOK
	}
	resume := a.resumeLine
	what := "the window"
	if len(windows) > 1 {
		what = "each window"
	}
	switch {
	case failed:
		fmt.Fprintf(&b, "\nTo fetch %s again once the API answers:", what)
	case later:
		fmt.Fprintf(&b, "\nTo fetch %s again later (Kwollect may have ingested the rest by then):", what)
	default:
		fmt.Fprintf(&b, "\nTo fetch %s again (it helps only once the cause above is fixed):", what)
	}
	for _, w := range windows {
		b.WriteString("\n  " + resume(w.run, w.from, w.to))
	}
	if an := anomalies(all); an != "" {
		b.WriteString("\nThe API's answers also had anomalies: " + an + ".")
	}
	sayDoubts(log, doubts)
	log.Error(b.String())
	return true
}

// sayDoubts logs each doubt of the pipeline's components as a warning.
func sayDoubts(log *slog.Logger, doubts []string) {
	for _, d := range doubts {
		log.Warn("Doubtful result: " + d)
	}
}

// anomalies joins the distinct anomalies the sources saw in their answers.
func anomalies(all []pipeline.Outcome) string {
	var out []string
	seen := map[string]bool{}
	for _, oc := range all {
		if oc.Anomalies != "" && !seen[oc.Anomalies] {
			seen[oc.Anomalies] = true
			out = append(out, oc.Anomalies)
		}
	}
	return strings.Join(out, "; ")
}

// SayExit ends the log with the exit code when it means an incomplete
// measurement (the other codes are said where they are decided).
func (a *Agent) SayExit(code int) {
	if code == ExitIncomplete {
		logging.Target(a.log, TargetAgent).Error(fmt.Sprintf("Exit code %d: the measurement is incomplete.", ExitIncomplete))
	}
}

// SayExitCode is SayExit returning code.
func (a *Agent) SayExitCode(code int) int {
	a.SayExit(code)
	return code
}

// toldInOutcomes reports whether err is only a failed fetch whose every
// consequence the outcomes at the end of the log say (its source marks it
// with an OutcomesTold method): it is logged at debug level where it
// happens, not as an error line of its own.
func toldInOutcomes(err error) bool {
	var told interface{ OutcomesTold() bool }
	return errors.As(err, &told) && told.OutcomesTold()
}

// LogFailure logs a measurement failure: at error level, unless the
// outcomes at the end say it.
func LogFailure(log *slog.Logger, msg string, err error) {
	if toldInOutcomes(err) {
		log.Debug(fmt.Sprintf("%s: %v", msg, err))
		return
	}
	log.Error(fmt.Sprintf("%s: %v", msg, err))
}

// samples is the number of samples the sources obtained, over every
// series.
func samples(all []pipeline.Outcome) int {
	n := 0
	for _, oc := range all {
		n += oc.Samples
	}
	return n
}
