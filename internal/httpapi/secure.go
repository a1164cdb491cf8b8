package httpapi

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/bulkheadhq/bulkhead/problem"
)

// Security headers every answer carries. They are shared like the values
// in server.go: never changed in place.
var (
	nosniff        = []string{"nosniff"}
	noReferrer     = []string{"no-referrer"}
	frameDeny      = []string{"DENY"}
	frameAncestors = []string{"frame-ancestors 'none'"}
	// hsts asks browsers to reach this host over HTTPS only, for two years.
	hsts = []string{"max-age=63072000; includeSubDomains"}
)

// setSecurityHeaders sets the headers that keep browsers from sniffing,
// framing or leaking the answer, and HSTS when the server speaks TLS.
func (s *Server) setSecurityHeaders(h http.Header, r *http.Request) {
	h["X-Content-Type-Options"] = nosniff
	h["Referrer-Policy"] = noReferrer
	h["X-Frame-Options"] = frameDeny
	h["Content-Security-Policy"] = frameAncestors
	if s.tls || r.TLS != nil {
		h["Strict-Transport-Security"] = hsts
	}
}

// credentialParams are query parameter names that carry credentials in
// other APIs, folded to lower case without '-' and '_'. A credential in a
// URL ends up in proxies' and servers' logs, browser history and Referer
// headers, so bulkhead refuses the request rather than ignore it: the
// client learns at once that the credential is exposed.
var credentialParams = map[string]bool{
	"accesstoken": true, "apikey": true, "xapikey": true, "token": true, "key": true,
	"refreshtoken": true, "idtoken": true, "authtoken": true, "auth": true,
	"authorization": true, "bearer": true, "jwt": true, "password": true,
	"passwd": true, "secret": true, "clientsecret": true, "sessiontoken": true,
	"session": true, "apitoken": true,
}

// foldParam folds a parameter name for credentialParams.
func foldParam(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' {
			return -1
		}
		return r
	}, strings.ToLower(name))
}

// errCredentialsInQuery is the answer to a credential in a query string.
var errCredentialsInQuery = problem.New(http.StatusBadRequest, problem.CodeCredentialsInQuery,
	"credentials are never accepted in the URL; send them in the Authorization header, and treat this one as exposed")

// checkQuery refuses a request whose query names a credential parameter,
// or carries a value that has the form of a credential (an API key, an
// access JWT, a refresh token or the operator token), whatever its name.
func (s *Server) checkQuery(r *http.Request) error {
	raw := r.URL.RawQuery
	if raw == "" {
		return nil
	}
	q, _ := url.ParseQuery(raw) // what does not parse is refused by the handler
	for name, values := range q {
		if credentialParams[foldParam(name)] {
			return errCredentialsInQuery
		}
		for _, v := range values {
			if s.core.LooksLikeCredential(v) {
				return errCredentialsInQuery
			}
		}
	}
	return nil
}
