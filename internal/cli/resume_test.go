package cli

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestResumeCommand(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	from, to := time.Unix(1796165089, 0), time.Unix(1796165096, 122230499)
	tests := []struct {
		name string
		g    globals
		cfg  string
		want string
	}{
		{"defaults", globals{}, "alumet-config.toml",
			"alumet-agent --config " + filepath.Join(dir, "alumet-config.toml") + " --output-file " + filepath.Join(dir, "alumet-output-refetch.csv") +
				" fetch --from 1796165089 --to 1796165096.122230499"},
		{"the flags given", globals{plugins: []string{"csv", "kwollect-input"}, outputFile: "runs/m.csv", overrides: []string{"plugins.csv.force_flush=false"}}, "/etc/a b.toml",
			"alumet-agent --config '/etc/a b.toml' --plugins csv,kwollect-input --config-override plugins.csv.force_flush=false --output-file " +
				filepath.Join(dir, "runs/m-refetch.csv") + " fetch --from 1796165089 --to 1796165096.122230499"},
		{"quotes", globals{overrides: []string{"plugins.csv.output_path='x.csv'"}}, "c.toml",
			"alumet-agent --config " + filepath.Join(dir, "c.toml") + ` --config-override 'plugins.csv.output_path='\''x.csv'\''' --output-file ` +
				filepath.Join(dir, "alumet-output-refetch.csv") + " fetch --from 1796165089 --to 1796165096.122230499"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.g.resumeCommand(tt.cfg)(from, to))
		})
	}
}
