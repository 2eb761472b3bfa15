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
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/alumet-go/alumet-agent/internal/logging"
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
func listenMarks(onMark func(Mark) error, onBad func(error)) (*markServer, error) {
	dir := SocketDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory: refusing to put the mark socket there", dir)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Getuid() {
		return nil, fmt.Errorf("%s belongs to another user (uid %d): refusing to put the mark socket there", dir, sys.Uid)
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
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				time.Sleep(50 * time.Millisecond) // out of descriptors, say: try again
				continue
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
func serveMark(c net.Conn, onMark func(Mark) error, onBad func(error)) {
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
	if err := onMark(m); err != nil {
		fmt.Fprintf(c, "ERR %v\n", err)
		return
	}
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
		return "", fmt.Errorf("no alumet-agent exec is running for this user with phases on (no socket in %s: is energy-report enabled, without --no-phases?)", dir)
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

// stdoutPipe is the command's stdout when its phase lines are read: a pipe
// (or, when the agent's stdout is a terminal, a pseudo-terminal, so that the
// command still sees a terminal: colours, line-buffered output) read by a
// phaseScanner that copies it to the agent's stdout. A nil one does nothing.
type stdoutPipe struct {
	r, w *os.File
	pty  bool // r is a pseudo-terminal's master
	done chan struct{}
	sc   *phaseScanner
	log  *slog.Logger

	mu    sync.Mutex
	reads []time.Time // when each mark was read, in order
}

// pipeStdout makes the command's stdout a pipe (or a pseudo-terminal)
// scanned for the marks of run, when phase lines are read.
func (p *phases) pipeStdout(cmd *exec.Cmd, run int) (*stdoutPipe, error) {
	if p == nil || !p.lines {
		return nil, nil
	}
	var r, w *os.File
	var err error
	pty := logging.IsTerminal(os.Stdout)
	if pty {
		r, w, err = openPTY(os.Stdout)
	} else {
		r, w, err = os.Pipe()
	}
	if err != nil {
		return nil, err
	}
	cmd.Stdout = w
	sp := &stdoutPipe{r: r, w: w, pty: pty, done: make(chan struct{}), log: p.log}
	sp.sc = &phaseScanner{
		out: os.Stdout,
		onMark: func(m Mark) {
			sp.mu.Lock()
			sp.reads = append(sp.reads, m.Time)
			sp.mu.Unlock()
			_ = p.mark(m, run)
		},
		onBad: func(line string, err error) {
			p.log.Warn(fmt.Sprintf("Ignoring %q: %v", line, err))
		},
		now: time.Now,
	}
	return sp, nil
}

// exitBurst says whether the marks read so far came in a burst at the
// command's exit (see exitBurst): the returned warning is "" when not.
func (s *stdoutPipe) exitBurst(start, exit time.Time) string {
	if s == nil {
		return ""
	}
	s.mu.Lock()
	n := exitBurst(s.reads, start, exit)
	s.mu.Unlock()
	if n == 0 {
		return ""
	}
	return BurstWarning(n)
}

// Marks in a burst at the exit. A command whose stdout is not a terminal
// (the pipe the agent reads) usually buffers it in blocks (C stdio,
// Python): its ALUMET_PHASE lines reach the agent together when it flushes
// at its exit, each timed then, so the phases are wrong (the energy lands
// in the part before the first mark) without anything looking amiss. Such
// a burst has a shape of its own: at least two marks read within burstGap
// of one another, the first no earlier than exitWindow before the exit (or
// after it, drained from the pipe), in a run of at least burstMinRun.
const (
	burstGap    = 10 * time.Millisecond
	exitWindow  = 100 * time.Millisecond
	burstMinRun = 10 * exitWindow
)

// exitBurst returns how many of the marks read at reads (in read order)
// make a burst at the exit, 0 when they do not: the last marks, each read
// within burstGap of the previous one, when there are at least two of
// them, the first read at most exitWindow before exit, and the run lasted
// at least burstMinRun. A short run whose marks all come at once is not
// told from a buffered one: it is not flagged.
func exitBurst(reads []time.Time, start, exit time.Time) int {
	if len(reads) < 2 || exit.Sub(start) < burstMinRun {
		return 0
	}
	i := len(reads) - 1
	for i > 0 && reads[i].Sub(reads[i-1]) <= burstGap {
		i--
	}
	n := len(reads) - i
	if n < 2 || reads[i].Before(exit.Add(-exitWindow)) {
		return 0
	}
	return n
}

// BurstWarning is the warning about n phase marks that arrived in a burst
// at the command's exit, with the fixes.
func BurstWarning(n int) string {
	return fmt.Sprintf("%d phase marks arrived together when the command exited: its stdout is block-buffered (not a terminal), so the phases are wrong. "+
		"Run it with PYTHONUNBUFFERED=1 or python3 -u, stdbuf -oL, or call `alumet-agent mark NAME`", n)
}

// started closes the agent's copy of the write end and starts copying.
func (s *stdoutPipe) started() {
	if s == nil {
		return
	}
	_ = s.w.Close()
	if s.pty {
		// The command gets the terminal's SIGWINCH (it is in its
		// foreground group): its pseudo-terminal takes the new size.
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		go func() {
			defer signal.Stop(winch)
			for {
				select {
				case <-winch:
					var ws [4]uint16
					if ioctlFile(os.Stdout, syscall.TIOCGWINSZ, uintptr(pointerToWinsize(&ws))) == nil {
						_ = ioctlFile(s.r, syscall.TIOCSWINSZ, uintptr(pointerToWinsize(&ws)))
					}
				case <-s.done:
					return
				}
			}
		}()
	}
	go func() {
		defer close(s.done)
		defer s.r.Close()
		if err := s.sc.copy(s.r); errors.Is(err, errOutputGone) {
			s.log.Warn("The agent's stdout is closed: the command's output is not copied any more (it will get a broken pipe); the measurement goes on.")
		}
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

// ioctlFile runs an ioctl on f through SyscallConn: f.Fd() would switch f
// to blocking mode under a goroutine reading it.
func ioctlFile(f *os.File, req, arg uintptr) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	if err := rc.Control(func(fd uintptr) { ierr = ioctl(fd, req, arg) }); err != nil {
		return err
	}
	return ierr
}

func ioctl(fd, req, arg uintptr) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, req, arg); errno != 0 {
		return errno
	}
	return nil
}
