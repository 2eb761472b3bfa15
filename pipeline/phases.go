package pipeline

// PhaseLinesWanter is implemented by the elements that take PhaseMark
// events and want the measured command's stdout read for ALUMET_PHASE
// lines (energy-report with phases = true). Reading them makes the
// command's stdout a pipe or a pseudo-terminal that the agent copies, which
// changes what the command sees (isatty, buffering): the agent does it only
// when an element, or the user, asks for it.
type PhaseLinesWanter interface {
	WantsPhaseLines() bool
}

// PhaseReader is implemented by the elements that use PhaseMark events:
// with one, exec opens the socket of `alumet-agent mark` (which changes
// nothing for the command).
type PhaseReader interface {
	ReadsPhases() bool
}

// FileWriter is implemented by the elements that write what was measured
// to files of their own without being outputs (energy-report's summary
// and plot): with one, a run without outputs still writes something.
type FileWriter interface {
	WritesFiles() bool
}

// WantsPhaseLines reports whether an element asks for the measured
// command's stdout to be read for phase marks.
func (p *Pipeline) WantsPhaseLines() bool {
	return p.b.anyElement(func(e any) bool { w, ok := e.(PhaseLinesWanter); return ok && w.WantsPhaseLines() })
}

// ReadsPhases reports whether an element uses phase marks.
func (p *Pipeline) ReadsPhases() bool {
	return p.b.anyElement(func(e any) bool { r, ok := e.(PhaseReader); return ok && r.ReadsPhases() })
}

// WritesFiles reports whether an element writes files of its own.
func (b *Builder) WritesFiles() bool {
	return b.anyElement(func(e any) bool { w, ok := e.(FileWriter); return ok && w.WritesFiles() })
}

// WritesFiles reports whether an element writes files of its own.
func (p *Pipeline) WritesFiles() bool { return p.b.WritesFiles() }

func (b *Builder) anyElement(f func(any) bool) bool {
	for _, e := range b.elements() {
		if f(e) {
			return true
		}
	}
	return false
}
