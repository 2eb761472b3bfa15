package influxdb

import (
	_ "embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/alumet-go/alumet-agent/config"
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
	// BatchSize is the most points per request (default 5000).
	BatchSize int `toml:"batch_size,omitzero"`
	// FlushInterval is the longest a point waits for its batch (default 1s).
	FlushInterval *config.Duration `toml:"flush_interval,omitempty" duration:"min=1ms,max=1h"`
	// BufferSize bounds the bytes of line protocol waiting for the
	// server (default 64 MiB); beyond it the oldest batches are dropped.
	BufferSize int64 `toml:"buffer_size,omitzero"`
	// WhenFull is what a full buffer does while the server accepts
	// batches: "wait" for it (the server sets the pace) or "drop" the
	// oldest batches. Unset: "wait" in fetch mode (history, where waiting
	// loses nothing), "drop" in the live modes (exec, watch, run). A
	// failing server is always dropped from.
	WhenFull string `toml:"when_full,omitempty"`
	// Timeout bounds each request (default 10s).
	Timeout *config.Duration `toml:"timeout,omitempty" duration:"min=1ms,max=1h"`
	// CloseTimeout bounds the final delivery at shutdown (default 10s).
	CloseTimeout *config.Duration `toml:"close_timeout,omitempty" duration:"min=1ms,max=1h"`
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

// WaitBufferSize is buffer_size's default when a full buffer waits.
const WaitBufferSize = 8 << 20

const (
	minBatch      = 1
	maxBatch      = 1_000_000
	minBufferSize = 1 << 10
)

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
	if c.BatchSize != 0 && (c.BatchSize < minBatch || c.BatchSize > maxBatch) {
		errs = append(errs, plugin.FieldErrorf("batch_size", "must be between %d and %d, got %d", minBatch, maxBatch, c.BatchSize))
	}
	switch c.WhenFull {
	case "", "wait", "drop":
	default:
		errs = append(errs, plugin.FieldErrorf("when_full", `must be "wait" or "drop", got %q`, c.WhenFull))
	}
	if c.BufferSize != 0 && c.BufferSize < minBufferSize {
		errs = append(errs, plugin.FieldErrorf("buffer_size", "must be at least %d bytes, got %d", minBufferSize, c.BufferSize))
	}
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

func dur(d *config.Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return d.D()
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
		t, err := readSecret("token_file", c.TokenFile)
		if err != nil {
			return s, err
		}
		s.token = t
	}
	if c.PasswordFile != "" {
		p, err := readSecret("password_file", c.PasswordFile)
		if err != nil {
			return s, err
		}
		s.password = p
	}
	redact.Register(s.token)
	redact.Register(s.password)
	return s, nil
}

// readSecret reads the first line of a secret file.
func readSecret(key, path string) (string, error) {
	if strings.HasPrefix(path, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			path = home + path[1:]
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", &plugin.FieldError{Key: key, Err: err}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimRight(line, "\r")
	if line == "" {
		return "", plugin.FieldErrorf(key, "%s: the first line is empty", path)
	}
	return line, nil
}

// queueOptions are the delivery options of the config in mode.
func (c *Config) queueOptions(mode plugin.Mode) push.Options {
	o := push.Options{
		BatchPoints:   c.BatchSize,
		FlushInterval: dur(c.FlushInterval, push.DefaultFlushInterval),
		BufferBytes:   c.BufferSize,
		CloseTimeout:  dur(c.CloseTimeout, push.DefaultCloseTimeout),
		Wait:          c.WhenFull == "wait" || c.WhenFull == "" && mode == plugin.ModeFetch,
	}
	if o.Wait && o.BufferBytes == 0 {
		// Waiting, the buffer only needs to keep the sender busy.
		o.BufferBytes = WaitBufferSize
	}
	return o
}

func (c *Config) gzip() bool { return c.Gzip == nil || *c.Gzip }

// describe names the destination for messages.
func (c *Config) describe() string {
	if c.api() == APIv1 {
		return fmt.Sprintf("host %s, database %q", redact.String(c.Host), c.Database)
	}
	return fmt.Sprintf("host %s, org %q, bucket %q", redact.String(c.Host), c.Org, c.Bucket)
}
