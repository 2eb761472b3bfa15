package jsonl

import (
	_ "embed"

	"github.com/alumet-go/alumet-agent/plugin"
)

// Config is the [plugins.jsonl] section.
type Config struct {
	// OutputPath is the JSON Lines file, relative to the working directory.
	OutputPath string `toml:"output_path"`
	// ForceFlush writes the lines after every buffer; when false they are
	// written at least every second and at shutdown.
	ForceFlush bool `toml:"force_flush"`
	// Append keeps an existing file and appends to it.
	Append bool `toml:"append"`
}

// DefaultConfig returns the default [plugins.jsonl] section.
func DefaultConfig() *Config {
	return &Config{OutputPath: "alumet-output.jsonl", ForceFlush: true}
}

// SampleConfig is the commented default section (sample.toml).
//
//go:embed sample.toml
var SampleConfig string

// Validate checks the decoded values.
func (c *Config) Validate() error {
	if c.OutputPath == "" {
		return plugin.FieldErrorf("output_path", "must not be empty")
	}
	return nil
}

// Files implements plugin.FilesConfig: the file this plugin writes.
func (c *Config) Files() []plugin.File {
	return []plugin.File{{Key: "output_path", Path: c.OutputPath}}
}
