// Package racetest lets heavy single-threaded tests step out of make
// test's -race pass (see WithoutRace).
package racetest

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// WithoutRace marks a test (or one of its subtests) whose work is heavy,
// single-threaded CPU that the race detector slows about 6 times, and whose
// concurrent code paths a smaller case covers under -race. make test lists
// these tests in ALUMET_NORACE_TESTS (the Makefile's NORACE_TESTS) for its
// -race pass, where they are skipped, and runs them in a second pass
// without -race. Without that variable (a plain go test -race) they run.
func WithoutRace(t testing.TB) {
	t.Helper()
	list := os.Getenv("ALUMET_NORACE_TESTS")
	if !Enabled || list == "" {
		return
	}
	top, _, _ := strings.Cut(t.Name(), "/")
	if !slices.Contains(strings.Split(list, "|"), top) {
		t.Fatalf("%s calls racetest.WithoutRace but is not in ALUMET_NORACE_TESTS (%s): make test would not run it without -race; add it to the Makefile's NORACE_TESTS", top, list)
	}
	t.Skip("heavy single-threaded work: make test runs it without -race (NORACE_TESTS)")
}
