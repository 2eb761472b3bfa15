package influxdb

import (
	_ "embed"
	"errors"
	"fmt"
	"net/url"

	"github.com/alumet-go/alumet-agent/internal/redact"
	"github.com/alumet-go/alumet-agent/plugin"
	"github.com/alumet-go/alumet-agent/plugins/internal/push"
)

// Placeholder is Alumet's default for token, org and bucket.
const Placeholder = "FILL ME"

// The values of api.
const (
	APIv2 = "v2" // POST /api/v2/write?org=&bucket=&precision=ns, Authorization: Token
	APIv1 = "v1" // POST /write?db=&precision=ns, basic auth (InfluxDB 1.x)
)

// Config is the [plugins.influxdb] section: Alumet's keys with Alumet's
// defaults, then Go-only keys, omitted from generated files while unset
// (Alumet rejects unknown keys).
type Config struct {
	// Host is the server's base URL.
	Host string `toml:"host"`
	// Token is sent as "Authorization: Token <token>" (v2).
	Token string `toml:"token"`
	// Org and Bucket are the v2 query parameters.
	Org    string `toml:"org"`
	Bucket string `toml:"bucket"`
	// AttributesAs places the attributes: "field" or "tag".
	AttributesAs string `toml:"attributes_as"`
	// AttributesAsTags and AttributesAsFields are the exceptions to it.
	AttributesAsTags   []string `toml:"attributes_as_tags,omitempty"`
	AttributesAsFields []string `toml:"attributes_as_fields,omitempty"`

	// API is "v2" (the default) or "v1" (InfluxDB 1.x: /write).
	API string `toml:"api,omitempty"`
	// Database (v1) is the database to write to; RetentionPolicy its rp.
	Database        string `toml:"database,omitempty"`
	RetentionPolicy string `toml:"retention_policy,omitempty"`
	// Username and Password (v1) are sent with basic auth.
	Username string `toml:"username,omitempty"`
	Password string `toml:"password,omitempty"`
	// TokenFile and PasswordFile hold the secret on their first line.
	TokenFile    string `toml:"token_file,omitempty"`
	PasswordFile string `toml:"password_file,omitempty"`
	// Gzip compresses the requests (default true).
	Gzip *bool `toml:"gzip,omitempty"`
	// The delivery keys: batch_size, flush_interval, buffer_size,
	// when_full, timeout, close_timeout (see push.Delivery).
	push.Delivery
}

// DefaultConfig returns Alumet's default section.
func DefaultConfig() *Config {
	return &Config{
		Host:         "http://localhost:8086",
		Token:        Placeholder,
		Org:          Placeholder,
		Bucket:       Placeholder,
		AttributesAs: "field",
	}
}

// SampleConfig is the commented section (sample.toml).
//
//go:embed sample.toml
var SampleConfig string

// Validate checks the decoded values; every problem is a plugin.FieldError.
func (c *Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.Host); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, plugin.FieldErrorf("host", "must be an http:// or https:// URL, got %q", redact.String(c.Host)))
	} else if u.RawQuery != "" || u.Fragment != "" {
		errs = append(errs, plugin.FieldErrorf("host", "must be a base URL without query or fragment, got %q", redact.String(c.Host)))
	}
	switch c.AttributesAs {
	case "field", "tag":
	default:
		errs = append(errs, plugin.FieldErrorf("attributes_as", `must be "field" or "tag", got %q`, c.AttributesAs))
	}
	switch c.api() {
	case APIv2:
		if c.Database != "" || c.RetentionPolicy != "" {
			errs = append(errs, plugin.FieldErrorf("database", `is for api = "v1"; the v2 API takes org and bucket`))
		}
	case APIv1:
		if c.Database == "" {
			errs = append(errs, plugin.FieldErrorf("database", `must be set with api = "v1"`))
		}
	default:
		errs = append(errs, plugin.FieldErrorf("api", `must be "v2" or "v1", got %q`, c.API))
	}
	if c.TokenFile != "" && c.Token != "" && c.Token != Placeholder {
		errs = append(errs, plugin.FieldErrorf("token_file", "token and token_file are both set: keep one"))
	}
	if c.PasswordFile != "" && c.Password != "" {
		errs = append(errs, plugin.FieldErrorf("password_file", "password and password_file are both set: keep one"))
	}
	if (c.Password != "" || c.PasswordFile != "") && c.Username == "" {
		errs = append(errs, plugin.FieldErrorf("username", "must be set with password or password_file"))
	}
	errs = append(errs, c.Delivery.Validate()...)
	return errors.Join(errs...)
}

func (c *Config) api() string {
	if c.API == "" {
		return APIv2
	}
	return c.API
}

// asTag says whether an attribute is written as a tag.
func (c *Config) asTag() func(string) bool {
	tags := map[string]bool{}
	for _, k := range c.AttributesAsTags {
		tags[k] = true
	}
	fields := map[string]bool{}
	for _, k := range c.AttributesAsFields {
		fields[k] = true
	}
	if c.AttributesAs == "tag" {
		return func(k string) bool { return !fields[k] }
	}
	if len(tags) == 0 {
		return func(string) bool { return false }
	}
	return func(k string) bool { return tags[k] }
}

// secrets are the credentials to send, read from the config (with ${VAR}
// already substituted) or the *_file keys, and registered with redact.
type secrets struct {
	token, username, password string
}

func (c *Config) secrets() (secrets, error) {
	s := secrets{token: c.Token, username: c.Username, password: c.Password}
	if s.token == Placeholder {
		s.token = ""
	}
	if c.TokenFile != "" {
		t, err := push.ReadSecret("token_file", c.TokenFile)
		if err != nil {
			return s, err
		}
		s.token = t
	}
	if c.PasswordFile != "" {
		p, err := push.ReadSecret("password_file", c.PasswordFile)
		if err != nil {
			return s, err
		}
		s.password = p
	}
	redact.Register(s.token)
	redact.Register(s.password)
	return s, nil
}

// queueOptions are the delivery options of the config in mode.
func (c *Config) queueOptions(mode plugin.Mode) push.Options { return c.Delivery.Options(mode) }

func (c *Config) gzip() bool { return c.Gzip == nil || *c.Gzip }

// describe names the destination for messages.
func (c *Config) describe() string {
	if c.api() == APIv1 {
		return fmt.Sprintf("host %s, database %q", redact.String(c.Host), c.Database)
	}
	return fmt.Sprintf("host %s, org %q, bucket %q", redact.String(c.Host), c.Org, c.Bucket)
}
