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
	from, to := time.Unix(1796165089, 150_000_000), time.Unix(1796165096, 122230499)
	window := " fetch --from 1796165089.15 --to 1796165096.122230499"
	tests := []struct {
		name  string
		argv0 string
		g     globals
		cfg   string
		files resumeFiles
		run   int
		want  string
	}{
		{"defaults", "alumet-agent", globals{}, "alumet-config.toml", resumeFiles{csv: "alumet-output.csv"}, 0,
			"alumet-agent --config " + filepath.Join(dir, "alumet-config.toml") + " --output-file " + filepath.Join(dir, "alumet-output-refetch.csv") + window},
		{"not on the PATH, the csv path from the config, a run", "./bin/alumet-agent", globals{}, "c.toml", resumeFiles{csv: "out/m.csv"}, 2,
			filepath.Join(dir, "bin/alumet-agent") + " --config " + filepath.Join(dir, "c.toml") + " --output-file " + filepath.Join(dir, "out/m-refetch-run2.csv") + window},
		{"the flags given", "alumet-agent", globals{plugins: []string{"csv", "kwollect-input"}, outputFile: "runs/m.csv", overrides: []string{"plugins.csv.force_flush=false"}}, "/etc/a b.toml", resumeFiles{csv: "ignored.csv"}, 0,
			"alumet-agent --config '/etc/a b.toml' --plugins csv,kwollect-input --config-override plugins.csv.force_flush=false --output-file " +
				filepath.Join(dir, "runs/m-refetch.csv") + window},
		{"energy-report files of their own", "alumet-agent", globals{}, "c.toml", resumeFiles{csv: "o.csv", own: []ownFile{{"energy-report", "summary_file", "alumet-energy.json"}, {"energy-report", "plot_file", "p.svg"}}}, 0,
			"alumet-agent --config " + filepath.Join(dir, "c.toml") +
				` --config-override 'plugins.energy-report.summary_file = "` + filepath.Join(dir, "alumet-energy-refetch.json") + `"'` +
				` --config-override 'plugins.energy-report.plot_file = "` + filepath.Join(dir, "p-refetch.svg") + `"'` +
				" --output-file " + filepath.Join(dir, "o-refetch.csv") + window},
		{"quotes", "alumet-agent", globals{overrides: []string{"plugins.csv.output_path='x.csv'"}}, "c.toml", resumeFiles{csv: "x.csv"}, 0,
			"alumet-agent --config " + filepath.Join(dir, "c.toml") + ` --config-override 'plugins.csv.output_path='\''x.csv'\''' --output-file ` +
				filepath.Join(dir, "x-refetch.csv") + window},
		{"no csv enabled", "alumet-agent", globals{plugins: []string{"kwollect-input", "energy-report"}}, "c.toml", resumeFiles{own: []ownFile{{"energy-report", "summary_file", "e.json"}}}, 0,
			"alumet-agent --config " + filepath.Join(dir, "c.toml") + " --plugins kwollect-input,energy-report" +
				` --config-override 'plugins.energy-report.summary_file = "` + filepath.Join(dir, "e-refetch.json") + `"'` + window},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := argv0
			t.Cleanup(func() { argv0 = old })
			argv0 = func() string { return tt.argv0 }
			require.Equal(t, tt.want, tt.g.resumeCommand(tt.cfg, tt.files)(tt.run, from, to))
		})
	}
}
