package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The README doc test: every command line of README.md's fenced shell blocks
// (```sh, ```bash, ```console) that runs alumet-agent or kwollect-emulator is
// run here, against the emulator started from the README's own
// kwollect-emulator line (on 127.0.0.1 port 0 instead of 8080).
//
// Each command runs through `sh -c`, verbatim, in a directory of its own,
// with the binaries first on $PATH (and as ./bin/… and the tarball's
// ./alumet-agent_<version>_linux_amd64/…). Its alumet-config.toml is the
// README's [plugins.kwollect-input] TOML block that precedes it under the same
// heading, else the README's first one (the seed's), with api_url pointed at
// the emulator. Credentials: the seed's login with $G5K_PASSWORD, the
// offline section's login demo (the emulator line's --user demo:secret) with
// the password its `export G5K_PASSWORD=…` line gives, and a ~/.netrc for the
// config without credentials. job_id = "auto" gets $OAR_JOB_ID and
// $OAR_NODEFILE of a running job of the emulator; fetch --job-id the finished
// job 2315687.
//
// A command must exit 0 (or the code its comment gives: "# exit code N") and
// write the files it says it writes: --output-file's CSV, energy-report's
// alumet-output.csv, alumet-energy.json and alumet-power.png with the default
// configuration.

const (
	readmeLogin    = "YOUR_G5K_LOGIN" // the seed's login line
	readmePassword = "readme-Pa55word"
	readmeJobID    = "2315687" // README: fetch --job-id 2315687
	readmeAutoJob  = "4243"    // $OAR_JOB_ID for job_id = "auto"
)

// readmeNotRunnable lists the README's agent command lines that this test
// does not run, with the reason. Keep it short: a command that needs the real
// API or a real OAR job runs against the emulator instead.
var readmeNotRunnable = map[string]string{
	"alumet-agent report runs/A                          # the same summary, in runs/A/energy.report-<time>.json (+ plot, run table)":     reportNeedsRun,
	"alumet-agent report --baseline before:60s --json idle60.json runs/A   # another baseline":                                            reportNeedsRun,
	"alumet-agent report --exclude-runs 1 --trim-start 5s --json steady.json runs/A   # without the warm-up run and each run's first 5 s": reportNeedsRun,
	"alumet-agent report runs/A runs/B                   # B against A: mean energy per run, B − A, 95 % CI, Welch's t":                   reportNeedsRun,
	"alumet-agent report --phase compute runs/A runs/B   # the same for one phase of each run":                                            reportNeedsRun,
	"alumet-agent report --runs runs/A runs/B > all-runs.csv               # the run tables, concatenated":                                reportNeedsRun,
}

// reportNeedsRun: the README's report lines read run directories made
// before; test/e2e/rundir_test.go runs that loop.
const reportNeedsRun = "needs run directories made before (rundir_test.go runs the loop)"

type readmeCommand struct {
	line    string // as written in the README
	lineNo  int
	heading string
	config  string   // the TOML block it runs with
	env     []string // from the section's `export K=V` lines
}

var (
	fenceOpen     = regexp.MustCompile("^\\s*```\\s*([A-Za-z0-9_-]*)\\s*$")
	assignment    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=\S*$`)
	exportLine    = regexp.MustCompile(`^export\s+([A-Za-z_][A-Za-z0-9_]*)=(\S+)\s*$`)
	exitCodeNote  = regexp.MustCompile(`#.*\bexit code (\d+)`)
	outputFileArg = regexp.MustCompile(`--output-file[ =]("[^"]+"|'[^']+'|\S+)`)
	pluginsArg    = regexp.MustCompile(`--plugins[ =]("[^"]+"|\S+)`)
)

// readmeCommands extracts the agent and emulator command lines of the
// README's shell blocks, and the TOML configuration each one runs with.
func readmeCommands(t *testing.T, path string) (cmds []readmeCommand, emulatorLine string) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var (
		seedConfig, config, heading string
		env                         []string
		inFence                     bool
		lang                        string
		block                       []string
		lineNo                      int
	)
	s := bufio.NewScanner(f)
	for s.Scan() {
		lineNo++
		line := s.Text()
		if !inFence {
			if m := fenceOpen.FindStringSubmatch(line); m != nil {
				inFence, lang, block = true, m[1], nil
				continue
			}
			if strings.HasPrefix(line, "#") {
				heading, config, env = strings.TrimSpace(strings.TrimLeft(line, "#")), "", nil
			}
			continue
		}
		if strings.TrimSpace(line) == "```" {
			inFence = false
			if lang == "toml" {
				text := strings.Join(block, "\n")
				if strings.Contains(text, "[plugins.kwollect-input]") {
					config = text
					if seedConfig == "" {
						seedConfig = text
					}
				}
			}
			continue
		}
		block = append(block, line)
		if lang != "sh" && lang != "bash" && lang != "console" {
			continue
		}
		cmd := strings.TrimSpace(line)
		if lang == "console" {
			var ok bool
			if cmd, ok = strings.CutPrefix(cmd, "$ "); !ok {
				continue // output
			}
		}
		if m := exportLine.FindStringSubmatch(cmd); m != nil {
			env = append(env, m[1]+"="+m[2])
			continue
		}
		fields := strings.Fields(cmd)
		for len(fields) > 0 && assignment.MatchString(fields[0]) {
			fields = fields[1:]
		}
		if len(fields) == 0 {
			continue
		}
		switch filepath.Base(fields[0]) {
		case "kwollect-emulator":
			require.Empty(t, emulatorLine, "README.md:%d: a second kwollect-emulator command; the test starts one", lineNo)
			emulatorLine = cmd
		case "alumet-agent":
			cmds = append(cmds, readmeCommand{line: cmd, lineNo: lineNo, heading: heading, config: config, env: append([]string(nil), env...)})
		}
	}
	require.NoError(t, s.Err())
	require.False(t, inFence, "README.md: a fenced block is not closed")
	require.NotEmpty(t, seedConfig, "README.md has no [plugins.kwollect-input] TOML block")
	for i := range cmds {
		if cmds[i].config == "" {
			cmds[i].config = seedConfig // the first block, the seed's
		}
	}
	return cmds, emulatorLine
}

// readmeConfig is a README TOML block with api_url pointed at the emulator.
func readmeConfig(block, api string) string {
	var b strings.Builder
	for _, l := range strings.Split(block, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "api_url") {
			continue
		}
		b.WriteString(strings.TrimSpace(l) + "\n")
	}
	fmt.Fprintf(&b, "api_url = %q\n", api)
	return b.String()
}

// readmeWrites is what the command line says it writes.
func readmeWrites(line string) []string {
	var files []string
	if m := outputFileArg.FindStringSubmatch(line); m != nil {
		files = append(files, strings.Trim(m[1], `"'`))
	}
	if strings.Contains(line, " --run-dir ") {
		return nil // the files go into the run directory (rundir_test.go checks them)
	}
	if m := pluginsArg.FindStringSubmatch(line); m != nil && strings.Contains(m[1], "energy-report") {
		if len(files) == 0 {
			files = append(files, "alumet-output.csv")
		}
		files = append(files, "alumet-energy.json", "alumet-power.png")
	}
	if strings.Contains(line, " config regen") {
		files = append(files, "alumet-config.toml")
	}
	return files
}

func TestReadmeCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every command of README.md against the emulator")
	}
	if runtime.GOOS != "linux" {
		t.Skip("exec is Linux only")
	}
	t.Parallel()
	cmds, emuLine := readmeCommands(t, filepath.Join("..", "..", "README.md"))

	// The parser must find the seed's commands (they stay in the README,
	// verbatim) and the emulator line; else it is the parser that broke.
	var lines []string
	for _, c := range cmds {
		lines = append(lines, c.line)
	}
	all := strings.Join(lines, "\n")
	require.Contains(t, all, "alumet-agent --plugins kwollect-input exec ")
	require.Contains(t, all, `alumet-agent --output-file "measurements-kwollect.csv" --plugins csv,kwollect-input exec `)
	require.GreaterOrEqual(t, len(cmds), 10, "too few commands found in README.md:\n%s", all)
	require.NotEmpty(t, emuLine, "README.md shows no kwollect-emulator command")

	// The README's emulator line, on port 0, plus what the commands need: the
	// seed's login, the job fetched by --job-id, the job of job_id = "auto".
	emuArgs := strings.Fields(emuLine)[1:]
	for i, a := range emuArgs {
		require.NotContains(t, a, `'`, "the emulator line is split on blanks: no quotes")
		if strings.HasPrefix(a, "127.0.0.1:") {
			emuArgs[i] = "127.0.0.1:0"
		}
		if a == "#" {
			emuArgs = emuArgs[:i]
			break
		}
	}
	emuArgs = append(emuArgs,
		"--user", readmeLogin+":"+readmePassword,
		"--job", "id="+readmeJobID+";site=lyon;nodes=taurus-7;start=-10m;stop=-8m",
		"--job", "id="+readmeAutoJob+";site=lyon;nodes=taurus-7;start=-1h")
	api := startEmulator(t, emuArgs...)

	pathEnv := "PATH=" + binDir + string(os.PathListSeparator) + os.Getenv("PATH")
	for _, c := range cmds {
		name := fmt.Sprintf("README.md:%d", c.lineNo)
		t.Run(name, func(t *testing.T) {
			if why, ok := readmeNotRunnable[c.line]; ok {
				t.Skipf("not runnable here: %s (%s)", why, c.line)
			}
			if strings.Contains(c.line, "python3") {
				if _, err := exec.LookPath("python3"); err != nil {
					t.Skip("python3 is not installed")
				}
			}
			t.Parallel()
			dir := t.TempDir()
			env := readmeDir(t, dir, c, api)
			env = append(env, pathEnv)
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "sh", "-c", c.line)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "ALUMET_CONFIG=", "RUST_LOG=", "ALUMET_LOG=")
			cmd.Env = append(cmd.Env, env...)
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else {
				require.NoError(t, err)
			}
			want := 0
			if m := exitCodeNote.FindStringSubmatch(c.line); m != nil {
				want, _ = strconv.Atoi(m[1])
			}
			t.Logf("%s\n%s", c.line, out)
			require.Equal(t, want, code, "README.md:%d (%s): %s", c.lineNo, c.heading, c.line)
			require.NotContains(t, string(out), readmePassword, "the password must never be printed")
			for _, f := range readmeWrites(c.line) {
				st, err := os.Stat(filepath.Join(dir, f))
				require.NoError(t, err, "README.md:%d: %s says it writes %s\n%s", c.lineNo, c.line, f, out)
				require.NotZero(t, st.Size(), "README.md:%d: %s is empty", c.lineNo, f)
				if strings.HasSuffix(f, ".csv") {
					require.GreaterOrEqual(t, len(readLines(t, filepath.Join(dir, f))), 2, "README.md:%d: %s has no data row", c.lineNo, f)
				}
			}
		})
	}
}

// readmeDir prepares the directory a README command runs in: its config, a
// home with the credentials, the programs the README measures, the binaries
// where the README calls them. It returns the command's environment.
func readmeDir(t *testing.T, dir string, c readmeCommand, api string) []string {
	t.Helper()
	writeConfig(t, dir, readmeConfig(c.config, api))
	home := filepath.Join(dir, "home")
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".config"), 0o700))
	netrc := filepath.Join(home, ".netrc")
	require.NoError(t, os.WriteFile(netrc, []byte("machine 127.0.0.1 login "+readmeLogin+" password "+readmePassword+"\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(home, ".config", "g5k-password"), []byte(readmePassword+"\n"), 0o600))
	// The measured programs: short, so that the test stays fast.
	for _, p := range []string{"my-experiment", "experiment", "bench"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, p), []byte("#!/bin/sh\nsleep 1\n"), 0o755))
	}
	for _, sub := range []string{"bin", "alumet-agent_test_linux_amd64"} {
		require.NoError(t, os.Mkdir(filepath.Join(dir, sub), 0o755))
		for _, b := range []string{"alumet-agent", "kwollect-emulator"} {
			require.NoError(t, os.Symlink(filepath.Join(binDir, b), filepath.Join(dir, sub, b)))
		}
	}
	nodefile := filepath.Join(dir, "nodefile") // an OAR job of one node
	require.NoError(t, os.WriteFile(nodefile, []byte(strings.Repeat("taurus-7.lyon.grid5000.fr\n", 4)), 0o644))
	env := []string{"HOME=" + home, "NETRC=" + netrc, "G5K_PASSWORD=" + readmePassword}
	if strings.Contains(c.config, `job_id = "auto"`) {
		env = append(env, "OAR_JOB_ID="+readmeAutoJob, "OAR_NODEFILE="+nodefile)
	}
	return append(env, c.env...)
}
