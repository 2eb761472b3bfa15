package kwollectinput

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/alumet-go/alumet-agent/config"
	"github.com/alumet-go/alumet-agent/kwollect"
	"github.com/alumet-go/alumet-agent/plugin"
)

// StringList is a TOML string (possibly comma-separated) or a list of
// strings: the seed README writes `metrics = "wattmetre_power_watt"`, Alumet's
// parser wants a list, and we accept both.
type StringList []string

// UnmarshalTOML accepts a string or an array of strings.
func (l *StringList) UnmarshalTOML(v any) error {
	var items []string
	switch v := v.(type) {
	case string:
		items = strings.Split(v, ",")
	case []any:
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("expected a string or a list of strings, got a list holding %T", e)
			}
			items = append(items, strings.Split(s, ",")...)
		}
	default:
		return fmt.Errorf("expected a string or a list of strings, got %T", v)
	}
	out := (*l)[:0]
	for _, s := range items {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	*l = out
	return nil
}

// MarshalTOML writes one item as a string, as the seed README does, and
// several as a list; an empty list as "" so that generated configs show the key.
func (l StringList) MarshalTOML() ([]byte, error) {
	if len(l) <= 1 {
		return []byte(strconv.Quote(strings.Join(l, ""))), nil
	}
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = strconv.Quote(s)
	}
	return []byte("[" + strings.Join(q, ", ") + "]"), nil
}

// Config is the [plugins.kwollect-input] table: the seed's keys plus the
// Go-only ones, which Alumet ignores.
type Config struct {
	Site         string          `toml:"site"`
	Hostname     StringList      `toml:"hostname"`
	Metrics      StringList      `toml:"metrics"`
	Login        string          `toml:"login"`
	Password     string          `toml:"password"`
	PasswordFile string          `toml:"password_file,omitempty"`
	APIURL       string          `toml:"api_url"`
	UTCOffset    *int64          `toml:"utc_offset,omitempty"`
	FetchDelay   config.Duration `toml:"fetch_delay"`
	FetchTimeout config.Duration `toml:"fetch_timeout"`
}

// DefaultConfig returns the defaults. On a Grid'5000 node the site and the
// node come from the host's FQDN (<node>.<site>.grid5000.fr); elsewhere they
// are empty and must be set.
func DefaultConfig() *Config {
	c := &Config{
		Hostname:     StringList{}, // non-nil, so generated configs show the key
		Metrics:      StringList{"wattmetre_power_watt"},
		APIURL:       kwollect.DefaultBaseURL,
		FetchTimeout: config.Duration(60e9),
	}
	if host, err := os.Hostname(); err == nil {
		if node, site, ok := SplitFQDN(host); ok {
			c.Site, c.Hostname = site, StringList{node}
		}
	}
	return c
}

// SplitFQDN splits "<node>.<site>.grid5000.fr" into node and site.
func SplitFQDN(host string) (node, site string, ok bool) {
	parts := strings.Split(host, ".")
	if len(parts) >= 4 && parts[len(parts)-2] == "grid5000" && parts[len(parts)-1] == "fr" {
		return parts[0], parts[1], true
	}
	return "", "", false
}

// Validate checks the keys.
func (c *Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.Site) == "" {
		errs = append(errs, plugin.FieldErrorf("site", `missing: the Grid'5000 site of the node, e.g. site = "lyon"`))
	} else if strings.ContainsAny(c.Site, "/?#&, ") {
		errs = append(errs, plugin.FieldErrorf("site", "%q is not a site name (e.g. \"lyon\")", c.Site))
	}
	if len(c.Hostname) == 0 {
		errs = append(errs, plugin.FieldErrorf("hostname", `missing: the node(s) to measure, e.g. hostname = "taurus-7"`))
	}
	if len(c.Metrics) == 0 {
		errs = append(errs, plugin.FieldErrorf("metrics", `missing: the Kwollect metric(s) to read, e.g. metrics = "wattmetre_power_watt"`))
	}
	if c.Password != "" && c.PasswordFile != "" {
		errs = append(errs, plugin.FieldErrorf("password_file", "set either password or password_file, not both"))
	}
	if (c.Password != "" || c.PasswordFile != "") && c.Login == "" {
		errs = append(errs, plugin.FieldErrorf("login", "a password is set but login is empty"))
	}
	if u, err := url.Parse(c.APIURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		errs = append(errs, plugin.FieldErrorf("api_url", "%q is not an http(s) URL, e.g. %q", c.APIURL, kwollect.DefaultBaseURL))
	}
	if c.FetchTimeout.D() < 0 || c.FetchDelay.D() < 0 {
		errs = append(errs, plugin.FieldErrorf("fetch_timeout", "durations must not be negative"))
	}
	return errors.Join(errs...)
}

// password returns the configured password, reading password_file if set.
func (c *Config) password() (string, error) {
	if c.PasswordFile == "" {
		return c.Password, nil
	}
	path := c.PasswordFile
	if rest, ok := strings.CutPrefix(path, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			path = home + "/" + rest
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("password_file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimRight(line, "\r"), nil
}
