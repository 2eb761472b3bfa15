// Command alumet-agent measures the power and energy of Grid'5000 nodes, a Go
// counterpart of the Alumet agent for users of its kwollect-input plugin.
package main

import (
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/alumet-go/alumet-agent/cmd/alumet-agent/cli"
)

func main() {
	// ALUMET_CPUPROFILE=file writes a pprof CPU profile of the whole run
	// (for `go tool pprof`): how the performance numbers of the README are
	// explained.
	if path := os.Getenv("ALUMET_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "ALUMET_CPUPROFILE: %v\n", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(os.Stderr, "ALUMET_CPUPROFILE: %v\n", err)
			os.Exit(1)
		}
		code := cli.Main(os.Args[1:], os.Stdout, os.Stderr)
		pprof.StopCPUProfile()
		f.Close()
		os.Exit(code)
	}
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
