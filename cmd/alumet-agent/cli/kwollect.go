package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/alumet-go/alumet-agent/agent"
	"github.com/alumet-go/alumet-agent/config"
	"github.com/alumet-go/alumet-agent/internal/logging"
	"github.com/alumet-go/alumet-agent/internal/netrc"
	"github.com/alumet-go/alumet-agent/kwollect"
	"github.com/alumet-go/alumet-agent/plugins/kwollectinput"
)

func (g *globals) kwollectCmd() *cobra.Command {
	c := &cobra.Command{Use: "kwollect <COMMAND>", Short: "Ask the Kwollect API what it offers", Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageError{errors.New("kwollect needs a subcommand: metrics")}
		}}
	var site, node, apiURL, login string
	m := &cobra.Command{
		Use:   "metrics [OPTIONS]",
		Short: "List the metrics a node offers (name, period, on-demand period, description)",
		Long: "List the metrics a node offers, from its cluster's catalogue in the Reference API.\n\n" +
			"The site, node, api_url and credentials default to the config's [plugins.kwollect-input] table\n" +
			"(site, hostname, api_url; login with password, password_file or ~/.netrc); the flags override them.\n" +
			"--login takes its password from $G5K_PASSWORD, else ~/.netrc (machine api.grid5000.fr); none inside Grid'5000.\n" +
			"A node that its cluster does not list fails, with the names near it.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log := logging.Target(g.logger, kwollectinput.LogTarget)
			cfg, cfgPath, err := g.lookupConfig()
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("api-url") {
				cfg.APIURL = apiURL
			}
			creds := kwollectinput.CredentialOptions{ConfigPath: cfgPath, NetrcPath: netrc.Path(), Log: log}
			if cmd.Flags().Changed("login") {
				creds.Login = &login // its password: $G5K_PASSWORD, else ~/.netrc
			}
			fromConfig := ""
			if node == "" {
				names := append(append([]string(nil), cfg.Hostname...), cfg.Nodes...)
				switch {
				case len(names) == 1:
					node, fromConfig = names[0], "hostname"
				case len(names) > 1:
					return usageError{fmt.Errorf("kwollect metrics: the config names several nodes (%s): choose one with --node", strings.Join(names, ", "))}
				}
			}
			n, nodeSite, hasSite := kwollectinput.NodeSite(node)
			node = n
			if site == "" {
				site = cfg.Site
				if hasSite {
					site = nodeSite
				}
			}
			if site == "" || node == "" {
				return usageError{errors.New("kwollect metrics needs --site and --node (or site and hostname in [plugins.kwollect-input])")}
			}
			if canon := kwollectinput.CanonicalSite(site); canon != site {
				log.Warn(fmt.Sprintf("site %q: Grid'5000 site names are lower case; using %q", site, canon))
				site = canon
			}
			if fromConfig != "" {
				log.Debug(fmt.Sprintf("node %s and site %s from %s", node, site, cfgPath))
			}
			client, credSource, err := kwollectinput.ClientFromConfig(cfg, creds)
			if err != nil {
				return usageError{err}
			}
			ints := agent.NotifyInterrupts()
			defer ints.Stop()
			ictx, release := ints.Until(cmd.Context(), func(sig os.Signal) {
				log.Warn(agent.SignalName(sig) + " received: stopping.")
			}, nil)
			defer release()
			ctx, cancel := context.WithTimeout(ictx, 30*time.Second)
			defer cancel()
			interrupted := func(err error) error {
				if it := agent.InterruptedBy(ictx); it != nil {
					return exitError{it.Code()}
				}
				return err
			}
			var ne *kwollectinput.NameError
			switch err := kwollectinput.CheckNode(ctx, client, site, node); {
			case err == nil:
			case interrupted(nil) != nil:
				return interrupted(nil)
			case errors.As(err, &ne):
				msg := ne.Msg
				switch {
				case ne.Site != "" && ne.Node != "":
					msg = kwollectinput.WithAdvice(msg, fmt.Sprintf("try --site %s --node %s", ne.Site, ne.Node))
				case ne.Site != "":
					msg = kwollectinput.WithAdvice(msg, "try --site "+ne.Site)
				case ne.Node != "":
					msg = kwollectinput.WithAdvice(msg, "try --node "+ne.Node)
				}
				return errors.New(msg)
			case kwollect.IsAuthError(err):
				return fmt.Errorf("bad credentials (sent: %s): %w", credSource, err)
			default:
				log.Debug(fmt.Sprintf("cannot check node %s against the Reference API: %v", node, err))
			}
			cluster := kwollect.ClusterOf(node)
			ms, err := client.ClusterMetrics(ctx, site, cluster)
			if err != nil {
				if it := interrupted(nil); it != nil {
					return it
				}
				if kwollect.IsAuthError(err) {
					return fmt.Errorf("bad credentials (sent: %s): %w", credSource, err)
				}
				return err
			}
			sort.SliceStable(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tPERIOD\tON-DEMAND PERIOD\tDESCRIPTION")
			shown := 0
			for _, m := range ms {
				if !m.AppliesTo(node) {
					continue
				}
				shown++
				name := m.Name
				if len(m.Labels) > 0 {
					var l []string
					for k, v := range m.Labels {
						l = append(l, k+"="+v)
					}
					sort.Strings(l)
					name += "{" + strings.Join(l, ",") + "}"
				}
				period := "on demand"
				if m.Period > 0 {
					period = m.Period.String()
				}
				opt := "-"
				if m.OptionalPeriod > 0 {
					opt = m.OptionalPeriod.String()
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, period, opt, m.Description)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "\n%d metrics for %s (cluster %s, site %s). \"on demand\": data only during an OAR job with -t monitor=<metric regexp>.\n", shown, node, cluster, site)
			return nil
		},
	}
	m.Flags().StringVar(&site, "site", "", "Grid'5000 site, e.g. lyon [default: the config's site]")
	m.Flags().StringVar(&node, "node", "", "node, e.g. taurus-7 [default: the config's hostname]")
	m.Flags().StringVar(&apiURL, "api-url", kwollect.DefaultBaseURL, "API base URL [default: the config's api_url, else "+kwollect.DefaultBaseURL+"]")
	m.Flags().StringVar(&login, "login", "", "Grid'5000 login (password from $G5K_PASSWORD or ~/.netrc) [default: the config's login]")
	annotate(m.Flags(), "api-url", annValue, "<URL>")
	c.AddCommand(m)
	return c
}

// lookupConfig returns the config's [plugins.kwollect-input] table, read
// leniently (see kwollectinput.LookupConfig), and the file it came from.
// Without a config file (and none named by --config or $ALUMET_CONFIG) it
// returns the defaults: a lookup never writes a config file.
func (g *globals) lookupConfig() (*kwollectinput.Config, string, error) {
	o, err := g.loadOptions()
	if err != nil {
		return nil, "", err
	}
	path := config.ResolvePath(o)
	if _, err := os.Stat(path); err != nil {
		explicit := g.configPath != "" || os.Getenv(config.PathEnv) != ""
		if errors.Is(err, fs.ErrNotExist) && !explicit {
			return kwollectinput.DefaultConfig(), "", nil
		}
		return nil, "", fmt.Errorf("configuration file %s: %w", path, err)
	}
	o.NoDefaultConfig = true
	o.Plugins = []string{kwollectinput.Name}
	o.OutputFile = ""
	for i, s := range o.Specs {
		if s.Name == kwollectinput.Name {
			o.Specs[i] = kwollectinput.LookupSpec()
		}
	}
	loaded, err := config.Load(o)
	if err != nil {
		return nil, "", err
	}
	for _, p := range loaded.Enabled {
		if lc, ok := p.Config.(*kwollectinput.LookupConfig); ok {
			return &lc.Config, loaded.Path, nil
		}
	}
	return kwollectinput.DefaultConfig(), loaded.Path, nil
}
