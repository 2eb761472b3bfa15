// Package influxdb is the influxdb output plugin: it writes every point as
// one line of InfluxDB line protocol, byte-compatible with Alumet's
// plugin-influxdb (spec §1.2), to InfluxDB 2/3's /api/v2/write (or any
// server that speaks it: VictoriaMetrics, Telegraf's listener) or, with
// api = "v1", to InfluxDB 1.x's /write.
//
// Delivery goes through package push: the lines are batched (batch_size
// points, flush_interval), gzip-compressed, and sent by a goroutine of
// their own, so a slow or dead server never holds the pipeline back; the
// waiting batches are bounded by buffer_size (the oldest dropped, with a
// counted ERROR), network errors, 5xx, 408 and 429 are retried with
// backoff honouring Retry-After, and Close flushes within close_timeout.
// The Write error after a fatal refusal and the Close error are
// pipeline.LossErrors, so that the run says how many points were lost.
//
// At start, like Alumet, an empty write checks the URL and credentials: a
// 401, 403 or 404 refuses to start (naming host, org and bucket, or the
// database); a server that cannot be reached is only a warning (Alumet
// refuses to start), since the points wait in the buffer until it answers.
package influxdb

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/alumet-go/alumet-agent/internal/redact"
	"github.com/alumet-go/alumet-agent/measure"
	"github.com/alumet-go/alumet-agent/plugin"
	"github.com/alumet-go/alumet-agent/plugins/internal/push"
)

// Plugin identity.
const (
	Name      = "influxdb"
	Version   = "0.1.0"
	LogTarget = "plugin_influxdb"
)

// Factory returns the influxdb plugin. Its generated section says
// enabled = false: a missing configuration file gets every plugin's
// section, and an agent must not start pushing to localhost:8086 with
// placeholder credentials because of it.
func Factory() plugin.Factory {
	return plugin.Typed[Config, *Config]{
		Name:          Name,
		Version:       Version,
		LogTarget:     LogTarget,
		DefaultConfig: DefaultConfig,
		Sample:        SampleConfig,
		GeneratedOff:  true,
		Start:         start,
	}.Factory()
}

// probeTimeout bounds the start-up check.
const probeTimeout = 5 * time.Second

func start(ctx context.Context, c *Config, env plugin.Env) error {
	if env.Pipeline == nil {
		return fmt.Errorf("influxdb: no pipeline to add the output to")
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	out, err := open(ctx, c, env.Pipeline.Registry(), log, env.Mode, nil, nil)
	if err != nil {
		return err
	}
	if err := env.Pipeline.AddOutput(Name, out); err != nil {
		out.Close()
		return err
	}
	return nil
}

// open reads the credentials, checks them with an empty write and starts
// the output. hc and opts (tests) may be nil.
func open(ctx context.Context, c *Config, reg *measure.Registry, log *slog.Logger, mode plugin.Mode, hc *http.Client, opts *push.Options) (*Output, error) {
	s, err := c.secrets()
	if err != nil {
		return nil, err
	}
	if c.api() == APIv2 && (s.token == "" || c.Org == Placeholder || c.Bucket == Placeholder) {
		log.Warn(fmt.Sprintf("the token, org or bucket is not set (%s, token %s): set them, or token_file, or token = \"${INFLUX_TOKEN}\"",
			c.describe(), map[bool]string{true: "set", false: "not set"}[s.token != ""]))
	}
	cl, err := newClient(c, s, hc)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	perr := cl.send(pctx, nil, 0)
	cancel()
	switch class, _ := push.Classify(perr); class {
	case push.Delivered:
	case push.Fatal, push.Refused:
		return nil, fmt.Errorf("cannot write to InfluxDB (%s): %s", c.describe(), redact.String(perr.Error()))
	default:
		log.Warn(fmt.Sprintf("InfluxDB (%s) does not answer yet: %s; the points wait in the buffer (buffer_size) until it does",
			c.describe(), redact.String(perr.Error())))
	}
	return newOutput(c, reg, log, cl, mode, opts)
}
