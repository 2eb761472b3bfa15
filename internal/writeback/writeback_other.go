//go:build !linux

package writeback

import (
	"errors"
	"os"
)

// start is Linux-only (sync_file_range); elsewhere the final
// fsync does all the work.
func start(*os.File, int64, int64) error { return errors.ErrUnsupported }
