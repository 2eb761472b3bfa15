// ALUMET_PHASE lines: the measured command's stdout copied through a pipe
// or a pseudo-terminal, and the burst of lines at its exit.

package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/alumet-go/alumet-agent/internal/logging"
)

// stdoutPipe is the command's stdout when its phase lines are read: a pipe
// (or, when the agent's stdout is a terminal, a pseudo-terminal, so that the
// command still sees a terminal: colours, line-buffered output) read by a
// phaseScanner that copies it to the agent's stdout. A nil one does nothing.
type stdoutPipe struct {
	r, w *os.File
	pty  bool // r is a pseudo-terminal's master
	done chan struct{}
	sc   *phaseScanner
	log  *slog.Logger

	mu    sync.Mutex
	reads []time.Time // when each mark was read, in order
}

// pipeStdout makes the command's stdout a pipe (or a pseudo-terminal)
// scanned for the marks of run, when phase lines are read.
func (p *phases) pipeStdout(cmd *exec.Cmd, run int) (*stdoutPipe, error) {
	if p == nil || !p.lines {
		return nil, nil
	}
	var r, w *os.File
	var err error
	pty := logging.IsTerminal(os.Stdout)
	if pty {
		r, w, err = openPTY(os.Stdout)
	} else {
		r, w, err = os.Pipe()
	}
	if err != nil {
		return nil, err
	}
	cmd.Stdout = w
	sp := &stdoutPipe{r: r, w: w, pty: pty, done: make(chan struct{}), log: p.log}
	sp.sc = &phaseScanner{
		out: os.Stdout,
		onMark: func(m Mark) {
			sp.mu.Lock()
			sp.reads = append(sp.reads, m.Time)
			sp.mu.Unlock()
			_ = p.mark(m, run)
		},
		onBad: func(line string, err error) {
			p.log.Warn(fmt.Sprintf("Ignoring %q: %v", line, err))
		},
		now: time.Now,
	}
	return sp, nil
}

// exitBurst says whether the marks read so far came in a burst at the
// command's exit (see exitBurst): the returned warning is "" when not.
func (s *stdoutPipe) exitBurst(start, exit time.Time) string {
	if s == nil {
		return ""
	}
	s.mu.Lock()
	n := exitBurst(s.reads, start, exit)
	s.mu.Unlock()
	if n == 0 {
		return ""
	}
	return BurstWarning(n)
}

// Marks in a burst at the exit. A command whose stdout is not a terminal
// (the pipe the agent reads) usually buffers it in blocks (C stdio,
// Python): its ALUMET_PHASE lines reach the agent together when it flushes
// at its exit, each timed then, so the phases are wrong (the energy lands
// in the part before the first mark) without anything looking amiss. Such
// a burst has a shape of its own: at least two marks read within burstGap
// of one another, the first no earlier than exitWindow before the exit (or
// after it, drained from the pipe), in a run of at least burstMinRun.
const (
	burstGap    = 10 * time.Millisecond
	exitWindow  = 100 * time.Millisecond
	burstMinRun = 10 * exitWindow
)

// exitBurst returns how many of the marks read at reads (in read order)
// make a burst at the exit, 0 when they do not: the last marks, each read
// within burstGap of the previous one, when there are at least two of
// them, the first read at most exitWindow before exit, and the run lasted
// at least burstMinRun. A short run whose marks all come at once is not
// told from a buffered one: it is not flagged.
func exitBurst(reads []time.Time, start, exit time.Time) int {
	if len(reads) < 2 || exit.Sub(start) < burstMinRun {
		return 0
	}
	i := len(reads) - 1
	for i > 0 && reads[i].Sub(reads[i-1]) <= burstGap {
		i--
	}
	n := len(reads) - i
	if n < 2 || reads[i].Before(exit.Add(-exitWindow)) {
		return 0
	}
	return n
}

// BurstWarning is the warning about n phase marks that arrived in a burst
// at the command's exit, with the fixes.
func BurstWarning(n int) string {
	return fmt.Sprintf("%d phase marks arrived together when the command exited: its stdout is block-buffered (not a terminal), so the phases are wrong. "+
		"Run it with PYTHONUNBUFFERED=1 or python3 -u, stdbuf -oL, or call `alumet-agent mark NAME`", n)
}

// started closes the agent's copy of the write end and starts copying.
func (s *stdoutPipe) started() {
	if s == nil {
		return
	}
	_ = s.w.Close()
	if s.pty {
		// The command gets the terminal's SIGWINCH (it is in its
		// foreground group): its pseudo-terminal takes the new size.
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		go func() {
			defer signal.Stop(winch)
			for {
				select {
				case <-winch:
					var ws [4]uint16
					if ioctlFile(os.Stdout, syscall.TIOCGWINSZ, uintptr(pointerToWinsize(&ws))) == nil {
						_ = ioctlFile(s.r, syscall.TIOCSWINSZ, uintptr(pointerToWinsize(&ws)))
					}
				case <-s.done:
					return
				}
			}
		}()
	}
	go func() {
		defer close(s.done)
		defer s.r.Close()
		if err := s.sc.copy(s.r); errors.Is(err, errOutputGone) {
			s.log.Warn("The agent's stdout is closed: the command's output is not copied any more (it will get a broken pipe); the measurement goes on.")
		}
	}()
}

// abort releases the pipe of a command that did not start.
func (s *stdoutPipe) abort() {
	if s == nil {
		return
	}
	_ = s.w.Close()
	_ = s.r.Close()
}

// wait waits for the end of the command's output, at most d.
func (s *stdoutPipe) wait(d time.Duration) {
	if s == nil {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
	}
}

// ioctlFile runs an ioctl on f through SyscallConn: f.Fd() would switch f
// to blocking mode under a goroutine reading it.
func ioctlFile(f *os.File, req, arg uintptr) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	if err := rc.Control(func(fd uintptr) { ierr = ioctl(fd, req, arg) }); err != nil {
		return err
	}
	return ierr
}

func ioctl(fd, req, arg uintptr) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, req, arg); errno != 0 {
		return errno
	}
	return nil
}
