// Package kwollectoutput is the kwollect-output plugin: it POSTs points to
// Kwollect (Grid'5000's metrics service), in Alumet's wire format, so that
// they show on the site's dashboard and come back through the API like any
// metric. See README.md.
package kwollectoutput

import (
	"context"
	"fmt"
	"strings"

	"github.com/alumet-go/alumet-agent/internal/netrc"
	"github.com/alumet-go/alumet-agent/plugin"
)

// Plugin identity.
const (
	Name      = "kwollect-output"
	Version   = "0.1.0"
	LogTarget = "plugin_kwollect_output"
)

// Factory returns the kwollect-output plugin.
func Factory() plugin.Factory {
	return plugin.Typed[Config, *Config]{
		Name:          Name,
		Version:       Version,
		LogTarget:     LogTarget,
		DefaultConfig: DefaultConfig,
		Sample:        SampleConfig,
		// It writes into Grid'5000's shared database: it must be asked for.
		GeneratedOff: true,
		Start:        start,
	}.Factory()
}

func start(_ context.Context, c *Config, env plugin.Env) error {
	if env.Pipeline == nil {
		return fmt.Errorf("kwollect-output: no pipeline to add the output to")
	}
	if strings.Contains(c.URL, "CHANGEME") && env.Logger != nil {
		env.Logger.Error(fmt.Sprintf("url %q has no site (this host's name is not a Grid'5000 node's): nothing will reach Kwollect; set url and hostname in [plugins.kwollect-output]", c.URL))
	}
	out, err := newOutput(c, env.Pipeline.Registry(), env.Logger, c.Delivery.Options(env.Mode), env.ConfigPath, netrc.Path())
	if err != nil {
		return err
	}
	if err := env.Pipeline.AddOutput(Name, out); err != nil {
		_ = out.Close()
		return err
	}
	return nil
}
