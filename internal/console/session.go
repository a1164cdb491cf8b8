package console

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/auth"
)

// Session kinds.
const (
	kindOperator = "operator" // the platform operator, with the operator token
	kindTenant   = "tenant"   // a tenant's user or API key
)

// Credential kinds of a tenant session.
const (
	credOperator = "operator" // the operator token
	credToken    = "token"    // an access token from a password login, with its refresh token
	credAPIKey   = "api_key"  // a tenant API key
)

// sessionCookie is the name of the session cookie; loginCookie holds the
// login form's CSRF token before there is a session.
const (
	sessionCookie = "bulkhead_console"
	loginCookie   = "bulkhead_console_login"
)

// session is what the session cookie holds, sealed: who signed in, with
// which credential, until when.
type session struct {
	Kind string `json:"k"`
	// Tenant is the slug of a tenant session; empty for the operator.
	// TenantID is its id when known (from a login's access token), for
	// the log.
	Tenant   string `json:"t,omitempty"`
	TenantID string `json:"i,omitempty"`
	// Cred is the credential kind; Credential the bearer credential itself.
	Cred       string `json:"c"`
	Credential string `json:"b"`
	// Refresh is the refresh token of a password login, AccessExpires when
	// its access token expires (unix seconds).
	Refresh       string `json:"r,omitempty"`
	AccessExpires int64  `json:"ae,omitempty"`
	// Who is what the pages show as the signed-in person: "operator", an
	// email, or "API key".
	Who string `json:"w,omitempty"`
	// CSRF is the session's token for unsafe requests.
	CSRF string `json:"x"`
	// Expires is when the session ends (unix seconds), whatever the
	// credential's own lifetime.
	Expires int64 `json:"e"`
}

// sealer seals and opens cookie values with AES-256-GCM.
type sealer struct {
	aead cipher.AEAD
}

// sessionKeyInfo is the HKDF info of the cookie key: the secret it is
// derived from serves other purposes under other infos.
const sessionKeyInfo = "bulkhead console session cookie v1"

// newSealer derives the cookie key from secret.
func newSealer(secret []byte) (*sealer, error) {
	if len(secret) < 32 {
		return nil, errors.New("console: the cookie key must be at least 32 bytes")
	}
	aead, err := auth.DerivedAEAD(secret, sessionKeyInfo)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

// seal encrypts v under the cookie name as associated data, so that a
// value sealed for one cookie does not open as another.
func (s *sealer) seal(name string, v any) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	sealed := s.aead.Seal(nonce, nonce, plain, []byte(name))
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// open decrypts a value sealed by seal into v.
func (s *sealer) open(name, value string, v any) error {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(value) // one encoding per value: no spare bits to flip
	if err != nil {
		return fmt.Errorf("cookie is not base64: %w", err)
	}
	n := s.aead.NonceSize()
	if len(raw) < n+s.aead.Overhead() {
		return errors.New("cookie too short")
	}
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(name))
	if err != nil {
		return errors.New("cookie does not open under this key")
	}
	return json.Unmarshal(plain, v)
}

// openSession returns the session a cookie value holds, refusing one that
// does not open or has expired.
func (s *sealer) openSession(value string, now time.Time) (*session, error) {
	var sess session
	if err := s.open(sessionCookie, value, &sess); err != nil {
		return nil, err
	}
	if now.Unix() >= sess.Expires {
		return nil, errors.New("session expired")
	}
	if sess.Credential == "" || sess.CSRF == "" || (sess.Kind != kindOperator && sess.Kind != kindTenant) {
		return nil, errors.New("session incomplete")
	}
	return &sess, nil
}

// randomToken returns 32 random bytes, base64url-encoded.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail
	return base64.RawURLEncoding.EncodeToString(b)
}

// secureCookies says whether cookies set on r's answer are marked Secure:
// over TLS, and on a loopback host, where browsers accept Secure cookies
// over plain HTTP too.
func (c *Console) secureCookies(r *http.Request) bool {
	return c.tls || r.TLS != nil || loopbackHost(r.Host)
}

// plainHTTPToOtherHost says whether r came over plain HTTP to a host that
// is not loopback: the session cookie then travels unencrypted, and the
// login page says so.
func (c *Console) plainHTTPToOtherHost(r *http.Request) bool {
	return !c.secureCookies(r)
}

// loopbackHost says whether a Host header names this machine.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// setCookie sets a console cookie: HttpOnly, SameSite=Strict, Path=/ui,
// Secure where the browser will keep it so. maxAge < 0 deletes it; 0
// makes it a browser-session cookie.
func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/ui",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   c.secureCookies(r),
		SameSite: http.SameSiteStrictMode,
	})
}

// saveSession seals s into the session cookie.
func (c *Console) saveSession(w http.ResponseWriter, r *http.Request, s *session) error {
	v, err := c.sealer.seal(sessionCookie, s)
	if err != nil {
		return err
	}
	c.setCookie(w, r, sessionCookie, v, int(time.Until(time.Unix(s.Expires, 0)).Seconds()))
	return nil
}

// sessionQuiet returns the request's session, or nil, without refreshing
// or touching the cookie.
func (c *Console) sessionQuiet(r *http.Request) *session {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	s, err := c.sealer.openSession(ck.Value, time.Now())
	if err != nil {
		return nil
	}
	return s
}

// session returns the request's session, or nil when there is none or it
// does not open. A password login whose access token has expired (or is
// about to) is refreshed first and the cookie re-sealed; a login whose
// refresh is refused (401) has ended, and its cookie is cleared, while
// other failures (429, 503) leave it for the next request to retry.
func (c *Console) session(w http.ResponseWriter, r *http.Request) *session {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	s, err := c.sealer.openSession(ck.Value, time.Now())
	if err != nil {
		c.log.Info("console: session cookie refused", "err", err)
		c.setCookie(w, r, sessionCookie, "", -1)
		return nil
	}
	if s.Cred == credToken && time.Now().Add(refreshEarly).Unix() >= s.AccessExpires {
		err := c.refresher.refresh(r, s)
		if e := asAPIError(err); e != nil && e.Status == http.StatusUnauthorized {
			c.log.Info("console: session ended: its tokens no longer refresh", "tenant", s.TenantID, "tenant_slug", s.Tenant, "err", err)
			c.setCookie(w, r, sessionCookie, "", -1)
			return nil
		} else if e != nil {
			// Rate limited, or the database away: the session goes on, and
			// the next request tries again.
			c.log.Warn("console: tokens not refreshed", "tenant", s.TenantID, "tenant_slug", s.Tenant, "err", err)
			return s
		}
		if err := c.saveSession(w, r, s); err != nil {
			c.log.Error("console: session not re-sealed", "err", err)
		}
	}
	return s
}

// refreshEarly is how long before its access token expires a session
// refreshes it, so that a page's calls do not meet the expiry midway.
const refreshEarly = 30 * time.Second
