package agent

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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

// copy reads r until EOF or an error, writing everything to the output.
func (s *phaseScanner) copy(r io.Reader) error {
	buf := make([]byte, 32<<10)
	outFailed := false
	for {
		n, err := r.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if !outFailed {
				if _, werr := s.out.Write(chunk); werr != nil {
					// Our stdout is gone (closed pipe): keep reading so the
					// command is not blocked, and keep reading marks.
					outFailed = true
				}
			}
			s.scan(chunk)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
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

// markServer receives `alumet-agent mark` requests on a Unix socket.
type markServer struct {
	path string
	ln   net.Listener
	wg   sync.WaitGroup
}

// SocketDir is the directory of the agents' sockets: private to the user.
func SocketDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "alumet-agent")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("alumet-agent-%d", os.Getuid()))
}

// listenMarks opens the socket of this agent (exec-<pid>.sock in
// SocketDir) and hands every valid mark to onMark.
func listenMarks(onMark func(Mark), onBad func(error)) (*markServer, error) {
	dir := SocketDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is accessible to other users (mode %v): refusing to put the mark socket there", dir, st.Mode().Perm())
	}
	path := filepath.Join(dir, fmt.Sprintf("exec-%d.sock", os.Getpid()))
	_ = os.Remove(path) // a stale socket of a dead agent with our pid
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	m := &markServer{path: path, ln: ln}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				serveMark(c, onMark, onBad)
			}()
		}
	}()
	return m, nil
}

// serveMark reads one request, "MARK <unix ns> <name>\n", and answers
// "OK\n" or "ERR <reason>\n".
func serveMark(c net.Conn, onMark func(Mark), onBad func(error)) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(io.LimitReader(c, 512)).ReadString('\n')
	if err != nil {
		return
	}
	m, err := parseMarkRequest(line)
	if err != nil {
		onBad(err)
		fmt.Fprintf(c, "ERR %v\n", err)
		return
	}
	onMark(m)
	fmt.Fprint(c, "OK\n")
}

func parseMarkRequest(line string) (Mark, error) {
	line = strings.TrimSuffix(line, "\n")
	verb, rest, _ := strings.Cut(line, " ")
	if verb != "MARK" {
		return Mark{}, fmt.Errorf("unknown request %q", verb)
	}
	ts, name, _ := strings.Cut(rest, " ")
	ns, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || ns <= 0 {
		return Mark{}, fmt.Errorf("bad time %q", ts)
	}
	name, err = CheckPhaseName(name)
	if err != nil {
		return Mark{}, err
	}
	return Mark{Name: name, Time: time.Unix(0, ns)}, nil
}

// close stops accepting marks and removes the socket.
func (m *markServer) close() {
	_ = m.ln.Close()
	m.wg.Wait()
	_ = os.Remove(m.path)
}

// SendMark asks the agent listening on socket to start the phase name now.
// socket "" finds it: $ALUMET_AGENT_SOCKET (set for the measured command),
// else the only agent running exec for this user, or the one with pid.
func SendMark(socket string, pid int, name string) error {
	name, err := CheckPhaseName(name)
	if err != nil {
		return err
	}
	now := time.Now()
	if socket == "" {
		socket, err = findSocket(pid)
		if err != nil {
			return err
		}
	}
	c, err := net.DialTimeout("unix", socket, 2*time.Second)
	if err != nil {
		return fmt.Errorf("cannot reach the agent at %s (has its command ended?): %w", socket, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "MARK %d %s\n", now.UnixNano(), name); err != nil {
		return fmt.Errorf("sending the mark to %s: %w", socket, err)
	}
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("no answer from the agent at %s: %w", socket, err)
	}
	if reply != "OK\n" {
		return fmt.Errorf("the agent refused the mark: %s", strings.TrimSpace(strings.TrimPrefix(reply, "ERR ")))
	}
	return nil
}

func findSocket(pid int) (string, error) {
	if s := os.Getenv(SocketEnv); s != "" && pid == 0 {
		return s, nil
	}
	dir := SocketDir()
	if pid > 0 {
		return filepath.Join(dir, fmt.Sprintf("exec-%d.sock", pid)), nil
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "exec-*.sock"))
	var live []string
	for _, m := range matches {
		c, err := net.DialTimeout("unix", m, time.Second)
		if err != nil {
			continue // stale
		}
		c.Close()
		live = append(live, m)
	}
	switch len(live) {
	case 0:
		return "", fmt.Errorf("no alumet-agent exec is running for this user (no socket in %s)", dir)
	case 1:
		return live[0], nil
	}
	pids := make([]string, len(live))
	for i, l := range live {
		pids[i] = strings.TrimSuffix(strings.TrimPrefix(filepath.Base(l), "exec-"), ".sock")
	}
	return "", fmt.Errorf("%d alumet-agent exec are running (pids %s): say which with --pid", len(live), strings.Join(pids, ", "))
}

// phases publishes the phase marks of the command (PhaseMark events for the
// current run). A nil *phases does nothing: phases are off.
type phases struct {
	a      *Agent
	ctx    context.Context
	log    *slog.Logger
	server *markServer
	mu     sync.Mutex
	run    int // the current run's index; -1 between runs
	once   sync.Once
}

// startPhases opens the mark socket (when on); a failure to open it only
// costs the marks from other shells.
func (a *Agent) startPhases(ctx context.Context, on bool, log *slog.Logger) *phases {
	if !on {
		return nil
	}
	p := &phases{a: a, ctx: context.WithoutCancel(ctx), log: log, run: -1}
	srv, err := listenMarks(p.mark, func(err error) { log.Warn("alumet-agent mark: " + err.Error()) })
	if err != nil {
		log.Warn(fmt.Sprintf("Cannot open the socket of alumet-agent mark (phases can still be marked with %s lines on stdout): %v", PhasePrefix, err))
	} else {
		p.server = srv
		log.Debug("Phase marks accepted on " + srv.path)
	}
	return p
}

func (p *phases) setRun(i int) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.run = i
	p.mu.Unlock()
}

// mark publishes a phase mark of the current run. Publishing is
// serialised with the run changes so that no mark lands after its run's
// end event.
func (p *phases) mark(m Mark) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run < 0 {
		p.log.Warn(fmt.Sprintf("Phase mark %q outside of a run (during a cooldown or after the end): ignored.", m.Name))
		return
	}
	p.log.Info(fmt.Sprintf("Phase %q begins", m.Name))
	if err := p.a.Publish(p.ctx, pipeline.Event{Kind: pipeline.PhaseMark, Time: m.Time, Phase: m.Name, Run: p.run}); err != nil {
		p.log.Warn(fmt.Sprintf("Phase mark %q: %v", m.Name, err))
	}
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

// stdoutPipe is the command's stdout when phases are on: a pipe read by a
// phaseScanner that copies it to the agent's stdout. A nil one does nothing.
type stdoutPipe struct {
	r, w *os.File
	done chan struct{}
	sc   *phaseScanner
}

// pipeStdout makes the command's stdout a pipe scanned for marks.
func (p *phases) pipeStdout(cmd *exec.Cmd) (*stdoutPipe, error) {
	if p == nil {
		return nil, nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = w
	sc := &phaseScanner{
		out:    os.Stdout,
		onMark: p.mark,
		onBad: func(line string, err error) {
			p.log.Warn(fmt.Sprintf("Ignoring %q: %v", line, err))
		},
		now: time.Now,
	}
	return &stdoutPipe{r: r, w: w, done: make(chan struct{}), sc: sc}, nil
}

// started closes the agent's copy of the write end and starts copying.
func (s *stdoutPipe) started() {
	if s == nil {
		return
	}
	_ = s.w.Close()
	go func() {
		defer close(s.done)
		defer s.r.Close()
		_ = s.sc.copy(s.r)
	}()
}

// abort releases the pipe of a command that did not start.
func (s *stdoutPipe) abort() {
	if s == nil {
		return
	}
	_ = s.w.Close()
	_ = s.r.Close()
}

// wait waits for the end of the command's output, at most d.
func (s *stdoutPipe) wait(d time.Duration) {
	if s == nil {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
	}
}
