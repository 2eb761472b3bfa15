package kwollectinput

import (
	_ "embed"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/alumet-go/alumet-agent/config"
	"github.com/alumet-go/alumet-agent/internal/redact"
	"github.com/alumet-go/alumet-agent/kwollect"
	"github.com/alumet-go/alumet-agent/plugin"
)

// StringList is a TOML string (possibly comma-separated) or a list of
// strings: the seed README writes `metrics = "wattmetre_power_watt"`, Alumet's
// parser wants a list, and we accept both.
type StringList []string

// UnmarshalTOML accepts a string or an array of strings.
func (l *StringList) UnmarshalTOML(v any) error {
	items, err := config.ParseStringList(v)
	if err != nil {
		return err
	}
	*l = items
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

// JobRef is the job_id key: an OAR job number, or "auto" for the job the
// agent runs in ($OAR_JOB_ID, $OAR_NODEFILE).
type JobRef struct {
	Auto bool
	ID   int64
}

// IsZero reports whether no job is configured (for omitempty).
func (j JobRef) IsZero() bool { return !j.Auto && j.ID == 0 }

// UnmarshalTOML accepts an integer, a numeric string or "auto".
func (j *JobRef) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		if v <= 0 {
			return fmt.Errorf("expected a positive OAR job id or \"auto\", got %d", v)
		}
		*j = JobRef{ID: v}
		return nil
	case string:
		s := strings.TrimSpace(v)
		if s == "auto" {
			*j = JobRef{Auto: true}
			return nil
		}
		if s == "" {
			*j = JobRef{}
			return nil
		}
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("expected a positive OAR job id or \"auto\", got %q", v)
		}
		*j = JobRef{ID: id}
		return nil
	}
	return fmt.Errorf("expected a positive OAR job id or \"auto\", got %T", v)
}

// MarshalTOML writes the id or "auto".
func (j JobRef) MarshalTOML() ([]byte, error) {
	if j.Auto {
		return []byte(`"auto"`), nil
	}
	return []byte(strconv.FormatInt(j.ID, 10)), nil
}

// PreflightMode says what to do when a node/metric has no recent data before exec.
type PreflightMode string

// Pre-flight modes.
const (
	PreflightFail PreflightMode = "fail"
	PreflightWarn PreflightMode = "warn"
	PreflightOff  PreflightMode = "off"
)

// UnmarshalTOML accepts true (fail), false (off), "fail", "warn" and "off".
func (m *PreflightMode) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case bool:
		*m = PreflightOff
		if v {
			*m = PreflightFail
		}
		return nil
	case string:
		switch PreflightMode(v) {
		case PreflightFail, PreflightWarn, PreflightOff:
			*m = PreflightMode(v)
			return nil
		}
	}
	return fmt.Errorf(`expected true, false, "warn", "fail" or "off", got %v`, v)
}

// edgeReadings is the edge_readings key, true when unset.
func (c *Config) edgeReadings() bool { return c.EdgeReadings == nil || *c.EdgeReadings }

// MarshalTOML writes true, false or "warn".
func (m PreflightMode) MarshalTOML() ([]byte, error) {
	switch m {
	case PreflightWarn:
		return []byte(`"warn"`), nil
	case PreflightOff:
		return []byte("false"), nil
	}
	return []byte("true"), nil
}

// Config is the [plugins.kwollect-input] table: the seed's keys plus the
// Go-only ones, which Alumet ignores.
type Config struct {
	Site         string          `toml:"site"`
	Hostname     StringList      `toml:"hostname"`
	Nodes        StringList      `toml:"nodes,omitempty"`
	JobID        JobRef          `toml:"job_id,omitempty"`
	Metrics      StringList      `toml:"metrics"`
	Login        string          `toml:"login"`
	Password     string          `toml:"password"`
	PasswordFile string          `toml:"password_file,omitempty"`
	APIURL       string          `toml:"api_url"`
	UTCOffset    *int64          `toml:"utc_offset,omitempty"`
	FetchDelay   config.Duration `toml:"fetch_delay" duration:"max=1h"`          // MaxFetchDelay
	FetchTimeout config.Duration `toml:"fetch_timeout" duration:"max=1h"`        // MaxFetchTimeout
	PollInterval config.Duration `toml:"poll_interval" duration:"min=1s,max=1h"` // MinPollInterval, MaxPollInterval
	Preflight    PreflightMode   `toml:"preflight"`
	RowBudget    int             `toml:"row_budget"`
	Concurrency  int             `toml:"concurrency"`
	// EdgeReadings (Go only, default true) reads the readings around the
	// window of the metrics whose readings are far apart (counters, BMC,
	// PDU): the minute before the first run, and after the window, which
	// exec and watch wait for (about 1.5 periods). false reads neither:
	// energy-report then extrapolates those series' edges.
	EdgeReadings *bool `toml:"edge_readings,omitempty"`

	// credSource says which credentials credentials() chose, for the
	// messages about a 401 (never the password).
	credSource string
}

// Bounds of the duration keys (the duration tags of Config say the same, for
// the loader's errors, which quote the value as written). An hour is far
// beyond any useful value of each, so a larger one is a typo ("290y") that
// would leave the agent asleep or stuck.
const (
	// MaxFetchDelay bounds fetch_delay, the wait before the first query
	// (not needed: the tail is re-queried).
	MaxFetchDelay = time.Hour
	// MaxFetchTimeout bounds fetch_timeout, how long to complete the tail
	// Kwollect has not ingested yet (documented as "usually < 1 min").
	MaxFetchTimeout = time.Hour
	// MinPollInterval and MaxPollInterval bound poll_interval (run mode).
	MinPollInterval = time.Second
	MaxPollInterval = time.Hour
)

// DefaultConfig returns the defaults. The targets are empty: on a Grid'5000
// node, a config that names no node, job or site measures the node itself
// (see resolveTargets). Host-derived values are never put in the defaults,
// because a user's section is decoded on top of them and they would add
// the local node to every list.
// SampleConfig is the commented section (sample.toml): the seed README's
// keys with example values, and the Go agent's own keys.
//
//go:embed sample.toml
var SampleConfig string

func DefaultConfig() *Config {
	return &Config{
		Hostname:     StringList{}, // non-nil, so generated configs show the key
		Metrics:      StringList{"wattmetre_power_watt"},
		APIURL:       kwollect.DefaultBaseURL,
		FetchTimeout: config.Duration(2 * time.Minute),
		PollInterval: config.Duration(10 * time.Second),
		Preflight:    PreflightFail,
		RowBudget:    200_000,
		Concurrency:  4,
	}
}

// generatedConfig is what `config regen` writes: the defaults, with this
// node and its site on a Grid'5000 node (spec: alumet-compat §4.5).
func generatedConfig(env environment) *Config {
	c := DefaultConfig()
	if node, site, ok := env.local(); ok {
		c.Site, c.Hostname = site, StringList{node}
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

// Validate checks the keys. Whether the targets resolve (FQDNs, OAR
// environment) is checked at start, see resolveTargets.
func (c *Config) Validate() error {
	errs := c.accessErrors()
	_, _, onGrid5000 := realEnvironment().local()
	if len(c.Hostname) == 0 && len(c.Nodes) == 0 && c.JobID.IsZero() && !onGrid5000 {
		errs = append(errs, plugin.FieldErrorf("hostname", `missing: the node(s) to measure, e.g. hostname = "taurus-7" (or nodes = [...], or job_id)`))
	}
	if strings.TrimSpace(c.Site) == "" && !c.JobID.Auto && !onGrid5000 {
		for _, n := range append(append([]string(nil), c.Hostname...), c.Nodes...) {
			if _, _, ok := splitNodeSite(n); !ok {
				errs = append(errs, plugin.FieldErrorf("site", `missing: the Grid'5000 site of %q, e.g. site = "lyon" (or write the node as %s.<site>.grid5000.fr)`, n, n))
				break
			}
		}
		if len(c.Hostname) == 0 && len(c.Nodes) == 0 && c.JobID.ID != 0 {
			errs = append(errs, plugin.FieldErrorf("site", `missing: the Grid'5000 site of OAR job %d, e.g. site = "lyon"`, c.JobID.ID))
		}
	}
	if len(c.Metrics) == 0 {
		errs = append(errs, plugin.FieldErrorf("metrics", `missing: the Kwollect metric(s) to read, e.g. metrics = "wattmetre_power_watt"`))
	}
	if c.PollInterval.D() < MinPollInterval {
		errs = append(errs, plugin.FieldErrorf("poll_interval", "must be at least %s", config.FormatDuration(MinPollInterval)))
	}
	for _, d := range []struct {
		key      string
		val, max time.Duration
	}{
		{"fetch_delay", c.FetchDelay.D(), MaxFetchDelay},
		{"fetch_timeout", c.FetchTimeout.D(), MaxFetchTimeout},
		{"poll_interval", c.PollInterval.D(), MaxPollInterval},
	} {
		switch {
		case d.val < 0:
			errs = append(errs, plugin.FieldErrorf(d.key, "must not be negative"))
		case d.val > d.max:
			errs = append(errs, plugin.FieldErrorf(d.key, "%s is too long (at most %s)", config.FormatDuration(d.val), config.FormatDuration(d.max)))
		}
	}
	if c.RowBudget < 1000 {
		errs = append(errs, plugin.FieldErrorf("row_budget", "must be at least 1000 rows"))
	}
	if c.Concurrency < 1 || c.Concurrency > 32 {
		errs = append(errs, plugin.FieldErrorf("concurrency", "must be between 1 and 32"))
	}
	return errors.Join(errs...)
}

// LookupConfig is the [plugins.kwollect-input] table as `alumet-agent
// kwollect metrics` reads it: the same keys, but validated only for what a
// Reference API lookup needs (api_url, credentials), so that a table
// without hostname still gives its api_url and credentials.
type LookupConfig struct {
	Config
}

// Validate checks the site's form, api_url and the credential keys.
func (c *LookupConfig) Validate() error { return errors.Join(c.accessErrors()...) }

// accessErrors checks what reaching the API needs: the site's form,
// api_url and the credential keys.
func (c *Config) accessErrors() []error {
	var errs []error
	if strings.ContainsAny(c.Site, "/?#&, ") {
		errs = append(errs, plugin.FieldErrorf("site", "%q is not a site name (e.g. \"lyon\")", c.Site))
	}
	if c.Password != "" && c.PasswordFile != "" {
		errs = append(errs, plugin.FieldErrorf("password_file", "set either password or password_file, not both"))
	}
	if (c.Password != "" || c.PasswordFile != "") && c.Login == "" {
		errs = append(errs, plugin.FieldErrorf("login", "a password is set but login is empty"))
	}
	// The password of the config, and one written in api_url, are masked
	// in every message from now on (api_url's when it is rejected, too).
	redact.Register(c.Password)
	redact.RegisterURL(c.APIURL)
	if u, err := url.Parse(c.APIURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		shown := redact.String(strconv.Quote(c.APIURL))
		if strings.Contains(c.APIURL, "@") && !strings.Contains(shown, redact.Mask) {
			// Not URL-like enough for redact to know where a password
			// would be ("user:pw@host"): do not show it at all.
			shown = "the value (not shown: it may hold credentials)"
		}
		errs = append(errs, plugin.FieldErrorf("api_url", "%s is not an http(s) URL, e.g. %q", shown, kwollect.DefaultBaseURL))
	} else if _, err := kwollect.NewClient(kwollect.Options{BaseURL: c.APIURL}); err != nil {
		// The client's own checks (port, plain http off loopback, a
		// query…), said here with the file and line.
		errs = append(errs, plugin.FieldErrorf("api_url", "%s", strings.TrimPrefix(redact.String(err.Error()), "api_url ")))
	}
	return errs
}

// LookupSpec is the plugin's config spec with LookupConfig in place of
// Config, for loading only the kwollect-input table for a lookup.
func LookupSpec() config.PluginSpec {
	f := Factory()
	return config.PluginSpec{Name: f.Name, Version: f.Version, DefaultConfig: func() plugin.Config {
		return &LookupConfig{Config: *DefaultConfig()}
	}}
}
