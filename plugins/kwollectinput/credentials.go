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

// credentials returns the login and password to send, from (in order) the
// config's login/password (with ${VAR} already substituted), password_file,
// and the netrc entry of the API host. None of them means no auth, which is
// what nodes and frontends inside Grid'5000 need. It warns when a file holding
// the password can be read by other users; it never logs the password.
func (c *Config) credentials(configPath, netrcPath string, log *slog.Logger) (login, password string, err error) {
	login, password = c.Login, c.Password
	redact.Register(password)
	c.credSource = "no credentials"
	if password != "" {
		c.credSource = fmt.Sprintf("login %q with the password of the config", login)
		if configPath != "" && !fileContains(configPath, password) {
			c.credSource = fmt.Sprintf("login %q with the password of the config, from an environment variable", login)
		}
	}
	if password != "" && configPath != "" && readableByOthers(configPath) && fileContains(configPath, password) {
		log.Warn(fmt.Sprintf("%s holds a Grid'5000 password and can be read by other users: run chmod 600 %s, or use password = \"${G5K_PASSWORD}\", password_file or ~/.netrc", configPath, configPath))
	}
	if c.PasswordFile != "" {
		path := expandHome(c.PasswordFile)
		b, err := os.ReadFile(path)
		if err != nil {
			return "", "", fmt.Errorf("password_file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		password = strings.TrimRight(line, "\r")
		redact.Register(password)
		if password == "" {
			return "", "", fmt.Errorf("password_file %s: the first line is empty", path)
		}
		if readableByOthers(path) {
			log.Warn(fmt.Sprintf("password_file %s can be read by other users: run chmod 600 %s", path, path))
		}
		c.credSource = fmt.Sprintf("login %q with the password of password_file %s", login, path)
	}
	if password != "" {
		return login, password, nil
	}
	host := ""
	if u, err := url.Parse(c.APIURL); err == nil {
		host = u.Hostname()
	}
	e, found, insecure, err := netrc.Lookup(netrcPath, host)
	if err != nil {
		return "", "", err
	}
	if found && (login == "" || login == e.Login) && e.Password != "" {
		if insecure {
			log.Warn(fmt.Sprintf("%s can be read by other users and holds your Grid'5000 password: run chmod 600 %s", netrcPath, netrcPath))
		}
		log.Debug(fmt.Sprintf("using the credentials of %q from %s", e.Login, netrcPath))
		c.credSource = fmt.Sprintf("login %q from %s (machine %s)", e.Login, netrcPath, host)
		return e.Login, e.Password, nil
	}
	if login != "" {
		log.Warn(fmt.Sprintf("login %q is set but no password (password, password_file or %s): sending no credentials", login, netrcPath))
		c.credSource = fmt.Sprintf("no credentials: login %q is set but no password (password, password_file or %s)", login, netrcPath)
	} else {
		c.credSource = fmt.Sprintf("no credentials: none in the config (login, password, password_file) nor in %s for %s", netrcPath, host)
	}
	return "", "", nil
}

// ClientFromConfig builds a Kwollect client from a [plugins.kwollect-input]
// table: its api_url and the credentials credentials() picks (login and
// password, password_file, then the netrc entry of the API host). It also
// returns which credentials were used, for messages (never the password).
func ClientFromConfig(cfg *Config, configPath, netrcPath string, log *slog.Logger) (*kwollect.Client, string, error) {
	login, password, err := cfg.credentials(configPath, netrcPath, log)
	if err != nil {
		return nil, "", err
	}
	client, err := kwollect.NewClient(kwollect.Options{BaseURL: cfg.APIURL, Login: login, Password: password})
	if err != nil {
		return nil, "", fmt.Errorf("api_url: %w", err)
	}
	return client, cfg.credSource, nil
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
