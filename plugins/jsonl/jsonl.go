// Package jsonl is the jsonl output plugin (Go agent only): one JSON object
// per measurement point, one per line (JSON Lines), for jq users and log
// shippers:
//
//	{"metric":"wattmetre_power_watt","unit":"W","timestamp":"2025-07-22T11:05:26.000468Z","value":88.9,"resource_kind":"device_id","resource_id":"taurus-3","consumer_kind":"device_origin","consumer_id":"wattmetre1-port2","attributes":{"metric_id":"wattmetre_power_watt"}}
//
// The keys always come in this order. The timestamp is the CSV's (RFC 3339
// in UTC, nanoseconds, trailing zeros removed); the value is a JSON number
// with the CSV's digits, or the string "NaN", "Infinity" or "-Infinity"
// (as Kwollect writes them); attributes keep their types (string, number,
// boolean, array of numbers). See README.md.
package jsonl

import (
	"context"
	"fmt"

	"github.com/alumet-go/alumet-agent/plugin"
)

// Plugin identity.
const (
	Name      = "jsonl"
	Version   = "0.1.0"
	LogTarget = "plugin_jsonl"
)

// Factory returns the jsonl plugin.
func Factory() plugin.Factory {
	return plugin.Typed[Config, *Config]{
		Name:          Name,
		Version:       Version,
		LogTarget:     LogTarget,
		DefaultConfig: DefaultConfig,
		Sample:        SampleConfig,
		Start:         start,
	}.Factory()
}

func start(_ context.Context, c *Config, env plugin.Env) error {
	if env.Pipeline == nil {
		return fmt.Errorf("jsonl: no pipeline to add the output to")
	}
	out, err := Open(c, env.Pipeline.Registry(), env.Logger)
	if err != nil {
		return err
	}
	if err := env.Pipeline.AddOutput(Name, out); err != nil {
		out.Close()
		return err
	}
	return nil
}
