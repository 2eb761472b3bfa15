package pipeline

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
)

// LossError is the error of an output that knows how many of the points it
// was given it did not store: the pipeline counts those as lost, rather
// than the whole buffer whose Write failed.
type LossError interface {
	error
	LostPoints() int64
}

// FailureReporter is implemented by outputs that can fail between two
// writes (a background flush). Before the first Write the pipeline gives
// them report, which they call (from any goroutine, without holding a lock
// the pipeline could wait for) when they fail on their own: the pipeline
// knows at once rather than at the next Write or at Close. An output that
// reported a failure this way need not return it again from Write or Close.
type FailureReporter interface {
	ReportFailuresTo(report func(error))
}

// OutputFailure is an output that failed: from then on the pipeline gives
// it no more points, and counts them as lost.
type OutputFailure struct {
	Output string // the output's name
	Err    error  // its error
	// Lost is the number of points lost so far: those the output said it
	// could not store (or the whole buffer of the failing Write, when its
	// error is not a LossError) and every point it was not given
	// afterwards. It is final once Stop has returned.
	Lost int64
	// LostKnown is false when the output failed at Close without saying
	// what it lost (an fsync error, say): Lost is then a lower bound.
	LostKnown bool
}

func (f OutputFailure) Error() string {
	switch {
	case !f.LostKnown && f.Lost == 0:
		return fmt.Sprintf("output %s failed: %v: an unknown number of points may be lost", f.Output, f.Err)
	case !f.LostKnown:
		return fmt.Sprintf("output %s failed: %v: at least %s points lost", f.Output, f.Err, GroupDigits(f.Lost))
	}
	return fmt.Sprintf("output %s failed: %v: %s points lost", f.Output, f.Err, GroupDigits(f.Lost))
}

func (f OutputFailure) Unwrap() error { return f.Err }

// failures is the failure state of the outputs.
type failures struct {
	mu     sync.Mutex
	first  chan struct{} // closed at the first failure
	closed bool
}

// outputState is the failure state of one output, guarded by failures.mu.
type outputState struct {
	err       error
	reported  int64 // the points the output said it lost (or the failing buffer's)
	dropped   int64 // the points the pipeline did not give it afterwards
	lostKnown bool
}

// OutputFailed returns a channel closed at the first output failure, when
// it happens (a Write error, a failed background flush of an output that
// is a FailureReporter, a Close error): an output that fails stores nothing
// more, so a caller polling sources for it can stop. Safe for concurrent
// use; the same channel every time.
func (p *Pipeline) OutputFailed() <-chan struct{} { return p.fail.first }

// OutputFailures returns the outputs that failed, in the order outputs were
// added, with the points lost so far (final once Stop has returned). Empty
// when every output stored everything it was given. Safe for concurrent use.
func (p *Pipeline) OutputFailures() []OutputFailure {
	p.fail.mu.Lock()
	defer p.fail.mu.Unlock()
	var out []OutputFailure
	for _, o := range p.b.outputs {
		if o.state.err == nil {
			continue
		}
		out = append(out, OutputFailure{
			Output:    o.name,
			Err:       o.state.err,
			Lost:      o.state.reported + o.state.dropped,
			LostKnown: o.state.lostKnown,
		})
	}
	return out
}

// outputFailed records that o failed with err, bufPoints being the points
// of the buffer whose Write failed (0 at Close or for a reported failure).
// Only the first error of an output is kept; a later LossError updates the
// count the output reported.
func (p *Pipeline) outputFailed(o *namedOutput, err error, bufPoints int, known bool) {
	var le LossError
	isLoss := errors.As(err, &le)
	p.fail.mu.Lock()
	st := &o.state
	first := st.err == nil
	switch {
	case isLoss:
		st.reported = max(st.reported, le.LostPoints())
		if first {
			st.lostKnown = true
		}
	case first:
		st.reported += int64(bufPoints)
		st.lostKnown = known
	}
	if first {
		st.err = err
		o.dead.Store(true)
		if !p.fail.closed {
			p.fail.closed = true
			close(p.fail.first)
		}
	}
	p.fail.mu.Unlock()
	if first {
		p.logger.Error(fmt.Sprintf("output %s failed, it stores nothing more and its points are counted as lost: %v", o.name, err))
	}
}

// dropped counts n points not given to the failed output o.
func (p *Pipeline) dropped(o *namedOutput, n int) {
	p.fail.mu.Lock()
	o.state.dropped += int64(n)
	p.fail.mu.Unlock()
}

// GroupDigits writes n with its digits in groups of three separated by
// spaces: 12 345.
func GroupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	var b []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			b = append(b, ' ')
		}
		b = append(b, s[i])
	}
	if neg {
		return "-" + string(b)
	}
	return string(b)
}

// Doubter is implemented by transforms and outputs that can tell, once the
// pipeline has stopped, that a result they made is doubtful although every
// source got its data (an energy that cannot be computed from the samples,
// say). The agent says each doubt in the final outcome, so that the last
// line of the log does not read as all good.
type Doubter interface {
	// Doubts is called after Stop; each is one sentence, without its
	// component's name.
	Doubts() []string
}

// Doubts returns the doubts of the transforms and outputs (Doubter), each
// prefixed with its component's name, in the order they were added.
func (p *Pipeline) Doubts() []string {
	var out []string
	add := func(name string, c any) {
		if d, ok := c.(Doubter); ok {
			for _, s := range d.Doubts() {
				out = append(out, name+": "+s)
			}
		}
	}
	for _, t := range p.b.transforms {
		add(t.name, t.t)
	}
	for _, o := range p.b.outputs {
		add(o.name, o.out)
	}
	return out
}
