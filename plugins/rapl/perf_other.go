//go:build !linux

package rapl

import (
	"errors"
	"os"
)

func perfEventOpen(uint32, uint64, int) (*os.File, error) {
	return nil, errors.New("perf_events: rapl is Linux only")
}
