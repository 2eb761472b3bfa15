package kwollectoutput

import (
	_ "embed"
	"errors"
	"net/url"
	"os"
	"strings"

	"github.com/alumet-go/alumet-agent/plugin"
	"github.com/alumet-go/alumet-agent/plugins/internal/push"
)

// Config is the [plugins.kwollect-output] section: Alumet's keys, then the
// Go agent's.
type Config struct {
	// URL is where the points are POSTed: a site's metrics endpoint.
	URL string `toml:"url"`
	// Hostname is the device_id of every point (this node).
	Hostname               string `toml:"hostname"`
	AppendUnitToMetricName bool   `toml:"append_unit_to_metric_name"`
	UseUnitDisplayName     bool   `toml:"use_unit_display_name"`
	// Login and Password are sent with Basic auth when both are set (from
	// outside Grid'5000; a node needs none).
	Login    string `toml:"login,omitempty"`
	Password string `toml:"password,omitempty"`
	// PasswordFile (Go agent only) holds the password on its first line.
	PasswordFile string `toml:"password_file,omitempty"`
	// The delivery keys (Go agent only): batch_size, flush_interval,
	// buffer_size, timeout, close_timeout.
	push.Delivery
}

// defaultURL is Alumet's: the site is the second label of the host's
// FQDN (taurus-7.lyon.grid5000.fr), CHANGEME when there is none.
const defaultURL = "https://api.grid5000.fr/stable/sites/%s/metrics"

// DefaultConfig returns Alumet's defaults, from this host's name.
func DefaultConfig() *Config {
	h, _ := os.Hostname()
	host, site := hostSite(h)
	return &Config{URL: strings.Replace(defaultURL, "%s", site, 1), Hostname: host,
		AppendUnitToMetricName: true, UseUnitDisplayName: true}
}

// hostSite splits an FQDN into Alumet's hostname and site.
func hostSite(fqdn string) (host, site string) {
	labels := strings.Split(fqdn, ".")
	host, site = labels[0], "CHANGEME"
	if len(labels) > 1 && labels[1] != "" {
		site = labels[1]
	}
	return host, site
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
	case err != nil || u.Host == "":
		errs = append(errs, plugin.FieldErrorf("url", "%q is not a URL", c.URL))
	case u.Scheme != "https" && u.Scheme != "http":
		errs = append(errs, plugin.FieldErrorf("url", "%q: want https://", c.URL))
	case u.User != nil:
		errs = append(errs, plugin.FieldErrorf("url", "credentials in the URL are not accepted: use login and password"))
	}
	if c.PasswordFile != "" && c.Password != "" {
		errs = append(errs, plugin.FieldErrorf("password_file", "password and password_file are both set: keep one"))
	}
	if c.Login == "" && (c.Password != "" || c.PasswordFile != "") {
		errs = append(errs, plugin.FieldErrorf("login", "a password needs its login (Basic auth)"))
	}
	errs = append(errs, c.Delivery.Validate()...)
	return errors.Join(errs...)
}
