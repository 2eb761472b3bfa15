// The socket of alumet-agent mark: phase marks from any process.

package agent

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

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
