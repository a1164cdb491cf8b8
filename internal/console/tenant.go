package console

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// tenantRoutes registers the tenant admin's pages, under /ui/t/{slug}/.
// Each page is for a session of that tenant (or the operator): a session of
// another tenant sees the not-found page, as the API answers another
// tenant's paths. Every read and write is an API call made with the
// session's credential, so what a page shows and changes is exactly what
// that credential may see and change. It also wraps the API handler the
// console calls with withHeaders.
func (c *Console) tenantRoutes(mux *http.ServeMux) {
	c.api = withHeaders(c.api) // for tcall's If-Match
	t := func(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
		return c.page(tenantOnly, h)
	}
	mux.HandleFunc("GET /ui/t/{slug}", t(func(w http.ResponseWriter, r *http.Request, s *session) {
		http.Redirect(w, r, tenantPath(r.PathValue("slug"), ""), http.StatusSeeOther)
	}))
	mux.HandleFunc("GET /ui/t/{slug}/{$}", t(c.tenantCollections))
	mux.HandleFunc("POST /ui/t/{slug}/collections", t(c.tenantCreateCollection))
	mux.HandleFunc("GET /ui/t/{slug}/collections/{coll}", t(c.tenantRecords))
	mux.HandleFunc("GET /ui/t/{slug}/collections/{coll}/schema", t(c.tenantCollection))
	mux.HandleFunc("POST /ui/t/{slug}/collections/{coll}/records", t(c.tenantCreateRecord))
	mux.HandleFunc("GET /ui/t/{slug}/collections/{coll}/records/{id}", t(c.tenantRecord))
	mux.HandleFunc("POST /ui/t/{slug}/collections/{coll}/records/{id}", t(c.tenantUpdateRecord))
	mux.HandleFunc("POST /ui/t/{slug}/collections/{coll}/records/{id}/delete", t(c.tenantDeleteRecord))

	mux.HandleFunc("GET /ui/t/{slug}/keys", t(c.tenantKeys))
	mux.HandleFunc("POST /ui/t/{slug}/keys", t(c.tenantCreateKey))
	mux.HandleFunc("GET /ui/t/{slug}/keys/{id}/revoke", t(c.tenantRevokeKeyConfirm))
	mux.HandleFunc("POST /ui/t/{slug}/keys/{id}/revoke", t(c.tenantRevokeKey))

	mux.HandleFunc("GET /ui/t/{slug}/users", t(c.tenantUsers))
	mux.HandleFunc("POST /ui/t/{slug}/users", t(c.tenantCreateUser))
	mux.HandleFunc("POST /ui/t/{slug}/users/{id}/role", t(c.tenantUserRole))
	mux.HandleFunc("GET /ui/t/{slug}/users/{id}/{action}", t(c.tenantUserConfirm))
	mux.HandleFunc("POST /ui/t/{slug}/users/{id}/delete", t(c.tenantDeleteUser))
	mux.HandleFunc("POST /ui/t/{slug}/users/{id}/unlock", t(c.tenantUnlockUser))
	mux.HandleFunc("POST /ui/t/{slug}/users/{id}/totp-reset", t(c.tenantResetTOTP))

	mux.HandleFunc("GET /ui/t/{slug}/audit", t(c.tenantAudit))
}

// headerKey is the context key of the extra headers of an in-process call
// made by tcall.
type headerKey struct{}

// withHeaders wraps the API handler the console calls so that a call made
// by tcall carries its extra headers: they travel in the request's
// context, which the framework's in-process call passes on. Other calls
// are passed through untouched.
func withHeaders(api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if h, ok := req.Context().Value(headerKey{}).(http.Header); ok {
			for k, v := range h {
				req.Header[k] = v
			}
		}
		api.ServeHTTP(w, req)
	})
}

// roles are the tenant roles, highest first, as the API names them.
var roles = []string{"owner", "admin", "member", "viewer"}

// tenantPath is the console path of a tenant's page: rest is appended to
// /ui/t/{slug}/ with each segment escaped by the caller.
func tenantPath(slug, rest string) string {
	return "/ui/t/" + url.PathEscape(slug) + "/" + rest
}

// tenantAPI is the API path of a tenant's resource: rest is appended to
// /v1/tenants/{slug}/ (already escaped by the caller).
func tenantAPI(slug, rest string) string {
	return "/v1/tenants/" + url.PathEscape(slug) + "/" + rest
}

// tenantProblem is an API error with what the framework's APIError does
// not carry: the byte position of a filter error and the fields at fault.
type tenantProblem struct {
	*APIError
	// Position is the byte offset of a filter error; -1 when absent.
	Position int
	// Fields are the problem's "errors": the fields that are wrong.
	Fields []problemField
}

// problemField is one field a problem names.
type problemField struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// tcall calls the API in process as the session's credential, like
// Console.call, with extra request headers (such as If-Match) and a
// failure returned with its position and fields. A nil *tenantProblem is
// success.
func (c *Console) tcall(r *http.Request, s *session, method, path string, header http.Header, body, out any) *tenantProblem {
	if len(header) > 0 {
		r = r.WithContext(context.WithValue(r.Context(), headerKey{}, header))
	}
	rec := c.do(r, s.Credential, method, path, body)
	if rec.status >= 400 {
		p := &tenantProblem{APIError: rec.problem(), Position: -1}
		var extra struct {
			Position *int           `json:"position"`
			Errors   []problemField `json:"errors"`
		}
		if rec.err == nil && json.Unmarshal(rec.body.Bytes(), &extra) == nil {
			if extra.Position != nil {
				p.Position = *extra.Position
			}
			p.Fields = extra.Errors
		}
		return p
	}
	if out == nil || rec.status == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
		return &tenantProblem{APIError: asAPIError(err), Position: -1}
	}
	return nil
}

// doneNotices are the one-line notices a page shows after a redirect that
// follows a successful form (?done=…): fixed texts, never the query's own.
var doneNotices = map[string]string{
	"collection": "Collection created.",
	"created":    "Record created.",
	"deleted":    "Record deleted.",
	"revoked":    "API key revoked: requests with it are refused from now on.",
	"user":       "User created.",
	"role":       "Role changed. The user's sessions ended; they sign in again.",
	"removed":    "User removed.",
	"unlocked":   "Sign-in unlocked: the user's failed logins are forgotten.",
	"totp":       "Two-factor sign-in reset: the user signs in with their password, and enrols again if the tenant's policy asks.",
}

// doneNotice is the notice for the request's ?done=, or "".
func doneNotice(r *http.Request) string { return doneNotices[r.URL.Query().Get("done")] }

// redirectDone sends the browser to path with a done notice, after a form
// that changed something (post/redirect/get: a reload does not post again).
func redirectDone(w http.ResponseWriter, r *http.Request, path, done string) {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	http.Redirect(w, r, path+sep+"done="+url.QueryEscape(done), http.StatusSeeOther)
}

// prettyJSON indents raw JSON for reading; raw as is if it does not parse.
func prettyJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return string(raw)
	}
	return b.String()
}

// collTabs is what the tabs of a collection's pages need.
type collTabs struct{ Slug, Coll, Tab string }

// Tabs gives the records browser's tabs, tab being the current one.
func (d *recordsData) Tabs(tab string) collTabs { return collTabs{d.Slug, d.Coll, tab} }

// Tabs gives the collection page's tabs, tab being the current one.
func (d *collectionData) Tabs(tab string) collTabs { return collTabs{d.Slug, d.Coll.Name, tab} }

// readOrRefusal reads the API's answer to GET path into out. A 404 or a
// failure of the server renders the error page and reports false; any
// other refusal (a role's 403) is returned, for the page to show beside
// what it still offers.
func (c *Console) readOrRefusal(w http.ResponseWriter, r *http.Request, s *session, path string, out any) (refusal *APIError, ok bool) {
	err := c.call(r, s, http.MethodGet, path, nil, out)
	if err == nil {
		return nil, true
	}
	ae := asAPIError(err)
	if ae.NotFound() || ae.Status >= 500 {
		c.renderError(w, r, s, 0, err)
		return nil, false
	}
	return ae, true
}
