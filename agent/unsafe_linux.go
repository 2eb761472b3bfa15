package agent

import "unsafe"

// Pointers for the ioctl arguments of proctree_linux.go and pty_linux.go.

func pointerTo(p *int32) unsafe.Pointer     { return unsafe.Pointer(p) }
func pointerToU32(p *uint32) unsafe.Pointer { return unsafe.Pointer(p) }
