// Command mkdist builds the release tarballs of make dist: for each
// GOOS/GOARCH given, static stripped binaries of alumet-agent and
// kwollect-emulator (CGO_ENABLED=0, -trimpath, -s -w) with README.md (and
// LICENSE if there is one) in alumet-agent_<version>_<os>_<arch>.tar.gz,
// then a SHA256SUMS file for them that `sha256sum -c SHA256SUMS` checks.
//
// It is Go rather than tar and sha256sum so that make dist gives the same
// bytes on any machine with Go (GNU tar, BSD tar, no sha256sum on macOS):
// the entries are in a fixed order, owned by root, dated -mtime.
//
//	go run ./scripts/mkdist -o dist -version 0.2.0 -ldflags '-X …' linux/amd64 linux/arm64
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// commands are the binaries of every tarball.
var commands = []string{"alumet-agent", "kwollect-emulator"}

// docs are the other files of every tarball, from the repository root: a
// missing optional one is left out.
var docs = []struct {
	name     string
	optional bool
}{{"README.md", false}, {"LICENSE", true}}

// safeVersion is what a version may hold to be part of a file name.
var safeVersion = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)

func main() {
	goCmd := flag.String("go", "go", "the go command")
	out := flag.String("o", "dist", "output directory")
	version := flag.String("version", "", "version in the tarballs' names (required)")
	ldflags := flag.String("ldflags", "", "more -ldflags for go build (the -X of the version), after -s -w")
	mtime := flag.Int64("mtime", 0, "modification time of the tarballs' entries, Unix seconds (SOURCE_DATE_EPOCH)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: mkdist [-go GO] [-o DIR] -version V [-ldflags FLAGS] [-mtime SECONDS] GOOS/GOARCH...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := run(*goCmd, *out, *version, *ldflags, time.Unix(*mtime, 0), flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "mkdist:", err)
		os.Exit(1)
	}
}

func run(goCmd, out, version, ldflags string, mtime time.Time, platforms []string) error {
	if !safeVersion.MatchString(version) {
		return fmt.Errorf("-version %q: expected letters, digits and . _ + - only", version)
	}
	if len(platforms) == 0 {
		return errors.New("no GOOS/GOARCH given")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	var tarballs []string
	for _, p := range platforms {
		goos, goarch, ok := strings.Cut(p, "/")
		if !ok || goos == "" || goarch == "" || strings.Contains(goarch, "/") {
			return fmt.Errorf("platform %q: expected GOOS/GOARCH, e.g. linux/amd64", p)
		}
		name := fmt.Sprintf("alumet-agent_%s_%s_%s", version, goos, goarch)
		if err := buildTarball(goCmd, filepath.Join(out, name+".tar.gz"), name, goos, goarch, ldflags, mtime); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		tarballs = append(tarballs, name+".tar.gz")
	}
	return writeSums(out, tarballs)
}

// buildTarball builds the commands for goos/goarch in a temporary directory
// and packs them with the docs under the directory dir/ of the tarball.
func buildTarball(goCmd, path, dir, goos, goarch, ldflags string, mtime time.Time) error {
	tmp, err := os.MkdirTemp("", "mkdist-")
	if err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	args := []string{"build", "-trimpath", "-ldflags", strings.TrimSpace("-s -w " + ldflags), "-o", tmp + string(filepath.Separator)}
	for _, c := range commands {
		args = append(args, "./cmd/"+c)
	}
	cmd := exec.Command(goCmd, args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	var files []file
	for _, c := range commands {
		name := c
		if goos == "windows" {
			name += ".exe"
		}
		data, err := os.ReadFile(filepath.Join(tmp, name))
		if err != nil {
			return fmt.Errorf("built binary: %w", err)
		}
		files = append(files, file{name, 0o755, data})
	}
	for _, d := range docs {
		data, err := os.ReadFile(d.name)
		if errors.Is(err, os.ErrNotExist) && d.optional {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
		files = append(files, file{d.name, 0o644, data})
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("tarball: %w", err)
	}
	if err := writeTarball(f, dir, mtime, files); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// file is an entry of a tarball.
type file struct {
	name string
	mode int64
	data []byte
}

// writeTarball writes a gzipped tar of the files, in this order, under
// dir/, owned by root and dated mtime: the same files give the same bytes.
func writeTarball(w io.Writer, dir string, mtime time.Time, files []file) error {
	zw, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	tw := tar.NewWriter(zw)
	hdr := func(name string, mode int64, size int64, typ byte) *tar.Header {
		return &tar.Header{Typeflag: typ, Name: name, Mode: mode, Size: size, ModTime: mtime.UTC(),
			Uname: "root", Gname: "root", Format: tar.FormatUSTAR}
	}
	if err := tw.WriteHeader(hdr(dir+"/", 0o755, 0, tar.TypeDir)); err != nil {
		return fmt.Errorf("tar: %w", err)
	}
	for _, f := range files {
		if err := tw.WriteHeader(hdr(dir+"/"+f.name, f.mode, int64(len(f.data)), tar.TypeReg)); err != nil {
			return fmt.Errorf("tar %s: %w", f.name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return fmt.Errorf("tar %s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("tar: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	return nil
}

// writeSums writes dir/SHA256SUMS for the named files of dir, in
// sha256sum's format ("<hex>  <name>"), sorted by name.
func writeSums(dir string, names []string) error {
	names = append([]string(nil), names...)
	sort.Strings(names)
	var b bytes.Buffer
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return fmt.Errorf("SHA256SUMS: %w", err)
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(sum[:]), n)
	}
	if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("SHA256SUMS: %w", err)
	}
	return nil
}
