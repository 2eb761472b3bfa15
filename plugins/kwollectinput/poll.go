// Run mode: polling Kwollect as the rows come.

package kwollectinput

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/alumet-go/alumet-agent/kwollect"
	"github.com/alumet-go/alumet-agent/pipeline"
)

// finalRequest asks the run-mode poller for its last fetch, up to end;
// ctx cuts it short (a signal).
type finalRequest struct {
	ctx  context.Context
	end  time.Time
	done chan error
}

// poll runs run mode: every poll_interval it asks the session for
// [window start, now]; the session only queries what it has not verified
// yet, per (node, metric), so polls leave no gap and no duplicate, also
// across an API outage or when one site lags more than another. The last
// fetch happens at the end event the agent publishes before stopping (so
// shutdown_timeout does not cut it), or at the stop request otherwise.
func (s *Source) poll(ctx context.Context, out pipeline.Emitter) error {
	exact := s.start
	start := windowStart(exact)
	fetchCtx := context.WithoutCancel(ctx)
	opts := s.sessionOptions(fetchCtx)
	// A poll is small (the summary at the end says what was fetched); the
	// last fetch, which may wait for the tail, shows its progress.
	prog := newProgress(s.log)
	var finalPhase atomic.Bool
	opts.OnProgress = func(p kwollect.Progress) {
		if finalPhase.Load() {
			prog.update(p)
		}
	}
	// A poll gives up quickly: the next one catches up from what is verified.
	opts.Retry = kwollect.DefaultRetryPolicy()
	opts.Retry.MaxAttempts = 3
	opts.Retry.Max = s.cfg.PollInterval.D()
	sess, err := s.client.NewSession(s.plan(), opts)
	if err != nil {
		return err
	}
	s.prepare(fetchCtx, sess)
	var fetched kwollect.Report
	count := func(r kwollect.Report) {
		fetched.Rows += r.Rows
		fetched.Queries += r.Queries
		fetched.Retries += r.Retries
		fetched.FailedChunks = r.FailedChunks // only the latest failures matter: later polls retry them
	}
	sink := s.sink(fetchCtx, out, 0)
	final := func(ctx context.Context, end time.Time) error {
		fetchCtx, cancel := s.budget(ctx, start, end)
		defer cancel()
		s.lastFailure.Store("")
		s.prior.newWindow()
		herr := s.fetchHistory(fetchCtx, start)
		rep, err := sess.Fetch(fetchCtx, start, end, sink)
		count(rep)
		var partial *kwollect.PartialError
		if err != nil && !errors.As(err, &partial) {
			s.reportFatal(exact, end, 0, fetched, sess.Coverage(exact, end), why(fetchCtx, err))
			return fmt.Errorf("final Kwollect fetch: %w", err)
		}
		deadline := s.tailDeadline(fetchCtx)
		s.probe(fetchCtx, sess, start, end, sess.Coverage(start, end), opts.Periods)
		prog.detail = func() string { return s.waitingFor(sess, start, end, deadline) }
		finalPhase.Store(true)
		tail, terr := s.complete(fetchCtx, sess, start, end, deadline, opts.Periods, sink)
		prog.finish()
		fetched.Rows += tail.Rows
		fetched.Queries += tail.Queries
		fetched.Retries += tail.Retries
		if terr != nil && !errors.As(terr, &partial) {
			s.reportFatal(exact, end, 0, fetched, sess.Coverage(exact, end), why(fetchCtx, terr))
		} else {
			s.report(exact, end, 0, fetched, kwollect.Report{FailedChunks: tail.FailedChunks}, sess.Coverage(exact, end))
		}
		return errors.Join(err, terr, herr)
	}
	ticker := time.NewTicker(s.cfg.PollInterval.D())
	defer ticker.Stop()
	failures := 0
	polled := false
	for {
		select {
		case <-ticker.C:
			if s.finalWanted.Load() {
				continue // the final request is on its way
			}
			polled = true
			// The final request cuts a poll short (a silent API would
			// hold it for minutes): the final fetch covers the rest.
			pctx, cancelPoll := context.WithCancel(ctx)
			s.pollCancel.Store(&cancelPoll)
			if s.finalWanted.Load() {
				cancelPoll() // asked for between the check above and now
			}
			rep, err := sess.Fetch(pctx, start, s.clock(), sink)
			s.pollCancel.Store(nil)
			cut := pctx.Err() != nil && ctx.Err() == nil
			cancelPoll()
			count(rep)
			switch {
			case cut:
			case err == nil:
				if failures > 0 {
					s.log.Info(fmt.Sprintf("Kwollect is back after %d failed polls; caught up", failures))
				}
				failures = 0
			case ctx.Err() != nil:
				// stopping: the final fetch covers it
			case !kwollect.IsRetryable(err) && !isPartial(err):
				s.log.Error(fmt.Sprintf("Kwollect refuses the query and polling cannot recover: %v\nFix the configuration and restart the agent; kwollect-input measures nothing until then.", err))
				return fmt.Errorf("polling Kwollect: %w", err)
			default:
				failures++
				s.log.Warn(fmt.Sprintf("Kwollect poll failed (%d in a row), the next poll will catch up: %v", failures, err))
			}
		case req := <-s.finals:
			req.done <- final(req.ctx, req.end)
			<-ctx.Done()
			return nil
		case <-ctx.Done():
			// Stopped without the agent's end event. Before the first poll,
			// the start was interrupted or failed: nothing was measured,
			// and a last fetch would only hold the stop up against a
			// silent API.
			if !polled {
				return nil
			}
			return final(context.WithoutCancel(ctx), s.clock())
		}
	}
}

func isPartial(err error) bool {
	var partial *kwollect.PartialError
	return errors.As(err, &partial)
}
