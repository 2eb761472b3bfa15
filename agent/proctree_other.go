//go:build !linux

package agent

import (
	"os"
	"runtime"
	"syscall"
)

// The process tree primitives of exec, where exec cannot run (CheckExec
// fails first): they do nothing, or fail.

func checkProcessTree(command string) error {
	what := "measuring a process tree"
	if command == "watch" {
		what = "following a process"
	}
	return &UnsupportedError{Command: command, What: what, GOOS: runtime.GOOS}
}

func becomeSubreaper() {}

func commandAttr() (*syscall.SysProcAttr, bool) { return nil, false }

func takeTerminal() {}

func signalGroup(int, syscall.Signal) error { return checkProcessTree("exec") }

func groupStopped(int) bool { return false }

func stopLeftovers(int) (found []leftProcess, remain []string) { return nil, nil }

// openPTY: the pseudo-terminal of exec --phases on a terminal.
func openPTY(*os.File) (master, slave *os.File, err error) { return nil, nil, checkProcessTree("exec") }
