package agent

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/alumet-go/alumet-agent/internal/logging"
)

// scanAll runs a phaseScanner over input split into chunks of size n
// (0: one chunk) and returns what it wrote, the marks and the bad lines.
func scanAll(t *testing.T, input string, n int) (out string, marks []string, bad []string) {
	t.Helper()
	var b bytes.Buffer
	s := &phaseScanner{
		out:    &b,
		onMark: func(m Mark) { marks = append(marks, m.Name) },
		onBad:  func(line string, err error) { bad = append(bad, line) },
		now:    time.Now,
	}
	var r = strings.NewReader(input)
	if n > 0 {
		require.NoError(t, s.copy(chunked{r: r, n: n}))
	} else {
		require.NoError(t, s.copy(r))
	}
	return b.String(), marks, bad
}

// chunked reads at most n bytes at a time.
type chunked struct {
	r *strings.Reader
	n int
}

func (c chunked) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

func TestPhaseScanner(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		name      string
		in        string
		wantMarks []string
		wantBad   int
	}{
		{"no mark", "hello\nworld\n", nil, 0},
		{"marks", "start\nALUMET_PHASE load\nwork\nALUMET_PHASE  store data \n", []string{"load", "store data"}, 0},
		{"crlf", "ALUMET_PHASE load\r\n", []string{"load"}, 0},
		{"tab", "ALUMET_PHASE\tload\n", []string{"load"}, 0},
		{"last line without newline", "x\nALUMET_PHASE end", []string{"end"}, 0},
		{"not at the line start", "say ALUMET_PHASE load\n", nil, 0},
		{"prefix of another word", "ALUMET_PHASEX load\n", nil, 0},
		{"empty name", "ALUMET_PHASE\nALUMET_PHASE   \n", nil, 2},
		{"name too long", "ALUMET_PHASE " + strings.Repeat("n", 129) + "\n", nil, 1},
		{"line too long to be a mark", "ALUMET_PHASE " + long + "\nALUMET_PHASE ok\n", []string{"ok"}, 0},
		{"control character", "ALUMET_PHASE a\x01b\n", nil, 1},
		{"invalid utf-8", "ALUMET_PHASE \xff\n", nil, 1},
		{"utf-8 name", "ALUMET_PHASE calcul étape 2\n", []string{"calcul étape 2"}, 0},
		{"binary output", "\x00\x01\x02\nALUMET_PHASE b\n", []string{"b"}, 0},
	}
	for _, tt := range tests {
		for _, n := range []int{0, 1, 3, 7} {
			out, marks, bad := scanAll(t, tt.in, n)
			require.Equal(t, tt.in, out, "%s (chunks of %d): the output passes through unchanged", tt.name, n)
			require.Empty(t, cmp.Diff(tt.wantMarks, marks), "%s (chunks of %d)", tt.name, n)
			require.Len(t, bad, tt.wantBad, "%s (chunks of %d)", tt.name, n)
		}
	}
}

// TestPhaseScannerOutputGone: a failing output (the reader of our stdout
// left) stops the copy with errOutputGone, so that the caller closes the
// pipe and the command meets the broken pipe as it would without the agent;
// the marks of what was read still count. A read error is returned.
func TestPhaseScannerOutputGone(t *testing.T) {
	var marks []string
	s := &phaseScanner{out: failingWriter{}, onMark: func(m Mark) { marks = append(marks, m.Name) }, now: time.Now}
	require.ErrorIs(t, s.copy(strings.NewReader("a\nALUMET_PHASE x\n")), errOutputGone)
	require.Equal(t, []string{"x"}, marks)
	boom := errors.New("boom")
	s.out = &bytes.Buffer{}
	require.ErrorIs(t, s.copy(iotest.ErrReader(boom)), boom)
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("closed") }

// FuzzPhaseScanner: for any output and any chunking, the output passes
// through unchanged and the marks are those of a line-by-line reading.
func FuzzPhaseScanner(f *testing.F) {
	f.Add("ALUMET_PHASE a\nx\nALUMET_PHASE b\r\n", 3)
	f.Add("ALUMET_PHASE", 1)
	f.Add("\n\nALUMET_PHASE \t z \n", 2)
	f.Fuzz(func(t *testing.T, in string, n int) {
		if n <= 0 || n > 1<<16 {
			n = 1
		}
		out, marks, _ := scanAll(t, in, n)
		if out != in {
			t.Fatalf("output %q, input %q", out, in)
		}
		var want []string
		for _, line := range strings.Split(in, "\n") {
			if len(line) > maxLine || !strings.HasPrefix(line, PhasePrefix) {
				continue
			}
			rest := strings.TrimSuffix(line[len(PhasePrefix):], "\r")
			if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
				continue
			}
			if name, err := CheckPhaseName(rest); err == nil {
				want = append(want, name)
			}
		}
		if diff := cmp.Diff(want, marks); diff != "" {
			t.Fatalf("marks of %q: %s", in, diff)
		}
	})
}

func TestParseMarkRequest(t *testing.T) {
	tests := []struct {
		in      string
		want    Mark
		wantErr string
	}{
		{in: "MARK 1700000000000000000 load\n", want: Mark{Name: "load", Time: time.Unix(0, 1700000000000000000)}},
		{in: "MARK 1 two words\n", want: Mark{Name: "two words", Time: time.Unix(0, 1)}},
		{in: "MARK 1\n", wantErr: "empty phase name"},
		{in: "MARK x load\n", wantErr: `bad time "x"`},
		{in: "MARK -5 load\n", wantErr: "bad time"},
		{in: "PING\n", wantErr: `unknown request "PING"`},
		{in: "MARK 1 a\x07\n", wantErr: "control character"},
	}
	for _, tt := range tests {
		got, err := parseMarkRequest(tt.in)
		if tt.wantErr != "" {
			require.ErrorContains(t, err, tt.wantErr, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.want.Name, got.Name)
		require.True(t, tt.want.Time.Equal(got.Time))
	}
}

// TestMarkSocket: alumet-agent mark reaches the agent's socket, found
// through the environment, the pid, or as the only one running; refusals
// and a missing agent are clear errors; the socket is removed at the end.
func TestMarkSocket(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", dir)
	t.Setenv(SocketEnv, "")
	var mu sync.Mutex
	var got []Mark
	refuse := false
	srv, err := listenMarks(func(m Mark) error {
		mu.Lock()
		defer mu.Unlock()
		if refuse {
			return errNoRun
		}
		got = append(got, m)
		return nil
	}, func(error) {})
	require.NoError(t, err)
	st, err := os.Stat(filepath.Join(dir, "alumet-agent"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), st.Mode().Perm())

	before := time.Now()
	require.NoError(t, SendMark("", 0, "only one"))                   // the only agent running
	require.NoError(t, SendMark("", os.Getpid(), "by pid"))           // by pid
	require.NoError(t, SendMark(srv.path, 0, "  by socket  "))        // explicit socket
	t.Setenv(SocketEnv, srv.path)                                     // as the measured command sees it
	require.NoError(t, SendMark("", 0, "from the command"))           //
	require.ErrorContains(t, SendMark("", 0, ""), "empty phase name") // refused before sending
	mu.Lock()
	require.Len(t, got, 4)
	require.Equal(t, []string{"only one", "by pid", "by socket", "from the command"}, []string{got[0].Name, got[1].Name, got[2].Name, got[3].Name})
	require.False(t, got[0].Time.Before(before), "the mark is stamped by the client")
	refuse = true
	mu.Unlock()
	require.ErrorContains(t, SendMark("", 0, "between runs"), "the agent refused the mark: no run in progress")

	srv.close()
	_, err = os.Stat(srv.path)
	require.ErrorIs(t, err, os.ErrNotExist)
	t.Setenv(SocketEnv, "")
	require.ErrorContains(t, SendMark("", 0, "late"), "no alumet-agent exec is running for this user with phases on")
	require.ErrorContains(t, SendMark("", 12345678, "late"), "cannot reach the agent")
}

func TestMarkSocketRefusesAnOpenDirectory(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", dir)
	require.NoError(t, os.Mkdir(filepath.Join(dir, "alumet-agent"), 0o777))
	require.NoError(t, os.Chmod(filepath.Join(dir, "alumet-agent"), 0o777))
	_, err := listenMarks(func(Mark) error { return nil }, func(error) {})
	require.ErrorContains(t, err, "accessible to other users")
}

// TestPTY: with a terminal as the agent's stdout, the command writes to a
// pseudo-terminal (it sees a terminal) whose output the scanner reads.
func TestPTY(t *testing.T) {
	m, sl, err := openPTY(os.Stdout)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer m.Close()
	require.True(t, logging.IsTerminal(sl), "the command's stdout is a terminal")
	var marks []string
	var out bytes.Buffer
	sc := &phaseScanner{out: &out, onMark: func(mk Mark) { marks = append(marks, mk.Name) }, now: time.Now}
	done := make(chan error, 1)
	go func() { done <- sc.copy(m) }()
	_, err = sl.WriteString("hello\nALUMET_PHASE load\n")
	require.NoError(t, err)
	require.NoError(t, sl.Close()) // the last writer: the master reads EIO, the end
	require.NoError(t, <-done)
	require.Equal(t, []string{"load"}, marks)
	require.Equal(t, "hello\r\nALUMET_PHASE load\r\n", out.String(), "the terminal's own line endings")
}

func TestExitBurst(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	at := func(ds ...time.Duration) []time.Time {
		out := make([]time.Time, len(ds))
		for i, d := range ds {
			out[i] = t0.Add(d)
		}
		return out
	}
	const ms = time.Millisecond
	exit := t0.Add(60 * time.Second)
	tests := []struct {
		name  string
		reads []time.Time
		start time.Time
		want  int
	}{
		{"none", nil, t0, 0},
		{"one mark at the exit", at(60 * time.Second), t0, 0},
		// python3 without flush, stdout a pipe: everything comes when it exits.
		{"four drained after the exit", at(60*time.Second+2*ms, 60*time.Second+2*ms, 60*time.Second+2*ms, 60*time.Second+3*ms), t0, 4},
		{"two just before the exit", at(60*time.Second-50*ms, 60*time.Second-48*ms), t0, 2},
		{"spread over the run, unbuffered", at(0, 20*time.Second, 40*time.Second, 59*time.Second), t0, 0},
		{"a good mark, then a burst", at(time.Second, 60*time.Second+ms, 60*time.Second+ms, 60*time.Second+2*ms), t0, 3},
		{"last marks together, but long before the exit", at(30*time.Second, 30*time.Second+ms), t0, 0},
		{"last marks 20 ms apart at the exit", at(60*time.Second-30*ms, 60*time.Second-10*ms), t0, 0},
		{"only the last one at the exit", at(10*time.Second, 60*time.Second), t0, 0},
		{"chain of close reads ending at the exit", at(60*time.Second-95*ms, 60*time.Second-90*ms, 60*time.Second-85*ms), t0, 3},
		{"chain that began before the exit window", at(60*time.Second-120*ms, 60*time.Second-111*ms, 60*time.Second-102*ms, 60*time.Second-93*ms), t0, 0},
		// A command that marks phases quickly and exits: not told from a
		// buffered one, so not flagged.
		{"short run", at(60*time.Second-200*ms, 60*time.Second), exit.Add(-500 * ms), 0},
		{"short run burst", at(60*time.Second, 60*time.Second), exit.Add(-500 * ms), 0},
		{"one-second run burst", at(60*time.Second, 60*time.Second), exit.Add(-time.Second), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, exitBurst(tt.reads, tt.start, exit))
		})
	}
}

func TestBurstWarning(t *testing.T) {
	require.Equal(t, "4 phase marks arrived together when the command exited: its stdout is block-buffered (not a terminal), so the phases are wrong. "+
		"Run it with PYTHONUNBUFFERED=1 or python3 -u, stdbuf -oL, or call `alumet-agent mark NAME`", BurstWarning(4))
	var sp *stdoutPipe
	require.Empty(t, sp.exitBurst(time.Now(), time.Now()), "no pipe: no warning")
}
