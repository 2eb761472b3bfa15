package kwollectinput

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/alumet-go/alumet-agent/internal/netrc"
	"github.com/alumet-go/alumet-agent/internal/redact"
	"github.com/alumet-go/alumet-agent/kwollect"
)

// Credentials are what a Kwollect client sends (none: both empty) and
// Source, which ones they are, for the messages about a 401 (never the
// password).
type Credentials struct {
	Login, Password string
	Source          string
}

// CredentialOptions says where ResolveCredentials looks besides the
// config.
type CredentialOptions struct {
	// ConfigPath is the config file ("" if none): a literal password in
	// it that others can read is warned about.
	ConfigPath string
	// NetrcPath is the netrc file to read (netrc.Path(): $NETRC, else
	// ~/.netrc).
	NetrcPath string
	// Login, if not nil, replaces the config's login (the --login flag of
	// alumet-agent kwollect metrics). For another login than the
	// config's, the config's password and password_file are not used; the
	// password is then $G5K_PASSWORD if set (unless the config's
	// password_file is kept), else the netrc entry.
	Login *string
	// Getenv reads $G5K_PASSWORD for Login; nil means os.Getenv.
	Getenv func(string) string
	Log    *slog.Logger
}

// ResolveCredentials is the one place where the credentials of a Kwollect
// client are resolved, for the plugin and for alumet-agent kwollect
// metrics. In order: the config's login and password (with ${VAR} already
// substituted by the loader), password_file (its first line), then the
// netrc entry of the API host (for the same login, if one is set). None of
// them means no auth, which is what nodes and frontends inside Grid'5000
// need. It warns when a file holding the password can be read by other
// users, registers every password with the redactor, and never logs one.
// cfg is not changed, but for the Source it remembers for the plugin's
// messages.
func ResolveCredentials(cfg *Config, o CredentialOptions) (Credentials, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	login, password, passwordFile := cfg.Login, cfg.Password, cfg.PasswordFile
	if o.Login != nil {
		if *o.Login != login {
			password, passwordFile = "", "" // the config's password is not this login's
		}
		login = *o.Login
		getenv := o.Getenv
		if getenv == nil {
			getenv = os.Getenv
		}
		if pw := getenv("G5K_PASSWORD"); pw != "" && passwordFile == "" {
			password = pw
		}
	}
	cr, err := resolve(login, password, passwordFile, cfg.APIURL, o.ConfigPath, o.NetrcPath, log)
	cfg.credSource = cr.Source
	return cr, err
}

func resolve(login, password, passwordFile, apiURL, configPath, netrcPath string, log *slog.Logger) (Credentials, error) {
	redact.Register(password)
	source := "no credentials"
	if password != "" {
		source = fmt.Sprintf("login %q with the password of the config", login)
		if configPath != "" && !fileContains(configPath, password) {
			source = fmt.Sprintf("login %q with the password of the config, from an environment variable", login)
		}
	}
	if password != "" && configPath != "" && readableByOthers(configPath) && fileContains(configPath, password) {
		log.Warn(fmt.Sprintf("%s holds a Grid'5000 password and can be read by other users: run chmod 600 %s, or use password = \"${G5K_PASSWORD}\", password_file or ~/.netrc", configPath, configPath))
	}
	if passwordFile != "" {
		path := expandHome(passwordFile)
		b, err := os.ReadFile(path)
		if err != nil {
			return Credentials{Source: source}, fmt.Errorf("password_file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		password = strings.TrimRight(line, "\r")
		redact.Register(password)
		if password == "" {
			return Credentials{Source: source}, fmt.Errorf("password_file %s: the first line is empty", path)
		}
		if readableByOthers(path) {
			log.Warn(fmt.Sprintf("password_file %s can be read by other users: run chmod 600 %s", path, path))
		}
		source = fmt.Sprintf("login %q with the password of password_file %s", login, path)
	}
	if password != "" {
		return Credentials{Login: login, Password: password, Source: source}, nil
	}
	host := ""
	if u, err := url.Parse(apiURL); err == nil {
		host = u.Hostname()
	}
	e, found, insecure, err := netrc.Lookup(netrcPath, host)
	if err != nil {
		return Credentials{Source: source}, err
	}
	if found && (login == "" || login == e.Login) && e.Password != "" {
		if insecure {
			log.Warn(fmt.Sprintf("%s can be read by other users and holds your Grid'5000 password: run chmod 600 %s", netrcPath, netrcPath))
		}
		log.Debug(fmt.Sprintf("using the credentials of %q from %s", e.Login, netrcPath))
		return Credentials{Login: e.Login, Password: e.Password, Source: fmt.Sprintf("login %q from %s (machine %s)", e.Login, netrcPath, host)}, nil
	}
	if login != "" {
		log.Warn(fmt.Sprintf("login %q is set but no password (password, password_file or %s): sending no credentials", login, netrcPath))
		source = fmt.Sprintf("no credentials: login %q is set but no password (password, password_file or %s)", login, netrcPath)
	} else {
		source = fmt.Sprintf("no credentials: none in the config (login, password, password_file) nor in %s for %s", netrcPath, host)
	}
	return Credentials{Source: source}, nil
}

// credentials is ResolveCredentials for the plugin (no --login).
func (c *Config) credentials(configPath, netrcPath string, log *slog.Logger) (login, password string, err error) {
	cr, err := ResolveCredentials(c, CredentialOptions{ConfigPath: configPath, NetrcPath: netrcPath, Log: log})
	return cr.Login, cr.Password, err
}

// ClientFromConfig builds a Kwollect client from a [plugins.kwollect-input]
// table: its api_url and the credentials ResolveCredentials picks. It also
// returns which credentials were used, for messages (never the password).
func ClientFromConfig(cfg *Config, o CredentialOptions) (*kwollect.Client, string, error) {
	cr, err := ResolveCredentials(cfg, o)
	if err != nil {
		return nil, "", err
	}
	client, err := kwollect.NewClient(kwollect.Options{BaseURL: cfg.APIURL, Login: cr.Login, Password: cr.Password})
	if err != nil {
		return nil, "", fmt.Errorf("api_url: %w", err)
	}
	return client, cr.Source, nil
}

func expandHome(path string) string {
	if rest, ok := strings.CutPrefix(path, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return home + "/" + rest
		}
	}
	return path
}

func readableByOthers(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().Perm()&0o044 != 0
}

func fileContains(path, s string) bool {
	b, err := os.ReadFile(path)
	return err == nil && bytes.Contains(b, []byte(s))
}
