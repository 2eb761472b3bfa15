// Package writeback asks the kernel to start writing a file's new bytes to
// disk as they are written, so that the fsync that ends an output file
// waits for the last few MiB only, not for a whole window's rows (the CSV
// of a million rows: 70-100 ms of final fsync down to 2-7 ms).
package writeback

import "os"

// Every is how many bytes are written between two requests.
const Every = 8 << 20

// Tracker follows the bytes written to one file and starts their
// writeback every Every bytes. Requests are advice only: the data is as
// durable as before, fsync still decides. After the first failure (not a
// regular file, not Linux) it asks no more. The zero value starts at
// offset 0; Reset sets another (an appended file).
type Tracker struct {
	pos, kicked int64
	off         bool
}

// Reset sets the file offset the next write starts at.
func (t *Tracker) Reset(pos int64) { t.pos, t.kicked = pos, pos }

// Wrote records n bytes written to f at the current offset.
func (t *Tracker) Wrote(f *os.File, n int) {
	t.pos += int64(n)
	if !t.off && t.pos-t.kicked >= Every {
		if start(f, t.kicked, t.pos-t.kicked) != nil {
			t.off = true
		}
		t.kicked = t.pos
	}
}

// Pos is the offset after the last write; Requested where the last request
// ended; Off whether requests stopped after a failure (tests).
func (t *Tracker) Pos() int64       { return t.pos }
func (t *Tracker) Requested() int64 { return t.kicked }
func (t *Tracker) Off() bool        { return t.off }
