package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/alumet-go/alumet-agent/internal/logging"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
)

// ExecOptions are the options of `exec`.
type ExecOptions struct {
	Argv           []string // PROGRAM ARGS...
	IgnoreExitCode bool
	// Signals delivers SIGINT/SIGTERM received by the agent; they are
	// forwarded to the child while the agent keeps going.
	Signals <-chan os.Signal
}

// Exit codes of spawn failures, as shells use them.
const (
	ExitNotExecutable = 126
	ExitNotFound      = 127
)

// SpawnError is a failure to start the measured command.
type SpawnError struct {
	Code int // 126 or 127
	Msg  string
}

func (e *SpawnError) Error() string { return e.Msg }

// resolveProgram finds PROGRAM like a shell would and explains failures.
func resolveProgram(prog string) (string, error) {
	path, err := exec.LookPath(prog)
	if err == nil {
		return path, nil
	}
	if errors.Is(err, exec.ErrDot) {
		// Found through a relative PATH entry (PATH=.:…), as a shell would run it.
		return "./" + filepath.Clean(path), nil
	}
	if strings.Contains(prog, "/") {
		st, serr := os.Stat(prog)
		switch {
		case errors.Is(serr, fs.ErrNotExist):
			return "", &SpawnError{ExitNotFound, fmt.Sprintf("Command '%s' not found: no such file.", prog)}
		case errors.Is(serr, fs.ErrPermission):
			dir := filepath.Dir(prog)
			return "", &SpawnError{ExitNotExecutable, fmt.Sprintf("Cannot access '%s': permission denied. Hint: try chmod +rx %s", prog, dir)}
		case serr == nil && st.IsDir():
			return "", &SpawnError{ExitNotExecutable, fmt.Sprintf("'%s' is a directory, not a program.", prog)}
		case serr == nil:
			return "", &SpawnError{ExitNotExecutable, fmt.Sprintf("'%s' is not executable. Hint: try chmod +x %s", prog, prog)}
		}
		return "", &SpawnError{ExitNotFound, fmt.Sprintf("Cannot run '%s': %v", prog, serr)}
	}
	msg := fmt.Sprintf("Command '%s' not found in PATH.", prog)
	if st, serr := os.Stat(prog); serr == nil && !st.IsDir() {
		msg += fmt.Sprintf(" Hint: a file '%s' exists in the current directory, did you mean './%s'?", prog, prog)
	}
	return "", &SpawnError{ExitNotFound, msg}
}

// Exec runs the measured command between a start and an end event, then
// stops the agent, and returns the exit code the agent must exit with.
func (a *Agent) Exec(ctx context.Context, o ExecOptions) int {
	log := logging.Target(a.log, TargetExec)
	path, err := resolveProgram(o.Argv[0])
	if err != nil {
		log.Error(err.Error())
		_ = a.Stop() // nothing was measured; the spawn failure decides the code
		var se *SpawnError
		if errors.As(err, &se) {
			return se.Code
		}
		return 1
	}
	// A signal before the spawn (during the pre-flight check, say) means the
	// user does not want the command run any more: never start it then.
	preCtx, cancelPre := context.WithCancel(ctx)
	earlySig := make(chan os.Signal, 1)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		select {
		case sig := <-o.Signals:
			earlySig <- sig
			cancelPre()
		case <-preCtx.Done():
		}
	}()
	preErr := a.pipeline.Preflight(preCtx)
	cancelPre()
	<-watchDone
	select {
	case sig := <-earlySig:
		log.Warn(fmt.Sprintf("%s received before the command started: not starting it.", signalName(sig)))
		_ = a.Stop()
		if ss, ok := sig.(syscall.Signal); ok {
			return 128 + int(ss)
		}
		return 1
	default:
	}
	if preErr != nil {
		log.Error(fmt.Sprintf("Pre-flight check failed, the command was not started:\n%v", preErr))
		_ = a.Stop()
		return 1
	}
	cmd := exec.Command(path, o.Argv[1:]...)
	cmd.Args[0] = o.Argv[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr

	startTime := time.Now()
	if err := cmd.Start(); err != nil {
		_ = a.Stop()
		switch {
		case errors.Is(err, syscall.ENOEXEC):
			log.Error(fmt.Sprintf("Failed to spawn '%s': %v. Hint: a script needs a first line like #!/bin/sh", o.Argv[0], err))
			return ExitNotExecutable
		case errors.Is(err, fs.ErrPermission):
			log.Error(fmt.Sprintf("Failed to spawn '%s': %v. Hint: try chmod +x %s", o.Argv[0], err, o.Argv[0]))
			return ExitNotExecutable
		}
		log.Error(fmt.Sprintf("Failed to spawn '%s': %v", o.Argv[0], err))
		return ExitNotFound
	}
	pid := cmd.Process.Pid
	log.Info(fmt.Sprintf("Child process '%s' spawned with pid %d.", o.Argv[0], pid))
	consumer := []measure.Consumer{{Kind: measure.KindProcess, ID: fmt.Sprint(pid)}}
	agentFailed := false
	if err := a.Publish(ctx, pipeline.Event{Kind: pipeline.StartConsumerMeasurement, Time: startTime, Consumers: consumer, Command: o.Argv}); err != nil {
		log.Error(fmt.Sprintf("Start event failed: %v", err))
		agentFailed = true
	}

	waitDone := make(chan error, 1)
	go func() { waitDone <- cmd.Wait() }()
	received := 0
	var waitErr error
wait:
	for {
		select {
		case waitErr = <-waitDone:
			break wait
		case sig := <-o.Signals:
			received++
			a.forward(cmd.Process, sig, received)
		}
	}
	endTime := time.Now()
	// Signals from now on must not kill the agent before the data is written.
	go func() {
		for sig := range o.Signals {
			logging.Target(a.log, TargetAgent).Warn(fmt.Sprintf("%s received while fetching and writing the data: ignored, the agent stops as soon as the data is written.", signalName(sig)))
		}
	}()

	status := cmd.ProcessState
	if status == nil {
		log.Error(fmt.Sprintf("Waiting for the child failed: %v", waitErr))
		agentFailed = true
	}
	childCode, desc := childExit(status)
	log.Info(fmt.Sprintf("Child process exited with %s, Alumet will now stop.", desc))
	log.Info("Publishing EndConsumerMeasurement event")
	if err := a.Publish(ctx, pipeline.Event{Kind: pipeline.EndConsumerMeasurement, Time: endTime, Consumers: consumer, Command: o.Argv, ExitCode: &childCode}); err != nil {
		log.Error(fmt.Sprintf("Measurement of the command failed: %v", err))
		agentFailed = true
	}
	if err := a.Stop(); err != nil {
		agentFailed = true
	}
	return ExitCode(childCode, status, agentFailed, o.IgnoreExitCode, logging.Target(a.log, TargetAgent))
}

// forward passes a signal received by the agent on to the child. A Ctrl+C
// typed on the terminal already reached the child (same foreground group),
// so SIGINT is not sent twice then. The third signal kills the child.
func (a *Agent) forward(p *os.Process, sig os.Signal, count int) {
	log := logging.Target(a.log, TargetAgent)
	if count >= 3 {
		log.Warn("Third signal received: killing the child with SIGKILL.")
		_ = p.Signal(syscall.SIGKILL)
		return
	}
	if sig == os.Interrupt && foregroundTTY() {
		log.Info("Ctrl+C received: the child got it from the terminal; waiting for it to exit, then Alumet will fetch and write the data.")
		return
	}
	log.Info(fmt.Sprintf("%s received: forwarding it to the child; Alumet will fetch and write the data when it exits.", signalName(sig)))
	_ = p.Signal(sig)
}

// foregroundTTY reports whether stdin is a terminal whose foreground process
// group is ours, in which case the terminal's signals reach the child too.
func foregroundTTY() bool {
	if !logging.IsTerminal(os.Stdin) {
		return false
	}
	var pgrp int32
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, os.Stdin.Fd(), uintptr(syscall.TIOCGPGRP), uintptr(pointerTo(&pgrp)))
	return errno == 0 && int(pgrp) == syscall.Getpgrp()
}

// childExit returns the code the child's exit stands for and Alumet's text for it.
func childExit(st *os.ProcessState) (int, string) {
	if st == nil {
		return 1, "an unknown status"
	}
	ws, ok := st.Sys().(syscall.WaitStatus)
	if ok && ws.Signaled() {
		sig := ws.Signal()
		return 128 + int(sig), fmt.Sprintf("signal: %d (%s)", int(sig), signalName(sig))
	}
	return st.ExitCode(), fmt.Sprintf("exit status: %d", st.ExitCode())
}

// ExitCode decides the agent's exit code from the child's and the agent's fate.
func ExitCode(childCode int, st *os.ProcessState, agentFailed, ignoreExitCode bool, log interface{ Warn(string, ...any) }) int {
	if st != nil {
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() && !ignoreExitCode {
			log.Warn(fmt.Sprintf("The child was killed by %s; exiting with %d.", signalName(ws.Signal()), childCode))
		} else if childCode != 0 && !ignoreExitCode {
			log.Warn(fmt.Sprintf("The child exited with code %d; use exec --ignore-exit-code to make the agent exit with 0.", childCode))
		}
	}
	switch {
	case ignoreExitCode || childCode == 0:
		if agentFailed {
			return 1
		}
		return 0
	default:
		return childCode
	}
}

var signalNames = map[syscall.Signal]string{
	syscall.SIGHUP: "SIGHUP", syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT", syscall.SIGILL: "SIGILL",
	syscall.SIGTRAP: "SIGTRAP", syscall.SIGABRT: "SIGABRT", syscall.SIGBUS: "SIGBUS", syscall.SIGFPE: "SIGFPE",
	syscall.SIGKILL: "SIGKILL", syscall.SIGUSR1: "SIGUSR1", syscall.SIGSEGV: "SIGSEGV", syscall.SIGUSR2: "SIGUSR2",
	syscall.SIGPIPE: "SIGPIPE", syscall.SIGALRM: "SIGALRM", syscall.SIGTERM: "SIGTERM", syscall.SIGXCPU: "SIGXCPU",
}

func signalName(s os.Signal) string {
	if ss, ok := s.(syscall.Signal); ok {
		if n, ok := signalNames[ss]; ok {
			return n
		}
		return fmt.Sprintf("signal %d", int(ss))
	}
	return s.String()
}
