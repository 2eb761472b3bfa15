// Package rundir keeps a measurement as evidence that can be re-opened: a
// directory with a manifest (provenance: agent, command, host, OAR job,
// windows, the sources' outcomes, the clock), the effective configuration
// with secrets redacted, the raw stream of points the sources gave, the
// outputs' files and the log, every file with its SHA-256; and it replays
// the raw stream offline through the same pipeline code (Replay), so that
// `alumet-agent report` recomputes the energy report without Kwollect.
package rundir

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/pipeline"
)

// Schema is the manifest's schema name and version; a reader refuses
// another major version.
const (
	Schema        = "alumet-agent/run-dir"
	SchemaVersion = 1
)

// Names of the files of a run directory.
const (
	ManifestName = "manifest.json"
	ConfigName   = "config.toml"
	StreamName   = "raw/points.jsonl.zst"
	LogName      = "agent.log"
)

// Manifest is manifest.json: what a run directory holds and how it was
// produced.
type Manifest struct {
	Schema  string `json:"schema"`
	Version int    `json:"version"`

	Agent   AgentInfo   `json:"agent"`
	Command CommandInfo `json:"command"`
	Host    HostInfo    `json:"host"`
	Clock   *ClockState `json:"clock"`

	// Started and Finished bound the agent's work (RFC 3339, and Unix ns).
	Started    string `json:"started"`
	StartedNs  int64  `json:"started_ns"`
	Finished   string `json:"finished"`
	FinishedNs int64  `json:"finished_ns"`

	// Mode is the agent's mode (exec, fetch, watch, run).
	Mode string `json:"mode"`
	// Windows are the measured windows, one per run (exec --repeat), with
	// their phases, from the events.
	Windows []Window `json:"windows"`
	// Events are the measurement events, in order (the raw stream has them
	// too, at their place among the points).
	Events []EventRecord `json:"events"`
	// Sites is the site of each node the sources knew (node -> site), and
	// DefaultSite the site of the nodes not listed (an OAR job's).
	Sites       map[string]string `json:"sites"`
	DefaultSite string            `json:"default_site,omitempty"`
	// JobSpans are the spans of the OAR jobs fetched by id.
	JobSpans []JobSpan `json:"job_spans,omitempty"`
	// Outcomes are the sources' verdicts per run, node and metric:
	// samples, coverage, gaps, observed ingestion lag.
	Outcomes []Outcome `json:"outcomes"`
	// Fetches are what the sources did for each window: rows, queries,
	// retries, failed parts, anomalies of the answers.
	Fetches []FetchInfo `json:"fetches"`
	// Carbon is the energy-to-carbon transform's intensity, when it ran.
	Carbon *Carbon `json:"carbon,omitempty"`
	// Metrics are the metrics the agent registered, in registration order.
	Metrics []MetricInfo `json:"metrics"`
	// Series are the series the sources gave (their meters' ports are the
	// consumers), with their point counts.
	Series []SeriesInfo `json:"series"`
	// Stream describes the raw stream.
	Stream StreamInfo `json:"stream"`
	// Files are every file of the directory but the manifest, with their
	// size and SHA-256.
	Files []File `json:"files"`
	// Refetches are the rebuilds of the raw stream from Kwollect (report
	// --refetch), oldest first.
	Refetches []Refetch `json:"refetches,omitempty"`
}

// AgentInfo is the agent that measured.
type AgentInfo struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	GoVersion string `json:"go_version"`
}

// CommandInfo is the agent's command line and the measured program.
type CommandInfo struct {
	// Argv is the agent's own command line.
	Argv []string `json:"argv"`
	// Program is the measured command (exec), ExitCode its exit code and
	// Signal the signal that killed it ("" if none).
	Program  []string `json:"program,omitempty"`
	ExitCode *int     `json:"exit_code"`
	Signal   string   `json:"signal,omitempty"`
	// AgentExitCode is the agent's own exit code.
	AgentExitCode int `json:"agent_exit_code"`
	// WorkDir is the working directory.
	WorkDir string `json:"workdir"`
}

// HostInfo is where the agent ran.
type HostInfo struct {
	Hostname string `json:"hostname"`
	// OARJobID and OARNodes come from the OAR environment ($OAR_JOB_ID,
	// $OAR_NODEFILE), when the agent ran inside a job; OARNodefileSHA256
	// is the hash of the node file as it was.
	OARJobID          string   `json:"oar_job_id,omitempty"`
	OARNodes          []string `json:"oar_nodes,omitempty"`
	OARNodefileSHA256 string   `json:"oar_nodefile_sha256,omitempty"`
}

// Window is one measured window (a run) with its phases.
type Window struct {
	Run     int     `json:"run"`
	Start   string  `json:"start"`
	StartNs int64   `json:"start_ns"`
	End     string  `json:"end"`
	EndNs   int64   `json:"end_ns"`
	Phases  []Phase `json:"phases,omitempty"`
}

// Phase is a phase of a window: it starts at its mark and lasts until the
// next one or the window's end.
type Phase struct {
	Name    string `json:"name"`
	StartNs int64  `json:"start_ns"`
	EndNs   int64  `json:"end_ns"`
}

// JobSpan is the span of an OAR job's rows.
type JobSpan struct {
	JobID   int64 `json:"job_id"`
	FirstNs int64 `json:"first_ns"`
	LastNs  int64 `json:"last_ns"`
}

// Outcome is a pipeline.Outcome as the manifest keeps it.
type Outcome struct {
	Run            int        `json:"run"`
	Node           string     `json:"node"`
	Site           string     `json:"site,omitempty"`
	Metric         string     `json:"metric"`
	WindowNs       [2]int64   `json:"window_ns"`
	Status         string     `json:"status"`
	Samples        int        `json:"samples"`
	FirstNs        int64      `json:"first_ns,omitempty"`
	LastNs         int64      `json:"last_ns,omitempty"`
	Coverage       float64    `json:"coverage"`
	MissingNs      [][2]int64 `json:"missing_ns,omitempty"`
	LagNs          *int64     `json:"lag_ns"`
	Reason         string     `json:"reason,omitempty"`
	PeriodNs       int64      `json:"period_ns,omitempty"`
	FetchedLaterOK bool       `json:"fetched_later_ok,omitempty"`
	Anomalies      string     `json:"anomalies,omitempty"`
}

// SeriesInfo is a series of the raw stream: its metric, resource (the node)
// and consumer (a wattmeter port, a PDU outlet), and how many points it
// had in the windows and in the history.
type SeriesInfo struct {
	Metric   string    `json:"metric"`
	Resource [2]string `json:"resource"` // kind, id
	Consumer [2]string `json:"consumer"` // kind, id
	Points   int64     `json:"points"`
	History  int64     `json:"history_points"`
}

// MetricInfo is a registered metric.
type MetricInfo struct {
	Name        string    `json:"name"`
	Unit        string    `json:"unit"`
	UnitParts   [4]string `json:"unit_parts"` // prefix unique, prefix display, base unique, base display
	Type        string    `json:"type"`
	Semantics   uint8     `json:"semantics"`
	Description string    `json:"description,omitempty"`
	Plugin      string    `json:"plugin,omitempty"`
}

func metricInfoOf(m measure.Metric) MetricInfo {
	return MetricInfo{Name: m.Name, Unit: m.Unit.DisplayName(), UnitParts: [4]string{m.Unit.Prefix.Unique, m.Unit.Prefix.Display, m.Unit.Base.Unique, m.Unit.Base.Display},
		Type: m.Type.String(), Semantics: uint8(m.Semantics), Description: m.Description, Plugin: m.Plugin}
}

// Metric is the measure.Metric m stands for.
func (m MetricInfo) Metric() (measure.Metric, error) {
	typ, ok := measure.ParseValueType(m.Type)
	if !ok {
		return measure.Metric{}, fmt.Errorf("metric %s: unknown type %q", m.Name, m.Type)
	}
	return measure.Metric{Name: m.Name, Type: typ, Semantics: measure.Semantics(m.Semantics), Description: m.Description, Plugin: m.Plugin,
		Unit: measure.Unit{Prefix: measure.Prefix{Unique: m.UnitParts[0], Display: m.UnitParts[1]}, Base: measure.BaseUnit{Unique: m.UnitParts[2], Display: m.UnitParts[3]}}}, nil
}

// FetchInfo is a pipeline.Fetch as the manifest keeps it.
type FetchInfo struct {
	Source       string   `json:"source"`
	Run          int      `json:"run"`
	WindowNs     [2]int64 `json:"window_ns"`
	Rows         int      `json:"rows"`
	Queries      int      `json:"queries"`
	Retries      int      `json:"retries"`
	FailedChunks int      `json:"failed_chunks"`
	Anomalies    string   `json:"anomalies,omitempty"`
}

// Carbon is the carbon intensity the run converted energy with.
type Carbon struct {
	GramsPerKWh float64 `json:"g_per_kwh"`
	Mode        string  `json:"mode"`
	Source      string  `json:"source"`
}

// StreamInfo describes the raw stream.
type StreamInfo struct {
	File    string `json:"file"`
	Format  string `json:"format"`
	Version int    `json:"version"`
	Points  int64  `json:"points"`
	History int64  `json:"history_points"`
	Buffers int64  `json:"buffers"`
}

// File is a file of the directory.
type File struct {
	Name   string `json:"name"` // slash-separated, relative to the directory
	Role   string `json:"role"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

func nsTime(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }

func outcomeOf(o pipeline.Outcome) Outcome {
	m := Outcome{Run: o.Run, Node: o.Node, Site: o.Site, Metric: o.Metric, WindowNs: [2]int64{o.Window.From.UnixNano(), o.Window.To.UnixNano()},
		Status: string(o.Status), Samples: o.Samples, Coverage: o.Coverage, Reason: o.Reason, PeriodNs: int64(o.Period),
		FetchedLaterOK: o.FetchedLaterOK, Anomalies: o.Anomalies}
	if !o.First.IsZero() {
		m.FirstNs, m.LastNs = o.First.UnixNano(), o.Last.UnixNano()
	}
	for _, iv := range o.Missing {
		m.MissingNs = append(m.MissingNs, [2]int64{iv.From.UnixNano(), iv.To.UnixNano()})
	}
	if o.LagKnown {
		lag := int64(o.Lag)
		m.LagNs = &lag
	}
	return m
}

// Outcome is the pipeline.Outcome m stands for.
func (m Outcome) Outcome() pipeline.Outcome {
	o := pipeline.Outcome{Run: m.Run, Node: m.Node, Site: m.Site, Metric: m.Metric,
		Window: pipeline.Interval{From: time.Unix(0, m.WindowNs[0]), To: time.Unix(0, m.WindowNs[1])},
		Status: pipeline.Status(m.Status), Samples: m.Samples, Coverage: m.Coverage, Reason: m.Reason, Period: time.Duration(m.PeriodNs),
		FetchedLaterOK: m.FetchedLaterOK, Anomalies: m.Anomalies}
	if m.Samples > 0 || m.FirstNs != 0 || m.LastNs != 0 {
		o.First, o.Last = time.Unix(0, m.FirstNs), time.Unix(0, m.LastNs)
	}
	for _, iv := range m.MissingNs {
		o.Missing = append(o.Missing, pipeline.Interval{From: time.Unix(0, iv[0]), To: time.Unix(0, iv[1])})
	}
	if m.LagNs != nil {
		o.Lag, o.LagKnown = time.Duration(*m.LagNs), true
	}
	return o
}

// windowsOf derives the measured windows and their phases from the events.
func windowsOf(events []EventRecord) []Window {
	var ws []Window
	open := -1
	for _, ev := range events {
		switch ev.Kind {
		case "start":
			ws = append(ws, Window{Run: ev.Run, Start: nsTime(ev.TimeNs), StartNs: ev.TimeNs})
			open = len(ws) - 1
		case "phase":
			if open >= 0 {
				w := &ws[open]
				if n := len(w.Phases); n > 0 {
					w.Phases[n-1].EndNs = ev.TimeNs
				}
				w.Phases = append(w.Phases, Phase{Name: ev.Phase, StartNs: ev.TimeNs})
			}
		case "end":
			if open < 0 || ws[open].Run != ev.Run || ws[open].EndNs != 0 {
				// An end without a start: fetch --job-id, or a window
				// given by its end only.
				ws = append(ws, Window{Run: ev.Run})
				open = len(ws) - 1
			}
			w := &ws[open]
			w.End, w.EndNs = nsTime(ev.TimeNs), ev.TimeNs
			if n := len(w.Phases); n > 0 && w.Phases[n-1].EndNs == 0 {
				w.Phases[n-1].EndNs = ev.TimeNs
			}
			open = -1
		}
	}
	return ws
}

// hashFile returns the size and SHA-256 of a file.
func hashFile(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", fmt.Errorf("%s: %w", path, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// writeManifest writes m as dir's manifest.json, atomically.
func writeManifest(dir string, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	tmp, err := os.CreateTemp(dir, ".manifest-*.json")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", filepath.Join(dir, ManifestName), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", filepath.Join(dir, ManifestName), err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, ManifestName))
}

// Run is a run directory opened for reading.
type Run struct {
	Dir      string
	Manifest Manifest
}

// ErrNotRunDir is returned by Open for a directory without a manifest.
var ErrNotRunDir = errors.New("not a run directory")

// Open reads dir's manifest and checks its schema; Verify checks the files.
func Open(dir string) (*Run, error) {
	path := filepath.Join(dir, ManifestName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(dir); serr != nil {
			return nil, fmt.Errorf("%s: %w", dir, serr)
		}
		return nil, fmt.Errorf("%s: %w: it has no %s (an agent run with --run-dir writes it when it ends; an interrupted agent leaves none)", dir, ErrNotRunDir, ManifestName)
	}
	if err != nil {
		return nil, err
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: corrupted: %w", path, err)
	}
	if m.Schema != Schema {
		return nil, fmt.Errorf("%s: schema %q, want %q: not a run directory's manifest", path, m.Schema, Schema)
	}
	if m.Version != SchemaVersion {
		return nil, fmt.Errorf("%s: schema version %d; this agent reads version %d: use the agent version that wrote it (%s)", path, m.Version, SchemaVersion, m.Agent.Version)
	}
	return &Run{Dir: dir, Manifest: m}, nil
}

// Problem is a file of the manifest that is not as the manifest says.
type Problem struct {
	Name    string // as in the manifest
	Missing bool
	Err     error
}

// Check returns the files that are missing or differ from the manifest.
func (r *Run) Check() []Problem {
	var probs []Problem
	for _, f := range r.Manifest.Files {
		path := filepath.Join(r.Dir, filepath.FromSlash(f.Name))
		n, sum, err := hashFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			probs = append(probs, Problem{f.Name, true, fmt.Errorf("%s: missing (the manifest lists it: %s, %d bytes)", path, f.Role, f.Bytes)})
		case err != nil:
			probs = append(probs, Problem{f.Name, false, err})
		case n != f.Bytes || sum != f.SHA256:
			probs = append(probs, Problem{f.Name, false, fmt.Errorf("%s: damaged: %d bytes, SHA-256 %s; the manifest says %d bytes, %s", path, n, short(sum), f.Bytes, short(f.SHA256))})
		}
	}
	return probs
}

// Verify checks that every file the manifest lists is there with its size
// and SHA-256. The error names every file that is missing or differs.
func (r *Run) Verify() error {
	var errs []error
	for _, p := range r.Check() {
		errs = append(errs, p.Err)
	}
	if len(errs) > 0 {
		errs = append(errs, fmt.Errorf("%s: `alumet-agent report --refetch %s` rebuilds the raw data from Kwollect and the files derived from it", r.Dir, r.Dir))
	}
	return errors.Join(errs...)
}

// File returns the manifest's entry for name.
func (r *Run) File(name string) (File, bool) {
	i := slices.IndexFunc(r.Manifest.Files, func(f File) bool { return f.Name == name })
	if i < 0 {
		return File{}, false
	}
	return r.Manifest.Files[i], true
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12] + "…"
	}
	return sum
}
