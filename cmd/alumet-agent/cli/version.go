package cli

import (
	"runtime/debug"
	"strings"
	"sync"
)

// Version and BuildDate are set at link time (-ldflags -X, as make build
// and make dist do). When they are not, the version comes from the build
// information Go records (see versionOf).
var (
	Version   = devVersion
	BuildDate = unknownDate
	// Commit is the git commit, for run directories' manifests (make sets
	// it; otherwise Go's build information, when it has it).
	Commit = ""
)

const (
	devVersion  = "0.1.0-dev"
	unknownDate = "unknown"
)

// versionInfo is this binary's version and detail, computed once.
var versionInfo = sync.OnceValues(func() (string, string) {
	bi, _ := debug.ReadBuildInfo()
	return versionOf(Version, BuildDate, bi)
})

// versionOf gives what --version prints, "alumet-agent VERSION (DETAIL)",
// from the link-time ldVersion and ldDate and the build information bi
// (nil: none). Whatever ldflags set wins. Otherwise:
//
//   - VERSION is the module version without its "v": the release of
//     `go install …@v0.2.0`, or the pseudo-version naming the commit of
//     `go install …@latest` (or @commit), or, when Go (1.24 and later)
//     builds in a git clone, the tag or pseudo-version of the checked-out
//     commit ("+dirty" when modified). When Go recorded a revision but no
//     version, it is "0.1.0-dev-<12 hex of the commit>", "-dirty" when
//     modified, like Alumet's development builds. Else "0.1.0-dev".
//   - DETAIL is the build date set by ldflags, else the commit's date
//     (vcs.time), else the Go toolchain, else "unknown".
func versionOf(ldVersion, ldDate string, bi *debug.BuildInfo) (version, detail string) {
	version, detail = ldVersion, ldDate
	if bi == nil {
		return version, detail
	}
	var revision, commitTime string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.time":
			commitTime = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if version == devVersion {
		switch mv := bi.Main.Version; {
		case mv != "" && mv != "(devel)":
			version = strings.TrimPrefix(mv, "v")
		case revision != "":
			version = devVersion + "-" + revision[:min(12, len(revision))]
			if modified {
				version += "-dirty"
			}
		}
	}
	if detail == unknownDate {
		switch {
		case len(commitTime) >= len("2006-01-02"):
			detail = commitTime[:len("2006-01-02")]
		case len(strings.Fields(bi.GoVersion)) > 0:
			detail = strings.Fields(bi.GoVersion)[0] // "go1.26.0 X:exp": the release
		}
	}
	return version, detail
}

// agentVersion is the version alone, as the start-up log line gives it.
func agentVersion() string {
	v, _ := versionInfo()
	return v
}

// vcsRevision is the commit this binary was built from ("" if unknown),
// "+dirty" when the tree was modified.
func vcsRevision() string {
	if Commit != "" {
		return Commit
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" && dirty {
		rev += "+dirty"
	}
	return rev
}
