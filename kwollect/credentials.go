package kwollect

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/alumet-go/alumet-agent/internal/netrc"
	"github.com/alumet-go/alumet-agent/internal/redact"
)

// Credentials are what a Kwollect client sends (none: both empty) and
// Source, which ones they are, for the messages about a 401 (never the
// password).
type Credentials struct {
	Login, Password string
	Source          string
}

// CredentialSources are where ResolveCredentials looks: a config's login,
// password (with ${VAR} already substituted by the loader) and
// password_file, then the netrc file's entry for the API's host.
type CredentialSources struct {
	Login, Password, PasswordFile string
	// APIURL is the API the credentials are for (its host picks the netrc
	// entry).
	APIURL string
	// ConfigPath is the config file ("" if none): a literal password in it
	// that others can read is warned about.
	ConfigPath string
	// NetrcPath is the netrc file (netrc.Path(): $NETRC, else ~/.netrc).
	NetrcPath string
	Log       *slog.Logger
}

// ResolveCredentials is the one place where the credentials sent to
// Grid'5000's API are resolved (kwollect-input, alumet-agent kwollect
// metrics, kwollect-output). In order: the password, password_file (its
// first line), then the netrc entry of the API host (for the same login,
// if one is set). None of them means no auth, which is what nodes and
// frontends inside Grid'5000 need. It warns when a file holding the
// password can be read by other users, registers every password with the
// redactor, and never logs one.
func ResolveCredentials(c CredentialSources) (Credentials, error) {
	login, password, passwordFile, apiURL, configPath, netrcPath := c.Login, c.Password, c.PasswordFile, c.APIURL, c.ConfigPath, c.NetrcPath
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
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
