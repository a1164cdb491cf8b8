package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/bulkheadhq/bulkhead/internal/auth"
	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// OpenID Connect federation: a tenant admin sets the tenant's provider
// (PUT/GET/DELETE …/auth/oidc); a browser starts a login at …/auth/oidc/start,
// which redirects it to the provider, and the provider sends it back to
// …/auth/oidc/callback, which answers the token pair. start and callback are
// public and held to the login limits.
//
// The login is bound to the browser by the cookie oidcCookie, set by start
// and sent only to the tenant's callback path (HttpOnly, SameSite=Lax so that
// the provider's top-level redirect carries it, Secure over https). The
// callback clears it whatever the outcome. There is no return URL: the
// callback answers JSON, so nothing redirects anywhere a request names.

// oidcCookie names the cookie binding a federated login to its browser.
const oidcCookie = "bh_oidc"

// Bounds of the callback's query parameters, in characters.
const (
	maxOIDCCode      = 2048
	maxOIDCError     = 256
	maxOIDCErrorDesc = 1024
)

func (s *Server) putOIDC(w http.ResponseWriter, r *http.Request, rq *request) error {
	var p core.PutOIDCParams
	if err := decodeStrict(rq.body, &p); err != nil {
		return err
	}
	cfg, err := rq.scope.PutOIDC(r.Context(), p)
	if err != nil {
		return oidcProblem(err)
	}
	return writeJSON(w, http.StatusOK, cfg)
}

func (s *Server) getOIDC(w http.ResponseWriter, r *http.Request, rq *request) error {
	cfg, err := rq.scope.GetOIDC(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, cfg)
}

func (s *Server) deleteOIDC(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := rq.scope.DeleteOIDC(r.Context()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) oidcStart(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := s.admitUnknownSlug(r); err != nil {
		return err
	}
	slug := tenant.Slug(r.PathValue("tenant"))
	callback := s.oidcCallbackURL(r, slug)
	start, err := s.core.StartOIDC(r.Context(), slug, callback)
	if err != nil {
		return oidcProblem(err)
	}
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: start.Binding, Path: oidcCallbackPath(slug),
		Expires: start.Expires, MaxAge: int(auth.OIDCStateTTL.Seconds()), HttpOnly: true,
		Secure: strings.HasPrefix(callback, "https:"), SameSite: http.SameSiteLaxMode})
	w.Header().Set("Location", start.URL)
	w.WriteHeader(http.StatusFound)
	return nil
}

func (s *Server) oidcCallback(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := s.admitUnknownSlug(r); err != nil {
		return err
	}
	var p core.OIDCCallbackParams
	var err error
	if p.State, err = queryText(r, "state", auth.MaxOIDCState); err != nil {
		return err
	}
	if p.Code, err = queryText(r, "code", maxOIDCCode); err != nil {
		return err
	}
	if p.Error, err = queryText(r, "error", maxOIDCError); err != nil {
		return err
	}
	if p.ErrorDescription, err = queryText(r, "error_description", maxOIDCErrorDesc); err != nil {
		return err
	}
	slug := tenant.Slug(r.PathValue("tenant"))
	if c, err := r.Cookie(oidcCookie); err == nil {
		p.Binding = c.Value
	}
	// The binding is single-use, whatever the outcome.
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: "", Path: oidcCallbackPath(slug), MaxAge: -1,
		HttpOnly: true, Secure: strings.HasPrefix(s.oidcCallbackURL(r, slug), "https:"), SameSite: http.SameSiteLaxMode})
	pair, err := s.core.FinishOIDC(r.Context(), slug, p, rq.id)
	if err != nil {
		return oidcProblem(err)
	}
	return writeJSON(w, http.StatusOK, pair)
}

// oidcCallbackPath is the path of the tenant's callback.
func oidcCallbackPath(slug tenant.Slug) string {
	return "/v1/tenants/" + string(slug) + "/auth/oidc/callback"
}

// oidcCallbackURL is the redirect URI of the tenant's logins: under
// Config.PublicURL, or else under the scheme and Host of the request. The
// provider accepts only the redirect URIs registered with it, so a forged
// Host gets nowhere; behind a proxy, set PublicURL.
func (s *Server) oidcCallbackURL(r *http.Request, slug tenant.Slug) string {
	base := s.publicURL
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return strings.TrimRight(base, "/") + oidcCallbackPath(slug)
}

// queryText reads an optional text query parameter of at most max
// characters; absent or empty, it is "".
func queryText(r *http.Request, name string, max int) (string, error) {
	v := r.URL.Query().Get(name)
	if err := core.CheckText(name, v); err != nil {
		return "", err
	}
	if core.TextLen(v) > max {
		msg := fmt.Sprintf("must be at most %d characters long", max)
		return "", fieldProblem(name, name+" "+msg, msg)
	}
	return v, nil
}

// oidcProblem turns federation's refusals into their problems; other
// errors pass through to problemFor.
func oidcProblem(err error) error {
	detail := ""
	var oe *core.OIDCError
	if errors.As(err, &oe) {
		detail = oe.Detail
	}
	switch {
	case errors.Is(err, core.ErrOIDCState):
		return problem.New(http.StatusUnauthorized, problem.CodeOIDCStateInvalid, or(detail, "the login's state is not valid; start again"))
	case errors.Is(err, core.ErrOIDCLogin):
		return problem.New(http.StatusUnauthorized, problem.CodeOIDCLoginFailed, or(detail, "the identity provider did not authenticate the user"))
	case errors.Is(err, core.ErrOIDCNoAccount):
		return problem.New(http.StatusForbidden, problem.CodeOIDCNoAccount, or(detail, "no account of the tenant is linked to this identity"))
	case errors.Is(err, core.ErrOIDCProvider):
		return problem.New(http.StatusUnprocessableEntity, problem.CodeOIDCProviderError, or(detail, "the identity provider's configuration could not be fetched")).
			WithErrors(problem.FieldError{Field: "issuer", Message: or(detail, "discovery failed")})
	}
	return err
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
