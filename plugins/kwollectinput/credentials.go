package kwollectinput

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/alumet-go/alumet-agent/internal/netrc"
)

// credentials returns the login and password to send, from (in order) the
// config's login/password (with ${VAR} already substituted), password_file,
// and the netrc entry of the API host. None of them means no auth, which is
// what nodes and frontends inside Grid'5000 need. It warns when a file holding
// the password can be read by other users; it never logs the password.
func (c *Config) credentials(configPath, netrcPath string, log *slog.Logger) (login, password string, err error) {
	login, password = c.Login, c.Password
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
		if password == "" {
			return "", "", fmt.Errorf("password_file %s: the first line is empty", path)
		}
		if readableByOthers(path) {
			log.Warn(fmt.Sprintf("password_file %s can be read by other users: run chmod 600 %s", path, path))
		}
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
		return e.Login, e.Password, nil
	}
	if login != "" {
		log.Warn(fmt.Sprintf("login %q is set but no password (password, password_file or %s): sending no credentials", login, netrcPath))
	}
	return "", "", nil
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
