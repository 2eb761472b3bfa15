package agent

import (
	"errors"
	"fmt"
	"time"
)

// Measuring a command's process tree (exec) or following a process (watch)
// needs Linux: process groups handed the terminal, a child subreaper, /proc
// and pseudo-terminals (proctree_linux.go, pty_linux.go). Elsewhere (macOS:
// a laptop that fetches Kwollect data, runs energy-report or the emulator)
// both commands fail at once with an UnsupportedError.

// UnsupportedError is a command this agent cannot run on this system.
type UnsupportedError struct {
	Command string // exec, watch
	What    string // what it needs, e.g. "measuring a process tree"
	GOOS    string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("%s: %s is not supported on %s (Linux only)", e.Command, e.What, e.GOOS)
}

// Is makes errors.Is(err, errors.ErrUnsupported) hold.
func (e *UnsupportedError) Is(target error) bool { return target == errors.ErrUnsupported }

// CheckExec fails (with an UnsupportedError) where exec cannot measure a
// command: anywhere but Linux.
func CheckExec() error { return checkProcessTree("exec") }

// CheckWatch fails (with an UnsupportedError) where watch cannot follow a
// process: anywhere but Linux.
func CheckWatch() error { return checkProcessTree("watch") }

// leftProcess is a process of the command's tree still running after the
// command exited.
type leftProcess struct {
	pid  int
	comm string
}

func (p leftProcess) String() string { return fmt.Sprintf("%d (%s)", p.pid, p.comm) }

// treeGrace is how long the processes the command left get after SIGTERM,
// before SIGKILL.
const treeGrace = 2 * time.Second
