//go:build !linux

package csv

import (
	"errors"
	"os"
)

// startWriteback is Linux-only (sync_file_range); elsewhere the final
// fsync does all the work.
func startWriteback(*os.File, int64, int64) error { return errors.ErrUnsupported }
