package parquet

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The independent reader: hyparquet (pure JavaScript) run by node, with
// the versions of testdata/hyparquet/package-lock.json installed in
// $ALUMET_NODE_MODULES_DIR, by default ~/.cache/alumet-test/node:
//
//	d=~/.cache/alumet-test/node; mkdir -p $d && cp testdata/hyparquet/package*.json $d && npm ci --prefix $d
//
// Without node or hyparquet the tests that need them skip, except with
// ALUMET_REQUIRE_SERVERS=1 (CI), where they fail.

func nodeModulesDir() string {
	if d := os.Getenv("ALUMET_NODE_MODULES_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "alumet-test", "node")
}

// needHyparquet returns node's path and the directory holding hyparquet's
// node_modules, or skips (fails in CI).
func needHyparquet(t *testing.T) (node, modules string) {
	t.Helper()
	missing := func(what string) {
		msg := what + "; install it with: d=~/.cache/alumet-test/node; mkdir -p $d && cp plugins/parquet/testdata/hyparquet/package*.json $d && npm ci --prefix $d (and apt-get install nodejs npm)"
		if os.Getenv("ALUMET_REQUIRE_SERVERS") == "1" {
			t.Fatal("ALUMET_REQUIRE_SERVERS=1: " + msg)
		}
		t.Skip("the independent Parquet reader is missing: " + msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not on $PATH")
	}
	modules = nodeModulesDir()
	for _, pkg := range []string{"hyparquet", "hyparquet-compressors"} {
		if _, err := os.Stat(filepath.Join(modules, "node_modules", pkg, "package.json")); err != nil {
			missing(pkg + " is not in " + filepath.Join(modules, "node_modules"))
		}
	}
	return node, modules
}

// jsFile is what testdata/read_parquet.mjs prints.
type jsFile struct {
	Meta struct {
		Columns []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Repetition string          `json:"repetition"`
			Logical    json.RawMessage `json:"logical"`
		} `json:"columns"`
		Codecs    []string `json:"codecs"`
		RowGroups int      `json:"row_groups"`
		Rows      string   `json:"rows"`
	}
	Rows []map[string]*string
}

// readWithHyparquet reads path with the independent reader.
func readWithHyparquet(t *testing.T, path string) jsFile {
	t.Helper()
	node, modules := needHyparquet(t)
	cmd := exec.Command(node, filepath.Join("testdata", "read_parquet.mjs"), modules, path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "hyparquet could not read %s: %s", path, stderr.String())
	var f jsFile
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	require.True(t, sc.Scan())
	require.NoError(t, json.Unmarshal(sc.Bytes(), &f.Meta))
	for sc.Scan() {
		var r map[string]*string
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r), "%s", sc.Text())
		f.Rows = append(f.Rows, r)
	}
	require.NoError(t, sc.Err())
	return f
}

// lateText turns the late column's JSON into the text form of each value,
// the CSV's (strings as they are, numbers and booleans as written, lists
// as [a, b]).
func lateText(t *testing.T, j string) map[string]string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(j))
	dec.UseNumber()
	var m map[string]any
	require.NoError(t, dec.Decode(&m))
	out := map[string]string{}
	var text func(v any) string
	text = func(v any) string {
		switch v := v.(type) {
		case string:
			return v
		case json.Number:
			return v.String()
		case bool:
			if v {
				return "true"
			}
			return "false"
		case []any:
			parts := make([]string, len(v))
			for i, e := range v {
				parts[i] = text(e)
			}
			return "[" + strings.Join(parts, ", ") + "]"
		}
		t.Fatalf("unexpected JSON value %#v", v)
		return ""
	}
	for k, v := range m {
		out[k] = text(v)
	}
	return out
}
