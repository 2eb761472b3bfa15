package kwollectinput

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/alumet-go/alumet-agent/kwollect"
)

// Credentials are what a Kwollect client sends (see kwollect.Credentials).
type Credentials = kwollect.Credentials

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
	cr, err := kwollect.ResolveCredentials(kwollect.CredentialSources{Login: login, Password: password, PasswordFile: passwordFile,
		APIURL: cfg.APIURL, ConfigPath: o.ConfigPath, NetrcPath: o.NetrcPath, Log: log})
	cfg.credSource = cr.Source
	return cr, err
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
