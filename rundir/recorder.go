package rundir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
	"github.com/alumet-go/alumet-agent/plugin"
)

// TransformName is the recorder's name among the pipeline's transforms.
const TransformName = "run-dir"

// HistoryKept is the span before the measured window a run directory always
// keeps (more when energy-report's baseline asks for more).
const HistoryKept = 2 * time.Minute

var (
	_ pipeline.CompactReader = (*Recorder)(nil)
	_ pipeline.EventListener = (*Recorder)(nil)
)

// Recorder records a run into its directory. Create makes the directory;
// Hook, called before any plugin starts, makes the recorder the pipeline's
// first transform (so it sees what the sources emit, before any transform
// changes it) and subscribes it to the history; Finish, once the pipeline
// has stopped, writes the manifest.
type Recorder struct {
	dir     string
	started time.Time

	mu      sync.Mutex
	f       *os.File
	stream  *streamWriter
	events  []EventRecord
	history int64
	buffers int64
	err     error
	closed  bool

	outcomes  *pipeline.Outcomes
	directory *plugin.Directory
	registry  *measure.Registry
}

// Create makes dir (and its parents) for a new run. A directory that
// already holds files is refused: a run directory is evidence, never
// overwritten nor mixed with another run.
func Create(dir string) (*Recorder, error) {
	if err := os.MkdirAll(filepath.Join(dir, "raw"), 0o755); err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	for _, e := range entries {
		if e.Name() == "raw" {
			if sub, _ := os.ReadDir(filepath.Join(dir, "raw")); len(sub) == 0 {
				continue
			}
		}
		return nil, fmt.Errorf("run directory %s is not empty (it holds %s): a run directory keeps one run; choose a new one (a {start} in its name gives each run its own)", dir, e.Name())
	}
	f, err := os.OpenFile(filepath.Join(dir, filepath.FromSlash(StreamName)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	return &Recorder{dir: dir, started: time.Now(), f: f}, nil
}

// Dir is the run directory.
func (r *Recorder) Dir() string { return r.dir }

// Path is the path of a file of the run directory (name: slash-separated).
func (r *Recorder) Path(name string) string { return filepath.Join(r.dir, filepath.FromSlash(name)) }

// WriteFile writes a file of the run directory (the effective
// configuration, say).
func (r *Recorder) WriteFile(name string, data []byte) error {
	return os.WriteFile(r.Path(name), data, 0o644)
}

// Hook adds the recorder to the pipeline being built; call it before any
// plugin starts.
func (r *Recorder) Hook(b *pipeline.Builder, dir *plugin.Directory) error {
	w, err := newStreamWriter(r.f, b.Registry())
	if err != nil {
		return err
	}
	r.stream, r.outcomes, r.directory, r.registry = w, b.Outcomes(), dir, b.Registry()
	// Some history before the window is always kept, so that a baseline
	// before:D can be chosen later, offline.
	b.History().Want(HistoryKept)
	if err := b.AddTransform(TransformName, r); err != nil {
		return err
	}
	b.History().Tap(func(buf *measure.Buffer, end time.Time) { r.record(buf, true, false, end) })
	b.History().TapAfter(func(buf *measure.Buffer, from time.Time) { r.record(buf, false, true, from) })
	return nil
}

// ReadsCompact says Apply reads compact points (pipeline.CompactReader).
func (r *Recorder) ReadsCompact() {}

// Apply records buf, unchanged.
func (r *Recorder) Apply(buf *measure.Buffer) error {
	r.record(buf, false, false, time.Time{})
	return nil
}

func (r *Recorder) record(buf *measure.Buffer, history, after bool, end time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || buf.Len() == 0 {
		return
	}
	r.stream.buffer(buf, history, after, end)
	r.buffers++
	if history || after {
		r.history += int64(buf.Len())
	}
	if r.stream.err != nil && r.err == nil {
		r.err = fmt.Errorf("writing %s: %w", r.Path(StreamName), r.stream.err)
	}
}

// OnEvent records a measurement event.
func (r *Recorder) OnEvent(_ context.Context, ev pipeline.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.stream.event(ev)
	r.events = append(r.events, recordOf(ev, r.stream.points))
	return nil
}

// Err is the recorder's first write error.
func (r *Recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// FinishInfo is what the agent knows at the end.
type FinishInfo struct {
	Agent         AgentInfo
	Argv          []string
	Mode          string
	AgentExitCode int
	// Roles names the files the outputs wrote in the directory (name ->
	// role); the others get a role from their name.
	Roles map[string]string
}

// Finish closes the raw stream and writes the manifest, with the hash of
// every file of the directory. The stream's write error, if any, is
// returned too (the manifest says what was written).
func (r *Recorder) Finish(info FinishInfo) error {
	r.mu.Lock()
	r.closed = true
	var streamErr error
	if r.stream != nil {
		if err := r.stream.close(); err != nil && r.err == nil {
			r.err = fmt.Errorf("writing %s: %w", r.Path(StreamName), err)
		}
	}
	if err := r.f.Sync(); err != nil && r.err == nil {
		r.err = fmt.Errorf("writing %s: %w", r.Path(StreamName), err)
	}
	if err := r.f.Close(); err != nil && r.err == nil {
		r.err = fmt.Errorf("writing %s: %w", r.Path(StreamName), err)
	}
	streamErr = r.err
	events := slices.Clone(r.events)
	var points int64
	var series []SeriesInfo
	if r.stream != nil {
		points, series = r.stream.points, slices.Clone(r.stream.series)
	}
	history, buffers := r.history, r.buffers
	r.mu.Unlock()

	finished := time.Now()
	wd, _ := os.Getwd()
	host, _ := os.Hostname()
	m := &Manifest{
		Schema: Schema, Version: SchemaVersion, Agent: info.Agent,
		Command: CommandInfo{Argv: info.Argv, AgentExitCode: info.AgentExitCode, WorkDir: wd},
		Host:    hostInfo(host),
		Clock:   readClock(),
		Started: r.started.UTC().Format(time.RFC3339Nano), StartedNs: r.started.UnixNano(),
		Finished: finished.UTC().Format(time.RFC3339Nano), FinishedNs: finished.UnixNano(),
		Mode: info.Mode, Events: events, Windows: windowsOf(events), Series: series,
		Stream: StreamInfo{File: StreamName, Format: "jsonl+zstd", Version: streamVersion, Points: points - history, History: history, Buffers: buffers},
	}
	for _, ev := range events {
		// The measured program: the last run's command and exit code.
		if ev.Kind == "end" && ev.Command != nil {
			m.Command.Program, m.Command.ExitCode = ev.Command, ev.ExitCode
		}
	}
	if c := m.Command.ExitCode; c != nil && *c > 128 && *c < 128+65 {
		m.Command.Signal = unix.SignalName(syscall.Signal(*c - 128))
	}
	if m.Agent.GoVersion == "" {
		m.Agent.GoVersion = runtime.Version()
	}
	if r.directory != nil {
		m.Sites, m.DefaultSite = r.directory.Sites()
		for id, s := range r.directory.JobSpans() {
			m.JobSpans = append(m.JobSpans, JobSpan{JobID: id, FirstNs: s[0].UnixNano(), LastNs: s[1].UnixNano()})
		}
		slices.SortFunc(m.JobSpans, func(a, b JobSpan) int { return int(a.JobID - b.JobID) })
		// fetch --job-id: the window is the job's span, from its first row
		// to its last (its end event is only the moment of the fetch).
		for i, w := range m.Windows {
			if w.StartNs != 0 || len(m.JobSpans) != 1 {
				continue
			}
			js := m.JobSpans[0]
			m.Windows[i].Start, m.Windows[i].StartNs = nsTime(js.FirstNs), js.FirstNs
			m.Windows[i].End, m.Windows[i].EndNs = nsTime(js.LastNs), js.LastNs
		}
		if c, ok := r.directory.CarbonIntensity(); ok {
			m.Carbon = &Carbon{GramsPerKWh: c.GramsPerKWh, Mode: c.Mode, Source: c.Source}
		}
	}
	if r.registry != nil {
		for _, mt := range r.registry.All() {
			m.Metrics = append(m.Metrics, metricInfoOf(mt))
		}
	}
	if r.outcomes != nil {
		for _, o := range r.outcomes.All() {
			m.Outcomes = append(m.Outcomes, outcomeOf(o))
		}
		for _, f := range r.outcomes.Fetches() {
			m.Fetches = append(m.Fetches, FetchInfo{Source: f.Source, Run: f.Run, WindowNs: [2]int64{f.Window.From.UnixNano(), f.Window.To.UnixNano()},
				Rows: f.Rows, Queries: f.Queries, Retries: f.Retries, FailedChunks: f.FailedChunks, Anomalies: f.Anomalies})
		}
	}
	files, err := r.listFiles(info.Roles)
	if err != nil {
		return errors.Join(streamErr, err)
	}
	m.Files = files
	return errors.Join(streamErr, writeManifest(r.dir, m))
}

// listFiles hashes every file of the directory but the manifest.
func (r *Recorder) listFiles(roles map[string]string) ([]File, error) {
	var files []File
	err := filepath.WalkDir(r.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(r.dir, path)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if name == ManifestName || strings.HasPrefix(d.Name(), ".") {
			return nil // the manifest itself, temporary files
		}
		n, sum, err := hashFile(path)
		if err != nil {
			return err
		}
		files = append(files, File{Name: name, Role: roleOf(name, roles), Bytes: n, SHA256: sum})
		return nil
	})
	return files, err
}

func roleOf(name string, roles map[string]string) string {
	if r, ok := roles[name]; ok {
		return r
	}
	switch name {
	case StreamName:
		return "raw stream: the points the sources gave, for replay"
	case ConfigName:
		return "effective configuration, secrets redacted"
	case LogName:
		return "the agent's log"
	}
	return "output"
}

// hostInfo is the host and, inside an OAR job, the job and its nodes.
func hostInfo(host string) HostInfo {
	h := HostInfo{Hostname: host, OARJobID: os.Getenv("OAR_JOB_ID")}
	if nf := os.Getenv("OAR_NODEFILE"); nf != "" {
		if b, err := os.ReadFile(nf); err == nil {
			seen := map[string]bool{}
			for _, l := range strings.Fields(string(b)) {
				if !seen[l] {
					seen[l] = true
					h.OARNodes = append(h.OARNodes, l)
				}
			}
			if _, sum, err := hashFile(nf); err == nil {
				h.OARNodefileSHA256 = sum
			}
		}
	}
	return h
}
