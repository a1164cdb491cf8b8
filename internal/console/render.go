package console

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"path"
	"strings"
	"time"
)

// pageTemplate is one page: the layout and the page's file parsed
// together. The page file defines "title" and "content" (and any
// fragments it renders alone for htmx).
type pageTemplate struct {
	t *template.Template
}

// View is what every page template receives.
type View struct {
	// Title is the page's title, shown in the <title> after the page's own.
	Title string
	// Nav is the active navigation entry ("dashboard", "noisy", …).
	Nav string
	// Session is the signed-in person, nil on public pages.
	Session *SessionView
	// CSRF is the session's token: {{template "csrf" .}} puts it in a form.
	CSRF string
	// Poll is how often live pages refresh themselves, in seconds.
	Poll int
	// Error is an API error to show above the content.
	Error *APIError
	// Notice is a one-line message shown above the content ("Tenant
	// suspended.").
	Notice string
	// Data is the page's own data.
	Data any
}

// SessionView is the signed-in person as pages show them.
type SessionView struct {
	Operator bool
	Tenant   string
	Who      string
}

// funcs are the functions templates may call.
var funcs = template.FuncMap{
	"percent": func(ratio float64) string { // one decimal below 10%, where it tells
		p := math.Min(ratio, 9.99) * 100
		if p > 0 && p < 10 {
			return fmt.Sprintf("%.1f%%", p)
		}
		return fmt.Sprintf("%.0f%%", p)
	},
	"pct100": func(ratio float64) int { // for <meter>/<progress> bars, clamped
		return int(math.Round(math.Max(0, math.Min(ratio, 1)) * 100))
	},
	"ms":       func(v float64) string { return fmt.Sprintf("%.1f ms", v) },
	"num":      func(v float64) string { return fmt.Sprintf("%.2f", v) },
	"time":     func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"join":     strings.Join,
	"inc":      func(i int) int { return i + 1 },
	"lower":    strings.ToLower,
	"typename": func(s *apiSchema) string { return typeName(s) },
}

// mustParsePages parses every page under templates/ (templates/*.html and
// templates/*/*.html) with the layout. A page is named by its path under
// templates/ without ".html": "dashboard", "tenant/records". Files whose
// name starts with "_" are partials: shared definitions parsed into every
// page (such as templates/tenant/_nav.html redefining "tenantnav").
func mustParsePages() map[string]*pageTemplate {
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html"))
	var pageFiles []string
	err := fs.WalkDir(files, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".html") || p == "templates/layout.html" {
			return err
		}
		if strings.HasPrefix(path.Base(p), "_") {
			layout = template.Must(layout.ParseFS(files, p))
			return nil
		}
		pageFiles = append(pageFiles, p)
		return nil
	})
	if err != nil {
		panic(err)
	}
	pages := map[string]*pageTemplate{}
	for _, p := range pageFiles {
		name := strings.TrimSuffix(strings.TrimPrefix(p, "templates/"), ".html")
		pages[name] = &pageTemplate{t: template.Must(template.Must(layout.Clone()).ParseFS(files, p))}
	}
	return pages
}

// view fills the framework's part of a View for the request's session.
func (c *Console) view(s *session, title, nav string, data any) *View {
	v := &View{Title: title, Nav: nav, Poll: c.poll, Data: data}
	if s != nil {
		v.Session = &SessionView{Operator: s.Kind == kindOperator, Tenant: s.Tenant, Who: s.Who}
		v.CSRF = s.CSRF
	}
	return v
}

// render writes page with the layout around it.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, v *View) {
	c.execute(w, status, page, "layout", v)
}

// renderFragment writes one template a page defines, without the layout:
// the answer to an htmx request that swaps part of a page.
func (c *Console) renderFragment(w http.ResponseWriter, r *http.Request, page, name string, v *View) {
	c.execute(w, http.StatusOK, page, name, v)
}

func (c *Console) execute(w http.ResponseWriter, status int, page, name string, v *View) {
	p, ok := c.pages[page]
	if !ok {
		c.log.Error("console: no such page template", "page", page)
		http.Error(w, "console: no such page", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := p.t.ExecuteTemplate(&buf, name, v); err != nil {
		c.log.Error("console: page did not render", "page", page, "template", name, "err", err)
		http.Error(w, "console: the page did not render", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderError shows err on the error page: an *APIError with its status,
// code and detail; a 404 as the not-found page; anything else as a 500.
func (c *Console) renderError(w http.ResponseWriter, r *http.Request, s *session, status int, err error) {
	var ae *APIError
	if !errors.As(err, &ae) {
		c.log.Error("console: page failed", "path", r.URL.Path, "err", err)
		ae = &APIError{Status: http.StatusInternalServerError, Code: "internal", Title: "Internal error",
			Detail: "the console could not build this page; the server log says why"}
	}
	if ae.NotFound() {
		c.renderNotFound(w, r, s)
		return
	}
	if status == 0 {
		status = ae.Status
	}
	if isHTMX(r) { // an htmx swap shows the error in place
		c.renderFragment(w, r, "error", "problem", &View{Error: ae})
		return
	}
	c.render(w, r, status, "error", c.view(s, "Error", "", nil).withError(ae))
}

// renderNotFound shows the not-found page.
func (c *Console) renderNotFound(w http.ResponseWriter, r *http.Request, s *session) {
	c.render(w, r, http.StatusNotFound, "notfound", c.view(s, "Not found", "", path.Clean(r.URL.Path)))
}

// withError sets v's error and returns v.
func (v *View) withError(e *APIError) *View {
	v.Error = e
	return v
}

// isHTMX says whether r was made by htmx.
func isHTMX(r *http.Request) bool { return r.Header.Get("HX-Request") == "true" }
