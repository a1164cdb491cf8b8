package httpapi

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// manualClock is a clock tests move by hand.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func newManualClock() *manualClock { return &manualClock{now: time.Now().UTC()} }

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// jwksKids returns the kids GET /.well-known/jwks.json lists, in order,
// checking the answer is public and briefly cacheable.
func (b *testBundle) jwksKids() []string {
	b.t.Helper()
	r := b.must(200, "GET", "/.well-known/jwks.json", "", nil)
	if cc := r.Header.Get("Cache-Control"); cc != "public, max-age=300" {
		b.t.Errorf("JWKS Cache-Control = %q", cc)
	}
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			Kty string `json:"kty"`
			D   string `json:"d"`
		} `json:"keys"`
	}
	r.JSON(b.t, &set)
	var kids []string
	for _, k := range set.Keys {
		if k.D != "" {
			b.t.Fatalf("JWKS publishes a private key: %s", r.Body)
		}
		kids = append(kids, k.Kid)
	}
	return kids
}

func tokenKid(t *testing.T, token string) string {
	t.Helper()
	h, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(h, &m)
	kid, _ := m["kid"].(string)
	return kid
}

// A rotation made in the shared key directory applies on every node
// without a restart: the node that re-reads signs with the new key, the
// other verifies its tokens (it re-reads on meeting the unknown kid), old
// tokens verify until they have expired, and then the old key is gone from
// verification and from the JWKS.
func TestSigningKeyRotationAcrossNodes(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	dir := t.TempDir()
	withClock := func(c *core.Config) { c.NowFunc = clock.Now }
	a := setupCore(t, dir, withClock)
	bnode := setupCore(t, dir, withClock)
	a.tenant("acme", tenant.Pooled)
	a.collection("acme", a.apiKey("acme", tenant.Admin), "things", nil)
	old := a.userToken("acme", "old@example.com", tenant.Admin)
	oldKid := tokenKid(t, old.AccessToken)
	if kids := a.jwksKids(); len(kids) != 1 || kids[0] != oldKid {
		t.Fatalf("JWKS before rotation = %v, want [%s]", kids, oldKid)
	}

	keys := filepath.Join(dir, "keys")
	k, _, err := keyring.RotateSigningKey(keys, clock.Now(), core.SigningKeyKeep(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	newKid := keyring.KeyID(k.Public())
	if err := a.core.ReloadSigningKeys(); err != nil { // what SIGHUP and the periodic re-read do
		t.Fatal(err)
	}
	fresh := a.userToken("acme", "new@example.com", tenant.Admin)
	if got := tokenKid(t, fresh.AccessToken); got != newKid {
		t.Fatalf("token issued after rotation has kid %s, want %s", got, newKid)
	}
	// Node b has not re-read yet: the unknown kid makes it.
	for name, node := range map[string]*testBundle{"a": a, "b": bnode} {
		for which, tok := range map[string]string{"old": old.AccessToken, "new": fresh.AccessToken} {
			if r := node.do("GET", "/v1/tenants/acme/collections", tok, nil); r.Status != 200 {
				t.Errorf("node %s, %s token during rotation: %d %s", name, which, r.Status, r.Body)
			}
		}
		if kids := node.jwksKids(); len(kids) != 2 || kids[0] != newKid || kids[1] != oldKid {
			t.Errorf("node %s JWKS during rotation = %v, want [%s %s]", name, kids, newKid, oldKid)
		}
	}

	// Once every token of the old key has expired, the key is dropped.
	clock.Advance(core.SigningKeyKeep(15*time.Minute) + time.Second)
	forged := signAs(t, mustSeedOf(t, keys, 1), oldKid, claimsOf(t, fresh.AccessToken, clock.Now()))
	for _, node := range []*testBundle{a, bnode} {
		if err := node.core.ReloadSigningKeys(); err != nil {
			t.Fatal(err)
		}
		if kids := node.jwksKids(); len(kids) != 1 || kids[0] != newKid {
			t.Errorf("JWKS after the old key retired = %v, want [%s]", kids, newKid)
		}
		// A token the removed key signs now, otherwise valid, is refused.
		node.mustProblem(401, problem.CodeUnauthorized, "GET", "/v1/tenants/acme/collections", forged, nil)
	}
}

// mustSeedOf returns the private key of version v in the key directory.
func mustSeedOf(t *testing.T, dir string, v int) ed25519.PrivateKey {
	t.Helper()
	ks, err := keyring.LoadSigningKeys(dir, time.Time{}, time.Duration(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range append([]keyring.SigningKey{ks.Current}, ks.Previous...) {
		if k.Version == v {
			return k.Key
		}
	}
	t.Fatalf("no signing key %d", v)
	return nil
}

// claimsOf returns the claims of token, re-dated to now.
func claimsOf(t *testing.T, token string, now time.Time) map[string]any {
	t.Helper()
	p, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(p, &c); err != nil {
		t.Fatal(err)
	}
	c["iat"], c["nbf"], c["exp"] = now.Unix(), now.Unix(), now.Add(10*time.Minute).Unix()
	return c
}

// signWith builds a compact JWS over header and claims with sign.
func signWith(t *testing.T, header, claims map[string]any, sign func(input []byte) []byte) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	return input + "." + base64.RawURLEncoding.EncodeToString(sign([]byte(input)))
}

// signAs signs claims with key under kid, as the server would.
func signAs(t *testing.T, key ed25519.PrivateKey, kid string, claims map[string]any) string {
	return signWith(t, map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": kid}, claims,
		func(in []byte) []byte { return ed25519.Sign(key, in) })
}

// Forged access tokens are refused over HTTP: each is built from a real
// token of tenant A, so that only the forgery can make it fail.
func TestForgedTokensRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	aID := b.tenant("acme", tenant.Pooled)
	bID := b.tenant("globex", tenant.Pooled)
	b.collection("globex", b.apiKey("globex", tenant.Admin), "things", nil)
	b.collection("acme", b.apiKey("acme", tenant.Admin), "things", nil)
	pair := b.userToken("acme", "a@example.com", tenant.Admin)
	kid := tokenKid(t, pair.AccessToken)
	now := time.Now()
	claims := claimsOf(t, pair.AccessToken, now)
	if claims["tid"] != string(aID) {
		t.Fatalf("token tid %v, want %s", claims["tid"], aID)
	}
	// The genuine token works, and the public key is what the JWKS says.
	b.must(200, "GET", "/v1/tenants/acme/collections", pair.AccessToken, nil)
	var set struct {
		Keys []struct{ X string } `json:"keys"`
	}
	b.must(200, "GET", "/.well-known/jwks.json", "", nil).JSON(t, &set)
	pub, _ := base64.RawURLEncoding.DecodeString(set.Keys[0].X)

	_, attacker, _ := ed25519.GenerateKey(nil)
	attackerJWK := map[string]any{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(attacker.Public().(ed25519.PublicKey))}
	parts := strings.Split(pair.AccessToken, ".")
	editTid := func(tid tenant.ID) string {
		c := claimsOf(t, pair.AccessToken, now)
		c["tid"] = string(tid)
		p, _ := json.Marshal(c)
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString(p) + "." + parts[2]
	}
	hs256 := func(secret []byte) func([]byte) []byte {
		return func(in []byte) []byte { m := hmac.New(sha256.New, secret); m.Write(in); return m.Sum(nil) }
	}
	attacks := map[string]string{
		"AlgNone": base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt","kid":"`+kid+`"}`)) +
			"." + parts[1] + ".",
		"AlgHS256PublicKeyAsSecret": signWith(t, map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": kid}, claims, hs256(pub)),
		"AlgHS256PublicJWKAsSecret": signWith(t, map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": kid}, claims,
			hs256([]byte(set.Keys[0].X))),
		"AttackerKeyKnownKid": signAs(t, attacker, kid, claims),
		"KidPath":             signAs(t, attacker, "../keys/token-signing.key", claims),
		"KidURL":              signAs(t, attacker, "https://evil.test/key", claims),
		"KidOfAuditKey":       signAs(t, attacker, keyring.KeyID(mustKeyring(t, b.dir).AuditKey.Public().(ed25519.PublicKey)), claims),
		"JKU": signWith(t, map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": "evil", "jku": "https://evil.test/jwks.json"},
			claims, func(in []byte) []byte { return ed25519.Sign(attacker, in) }),
		"EmbeddedJWK": signWith(t, map[string]any{"alg": "EdDSA", "typ": "at+jwt", "jwk": attackerJWK}, claims,
			func(in []byte) []byte { return ed25519.Sign(attacker, in) }),
		"EmbeddedJWKWithKnownKid": signWith(t, map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": kid, "jwk": attackerJWK}, claims,
			func(in []byte) []byte { return ed25519.Sign(attacker, in) }),
		"TidEditedToB":       editTid(bID),
		"TidEditedToUnknown": editTid(tenant.NewID()),
	}
	for name, tok := range attacks {
		for _, slug := range []string{"acme", "globex"} {
			r := b.do("GET", "/v1/tenants/"+slug+"/collections", tok, nil)
			if r.Status != 401 {
				t.Errorf("%s on %s: %d %s, want 401", name, slug, r.Status, r.Body)
			}
		}
	}
}

func mustKeyring(t *testing.T, dir string) *keyring.Keyring {
	t.Helper()
	k, err := keyring.Load(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}
