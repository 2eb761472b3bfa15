package agent

import "unsafe"

// Pointers for ioctl arguments.

func pointerTo(p *int32) unsafe.Pointer            { return unsafe.Pointer(p) }
func pointerToU32(p *uint32) unsafe.Pointer        { return unsafe.Pointer(p) }
func pointerToWinsize(p *[4]uint16) unsafe.Pointer { return unsafe.Pointer(p) }
