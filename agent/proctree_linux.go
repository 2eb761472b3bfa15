package agent

import (
	"bytes"
	"errors"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alumet-go/alumet-agent/internal/logging"
)

// The measured command runs in a process group of its own, so that a
// signal reaches its whole tree (a shell's children too) and so that what
// it leaves running can be found. On a terminal where the agent is in the
// foreground, that group gets the terminal: Ctrl+C reaches the command
// once, from the kernel, and the command can read the terminal.

// checkProcessTree says whether exec and watch can run here: on Linux they can.
func checkProcessTree(string) error { return nil }

// becomeSubreaper makes the agent the parent of the command's orphans
// (processes that daemonise or leave their group), so that they can be
// found and stopped at the end, instead of going to init unseen.
func becomeSubreaper() {
	const prSetChildSubreaper = 36
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
}

// commandAttr returns the child's process attributes and whether it gets
// the terminal's foreground.
func commandAttr() (*syscall.SysProcAttr, bool) {
	if foregroundTTY() {
		// SIGTTOU would stop the agent when it writes to the terminal or
		// takes the foreground back while the command has it.
		signal.Ignore(syscall.SIGTTOU)
		return &syscall.SysProcAttr{Setpgid: true, Foreground: true, Ctty: int(os.Stdin.Fd())}, true
	}
	return &syscall.SysProcAttr{Setpgid: true}, false
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

// takeTerminal gives the terminal's foreground back to the agent's group.
func takeTerminal() {
	pgrp := int32(syscall.Getpgrp())
	_, _, _ = syscall.Syscall(syscall.SYS_IOCTL, os.Stdin.Fd(), uintptr(syscall.TIOCSPGRP), uintptr(pointerTo(&pgrp)))
}

// signalGroup sends sig to the process group pgid (the command's tree).
func signalGroup(pgid int, sig syscall.Signal) error {
	return syscall.Kill(-pgid, sig)
}

// groupStopped reports whether a process of group pgid is stopped (by
// job control: Ctrl+Z). Every member is looked at: a shell that vforked
// its child waits uninterruptibly while only the child is stopped.
func groupStopped(pgid int) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, state, _, pgrp, ok := procStat(pid); ok && pgrp == pgid && state == 'T' {
			return true
		}
	}
	return false
}

// procStat reads the fields of /proc/pid/stat the tree search needs.
func procStat(pid int) (comm string, state byte, ppid, pgrp int, ok bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, 0, 0, false
	}
	open, end := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
	if open < 0 || end < open || end+2 >= len(data) {
		return "", 0, 0, 0, false
	}
	fields := strings.Fields(string(data[end+2:]))
	if len(fields) < 3 {
		return "", 0, 0, 0, false
	}
	ppid, _ = strconv.Atoi(fields[1])
	pgrp, _ = strconv.Atoi(fields[2])
	return string(data[open+1 : end]), fields[0][0], ppid, pgrp, true
}

// leftovers lists the live processes of group pgid and the agent's own
// children (orphans of the command adopted by the subreaper), excluding
// zombies, which it reaps.
func leftovers(pgid int) []leftProcess {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []leftProcess
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		comm, state, ppid, pgrp, ok := procStat(pid)
		if !ok || (pgrp != pgid && ppid != self) {
			continue
		}
		if state == 'Z' || state == 'X' {
			if ppid == self {
				var ws syscall.WaitStatus
				_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
			}
			continue
		}
		out = append(out, leftProcess{pid, comm})
	}
	return out
}

// stopLeftovers ends what the command left running when it exited: its
// power would be drawn outside the measured window. It returns the
// processes found, and those still there after SIGKILL (with why).
func stopLeftovers(pgid int) (found []leftProcess, remain []string) {
	found = leftovers(pgid)
	if len(found) == 0 {
		return nil, nil
	}
	send := func(sig syscall.Signal, ps []leftProcess) {
		_ = signalGroup(pgid, sig)
		for _, p := range ps {
			_ = syscall.Kill(p.pid, sig)
		}
	}
	send(syscall.SIGTERM, found)
	deadline := time.Now().Add(treeGrace)
	left := found
	for len(left) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		left = leftovers(pgid)
	}
	if len(left) > 0 {
		send(syscall.SIGKILL, left)
		time.Sleep(100 * time.Millisecond)
		left = leftovers(pgid)
	}
	for _, p := range left {
		why := "it did not end after SIGKILL (stuck in the kernel?)"
		if err := syscall.Kill(p.pid, 0); errors.Is(err, syscall.EPERM) {
			why = "it belongs to another user (setuid?)"
		}
		remain = append(remain, p.String()+": "+why)
	}
	slices.Sort(remain)
	return found, remain
}
