package agent

import (
	"fmt"
	"os"
	"syscall"
)

// openPTY opens a pseudo-terminal pair: the master, read by the agent, and
// the slave, the command's stdout, with the window size of term.
func openPTY(term *os.File) (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	var unlock int32
	var n uint32
	if err := ioctlFile(m, syscall.TIOCSPTLCK, uintptr(pointerTo(&unlock))); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("unlocking the pseudo-terminal: %w", err)
	}
	if err := ioctlFile(m, syscall.TIOCGPTN, uintptr(pointerToU32(&n))); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("naming the pseudo-terminal: %w", err)
	}
	sl, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	var ws [4]uint16 // struct winsize
	if ioctlFile(term, syscall.TIOCGWINSZ, uintptr(pointerToWinsize(&ws))) == nil {
		_ = ioctlFile(sl, syscall.TIOCSWINSZ, uintptr(pointerToWinsize(&ws)))
	}
	return m, sl, nil
}
