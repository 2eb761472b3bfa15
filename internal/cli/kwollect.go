package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/alumet-go/alumet-agent/internal/netrc"
	"github.com/alumet-go/alumet-agent/kwollect"
)

func (g *globals) kwollectCmd() *cobra.Command {
	c := &cobra.Command{Use: "kwollect", Short: "Ask the Kwollect API what it offers", Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageError{errors.New("kwollect needs a subcommand: metrics")}
		}}
	var site, node, apiURL, login string
	m := &cobra.Command{
		Use:   "metrics --site SITE --node NODE",
		Short: "List the metrics a node offers (name, period, on-demand period, description)",
		Long: "List the metrics a node offers, from its cluster's catalogue in the Reference API.\n\n" +
			"Credentials: --login with $G5K_PASSWORD, else ~/.netrc (machine api.grid5000.fr); none inside Grid'5000.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if site == "" || node == "" {
				return usageError{errors.New("kwollect metrics needs --site and --node")}
			}
			node, _, _ = strings.Cut(node, ".")
			password := ""
			if login != "" {
				password = os.Getenv("G5K_PASSWORD")
			}
			if password == "" {
				if u, err := url.Parse(apiURL); err == nil {
					if e, found, _, err := netrc.Lookup(netrc.Path(), u.Hostname()); err == nil && found && (login == "" || login == e.Login) {
						login, password = e.Login, e.Password
					}
				}
			}
			if password == "" {
				login = ""
			}
			client, err := kwollect.NewClient(kwollect.Options{BaseURL: apiURL, Login: login, Password: password})
			if err != nil {
				return usageError{fmt.Errorf("--api-url: %w", err)}
			}
			cluster := kwollect.ClusterOf(node)
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			ms, err := client.ClusterMetrics(ctx, site, cluster)
			if err != nil {
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
	m.Flags().StringVar(&site, "site", "", "Grid'5000 site, e.g. lyon")
	m.Flags().StringVar(&node, "node", "", "node, e.g. taurus-7")
	m.Flags().StringVar(&apiURL, "api-url", kwollect.DefaultBaseURL, "API base URL")
	m.Flags().StringVar(&login, "login", "", "Grid'5000 login (password from $G5K_PASSWORD or ~/.netrc)")
	c.AddCommand(m)
	return c
}
