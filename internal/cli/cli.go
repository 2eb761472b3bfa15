// Package cli is the alumet-agent command line: Alumet's flags and
// subcommands on top of the agent package.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/alumet-go/alumet-agent/agent"
	"github.com/alumet-go/alumet-agent/config"
	"github.com/alumet-go/alumet-agent/internal/logging"
	"github.com/alumet-go/alumet-agent/internal/redact"
	"github.com/alumet-go/alumet-agent/plugin"
	"github.com/alumet-go/alumet-agent/plugins/all"
	"github.com/alumet-go/alumet-agent/plugins/energyreport"
	"github.com/alumet-go/alumet-agent/plugins/kwollectinput"
)

// checkExec and checkWatch fail where exec and watch cannot run (anywhere
// but Linux), before the agent starts (a variable for the tests).
var checkExec, checkWatch = agent.CheckExec, agent.CheckWatch

// usageError is a command-line mistake, found before anything ran: exit
// code 2, the error and a pointer to --help on stderr.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitError carries an exit code decided by a subcommand.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit code %d", e.code) }

type globals struct {
	configPath      string
	noDefaultConfig bool
	overrides       []string
	plugins         []string
	outputFile      string
	version         bool
	logLevel        string
	// Tuning flags of Alumet, accepted so scripts keep working.
	maxUpdateInterval string
	sourceChannelSize int
	normalThreads     int
	priorityThreads   int
	relayOut, relayIn string

	stdout, stderr io.Writer
	logger         *slog.Logger
}

// Main runs the command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteC()
	var ee exitError
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		// One line to point at the help, not the whole usage: the error must
		// stay visible on a terminal.
		if cmd == nil || cmd.Name() == "help" {
			cmd = root
		}
		fmt.Fprintf(stderr, "error: %s\nRun '%s --help' for usage.\n", redact.String(ue.err.Error()), cmd.CommandPath())
		return 2
	default:
		if g.logger != nil {
			logging.Target(g.logger, agent.TargetAgent).Error(fmt.Sprintf("Error: %v", err))
		} else {
			fmt.Fprintf(stderr, "Error: %s\n", redact.String(err.Error()))
		}
		return 1
	}
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "alumet-agent [OPTIONS] [COMMAND]",
		Short: "Alumet standard agent: measure energy and performance metrics",
		Long: "Alumet standard agent: measure energy and performance metrics\n\n" +
			"This Go agent reads Grid'5000 power data from Kwollect (kwollect-input) and writes Alumet's CSV.",
		SilenceErrors:    true,
		SilenceUsage:     true,
		TraverseChildren: true,
		Args:             noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.runMode(cmd)
		},
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if g.version {
				version, detail := versionInfo()
				fmt.Fprintf(g.stdout, "alumet-agent %s (%s)\n", version, detail)
				return exitError{0}
			}
			if err := g.setupLogging(); err != nil {
				return err
			}
			return g.checkPluginNames()
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.CompletionOptions.DisableDefaultCmd = true
	root.DisableFlagsInUseLine = true
	f := root.Flags()
	f.StringVar(&g.configPath, "config", "", "path to the config file [env: ALUMET_CONFIG] [default: alumet-config.toml]")
	f.BoolVar(&g.noDefaultConfig, "no-default-config", false, "fail if the config file does not exist instead of generating it")
	f.StringArrayVar(&g.overrides, "config-override", nil, "TOML merged into the config, e.g. plugins.csv.output_path='run1.csv' (repeatable)")
	f.StringSliceVar(&g.plugins, "plugins", nil, "enable only these plugins, e.g. csv,kwollect-input")
	f.StringVar(&g.outputFile, "output-file", "", "shortcut for --config-override plugins.csv.output_path=PATH")
	f.BoolVarP(&g.version, "version", "V", false, "print version")
	f.StringVar(&g.logLevel, "log-level", "", "log filter, e.g. debug or info,plugin_kwollect_input=debug [env: ALUMET_LOG, RUST_LOG]")
	f.StringVar(&g.maxUpdateInterval, "max-update-interval", "", "maximum latency of source commands (accepted for compatibility)")
	f.IntVar(&g.sourceChannelSize, "source-channel-size", 0, "capacity of the source queue, in buffers")
	f.IntVar(&g.normalThreads, "normal-worker-threads", 0, "size of the worker pool (accepted for compatibility) [env: ALUMET_NORMAL_THREADS]")
	f.IntVar(&g.priorityThreads, "priority-worker-threads", 0, "size of the real-time pool (accepted for compatibility) [env: ALUMET_PRIORITY_THREADS]")
	f.StringVar(&g.relayOut, "relay-out", "", "shortcut for plugins.relay-client.relay_server (not implemented in this agent)")
	f.StringVar(&g.relayIn, "relay-in", "", "shortcut for plugins.relay-server.address (not implemented in this agent)")
	root.Flags().SortFlags = false

	root.AddCommand(g.runCmd(), g.execCmd(), g.markCmd(), g.watchCmd(), g.fetchCmd(), g.kwollectCmd(), g.configCmd(), g.pluginsCmd())
	for _, c := range root.Commands() {
		c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	}
	root.SetHelpCommand(&cobra.Command{Use: "help [command]", Short: "Print this message or the help of the given subcommand(s)",
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := root.Find(args)
			if cmd == nil || err != nil || len(rest) > 0 {
				return usageError{fmt.Errorf("unknown help topic %q", strings.Join(args, " "))}
			}
			return cmd.Help()
		}})
	return root
}

func (g *globals) setupLogging() error {
	spec := g.logLevel
	if spec == "" {
		spec = os.Getenv("ALUMET_LOG")
	}
	if spec == "" {
		spec = os.Getenv("RUST_LOG")
	}
	filter, err := logging.ParseFilter(spec)
	if err == nil && g.logLevel != "" {
		// On our own flag a bare word must be a level: "loud" is a typo, not a target.
		for _, d := range strings.Split(g.logLevel, ",") {
			if d = strings.TrimSpace(d); d != "" && !strings.Contains(d, "=") {
				if _, lerr := logging.ParseLevel(d); lerr != nil {
					err = lerr
				}
			}
		}
	}
	if err != nil {
		if g.logLevel != "" {
			return usageError{err}
		}
		filter = logging.Filter{Default: slog.LevelInfo}
		defer func() { g.logger.Warn(fmt.Sprintf("ignoring the log filter %q: %v", spec, err)) }()
	}
	color := false
	if f, ok := g.stderr.(*os.File); ok {
		color = logging.IsTerminal(f)
	}
	g.logger = slog.New(logging.NewHandler(g.stderr, filter, color))
	return nil
}

func (g *globals) factories() []plugin.Factory { return all.Factories() }

// checkPluginNames makes a --plugins entry that is neither a plugin of this
// agent nor an Alumet plugin a usage error, before any command runs: a typo
// would otherwise run the experiment unmeasured (and truncate the CSV).
func (g *globals) checkPluginNames() error {
	names, given := config.SplitPlugins(g.plugins)
	if !given {
		return nil
	}
	if err := config.CheckPluginNames(names, g.specs()); err != nil {
		return usageError{fmt.Errorf("--plugins: %w", err)}
	}
	return nil
}

// measurementSources are the plugins that measure: without one of them,
// exec, watch, run and fetch would produce nothing. energy-report adds a
// pipeline source too, but it only derives energies from what these measure.
var measurementSources = []string{kwollectinput.Name}

// checkMeasures refuses to measure without any measurement source, before
// the plugins start (the csv output truncates its file when it starts). With
// --plugins the list alone decides, so the check runs before the config is
// read or generated (loaded is nil then); without it, the config decides. It
// is a usage error (exit code 2): nothing has run, and the fix is in the
// command line or the config file.
func (g *globals) checkMeasures(loaded *config.Loaded) error {
	sources := strings.Join(measurementSources, " or ")
	names, given := config.SplitPlugins(g.plugins)
	if given {
		if slices.ContainsFunc(names, func(n string) bool { return slices.Contains(measurementSources, n) }) {
			return nil
		}
		example := slices.Concat(names, measurementSources[:1])
		return usageError{fmt.Errorf("no source is enabled: nothing would be measured; add %s to --plugins (e.g. --plugins %s)",
			sources, strings.Join(example, ","))}
	}
	if loaded == nil {
		return nil
	}
	for _, p := range loaded.Enabled {
		if slices.Contains(measurementSources, p.Spec.Name) {
			return nil
		}
	}
	return usageError{fmt.Errorf("no source is enabled in %s: nothing would be measured; add a [plugins.%s] section "+
		"(without enabled = false) or use --plugins csv,%s", loaded.Path, measurementSources[0], measurementSources[0])}
}

func (g *globals) specs() []config.PluginSpec {
	var specs []config.PluginSpec
	for _, f := range g.factories() {
		specs = append(specs, config.SpecOf(f))
	}
	return specs
}

func (g *globals) loadOptions() (config.Options, error) {
	o := config.Options{
		Path:            g.configPath,
		NoDefaultConfig: g.noDefaultConfig,
		Overrides:       append([]string(nil), g.overrides...),
		OutputFile:      g.outputFile,
		Plugins:         g.plugins,
		Specs:           g.specs(),
		Logger:          logging.Target(g.logger, agent.TargetAgent),
	}
	if g.relayOut != "" {
		o.Overrides = append(o.Overrides, "plugins.relay-client.relay_server = "+strconv.Quote(g.relayOut))
	}
	if g.relayIn != "" {
		o.Overrides = append(o.Overrides, "plugins.relay-server.address = "+strconv.Quote(g.relayIn))
	}
	if g.maxUpdateInterval != "" {
		if _, err := config.ParseDuration(g.maxUpdateInterval); err != nil {
			return o, usageError{fmt.Errorf("--max-update-interval: %w", err)}
		}
	}
	return o, nil
}

func (g *globals) load() (*config.Loaded, error) {
	o, err := g.loadOptions()
	if err != nil {
		return nil, err
	}
	loaded, err := config.Load(o)
	if err != nil {
		return nil, err
	}
	if g.sourceChannelSize > 0 {
		loaded.General.SourceChannelSize = g.sourceChannelSize
	}
	if g.normalThreads > 0 || g.priorityThreads > 0 || g.maxUpdateInterval != "" {
		logging.Target(g.logger, agent.TargetAgent).Debug("tuning flags --max-update-interval and --*-worker-threads are accepted for compatibility and ignored")
	}
	return loaded, nil
}

// start loads the config and starts the agent in the given mode.
func (g *globals) start(ctx context.Context, mode plugin.Mode) (*agent.Agent, error) {
	if err := g.checkMeasures(nil); err != nil {
		return nil, err
	}
	logging.Target(g.logger, agent.TargetAgent).Info(fmt.Sprintf("Starting Alumet agent 'alumet-agent' v%s", agentVersion()))
	loaded, err := g.load()
	if err != nil {
		return nil, err
	}
	if err := g.checkMeasures(loaded); err != nil {
		return nil, err
	}
	a, err := agent.Start(ctx, mode, loaded, g.factories(), g.logger)
	if err != nil {
		return nil, err
	}
	a.SetResume(g.resumeCommand(loaded.Path, filesOf(loaded)))
	return a, nil
}

// startInterruptible starts the agent with the signals caught: the first
// SIGINT/SIGTERM/SIGHUP during the start-up (which may query the API)
// stops it, and later ones are the command's to handle.
func (g *globals) startInterruptible(cmd *cobra.Command, mode plugin.Mode) (*agent.Agent, *agent.Interrupts, error) {
	ints := agent.NotifyInterrupts()
	log := logging.Target(g.logger, agent.TargetAgent)
	ctx, release := ints.Until(cmd.Context(), func(sig os.Signal) {
		log.Warn(agent.SignalName(sig) + " received while starting: stopping.")
	}, func(sig os.Signal) {
		log.Warn(agent.SignalName(sig) + " received: already stopping.")
	})
	a, err := g.start(ctx, mode)
	// Released before the check: a signal that came after the start-up
	// returned, but before release, would otherwise be taken and lost.
	release()
	if it := agent.InterruptedBy(ctx); it != nil {
		if a != nil {
			_ = a.Stop()
		}
		return nil, nil, exitError{it.Code()}
	}
	if err != nil {
		return nil, nil, err
	}
	a.LogReady()
	return a, ints, nil
}

func (g *globals) runMode(cmd *cobra.Command) error {
	a, ints, err := g.startInterruptible(cmd, plugin.ModeRun)
	if err != nil {
		return err
	}
	return exitError{a.Run(ints)}
}

func (g *globals) runCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Run the agent and monitor the system until Ctrl+C or SIGTERM",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return g.runMode(cmd) },
	}
}

func (g *globals) execCmd() *cobra.Command {
	var (
		ignore, noPhases      bool
		phaseLines            bool
		repeat                int
		cooldown, cooldownMax string
	)
	c := &cobra.Command{
		Use:   "exec [--ignore-exit-code] [--repeat N [--cooldown D]] [--phases] [--] PROGRAM [ARGS]...",
		Short: "Execute a command and observe its process",
		Long: "Execute a command and observe its process.\n\n" +
			"Every argument after PROGRAM goes to it unchanged (one `--` right after PROGRAM is dropped).\n" +
			"The agent exits with the command's exit code (128+N if a signal N killed it).\n\n" +
			"--repeat N runs the command N times, each run measured over its own window and tagged run=1..N\n" +
			"in every output; between runs the agent waits until the power is back to at most 5 % above the idle\n" +
			"level when energy-report knows one (baseline), at most --cooldown-max, else for --cooldown.\n" +
			"A failed run (non-zero exit) or a signal stops the series.\n\n" +
			"With energy-report enabled, the command can mark phases with `alumet-agent mark <name>` (from it or\n" +
			"any shell); its stdio stays the agent's. With --phases (or energy-report's phases = true) the agent\n" +
			"also reads the lines `" + agent.PhasePrefix + " <name>` of its stdout, copied through unchanged: that\n" +
			"stdout is then a pipe (a pseudo-terminal on a terminal), so the command must flush it. --no-phases\n" +
			"turns both off.",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("exec needs a PROGRAM to run")}
			}
			if len(args) > 1 && args[1] == "--" {
				args = append(args[:1:1], args[2:]...)
			}
			o := agent.ExecOptions{Argv: args, IgnoreExitCode: ignore}
			if cmd.Flags().Changed("repeat") {
				if repeat < 1 {
					return usageError{fmt.Errorf("--repeat: expected a number of runs >= 1, got %d", repeat)}
				}
				o.Repeat = repeat
			}
			for _, d := range []struct {
				flag, val string
				dst       *time.Duration
			}{{"--cooldown", cooldown, &o.Cooldown}, {"--cooldown-max", cooldownMax, &o.CooldownMax}} {
				if d.val == "" {
					continue
				}
				v, err := config.ParseDuration(d.val)
				if err != nil {
					return usageError{fmt.Errorf("%s: %w", d.flag, err)}
				}
				*d.dst = v
			}
			if o.Repeat == 0 && (cooldown != "" || cooldownMax != "") {
				return usageError{errors.New("--cooldown and --cooldown-max go with --repeat N")}
			}
			if err := checkExec(); err != nil {
				return err
			}
			a, ints, err := g.startInterruptible(cmd, plugin.ModeExec)
			if err != nil {
				return err
			}
			o.Signals = ints
			// The socket of alumet-agent mark changes nothing for the command:
			// on with energy-report. Reading its stdout does: only when asked.
			o.Marks = !noPhases && a.HasPlugin(energyreport.Name)
			o.PhaseLines = !noPhases && (phaseLines || a.WantsPhaseLines())
			return exitError{a.Exec(cmd.Context(), o)}
		},
	}
	c.Flags().SetInterspersed(false)
	c.Flags().BoolVar(&ignore, "ignore-exit-code", false, "exit with 0 whatever the command's exit code, unless the agent fails")
	c.Flags().IntVar(&repeat, "repeat", 1, "run the command N times, each run its own window (run attribute 1..N)")
	c.Flags().StringVar(&cooldown, "cooldown", "", "pause between runs when no idle level is known (e.g. 30s)")
	c.Flags().StringVar(&cooldownMax, "cooldown-max", "", "longest wait for the power to be back to the idle level between runs (default 5m)")
	c.Flags().BoolVar(&phaseLines, "phases", false, "also read phase marks from the command's stdout ("+agent.PhasePrefix+" lines; it becomes a pipe the agent copies)")
	c.Flags().BoolVar(&noPhases, "no-phases", false, "do not accept alumet-agent mark nor read "+agent.PhasePrefix+" lines (wins over --phases and phases = true)")
	return c
}

func (g *globals) markCmd() *cobra.Command {
	var (
		pid    int
		socket string
	)
	c := &cobra.Command{
		Use:   "mark [--pid PID] NAME",
		Short: "Start a phase of the command measured by a running `alumet-agent exec`",
		Long: "Start the phase NAME now in the measurement of a running `alumet-agent exec` (with energy-report):\n" +
			"the report gives the energy of each phase, from its mark to the next one or the end of the run.\n" +
			"Inside the measured command the agent is found through $" + agent.SocketEnv + "; from another shell,\n" +
			"the only exec running for this user is used, or the one with --pid.",
		Args: func(cmd *cobra.Command, args []string) error { return wrapUsage(cobra.ExactArgs(1)(cmd, args)) },
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := agent.CheckPhaseName(args[0]); err != nil {
				return usageError{err}
			}
			return agent.SendMark(socket, pid, args[0])
		},
	}
	c.Flags().IntVar(&pid, "pid", 0, "the pid of the alumet-agent exec to mark")
	c.Flags().StringVar(&socket, "socket", "", "the agent's socket (default: $"+agent.SocketEnv+", or found by --pid)")
	return c
}

func (g *globals) watchCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "watch PID",
		Short: "Watch a running process and measure it until it ends",
		Args:  func(cmd *cobra.Command, args []string) error { return wrapUsage(cobra.ExactArgs(1)(cmd, args)) },
		RunE: func(cmd *cobra.Command, args []string) error {
			pid, err := strconv.Atoi(args[0])
			if err != nil || pid <= 0 {
				return usageError{fmt.Errorf("invalid PID %q: expected a positive integer", args[0])}
			}
			if err := checkWatch(); err != nil {
				return err
			}
			if err := agent.CheckPID(pid); err != nil {
				return err
			}
			a, ints, err := g.startInterruptible(cmd, plugin.ModeWatch)
			if err != nil {
				return err
			}
			return exitError{a.Watch(cmd.Context(), pid, ints)}
		},
	}
}

// noArgs is cobra.NoArgs as a usage error (exit code 2).
func noArgs(cmd *cobra.Command, args []string) error { return wrapUsage(cobra.NoArgs(cmd, args)) }

func wrapUsage(err error) error {
	if err != nil {
		return usageError{err}
	}
	return nil
}

func (g *globals) configCmd() *cobra.Command {
	c := &cobra.Command{Use: "config", Short: "Manipulate the configuration", Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageError{errors.New("config needs a subcommand: regen")}
		}}
	c.AddCommand(&cobra.Command{
		Use:   "regen",
		Short: "Regenerate the configuration file and stop",
		Long: "Write the default configuration of the enabled plugins (all, or those of --plugins) to the config file and stop.\n\n" +
			"An existing file that differs is kept as <file>.bak (credentials, api_url…); one that already holds the defaults is left unchanged.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := g.loadOptions()
			if err != nil {
				return err
			}
			// Regen logs what it wrote (and the .bak it kept) itself.
			_, err = config.Regen(o)
			return err
		},
	})
	return c
}

func (g *globals) pluginsCmd() *cobra.Command {
	var status bool
	c := &cobra.Command{Use: "plugins", Short: "Manipulate the plugins", Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageError{errors.New("plugins needs a subcommand: list")}
		}}
	c.PersistentFlags().BoolVar(&status, "status", false, "show which plugins are enabled by the config and flags")
	c.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the plugins of this agent",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var b strings.Builder
			if !status {
				b.WriteString("Available plugins:\n")
				for _, f := range g.factories() {
					fmt.Fprintf(&b, "- %s v%s\n", f.Name, f.Version)
				}
			} else {
				loaded, err := g.load()
				if err != nil {
					return err
				}
				b.WriteString("Enabled plugins:\n")
				for _, p := range loaded.Enabled {
					fmt.Fprintf(&b, "- %s v%s\n", p.Spec.Name, p.Spec.Version)
				}
				b.WriteString("\nDisabled plugins:\n")
				for _, p := range loaded.Disabled {
					fmt.Fprintf(&b, "- %s v%s\n", p.Name, p.Version)
				}
			}
			b.WriteString("\nEdit the configuration file or use the --plugins flag to enable/disable plugins.\n")
			_, err := io.WriteString(g.stdout, b.String())
			return err
		},
	})
	return c
}
