package cli

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/alumet-go/alumet-agent/agent"
	"github.com/alumet-go/alumet-agent/internal/logging"
	"github.com/alumet-go/alumet-agent/pipeline"
	"github.com/alumet-go/alumet-agent/plugin"
)

// parseInstant reads RFC 3339 with an offset, epoch seconds (with a
// fraction) or "now".
func parseInstant(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "now" {
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if r, ok := new(big.Rat).SetString(s); ok && !strings.ContainsAny(s, "/eE") {
		ns := new(big.Rat).Mul(r, big.NewRat(1e9, 1))
		q := new(big.Int).Quo(ns.Num(), ns.Denom())
		if q.IsInt64() {
			return time.Unix(0, q.Int64()), nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid time %q: use RFC 3339 with an offset (2025-07-22T13:05:26+02:00 or …Z), epoch seconds (1753182326.5) or now", s)
}

func (g *globals) fetchCmd() *cobra.Command {
	var from, to string
	var jobID int64
	c := &cobra.Command{
		Use:   "fetch (--from TIME --to TIME | --job-id ID)",
		Short: "Run the configured pipeline over a past window and stop",
		Long: "Run the configured pipeline over a past window and stop: the way to get the CSV of yesterday's experiment.\n\n" +
			"TIME is RFC 3339 with an offset (2025-07-22T13:05:26+02:00, 2025-07-22T11:05:26Z), epoch seconds (1753182326.5) or now.\n" +
			"--job-id takes the whole window of an OAR job, as Kwollect knows it (set site, and optionally the nodes, in the config).",
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
			now := time.Now()
			start, err := parseInstant(from, now)
			if err != nil {
				return usageError{fmt.Errorf("--from: %w", err)}
			}
			end, err := parseInstant(to, now)
			if err != nil {
				return usageError{fmt.Errorf("--to: %w", err)}
			}
			if !end.After(start) {
				return usageError{fmt.Errorf("--to (%s) must be after --from (%s)", end.Format(time.RFC3339Nano), start.Format(time.RFC3339Nano))}
			}
			if end.After(now) {
				return usageError{fmt.Errorf("--to is in the future; use exec or run to measure from now on")}
			}
			return g.fetchEvents(cmd, []pipeline.Event{{Kind: pipeline.StartConsumerMeasurement, Time: start}, {Kind: pipeline.EndConsumerMeasurement, Time: end}},
				fmt.Sprintf("Fetching the window [%s, %s]", start.UTC().Format(time.RFC3339Nano), end.UTC().Format(time.RFC3339Nano)))
		},
	}
	c.Flags().StringVar(&from, "from", "", "start of the window")
	c.Flags().StringVar(&to, "to", "", "end of the window")
	c.Flags().Int64Var(&jobID, "job-id", 0, "an OAR job: fetch its whole window")
	return c
}

// fetchEvents runs the pipeline in fetch mode over the given events, then stops.
func (g *globals) fetchEvents(cmd *cobra.Command, events []pipeline.Event, what string) error {
	a, err := g.start(cmd.Context(), plugin.ModeFetch)
	if err != nil {
		return err
	}
	log := logging.Target(g.logger, agent.TargetExec)
	log.Info(what)
	failed := false
	for _, ev := range events {
		if err := a.Publish(cmd.Context(), ev); err != nil {
			log.Error(fmt.Sprintf("Fetching failed: %v", err))
			failed = true
		}
	}
	if code := a.Finish(failed); code != 0 {
		return exitError{code}
	}
	return nil
}
