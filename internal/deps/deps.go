//go:build tools

// Package deps pins the modules the project depends on before code uses them.
package deps

import (
	_ "github.com/BurntSushi/toml"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/spf13/cobra"
	_ "github.com/stretchr/testify/require"
)
