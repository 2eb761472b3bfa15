package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
)

var built struct {
	once sync.Once
	dir  string
	err  error
}

// Binaries builds alumet-agent and kwollect-emulator (cmd/...) once per
// test binary into a temporary directory and returns it; -short skips the
// test (end-to-end tests build the binaries). A package's TestMain calls
// RemoveBinaries after m.Run.
func Binaries(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the end-to-end tests build the binaries")
	}
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "alumet-test-bin-"); built.err != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", built.dir+"/", "github.com/alumet-go/alumet-agent/cmd/...").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("building the binaries: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.dir
}

// RemoveBinaries removes what Binaries built.
func RemoveBinaries() {
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
}
