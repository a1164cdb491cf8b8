package console

import (
	"encoding/json"
	"math"
	"net/http"
	"time"
)

// DemoAPI is an API handler that answers the operator's reads with figures
// shaped as the health contract's, for the browser tests of the pages'
// rendering (charts, bars, polling) whatever the server's own traffic:
// two busy tenants, one of them throttled and shed, a breaker open, five
// minutes of series. It accepts any operator token.
func DemoAPI() http.Handler {
	return &fakeAPI{answer: func(r *http.Request, _ string) (int, any) {
		now := time.Now().Unix() / 5 * 5
		switch r.URL.Path {
		case "/v1/tenants":
			return 200, json.RawMessage(`{"items": [
				{"slug": "acme", "name": "Acme Corp", "plan": "pro", "status": "active"},
				{"slug": "globex", "name": "Globex", "plan": "free", "status": "active"},
				{"slug": "initech", "name": "Initech", "plan": "free", "status": "suspended"}], "next_cursor": ""}`)
		case "/v1/health/tenants":
			acme, globex := demoHealth("acme", "pro", now), demoHealth("globex", "free", now)
			acme.Series, globex.Series = nil, nil
			items := []tenantHealth{*globex, *acme}
			if s := r.URL.Query().Get("sort"); s == "p99" || s == "error_ratio" {
				items = []tenantHealth{*acme, *globex}
			}
			return 200, healthRanking{WindowSeconds: 60, Items: items,
				Breakers: map[string]string{"database": "closed", "redis": "open", "oidc": "closed", "security_events": "closed", "vault": "closed"}}
		case "/v1/tenants/acme", "/v1/tenants/globex":
			slug := r.URL.Path[len("/v1/tenants/"):]
			plan := map[string]string{"acme": "pro", "globex": "free"}[slug]
			return 200, map[string]string{"slug": slug, "name": slug, "plan": plan, "status": "active"}
		case "/v1/tenants/acme/health":
			return 200, demoHealth("acme", "pro", now)
		case "/v1/tenants/globex/health":
			return 200, demoHealth("globex", "free", now)
		case "/v1/plans":
			return 200, json.RawMessage(`{"items": [{"name": "free"}, {"name": "pro"}, {"name": "enterprise"}]}`)
		}
		return 404, map[string]any{"code": "not_found", "title": "Not Found", "detail": "no such resource"}
	}}
}

// demoHealth makes a tenant's figures: globex is the noisy one.
func demoHealth(slug, plan string, now int64) *tenantHealth {
	noisy := slug == "globex"
	h := &tenantHealth{Tenant: slug, TenantID: "demo-" + slug, Status: "active", Plan: plan, WindowSeconds: 60,
		OpenBreakers: []string{"redis"}, Series: &healthSeries{StepSeconds: 5}}
	for i := range 60 {
		x := float64(i)
		p := healthPoint{T: now - int64(59-i)*5, Rate: 4 + 2*math.Sin(x/6), P99ms: 9 + 3*math.Cos(x/5)}
		if noisy {
			p.Rate = 20 + 15*math.Max(0, math.Sin(x/8))
			p.P99ms = 25 + 20*math.Max(0, math.Sin(x/8))
			if p.Rate > 30 {
				p.Throttled = int64(p.Rate - 30)
				p.Shed = int64((p.Rate - 30) / 3)
			}
		}
		h.Series.Points = append(h.Series.Points, p)
	}
	for _, p := range h.Series.Points[48:] { // the last minute
		h.Requests += int64(p.Rate * 5)
		h.Throttled += p.Throttled
		h.Shed += p.Shed
	}
	h.Rate = float64(h.Requests) / 60
	h.P50ms, h.P99ms = 2.1, h.Series.Points[59].P99ms
	if noisy {
		h.Throttled, h.Shed = max(h.Throttled, 37), max(h.Shed, 5)
		h.ErrorRatio = 0.004
		h.OpenBreakers = append(h.OpenBreakers, "tenant")
		h.Quota = []quotaUse{{Name: "records", Used: 9200, Limit: 10000, Ratio: 0.92}, {Name: "bytes", Used: 310 << 20, Limit: 512 << 20, Ratio: 0.605}}
	} else {
		h.Quota = []quotaUse{{Name: "records", Used: 1200, Limit: 100000, Ratio: 0.012}, {Name: "bytes", Used: 40 << 20, Limit: 0}}
	}
	return h
}

// ExpireAccess opens a session cookie's value sealed under secret, marks
// its access token expired and seals it again; it also returns the
// refresh token the session held. Tests use it to make the console
// refresh a real login.
func ExpireAccess(secret []byte, value string) (expired, refresh string, err error) {
	s, err := newSealer(secret)
	if err != nil {
		return "", "", err
	}
	sess, err := s.openSession(value, time.Now())
	if err != nil {
		return "", "", err
	}
	sess.AccessExpires = time.Now().Add(-time.Minute).Unix()
	expired, err = s.seal(sessionCookie, sess)
	return expired, sess.Refresh, err
}

// SessionRefresh returns the refresh token a session cookie's value holds.
func SessionRefresh(secret []byte, value string) (string, error) {
	s, err := newSealer(secret)
	if err != nil {
		return "", err
	}
	sess, err := s.openSession(value, time.Now())
	if err != nil {
		return "", err
	}
	return sess.Refresh, nil
}
