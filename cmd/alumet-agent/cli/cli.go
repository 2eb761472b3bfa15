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
	"path/filepath"
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
	longHelp        bool // --help rather than -h
	logLevel        string
	// Tuning flags of Alumet, accepted so scripts keep working.
	maxUpdateInterval string
	sourceChannelSize int
	normalThreads     int
	priorityThreads   int
	relayOut, relayIn string

	stdout, stderr io.Writer
	runDir         *runDir // exec/fetch --run-dir
	// runDirMode and runDirName are the command that may keep a run
	// directory (exec, watch, fetch) and its {name}, for energy-report's
	// run_dir key; runDirMode is "" for the other commands.
	runDirMode, runDirName string
	runDirStart            time.Time // {start}: now, or fetch --from's window start
	logger                 *slog.Logger
	filter                 logging.Filter // the logger's
}

// Main runs the command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	g.longHelp = longHelpAsked(args)
	cmd, err := root.ExecuteC()
	return g.finishRunDir(g.exitCode(root, cmd, err))
}

// exitCode says err and returns the exit code it stands for.
func (g *globals) exitCode(root, cmd *cobra.Command, err error) int {
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
		switch {
		case cmd == nil:
			cmd = root
		case cmd.Name() == "help" && cmd.HasParent():
			cmd = cmd.Parent() // `config help x` points at config's help
		}
		fmt.Fprintf(g.stderr, "error: %s\nRun '%s --help' for usage.\n", redact.String(ue.err.Error()), cmd.CommandPath())
		return 2
	default:
		// The error is said even when the log filter hides the agent's
		// errors: Alumet prints it outside its logger.
		if msg := fmt.Sprintf("Error: %v", err); g.logger != nil && g.filter.Enabled(agent.TargetAgent, slog.LevelError, msg) {
			logging.Target(g.logger, agent.TargetAgent).Error(msg)
		} else {
			fmt.Fprintf(g.stderr, "Error: %s\n", redact.String(err.Error()))
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
			if err := g.checkPluginNames(); err != nil {
				return err
			}
			if f := cmd.Flags().Lookup("run-dir"); f != nil {
				name := cmd.Name()
				switch {
				case cmd.Name() == "exec" && len(args) > 0:
					name = filepath.Base(args[0])
				case cmd.Name() == "watch" && len(args) > 0:
					if comm, err := os.ReadFile("/proc/" + args[0] + "/comm"); err == nil {
						name = strings.TrimSpace(string(comm))
					}
				}
				// energy-report's run_dir key, read once the
				// configuration is loaded, opens the same way.
				g.runDirMode, g.runDirName = cmd.Name(), name
				g.runDirStart = time.Now()
				if ff := cmd.Flags().Lookup("from"); cmd.Name() == "fetch" && ff != nil && ff.Value.String() != "" {
					// A past window's directory is named by the window's start.
					if in, err := parseInstant(ff.Value.String(), g.runDirStart, time.Local); err == nil && !in.sinceFrom {
						g.runDirStart = in.at
					}
				}
				if f.Value.String() != "" {
					if err := g.openRunDir(f.Value.String(), cmd.Name(), name); err != nil {
						return err
					}
				}
			}
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.CompletionOptions.DisableDefaultCmd = true
	root.DisableFlagsInUseLine = true
	// Alumet's flags, in Alumet's order and with its wording (clap's help
	// is the doc comment: its first paragraph without the final period, the
	// whole for --help), then this agent's own.
	f := root.Flags()
	f.StringVar(&g.configPath, "config", "", "Path to the config file")
	annotate(f, "config", annEnv, "ALUMET_CONFIG")
	annotate(f, "config", annDefault, "alumet-config.toml")
	f.BoolVar(&g.noDefaultConfig, "no-default-config", false, "If set, the config file must exist, otherwise the agent will fail to start with an error")
	f.StringArrayVar(&g.overrides, "config-override", nil, "Config options overrides")
	annotate(f, "config-override", annLong, "Config options overrides.\n\n"+
		"Use dots to separate TOML levels, ex. `plugins.rapl.poll_interval='1ms'`\n\n"+
		"Repeatable: the overrides are deep-merged in order, a later one wins.")
	f.StringSliceVar(&g.plugins, "plugins", nil, "List of plugins to enable, separated by commas, ex. `csv,rapl`")
	annotate(f, "plugins", annLong, "List of plugins to enable, separated by commas, ex. `csv,rapl`.\n\n"+
		"All the other plugins will be disabled.")
	f.StringVar(&g.maxUpdateInterval, "max-update-interval", "", "Maximum amount of time between two updates of the sources' commands")
	annotate(f, "max-update-interval", annLong, "Maximum amount of time between two updates of the sources' commands.\n\n"+
		"A lower value means that the latency of source commands will be lower, i.e. commands will be applied faster, at the cost of a higher overhead.\n\n"+
		"This agent accepts it for compatibility (a humantime duration) and ignores it.")
	f.IntVar(&g.sourceChannelSize, "source-channel-size", 0, "How many `MeasurementBuffer`s can be stored in the channel that sources write to")
	annotate(f, "source-channel-size", annLong, "How many `MeasurementBuffer`s can be stored in the channel that sources write to.\n\n"+
		"You may want to increase this if you get \"buffer is full\" errors, which can happen if you have a large number of sources that flush at the same time.\n\n"+
		"This agent sizes its source queue with it.")
	f.IntVar(&g.normalThreads, "normal-worker-threads", 0, "How many \"normal\" worker threads to spawn")
	annotate(f, "normal-worker-threads", annEnv, "ALUMET_NORMAL_THREADS")
	annotate(f, "normal-worker-threads", annLong, "How many \"normal\" worker threads to spawn.\n\nThis agent accepts it for compatibility and ignores it.")
	f.IntVar(&g.priorityThreads, "priority-worker-threads", 0, "How many \"high-priority\" worker threads to spawn")
	annotate(f, "priority-worker-threads", annEnv, "ALUMET_PRIORITY_THREADS")
	annotate(f, "priority-worker-threads", annLong, "How many \"high-priority\" worker threads to spawn.\n\nThis agent accepts it for compatibility and ignores it.")
	f.StringVar(&g.outputFile, "output-file", "", "Path to the output file (CSV plugin)")
	f.StringVar(&g.relayOut, "relay-out", "", "Address and port of the server to connect to with the relay client (relay-client plugin)")
	annotate(f, "relay-out", annLong, "Address and port of the server to connect to with the relay client (relay-client plugin).\n\n"+
		"The relay plugins are not implemented by this agent: enabling relay-client is an error.")
	f.StringVar(&g.relayIn, "relay-in", "", "Address and/or port that the relay server should listen to (relay-server plugin)")
	annotate(f, "relay-in", annLong, "Address and/or port that the relay server should listen to (relay-server plugin).\n\n"+
		"The relay plugins are not implemented by this agent: enabling relay-server is an error.")
	f.BoolVarP(&g.version, "version", "V", false, "Print version")
	f.StringVar(&g.logLevel, "log-level", "", "log filter, e.g. debug or info,plugin_kwollect_input=debug (else $ALUMET_LOG, else $RUST_LOG)")
	annotate(f, "log-level", annValue, "<FILTER>")
	annotate(f, "log-level", annDefault, "info")
	annotate(f, "log-level", annHeading, oursOptions)
	annotate(f, "log-level", annLong, "log filter, e.g. debug or info,plugin_kwollect_input=debug (else $ALUMET_LOG, else $RUST_LOG).\n\n"+
		"env_logger's syntax and meaning: a level (trace, debug, info, warn, error, off; any case) sets the default;\n"+
		"target=level the level of the targets that start with target (the longest wins); once any directive is\n"+
		"given, the targets that none matches are off (plugin_kwollect_input=debug prints that plugin's lines only);\n"+
		"a final /regex keeps the messages it matches.")
	root.Flags().SortFlags = false

	// Alumet's commands in Alumet's order, then this agent's (in a section
	// of their own in the help).
	cobra.EnableCommandSorting = false
	root.AddCommand(g.runCmd(), g.execCmd(), g.watchCmd(), g.configCmd(), g.pluginsCmd())
	for _, c := range []*cobra.Command{g.fetchCmd(), g.kwollectCmd(), g.markCmd(), g.reportCmd()} {
		c.Annotations = map[string]string{cmdHeading: oursCommands}
		root.AddCommand(c)
	}
	var flagErrors func(c *cobra.Command)
	flagErrors = func(c *cobra.Command) {
		c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
		c.Flags().SortFlags = false
		for _, sc := range c.Commands() {
			flagErrors(sc)
		}
	}
	flagErrors(root)
	root.SetHelpFunc(func(c *cobra.Command, _ []string) {
		_, _ = io.WriteString(c.OutOrStdout(), renderHelp(c, g.longHelp))
	})
	root.SetHelpCommand(helpCmd(g, root))
	for _, c := range []string{"config", "plugins", "kwollect"} {
		if sc, _, err := root.Find([]string{c}); err == nil {
			sc.AddCommand(helpCmd(g, sc))
		}
	}
	return root
}

// helpCmd is clap's help subcommand of parent: the long help of parent or
// of the given subcommand(s).
func helpCmd(g *globals, parent *cobra.Command) *cobra.Command {
	return &cobra.Command{Use: "help [COMMAND]...", Short: "Print this message or the help of the given subcommand(s)",
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := parent.Find(args)
			if cmd == nil || err != nil || len(rest) > 0 {
				return usageError{fmt.Errorf("unknown help topic %q", strings.Join(args, " "))}
			}
			g.longHelp = true
			return cmd.Help()
		}}
}

// longHelpAsked reports whether the help flag in args is --help (clap's
// long help) rather than -h: the first of them decides, before "--".
// Cobra does not tell them apart, and when it shows a help, one of them is
// among the flags it parsed.
func longHelpAsked(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h":
			return false
		case "--help":
			return true
		}
	}
	return false
}

// setupLogging builds the logger from --log-level, else ALUMET_LOG, else
// RUST_LOG (an empty variable counts as unset, as ALUMET_CONFIG= does),
// else info. The variables have env_logger's semantics, warnings included:
// an invalid part is skipped with "warning: …, ignoring it" on stderr and
// the rest applies. On our own flag an invalid part is a usage error, and
// so is a bare word that is not a level ("loud" is a typo, not a target:
// write loud=trace for a target).
func (g *globals) setupLogging() error {
	filter := logging.DefaultFilter()
	switch spec, name := g.logSpec(); {
	case name == "--log-level":
		f, errs := logging.ParseFilter(spec)
		for _, d := range strings.Split(strings.SplitN(spec, "/", 2)[0], ",") {
			if d = strings.TrimSpace(d); d != "" && !strings.Contains(d, "=") {
				if _, err := logging.ParseLevel(d); err != nil {
					errs = append(errs, err)
				}
			}
		}
		if len(errs) > 0 {
			return usageError{fmt.Errorf("--log-level: %w", errors.Join(errs...))}
		}
		filter = f
	case name != "":
		f, errs := logging.ParseFilter(spec)
		for _, err := range errs {
			fmt.Fprintf(g.stderr, "warning: %s, ignoring it\n", err)
		}
		filter = f
	}
	color := false
	if f, ok := g.stderr.(*os.File); ok {
		color = logging.IsTerminal(f)
	}
	g.filter = filter
	g.logger = slog.New(logging.NewHandler(g.stderr, filter, color))
	return nil
}

// logSpec returns the log filter in force and where it comes from ("" when
// none is given).
func (g *globals) logSpec() (spec, from string) {
	if g.logLevel != "" {
		return g.logLevel, "--log-level"
	}
	for _, env := range []string{"ALUMET_LOG", "RUST_LOG"} {
		if v := os.Getenv(env); v != "" {
			return v, env
		}
	}
	return "", ""
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

// measurementSources are the plugins that measure (plugin.Factory.Measures):
// without one of them, exec, watch, run and fetch would produce nothing.
// energy-report only derives energies from what these measure.
func (g *globals) measurementSources() []string {
	var names []string
	for _, f := range g.factories() {
		if f.Measures {
			names = append(names, f.Name)
		}
	}
	return names
}

// checkMeasures refuses to measure without any measurement source, before
// the plugins start (the csv output truncates its file when it starts). With
// --plugins the list alone decides, so the check runs before the config is
// read or generated (loaded is nil then); without it, the config decides. It
// is a usage error (exit code 2): nothing has run, and the fix is in the
// command line or the config file.
func (g *globals) checkMeasures(loaded *config.Loaded) error {
	measurementSources := g.measurementSources()
	if len(measurementSources) == 0 {
		return nil // a binary without sources (tests)
	}
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
	var hooks []agent.Hook
	if err := g.openConfiguredRunDir(loaded); err != nil {
		return nil, err
	}
	if g.runDir != nil {
		hook, err := g.runDirHook(loaded)
		if err != nil {
			return nil, err
		}
		hooks = append(hooks, hook)
	}
	a, err := agent.Start(ctx, mode, loaded, g.factories(), g.logger, hooks...)
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
		Short: "Run the agent and monitor the system",
		Long: "Run the agent and monitor the system.\n\nThis is the default command.\n\n" +
			"It runs until Ctrl+C, SIGTERM or SIGHUP, polling Kwollect every poll_interval, then writes everything and stops.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return g.runMode(cmd) },
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
		Use:   "exec [OPTIONS] <PROGRAM> [ARGS]...",
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
			o.Marks = !noPhases && a.ReadsPhases()
			o.PhaseLines = !noPhases && (phaseLines || a.WantsPhaseLines())
			return exitError{a.Exec(cmd.Context(), o)}
		},
	}
	c.Flags().SetInterspersed(false)
	fs := c.Flags()
	fs.BoolVar(&ignore, "ignore-exit-code", false, "If set, don't propagate the exit code of the executed program")
	annotate(fs, "ignore-exit-code", annLong, "If set, don't propagate the exit code of the executed program.\n\n"+
		"Note that, if the executed program succeeds but the Alumet agent fails, the exit code of the agent will always indicate a failure, whether this flag is set or not.")
	fs.IntVar(&repeat, "repeat", 1, "run the command N times, each run its own window (run attribute 1..N)")
	fs.StringVar(&cooldown, "cooldown", "", "pause between runs when no idle level is known (e.g. 30s)")
	fs.StringVar(&cooldownMax, "cooldown-max", "", "longest wait for the power to be back to the idle level between runs")
	fs.BoolVar(&phaseLines, "phases", false, "also read phase marks from the command's stdout ("+agent.PhasePrefix+" lines; it becomes a pipe the agent copies)")
	fs.BoolVar(&noPhases, "no-phases", false, "do not accept alumet-agent mark nor read "+agent.PhasePrefix+" lines (wins over --phases and phases = true)")
	var runDirPattern string
	addRunDirFlag(fs, &runDirPattern, true)
	annotate(fs, "repeat", annValue, "<N>")
	annotate(fs, "repeat", annDefault, "1")
	annotate(fs, "cooldown", annValue, "<DURATION>")
	annotate(fs, "cooldown-max", annValue, "<DURATION>")
	annotate(fs, "cooldown-max", annDefault, config.FormatDuration(agent.DefaultCooldownMax))
	for _, n := range []string{"repeat", "cooldown", "cooldown-max", "phases", "no-phases"} {
		annotate(fs, n, annHeading, oursOptions)
	}
	return c
}

func (g *globals) markCmd() *cobra.Command {
	var (
		pid    int
		socket string
	)
	c := &cobra.Command{
		Use:   "mark [OPTIONS] <NAME>",
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
	annotate(c.Flags(), "socket", annValue, "<PATH>")
	return c
}

func (g *globals) watchCmd() *cobra.Command {
	var runDirPattern string
	c := &cobra.Command{
		Use:   "watch <PID>",
		Short: "Watch a PID and observe it until its end",
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
	addRunDirFlag(c.Flags(), &runDirPattern, false)
	return c
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
	c := &cobra.Command{Use: "config <COMMAND>", Short: "Manipulate the configuration", Args: noArgs,
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
	c := &cobra.Command{Use: "plugins [OPTIONS] <COMMAND>", Short: "Get plugins information", Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageError{errors.New("plugins needs a subcommand: list")}
		}}
	c.PersistentFlags().BoolVar(&status, "status", false, "Reads the agent config to get the status (enabled/disabled) of each plugin")
	c.AddCommand(&cobra.Command{
		Use:   "list [OPTIONS]",
		Short: "Print the available plugins",
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
