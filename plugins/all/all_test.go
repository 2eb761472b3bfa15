package all

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Every plugin is registered once, with a sample whose comments a
// generated file can carry: no ${...}, which the loader substitutes even
// in comments (a generated file must load without any variable set).
func TestRegistry(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range Factories() {
		require.False(t, seen[f.Name], "%s registered twice", f.Name)
		seen[f.Name] = true
		require.NotEmpty(t, f.Version, f.Name)
		require.NotNil(t, f.DefaultConfig, f.Name)
		require.NotNil(t, f.Start, f.Name)
		require.NotEmpty(t, f.Sample, "%s has no sample.toml", f.Name)
		require.True(t, strings.HasPrefix(f.Sample, "[plugins."+f.Name+"]\n"), f.Name)
		for _, line := range strings.Split(f.Sample, "\n") {
			if strings.HasPrefix(line, "#") {
				require.NotContains(t, strings.ReplaceAll(line, `\${`, ""), "${", "%s's sample: %s", f.Name, line)
			}
		}
	}
}
