package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWriteTarball(t *testing.T) {
	mtime := time.Unix(1796227518, 0)
	files := []file{{"alumet-agent", 0o755, []byte("ELF…")}, {"README.md", 0o644, []byte("# alumet-agent\n")}}
	var a, b bytes.Buffer
	require.NoError(t, writeTarball(&a, "alumet-agent_0.2.0_linux_amd64", mtime, files))
	require.NoError(t, writeTarball(&b, "alumet-agent_0.2.0_linux_amd64", mtime, files))
	require.Equal(t, a.Bytes(), b.Bytes(), "the same files give the same bytes")

	zr, err := gzip.NewReader(&a)
	require.NoError(t, err)
	tr := tar.NewReader(zr)
	type entry struct {
		name    string
		mode    int64
		content string
	}
	var got []entry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		require.Equal(t, 0, h.Uid)
		require.Equal(t, "root", h.Uname)
		require.True(t, h.ModTime.Equal(mtime), "%s dated %v", h.Name, h.ModTime)
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		got = append(got, entry{h.Name, h.Mode, string(data)})
	}
	require.Equal(t, []entry{
		{"alumet-agent_0.2.0_linux_amd64/", 0o755, ""},
		{"alumet-agent_0.2.0_linux_amd64/alumet-agent", 0o755, "ELF…"},
		{"alumet-agent_0.2.0_linux_amd64/README.md", 0o644, "# alumet-agent\n"},
	}, got)
}

func TestWriteSums(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "b.tar.gz"), []byte("bbb"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.tar.gz"), []byte("aaa"), 0o644))
	require.NoError(t, writeSums(dir, []string{"b.tar.gz", "a.tar.gz"}))
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	got, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	require.NoError(t, err)
	require.Equal(t, sum("aaa")+"  a.tar.gz\n"+sum("bbb")+"  b.tar.gz\n", string(got), "sha256sum -c's format, sorted")
	require.ErrorContains(t, writeSums(dir, []string{"missing.tar.gz"}), "SHA256SUMS")
}

func TestRunRefusesBadArguments(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		version   string
		platforms []string
		wantErr   string
	}{
		{"", []string{"linux/amd64"}, `-version ""`},
		{"0.2.0 beta", []string{"linux/amd64"}, "letters, digits"},
		{"../0.2.0", []string{"linux/amd64"}, "letters, digits"},
		{"0.2.0", nil, "no GOOS/GOARCH"},
		{"0.2.0", []string{"linux"}, `platform "linux"`},
		{"0.2.0", []string{"linux/arm64/v8"}, "expected GOOS/GOARCH"},
	}
	for _, tt := range tests {
		err := run("go", dir, tt.version, "", time.Unix(0, 0), tt.platforms)
		require.ErrorContains(t, err, tt.wantErr, "%q %v", tt.version, tt.platforms)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "nothing is built nor written")
}
