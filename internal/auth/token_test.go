package auth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/tenant"
)

const (
	testIssuer   = "https://bulkhead.test"
	testAudience = "https://bulkhead.test/api"
)

// Fixed keys and clock, so that fuzz corpora stay valid between runs.
var (
	testTokenKey  = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	otherTokenKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, ed25519.SeedSize))
	testNow       = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
)

type tokenBundle struct {
	tokens *Tokens
	kid    string
	now    time.Time
}

func setupTokens(t testing.TB) *tokenBundle {
	t.Helper()
	tk := NewTokens(testTokenKey, TokenConfig{Issuer: testIssuer, Audience: testAudience, TTL: 15 * time.Minute})
	tk.NowFunc = func() time.Time { return testNow }
	return &tokenBundle{tokens: tk, kid: keyring.KeyID(testTokenKey.Public().(ed25519.PublicKey)), now: testNow}
}

var testAccessClaims = AccessClaims{Tenant: testTenant, User: "user-1", Role: tenant.Admin, Session: "session-1"}

func issue(t testing.TB, tk *Tokens, c AccessClaims) string {
	t.Helper()
	token, _, err := tk.Issue(c)
	if err != nil {
		t.Fatalf("Issue(%+v): %v", c, err)
	}
	return token
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// signRaw builds a compact JWS over exactly header and claims, signed with
// priv, to craft tokens Issue would never make.
func signRaw(t testing.TB, priv ed25519.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := b64url(h) + "." + b64url(c)
	return input + "." + b64url(ed25519.Sign(priv, []byte(input)))
}

func rawHeader(kid string) map[string]any {
	return map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": kid}
}

func rawClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss":  testIssuer,
		"aud":  testAudience,
		"sid":  "session-1",
		"sub":  "user-1",
		"iat":  now.Unix(),
		"nbf":  now.Unix(),
		"exp":  now.Add(15 * time.Minute).Unix(),
		"jti":  "jti-1",
		"tid":  string(testTenant),
		"role": "admin",
	}
}

// decodeSegment returns the JSON object in segment i of a compact JWS.
func decodeSegment(t testing.TB, token string, i int) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[i])
	if err != nil {
		t.Fatalf("segment %d of %q: %v", i, token, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("segment %d of %q: %v", i, token, err)
	}
	return m
}

func TestTokensIssueVerify(t *testing.T) {
	t.Parallel()
	b := setupTokens(t)
	for _, role := range []tenant.Role{tenant.Viewer, tenant.Member, tenant.Admin, tenant.Owner} {
		c := AccessClaims{Tenant: testTenant, User: "user-1", Role: role, Session: "session-1",
			// Ignored by Issue.
			IssuedAt: time.Unix(1, 0), ExpiresAt: time.Unix(2, 0), ID: "mine"}
		token, expiresIn, err := b.tokens.Issue(c)
		if err != nil {
			t.Fatalf("Issue(%+v): %v", c, err)
		}
		if expiresIn != 15*time.Minute {
			t.Errorf("Issue expiresIn = %v, want 15m", expiresIn)
		}
		if !LooksLikeJWT(token) || IsAPIKey(token) {
			t.Errorf("Issue = %q: LooksLikeJWT false or IsAPIKey true", token)
		}
		got, err := b.tokens.Verify(token)
		if err != nil {
			t.Fatalf("Verify(Issue(%+v)): %v", c, err)
		}
		want := &AccessClaims{Tenant: testTenant, User: "user-1", Role: role, Session: "session-1",
			IssuedAt: b.now, ExpiresAt: b.now.Add(15 * time.Minute)}
		if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(AccessClaims{}, "ID")); diff != "" {
			t.Errorf("Verify(Issue(%+v)) mismatch (-want +got):\n%s", c, diff)
		}
		if len(got.ID) != 26 || got.ID == "mine" {
			t.Errorf("Verify(Issue).ID = %q, want 26 random base32 characters", got.ID)
		}
	}
}

func TestTokensIssueHeaderAndClaims(t *testing.T) {
	t.Parallel()
	b := setupTokens(t)
	token := issue(t, b.tokens, testAccessClaims)
	wantHeader := map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": b.kid}
	if diff := cmp.Diff(wantHeader, decodeSegment(t, token, 0)); diff != "" {
		t.Errorf("header mismatch (-want +got):\n%s", diff)
	}
	claims := decodeSegment(t, token, 1)
	jti, _ := claims["jti"].(string)
	if jti == "" {
		t.Errorf("claims have no jti: %v", claims)
	}
	now := float64(b.now.Unix())
	wantClaims := map[string]any{
		"iss": testIssuer, "aud": testAudience, "sub": "user-1", "tid": string(testTenant), "role": "admin",
		"sid": "session-1", "iat": now, "nbf": now, "exp": now + 15*60, "jti": jti,
	}
	if diff := cmp.Diff(wantClaims, claims); diff != "" {
		t.Errorf("claims mismatch (-want +got):\n%s", diff)
	}
	if jti == decodeSegment(t, issue(t, b.tokens, testAccessClaims), 1)["jti"] {
		t.Errorf("two tokens share jti %q", jti)
	}
}

func TestTokensIssueErrors(t *testing.T) {
	t.Parallel()
	b := setupTokens(t)
	tests := []struct {
		name string
		c    AccessClaims
	}{
		{"EmptyTenant", AccessClaims{User: "u", Role: tenant.Admin}},
		{"UpperTenant", AccessClaims{Tenant: tenant.ID(strings.ToUpper(string(testTenant))), User: "u", Role: tenant.Admin}},
		{"NilTenant", AccessClaims{Tenant: "00000000-0000-0000-0000-000000000000", User: "u", Role: tenant.Admin}},
		{"EmptyUser", AccessClaims{Tenant: testTenant, Role: tenant.Admin, Session: "s"}},
		{"EmptySession", AccessClaims{Tenant: testTenant, User: "u", Role: tenant.Admin}},
		{"EmptyRole", AccessClaims{Tenant: testTenant, User: "u"}},
		{"UnknownRole", AccessClaims{Tenant: testTenant, User: "u", Role: "root"}},
	}
	for _, tt := range tests {
		if token, _, err := b.tokens.Issue(tt.c); err == nil {
			t.Errorf("%s: Issue(%+v) = %q, nil; want error", tt.name, tt.c, token)
		}
	}
}

func TestTokensVerifyTimes(t *testing.T) {
	t.Parallel()
	b := setupTokens(t)
	token := issue(t, b.tokens, testAccessClaims)
	tests := []struct {
		name   string
		at     time.Duration // after issue
		wantOK bool
	}{
		{"AtIssue", 0, true},
		{"BeforeExpiry", 15*time.Minute - time.Second, true},
		{"WithinLeewayAfterExpiry", 15*time.Minute + 29*time.Second, true},
		{"PastLeeway", 15*time.Minute + 31*time.Second, false},
		{"LongExpired", 24 * time.Hour, false},
		{"WithinLeewayBeforeIssue", -29 * time.Second, true},
		{"BeforeIssue", -31 * time.Second, false},
	}
	for _, tt := range tests {
		tk := NewTokens(testTokenKey, TokenConfig{Issuer: testIssuer, Audience: testAudience, TTL: 15 * time.Minute})
		tk.NowFunc = func() time.Time { return b.now.Add(tt.at) }
		_, err := tk.Verify(token)
		if gotOK := err == nil; gotOK != tt.wantOK {
			t.Errorf("%s: Verify at issue%+v = %v, want ok %v", tt.name, tt.at, err, tt.wantOK)
		}
		if err != nil && !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: Verify error %v does not wrap ErrInvalidToken", tt.name, err)
		}
	}
}

func TestTokensVerifyRejects(t *testing.T) {
	t.Parallel()
	b := setupTokens(t)
	pub := testTokenKey.Public().(ed25519.PublicKey)
	valid := issue(t, b.tokens, testAccessClaims)
	parts := strings.Split(valid, ".")

	// craft signs header and claims, as modified by edit, with the test key.
	craft := func(edit func(h, c map[string]any)) string {
		h, c := rawHeader(b.kid), rawClaims(b.now)
		edit(h, c)
		return signRaw(t, testTokenKey, h, c)
	}
	if _, err := b.tokens.Verify(craft(func(h, c map[string]any) {})); err != nil {
		t.Fatalf("Verify(unmodified crafted token): %v; the fixture must be valid", err)
	}

	otherClaims := maps.Clone(decodeSegment(t, valid, 1))
	otherClaims["tid"] = string(otherTenant)
	otherPayload, _ := json.Marshal(otherClaims)

	hs256 := func() string {
		h, _ := json.Marshal(map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": b.kid})
		c, _ := json.Marshal(rawClaims(b.now))
		input := b64url(h) + "." + b64url(c)
		mac := hmac.New(sha256.New, pub) // the public key, as an HMAC secret
		mac.Write([]byte(input))
		return input + "." + b64url(mac.Sum(nil))
	}
	otherIssuer := NewTokens(testTokenKey, TokenConfig{Issuer: "https://evil.test", Audience: testAudience, TTL: 15 * time.Minute})
	otherIssuer.NowFunc = b.tokens.NowFunc
	otherKey := NewTokens(otherTokenKey, TokenConfig{Issuer: testIssuer, Audience: testAudience, TTL: 15 * time.Minute})
	otherKey.NowFunc = b.tokens.NowFunc

	tests := []struct {
		name  string
		token string
	}{
		{"Empty", ""},
		{"Garbage", "not a token"},
		{"APIKey", "bh_live_abc_def"},
		{"TwoParts", parts[0] + "." + parts[1]},
		{"FourParts", valid + "." + parts[2]},
		{"EmptySignature", parts[0] + "." + parts[1] + "."},
		{"TamperedPayload", parts[0] + "." + b64url(otherPayload) + "." + parts[2]},
		{"TamperedSignature", parts[0] + "." + parts[1] + "." + flipChar(parts[2])},
		{"TruncatedSignature", parts[0] + "." + parts[1] + "." + parts[2][:40]},
		{"SignatureOfOtherToken", parts[0] + "." + parts[1] + "." + strings.Split(issue(t, b.tokens, testAccessClaims), ".")[2]},
		{"TooLong", valid + strings.Repeat("A", maxTokenLen)},
		{"JSONSerialization", `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`},
		{"WrongIssuer", issue(t, otherIssuer, testAccessClaims)},
		{"UnknownKid", issue(t, otherKey, testAccessClaims)},
		{"KnownKidOtherKey", signRaw(t, otherTokenKey, rawHeader(b.kid), rawClaims(b.now))},
		{"AlgNone", b64url([]byte(`{"alg":"none","typ":"at+jwt","kid":"`+b.kid+`"}`)) + "." + parts[1] + "."},
		{"AlgNoneWithSignature", b64url([]byte(`{"alg":"none","typ":"at+jwt","kid":"`+b.kid+`"}`)) + "." + parts[1] + "." + parts[2]},
		{"AlgHS256WithPublicKey", hs256()},
		{"AlgES256", craft(func(h, c map[string]any) { h["alg"] = "ES256" })},
		{"AlgLowercase", craft(func(h, c map[string]any) { h["alg"] = "eddsa" })},
		{"AlgMissing", craft(func(h, c map[string]any) { delete(h, "alg") })},
		{"KidMissing", craft(func(h, c map[string]any) { delete(h, "kid") })},
		{"KidEmbeddedJWK", craft(func(h, c map[string]any) {
			delete(h, "kid")
			h["jwk"] = map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64url(pub)}
		})},
		{"KidPath", craft(func(h, c map[string]any) { h["kid"] = "../../keys/token-signing.key" })},
		{"KidURL", craft(func(h, c map[string]any) { h["kid"] = "https://evil.test/jwks.json" })},
		{"KidNotString", craft(func(h, c map[string]any) { h["kid"] = 1 })},
		{"JKUAttackerSet", craft(func(h, c map[string]any) { h["kid"] = "attacker"; h["jku"] = "https://evil.test/jwks.json" })},
		{"X5UAttackerCert", craft(func(h, c map[string]any) { h["kid"] = "attacker"; h["x5u"] = "https://evil.test/cert.pem" })},
		{"EmbeddedJWKOfAttacker", signRaw(t, otherTokenKey, map[string]any{"alg": "EdDSA", "typ": "at+jwt",
			"jwk": map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64url(otherTokenKey.Public().(ed25519.PublicKey))}}, rawClaims(b.now))},
		{"TypJWT", craft(func(h, c map[string]any) { h["typ"] = "JWT" })},
		{"TypMissing", craft(func(h, c map[string]any) { delete(h, "typ") })},
		{"TypNotString", craft(func(h, c map[string]any) { h["typ"] = 1 })},
		{"CritUnknown", craft(func(h, c map[string]any) { h["crit"] = []string{"exp"}; h["exp"] = 1 })},
		{"IssuerMissing", craft(func(h, c map[string]any) { delete(c, "iss") })},
		{"IssuerPrefix", craft(func(h, c map[string]any) { c["iss"] = testIssuer + "/" })},
		{"AudienceMissing", craft(func(h, c map[string]any) { delete(c, "aud") })},
		{"AudienceOther", craft(func(h, c map[string]any) { c["aud"] = "https://other.test/api" })},
		{"AudienceIssuer", craft(func(h, c map[string]any) { c["aud"] = testIssuer })},
		{"AudienceListWithoutUs", craft(func(h, c map[string]any) { c["aud"] = []string{"a", "b"} })},
		{"SessionMissing", craft(func(h, c map[string]any) { delete(c, "sid") })},
		{"SessionEmpty", craft(func(h, c map[string]any) { c["sid"] = "" })},
		{"LifetimeTooLong", craft(func(h, c map[string]any) { c["exp"] = b.now.Add(15*time.Minute + time.Second).Unix() })},
		{"LifetimeOfADay", craft(func(h, c map[string]any) {
			c["iat"] = b.now.Add(-time.Hour).Unix()
			c["exp"] = b.now.Add(23 * time.Hour).Unix()
		})},
		{"SubMissing", craft(func(h, c map[string]any) { delete(c, "sub") })},
		{"SubNotString", craft(func(h, c map[string]any) { c["sub"] = 7 })},
		{"JTIMissing", craft(func(h, c map[string]any) { delete(c, "jti") })},
		{"ExpMissing", craft(func(h, c map[string]any) { delete(c, "exp") })},
		{"ExpString", craft(func(h, c map[string]any) { c["exp"] = "tomorrow" })},
		{"ExpHuge", craft(func(h, c map[string]any) { c["exp"] = 1e300 })},
		{"IatMissing", craft(func(h, c map[string]any) { delete(c, "iat") })},
		{"IatFuture", craft(func(h, c map[string]any) { c["iat"] = b.now.Add(time.Hour).Unix() })},
		{"NbfFuture", craft(func(h, c map[string]any) { c["nbf"] = b.now.Add(time.Hour).Unix() })},
		{"TidMissing", craft(func(h, c map[string]any) { delete(c, "tid") })},
		{"TidUpper", craft(func(h, c map[string]any) { c["tid"] = strings.ToUpper(string(testTenant)) })},
		{"TidNotUUID", craft(func(h, c map[string]any) { c["tid"] = "acme" })},
		{"TidNil", craft(func(h, c map[string]any) { c["tid"] = "00000000-0000-0000-0000-000000000000" })},
		{"TidNumber", craft(func(h, c map[string]any) { c["tid"] = 42 })},
		{"TidUpperKey", craft(func(h, c map[string]any) { delete(c, "tid"); c["TID"] = string(testTenant) })},
		{"RoleMissing", craft(func(h, c map[string]any) { delete(c, "role") })},
		{"RoleUnknown", craft(func(h, c map[string]any) { c["role"] = "root" })},
		{"RoleUpper", craft(func(h, c map[string]any) { c["role"] = "ADMIN" })},
		{"ClaimsNotObject", signRawPayload(t, testTokenKey, rawHeader(b.kid), []byte(`["x"]`))},
		{"ClaimsDuplicateTid", signRawPayload(t, testTokenKey, rawHeader(b.kid),
			[]byte(`{"iss":"`+testIssuer+`","sub":"u","iat":`+itoa(b.now.Unix())+`,"exp":`+itoa(b.now.Unix()+60)+
				`,"jti":"j","role":"admin","tid":"`+string(testTenant)+`","tid":"`+string(otherTenant)+`"}`))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := b.tokens.Verify(tt.token)
			if got != nil || !errors.Is(err, ErrInvalidToken) {
				t.Errorf("Verify(%q) = %+v, %v; want nil, ErrInvalidToken", tt.token, got, err)
			}
		})
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// signRawPayload signs payload as is.
func signRawPayload(t testing.TB, priv ed25519.PrivateKey, header map[string]any, payload []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	input := b64url(h) + "." + b64url(payload)
	return input + "." + b64url(ed25519.Sign(priv, []byte(input)))
}

// flipChar changes the first character of a base64url string.
func flipChar(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

func TestTokensVerifyAcceptsTypeVariants(t *testing.T) {
	t.Parallel()
	b := setupTokens(t)
	for _, typ := range []string{"at+jwt", "AT+JWT", "application/at+jwt", "Application/At+JWT"} {
		h := rawHeader(b.kid)
		h["typ"] = typ
		if _, err := b.tokens.Verify(signRaw(t, testTokenKey, h, rawClaims(b.now))); err != nil {
			t.Errorf("Verify(typ %q) = %v, want nil", typ, err)
		}
	}
}

func TestTokensKeyRotation(t *testing.T) {
	t.Parallel()
	old := setupTokens(t).tokens
	oldToken := issue(t, old, testAccessClaims)

	current := NewTokens(otherTokenKey, TokenConfig{Issuer: testIssuer, Audience: testAudience, TTL: 15 * time.Minute})
	current.NowFunc = old.NowFunc
	if _, err := current.Verify(oldToken); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("Verify(token of a key not added) = %v, want ErrInvalidToken", err)
	}
	oldPub := testTokenKey.Public().(ed25519.PublicKey)
	if err := current.AddVerificationKey(oldPub); err != nil {
		t.Fatalf("AddVerificationKey: %v", err)
	}
	if err := current.AddVerificationKey(oldPub); err != nil {
		t.Fatalf("AddVerificationKey twice: %v", err)
	}
	got, err := current.Verify(oldToken)
	if err != nil {
		t.Fatalf("Verify(token of an added key): %v", err)
	}
	if got.Tenant != testTenant {
		t.Errorf("Verify(token of an added key).Tenant = %q, want %q", got.Tenant, testTenant)
	}
	// New tokens are signed with the current key.
	newToken := issue(t, current, testAccessClaims)
	if kid := decodeSegment(t, newToken, 0)["kid"]; kid != current.KeyID() {
		t.Errorf("kid of new token = %v, want %q", kid, current.KeyID())
	}
	if _, err := old.Verify(newToken); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("old Tokens Verify(new token) = %v, want ErrInvalidToken", err)
	}

	for _, bad := range []ed25519.PublicKey{nil, oldPub[:31], append(oldPub[:32:32], 0)} {
		if err := current.AddVerificationKey(bad); err == nil {
			t.Errorf("AddVerificationKey(%d bytes) = nil, want error", len(bad))
		}
	}
}

func TestTokensJWKS(t *testing.T) {
	t.Parallel()
	tk := setupTokens(t).tokens
	otherPub := otherTokenKey.Public().(ed25519.PublicKey)
	if err := tk.AddVerificationKey(otherPub); err != nil {
		t.Fatal(err)
	}
	b, err := tk.JWKS()
	if err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	var raw struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("JWKS = %s: %v", b, err)
	}
	pub := testTokenKey.Public().(ed25519.PublicKey)
	want := []map[string]any{
		{"kty": "OKP", "crv": "Ed25519", "x": b64url(pub), "kid": keyring.KeyID(pub), "alg": "EdDSA", "use": "sig"},
		{"kty": "OKP", "crv": "Ed25519", "x": b64url(otherPub), "kid": keyring.KeyID(otherPub), "alg": "EdDSA", "use": "sig"},
	}
	if diff := cmp.Diff(want, raw.Keys); diff != "" {
		t.Errorf("JWKS mismatch (-want +got):\n%s", diff) // a "d" member would leak the private key
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatalf("JWKS does not parse as a JWK Set: %v", err)
	}
	if keys := set.Key(tk.KeyID()); len(keys) != 1 || !keys[0].IsPublic() {
		t.Errorf("JWKS key %q = %+v, want one public key", tk.KeyID(), keys)
	}
}

func TestKeyID(t *testing.T) {
	t.Parallel()
	pub := testTokenKey.Public().(ed25519.PublicKey)
	sum := sha256.Sum256(pub)
	if got, want := keyring.KeyID(pub), hex.EncodeToString(sum[:8]); got != want || len(got) != 16 {
		t.Errorf("KeyID = %q, want %q", got, want)
	}
	if keyring.KeyID(pub) == keyring.KeyID(otherTokenKey.Public().(ed25519.PublicKey)) {
		t.Errorf("two keys share a KeyID")
	}
}

func TestNewTokensPanics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		key    ed25519.PrivateKey
		issuer string
	}{
		{"NilKey", nil, testIssuer},
		{"SeedOnly", testTokenKey.Seed(), testIssuer},
		{"EmptyIssuer", testTokenKey, ""},
	}
	for _, tt := range tests {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: NewTokens did not panic", tt.name)
				}
			}()
			NewTokens(tt.key, TokenConfig{Issuer: tt.issuer, Audience: testAudience, TTL: time.Minute})
		}()
	}
}

func TestNewTokensDefaultTTL(t *testing.T) {
	t.Parallel()
	tk := NewTokens(testTokenKey, TokenConfig{Issuer: testIssuer, Audience: testAudience, TTL: 0})
	if _, expiresIn, err := tk.Issue(testAccessClaims); err != nil || expiresIn != DefaultAccessTokenTTL {
		t.Errorf("Issue with ttl 0 = %v, %v; want %v, nil", expiresIn, err, DefaultAccessTokenTTL)
	}
}

func TestLooksLikeJWT(t *testing.T) {
	t.Parallel()
	_, key := newTestAPIKey(t)
	_, refresh, _, err := NewRefreshToken()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		token string
		want  bool
	}{
		{issue(t, setupTokens(t).tokens, testAccessClaims), true},
		{"eyJhbGciOiJFZERTQSJ9.e30.c2ln", true},
		{"eyJ..", true},
		{"", false},
		{"eyJ", false},
		{"eyJhbGciOiJFZERTQSJ9.e30", false},
		{"eyJhbGciOiJFZERTQSJ9.e30.c2ln.x", false},
		{"eyJhbGciOiJFZERTQSJ9.e30.c2ln=", false},
		{"eyJhbGciOiJFZERTQSJ9.e+30.c2ln", false},
		{"abc.def.ghi", false},
		{key, false},
		{refresh, false},
	}
	for _, tt := range tests {
		if got := LooksLikeJWT(tt.token); got != tt.want {
			t.Errorf("LooksLikeJWT(%q) = %v, want %v", tt.token, got, tt.want)
		}
	}
}

func FuzzVerifyToken(f *testing.F) {
	b := setupTokens(f)
	valid := issue(f, b.tokens, testAccessClaims)
	parts := strings.Split(valid, ".")
	f.Add(valid)
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(b64url([]byte(`{"alg":"none","typ":"at+jwt","kid":"`+b.kid+`"}`)) + "." + parts[1] + ".")
	f.Add(signRaw(f, testTokenKey, rawHeader(b.kid), rawClaims(b.now)))
	h := rawHeader(b.kid)
	h["crit"] = []string{"b64"}
	h["b64"] = false
	f.Add(signRaw(f, testTokenKey, h, rawClaims(b.now)))
	c := rawClaims(b.now)
	c["exp"] = 1e300
	f.Add(signRaw(f, testTokenKey, rawHeader(b.kid), c))
	f.Add(signRawPayload(f, testTokenKey, rawHeader(b.kid), []byte(`null`)))
	f.Add("")
	f.Add("..")
	f.Fuzz(func(t *testing.T, token string) {
		got, err := b.tokens.Verify(token)
		if err != nil {
			if got != nil || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify(%q) = %+v, %v; want nil, ErrInvalidToken", token, got, err)
			}
			return
		}
		if !got.Tenant.Valid() || !got.Role.Valid() || got.User == "" || got.ID == "" ||
			got.ExpiresAt.Before(b.now.Add(-tokenLeeway)) {
			t.Fatalf("Verify(%q) accepted claims %+v", token, got)
		}
		if !LooksLikeJWT(token) {
			t.Fatalf("Verify(%q) accepted a token LooksLikeJWT rejects", token)
		}
	})
}

// FuzzVerifySignedClaims reaches past the signature check: it signs
// arbitrary header and claims JSON with the trusted key, so the fuzzer
// explores how Verify reads headers and claims.
func FuzzVerifySignedClaims(f *testing.F) {
	b := setupTokens(f)
	mustJSON := func(v any) []byte {
		j, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		return j
	}
	f.Add(mustJSON(rawHeader(b.kid)), mustJSON(rawClaims(b.now)))
	c := rawClaims(b.now)
	c["exp"] = 1e300
	f.Add(mustJSON(rawHeader(b.kid)), mustJSON(c))
	c = rawClaims(b.now)
	c["aud"] = []string{"x", "y"}
	c["nbf"] = -1.5
	f.Add(mustJSON(rawHeader(b.kid)), mustJSON(c))
	h := rawHeader(b.kid)
	h["crit"] = []string{"b64"}
	h["b64"] = false
	f.Add(mustJSON(h), mustJSON(rawClaims(b.now)))
	f.Add([]byte(`{"alg":"EdDSA","kid":"`+b.kid+`","typ":"at+jwt","typ":"JWT"}`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, header, claims []byte) {
		input := b64url(header) + "." + b64url(claims)
		token := input + "." + b64url(ed25519.Sign(testTokenKey, []byte(input)))
		got, err := b.tokens.Verify(token)
		if err != nil {
			if got != nil || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify(%q) = %+v, %v; want nil, ErrInvalidToken", token, got, err)
			}
			return
		}
		if !got.Tenant.Valid() || !got.Role.Valid() || got.User == "" || got.ID == "" ||
			got.ExpiresAt.Before(b.now.Add(-tokenLeeway)) || got.IssuedAt.After(b.now.Add(tokenLeeway)) {
			t.Fatalf("Verify(%q) accepted claims %+v", token, got)
		}
	})
}

func BenchmarkVerifyToken(b *testing.B) {
	tb := setupTokens(b)
	token := issue(b, tb.tokens, testAccessClaims)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tb.tokens.Verify(token); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIssueToken(b *testing.B) {
	tb := setupTokens(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tb.tokens.Issue(testAccessClaims); err != nil {
			b.Fatal(err)
		}
	}
}

// TestTokensLifetimeAndAudience: a token whose lifetime is within MaxTTL
// verifies even when the TTL is shorter (tokens issued before the TTL was
// lowered), one beyond it does not; an aud list that names the audience
// verifies.
func TestTokensLifetimeAndAudience(t *testing.T) {
	t.Parallel()
	tk := NewTokens(testTokenKey, TokenConfig{Issuer: testIssuer, Audience: testAudience, TTL: 5 * time.Minute, MaxTTL: 15 * time.Minute})
	tk.NowFunc = func() time.Time { return testNow }
	kid := keyring.KeyID(testTokenKey.Public().(ed25519.PublicKey))
	for _, tc := range []struct {
		name string
		edit func(c map[string]any)
		ok   bool
	}{
		{"MaxTTL", func(c map[string]any) {}, true},
		{"BeyondMaxTTL", func(c map[string]any) { c["exp"] = testNow.Add(15*time.Minute + time.Second).Unix() }, false},
		{"AudienceList", func(c map[string]any) { c["aud"] = []string{"https://other.test", testAudience} }, true},
	} {
		c := rawClaims(testNow)
		tc.edit(c)
		_, err := tk.Verify(signRaw(t, testTokenKey, rawHeader(kid), c))
		if (err == nil) != tc.ok {
			t.Errorf("%s: Verify = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
	if _, exp, err := tk.Issue(testAccessClaims); err != nil || exp != 5*time.Minute {
		t.Errorf("Issue = %v, %v; want a 5m token", exp, err)
	}
}

// SetKeys rotates the signing key: new tokens carry the new kid, tokens of
// the previous key verify while it is listed, and stop when it is dropped.
func TestTokensSetKeys(t *testing.T) {
	t.Parallel()
	b := setupTokens(t)
	old := issue(t, b.tokens, testAccessClaims)
	if err := b.tokens.SetKeys(otherTokenKey, []ed25519.PublicKey{testTokenKey.Public().(ed25519.PublicKey)}); err != nil {
		t.Fatal(err)
	}
	newKid := keyring.KeyID(otherTokenKey.Public().(ed25519.PublicKey))
	if got := b.tokens.KeyID(); got != newKid {
		t.Errorf("KeyID() = %s, want %s", got, newKid)
	}
	fresh := issue(t, b.tokens, testAccessClaims)
	if kid := decodeSegment(t, fresh, 0)["kid"]; kid != newKid {
		t.Errorf("new token's kid = %v, want %s", kid, newKid)
	}
	for name, tok := range map[string]string{"old": old, "new": fresh} {
		if _, err := b.tokens.Verify(tok); err != nil {
			t.Errorf("Verify(%s token) during rotation: %v", name, err)
		}
	}
	var set struct{ Keys []struct{ Kid string } }
	j, _ := b.tokens.JWKS()
	json.Unmarshal(j, &set)
	if len(set.Keys) != 2 || set.Keys[0].Kid != newKid || set.Keys[1].Kid != b.kid {
		t.Errorf("JWKS during rotation = %s, want the new key then the old", j)
	}
	// The previous key dropped: its tokens are refused.
	if err := b.tokens.SetKeys(otherTokenKey, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.tokens.Verify(old); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("Verify(token of a dropped key) = %v, want ErrInvalidToken", err)
	}
	if _, err := b.tokens.Verify(fresh); err != nil {
		t.Errorf("Verify(new token) = %v", err)
	}
	if err := b.tokens.SetKeys(ed25519.PrivateKey{1, 2}, nil); err == nil {
		t.Error("SetKeys(short key) succeeded")
	}
	if _, err := b.tokens.Verify(fresh); err != nil {
		t.Errorf("after a refused SetKeys, Verify(new token) = %v", err)
	}
}

// UnknownKeyFunc is asked once for a kid Verify does not know, and a key it
// installs verifies the token.
func TestTokensUnknownKeyFunc(t *testing.T) {
	t.Parallel()
	b := setupTokens(t)
	other := NewTokens(otherTokenKey, TokenConfig{Issuer: testIssuer, Audience: testAudience, TTL: 15 * time.Minute})
	other.NowFunc = func() time.Time { return b.now }
	tok := issue(t, other, testAccessClaims)
	calls := 0
	b.tokens.UnknownKeyFunc = func() bool { calls++; return false }
	if _, err := b.tokens.Verify(tok); !errors.Is(err, ErrInvalidToken) || calls != 1 {
		t.Fatalf("Verify(unknown kid) = %v after %d calls, want ErrInvalidToken after 1", err, calls)
	}
	b.tokens.UnknownKeyFunc = func() bool {
		calls++
		return b.tokens.SetKeys(testTokenKey, []ed25519.PublicKey{otherTokenKey.Public().(ed25519.PublicKey)}) == nil
	}
	if _, err := b.tokens.Verify(tok); err != nil {
		t.Errorf("Verify after the key was loaded = %v", err)
	}
}

func TestLooksLikeAccessToken(t *testing.T) {
	t.Parallel()
	b := setupTokens(t)
	tok := issue(t, b.tokens, testAccessClaims)
	other := func(h string) string { return b64url([]byte(h)) + ".eyJ4IjoxfQ.c2ln" }
	for _, c := range []struct {
		token string
		want  bool
	}{
		{tok, true},
		{other(`{"alg":"EdDSA","typ":"AT+JWT"}`), true},
		{other(`{"alg":"EdDSA","typ":"application/at+jwt"}`), true},
		{other(`{"alg":"HS256","typ":"JWT"}`), false},
		{other(`{"alg":"HS256"}`), false},
		{other(`{"typ":`), false},
		{"eyJ.not.base64!", false},
		{"bh_live_x", false},
		{"", false},
	} {
		if got := LooksLikeAccessToken(c.token); got != c.want {
			t.Errorf("LooksLikeAccessToken(%.40q) = %v, want %v", c.token, got, c.want)
		}
	}
}
