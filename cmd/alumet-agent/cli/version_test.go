package cli

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestVersionOf(t *testing.T) {
	const rev = "a1fa1ab3c5d7e9f0a1fa1ab3c5d7e9f0a1fa1ab3"
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{
			{Key: "-buildmode", Value: "exe"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: rev},
			{Key: "vcs.time", Value: "2026-12-01T15:56:37Z"},
			{Key: "vcs.modified", Value: modified},
		}
	}
	devel := debug.Module{Path: "github.com/alumet-go/alumet-agent", Version: "(devel)"}
	tests := []struct {
		name                string
		ldVersion, ldDate   string
		bi                  *debug.BuildInfo
		wantVersion, wantAt string
	}{
		{"ldflags set (make build, make dist)", "a1fa1ab-dirty", "2026-12-02",
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: devel, Settings: vcs("true")}, "a1fa1ab-dirty", "2026-12-02"},
		{"ldflags set, no build info", "0.3.0", "2026-12-02", nil, "0.3.0", "2026-12-02"},
		{"only the version set by ldflags: the commit's date", "a1fa1ab", unknownDate,
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: devel, Settings: vcs("false")}, "a1fa1ab", "2026-12-01"},
		{"go install …@v0.2.0", devVersion, unknownDate,
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: devel.Path, Version: "v0.2.0"}}, "0.2.0", "go1.26.8"},
		{"go install …@latest without a tag: the pseudo-version names the commit", devVersion, unknownDate,
			&debug.BuildInfo{GoVersion: "go1.26.8 X:nodwarf5", Main: debug.Module{Path: devel.Path, Version: "v0.0.0-20261201155637-a1fa1ab3c5d7"}},
			"0.0.0-20261201155637-a1fa1ab3c5d7", "go1.26.8"},
		{"go build in a clone (Go 1.24+), modified", devVersion, unknownDate,
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: devel.Path, Version: "v0.0.0-20261201155637-a1fa1ab3c5d7+dirty"}, Settings: vcs("true")},
			"0.0.0-20261201155637-a1fa1ab3c5d7+dirty", "2026-12-01"},
		{"vcs revision, clean, no module version", devVersion, unknownDate,
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: devel, Settings: vcs("false")}, "0.1.0-dev-a1fa1ab3c5d7", "2026-12-01"},
		{"vcs revision, dirty, no module version", devVersion, unknownDate,
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: devel, Settings: vcs("true")}, "0.1.0-dev-a1fa1ab3c5d7-dirty", "2026-12-01"},
		{"no vcs information (-buildvcs=false, a git worktree)", devVersion, unknownDate,
			&debug.BuildInfo{GoVersion: "go1.26.8", Main: devel}, devVersion, "go1.26.8"},
		{"nothing at all", devVersion, unknownDate, nil, devVersion, unknownDate},
		{"empty build info", devVersion, unknownDate, &debug.BuildInfo{}, devVersion, unknownDate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, at := versionOf(tt.ldVersion, tt.ldDate, tt.bi)
			require.Equal(t, tt.wantVersion, v)
			require.Equal(t, tt.wantAt, at)
		})
	}
}
