package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
func (a *Agent) Watch(ctx context.Context, pid int, signals <-chan os.Signal) int {
	log := logging.Target(a.log, TargetExec)
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
		case sig := <-signals:
			log.Info(fmt.Sprintf("%s received: ending the measurement of process %d now.", signalName(sig), pid))
			break watch
		}
	}
	end := time.Now()
	go func() {
		for sig := range signals {
			logging.Target(a.log, TargetAgent).Warn(fmt.Sprintf("%s received while fetching and writing the data: ignored.", signalName(sig)))
		}
	}()
	log.Info("Publishing EndConsumerMeasurement event")
	if err := a.Publish(ctx, pipeline.Event{Kind: pipeline.EndConsumerMeasurement, Time: end, Consumers: consumer}); err != nil {
		LogFailure(log, fmt.Sprintf("Measurement of process %d failed", pid), err)
		failed = true
	}
	return a.SayExitCode(a.Finish(failed))
}

// Run runs until SIGINT or SIGTERM, then stops and flushes everything. A
// second signal during the shutdown exits at once with 1.
func (a *Agent) Run(signals <-chan os.Signal, exit func(int)) int {
	sig := <-signals
	log := logging.Target(a.log, TargetAgent)
	if sig == os.Interrupt {
		log.Info("Ctrl+C received, shutting down...")
	} else {
		log.Info(fmt.Sprintf("%s received, shutting down...", signalName(sig)))
	}
	go func() {
		s := <-signals
		log.Warn(fmt.Sprintf("%s received during shutdown: exiting now, data may be lost.", signalName(s)))
		exit(1)
	}()
	// The end of the run: sources fetch what they still owe (kwollect-input's
	// last window) before the shutdown timer starts.
	failed := false
	if err := a.Publish(context.Background(), pipeline.Event{Kind: pipeline.EndConsumerMeasurement, Time: time.Now()}); err != nil {
		LogFailure(logging.Target(a.log, TargetExec), "Final fetch failed", err)
		failed = true
	}
	return a.SayExitCode(a.Finish(failed))
}
