package rapl

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/alumet-go/alumet-agent/measure"
)

// sysfs is the tree the plugin reads, <sysfs_root>, with the file
// operations it uses (tests replace them to play permission errors: this
// machine's tests run as root, whom chmod does not stop).
type sysfs struct {
	root     string
	open     func(name string) (*os.File, error)
	readFile func(name string) ([]byte, error)
	// perfOpen opens a perf event (nil: perfEventOpen, Linux only).
	perfOpen func(pmuType uint32, config uint64, cpu int) (*os.File, error)
	// paranoid reads kernel.perf_event_paranoid for the messages.
	paranoid func() string
}

func newSysfs(root string) *sysfs {
	if root == "" {
		root = DefaultSysfsRoot
	}
	return &sysfs{root: root, open: os.Open, readFile: os.ReadFile, perfOpen: perfEventOpen, paranoid: readParanoid}
}

// powercapDir is the powercap control type whose zones Alumet reads.
func (s *sysfs) powercapDir() string {
	return filepath.Join(s.root, "devices", "virtual", "powercap", "intel-rapl")
}

// perfDir is the power PMU's directory.
func (s *sysfs) perfDir() string { return filepath.Join(s.root, "devices", "power") }

func readParanoid() string {
	b, err := os.ReadFile("/proc/sys/kernel/perf_event_paranoid")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// isPermission reports whether err is a permission error (EACCES, EPERM).
func isPermission(err error) bool { return errors.Is(err, fs.ErrPermission) }

// powercapPermissionError is a powercap file the agent may not read.
type powercapPermissionError struct {
	path, dir string
	err       error
}

func (e *powercapPermissionError) Error() string {
	return fmt.Sprintf("cannot read %s: permission denied. Since Linux 5.10, the RAPL energy counters (energy_uj) are readable by root only "+
		"(CVE-2020-8694). On Grid'5000, run the agent with sudo-g5k (standard environment) or in a deploy job (kadeploy, where you are root), "+
		"or make the counters readable first: sudo-g5k chmod a+r -R %s (elsewhere: sudo chmod a+r -R %s); "+
		"or let the agent use perf_events (no_perf_events = false) with kernel.perf_event_paranoid lowered or CAP_PERFMON", e.path, e.dir, e.dir)
}

func (e *powercapPermissionError) Unwrap() error { return e.err }

// zone is a powercap zone: a directory intel-rapl:N[:M] with name,
// energy_uj and max_energy_range_uj.
type zone struct {
	path   string
	name   string
	domain domain
	socket int
}

// maxZoneDepth bounds the walk (real trees are 2 deep).
const maxZoneDepth = 6

// zones walks the powercap tree as Alumet does: every directory whose name
// starts with intel-rapl, recursively; package-N gives socket N, a child
// takes its parent's socket, a zone with neither (psys, a top-level dram)
// is on socket 0. An unknown zone name is an error naming it. The zones
// are sorted by path.
func (s *sysfs) zones() ([]zone, error) {
	var out []zone
	var walk func(dir string, depth int, parentSocket int, parentHas bool) error
	walk = func(dir string, depth int, parentSocket int, parentHas bool) error {
		entries, err := os.ReadDir(dir)
		if err != nil {
			if isPermission(err) {
				return &powercapPermissionError{path: dir, dir: s.powercapDir(), err: err}
			}
			return err
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), "intel-rapl") {
				continue
			}
			path := filepath.Join(dir, e.Name())
			if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
				continue
			}
			if depth >= maxZoneDepth {
				return fmt.Errorf("powercap zones nested more than %d deep at %s", maxZoneDepth, path)
			}
			b, err := s.readFile(filepath.Join(path, "name"))
			if err != nil {
				if isPermission(err) {
					return &powercapPermissionError{path: filepath.Join(path, "name"), dir: s.powercapDir(), err: err}
				}
				return fmt.Errorf("powercap zone %s: %w", path, err)
			}
			name := strings.TrimSpace(string(b))
			d, sock, has, err := zoneDomain(name)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if !has && parentHas {
				sock, has = parentSocket, true
			}
			out = append(out, zone{path: path, name: name, domain: d, socket: sock})
			if err := walk(path, depth+1, sock, has); err != nil {
				return err
			}
		}
		return nil
	}
	dir := s.powercapDir()
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s does not exist (no powercap RAPL driver: is intel_rapl_common loaded? in a VM or a container, RAPL is usually not exposed)", dir)
		}
		return nil, err
	}
	if err := walk(dir, 0, 0, false); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no RAPL zone (intel-rapl:*) in %s", dir)
	}
	slices.SortFunc(out, func(a, b zone) int { return strings.Compare(a.path, b.path) })
	return out, nil
}

// counterBufSize holds a u64 in decimal and its newline.
const counterBufSize = 32

// openZone opens a zone's energy_uj, kept open and read with pread at every
// poll, and reads its max_energy_range_uj, the counter's wrap.
func (s *sysfs) openZone(z zone) (*channel, error) {
	ePath := filepath.Join(z.path, "energy_uj")
	f, err := s.open(ePath)
	if err != nil {
		if isPermission(err) {
			return nil, &powercapPermissionError{path: ePath, dir: s.powercapDir(), err: err}
		}
		return nil, fmt.Errorf("powercap zone %s (%s): %w", z.name, z.path, err)
	}
	mPath := filepath.Join(z.path, "max_energy_range_uj")
	b, err := s.readFile(mPath)
	if err != nil {
		f.Close()
		if isPermission(err) {
			return nil, &powercapPermissionError{path: mPath, dir: s.powercapDir(), err: err}
		}
		return nil, fmt.Errorf("powercap zone %s (%s): %w", z.name, z.path, err)
	}
	maxUJ, err := parseCounter(b)
	if err != nil || maxUJ == 0 {
		f.Close()
		if err == nil {
			err = errors.New("it is 0")
		}
		return nil, fmt.Errorf("powercap zone %s: %s: %w", z.name, mPath, err)
	}
	buf := make([]byte, counterBufSize)
	read := func() (uint64, error) {
		n, err := f.ReadAt(buf, 0)
		if err != nil && !(errors.Is(err, io.EOF) && n > 0) {
			return 0, err
		}
		if n == len(buf) {
			return 0, fmt.Errorf("%s: more than %d bytes", ePath, len(buf)-1)
		}
		v, err := parseCounter(buf[:n])
		if err != nil {
			return 0, fmt.Errorf("%s: %w", ePath, err)
		}
		return v, nil
	}
	// A first read now: a zone that cannot be read fails at start, not at
	// the first poll.
	if _, err := read(); err != nil {
		f.Close()
		if isPermission(err) {
			return nil, &powercapPermissionError{path: ePath, dir: s.powercapDir(), err: err}
		}
		return nil, fmt.Errorf("powercap zone %s: %w", z.name, err)
	}
	return newChannel(z.domain, z.socket, fmt.Sprintf("powercap zone %s (%s)", z.name, z.path),
		read, f.Close, maxUJ, 1e-6), nil
}

// channel is one energy counter read at every poll: a powercap zone, or a
// perf event on one socket.
type channel struct {
	domain   domain
	socket   int
	resource measure.Resource
	attrs    []measure.Attribute // shared by its points, read-only
	label    string
	read     func() (uint64, error)
	close    func() error
	energy   energy
	lost     bool
	warnings int
}

func newChannel(d domain, socket int, label string, read func() (uint64, error), closeFn func() error, maxValue uint64, scale float64) *channel {
	return &channel{
		domain: d, socket: socket, resource: d.resource(socket),
		attrs: []measure.Attribute{{Key: "domain", Value: measure.String(d.String())}},
		label: label, read: read, close: closeFn,
		energy: energy{counter: counter{max: maxValue}, scale: scale},
	}
}
