package console_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
)

// BenchmarkConsole compares serving the operator's dashboard (two API
// calls in process, the template) with the API's own GET /v1/tenants,
// over loopback HTTP to a real server, in the same run. Report the ratio
// of their ns/op.
func BenchmarkConsole(b *testing.B) {
	srv := startServer(b)
	for _, slug := range []string{"acme", "globex", "initech", "umbrella", "hooli"} {
		srv.createTenant(b, slug, "")
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	signIn(b, client, srv)

	get := func(b *testing.B, path string, auth bool) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if auth {
			req.Header.Set("Authorization", "Bearer "+operatorToken)
		}
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
	}
	b.Run("api-tenants", func(b *testing.B) {
		for b.Loop() {
			get(b, "/v1/tenants?limit=100", true)
		}
	})
	b.Run("console-dashboard", func(b *testing.B) {
		for b.Loop() {
			get(b, "/ui/", false)
		}
	})
	b.Run("console-dashboard-poll", func(b *testing.B) {
		for b.Loop() {
			req, _ := http.NewRequest("GET", srv.URL+"/ui/", nil)
			req.Header.Set("HX-Request", "true")
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
		}
	})
}

// signIn signs client in as the operator through the login form.
func signIn(b *testing.B, client *http.Client, srv *testServer) {
	b.Helper()
	resp, err := client.Get(srv.URL + "/ui/login")
	if err != nil {
		b.Fatal(err)
	}
	var page strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		page.Write(buf[:n])
		if err != nil {
			break
		}
	}
	resp.Body.Close()
	_, rest, ok := strings.Cut(page.String(), `name="csrf" value="`)
	if !ok {
		b.Fatal("no CSRF token on the login page")
	}
	token, _, _ := strings.Cut(rest, `"`)
	resp, err = client.PostForm(srv.URL+"/ui/login", url.Values{"csrf": {token}, "kind": {"operator"}, "token": {operatorToken}})
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		b.Fatalf("sign in: %d", resp.StatusCode)
	}
}
