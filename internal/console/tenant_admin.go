package console

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// apiKeyInfo is an API key as the API lists it (never with its secret).
type apiKeyInfo struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Role      string     `json:"role"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at"`
}

// newAPIKey is the answer to creating a key: the only time it holds the
// secret.
type newAPIKey struct {
	apiKeyInfo
	Key string `json:"key"`
}

// keysData is the API keys page's data.
type keysData struct {
	Slug  string
	Items []apiKeyInfo
	Roles []string
	// ListError is the API's refusal to list the keys (a viewer's 403):
	// the page still shows the create form, whose answer is the API's.
	ListError *APIError
	// Created is the key just created, shown this once.
	Created *newAPIKey
	// Name and Role are the create form's fields, kept after an error.
	Name, Role string
}

// tenantKeys lists the tenant's API keys, revoked ones included.
func (c *Console) tenantKeys(w http.ResponseWriter, r *http.Request, s *session) {
	c.showKeys(w, r, s, http.StatusOK, &keysData{Role: "viewer"}, nil)
}

// showKeys renders the keys page with d's form fields and an error.
func (c *Console) showKeys(w http.ResponseWriter, r *http.Request, s *session, status int, d *keysData, e *APIError) {
	slug := r.PathValue("slug")
	d.Slug, d.Roles = slug, roles
	var list struct {
		Items []apiKeyInfo `json:"items"`
	}
	var ok bool
	if d.ListError, ok = c.readOrRefusal(w, r, s, tenantAPI(slug, "api-keys"), &list); !ok {
		return
	}
	d.Items = list.Items
	v := c.view(s, "API keys", "t-keys", d)
	v.Notice, v.Error = doneNotice(r), e
	c.render(w, r, status, "tenant/keys", v)
}

// tenantCreateKey creates an API key and shows its secret, this once: the
// answer is not stored (Cache-Control: no-store) and reloading the page
// shows the list without it.
func (c *Console) tenantCreateKey(w http.ResponseWriter, r *http.Request, s *session) {
	slug := r.PathValue("slug")
	d := &keysData{Name: strings.TrimSpace(r.PostFormValue("name")), Role: r.PostFormValue("role")}
	var k newAPIKey
	err := c.call(r, s, http.MethodPost, tenantAPI(slug, "api-keys"), map[string]string{"name": d.Name, "role": d.Role}, &k)
	if ae := asAPIError(err); ae != nil {
		if ae.NotFound() {
			c.renderNotFound(w, r, s)
			return
		}
		c.showKeys(w, r, s, ae.Status, d, ae)
		return
	}
	d = &keysData{Created: &k, Role: "viewer"}
	c.showKeys(w, r, s, http.StatusCreated, d, nil)
}

// confirmData is a confirmation page's data: what is about to happen and
// the form that does it.
type confirmData struct {
	Slug, Kind, Action, Back string
	Heading, Text, Button    string
}

// tenantRevokeKeyConfirm asks to confirm revoking a key.
func (c *Console) tenantRevokeKeyConfirm(w http.ResponseWriter, r *http.Request, s *session) {
	slug, id := r.PathValue("slug"), r.PathValue("id")
	var list struct {
		Items []apiKeyInfo `json:"items"`
	}
	if err := c.call(r, s, http.MethodGet, tenantAPI(slug, "api-keys"), nil, &list); err != nil {
		c.renderError(w, r, s, 0, err)
		return
	}
	for _, k := range list.Items {
		if k.ID != id || k.RevokedAt != nil {
			continue
		}
		d := &confirmData{Slug: slug, Kind: "revoke-key", Action: tenantPath(slug, "keys/"+url.PathEscape(id)+"/revoke"),
			Back: tenantPath(slug, "keys"), Heading: "Revoke the API key " + k.Name + "?",
			Text:   "Requests made with the key " + k.Name + " (role " + k.Role + ", id " + k.ID + ") are refused from the moment it is revoked. This cannot be undone.",
			Button: "Revoke key"}
		c.render(w, r, http.StatusOK, "tenant/confirm", c.view(s, "Revoke an API key", "t-keys", d))
		return
	}
	c.renderNotFound(w, r, s)
}

// tenantRevokeKey revokes a key.
func (c *Console) tenantRevokeKey(w http.ResponseWriter, r *http.Request, s *session) {
	slug, id := r.PathValue("slug"), r.PathValue("id")
	if err := c.call(r, s, http.MethodDelete, tenantAPI(slug, "api-keys/"+url.PathEscape(id)), nil, nil); err != nil {
		ae := asAPIError(err)
		if ae.NotFound() {
			c.renderNotFound(w, r, s)
			return
		}
		c.showKeys(w, r, s, ae.Status, &keysData{Role: "viewer"}, ae)
		return
	}
	redirectDone(w, r, tenantPath(slug, "keys"), "revoked")
}

// userInfo is a tenant user as the API lists it.
type userInfo struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

// usersData is the users page's data.
type usersData struct {
	Slug      string
	Items     []userInfo
	Roles     []string
	ListError *APIError
	// Email and Role are the create form's fields, kept after an error
	// (the password never is).
	Email, Role string
}

// tenantUsers lists the tenant's users with their roles.
func (c *Console) tenantUsers(w http.ResponseWriter, r *http.Request, s *session) {
	c.showUsers(w, r, s, http.StatusOK, &usersData{Role: "member"}, nil)
}

// showUsers renders the users page with d's form fields and an error.
func (c *Console) showUsers(w http.ResponseWriter, r *http.Request, s *session, status int, d *usersData, e *APIError) {
	slug := r.PathValue("slug")
	d.Slug, d.Roles = slug, roles
	var list struct {
		Items []userInfo `json:"items"`
	}
	var ok bool
	if d.ListError, ok = c.readOrRefusal(w, r, s, tenantAPI(slug, "users"), &list); !ok {
		return
	}
	d.Items = list.Items
	v := c.view(s, "Users", "t-users", d)
	v.Notice, v.Error = doneNotice(r), e
	c.render(w, r, status, "tenant/users", v)
}

// tenantCreateUser adds a user with a password and a role.
func (c *Console) tenantCreateUser(w http.ResponseWriter, r *http.Request, s *session) {
	slug := r.PathValue("slug")
	d := &usersData{Email: strings.TrimSpace(r.PostFormValue("email")), Role: r.PostFormValue("role")}
	body := map[string]string{"email": d.Email, "password": r.PostFormValue("password"), "role": d.Role}
	if err := c.call(r, s, http.MethodPost, tenantAPI(slug, "users"), body, nil); err != nil {
		ae := asAPIError(err)
		if ae.NotFound() {
			c.renderNotFound(w, r, s)
			return
		}
		c.showUsers(w, r, s, ae.Status, d, ae)
		return
	}
	redirectDone(w, r, tenantPath(slug, "users"), "user")
}

// tenantUserRole gives a user another role.
func (c *Console) tenantUserRole(w http.ResponseWriter, r *http.Request, s *session) {
	slug, id := r.PathValue("slug"), r.PathValue("id")
	err := c.call(r, s, http.MethodPatch, tenantAPI(slug, "users/"+url.PathEscape(id)), map[string]string{"role": r.PostFormValue("role")}, nil)
	if ae := asAPIError(err); ae != nil {
		if ae.NotFound() {
			c.renderNotFound(w, r, s)
			return
		}
		c.showUsers(w, r, s, ae.Status, &usersData{Role: "member"}, ae)
		return
	}
	redirectDone(w, r, tenantPath(slug, "users"), "role")
}

// userActions are the confirmed actions on a user: what the confirmation
// page says and where its form posts.
var userActions = map[string]struct {
	kind, title, heading, text, button, path string
}{
	"delete": {"remove-user", "Remove a user", "Remove the user %s?",
		"%s (role %s) loses access at once: their sessions end and they can no longer sign in. This cannot be undone.",
		"Remove user", "delete"},
	"totp-reset": {"reset-totp", "Reset two-factor sign-in", "Reset the two-factor sign-in of %s?",
		"%s (role %s) signs in with their password alone from now on, and enrols again if the tenant's policy asks it of their role. Their recovery codes stop working.",
		"Reset two-factor", "totp-reset"},
}

// tenantUserConfirm asks to confirm an action on a user ({action} is
// delete or totp-reset).
func (c *Console) tenantUserConfirm(w http.ResponseWriter, r *http.Request, s *session) {
	slug, id := r.PathValue("slug"), r.PathValue("id")
	act, ok := userActions[r.PathValue("action")]
	if !ok {
		c.renderNotFound(w, r, s)
		return
	}
	var list struct {
		Items []userInfo `json:"items"`
	}
	if err := c.call(r, s, http.MethodGet, tenantAPI(slug, "users"), nil, &list); err != nil {
		c.renderError(w, r, s, 0, err)
		return
	}
	for _, u := range list.Items {
		if u.ID != id {
			continue
		}
		d := &confirmData{Slug: slug, Kind: act.kind, Action: tenantPath(slug, "users/"+url.PathEscape(id)+"/"+act.path),
			Back: tenantPath(slug, "users"), Heading: fmt.Sprintf(act.heading, u.Email),
			Text: fmt.Sprintf(act.text, u.Email, u.Role), Button: act.button}
		c.render(w, r, http.StatusOK, "tenant/confirm", c.view(s, act.title, "t-users", d))
		return
	}
	c.renderNotFound(w, r, s)
}

// tenantUnlockUser lifts a user's sign-in lock-out and forgets their
// failed logins (the API answers 204 whether or not they were locked).
func (c *Console) tenantUnlockUser(w http.ResponseWriter, r *http.Request, s *session) {
	c.userDelete(w, r, s, "lockout", "unlocked", nil)
}

// tenantResetTOTP removes a user's TOTP enrolment and recovery codes.
func (c *Console) tenantResetTOTP(w http.ResponseWriter, r *http.Request, s *session) {
	c.userDelete(w, r, s, "totp", "totp", &APIError{Status: http.StatusNotFound, Code: "not_found", Title: "Not Found",
		Detail: "that user has no two-factor enrolment to reset"})
}

// userDelete calls DELETE …/users/{id}/<what> and goes back to the users
// page with the done notice; a 404 is shown as missing (when not nil)
// rather than as the not-found page, since the user is listed.
func (c *Console) userDelete(w http.ResponseWriter, r *http.Request, s *session, what, done string, missing *APIError) {
	slug, id := r.PathValue("slug"), r.PathValue("id")
	if err := c.call(r, s, http.MethodDelete, tenantAPI(slug, "users/"+url.PathEscape(id)+"/"+what), nil, nil); err != nil {
		ae := asAPIError(err)
		if ae.NotFound() && missing != nil && c.call(r, s, http.MethodGet, tenantAPI(slug, "users"), nil, nil) == nil {
			ae = missing
		} else if ae.NotFound() {
			c.renderNotFound(w, r, s)
			return
		}
		c.showUsers(w, r, s, ae.Status, &usersData{Role: "member"}, ae)
		return
	}
	redirectDone(w, r, tenantPath(slug, "users"), done)
}

// tenantDeleteUser removes a user.
func (c *Console) tenantDeleteUser(w http.ResponseWriter, r *http.Request, s *session) {
	slug, id := r.PathValue("slug"), r.PathValue("id")
	if err := c.call(r, s, http.MethodDelete, tenantAPI(slug, "users/"+url.PathEscape(id)), nil, nil); err != nil {
		ae := asAPIError(err)
		if ae.NotFound() {
			c.renderNotFound(w, r, s)
			return
		}
		c.showUsers(w, r, s, ae.Status, &usersData{Role: "member"}, ae)
		return
	}
	redirectDone(w, r, tenantPath(slug, "users"), "removed")
}

// tenantAuditData is the tenant audit page's data.
type tenantAuditData struct {
	Slug         string
	Items        []auditEntry
	After        int64
	Next         string
	Verification *chainVerification
	VerifyError  *APIError
	// ListError is the API's refusal to list the entries.
	ListError *APIError
}

// chainVerification is the answer of GET …/audit/verify.
type chainVerification struct {
	OK          bool   `json:"ok"`
	Length      int64  `json:"length"`
	Head        string `json:"head"`
	Checkpoints int64  `json:"checkpoints"`
	BrokenAt    int64  `json:"broken_at"`
	Reason      string `json:"reason"`
	Start       int64  `json:"start"`
}

// tenantAuditPageSize is how many audit entries a page shows.
const tenantAuditPageSize = 50

// tenantAudit shows the tenant's audit chain a page at a time (oldest
// first, after a sequence number) and whether the whole chain verifies.
func (c *Console) tenantAudit(w http.ResponseWriter, r *http.Request, s *session) {
	slug := r.PathValue("slug")
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	after = max(after, 0)
	q := url.Values{"limit": {strconv.Itoa(tenantAuditPageSize)}, "after": {strconv.FormatInt(after, 10)}}
	var page struct {
		Items      []auditEntry `json:"items"`
		NextCursor string       `json:"next_cursor"`
	}
	d := &tenantAuditData{Slug: slug, After: after}
	// A refusal to list (the operator may verify a tenant's chain but not
	// read it) still shows the verification.
	var ok bool
	if d.ListError, ok = c.readOrRefusal(w, r, s, tenantAPI(slug, "audit?"+q.Encode()), &page); !ok {
		return
	}
	d.Items, d.Next = page.Items, page.NextCursor
	var ver chainVerification
	if err := c.call(r, s, http.MethodGet, tenantAPI(slug, "audit/verify"), nil, &ver); err != nil {
		d.VerifyError = asAPIError(err)
	} else {
		d.Verification = &ver
	}
	c.render(w, r, http.StatusOK, "tenant/audit", c.view(s, "Audit", "t-audit", d))
}
