package agent

import "unsafe"

// Pointers for ioctl arguments (and unsafe_linux.go).

func pointerToWinsize(p *[4]uint16) unsafe.Pointer { return unsafe.Pointer(p) }
