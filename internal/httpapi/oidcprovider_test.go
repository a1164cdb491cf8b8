package httpapi

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// testIdP is a real OpenID provider (zitadel's op package) on a loopback
// server, with a minimal in-memory storage of its own. Its login page
// approves at once, as whichever user the test has put in user; rewrite
// makes it issue ID tokens a relying party must refuse.
type testIdP struct {
	srv    *httptest.Server
	issuer string
	key    *ecdsa.PrivateKey
	hits   atomic.Int64 // requests served

	mu       sync.Mutex
	clients  map[string]*idpClient
	requests map[string]*idpRequest
	codes    map[string]string // code -> request id
	user     idpUser
	// rewrite, if set, changes the claims of the ID tokens the token
	// endpoint issues, which are then signed again with the provider's
	// key: a provider that misbehaves, or a token replayed from elsewhere.
	rewrite func(claims map[string]any)
}

// idpUser is who logs in at the provider.
type idpUser struct {
	Subject       string
	Email         string
	EmailVerified bool
}

func newTestIdP(t *testing.T) *testIdP {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &testIdP{key: key, clients: map[string]*idpClient{}, requests: map[string]*idpRequest{}, codes: map[string]string{}}
	p.srv = httptest.NewUnstartedServer(nil)
	p.issuer = "http://" + p.srv.Listener.Addr().String()
	cfg := &op.Config{CryptoKey: sha256.Sum256([]byte(p.issuer)), CodeMethodS256: true}
	provider, err := op.NewProvider(cfg, p, op.StaticIssuer(p.issuer), op.WithAllowInsecure(),
		op.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", p.login)
	mux.Handle("/", provider)
	mux.Handle("POST /oauth/token", p.rewriting(provider))
	p.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.hits.Add(1)
		mux.ServeHTTP(w, r)
	})
	p.srv.Start()
	t.Cleanup(p.srv.Close)
	return p
}

// client registers a confidential client with one redirect URI.
func (p *testIdP) client(id, secret, redirectURI string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clients[id] = &idpClient{id: id, secret: secret, redirect: redirectURI, loginURL: p.issuer + "/login?id="}
}

// as makes u the user who logs in next.
func (p *testIdP) as(u idpUser) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.user = u
}

// login is the provider's login page: it authenticates the current user
// at once and sends the browser on to the authorization callback.
func (p *testIdP) login(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	p.mu.Lock()
	req, ok := p.requests[id]
	if ok {
		req.subject, req.authTime, req.done = p.user.Subject, time.Now(), true
	}
	p.mu.Unlock()
	if !ok {
		http.Error(w, "no such request", http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, p.issuer+"/authorize/callback?id="+url.QueryEscape(id), http.StatusFound)
}

type idpRequest struct {
	id, clientID, redirectURI, state, nonce, subject string
	scopes                                           []string
	responseType                                     oidc.ResponseType
	responseMode                                     oidc.ResponseMode
	challenge                                        *oidc.CodeChallenge
	audience                                         []string
	authTime                                         time.Time
	done                                             bool
}

func (r *idpRequest) GetID() string                         { return r.id }
func (r *idpRequest) GetACR() string                        { return "" }
func (r *idpRequest) GetAMR() []string                      { return []string{"pwd"} }
func (r *idpRequest) GetAudience() []string                 { return r.audience }
func (r *idpRequest) GetAuthTime() time.Time                { return r.authTime }
func (r *idpRequest) GetClientID() string                   { return r.clientID }
func (r *idpRequest) GetCodeChallenge() *oidc.CodeChallenge { return r.challenge }
func (r *idpRequest) GetNonce() string                      { return r.nonce }
func (r *idpRequest) GetRedirectURI() string                { return r.redirectURI }
func (r *idpRequest) GetResponseType() oidc.ResponseType    { return r.responseType }
func (r *idpRequest) GetResponseMode() oidc.ResponseMode    { return r.responseMode }
func (r *idpRequest) GetScopes() []string                   { return r.scopes }
func (r *idpRequest) GetState() string                      { return r.state }
func (r *idpRequest) GetSubject() string                    { return r.subject }
func (r *idpRequest) Done() bool                            { return r.done }

type idpClient struct {
	id, secret, redirect, loginURL string
}

func (c *idpClient) GetID() string                       { return c.id }
func (c *idpClient) RedirectURIs() []string              { return []string{c.redirect} }
func (c *idpClient) PostLogoutRedirectURIs() []string    { return nil }
func (c *idpClient) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *idpClient) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (c *idpClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *idpClient) GrantTypes() []oidc.GrantType         { return []oidc.GrantType{oidc.GrantTypeCode} }
func (c *idpClient) LoginURL(id string) string            { return c.loginURL + url.QueryEscape(id) }
func (c *idpClient) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *idpClient) IDTokenLifetime() time.Duration       { return 5 * time.Minute }
func (c *idpClient) DevMode() bool                        { return true } // http redirect URIs on loopback
func (c *idpClient) IsScopeAllowed(string) bool           { return false }
func (c *idpClient) IDTokenUserinfoClaimsAssertion() bool { return true } // email in the ID token
func (c *idpClient) ClockSkew() time.Duration             { return 0 }
func (c *idpClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *idpClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

var errIdPNotFound = errors.New("not found")

// op.Storage.

func (p *testIdP) CreateAuthRequest(_ context.Context, ar *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	req := &idpRequest{id: rand.Text(), clientID: ar.ClientID, redirectURI: ar.RedirectURI, state: ar.State,
		nonce: ar.Nonce, scopes: ar.Scopes, responseType: ar.ResponseType, responseMode: ar.ResponseMode,
		audience: []string{ar.ClientID}}
	if ar.CodeChallenge != "" {
		req.challenge = &oidc.CodeChallenge{Challenge: ar.CodeChallenge, Method: ar.CodeChallengeMethod}
	}
	p.requests[req.id] = req
	return req, nil
}

func (p *testIdP) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if req, ok := p.requests[id]; ok {
		return req, nil
	}
	return nil, errIdPNotFound
}

func (p *testIdP) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	p.mu.Lock()
	id, ok := p.codes[code]
	p.mu.Unlock()
	if !ok {
		return nil, errIdPNotFound
	}
	return p.AuthRequestByID(ctx, id)
}

func (p *testIdP) SaveAuthCode(_ context.Context, id, code string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.codes[code] = id
	return nil
}

// DeleteAuthRequest runs once a code has been exchanged: codes are
// single-use.
func (p *testIdP) DeleteAuthRequest(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.requests, id)
	for code, rid := range p.codes {
		if rid == id {
			delete(p.codes, code)
		}
	}
	return nil
}

func (p *testIdP) CreateAccessToken(context.Context, op.TokenRequest) (string, time.Time, error) {
	return rand.Text(), time.Now().Add(5 * time.Minute), nil
}

func (p *testIdP) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errors.New("refresh tokens are not supported")
}

func (p *testIdP) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

func (p *testIdP) TerminateSession(context.Context, string, string) error { return nil }

func (p *testIdP) RevokeToken(context.Context, string, string, string) *oidc.Error { return nil }

func (p *testIdP) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

type idpKey struct{ k *ecdsa.PrivateKey }

func (k idpKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (k idpKey) Algorithm() jose.SignatureAlgorithm          { return jose.ES256 }
func (k idpKey) Key() any                                    { return k.k }
func (k idpKey) ID() string                                  { return "k1" }
func (k idpKey) Use() string                                 { return "sig" }

type idpPublicKey struct{ idpKey }

func (k idpPublicKey) Key() any { return &k.k.PublicKey }

func (p *testIdP) SigningKey(context.Context) (op.SigningKey, error) { return idpKey{p.key}, nil }

func (p *testIdP) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.ES256}, nil
}

func (p *testIdP) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{idpPublicKey{idpKey{p.key}}}, nil
}

func (p *testIdP) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[id]; ok {
		return c, nil
	}
	return nil, errIdPNotFound
}

func (p *testIdP) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[id]; ok && c.secret == secret {
		return nil
	}
	return errors.New("invalid client")
}

func (p *testIdP) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's claims of the user who
// logged in (op.CanSetUserinfoFromRequest).
func (p *testIdP) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	info.Subject = req.GetSubject()
	if slices.Contains(scopes, oidc.ScopeEmail) && p.user.Subject == req.GetSubject() {
		info.Email, info.EmailVerified = p.user.Email, oidc.Bool(p.user.EmailVerified)
	}
	return nil
}

func (p *testIdP) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, _, subject, _ string) error {
	info.Subject = subject
	return nil
}

func (p *testIdP) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errors.New("introspection is not supported")
}

func (p *testIdP) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (p *testIdP) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errIdPNotFound
}

func (p *testIdP) ValidateJWTProfileScopes(_ context.Context, _ string, scopes []string) ([]string, error) {
	return scopes, nil
}

func (p *testIdP) Health(context.Context) error { return nil }

// rewriting serves the token endpoint, applying rewrite to the ID token
// of a successful answer and signing it again.
func (p *testIdP) rewriting(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		rewrite := p.rewrite
		p.mu.Unlock()
		if rewrite == nil {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var body map[string]any
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &body) != nil {
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
			return
		}
		raw, _ := body["id_token"].(string)
		jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		var claims map[string]any
		if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		rewrite(claims)
		payload, _ := json.Marshal(claims)
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: p.key},
			(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		signed, err := signer.Sign(payload)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		body["id_token"], _ = signed.CompactSerialize()
		out, _ := json.Marshal(body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(bytes.TrimSpace(out))
	})
}

// rewriteIDTokens sets p's rewrite until the test ends.
func (p *testIdP) rewriteIDTokens(t *testing.T, fn func(claims map[string]any)) {
	p.mu.Lock()
	p.rewrite = fn
	p.mu.Unlock()
	t.Cleanup(func() {
		p.mu.Lock()
		p.rewrite = nil
		p.mu.Unlock()
	})
}
