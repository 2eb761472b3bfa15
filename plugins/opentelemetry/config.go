package opentelemetry

import (
	_ "embed"
	"errors"
	"net/textproto"
	"os"
	"strings"
	"time"

	"github.com/alumet-go/alumet-agent/plugin"
	"github.com/alumet-go/alumet-agent/plugins/internal/push"
)

// Config is the [plugins.opentelemetry] section: Alumet's keys, then the
// Go agent's.
type Config struct {
	// CollectorHost is the collector's URL: http:// (gRPC without TLS, as
	// Alumet) or https:// (TLS, verified).
	CollectorHost      string `toml:"collector_host"`
	Prefix             string `toml:"prefix"`
	Suffix             string `toml:"suffix"`
	UseUnitDisplayName bool   `toml:"use_unit_display_name"`
	// AddAttributesToLabels adds the points' attributes to the data
	// points' attributes (the resource and consumer always are).
	AddAttributesToLabels bool `toml:"add_attributes_to_labels"`

	// Go agent only (omitted from generated configs while at their
	// defaults, so that Alumet can load them).

	// Protocol is "grpc" (Alumet's) or "http/protobuf".
	Protocol string `toml:"protocol,omitempty"`
	// Headers are sent with every export (an API key, a tenant); values are
	// never logged. The loader substitutes environment variables, as in
	// every value.
	Headers map[string]string `toml:"headers,omitempty"`
	// HeadersFile is a file of "Name: value" lines sent as headers too (a
	// token kept out of the configuration; blank lines and lines starting
	// with # are skipped). It is read at start; a header it names may not
	// be in headers as well.
	HeadersFile string `toml:"headers_file,omitempty"`
	// Compression is "gzip" (the default: the OTLP specification has every
	// server accept it) or "none" (Alumet's uncompressed requests).
	Compression string `toml:"compression,omitempty"`
	// The delivery keys: batch_size, flush_interval, buffer_size, timeout,
	// close_timeout.
	push.Delivery
}

// DefaultConfig returns Alumet's defaults.
func DefaultConfig() *Config {
	return &Config{CollectorHost: "http://localhost:4317", Suffix: "_alumet", UseUnitDisplayName: true, AddAttributesToLabels: true}
}

// SampleConfig is the commented default section (sample.toml).
//
//go:embed sample.toml
var SampleConfig string

func (c *Config) protocol() string {
	if c.Protocol == "" {
		return ProtocolGRPC
	}
	return c.Protocol
}

// gzip says whether the requests are gzip-compressed.
func (c *Config) gzip() bool { return c.Compression != "none" }

// Validate checks the decoded values.
func (c *Config) Validate() error {
	var errs []error
	if _, err := newExporter(c.protocol(), c.CollectorHost, nil, false, time.Second); err != nil {
		key := "collector_host"
		if strings.HasPrefix(err.Error(), "protocol") {
			key = "protocol"
		}
		errs = append(errs, plugin.FieldErrorf(key, "%s", strings.TrimPrefix(strings.TrimPrefix(err.Error(), "protocol "), "collector_host ")))
	}
	switch c.Compression {
	case "", "none", "gzip":
	default:
		errs = append(errs, plugin.FieldErrorf("compression", "%q: want \"none\" or \"gzip\"", c.Compression))
	}
	errs = append(errs, c.Delivery.Validate()...)
	for k := range c.Headers {
		if k == "" || strings.ContainsAny(k, " :\r\n") {
			errs = append(errs, plugin.FieldErrorf("headers", "%q is not a header name", k))
		}
	}
	return errors.Join(errs...)
}

// header returns the headers (headers, then headers_file's), keys in
// canonical form.
func (c *Config) header() (map[string][]string, error) {
	h := map[string][]string{}
	for k, v := range c.Headers {
		k = textproto.CanonicalMIMEHeaderKey(k)
		h[k] = append(h[k], v)
	}
	if c.HeadersFile == "" {
		return h, nil
	}
	fromFile, err := readHeadersFile(c.HeadersFile)
	if err != nil {
		return nil, err
	}
	for k, v := range fromFile {
		if _, ok := h[k]; ok {
			return nil, plugin.FieldErrorf("headers_file", "%s: %s is in headers too: keep one", c.HeadersFile, k)
		}
		h[k] = v
	}
	return h, nil
}

// readHeadersFile reads "Name: value" lines. Its errors name the file and
// the line, never a value (a secret).
func readHeadersFile(path string) (map[string][]string, error) {
	if strings.HasPrefix(path, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			path = home + path[1:]
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &plugin.FieldError{Key: "headers_file", Err: err}
	}
	h := map[string][]string{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, plugin.FieldErrorf("headers_file", "%s, line %d: want \"Name: value\"", path, i+1)
		}
		k = textproto.CanonicalMIMEHeaderKey(k)
		h[k] = append(h[k], strings.TrimSpace(v))
	}
	if len(h) == 0 {
		return nil, plugin.FieldErrorf("headers_file", "%s: no header in it", path)
	}
	return h, nil
}
