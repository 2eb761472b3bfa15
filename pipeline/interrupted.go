package pipeline

import (
	"os"
	"syscall"
)

// Interrupted is the cause of a context cancelled by a signal (SIGINT,
// SIGTERM, SIGHUP): the user wants the agent to stop waiting and write what
// it has. Sources say it in their outcomes.
type Interrupted struct {
	Signal os.Signal
	Name   string // SIGTERM
}

func (e *Interrupted) Error() string { return "interrupted by " + e.Name }

// Code is the exit code the signal stands for: 128+N.
func (e *Interrupted) Code() int {
	if ss, ok := e.Signal.(syscall.Signal); ok {
		return 128 + int(ss)
	}
	return 1
}
