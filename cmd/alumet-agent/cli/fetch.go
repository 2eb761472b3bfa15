package cli

import (
	"errors"
	"fmt"
	"math/big"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/alumet-go/alumet-agent/config"
	"github.com/alumet-go/alumet-agent/internal/logging"
	"github.com/alumet-go/alumet-agent/pipeline"
	"github.com/alumet-go/alumet-agent/plugin"
)

// timeForms is the list of --from/--to forms, for errors and --help.
const timeForms = "RFC 3339 with an offset (2026-12-01T20:00:00+01:00, …Z), a local time (2026-12-01T20:00:00, " +
	"'2026-12-01 20:00', 2026-12-01), epoch seconds (1753182326.5), now, now-10m, -10m, or in --to +30m (after --from)"

// localLayouts are the wall-clock forms read in the local time zone, most
// precise first. Go accepts a fraction after the seconds of a layout that has
// none, so "…:05.25" parses with the first ones.
var localLayouts = []string{
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05",
	"2006-01-02T15:04",
	"2006-01-02 15:04",
	"2006-01-02",
}

// instant is a parsed --from/--to value.
type instant struct {
	// at is the instant, unless sinceFrom.
	at time.Time
	// sinceFrom is the "+D" form: D after --from (only --to may use it).
	sinceFrom bool
	offset    time.Duration
	// local is set when the value was a wall-clock time read in the local
	// zone: the log then says which zone it used.
	local bool
}

// parseInstant reads a --from/--to value: RFC 3339 with an offset, a
// wall-clock time without offset in loc, epoch seconds (with a fraction),
// now, now±D, -D (now-D) or +D (after --from); D is a humantime duration
// (config.ParseDuration: 10m, 1h 30m, 90s).
func parseInstant(s string, now time.Time, loc *time.Location) (instant, error) {
	s = strings.TrimSpace(s)
	if s == "now" {
		return instant{at: now}, nil
	}
	if rest, ok := strings.CutPrefix(s, "now"); ok {
		rest = strings.TrimSpace(rest)
		if rest == "" || (rest[0] != '-' && rest[0] != '+') {
			return instant{}, invalidTime(s, fmt.Errorf("expected now, now-D or now+D with a duration D such as 10m"))
		}
		d, err := config.ParseDuration(rest[1:])
		if err != nil {
			return instant{}, invalidTime(s, err)
		}
		if rest[0] == '-' {
			d = -d
		}
		return instant{at: now.Add(d)}, nil
	}
	if s != "" && (s[0] == '-' || s[0] == '+') {
		// Before the epoch form: "-10" is not 1969, it lacks a unit.
		d, err := config.ParseDuration(s[1:])
		if err != nil {
			return instant{}, invalidTime(s, err)
		}
		if s[0] == '-' {
			return instant{at: now.Add(-d)}, nil
		}
		return instant{sinceFrom: true, offset: d}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return instant{at: t}, nil
	}
	// RFC 3339 allows a space for the T.
	if t, err := time.Parse("2006-01-02 15:04:05.999999999Z07:00", s); err == nil {
		return instant{at: t}, nil
	}
	for _, layout := range localLayouts {
		wall, err := time.ParseInLocation(layout, s, time.UTC)
		if err != nil {
			continue
		}
		t, err := inZone(wall, loc)
		if err != nil {
			return instant{}, invalidTime(s, err)
		}
		return instant{at: t, local: true}, nil
	}
	if r, ok := new(big.Rat).SetString(s); ok && !strings.ContainsAny(s, "/eE") {
		ns := new(big.Rat).Mul(r, big.NewRat(1e9, 1))
		q := new(big.Int).Quo(ns.Num(), ns.Denom())
		if q.IsInt64() {
			return instant{at: time.Unix(0, q.Int64())}, nil
		}
	}
	return instant{}, invalidTime(s, errors.New("use "+timeForms))
}

func invalidTime(s string, err error) error { return fmt.Errorf("invalid time %q: %w", s, err) }

// inZone returns the instant when the clocks of loc show wall (a wall-clock
// time given in UTC fields). A time that the clocks skip (spring forward) or
// show twice (fall back) is an error naming the offsets: time.Date would
// pick one silently.
func inZone(wall time.Time, loc *time.Location) (time.Time, error) {
	// Every offset of loc around wall: zones change offset at most a few
	// times a year, so the offsets a day and a half before and after cover
	// both sides of any change near wall.
	var offsets []int
	var found []time.Time
	for _, probe := range []time.Time{wall.Add(-36 * time.Hour), wall, wall.Add(36 * time.Hour)} {
		_, off := probe.In(loc).Zone()
		if slices.Contains(offsets, off) {
			continue
		}
		offsets = append(offsets, off)
		t := wall.Add(-time.Duration(off) * time.Second)
		if _, tOff := t.In(loc).Zone(); tOff == off {
			found = append(found, t)
		}
	}
	text := wall.Format("2006-01-02T15:04:05.999999999")
	switch len(found) {
	case 1:
		return found[0].In(loc), nil
	case 0:
		// The offset in force before the skipped hour, as a starting point.
		before := time.FixedZone("", offsets[0])
		return time.Time{}, fmt.Errorf("the clocks of %s skip %s (a change of offset); give an offset, e.g. %s",
			zoneName(loc), text, time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), wall.Second(), wall.Nanosecond(), before).Format(time.RFC3339Nano))
	default:
		forms := make([]string, len(found))
		for i, t := range found {
			forms[i] = t.In(loc).Format(time.RFC3339Nano)
		}
		return time.Time{}, fmt.Errorf("the clocks of %s show %s twice (a change of offset); give an offset: %s",
			zoneName(loc), text, strings.Join(forms, " or "))
	}
}

// zoneName names loc for the log: time.Local is called "Local", so its name
// comes from $TZ or the /etc/localtime link, as the C library finds it.
func zoneName(loc *time.Location) string {
	if loc != time.Local {
		return loc.String()
	}
	if tz, ok := os.LookupEnv("TZ"); ok {
		if tz = strings.TrimPrefix(tz, ":"); tz != "" {
			return tz
		}
		return "UTC"
	}
	if target, err := os.Readlink("/etc/localtime"); err == nil {
		if _, name, ok := strings.Cut(target, "zoneinfo/"); ok {
			return name
		}
	}
	return "the local time zone"
}

// checkLocalZone fails when $TZ names a zone Go cannot load: time.Local is
// then UTC, and a local time would be read as UTC without a word.
func checkLocalZone() error {
	tz, ok := os.LookupEnv("TZ")
	tz = strings.TrimPrefix(tz, ":")
	if !ok || tz == "" || tz == "UTC" {
		return nil
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return fmt.Errorf("TZ=%q is not a time zone this system knows (%w), so a time without offset cannot be read; "+
			"set TZ to a zone such as Europe/Paris, or give an offset (+01:00, Z)", tz, err)
	}
	return nil
}

// fetchWindow is the resolved window of fetch --from/--to.
type fetchWindow struct {
	start, end time.Time
	// note says how local or relative values were read, for the log ("" if
	// both were absolute).
	note string
}

// resolveWindow parses --from and --to and checks the window: --to after
// --from and not in the future. Errors are usage errors' texts, prefixed by
// the flag.
func resolveWindow(from, to string, now time.Time, loc *time.Location) (fetchWindow, error) {
	start, err := parseInstant(from, now, loc)
	if err != nil {
		return fetchWindow{}, fmt.Errorf("--from: %w", err)
	}
	if start.sinceFrom {
		return fetchWindow{}, fmt.Errorf("--from: %q is a time after --from, which only --to can use; for a time before now, write -%s or now-%s",
			strings.TrimSpace(from), strings.TrimPrefix(strings.TrimSpace(from), "+"), strings.TrimPrefix(strings.TrimSpace(from), "+"))
	}
	end, err := parseInstant(to, now, loc)
	if err != nil {
		return fetchWindow{}, fmt.Errorf("--to: %w", err)
	}
	if end.sinceFrom {
		end.at = start.at.Add(end.offset)
	}
	if (start.local || end.local) && loc == time.Local {
		if err := checkLocalZone(); err != nil {
			return fetchWindow{}, err
		}
	}
	w := fetchWindow{start: start.at, end: end.at}
	if !w.end.After(w.start) {
		return w, fmt.Errorf("--to (%s) must be after --from (%s)", w.end.Format(time.RFC3339Nano), w.start.Format(time.RFC3339Nano))
	}
	if w.end.After(now) {
		return w, fmt.Errorf("--to (%s) is in the future; use exec or run to measure from now on", w.end.UTC().Format(time.RFC3339Nano))
	}
	var notes []string
	relativeToNow := false
	for _, v := range []struct {
		flag, text string
		in         instant
	}{{"from", from, start}, {"to", to, end}} {
		text := strings.TrimSpace(v.text)
		switch {
		case v.in.local:
			notes = append(notes, fmt.Sprintf("%s %s in %s, UTC%s", v.flag, text, zoneName(loc), v.in.at.In(loc).Format("-07:00")))
		case v.in.sinceFrom:
			notes = append(notes, fmt.Sprintf("to %s after from", strings.TrimSpace(text[1:])))
		case strings.HasPrefix(text, "now") || strings.HasPrefix(text, "-"):
			notes = append(notes, v.flag+" "+text)
			relativeToNow = true
		}
	}
	if relativeToNow {
		notes = append(notes, "now = "+now.UTC().Format(time.RFC3339Nano))
	}
	w.note = strings.Join(notes, "; ")
	return w, nil
}

func (g *globals) fetchCmd() *cobra.Command {
	var from, to string
	var jobID int64
	c := &cobra.Command{
		Use:   "fetch <--from <TIME> --to <TIME>|--job-id <ID>>",
		Short: "Run the configured pipeline over a past window and stop",
		Long: "Run the configured pipeline over a past window and stop: the way to get the CSV of yesterday's experiment.\n\n" +
			"TIME is one of:\n" +
			"  2026-12-01T20:00:00+01:00, 2026-12-01T19:00:00Z   RFC 3339 with an offset\n" +
			"  2026-12-01T20:00:00, '2026-12-01 20:00:00',\n" +
			"  2026-12-01T20:00, 2026-12-01                      local time ($TZ, else the system's zone); a time the\n" +
			"                                                    clocks skip or show twice needs an offset\n" +
			"  1753182326.5                                      epoch seconds\n" +
			"  now, now-10m, now+0s, -10m (= now-10m)            relative to now\n" +
			"  +30m (--to only)                                  30 minutes after --from\n" +
			"Durations are humantime: 90s, 10m, 1h 30m, 2d. The log gives the resolved window in UTC.\n" +
			"--job-id takes the whole window of an OAR job, as Kwollect knows it (set site, and optionally the nodes, in the config).\n\n" +
			"Examples:\n" +
			"  alumet-agent --plugins csv,kwollect-input fetch --from '2026-12-01 20:00' --to +30m\n" +
			"  alumet-agent --plugins csv,kwollect-input fetch --from -1h --to now",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if jobID != 0 {
				if from != "" || to != "" {
					return usageError{errors.New("fetch takes either --job-id or --from/--to, not both")}
				}
				return g.fetchEvents(cmd, []pipeline.Event{{Kind: pipeline.EndConsumerMeasurement, Time: time.Now(), JobID: jobID}},
					fmt.Sprintf("Fetching the window of OAR job %d", jobID))
			}
			if from == "" || to == "" {
				return usageError{errors.New("fetch needs --from and --to, or --job-id")}
			}
			w, err := resolveWindow(from, to, time.Now(), time.Local)
			if err != nil {
				return usageError{err}
			}
			what := fmt.Sprintf("Fetching the window [%s, %s]", w.start.UTC().Format(time.RFC3339Nano), w.end.UTC().Format(time.RFC3339Nano))
			if w.note != "" {
				what += " (" + w.note + ")"
			}
			return g.fetchEvents(cmd, []pipeline.Event{{Kind: pipeline.StartConsumerMeasurement, Time: w.start}, {Kind: pipeline.EndConsumerMeasurement, Time: w.end}}, what)
		},
	}
	c.Flags().StringVar(&from, "from", "", "start of the window (TIME)")
	c.Flags().StringVar(&to, "to", "", "end of the window (TIME, or +D after --from)")
	c.Flags().Int64Var(&jobID, "job-id", 0, "an OAR job: fetch its whole window")
	annotate(c.Flags(), "from", annValue, "<TIME>")
	annotate(c.Flags(), "to", annValue, "<TIME>")
	annotate(c.Flags(), "job-id", annValue, "<ID>")
	var runDirPattern string
	addRunDirFlag(c.Flags(), &runDirPattern, true)
	return c
}

// targetFetch is the log target of the fetch command's own lines. It is not
// agent.TargetExec: nothing is executed in fetch mode, and a line under
// "exec" would send a reader looking for a child process.
const targetFetch = "alumet::agent::fetch"

// fetchEvents runs the pipeline in fetch mode over the given events, then stops.
func (g *globals) fetchEvents(cmd *cobra.Command, events []pipeline.Event, what string) error {
	a, ints, err := g.startInterruptible(cmd, plugin.ModeFetch)
	if err != nil {
		return err
	}
	log := logging.Target(g.logger, targetFetch)
	log.Info(what)
	if code := a.FinalFetch(cmd.Context(), ints, log, "Fetching failed", false, events...); code != 0 {
		return exitError{code}
	}
	return nil
}
