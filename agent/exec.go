package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
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
	// Signals are the agent's SIGINT/SIGTERM/SIGHUP: while the command
	// runs they are forwarded to its process group; afterwards the first
	// one cuts the fetch short (what was fetched is written).
	Signals *Interrupts
	// Repeat runs the command that many times, each run its own window
	// with its index in the events (and so in a run attribute of every
	// point); 0 runs it once, untagged.
	Repeat int
	// Cooldown is the pause between runs when no idle level is known;
	// CooldownMax bounds the wait for the power to be back to the idle
	// level when one is (0: DefaultCooldownMax).
	Cooldown, CooldownMax time.Duration
	// Marks accepts phase marks from `alumet-agent mark` on the agent's
	// socket ($ALUMET_AGENT_SOCKET in the command's environment); the
	// command's stdio stays the agent's.
	Marks bool
	// PhaseLines also reads the ALUMET_PHASE lines of the command's stdout,
	// which is then a pipe (or a pseudo-terminal) the agent copies to its
	// own stdout: asked for (exec --phases, energy-report's phases = true),
	// never the default, since the command then sees another stdout. It
	// needs Marks (the phases go where the marks go).
	PhaseLines bool
}

// DefaultCooldownMax bounds the wait for the idle level between runs.
const DefaultCooldownMax = 5 * time.Minute

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

// Exec runs the measured command between a start and an end event (N
// times with Repeat, cooling down between runs), then stops the agent, and
// returns the exit code the agent must exit with.
func (a *Agent) Exec(ctx context.Context, o ExecOptions) int {
	log := logging.Target(a.log, TargetExec)
	if err := CheckExec(); err != nil {
		log.Error(err.Error())
		_ = a.Stop()
		return 1
	}
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
	becomeSubreaper()
	if code, ok := a.preflight(ctx, o.Signals.C(), log); !ok {
		return code
	}
	if o.PhaseLines && !o.Marks {
		log.Warn(fmt.Sprintf("--phases: phases are measured by energy-report, which is not enabled: the command's %s lines are not read.", PhasePrefix))
	}
	ph := a.startPhases(ctx, o.Marks, o.Marks && o.PhaseLines, log)
	defer ph.close()

	runs := max(o.Repeat, 1)
	var last runResult
	var cut os.Signal // the signal that stopped a series of runs early
	agentFailed := false
	for i := 1; i <= runs; i++ {
		index := 0
		if o.Repeat > 0 {
			index = i
			log.Info(fmt.Sprintf("Run %d of %d", i, runs))
		}
		res := a.runOnce(ctx, path, o, index, ph, log)
		if res.spawnCode != 0 {
			if i > 1 {
				log.Error(fmt.Sprintf("Run %d could not be started: runs 1 to %d were measured, their data is written.", i, i-1))
			}
			_ = a.Stop()
			return res.spawnCode
		}
		last = res
		agentFailed = agentFailed || res.agentFailed
		switch {
		case i == runs:
		case res.signals > 0:
			log.Warn(fmt.Sprintf("Interrupted during run %d: the remaining %d runs are not started.", i, runs-i))
			cut = res.lastSignal
			i = runs
		case res.childCode != 0 && !o.IgnoreExitCode:
			log.Warn(fmt.Sprintf("Run %d failed (exit code %d): the remaining %d runs are not started (use --ignore-exit-code to go on).", i, res.childCode, runs-i))
			i = runs
		default:
			if sig := a.cooldown(ctx, o, i, log); sig != nil {
				cut = sig
				i = runs
			}
		}
	}
	// From now on a signal cannot cut anything short any more: the agent
	// writes what it fetched, and only SIGKILL can lose it.
	defer a.sayLaterSignals(o.Signals)()
	if last.fetchCut != nil {
		cut = last.fetchCut
	}
	ph.close()
	own := a.Finish(agentFailed)
	code := ExitCode(last.childCode, last.status, own, o.IgnoreExitCode, logging.Target(a.log, TargetAgent))
	defer func() { a.SayExit(code) }()
	if ss, ok := cut.(syscall.Signal); ok && (code == 0 || code == ExitIncomplete) {
		// A partial series (or fetch) must not pass for a complete one in a script.
		code = 128 + int(ss)
		what := "The series of runs"
		if last.fetchCut != nil {
			what = "The fetch"
		}
		logging.Target(a.log, TargetAgent).Warn(fmt.Sprintf("%s was cut short by %s: exiting with %d.", what, signalName(ss), code))
	}
	return code
}

// preflight runs the sources' checks before the command is spawned. A
// signal meanwhile means the user does not want the command run any more:
// it is never started then. ok is false when Exec must return code.
func (a *Agent) preflight(ctx context.Context, signals <-chan os.Signal, log *slog.Logger) (code int, ok bool) {
	preCtx, cancelPre := context.WithCancel(ctx)
	earlySig := make(chan os.Signal, 1)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		select {
		case sig := <-signals:
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
			return 128 + int(ss), false
		}
		return 1, false
	default:
	}
	if preErr != nil {
		log.Error(fmt.Sprintf("Pre-flight check failed, the command was not started:\n%v", preErr))
		_ = a.Stop()
		return 1, false
	}
	return 0, true
}

// runResult is what one run of the command gave.
type runResult struct {
	spawnCode   int // non-zero: the command could not be started
	childCode   int
	status      *os.ProcessState
	agentFailed bool
	signals     int       // signals received while it ran or its data was fetched
	lastSignal  os.Signal // the last of them
	fetchCut    os.Signal // the signal that cut the fetch of its data short
}

// runOnce spawns the command, publishes the start event, waits for the
// command while forwarding signals, then publishes the end event (whose
// handlers fetch and queue the run's data).
func (a *Agent) runOnce(ctx context.Context, path string, o ExecOptions, index int, ph *phases, log *slog.Logger) runResult {
	cmd := exec.Command(path, o.Argv[1:]...)
	cmd.Args[0] = o.Argv[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	var foreground bool
	cmd.SysProcAttr, foreground = commandAttr()
	if env := ph.env(); env != "" {
		cmd.Env = append(os.Environ(), env)
	}
	stdout, err := ph.pipeStdout(cmd, index)
	if err != nil {
		log.Warn(fmt.Sprintf("Cannot read the command's stdout for %s lines (phases from it are not marked): %v", PhasePrefix, err))
	}

	// The marks of this run wait until its start event is published.
	ph.beginRun(index)
	startTime := time.Now()
	if err := cmd.Start(); err != nil {
		if foreground {
			takeTerminal()
		}
		ph.startedRun()
		ph.endRun()
		stdout.abort()
		switch {
		case errors.Is(err, syscall.ENOEXEC):
			log.Error(fmt.Sprintf("Failed to spawn '%s': %v. Hint: a script needs a first line like #!/bin/sh", o.Argv[0], err))
			return runResult{spawnCode: ExitNotExecutable}
		case errors.Is(err, fs.ErrPermission):
			log.Error(fmt.Sprintf("Failed to spawn '%s': %v. Hint: try chmod +x %s", o.Argv[0], err, o.Argv[0]))
			return runResult{spawnCode: ExitNotExecutable}
		}
		log.Error(fmt.Sprintf("Failed to spawn '%s': %v", o.Argv[0], err))
		return runResult{spawnCode: ExitNotFound}
	}
	stdout.started()
	pid := cmd.Process.Pid
	log.Info(fmt.Sprintf("Child process '%s' spawned with pid %d.", o.Argv[0], pid))
	consumer := []measure.Consumer{{Kind: measure.KindProcess, ID: fmt.Sprint(pid)}}
	var res runResult
	if err := a.Publish(ctx, pipeline.Event{Kind: pipeline.StartConsumerMeasurement, Time: startTime, Consumers: consumer, Command: o.Argv, Run: index}); err != nil {
		log.Error(fmt.Sprintf("Start event failed: %v", err))
		res.agentFailed = true
	}
	ph.startedRun()

	waitDone := make(chan error, 1)
	go func() { waitDone <- cmd.Wait() }()
	var waitErr error
	// With the terminal, Ctrl+Z stops the command's group, which the shell
	// does not see (it waits for the agent): the command would hang
	// stopped. It is resumed instead.
	var stopCheck <-chan time.Time
	if foreground {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		stopCheck = t.C
	}
	toldStop := false
wait:
	for {
		select {
		case waitErr = <-waitDone:
			break wait
		case sig := <-o.Signals.C():
			res.signals++
			res.lastSignal = sig
			a.forward(pid, sig, res.signals)
		case <-stopCheck:
			if groupStopped(pid) {
				_ = signalGroup(pid, syscall.SIGCONT)
				if !toldStop {
					toldStop = true
					log.Warn("The command was stopped (Ctrl+Z?): it is resumed, since a measured command cannot be suspended. Ctrl+C ends it.")
				}
			}
		}
	}
	endTime := time.Now()
	if foreground {
		takeTerminal()
	}
	a.endTree(pid, log)
	// The marks printed just before the exit are in the pipe: read them
	// before the end event (a background process that keeps the pipe open
	// does not hold the agent back more than a moment). Later marks of this
	// run are ignored.
	stdout.wait(500 * time.Millisecond)
	var warnings []string
	if w := stdout.exitBurst(startTime, endTime); w != "" {
		if index > 0 {
			log.Warn(fmt.Sprintf("Run %d: %s", index, w))
		} else {
			log.Warn(w)
		}
		warnings = append(warnings, w)
	}
	ph.endRun()

	res.status = cmd.ProcessState
	if res.status == nil {
		log.Error(fmt.Sprintf("Waiting for the child failed: %v", waitErr))
		res.agentFailed = true
	}
	code, desc := childExit(res.status)
	res.childCode = code
	if index == 0 || index == max(o.Repeat, 1) {
		log.Info(fmt.Sprintf("Child process exited with %s, Alumet will now stop.", desc))
	} else {
		log.Info(fmt.Sprintf("Child process exited with %s (run %d of %d).", desc, index, o.Repeat))
	}
	log.Info("Publishing EndConsumerMeasurement event")
	// The first signal from now on cuts the fetch short: no more waiting
	// for Kwollect nor retrying, what was fetched is written (and with runs
	// left, the remaining ones are not started).
	said := func(sig os.Signal) {
		if index > 0 && index < o.Repeat {
			log.Warn(fmt.Sprintf("%s received while fetching the data of run %d: what was fetched is written, and the remaining runs are not started.", signalName(sig), index))
			return
		}
		logging.Target(a.log, TargetAgent).Warn(interruptNote(sig))
	}
	later := func(sig os.Signal) { logging.Target(a.log, TargetAgent).Warn(laterNote(sig)) }
	fctx, release := o.Signals.Until(ctx, said, later)
	for _, w := range warnings {
		a.lateWarnings = append(a.lateWarnings, runPrefix(index)+w)
	}
	err = a.Publish(fctx, pipeline.Event{Kind: pipeline.EndConsumerMeasurement, Time: endTime, Consumers: consumer, Command: o.Argv, ExitCode: &code, Run: index, Runs: runsOf(o, index), Warnings: warnings})
	if sig := release(); sig != nil {
		res.signals++
		res.lastSignal = sig
		res.fetchCut = sig
	}
	if err != nil {
		LogFailure(log, "Measurement of the command failed", err)
		res.agentFailed = true
	}
	return res
}

// IdleTolerance is how far above the idle level (relative) the power may
// still be when the next run starts, when the idle level is known.
const IdleTolerance = 0.05

// cooldown waits between run i and the next: until the power is back to at
// most IdleTolerance above the baseline when energy-report knows one (at
// most CooldownMax), else for Cooldown. A signal cancels the remaining
// runs: it returns that signal then.
func (a *Agent) cooldown(ctx context.Context, o ExecOptions, i int, log *slog.Logger) os.Signal {
	limit := o.CooldownMax
	if limit <= 0 {
		limit = DefaultCooldownMax
	}
	log.Info(fmt.Sprintf("Cooling down before run %d of %d", i+1, o.Repeat))
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		idle bool // an element judged the idle level (and logged the outcome)
		err  error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		idle, err := a.pipeline.WaitIdle(wctx, IdleTolerance, limit, o.Cooldown)
		done <- result{idle, err}
	}()
	select {
	case r := <-done:
		switch {
		case r.err != nil:
			log.Warn(fmt.Sprintf("Cooldown: %v; starting the next run anyway.", r.err))
		case r.idle:
		case o.Cooldown > 0:
			log.Info(fmt.Sprintf("Cooldown of %v done (no idle level known)", time.Since(start).Round(100*time.Millisecond)))
		default:
			log.Info("No cooldown: no idle level known (energy-report's baseline) and no --cooldown")
		}
		return nil
	case sig := <-o.Signals.C():
		cancel()
		<-done
		log.Warn(fmt.Sprintf("%s received during the cooldown: the remaining runs are not started.", signalName(sig)))
		return sig
	}
}

// forward passes a signal received by the agent on to the command's
// process group (its whole tree). The third signal kills the group.
func (a *Agent) forward(pgid int, sig os.Signal, count int) {
	log := logging.Target(a.log, TargetAgent)
	if count >= 3 {
		log.Warn("Third signal received: killing the command's process group with SIGKILL.")
		_ = signalGroup(pgid, syscall.SIGKILL)
		return
	}
	log.Info(fmt.Sprintf("%s received: forwarding it to the command's process group; Alumet will fetch and write the data when the command exits.", signalName(sig)))
	ss, ok := sig.(syscall.Signal)
	if !ok {
		ss = syscall.SIGTERM
	}
	_ = signalGroup(pgid, ss)
}

// endTree stops what the command left running in its process group, or
// adopted by the agent, and says so: their power would be drawn outside
// the measured window.
func (a *Agent) endTree(pgid int, log *slog.Logger) {
	found, remain := stopLeftovers(pgid)
	if len(found) == 0 {
		return
	}
	var names []string
	for _, p := range found {
		names = append(names, p.String())
	}
	log.Warn(fmt.Sprintf("The command left %d process(es) running: %s. They were stopped (SIGTERM, then SIGKILL after %v): the measured window ends when the command exits.", len(found), strings.Join(names, ", "), treeGrace))
	if len(remain) > 0 {
		log.Error(fmt.Sprintf("%d process(es) of the command are still running: %s", len(remain), strings.Join(remain, "; ")))
	}
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

// ExitCode decides the agent's exit code from the child's and the agent's
// own (0, 1 or ExitIncomplete, see finish): the child's failure wins.
func ExitCode(childCode int, st *os.ProcessState, own int, ignoreExitCode bool, log interface{ Warn(string, ...any) }) int {
	if st != nil {
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() && !ignoreExitCode {
			log.Warn(fmt.Sprintf("The child was killed by %s; exiting with %d.", signalName(ws.Signal()), childCode))
		} else if childCode != 0 && !ignoreExitCode {
			log.Warn(fmt.Sprintf("The child exited with code %d, so the agent does too; with exec --ignore-exit-code it exits with its own code (0 when the measurement is complete).", childCode))
		}
	}
	switch {
	case ignoreExitCode || childCode == 0:
		return own
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

// SignalName is the usual name of a signal (SIGTERM).
func SignalName(s os.Signal) string { return signalName(s) }

func signalName(s os.Signal) string {
	if ss, ok := s.(syscall.Signal); ok {
		if n, ok := signalNames[ss]; ok {
			return n
		}
		return fmt.Sprintf("signal %d", int(ss))
	}
	return s.String()
}

// runsOf is Event.Runs: the planned runs with --repeat, 0 without.
func runsOf(o ExecOptions, index int) int {
	if index == 0 {
		return 0
	}
	return o.Repeat
}
