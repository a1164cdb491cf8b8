package console

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// pageFunc is a console page's handler: it runs with the signed-in
// person's session, already checked (see Console.page).
type pageFunc func(w http.ResponseWriter, r *http.Request, s *session)

// access says who may open a page.
type access int

const (
	anyone       access = iota // any signed-in person
	operatorOnly               // the operator
	tenantOnly                 // a tenant session whose slug is the path's {slug}, or the operator
)

// page wraps h: without a session the browser is sent to the login page
// (htmx requests get 401 with HX-Redirect); a signed-in person the page is
// not for sees the not-found page, as the API answers another tenant's
// paths; an unsafe method must carry the session's CSRF token, in the
// "csrf" form field or the X-CSRF-Token header.
func (c *Console) page(who access, h pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := c.session(w, r)
		if s == nil {
			c.toLogin(w, r)
			return
		}
		switch who {
		case operatorOnly:
			if s.Kind != kindOperator {
				c.renderNotFound(w, r, s)
				return
			}
		case tenantOnly:
			if s.Kind != kindOperator && r.PathValue("slug") != s.Tenant {
				c.renderNotFound(w, r, s)
				return
			}
		}
		if !safeMethod(r.Method) && !c.csrfOK(r, s) {
			c.log.Warn("console: request without the session's CSRF token refused", "method", r.Method, "path", r.URL.Path)
			c.renderError(w, r, s, http.StatusForbidden, &APIError{Status: http.StatusForbidden, Code: "csrf_token_invalid",
				Detail: "this form's security token is missing or stale; reload the page and try again"})
			return
		}
		h(w, r, s)
	}
}

// safeMethod says whether method changes nothing.
func safeMethod(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// csrfOK says whether r carries s's CSRF token.
func (c *Console) csrfOK(r *http.Request, s *session) bool {
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) == 1
}

// toLogin sends a request without a session to the login page, and back
// to where it was going after.
func (c *Console) toLogin(w http.ResponseWriter, r *http.Request) {
	to := "/ui/login"
	if r.Method == http.MethodGet && r.URL.Path != "/ui/" {
		to += "?next=" + url.QueryEscape(r.URL.RequestURI())
	}
	if isHTMX(r) {
		w.Header().Set("HX-Redirect", to)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// loginState is what the login cookie holds between the login form and
// its answer: the form's CSRF token and, while a TOTP code is asked for,
// the pending password login.
type loginState struct {
	CSRF     string `json:"x"`
	Expires  int64  `json:"e"`
	Tenant   string `json:"t,omitempty"`
	Email    string `json:"m,omitempty"`
	Password string `json:"p,omitempty"`
	Next     string `json:"n,omitempty"`
}

// loginTTL is how long a login form (and a pending TOTP step) lasts.
const loginTTL = 10 * time.Minute

// loginData is the login page's data.
type loginData struct {
	Kind     string // "operator", "password" or "api_key": the tab shown
	Tenant   string
	Email    string
	AskTOTP  bool // the password was right; the TOTP code is asked for
	Insecure bool // plain HTTP to a host that is not loopback
	Next     string
}

// loginPage shows the login form.
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if s := c.sessionQuiet(r); s != nil {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	kind := r.URL.Query().Get("kind")
	if kind != "password" && kind != "api_key" {
		kind = "operator"
	}
	c.showLogin(w, r, http.StatusOK, &loginState{Next: safeNext(r.URL.Query().Get("next"))},
		&loginData{Kind: kind, Tenant: r.URL.Query().Get("tenant")}, nil)
}

// showLogin renders the login form with a fresh CSRF token in st.
func (c *Console) showLogin(w http.ResponseWriter, r *http.Request, status int, st *loginState, d *loginData, e *APIError) {
	st.CSRF = randomToken()
	st.Expires = time.Now().Add(loginTTL).Unix()
	sealed, err := c.sealer.seal(loginCookie, st)
	if err != nil {
		c.renderError(w, r, nil, 0, err)
		return
	}
	// A browser-session cookie, never written to disk as a persistent one:
	// during the TOTP step it holds the pending password (sealed). Its
	// expiry is inside.
	c.setCookie(w, r, loginCookie, sealed, 0)
	d.Insecure = c.plainHTTPToOtherHost(r)
	d.Next = st.Next
	v := c.view(nil, "Sign in", "login", d)
	v.CSRF = st.CSRF
	v.Error = e
	c.render(w, r, status, "login", v)
}

// loginSubmit signs in with what the form gives: the operator token, a
// tenant user's email and password (and TOTP code when asked), or a
// tenant API key. Each is checked by calling the API with it.
func (c *Console) loginSubmit(w http.ResponseWriter, r *http.Request) {
	var st loginState
	ck, err := r.Cookie(loginCookie)
	if err != nil || c.sealer.open(loginCookie, ck.Value, &st) != nil || time.Now().Unix() >= st.Expires ||
		subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(st.CSRF)) != 1 || st.CSRF == "" {
		c.showLogin(w, r, http.StatusForbidden, &loginState{}, &loginData{Kind: "operator"}, &APIError{Status: http.StatusForbidden,
			Code: "csrf_token_invalid", Detail: "the sign-in form expired or did not come from this page; please sign in again"})
		return
	}
	kind := r.PostFormValue("kind")
	var s *session
	var d *loginData
	var e *APIError
	switch kind {
	case "operator":
		d = &loginData{Kind: kind}
		s, e = c.loginOperator(r, strings.TrimSpace(r.PostFormValue("token")))
	case "password":
		s, d, e = c.loginPassword(r, &st)
		if d.AskTOTP {
			status := http.StatusOK
			if e != nil {
				status = e.Status
			}
			c.showLogin(w, r, status, &st, d, e)
			return
		}
	case "api_key":
		d = &loginData{Kind: kind, Tenant: r.PostFormValue("tenant")}
		s, e = c.loginAPIKey(r, strings.TrimSpace(r.PostFormValue("tenant")), strings.TrimSpace(r.PostFormValue("api_key")))
	default:
		d = &loginData{Kind: "operator"}
		e = &APIError{Status: http.StatusBadRequest, Code: "invalid_parameter", Detail: "choose how to sign in"}
	}
	if e != nil {
		c.showLogin(w, r, e.Status, &loginState{Next: st.Next}, d, e)
		return
	}
	s.CSRF = randomToken()
	s.Expires = time.Now().Add(c.ttl).Unix()
	if err := c.saveSession(w, r, s); err != nil {
		c.renderError(w, r, nil, 0, err)
		return
	}
	c.setCookie(w, r, loginCookie, "", -1)
	if s.Kind == kindTenant {
		c.log.Info("console: signed in", "kind", s.Kind, "credential", s.Cred, "tenant", s.TenantID, "tenant_slug", s.Tenant)
	} else {
		c.log.Info("console: signed in", "kind", s.Kind, "credential", s.Cred)
	}
	to := "/ui/"
	if st.Next != "" {
		to = st.Next
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// loginOperator checks the operator token by listing tenants with it.
func (c *Console) loginOperator(r *http.Request, token string) (*session, *APIError) {
	if token == "" {
		return nil, &APIError{Status: http.StatusBadRequest, Code: "invalid_parameter", Detail: "paste the operator token"}
	}
	if err := c.callWith(r, token, http.MethodGet, "/v1/tenants?limit=1", nil, nil); err != nil {
		return nil, asAPIError(err)
	}
	return &session{Kind: kindOperator, Cred: credOperator, Credential: token, Who: "operator"}, nil
}

// loginPassword logs a tenant user in. When the API asks for the TOTP
// code, the pending login is kept (sealed) in st and the form asks for it.
func (c *Console) loginPassword(r *http.Request, st *loginState) (*session, *loginData, *APIError) {
	slug, email, password := strings.TrimSpace(r.PostFormValue("tenant")), strings.TrimSpace(r.PostFormValue("email")), r.PostFormValue("password")
	totp := strings.TrimSpace(r.PostFormValue("totp"))
	second := totp != "" && st.Password != ""
	if second { // the second step: the first step's login
		slug, email, password = st.Tenant, st.Email, st.Password
	}
	d := &loginData{Kind: "password", Tenant: slug, Email: email}
	if slug == "" || email == "" || password == "" {
		return nil, d, &APIError{Status: http.StatusBadRequest, Code: "invalid_parameter", Detail: "give the tenant, your email and your password"}
	}
	body := map[string]string{"email": email, "password": password}
	if totp != "" {
		body["totp"] = totp
	}
	var pair tokenPair
	err := c.callWith(r, "", http.MethodPost, "/v1/tenants/"+url.PathEscape(slug)+"/auth/login", body, &pair)
	if e := asAPIError(err); e != nil {
		if e.Code == "mfa_required" {
			st.Tenant, st.Email, st.Password = slug, email, password
			d.AskTOTP = true
			if totp == "" {
				e = nil // the first step: not an error, a question
			}
			return nil, d, e
		}
		if second && e.Code == "invalid_credentials" { // a wrong code: ask again
			d.AskTOTP = true
			return nil, d, e
		}
		return nil, d, e
	}
	if pair.Scope != "" {
		return nil, d, &APIError{Status: http.StatusForbidden, Code: "mfa_enrollment_required",
			Detail: "your tenant requires two-factor authentication: enrol in TOTP through the API (POST /v1/tenants/" + slug +
				"/auth/totp) before signing in to the console"}
	}
	s := &session{Kind: kindTenant, Tenant: slug, TenantID: tokenTenant(pair.AccessToken), Cred: credToken, Who: email}
	apply(s, &pair, time.Now())
	return s, d, nil
}

// loginAPIKey checks a tenant API key by reading the tenant's collections
// with it: an answer other than 401 or 404 (a 403 for a key whose role may
// not list them) shows the key belongs to the tenant.
func (c *Console) loginAPIKey(r *http.Request, slug, key string) (*session, *APIError) {
	if slug == "" || key == "" {
		return nil, &APIError{Status: http.StatusBadRequest, Code: "invalid_parameter", Detail: "give the tenant and the API key"}
	}
	err := c.callWith(r, key, http.MethodGet, "/v1/tenants/"+url.PathEscape(slug)+"/collections", nil, nil)
	if e := asAPIError(err); e != nil && e.Status != http.StatusForbidden {
		if e.NotFound() { // the key is not this tenant's: say so as the API does for a bad key
			e = &APIError{Status: http.StatusUnauthorized, Code: "unauthenticated", Detail: "the tenant or the API key is wrong"}
		}
		return nil, e
	}
	return &session{Kind: kindTenant, Tenant: slug, Cred: credAPIKey, Credential: key, Who: "API key"}, nil
}

// logoutPage asks to confirm signing out (signing out is a POST).
func (c *Console) logoutPage(w http.ResponseWriter, r *http.Request) {
	s := c.sessionQuiet(r)
	if s == nil {
		http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
		return
	}
	c.render(w, r, http.StatusOK, "logout", c.view(s, "Sign out", "", nil))
}

// logout clears the session cookie. It needs the CSRF token, so that
// another site cannot sign the person out.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if s := c.sessionQuiet(r); s != nil && !c.csrfOK(r, s) {
		c.renderError(w, r, s, http.StatusForbidden, &APIError{Status: http.StatusForbidden, Code: "csrf_token_invalid",
			Detail: "this form's security token is missing or stale; reload the page and try again"})
		return
	}
	c.setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// safeNext keeps a post-login destination only if it is a console path.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/ui/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") ||
		strings.HasPrefix(next, "/ui/login") || strings.HasPrefix(next, "/ui/logout") {
		return ""
	}
	return next
}

// asAPIError returns err as *APIError, wrapping any other error as an
// internal one; nil for nil.
func asAPIError(err error) *APIError {
	if err == nil {
		return nil
	}
	var e *APIError
	if errors.As(err, &e) {
		return e
	}
	return &APIError{Status: http.StatusInternalServerError, Code: "internal", Detail: err.Error()}
}

// tokenTenant reads the tenant id ("tid" claim) of an access token the API
// just issued, for the log; it does not verify the token (the API does, at
// every use). "" when it does not read.
func tokenTenant(jwt string) string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims struct {
		TID string `json:"tid"`
	}
	if json.Unmarshal(raw, &claims) != nil {
		return ""
	}
	return claims.TID
}
