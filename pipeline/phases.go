package pipeline

// PhaseLinesWanter is implemented by the sources that take PhaseMark
// events and want the measured command's stdout read for ALUMET_PHASE
// lines (energy-report with phases = true). Reading them makes the
// command's stdout a pipe or a pseudo-terminal that the agent copies, which
// changes what the command sees (isatty, buffering): the agent does it only
// when an element, or the user, asks for it.
type PhaseLinesWanter interface {
	WantsPhaseLines() bool
}

// WantsPhaseLines reports whether a source asks for the measured command's
// stdout to be read for phase marks.
func (p *Pipeline) WantsPhaseLines() bool {
	for _, s := range p.b.sources {
		if w, ok := s.src.(PhaseLinesWanter); ok && w.WantsPhaseLines() {
			return true
		}
	}
	return false
}
