package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/alumet-go/alumet-agent/pipeline"
)

// PhasePrefix starts a line of the measured command's stdout that marks
// the beginning of a phase: "ALUMET_PHASE <name>".
const PhasePrefix = "ALUMET_PHASE"

// SocketEnv is set in the measured command's environment to the socket of
// its agent, so that `alumet-agent mark` inside it reaches the right agent.
const SocketEnv = "ALUMET_AGENT_SOCKET"

// maxPhaseName bounds a phase name (bytes).
const maxPhaseName = 128

// Mark is a phase mark: the phase Name begins at Time.
type Mark struct {
	Name string
	Time time.Time
}

// CheckPhaseName validates a phase name: 1 to 128 bytes of printable
// UTF-8, surrounding spaces removed.
func CheckPhaseName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", errors.New("empty phase name")
	case len(name) > maxPhaseName:
		return "", fmt.Errorf("phase name longer than %d bytes", maxPhaseName)
	case !utf8.ValidString(name):
		return "", errors.New("phase name is not valid UTF-8")
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return "", fmt.Errorf("phase name %q has a control character", name)
		}
	}
	return name, nil
}

// phaseScanner passes the command's stdout through unchanged, as soon as
// it is read, and reports the ALUMET_PHASE lines it sees (at the time the
// line's end is read: a command that buffers its stdout must flush it).
type phaseScanner struct {
	out    io.Writer
	onMark func(Mark)
	onBad  func(line string, err error)
	now    func() time.Time
	line   []byte // the current line's beginning, up to maxLine bytes
	long   bool   // the current line is longer than maxLine: not a mark
}

const maxLine = len(PhasePrefix) + 1 + maxPhaseName + 64

// errOutputGone: the agent's own stdout is closed (`| head`).
var errOutputGone = errors.New("stdout closed")

// copy reads r until EOF or an error, writing everything to the output. A
// pseudo-terminal's EIO (its last writer closed) is its end of file. When
// the output fails (the reader of our stdout went away), copy stops with
// errOutputGone: the caller closes r, so the command meets the broken pipe
// at its next write, as it would have without the agent in between.
func (s *phaseScanner) copy(r io.Reader) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			s.scan(chunk)
			if _, werr := s.out.Write(chunk); werr != nil {
				return errOutputGone
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, syscall.EIO) {
				s.endLine()
				return nil
			}
			return err
		}
	}
}

func (s *phaseScanner) scan(chunk []byte) {
	for len(chunk) > 0 {
		i := bytes.IndexByte(chunk, '\n')
		part := chunk
		if i >= 0 {
			part = chunk[:i]
		}
		if !s.long {
			if len(s.line)+len(part) > maxLine {
				s.long, s.line = true, s.line[:0]
			} else {
				s.line = append(s.line, part...)
			}
		}
		if i < 0 {
			return
		}
		s.endLine()
		chunk = chunk[i+1:]
	}
}

func (s *phaseScanner) endLine() {
	line, long := s.line, s.long
	s.line, s.long = s.line[:0], false
	if long || !bytes.HasPrefix(line, []byte(PhasePrefix)) {
		return
	}
	rest := bytes.TrimSuffix(line[len(PhasePrefix):], []byte("\r"))
	if len(rest) > 0 && rest[0] != ' ' && rest[0] != '\t' {
		return // ALUMET_PHASEX...: not a mark
	}
	name, err := CheckPhaseName(string(rest))
	if err != nil {
		if s.onBad != nil {
			s.onBad(string(line), err)
		}
		return
	}
	s.onMark(Mark{Name: name, Time: s.now()})
}

// phases publishes the phase marks of the command (PhaseMark events for the
// current run). A nil *phases does nothing: phases are off.
type phases struct {
	a      *Agent
	ctx    context.Context
	log    *slog.Logger
	lines  bool // the command's stdout is read for ALUMET_PHASE lines
	server *markServer
	sigs   chan os.Signal // SIGPIPE, caught so that a closed stdout does not kill the agent
	mu     sync.Mutex     // held while a run starts, so that its marks follow its start event
	run    int            // the current run's index; -1 between runs
	once   sync.Once
}

// errNoRun answers a mark that comes between runs or after the last one.
var errNoRun = errors.New("no run in progress (cooldown, or the command has ended): mark ignored")

// startPhases opens the mark socket when marks are on, and has the
// command's stdout read for ALUMET_PHASE lines when lines is on too; a
// failure to open the socket only costs the marks of alumet-agent mark.
func (a *Agent) startPhases(ctx context.Context, marks, lines bool, log *slog.Logger) *phases {
	if !marks {
		return nil
	}
	p := &phases{a: a, ctx: context.WithoutCancel(ctx), log: log, lines: lines, run: -1, sigs: make(chan os.Signal, 1)}
	if lines {
		// The agent copies the command's output to its own stdout: when
		// that is a pipe whose reader left (| head), the write must fail
		// with EPIPE rather than kill the agent before the data is
		// written. A caught signal is reset to its default in the command.
		signal.Notify(p.sigs, syscall.SIGPIPE)
		go func() {
			for range p.sigs {
			}
		}()
	}
	srv, err := listenMarks(func(m Mark) error { return p.mark(m, -1) }, func(err error) { log.Warn("alumet-agent mark: " + err.Error()) })
	if err != nil {
		still := "no phase can be marked"
		if lines {
			still = fmt.Sprintf("phases can still be marked with %s lines on stdout", PhasePrefix)
		}
		log.Warn(fmt.Sprintf("Cannot open the socket of alumet-agent mark (%s): %v", still, err))
	} else {
		p.server = srv
		log.Debug("Phase marks accepted on " + srv.path)
	}
	return p
}

// beginRun makes i the current run and holds the marks back until
// startedRun, called once its start event is published.
func (p *phases) beginRun(i int) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.run = i
}

func (p *phases) startedRun() {
	if p == nil {
		return
	}
	p.mu.Unlock()
}

// endRun stops taking marks for the current run (before its end event).
func (p *phases) endRun() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.run = -1
	p.mu.Unlock()
}

// mark publishes a phase mark of the current run; run >= 0 is the run the
// mark comes from (the stdout of that run's command: a background process
// of an earlier run does not mark a later one), -1 any (the socket).
func (p *phases) mark(m Mark, run int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run < 0 || (run >= 0 && run != p.run) {
		p.log.Warn(fmt.Sprintf("Phase mark %q outside of its run (during a cooldown or after the end): ignored.", m.Name))
		return errNoRun
	}
	p.log.Info(fmt.Sprintf("Phase %q begins", m.Name))
	if err := p.a.Publish(p.ctx, pipeline.Event{Kind: pipeline.PhaseMark, Time: m.Time, Phase: m.Name, Run: p.run}); err != nil {
		p.log.Warn(fmt.Sprintf("Phase mark %q: %v", m.Name, err))
		return err
	}
	return nil
}

// env is the environment entry that points the command's `alumet-agent
// mark` to this agent.
func (p *phases) env() string {
	if p == nil || p.server == nil {
		return ""
	}
	return SocketEnv + "=" + p.server.path
}

func (p *phases) close() {
	if p == nil {
		return
	}
	p.once.Do(func() {
		if p.server != nil {
			p.server.close()
		}
	})
}
