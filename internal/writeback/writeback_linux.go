package writeback

import (
	"os"

	"golang.org/x/sys/unix"
)

// start asks the kernel to start writing [off, off+n) of f to
// disk, without waiting (sync_file_range with SYNC_FILE_RANGE_WRITE).
func start(f *os.File, off, n int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
	}); err != nil {
		return err
	}
	return serr
}
