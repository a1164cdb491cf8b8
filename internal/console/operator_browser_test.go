package console_test

import (
	"net/http"
	"testing"
)

// TestBrowserOperatorDashboard signs in with the operator token and finds
// the tenants listed with their plan and status, and the session cookie
// HttpOnly and SameSite=Strict.
func TestBrowserOperatorDashboard(t *testing.T) {
	ctx := newBrowser(t)
	srv := startServer(t)
	srv.createTenant(t, "acme", "")
	srv.createTenant(t, "globex", "")

	open(t, ctx, srv, "/ui/login", "login")
	shot(t, ctx, "login")
	loginOperator(t, ctx, srv)
	logTiming(t, ctx, "dashboard")
	shot(t, ctx, "dashboard")
	if got := text(t, ctx, `#tenants tr[data-tenant="acme"] .plan`); got != "free" {
		t.Errorf("acme's plan shows %q, want free", got)
	}
	if got := text(t, ctx, `#tenants tr[data-tenant="globex"] .status-active`); got != "active" {
		t.Errorf("globex's status shows %q, want active", got)
	}
	var found bool
	for _, c := range cookies(t, ctx, srv) {
		if c.Name != "bulkhead_console" {
			continue
		}
		found = true
		if !c.HTTPOnly || c.SameSite != "Strict" || c.Path != "/ui" || !c.Secure {
			t.Errorf("session cookie: HttpOnly %v, SameSite %q, Path %q, Secure %v; want HttpOnly, Strict, /ui, Secure on loopback",
				c.HTTPOnly, c.SameSite, c.Path, c.Secure)
		}
	}
	if !found {
		t.Fatal("no session cookie after signing in")
	}
	_ = http.StatusOK
}
