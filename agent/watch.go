package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/alumet-go/alumet-agent/internal/logging"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
)

// watchPollInterval bounds how late the end of a watched process is seen.
const watchPollInterval = 50 * time.Millisecond

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	// The state follows the command name in parentheses, which may hold spaces.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z' && stat[i+2] != 'X'
	}
	return true
}

// CheckPID fails when no process has this pid.
func CheckPID(pid int) error {
	if pid <= 0 || !processAlive(pid) {
		return fmt.Errorf("no running process with pid %d", pid)
	}
	return nil
}

// Watch measures an already running process until it ends (or a signal
// stops the agent), and returns the agent's exit code.
func (a *Agent) Watch(ctx context.Context, pid int, signals *Interrupts) int {
	log := logging.Target(a.log, TargetExec)
	if err := CheckWatch(); err != nil {
		log.Error(err.Error())
		_ = a.Stop()
		return 1
	}
	consumer := []measure.Consumer{{Kind: measure.KindProcess, ID: strconv.Itoa(pid)}}
	failed := false
	if err := a.Publish(ctx, pipeline.Event{Kind: pipeline.StartConsumerMeasurement, Time: time.Now(), Consumers: consumer}); err != nil {
		log.Error(fmt.Sprintf("Start event failed: %v", err))
		failed = true
	}
	log.Info(fmt.Sprintf("Watching process %d.", pid))
	tick := time.NewTicker(watchPollInterval)
	defer tick.Stop()
watch:
	for {
		select {
		case <-tick.C:
			if !processAlive(pid) {
				log.Info(fmt.Sprintf("Process %d has ended, Alumet will now stop.", pid))
				break watch
			}
		case sig := <-signals.C():
			log.Info(fmt.Sprintf("%s received: ending the measurement of process %d now (a second signal cuts the fetch short).", signalName(sig), pid))
			break watch
		}
	}
	end := time.Now()
	log.Info("Publishing EndConsumerMeasurement event")
	return a.FinalFetch(ctx, signals, logging.Target(a.log, TargetExec), fmt.Sprintf("Measurement of process %d failed", pid), failed,
		pipeline.Event{Kind: pipeline.EndConsumerMeasurement, Time: end, Consumers: consumer})
}

// FinalFetch publishes the events (the end event's handlers fetch the
// window), cut short by the first signal, then stops the agent (failed: it
// failed before); it returns the exit code: 128+N when a signal cut the
// fetch short, unless the agent failed otherwise.
func (a *Agent) FinalFetch(ctx context.Context, signals *Interrupts, failLog *slog.Logger, failMsg string, failed bool, events ...pipeline.Event) int {
	log := logging.Target(a.log, TargetAgent)
	fctx, release := signals.Until(ctx, func(sig os.Signal) { log.Warn(interruptNote(sig)) }, func(sig os.Signal) { log.Warn(laterNote(sig)) })
	for _, ev := range events {
		if err := a.Publish(fctx, ev); err != nil {
			LogFailure(failLog, failMsg, err)
			failed = true
		}
	}
	cut := release()
	stopLater := a.sayLaterSignals(signals)
	defer stopLater()
	code := a.Finish(failed)
	if ss, ok := cut.(syscall.Signal); ok && (code == 0 || code == ExitIncomplete) {
		code = 128 + int(ss)
		log.Warn(fmt.Sprintf("The fetch was cut short by %s: exiting with %d.", signalName(ss), code))
		return code
	}
	return a.SayExitCode(code)
}

// sayLaterSignals logs the signals that arrive once nothing can be cut
// short any more (the agent is writing what it fetched), until stop.
func (a *Agent) sayLaterSignals(signals *Interrupts) (stop func()) {
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-signals.C():
				logging.Target(a.log, TargetAgent).Warn(laterNote(sig))
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}

// Run runs until SIGINT, SIGTERM or SIGHUP, or an output fails, then
// fetches what the sources still owe, stops and flushes everything. A
// second signal cuts that fetch short; what was fetched is still written.
func (a *Agent) Run(signals *Interrupts) int {
	log := logging.Target(a.log, TargetAgent)
	select {
	case sig := <-signals.C():
		if sig == os.Interrupt {
			log.Info("Ctrl+C received, shutting down (a second Ctrl+C cuts the last fetch short)...")
		} else {
			log.Info(fmt.Sprintf("%s received, shutting down (a second signal cuts the last fetch short)...", signalName(sig)))
		}
	case <-a.pipeline.OutputFailed():
		// Polling on would fetch what can no longer be stored.
		log.Error("An output failed: stopping the measurement now (the outputs still working get the last fetch).")
	}
	// The end of the run: sources fetch what they still owe (kwollect-input's
	// last window) before the shutdown timer starts.
	return a.FinalFetch(context.Background(), signals, logging.Target(a.log, TargetExec), "Final fetch failed", false,
		pipeline.Event{Kind: pipeline.EndConsumerMeasurement, Time: time.Now()})
}
