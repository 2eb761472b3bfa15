// Command kwgen writes a realistic Kwollect metrics response (a JSON array of
// wattmetre_power_watt rows for N nodes, as GET /stable/sites/{site}/metrics
// returns it) for benchmarks. The output is deterministic by seed and is
// streamed with constant memory.
//
//	kwgen -rows 1000000 -nodes 10 -hz 50 -o ref.json -meta ref.meta
//	kwgen -size 1GB -o big.json
//
// A summary goes to stderr; -meta writes it as shell-readable key=value
// lines (rows, bytes, first, last, from, to, site, nodes, ...).
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/alumet-go/alumet-agent/bench/kwgen"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "kwgen:", err)
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kwgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rows := fs.Int64("rows", 0, "number of rows (default 1000000 unless -size is given)")
	size := fs.String("size", "", "approximate body size instead of -rows: 180MB, 1GB, 512MiB…")
	nodes := fs.Int("nodes", kwgen.DefaultNodes, "number of nodes")
	hz := fs.Int("hz", kwgen.DefaultHz, "rows per second per node: 1 (1 Hz means), 50 or 100 (raw frames of a monitor job)")
	start := fs.String("start", kwgen.DefaultStart.Format(time.RFC3339), "first instant, RFC 3339 with an offset")
	site := fs.String("site", kwgen.DefaultSite, "Grid'5000 site (picks the cluster names)")
	seed := fs.Uint64("seed", 1, "random seed: the same seed gives the same bytes")
	out := fs.String("o", "-", "output file (- for stdout); written to a temporary file and renamed when complete")
	meta := fs.String("meta", "", "also write the summary as key=value lines to this file")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kwgen [-rows N | -size SIZE] [-nodes N] [-hz 1|50|100] [-start TIME] [-site S] [-seed N] [-o FILE] [-meta FILE]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg := kwgen.Config{Rows: *rows, Nodes: *nodes, Hz: *hz, Site: *site, Seed: *seed}
	if *size != "" {
		if *rows != 0 {
			return errors.New("give -rows or -size, not both")
		}
		b, err := kwgen.ParseSize(*size)
		if err != nil {
			return err
		}
		cfg.Bytes = b
	} else if cfg.Rows == 0 {
		cfg.Rows = 1_000_000
	}
	t, err := time.Parse(time.RFC3339Nano, *start)
	if err != nil {
		return fmt.Errorf("-start: %w", err)
	}
	cfg.Start = t

	began := time.Now()
	sum, err := write(*out, stdout, cfg)
	if err != nil {
		return err
	}
	el := time.Since(began)
	fmt.Fprintf(stderr, "kwgen: %d rows, %d bytes (%.1f MB), %d nodes at %d Hz, %s .. %s, in %v\n",
		sum.Rows, sum.Bytes, float64(sum.Bytes)/1e6, len(sum.Nodes), sum.Hz,
		sum.First.Format(time.RFC3339Nano), sum.Last.Format(time.RFC3339Nano), el.Round(time.Millisecond))
	if *meta != "" {
		if err := os.WriteFile(*meta, []byte(metaText(sum)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// write generates into path (atomically) or to stdout for "-".
func write(path string, stdout io.Writer, cfg kwgen.Config) (kwgen.Summary, error) {
	if path == "-" {
		return kwgen.Generate(stdout, cfg)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return kwgen.Summary{}, err
	}
	defer os.Remove(f.Name()) // no-op after the rename
	if err := f.Chmod(0o644); err != nil {
		_ = f.Close()
		return kwgen.Summary{}, err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	sum, err := kwgen.Generate(bw, cfg)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Close()
	} else {
		_ = f.Close()
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	return sum, err
}

// metaText is the summary as key=value lines that a shell can read: from
// and to are epoch seconds of a window that holds every row (from the
// first row's whole second to one second after the last row).
func metaText(s kwgen.Summary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "rows=%d\n", s.Rows)
	fmt.Fprintf(&b, "bytes=%d\n", s.Bytes)
	fmt.Fprintf(&b, "first=%s\n", s.First.Format(time.RFC3339Nano))
	fmt.Fprintf(&b, "last=%s\n", s.Last.Format(time.RFC3339Nano))
	fmt.Fprintf(&b, "from=%d\n", s.First.Unix())
	fmt.Fprintf(&b, "to=%d\n", s.Last.Unix()+1)
	fmt.Fprintf(&b, "site=%s\n", s.Site)
	fmt.Fprintf(&b, "hz=%d\n", s.Hz)
	fmt.Fprintf(&b, "period_ms=%g\n", float64(s.Period)/float64(time.Millisecond))
	fmt.Fprintf(&b, "cluster=%s\n", s.Cluster)
	fmt.Fprintf(&b, "nodes=%s\n", strings.Join(s.Nodes, ","))
	fmt.Fprintf(&b, "metric=%s\n", kwgen.Metric)
	return b.String()
}
