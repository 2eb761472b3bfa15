package promremotewrite

import (
	_ "embed"
	"errors"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/alumet-go/alumet-agent/plugin"
	"github.com/alumet-go/alumet-agent/plugins/internal/push"
)

// Config is the [plugins.prometheus-remote-write] section.
type Config struct {
	// URL is the receiver's write endpoint: Prometheus'
	// /api/v1/write, VictoriaMetrics' or vmagent's /api/v1/write, Mimir's
	// /api/v1/push...
	URL string `toml:"url"`
	// AddAttributesToLabels adds the points' attributes as labels (the
	// resource and consumer always are), as prometheus-exporter.
	AddAttributesToLabels bool `toml:"add_attributes_to_labels"`
	// Username and Password are sent with Basic auth; BearerToken as
	// "Authorization: Bearer". Values may name environment variables.
	Username    string `toml:"username,omitempty"`
	Password    string `toml:"password,omitempty"`
	BearerToken string `toml:"bearer_token,omitempty"`
	// PasswordFile and BearerTokenFile hold the secret on their first line.
	PasswordFile    string `toml:"password_file,omitempty"`
	BearerTokenFile string `toml:"bearer_token_file,omitempty"`
	// Headers are sent with every request (a tenant: X-Scope-OrgID).
	Headers map[string]string `toml:"headers,omitempty"`
	// The delivery keys: batch_size, flush_interval, buffer_size, timeout,
	// close_timeout.
	push.Delivery
}

// DefaultConfig returns the defaults: a local Prometheus.
func DefaultConfig() *Config {
	return &Config{URL: "http://localhost:9090/api/v1/write", AddAttributesToLabels: true}
}

// SampleConfig is the commented default section (sample.toml).
//
//go:embed sample.toml
var SampleConfig string

// Validate checks the decoded values.
func (c *Config) Validate() error {
	var errs []error
	u, err := url.Parse(c.URL)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		errs = append(errs, plugin.FieldErrorf("url", "want http(s)://host:port/path, got %q", push.RedactedURL(c.URL)))
	case u.User != nil:
		errs = append(errs, plugin.FieldErrorf("url", "credentials in the URL are not accepted: use username and password"))
	}
	if c.PasswordFile != "" && c.Password != "" {
		errs = append(errs, plugin.FieldErrorf("password_file", "password and password_file are both set: keep one"))
	}
	if c.BearerTokenFile != "" && c.BearerToken != "" {
		errs = append(errs, plugin.FieldErrorf("bearer_token_file", "bearer_token and bearer_token_file are both set: keep one"))
	}
	if (c.Username == "") != (c.Password == "" && c.PasswordFile == "") {
		errs = append(errs, plugin.FieldErrorf("password", "username and password go together (Basic auth), or neither"))
	}
	if (c.BearerToken != "" || c.BearerTokenFile != "") && c.Username != "" {
		errs = append(errs, plugin.FieldErrorf("bearer_token", "set bearer_token or username and password, not both"))
	}
	for k := range c.Headers {
		if k == "" || strings.ContainsAny(k, " :\r\n") {
			errs = append(errs, plugin.FieldErrorf("headers", "%q is not a header name", k))
		}
	}
	errs = append(errs, c.Delivery.Validate()...)
	return errors.Join(errs...)
}

func (c *Config) header() map[string][]string {
	h := map[string][]string{
		"Content-Type":                      {"application/x-protobuf"},
		"Content-Encoding":                  {"snappy"},
		"X-Prometheus-Remote-Write-Version": {"0.1.0"},
		"User-Agent":                        {"alumet-agent-prometheus-remote-write/" + Version},
	}
	for k, v := range c.Headers {
		k = textproto.CanonicalMIMEHeaderKey(k)
		h[k] = append(h[k], v)
	}
	return h
}

// secrets returns the password and the bearer token, from the keys or
// their *_file.
func (c *Config) secrets() (password, token string, err error) {
	password, token = c.Password, c.BearerToken
	if c.PasswordFile != "" {
		if password, err = push.ReadSecret("password_file", c.PasswordFile); err != nil {
			return "", "", err
		}
	}
	if c.BearerTokenFile != "" {
		if token, err = push.ReadSecret("bearer_token_file", c.BearerTokenFile); err != nil {
			return "", "", err
		}
	}
	return password, token, nil
}
