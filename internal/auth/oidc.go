package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// OpenID Connect relying-party primitives. The flow itself (discovery, the
// code exchange, ID token verification) is core's; this file holds what is
// pure: the sealed state that carries a login from its start to its
// callback, the browser binding, and the rules for issuer URLs.
//
// The state parameter is the OIDCState sealed with AES-256-GCM under a key
// derived for this one purpose, with the tenant's ID as additional data:
//
//	state   base64url(0x01 ‖ nonce(12) ‖ AES-GCM(JSON(OIDCState), aad))
//	aad     "bulkhead oidc state v1\x00" ‖ tenant ID
//	binding base32(32 random bytes), in an HttpOnly cookie; the state holds
//	        its SHA-256
//
// So the state is unforgeable and unreadable (it carries the PKCE verifier
// and the nonce, which must not show in the authorization URL), it opens
// only at the tenant it was made for, it expires, and it is good only in
// the browser that holds the binding cookie (which defeats login CSRF: a
// victim's browser handed an attacker's callback URL has no matching
// cookie).

// OIDCStateTTL is how long a login may take from its start to its callback.
const OIDCStateTTL = 10 * time.Minute

// OIDCState is what a login's callback needs from its start.
type OIDCState struct {
	// ID names the login, so that each state is used once.
	ID     string    `json:"i"`
	Tenant tenant.ID `json:"t"`
	// Nonce must come back in the ID token.
	Nonce string `json:"n"`
	// Verifier is the PKCE code verifier (RFC 7636), sent with the code.
	Verifier string `json:"v"`
	// Binding is the SHA-256 of the binding cookie's value.
	Binding []byte `json:"b"`
	// RedirectURI is the redirect_uri of the authorization request, which
	// the code exchange must repeat.
	RedirectURI string    `json:"r"`
	Expires     time.Time `json:"e"`
}

// ErrOIDCState is returned by StateSealer.Open for a state that is forged,
// altered, of another tenant, expired, or bound to another browser.
var ErrOIDCState = errors.New("oidc state is not valid")

const stateVersion = 1

// StateSealer seals and opens OIDC states. It is safe for concurrent use.
type StateSealer struct {
	aead cipher.AEAD
}

// NewStateSealer returns a sealer whose key is derived from secret (at
// least 32 bytes) with HKDF-SHA-256 under a label of its own, so that the
// same secret can serve other purposes under other labels.
func NewStateSealer(secret []byte) (*StateSealer, error) {
	if len(secret) < 32 {
		return nil, errors.New("oidc state secret must be at least 32 bytes")
	}
	aead, err := DerivedAEAD(secret, "bulkhead oidc state v1")
	if err != nil {
		return nil, err
	}
	return &StateSealer{aead: aead}, nil
}

// DerivedAEAD returns AES-256-GCM under the key HKDF-SHA-256 derives from
// secret for info: one secret serves several purposes, each under an info
// of its own, and what is sealed for one does not open for another.
func DerivedAEAD(secret []byte, info string) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, secret, nil, info, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func stateAAD(tid tenant.ID) []byte { return []byte("bulkhead oidc state v1\x00" + string(tid)) }

// Seal returns st as a state parameter.
func (s *StateSealer) Seal(st *OIDCState) (string, error) {
	plain, err := json.Marshal(st)
	if err != nil {
		return "", err
	}
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	out[0] = stateVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return "", err
	}
	out = s.aead.Seal(out, out[1:], plain, stateAAD(st.Tenant))
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// MaxOIDCState is the longest state parameter Open considers, in bytes.
const MaxOIDCState = 4096

// Open returns the state that state seals if it was sealed for tenant tid,
// has not expired at now, and binding is the value of the cookie it was
// bound to. Anything else is ErrOIDCState.
func (s *StateSealer) Open(tid tenant.ID, state, binding string, now time.Time) (*OIDCState, error) {
	if len(state) > MaxOIDCState {
		return nil, ErrOIDCState
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(state)
	if err != nil || len(raw) < 1+s.aead.NonceSize() || raw[0] != stateVersion {
		return nil, ErrOIDCState
	}
	n := 1 + s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[1:n], raw[n:], stateAAD(tid))
	if err != nil {
		return nil, ErrOIDCState
	}
	var st OIDCState
	if err := json.Unmarshal(plain, &st); err != nil || st.Tenant != tid || !now.Before(st.Expires) {
		return nil, ErrOIDCState
	}
	sum := sha256.Sum256([]byte(binding))
	if binding == "" || subtle.ConstantTimeCompare(sum[:], st.Binding) != 1 {
		return nil, ErrOIDCState
	}
	return &st, nil
}

// NewOIDCBinding returns a new browser binding: the cookie's value and the
// hash the state keeps of it.
func NewOIDCBinding() (cookie string, hash []byte) {
	cookie = b32.EncodeToString(randomBytes(32))
	sum := sha256.Sum256([]byte(cookie))
	return cookie, sum[:]
}

// RandomToken returns 32 random bytes in base32: for nonces and state IDs.
func RandomToken() string { return b32.EncodeToString(randomBytes(32)) }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on supported platforms
	}
	return b
}

// MaxIssuer is the longest issuer URL, in bytes.
const MaxIssuer = 2048

// ValidateIssuer checks an OpenID provider's issuer URL: absolute https
// without query, fragment or credentials (OpenID Connect Discovery 1.0
// §3), or http for a loopback host only (127.0.0.0/8, ::1, localhost),
// which serves development and tests and reaches no other machine.
func ValidateIssuer(issuer string) error {
	if len(issuer) > MaxIssuer {
		return fmt.Errorf("issuer must be at most %d bytes long", MaxIssuer)
	}
	u, err := url.Parse(issuer)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return errors.New("issuer must be an absolute URL such as https://idp.example.com")
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(issuer, "#") {
		return errors.New("issuer must have no credentials, query or fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
	}
	return errors.New("issuer must use https (http only for a loopback host)")
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// UnusablePasswordHash returns a well-formed argon2id hash (see Hash) that
// no password matches: its key is random, not derived from any password.
// Users who log in only through their identity provider get one, so that a
// password login of theirs fails like any wrong password, after the same
// work.
func UnusablePasswordHash(params PasswordParams) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, params.Memory, params.Time, params.Threads,
		base64.RawStdEncoding.EncodeToString(randomBytes(passwordSaltLen)),
		base64.RawStdEncoding.EncodeToString(randomBytes(passwordKeyLen)))
}
