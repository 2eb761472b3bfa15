package rundir

import "golang.org/x/sys/unix"

// readClock asks the kernel for the clock's state; nil if it cannot.
func readClock() *ClockState {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return nil
	}
	offset := float64(tx.Offset) / 1e6 // µs, unless STA_NANO
	if tx.Status&unix.STA_NANO != 0 {
		offset = float64(tx.Offset) / 1e9
	}
	return &ClockState{
		Synchronized: state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0,
		OffsetS:      offset,
		MaxErrorS:    float64(tx.Maxerror) / 1e6,
		EstErrorS:    float64(tx.Esterror) / 1e6,
		Source:       "adjtimex(2)",
	}
}
