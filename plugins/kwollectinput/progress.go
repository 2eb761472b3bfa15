package kwollectinput

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/alumet-go/alumet-agent/internal/logging"
	"github.com/alumet-go/alumet-agent/kwollect"
)

// The progress of a fetch is shown as one bar redrawn in place on a
// terminal (stderr), and as a concise INFO line every logEvery otherwise.
// The bar goes through logging.WriteStatus, under the lock of the log
// handlers: a log line erases it first and the next update redraws it
// below, so log lines stay whole and above the bar. (A multi-line bar
// library such as mpb redraws by moving the cursor up, which would
// overwrite the log lines that slog writes to stderr directly.)
const (
	firstLog  = 5 * time.Second  // short fetches log no progress line
	logEvery  = 10 * time.Second // then at most one line per logEvery
	drawEvery = 100 * time.Millisecond
	// rateTau is the time constant of the smoothed rates.
	rateTau = 10 * time.Second
	// minRateStep: updates closer than this are merged for the rates.
	minRateStep = 200 * time.Millisecond
	barWidth    = 24
)

// progress shows the fetch's progress: a bar on a terminal, a log line
// every few seconds otherwise. update is OnProgress; finish removes the bar
// at the end of the fetch.
type progress struct {
	log *slog.Logger
	// detail, if set, adds what the fetch waits for (set before the tail
	// completion starts).
	detail func() string

	tty    bool
	now    func() time.Time
	status func(string) // writes a status line ("\r…") on the terminal
	width  func() int   // the terminal's columns, 0 if unknown

	mu       sync.Mutex
	est      estimator
	prev     kwollect.Progress
	inCall   bool      // est follows the current call
	created  time.Time // the first log line comes firstLog after it
	lastLog  time.Time
	logged   bool // a progress line was logged: the final one is too
	lastDraw time.Time
	drawn    bool // a status line without newline is on the terminal
}

func newProgress(log *slog.Logger) *progress {
	now := time.Now()
	return &progress{
		log: log, tty: logging.IsTerminal(os.Stderr), now: time.Now,
		status: func(s string) { logging.WriteStatus(os.Stderr, s) },
		width: func() int {
			w, _, err := term.GetSize(int(os.Stderr.Fd()))
			if err != nil {
				return 0
			}
			return w
		},
		created: now, lastLog: now.Add(firstLog - logEvery),
	}
}

func (p *progress) update(pr kwollect.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	// The counters are per call (the window's fetch, then each round of
	// the tail completion): a call starts after the previous one's last
	// report, or when the progress was made.
	if !p.inCall || p.prev.Done() || pr.Rows < p.prev.Rows || pr.Queries < p.prev.Queries || pr.ChunksDone < p.prev.ChunksDone {
		since := p.created
		if p.inCall {
			since = p.est.last
		}
		p.est = estimator{}
		p.est.reset(since)
		p.inCall = true
	}
	p.prev = pr
	e := p.est.observe(now, pr)
	text, bar := "", true
	if p.detail != nil {
		// Completing the tail: the chunk counters of each short round
		// would only confuse; say what is awaited.
		if d := p.detail(); d != "" {
			text, bar = "Kwollect: "+d, false
		}
	}
	final := pr.Done() && bar
	if p.tty {
		if !final && p.drawn && now.Sub(p.lastDraw) < drawEvery {
			return
		}
		p.lastDraw = now
		if bar {
			text = barLine(pr, e, p.width())
		} else {
			text = fit(text, p.width())
		}
		line := "\r\x1b[K" + text
		if final {
			line += "\n" // the completed bar stays
		}
		p.status(line)
		p.drawn = !final
		return
	}
	if bar {
		text = logLine(pr, e)
	}
	if (final && p.logged) || now.Sub(p.lastLog) >= logEvery {
		p.lastLog, p.logged = now, true
		p.log.Info(text)
	}
}

// finish removes a bar still on the terminal (a tail's status, a call
// cut short). The summary logged next says what was fetched.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.drawn {
		p.status("\r\x1b[K")
		p.drawn = false
	}
}

// estimator turns one call's reports into a fraction done that never
// decreases, smoothed rates, and an ETA that never grows between reports
// unless a retry or a failed chunk is reported.
type estimator struct {
	start, last time.Time
	frac        float64 // the fraction shown, monotone
	// The rates are smoothed over rateTau from the base, the last report
	// at least minRateStep older.
	baseT             time.Time
	baseRows          int
	baseFrac          float64
	rowRate, fracRate float64 // per second
	rated             bool
	eta               time.Duration
	etaAt             time.Time
	etaKnown          bool
	retries, failed   int
}

// estimate is what a report shows.
type estimate struct {
	Frac     float64 // 0…1, 1 only once done
	Known    bool    // Frac means something (rows estimated or chunks planned)
	RowRate  float64 // rows/s, 0 if not known yet
	ETA      time.Duration
	ETAKnown bool
	Elapsed  time.Duration // since the call started
}

func (e *estimator) reset(start time.Time) {
	e.start, e.last, e.baseT = start, start, start
}

// rawFraction is a report's own estimate of the fraction done: rows over
// the estimated rows when the engine has an estimate, chunks otherwise.
// Below 1 until the call is done.
func rawFraction(pr kwollect.Progress) (float64, bool) {
	if pr.Done() {
		return 1, true
	}
	switch {
	case pr.EstimatedRows > 0:
		return min(float64(pr.Rows)/float64(pr.EstimatedRows), 0.99), true
	case pr.ChunksTotal > 0:
		return min(float64(pr.ChunksDone)/float64(pr.ChunksTotal), 0.99), true
	}
	return 0, false
}

func (e *estimator) observe(now time.Time, pr kwollect.Progress) estimate {
	raw, known := rawFraction(pr)
	e.frac = max(e.frac, raw)
	e.last = now
	if dt := now.Sub(e.baseT); dt >= minRateStep {
		rr := float64(pr.Rows-e.baseRows) / dt.Seconds()
		fr := (e.frac - e.baseFrac) / dt.Seconds()
		if !e.rated {
			e.rowRate, e.fracRate, e.rated = rr, fr, true
		} else {
			a := 1 - math.Exp(-dt.Seconds()/rateTau.Seconds())
			e.rowRate += a * (rr - e.rowRate)
			e.fracRate += a * (fr - e.fracRate)
		}
		e.baseT, e.baseRows, e.baseFrac = now, pr.Rows, e.frac
	}
	setback := pr.Retries > e.retries || pr.FailedChunks > e.failed
	e.retries, e.failed = max(e.retries, pr.Retries), max(e.failed, pr.FailedChunks)
	switch {
	case e.frac >= 1:
		e.eta, e.etaKnown = 0, true
	case e.rated && e.fracRate > 0 && e.frac > 0:
		eta := time.Duration((1 - e.frac) / e.fracRate * float64(time.Second))
		if e.etaKnown && !setback {
			// Never later than the last ETA, counted down since.
			eta = min(eta, e.eta-now.Sub(e.etaAt))
		}
		// An ETA run out before the end is no longer known: saying
		// "0 s" for long would be worse.
		e.eta, e.etaKnown = eta, eta > 0
	default:
		// No progress measured yet (or none since): the clamp still
		// counts down, and a setback lets the next ETA grow.
		if e.etaKnown {
			if left := e.eta - now.Sub(e.etaAt); left > 0 && !setback {
				e.eta = left
			} else {
				e.etaKnown = false
			}
		}
	}
	e.etaAt = now
	rate := 0.0
	if e.rated {
		rate = max(e.rowRate, 0)
	}
	return estimate{Frac: e.frac, Known: known || e.frac > 0, RowRate: rate,
		ETA: e.eta, ETAKnown: e.etaKnown && e.frac < 1, Elapsed: now.Sub(e.start)}
}

// percent floors, so that 100% means done.
func percent(f float64) string { return fmt.Sprintf("%d%%", int(math.Floor(f*100))) }

// rowsText is "410,000/1,000,000 rows, 68 MB" (the total when estimated,
// the bytes when counted).
func rowsText(pr kwollect.Progress) string {
	s := grouped(pr.Rows)
	if pr.EstimatedRows > 0 && !pr.Done() {
		s += "/" + grouped(max(pr.EstimatedRows, pr.Rows))
	}
	s += " rows"
	if pr.Bytes > 0 {
		s += ", " + bytesText(pr.Bytes)
	}
	return s
}

// tailText is what follows the rows: chunks, rate, ETA, setbacks.
func tailText(pr kwollect.Progress, e estimate) string {
	var b strings.Builder
	if pr.ChunksTotal > 0 {
		fmt.Fprintf(&b, ", %d/%d chunks", pr.ChunksDone, pr.ChunksTotal)
	}
	if e.RowRate > 0 {
		b.WriteString(", " + rateText(e.RowRate))
	}
	switch {
	case pr.Done():
		b.WriteString(", done in " + shortDuration(e.Elapsed))
	case e.ETAKnown:
		b.WriteString(", ETA " + shortDuration(e.ETA))
	}
	if pr.Retries > 0 {
		fmt.Fprintf(&b, ", %d retries", pr.Retries)
	}
	if pr.FailedChunks > 0 {
		fmt.Fprintf(&b, ", %d chunks FAILED", pr.FailedChunks)
	}
	if pr.Incomplete > 0 {
		fmt.Fprintf(&b, ", %d series not yet complete", pr.Incomplete)
	}
	return b.String()
}

// logLine is "Kwollect: 41% (410,000/1,000,000 rows, 68 MB), 4/10 chunks,
// 1.2 M rows/s, ETA 3s".
func logLine(pr kwollect.Progress, e estimate) string {
	s := "Kwollect: "
	if e.Known {
		s += percent(e.Frac) + " (" + rowsText(pr) + ")"
	} else {
		s += rowsText(pr)
	}
	return s + tailText(pr, e)
}

// barLine is the terminal's line, "Kwollect [=====>      ] 41% 410,000/…",
// fit to width columns (80 if unknown) so that it never wraps.
func barLine(pr kwollect.Progress, e estimate, width int) string {
	if width <= 0 {
		width = 80
	}
	text := rowsText(pr) + tailText(pr, e)
	pct := "  ?%"
	if e.Known {
		pct = fmt.Sprintf("%4s", percent(e.Frac))
	}
	// "Kwollect [" + bar + "] " + pct + " " + text
	room := width - 1 - len("Kwollect [] ") - len(pct) - 1 - len(text)
	n := min(barWidth, room)
	if n < 10 {
		return fit("Kwollect: "+strings.TrimSpace(pct)+" "+text, width)
	}
	filled := int(e.Frac * float64(n))
	bar := strings.Repeat("=", filled)
	if filled < n {
		bar += ">" + strings.Repeat(" ", n-filled-1)
	}
	if !e.Known {
		bar = strings.Repeat(" ", n)
	}
	return "Kwollect [" + bar + "] " + pct + " " + text
}

// fit cuts s to width-1 columns (80 if unknown), so that it never wraps
// (a wrapped status line is not erased by "\r\x1b[K").
func fit(s string, width int) string {
	if width <= 0 {
		width = 80
	}
	r := []rune(s)
	if len(r) < width {
		return s
	}
	return string(r[:max(width-2, 0)]) + "…"
}

// grouped is n with thousands separators: 1,234,567.
func grouped(n int) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// bytesText is b in decimal units: 950 B, 1.5 kB, 68 MB, 2.1 GB.
func bytesText(b int64) string {
	return scaled(float64(b), "B", []string{"kB", "MB", "GB", "TB"})
}

// rateText is a rate of rows: 850 rows/s, 12 k rows/s, 1.2 M rows/s.
func rateText(r float64) string {
	return scaled(r, "rows/s", []string{"k rows/s", "M rows/s", "G rows/s"})
}

func scaled(v float64, unit string, units []string) string {
	if v < 1000 {
		return fmt.Sprintf("%.0f %s", v, unit)
	}
	for _, u := range units {
		v /= 1000
		if v < 1000 || u == units[len(units)-1] {
			if v < 10 {
				return fmt.Sprintf("%.1f %s", v, u)
			}
			return fmt.Sprintf("%.0f %s", v, u)
		}
	}
	return "" // not reached
}

// shortDuration is an ETA or a duration: 3s, 2m05s, 1h20m (0.4s below 1 s).
func shortDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Round(time.Second).Seconds()))
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}
