// Command alumet-agent measures the power and energy of Grid'5000 nodes, a Go
// counterpart of the Alumet agent for users of its kwollect-input plugin.
package main

import (
	"os"

	"github.com/alumet-go/alumet-agent/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
