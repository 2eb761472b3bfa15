//go:build linux

package rapl

import (
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// perfEventOpen opens a CPU-wide counting event of the power PMU on cpu.
func perfEventOpen(pmuType uint32, config uint64, cpu int) (*os.File, error) {
	attr := unix.PerfEventAttr{Type: pmuType, Config: config}
	attr.Size = uint32(unsafe.Sizeof(attr))
	fd, err := unix.PerfEventOpen(&attr, -1, cpu, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("perf_event_open", err)
	}
	return os.NewFile(uintptr(fd), "perf_event:"+strconv.Itoa(cpu)), nil
}
