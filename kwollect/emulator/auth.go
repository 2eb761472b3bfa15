package emulator

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
)

// authRealm is the realm of the Grid'5000 API gateway's Basic challenge.
const authRealm = `Basic realm="Grid5000"`

// authorized checks HTTP Basic credentials against Config.Users. With no
// user configured every request is accepted (like a call from a node).
// Passwords are compared in constant time and never logged.
func (e *Emulator) authorized(r *http.Request) (user string, ok bool) {
	if len(e.cfg.Users) == 0 {
		return "", true
	}
	login, password, has := r.BasicAuth()
	if !has {
		return "", false
	}
	want, known := e.cfg.Users[login]
	a := sha256.Sum256([]byte(password))
	b := sha256.Sum256([]byte(want))
	if subtle.ConstantTimeCompare(a[:], b[:]) != 1 || !known {
		return "", false
	}
	return login, true
}

// writeUnauthorized sends the gateway's 401: a Basic challenge and a
// plain-text body.
func writeUnauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", authRealm)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte("401 Unauthorized: Grid'5000 credentials required (HTTP Basic)\n"))
}
