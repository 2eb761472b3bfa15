package cli

import (
	"fmt"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The help texts have the layout of clap (4.x, without the wrap_help
// feature, as Alumet builds it), so that `alumet-agent -h` reads, and diffs,
// like Alumet's: the about line, "Usage: …", then the sections Commands,
// Arguments and Options, each aligned on its own, two-space indents, and
// the next-line layout when a section's help would not fit in 100 columns.
// -h gives the short help, --help (and `help <command>`) the long one.
//
// The flags carry clap's extra facts as pflag annotations; the positional
// arguments, which cobra does not describe, are in positionals.

// Flag annotations read by the help.
const (
	annValue    = "help_value"    // the value's name, e.g. <CONFIG> (default: the flag's name in capitals)
	annEnv      = "help_env"      // the environment variable, shown with its value as clap does
	annDefault  = "help_default"  // [default: …]
	annPossible = "help_possible" // [possible values: …]
	annLong     = "help_long"     // the --help text, when it says more than the usage line
	annHeading  = "help_heading"  // a section of its own, after Options (this agent's flags)
)

// cmdHeading is the cobra.Command annotation putting a subcommand in a
// section of its own, after Alumet's Commands.
const cmdHeading = "help_heading"

// oursOptions and oursCommands are the sections of what this agent adds to Alumet's command
// line: Alumet's lines stay as they are (clap aligns each section on its
// own), and a diff with Alumet's help shows only additions.
const (
	oursOptions  = "Options of this agent"
	oursCommands = "Commands of this agent"
)

// termWidth is clap's width without the wrap_help feature.
const termWidth = 100

// helpArg is a positional argument, as clap lists it under Arguments.
type helpArg struct {
	name, help, long string
}

// positionals are the positional arguments, by command path.
var positionals = map[string][]helpArg{
	"alumet-agent exec": {
		{name: "<PROGRAM>", help: "The program to run"},
		{name: "[ARGS]...", help: "Arguments to the program"},
	},
	"alumet-agent watch": {{name: "<PID>", help: "The PID to watch"}},
	"alumet-agent mark":  {{name: "<NAME>", help: "The name of the phase that starts now"}},
}

// annotate sets a help annotation of the flag name.
func annotate(fs *pflag.FlagSet, name, key string, values ...string) {
	if err := fs.SetAnnotation(name, key, values); err != nil {
		panic(err) // a flag misnamed in this package
	}
}

// helpItem is one line (or block) of a section.
type helpItem struct {
	short, long string // "-h", "--help"; both empty for a positional or a command
	suffix      string // " <CONFIG>", or the positional's or command's name
	positional  bool
	command     bool
	help, more  string // the short help and the long one
	specs       []string
}

func (it helpItem) display() string {
	switch {
	case it.command, it.positional:
		return it.suffix
	case it.long != "":
		return "--" + it.long + it.suffix
	}
	return "-" + it.short + it.suffix
}

// width is clap's: an option with a long name counts the 4 columns of "-x, ".
func (it helpItem) width() int {
	w := utf8.RuneCountInString(it.display())
	if !it.command && !it.positional && it.long != "" {
		w += 4
	}
	return w
}

type helpSection struct {
	heading string
	items   []helpItem
}

// renderHelp writes c's help, short (-h) or long (--help).
func renderHelp(c *cobra.Command, long bool) string {
	var b strings.Builder
	about := c.Short
	if long && c.Long != "" {
		about = c.Long
	}
	if about != "" {
		b.WriteString(about + "\n")
	}
	b.WriteString("\nUsage: " + usageLine(c) + "\n\n")
	for i, s := range helpSections(c) {
		if i > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString(s.heading + ":\n")
		writeSection(&b, s.items, long)
	}
	out := b.String()
	if first, rest, ok := strings.Cut(out, "\n"); ok && strings.TrimSpace(first) == "" {
		out = rest
	}
	return strings.TrimRight(out, " \t\n") + "\n"
}

func usageLine(c *cobra.Command) string {
	if !c.HasParent() {
		return c.Use
	}
	return c.Parent().CommandPath() + " " + c.Use
}

// longHelpExists is clap's rule for "(see more with '--help')": the
// command's long about or an argument's long help (not its subcommands').
func longHelpExists(c *cobra.Command) bool {
	if c.Long != "" {
		return true
	}
	for _, a := range positionals[c.CommandPath()] {
		if a.long != "" {
			return true
		}
	}
	found := false
	visit := func(f *pflag.Flag) {
		if !f.Hidden && len(f.Annotations[annLong]) > 0 {
			found = true
		}
	}
	c.LocalFlags().VisitAll(visit)
	c.InheritedFlags().VisitAll(visit)
	return found
}

func helpSections(c *cobra.Command) []helpSection {
	var sections []helpSection
	add := func(heading string, it helpItem) {
		for i := range sections {
			if sections[i].heading == heading {
				sections[i].items = append(sections[i].items, it)
				return
			}
		}
		sections = append(sections, helpSection{heading: heading, items: []helpItem{it}})
	}
	if c.HasAvailableSubCommands() {
		var headed []*cobra.Command
		for _, sc := range c.Commands() {
			if !sc.IsAvailableCommand() || sc.Name() == "help" {
				continue
			}
			if sc.Annotations[cmdHeading] != "" {
				headed = append(headed, sc)
				continue
			}
			add("Commands", helpItem{command: true, suffix: sc.Name(), help: sc.Short})
		}
		// clap lists its help subcommand last.
		add("Commands", helpItem{command: true, suffix: "help", help: "Print this message or the help of the given subcommand(s)"})
		for _, sc := range headed {
			add(sc.Annotations[cmdHeading], helpItem{command: true, suffix: sc.Name(), help: sc.Short})
		}
	}
	for _, a := range positionals[c.CommandPath()] {
		add("Arguments", helpItem{positional: true, suffix: a.name, help: a.help, more: a.long})
	}
	// Options: the declared flags (local, then inherited: clap's global
	// ones), then -h and -V; this agent's own flags in their section after.
	var headed []helpSection
	visit := func(f *pflag.Flag) {
		if f.Hidden || f.Name == "help" || f.Name == "version" {
			return
		}
		it := flagItem(f)
		if h := f.Annotations[annHeading]; len(h) > 0 {
			for i := range headed {
				if headed[i].heading == h[0] {
					headed[i].items = append(headed[i].items, it)
					return
				}
			}
			headed = append(headed, helpSection{heading: h[0], items: []helpItem{it}})
			return
		}
		add("Options", it)
	}
	c.LocalFlags().VisitAll(visit)
	c.InheritedFlags().VisitAll(visit)
	help := helpItem{short: "h", long: "help", help: "Print help"}
	if longHelpExists(c) {
		help.help, help.more = "Print help (see more with '--help')", "Print help (see a summary with '-h')"
	}
	add("Options", help)
	if c.LocalFlags().Lookup("version") != nil {
		add("Options", helpItem{short: "V", long: "version", help: "Print version"})
	}
	return append(sections, headed...)
}

func flagItem(f *pflag.Flag) helpItem {
	it := helpItem{short: f.Shorthand, long: f.Name, help: f.Usage}
	if v := f.Annotations[annLong]; len(v) > 0 {
		it.more = v[0]
	}
	if f.Value.Type() != "bool" {
		name := "<" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_")) + ">"
		if v := f.Annotations[annValue]; len(v) > 0 {
			name = v[0]
		}
		it.suffix = " " + name
	}
	if v := f.Annotations[annEnv]; len(v) > 0 {
		it.specs = append(it.specs, fmt.Sprintf("[env: %s=%s]", v[0], os.Getenv(v[0])))
	}
	if v := f.Annotations[annDefault]; len(v) > 0 {
		it.specs = append(it.specs, "[default: "+strings.Join(v, " ")+"]")
	}
	if v := f.Annotations[annPossible]; len(v) > 0 {
		it.specs = append(it.specs, "[possible values: "+strings.Join(v, ", ")+"]")
	}
	return it
}

// writeSection writes the items as clap's write_args/write_subcommands do.
func writeSection(b *strings.Builder, items []helpItem, long bool) {
	longest := 2
	for _, it := range items {
		longest = max(longest, it.width())
	}
	// Subcommands are always listed with their short help, and never in
	// the long next-line layout.
	commands := len(items) > 0 && items[0].command
	nextLine := long && !commands
	for _, it := range items {
		if nextLine {
			break
		}
		about := it.help
		if about == "" {
			about = it.more
		}
		hw := utf8.RuneCountInString(about) + utf8.RuneCountInString(strings.Join(it.specs, " "))
		taken := longest + 4
		if termWidth >= taken && float64(taken)/termWidth > 0.40 && hw > termWidth-taken {
			nextLine = true
		}
	}
	for i, it := range items {
		if i > 0 {
			b.WriteString("\n")
			if nextLine && long {
				b.WriteString("\n")
			}
		}
		b.WriteString("  ")
		switch {
		case it.command || it.positional:
		case it.short != "":
			b.WriteString("-" + it.short)
			if it.long != "" {
				b.WriteString(", ")
			}
		default:
			b.WriteString("    ")
		}
		if !it.command && !it.positional && it.long != "" {
			b.WriteString("--" + it.long)
		}
		b.WriteString(it.suffix)
		if !nextLine {
			// it.width() counts "-x, " for a long name only, as clap's longest.
			b.WriteString(strings.Repeat(" ", longest+2-it.width()))
		}
		writeItemHelp(b, it, long && !commands, nextLine, longest)
	}
}

func writeItemHelp(b *strings.Builder, it helpItem, long, nextLine bool, longest int) {
	spaces := longest + 4
	if nextLine {
		b.WriteString("\n" + strings.Repeat(" ", 10))
		spaces = 10
	}
	indent := strings.Repeat(" ", spaces)
	about := it.help
	if long && it.more != "" || about == "" {
		about = it.more
	}
	text := about
	if len(it.specs) > 0 && !long {
		if text != "" {
			text += " "
		}
		text += strings.Join(it.specs, " ")
	}
	b.WriteString(strings.ReplaceAll(text, "\n", "\n"+indent))
	if len(it.specs) > 0 && long {
		s := ""
		if about != "" {
			s = "\n\n"
		}
		s += strings.Join(it.specs, "\n")
		b.WriteString(strings.ReplaceAll(s, "\n", "\n"+indent))
	}
}
