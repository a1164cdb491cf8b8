package auth

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// ErrInvalidToken is wrapped by every error of Tokens.Verify. Callers answer
// 401 for it; the wrapped detail is for logs, not for the client.
var ErrInvalidToken = errors.New("invalid access token")

// AccessTokenType is the "typ" header of access tokens (RFC 9068).
const AccessTokenType = "at+jwt"

const (
	// DefaultAccessTokenTTL is the lifetime NewTokens uses for ttl <= 0.
	DefaultAccessTokenTTL = 15 * time.Minute
	// tokenLeeway absorbs clock skew between the nodes that issue and
	// verify a token.
	tokenLeeway = 30 * time.Second
	// maxTokenLen bounds the input Verify will decode. Our tokens are about
	// 500 bytes.
	maxTokenLen = 4096
)

// AccessClaims is what an access token asserts.
type AccessClaims struct {
	// Tenant is the tenant the token acts in ("tid" claim).
	Tenant tenant.ID
	// User is the subject ("sub" claim).
	User store.UserID
	// Role is the user's role in Tenant ("role" claim).
	Role tenant.Role
	// IssuedAt and ExpiresAt are the "iat" and "exp" claims, in UTC, to the
	// second.
	IssuedAt, ExpiresAt time.Time
	// ID is the token's unique id ("jti" claim).
	ID string
	// Session names the login the token descends from ("sid" claim): the
	// family of refresh tokens that login started. Ending the session (its
	// family revoked, its user removed or given another role) ends its
	// access tokens too.
	Session string
	// Scope, when not empty, restricts the token to one purpose ("scp"
	// claim), such as ScopeMFAEnrollment; an empty Scope is the user's
	// whole role.
	Scope string
}

// ScopeMFAEnrollment is the Scope of a token that may only enrol its user
// in TOTP: what a login gets whom the tenant's policy requires to use TOTP
// before they have enrolled.
const ScopeMFAEnrollment = "mfa_enrollment"

// privateClaims are the claims beyond RFC 7519's.
type privateClaims struct {
	Tenant  string `json:"tid"`
	Role    string `json:"role"`
	Session string `json:"sid"`
	Scope   string `json:"scp,omitempty"`
}

// TokenConfig configures Tokens.
type TokenConfig struct {
	// Issuer is the "iss" of issued tokens, which verified tokens must
	// name. Required.
	Issuer string
	// Audience is the "aud" of issued tokens, which verified tokens must
	// name: the API they are good for. Defaults to Issuer.
	Audience string
	// TTL is the lifetime of issued tokens. Defaults to
	// DefaultAccessTokenTTL.
	TTL time.Duration
	// MaxTTL is the longest lifetime (exp minus iat) a verified token may
	// claim; a token that claims more is refused, whoever signed it.
	// Defaults to TTL; values below TTL mean TTL.
	MaxTTL time.Duration
}

// Tokens issues and verifies access tokens: JWTs signed with Ed25519
// (alg EdDSA) and typed at+jwt. It verifies with its signing key and any
// keys added by AddVerificationKey, chosen by the "kid" header. Its methods
// are safe for concurrent use; NowFunc must be set before use.
type Tokens struct {
	// NowFunc returns the current time. Nil means time.Now. Tests set it.
	NowFunc func() time.Time
	// UnknownKeyFunc, if set, is called when a token names a key Verify
	// does not know, such as one another node has just rotated to; if it
	// reports true (it may have called SetKeys), Verify looks the key up
	// once more. It must be safe for concurrent use and bound its own cost:
	// anyone can send a token with an unknown kid.
	UnknownKeyFunc func() bool

	issuer   string
	audience string
	ttl      time.Duration
	maxTTL   time.Duration

	mu     sync.RWMutex
	signer jose.Signer
	kid    string
	keys   map[string]ed25519.PublicKey
	kids   []string // in JWKS order: the signing key first
}

// NewTokens returns a Tokens that signs with key and issues and verifies
// tokens as cfg says. It panics if key is not an Ed25519 private key or
// cfg.Issuer is empty, as regexp.MustCompile does on a bad pattern: both
// come from configuration checked at startup.
func NewTokens(key ed25519.PrivateKey, cfg TokenConfig) *Tokens {
	if len(key) != ed25519.PrivateKeySize {
		panic(fmt.Sprintf("auth: NewTokens: key is %d bytes, want %d", len(key), ed25519.PrivateKeySize))
	}
	if cfg.Issuer == "" {
		panic("auth: NewTokens: empty issuer")
	}
	if cfg.Audience == "" {
		cfg.Audience = cfg.Issuer
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultAccessTokenTTL
	}
	cfg.MaxTTL = max(cfg.MaxTTL, cfg.TTL)
	t := &Tokens{
		issuer:   cfg.Issuer,
		audience: cfg.Audience,
		ttl:      cfg.TTL,
		maxTTL:   cfg.MaxTTL,
	}
	if err := t.SetKeys(key, nil); err != nil { // cannot happen for a valid Ed25519 key
		panic("auth: NewTokens: " + err.Error())
	}
	return t
}

// KeyID returns the kid of the signing key.
func (t *Tokens) KeyID() string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.kid
}

// SetKeys replaces the keys at once: key signs from now on, and Verify and
// JWKS know key's public half and verify, and no other key (keys added by
// AddVerificationKey included). It is how a rotation of the signing key is
// applied to a running node. It returns an error, changing nothing, if key
// is not an Ed25519 private key or a key of verify not an Ed25519 public
// key.
func (t *Tokens) SetKeys(key ed25519.PrivateKey, verify []ed25519.PublicKey) error {
	if len(key) != ed25519.PrivateKeySize {
		return fmt.Errorf("signing key is %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	pub := key.Public().(ed25519.PublicKey)
	kid := keyring.KeyID(pub)
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType(AccessTokenType),
	)
	if err != nil {
		return err
	}
	keys := map[string]ed25519.PublicKey{kid: pub}
	kids := []string{kid}
	for _, v := range verify {
		if len(v) != ed25519.PublicKeySize {
			return fmt.Errorf("verification key is %d bytes, want %d", len(v), ed25519.PublicKeySize)
		}
		k := keyring.KeyID(v)
		if _, ok := keys[k]; !ok {
			keys[k] = append(ed25519.PublicKey(nil), v...)
			kids = append(kids, k)
		}
	}
	t.mu.Lock()
	t.signer, t.kid, t.keys, t.kids = signer, kid, keys, kids
	t.mu.Unlock()
	return nil
}

// AddVerificationKey makes Verify accept tokens signed with pub, such as a
// previous signing key during rotation, and JWKS publish it. Adding a key
// twice is a no-op. It returns an error if pub is not an Ed25519 public key.
func (t *Tokens) AddVerificationKey(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("verification key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	kid := keyring.KeyID(pub)
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.keys[kid]; !ok {
		t.keys[kid] = append(ed25519.PublicKey(nil), pub...)
		t.kids = append(t.kids, kid)
	}
	return nil
}

func (t *Tokens) now() time.Time {
	if t.NowFunc != nil {
		return t.NowFunc()
	}
	return time.Now()
}

// Issue signs an access token for c.Tenant, c.User, c.Role and c.Session,
// for the audience. It ignores c.IssuedAt, c.ExpiresAt and c.ID: it sets iat
// and nbf to now, exp to now plus the TTL, and jti to 128 random bits. It
// returns the token and how long it is valid, for the OAuth "expires_in"
// field. It returns an error if c.Tenant is not a canonical UUID, c.User or
// c.Session is empty or c.Role is not valid.
func (t *Tokens) Issue(c AccessClaims) (token string, expiresIn time.Duration, err error) {
	if !c.Tenant.Valid() {
		return "", 0, fmt.Errorf("issue access token: tenant %q is not a canonical uuid", c.Tenant)
	}
	if c.User == "" {
		return "", 0, errors.New("issue access token: empty user")
	}
	if c.Session == "" {
		return "", 0, errors.New("issue access token: empty session")
	}
	if !c.Role.Valid() {
		return "", 0, fmt.Errorf("issue access token: invalid role %q", c.Role)
	}
	jti, err := randomB32(16)
	if err != nil {
		return "", 0, fmt.Errorf("issue access token: %w", err)
	}
	now := t.now()
	std := jwt.Claims{
		Issuer:    t.issuer,
		Audience:  jwt.Audience{t.audience},
		Subject:   string(c.User),
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		Expiry:    jwt.NewNumericDate(now.Add(t.ttl)),
		ID:        jti,
	}
	priv := privateClaims{Tenant: string(c.Tenant), Role: string(c.Role), Session: c.Session, Scope: c.Scope}
	t.mu.RLock()
	signer := t.signer
	t.mu.RUnlock()
	token, err = jwt.Signed(signer).Claims(std).Claims(priv).Serialize()
	if err != nil {
		return "", 0, fmt.Errorf("issue access token: %w", err)
	}
	return token, t.ttl, nil
}

// Verify checks token and returns its claims. It accepts only a compact JWS
// with alg EdDSA, typ at+jwt, a kid naming a known key and a valid signature,
// whose iss is the issuer, whose aud names the audience, whose sub, jti and
// sid are set, which is within its nbf, iat and exp (with 30 seconds of
// leeway on NowFunc's clock), whose lifetime (exp minus iat) is at most
// MaxTTL, whose tid is a canonical UUID and whose role is valid. Every error
// wraps ErrInvalidToken. Verify never panics; it does not know whether the
// token's session has ended (see AccessClaims.Session).
func (t *Tokens) Verify(token string) (*AccessClaims, error) {
	if len(token) > maxTokenLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrInvalidToken, maxTokenLen)
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if len(tok.Headers) != 1 {
		return nil, fmt.Errorf("%w: want one signature", ErrInvalidToken)
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !validTokenType(typ) {
		return nil, fmt.Errorf("%w: typ %q is not %s", ErrInvalidToken, typ, AccessTokenType)
	}
	pub, ok := t.key(h.KeyID)
	if !ok && t.UnknownKeyFunc != nil && t.UnknownKeyFunc() {
		pub, ok = t.key(h.KeyID)
	}
	if !ok {
		return nil, fmt.Errorf("%w: unknown kid %q", ErrInvalidToken, h.KeyID)
	}
	var std jwt.Claims
	var priv privateClaims
	if err := tok.Claims(pub, &std, &priv); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	switch {
	case std.Issuer != t.issuer:
		return nil, fmt.Errorf("%w: issuer %q", ErrInvalidToken, std.Issuer)
	case std.Subject == "":
		return nil, fmt.Errorf("%w: no sub", ErrInvalidToken)
	case std.ID == "":
		return nil, fmt.Errorf("%w: no jti", ErrInvalidToken)
	case priv.Session == "":
		return nil, fmt.Errorf("%w: no sid", ErrInvalidToken)
	case std.Expiry == nil || std.IssuedAt == nil:
		return nil, fmt.Errorf("%w: no exp or iat", ErrInvalidToken)
	case std.Expiry.Time().Sub(std.IssuedAt.Time()) > t.maxTTL:
		return nil, fmt.Errorf("%w: lifetime %s exceeds %s", ErrInvalidToken, std.Expiry.Time().Sub(std.IssuedAt.Time()), t.maxTTL)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: t.issuer, AnyAudience: jwt.Audience{t.audience}, Time: t.now()}, tokenLeeway); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	tid := tenant.ID(priv.Tenant)
	if !tid.Valid() {
		return nil, fmt.Errorf("%w: tid %q is not a canonical uuid", ErrInvalidToken, priv.Tenant)
	}
	role := tenant.Role(priv.Role)
	if !role.Valid() {
		return nil, fmt.Errorf("%w: invalid role %q", ErrInvalidToken, priv.Role)
	}
	return &AccessClaims{
		Tenant:    tid,
		User:      store.UserID(std.Subject),
		Role:      role,
		IssuedAt:  std.IssuedAt.Time().UTC(),
		ExpiresAt: std.Expiry.Time().UTC(),
		ID:        std.ID,
		Session:   priv.Session,
		Scope:     priv.Scope,
	}, nil
}

// key returns the verification key named kid.
func (t *Tokens) key(kid string) (ed25519.PublicKey, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	pub, ok := t.keys[kid]
	return pub, ok
}

// validTokenType reports whether typ names an access token. RFC 9068 allows
// the media type with or without "application/", and media types are
// case-insensitive.
func validTokenType(typ string) bool {
	typ = strings.ToLower(typ)
	return typ == AccessTokenType || typ == "application/"+AccessTokenType
}

// JWKS returns the verification keys as a JWK Set (RFC 7517), the body of
// GET /.well-known/jwks.json: the signing key first, then added keys in the
// order they were added.
func (t *Tokens) JWKS() ([]byte, error) {
	t.mu.RLock()
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(t.kids))}
	for _, kid := range t.kids {
		set.Keys = append(set.Keys, jose.JSONWebKey{
			Key:       t.keys[kid],
			KeyID:     kid,
			Algorithm: string(jose.EdDSA),
			Use:       "sig",
		})
	}
	t.mu.RUnlock()
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("encode jwks: %w", err)
	}
	return b, nil
}

// LooksLikeAccessToken reports whether token has the shape of an access
// token of this package: a compact JWS (see LooksLikeJWT) whose header
// says typ at+jwt. It verifies nothing, so that it is cheap on any input;
// a JWT of another kind (an OpenID Connect state, say) does not match.
func LooksLikeAccessToken(token string) bool {
	if len(token) > maxTokenLen || !LooksLikeJWT(token) {
		return false
	}
	head, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return false
	}
	var h struct {
		Typ string `json:"typ"`
	}
	return json.Unmarshal(raw, &h) == nil && validTokenType(h.Typ)
}

// LooksLikeJWT reports whether token has the shape of a compact JWS: three
// base64url segments separated by dots, the first starting with the encoding
// of `{"`. It tells an access token from other bearer credentials; it checks
// nothing else.
func LooksLikeJWT(token string) bool {
	if !strings.HasPrefix(token, "eyJ") {
		return false
	}
	dots := 0
	for i := 0; i < len(token); i++ {
		switch c := token[i]; {
		case c == '.':
			dots++
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return dots == 2
}
