package kwollectinput

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/alumet-go/alumet-agent/internal/logging"
	"github.com/alumet-go/alumet-agent/kwollect"
)

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// report logs what a fetch obtained, a warning per incomplete series with
// its coverage, and the chunks that failed.
func (s *Source) report(start, end time.Time, fetch, tail kwollect.Report, cov []kwollect.SeriesCoverage) {
	rows := fetch.Rows + tail.Rows
	s.log.Info(fmt.Sprintf("Kwollect: %d rows fetched for [%s, %s] in %d queries (%d retried)",
		rows, rfc(start), rfc(end), fetch.Queries+tail.Queries, fetch.Retries+tail.Retries))
	failedNodes := map[string]bool{}
	logged := map[string]bool{}
	for _, f := range append(fetch.FailedChunks, tail.FailedChunks...) {
		msg := fmt.Sprintf("Kwollect: could not fetch %s on %s for [%s, %s]: %v; everything else was written",
			strings.Join(f.Nodes, ","), f.Site, rfc(f.From), rfc(f.To), f.Err)
		if !logged[msg] {
			logged[msg] = true
			s.log.Error(msg)
		}
		for _, n := range f.Nodes {
			failedNodes[n] = true
		}
	}
	var short, empty []string
	for _, sc := range cov {
		switch {
		case sc.Complete:
		case sc.Rows == 0 && failedNodes[sc.Node]:
			empty = append(empty, fmt.Sprintf("%s/%s: its queries failed (see above)", sc.Node, sc.Metric))
		case sc.Rows == 0:
			empty = append(empty, fmt.Sprintf("%s/%s: %s", sc.Node, sc.Metric, s.catalog.noDataHint(sc.Node, sc.Metric)))
		default:
			pct := math.Floor(1000*sc.Fraction(start, end)) / 10
			short = append(short, fmt.Sprintf("%s/%s: %.1f%% covered, last sample at %s, missing (%s, %s]",
				sc.Node, sc.Metric, pct, rfc(sc.Last), rfc(sc.Last), rfc(end)))
		}
	}
	if len(short) > 0 {
		s.log.Warn("Kwollect data ends short of the window (ingestion lag beyond fetch_timeout, or the meter stopped); writing what was fetched:\n  " + strings.Join(short, "\n  "))
	}
	if len(empty) > 0 {
		s.log.Warn("Kwollect has no data at all for:\n  " + strings.Join(empty, "\n  "))
	}
}

// progress shows the fetch's progress: one updating line on a terminal,
// a log line every few seconds otherwise.
type progress struct {
	log  *slog.Logger
	tty  bool
	mu   sync.Mutex
	last time.Time
}

func newProgress(log *slog.Logger) *progress {
	// The first log line comes after 5 s: short fetches need none.
	return &progress{log: log, tty: logging.IsTerminal(os.Stderr), last: time.Now()}
}

func (p *progress) update(pr kwollect.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	text := pr.String()
	if p.tty {
		line := "\r\x1b[K" + text
		if pr.Done() {
			line += "\n"
		}
		logging.WriteStatus(os.Stderr, line)
		return
	}
	if now := time.Now(); now.Sub(p.last) >= 5*time.Second {
		p.last = now
		p.log.Info(text)
	}
}
