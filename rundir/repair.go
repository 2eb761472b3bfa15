package rundir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Refetch records a rebuild of a run directory's raw stream from Kwollect
// (report --refetch): when, by which agent, why, and what it replaced. The
// rebuilt data is Kwollect's again, not the rows the live run saw: a
// reader of the numbers should know.
type Refetch struct {
	At     string    `json:"at"`
	Agent  AgentInfo `json:"agent"`
	Reason []string  `json:"reason"`
	// Replaced are the manifest entries of the files replaced (the raw
	// stream, the files rebuilt from it), as they were.
	Replaced []File `json:"replaced"`
	// Lost are the files that were missing or damaged and that nothing
	// rebuilds (the live run's log): their entries are removed.
	Lost []File `json:"lost,omitempty"`
	// KeptAs is where the damaged raw stream was kept ("" if it was missing).
	KeptAs string `json:"kept_as,omitempty"`
	// Outcomes are the refetch's outcomes (the manifest's outcomes are
	// replaced by them; the live run's are here too, under LiveOutcomes).
	LiveOutcomes []Outcome `json:"live_outcomes"`
	// LiveFetches are the live run's fetches.
	LiveFetches []FetchInfo `json:"live_fetches"`
}

// AdoptStream makes the raw stream of fresh (a directory the same windows
// were fetched into again) r's: the damaged stream is kept next to it, the
// stream's description, series and outcomes become fresh's, and the
// refetch is recorded. The manifest is written by Rehash.
func (r *Run) AdoptStream(fresh *Run, agent AgentInfo, reason []string) error {
	m := &r.Manifest
	stream := filepath.Join(r.Dir, filepath.FromSlash(StreamName))
	rf := Refetch{At: time.Now().UTC().Format(time.RFC3339Nano), Agent: agent, Reason: reason, LiveOutcomes: m.Outcomes, LiveFetches: m.Fetches}
	if old, ok := r.File(StreamName); ok {
		rf.Replaced = append(rf.Replaced, old)
	}
	if _, err := os.Stat(stream); err == nil {
		rf.KeptAs = StreamName + ".damaged-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Rename(stream, filepath.Join(r.Dir, filepath.FromSlash(rf.KeptAs))); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(stream), 0o755); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(fresh.Dir, filepath.FromSlash(StreamName)), stream); err != nil {
		return err
	}
	fm := &fresh.Manifest
	m.Stream, m.Series, m.Outcomes, m.Metrics, m.Fetches = fm.Stream, fm.Series, fm.Outcomes, fm.Metrics, fm.Fetches
	m.Refetches = append(m.Refetches, rf)
	return nil
}

// Rehash updates the manifest's entries of the files rebuilt (names, with
// their roles), removes the entries of the files still missing or damaged
// (recorded as lost by the last refetch), and writes the manifest.
func (r *Run) Rehash(rebuilt map[string]string) error {
	m := &r.Manifest
	var rf *Refetch
	if n := len(m.Refetches); n > 0 {
		rf = &m.Refetches[n-1]
	}
	for name, role := range rebuilt {
		n, sum, err := hashFile(filepath.Join(r.Dir, filepath.FromSlash(name)))
		if err != nil {
			return err
		}
		f := File{Name: name, Role: role, Bytes: n, SHA256: sum}
		if i := slices.IndexFunc(m.Files, func(x File) bool { return x.Name == name }); i >= 0 {
			if rf != nil && name != StreamName {
				rf.Replaced = append(rf.Replaced, m.Files[i])
			}
			m.Files[i] = f
		} else {
			m.Files = append(m.Files, f)
		}
	}
	for _, p := range r.Check() {
		i := slices.IndexFunc(m.Files, func(x File) bool { return x.Name == p.Name })
		if rf != nil {
			rf.Lost = append(rf.Lost, m.Files[i])
		}
		m.Files = slices.Delete(m.Files, i, i+1)
	}
	if err := writeManifest(r.Dir, m); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(r.Dir, ManifestName), err)
	}
	return nil
}
