// Package console serves the web console: server-rendered pages that call
// the HTTP API in process with the signed-in person's credential.
//
// Every read and write of a page goes through the API handler (see
// Console.call), so scoping, admission, rate limits and audit are exactly
// the API's: a tenant admin's console sees what their credential sees and
// nothing more. The session is a cookie holding that credential sealed
// with AES-256-GCM (see session.go); unsafe requests must come from the
// console's own origin (http.CrossOriginProtection) and carry the
// session's CSRF token. Pages are html/template files embedded in the
// binary, with a vendored htmx and uPlot; nothing is fetched from
// elsewhere, so the console works offline.
package console

import (
	"cmp"
	"embed"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The templates are embedded with all: so that the partials (_*.html),
// which go:embed leaves out of a directory by default, are kept.
//
//go:embed static all:templates
var files embed.FS

// Config configures a console.
type Config struct {
	// API is the HTTP API handler the console calls in process.
	API http.Handler
	// CookieKey is the platform secret the session cookie's key is derived
	// from (HKDF-SHA256). Every node given the same secret opens the
	// cookies of the others. At least 32 bytes.
	CookieKey []byte
	// Logger receives the console's own log lines (failed calls, refused
	// sessions). Defaults to slog.Default().
	Logger *slog.Logger
	// TLS says browsers reach the console over HTTPS: the server speaks
	// TLS itself, or its public URL is https:// (a TLS proxy in front). The
	// session cookie is then always marked Secure.
	TLS bool
	// SessionTTL is how long a sign-in lasts. Defaults to 12 hours.
	SessionTTL time.Duration
	// PollSeconds is how often live pages refresh themselves. Defaults to 3.
	PollSeconds int
}

// Console is the web console's handler. Build it with New.
type Console struct {
	api       http.Handler
	log       *slog.Logger
	tls       bool
	ttl       time.Duration
	poll      int
	sealer    *sealer
	refresher *refresher
	pages     map[string]*pageTemplate
	static    http.Handler
	handler   http.Handler

	apiRefMu sync.Mutex
	apiRef   *apiRefData // built on first use (apiref.go)
}

// New builds the console. It panics if the embedded templates do not
// parse (a programming error caught by any test) and returns an error if
// the cookie key is too short.
func New(cfg Config) (*Console, error) {
	s, err := newSealer(cfg.CookieKey)
	if err != nil {
		return nil, err
	}
	c := &Console{
		api:    cfg.API,
		log:    cmp.Or(cfg.Logger, slog.Default()),
		tls:    cfg.TLS,
		ttl:    cmp.Or(cfg.SessionTTL, 12*time.Hour),
		poll:   cmp.Or(cfg.PollSeconds, 3),
		sealer: s,
	}
	c.refresher = newRefresher(c)
	c.pages = mustParsePages()
	staticFS, _ := fs.Sub(files, "static")
	c.static = http.StripPrefix("/ui/static/", http.FileServerFS(staticFS))

	mux := http.NewServeMux()
	c.routes(mux)
	c.tenantRoutes(mux)
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(c.crossOriginRefused))
	c.handler = cop.Handler(mux)
	return c, nil
}

// ServeHTTP serves /ui and everything under it.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	if r.Body != nil { // the console's forms are small
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	}
	c.handler.ServeHTTP(w, r)
}

// maxFormBytes bounds a form posted to the console.
const maxFormBytes = 64 << 10

// contentSecurityPolicy lets pages load scripts, styles, images and data
// from the console's own origin only: no inline script or style, no
// framing, forms posted only back to the console.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// setSecurityHeaders sets the headers every console answer carries.
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
}

// routes registers the framework's and the operator's pages. The tenant
// admin's pages are registered by tenantRoutes (tenant.go).
func (c *Console) routes(mux *http.ServeMux) {
	mux.Handle("GET /ui/static/", http.HandlerFunc(c.serveStatic))
	mux.HandleFunc("GET /ui", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /ui/login", c.loginPage)
	mux.HandleFunc("POST /ui/login", c.loginSubmit)
	mux.HandleFunc("POST /ui/logout", c.logout)
	mux.HandleFunc("GET /ui/logout", c.logoutPage)
	mux.HandleFunc("GET /ui/api", c.apiReference)
	mux.HandleFunc("GET /ui/{$}", c.home)
	c.operatorRoutes(mux)
	mux.HandleFunc("/ui/", c.notFound)
}

// serveStatic serves the embedded scripts, styles and vendored libraries.
// They change only with the binary; browsers may keep them an hour.
func (c *Console) serveStatic(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/") { // no directory listings
		c.notFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	c.static.ServeHTTP(w, r)
}

// crossOriginRefused answers an unsafe request that came from another
// origin.
func (c *Console) crossOriginRefused(w http.ResponseWriter, r *http.Request) {
	c.log.Warn("console: cross-origin request refused", "method", r.Method, "path", r.URL.Path,
		"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
	c.renderError(w, r, nil, http.StatusForbidden, &APIError{Status: http.StatusForbidden, Code: "cross_origin_refused",
		Detail: "this form was sent from another site; the console accepts forms from its own pages only"})
}

// home sends the operator to the dashboard, a tenant admin to their
// tenant's pages, and anyone else to the login page.
func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	s := c.session(w, r)
	switch {
	case s == nil:
		http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
	case s.Kind == kindOperator:
		c.dashboard(w, r, s)
	default:
		http.Redirect(w, r, "/ui/t/"+s.Tenant+"/", http.StatusSeeOther)
	}
}

// notFound answers a console path that names no page.
func (c *Console) notFound(w http.ResponseWriter, r *http.Request) {
	c.renderNotFound(w, r, c.sessionQuiet(r))
}
