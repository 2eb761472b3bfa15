package agent

import "unsafe"

func pointerTo(p *int32) unsafe.Pointer { return unsafe.Pointer(p) }
