package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// collectionInfo is a collection as GET …/collections[/{c}] answers it.
type collectionInfo struct {
	Name            string          `json:"name"`
	Schema          json.RawMessage `json:"schema"`
	EncryptedFields []string        `json:"encrypted_fields"`
	Indexes         []indexInfo     `json:"indexes"`
	CreatedAt       time.Time       `json:"created_at"`
	UpdatedAt       time.Time       `json:"updated_at"`
	Retention       string          `json:"retention"`
	RetentionField  string          `json:"retention_field"`
	// Records is the number of records; -1 when not counted.
	Records int64 `json:"-"`
}

// SchemaJSON is the collection's JSON Schema, indented; "" for none.
func (ci collectionInfo) SchemaJSON() string { return prettyJSON(ci.Schema) }

// indexInfo is one declared index of a collection and its state.
type indexInfo struct {
	Name   string   `json:"name"`
	Fields []string `json:"fields"`
	Unique bool     `json:"unique"`
	State  string   `json:"state"`
	Error  string   `json:"error"`
}

// usageInfo is GET …/usage: what the tenant stores against its plan.
type usageInfo struct {
	Records    int64  `json:"records"`
	Bytes      int64  `json:"bytes"`
	Plan       string `json:"plan"`
	MaxRecords int64  `json:"max_records"`
	MaxBytes   int64  `json:"max_bytes"`
}

// collectionsData is the collections page's data.
type collectionsData struct {
	Slug  string
	Items []collectionInfo
	Usage *usageInfo
	// ListError is the API's refusal to list the collections (a viewer's
	// 403): the page still offers to open a collection by name.
	ListError *APIError
	// Name and Schema are the create form's fields, kept after an error.
	Name, Schema string
}

// maxCounted is how many collections the collections page counts the
// records of: each count is an API call, taken from the tenant's rate
// limit like any other, so a tenant with more collections sees no counts
// (the usage figures still give the total).
const maxCounted = 5

// tenantCollections lists the tenant's collections, with their record
// counts when there are few, and the tenant's usage against its plan.
func (c *Console) tenantCollections(w http.ResponseWriter, r *http.Request, s *session) {
	if name := strings.TrimSpace(r.URL.Query().Get("open")); name != "" { // the "open a collection" form
		http.Redirect(w, r, tenantPath(r.PathValue("slug"), "collections/"+url.PathEscape(name)), http.StatusSeeOther)
		return
	}
	c.showCollections(w, r, s, http.StatusOK, &collectionsData{}, nil)
}

// showCollections renders the collections page with the create form's
// fields of d and an error above it.
func (c *Console) showCollections(w http.ResponseWriter, r *http.Request, s *session, status int, d *collectionsData, e *APIError) {
	slug := r.PathValue("slug")
	d.Slug = slug
	var list struct {
		Items []collectionInfo `json:"items"`
	}
	var ok bool
	if d.ListError, ok = c.readOrRefusal(w, r, s, tenantAPI(slug, "collections"), &list); !ok {
		return
	}
	d.Items = list.Items
	for i := range d.Items {
		d.Items[i].Records = -1
		if len(d.Items) > maxCounted {
			continue
		}
		var page struct {
			Total *int64 `json:"total"`
		}
		p := tenantAPI(slug, "collections/"+url.PathEscape(d.Items[i].Name)+"/records?limit=1&count=true")
		if c.call(r, s, http.MethodGet, p, nil, &page) == nil && page.Total != nil {
			d.Items[i].Records = *page.Total
		}
	}
	var u usageInfo
	if c.call(r, s, http.MethodGet, tenantAPI(slug, "usage"), nil, &u) == nil {
		d.Usage = &u
	}
	v := c.view(s, "Collections", "t-collections", d)
	v.Notice, v.Error = doneNotice(r), e
	c.render(w, r, status, "tenant/collections", v)
}

// tenantCreateCollection creates a collection with an optional JSON
// Schema. It refuses a name that exists: PUT would replace that
// collection's schema and indexes, which is not what "create" means.
func (c *Console) tenantCreateCollection(w http.ResponseWriter, r *http.Request, s *session) {
	slug := r.PathValue("slug")
	d := &collectionsData{Name: strings.TrimSpace(r.PostFormValue("name")), Schema: strings.TrimSpace(r.PostFormValue("schema"))}
	body := map[string]json.RawMessage{}
	if d.Schema != "" {
		if !json.Valid([]byte(d.Schema)) {
			c.showCollections(w, r, s, http.StatusBadRequest, d, &APIError{Status: http.StatusBadRequest, Code: "invalid_json",
				Title: "Bad Request", Detail: "the schema is not valid JSON"})
			return
		}
		body["schema"] = json.RawMessage(d.Schema)
	}
	if d.Name == "" {
		c.showCollections(w, r, s, http.StatusBadRequest, d, &APIError{Status: http.StatusBadRequest, Code: "invalid_request",
			Title: "Bad Request", Detail: "give the collection a name"})
		return
	}
	// The list, not a GET of the name: a GET of a missing collection is
	// audited as a denied access.
	var list struct {
		Items []collectionInfo `json:"items"`
	}
	if c.call(r, s, http.MethodGet, tenantAPI(slug, "collections"), nil, &list) == nil {
		for _, ci := range list.Items {
			if ci.Name == d.Name {
				c.showCollections(w, r, s, http.StatusConflict, d, &APIError{Status: http.StatusConflict, Code: "conflict",
					Title: "Conflict", Detail: "a collection named " + d.Name + " exists"})
				return
			}
		}
	}
	path := tenantAPI(slug, "collections/"+url.PathEscape(d.Name))
	if p := c.tcall(r, s, http.MethodPut, path, nil, body, nil); p != nil {
		c.showCollections(w, r, s, p.Status, d, p.APIError)
		return
	}
	redirectDone(w, r, tenantPath(slug, "collections/"+url.PathEscape(d.Name)+"/schema"), "collection")
}

// collectionData is the collection detail page's data.
type collectionData struct {
	Slug string
	Coll collectionInfo
}

// tenantCollection shows one collection: its JSON Schema, indexes (with
// their state), encrypted fields and retention.
func (c *Console) tenantCollection(w http.ResponseWriter, r *http.Request, s *session) {
	slug, coll := r.PathValue("slug"), r.PathValue("coll")
	d := &collectionData{Slug: slug}
	if err := c.call(r, s, http.MethodGet, tenantAPI(slug, "collections/"+url.PathEscape(coll)), nil, &d.Coll); err != nil {
		c.renderError(w, r, s, 0, err)
		return
	}
	v := c.view(s, "Collection "+coll, "t-collections", d)
	v.Notice = doneNotice(r)
	c.render(w, r, http.StatusOK, "tenant/collection", v)
}

// recordInfo is a record as the API answers it.
type recordInfo struct {
	ID        string          `json:"id"`
	Version   int64           `json:"version"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
	Data      json.RawMessage `json:"data"`
}

// recordRow is a record of the browser's table: its data's top-level
// members as short texts, by column.
type recordRow struct {
	recordInfo
	Cells []string
}

// recordsData is the records browser's data.
type recordsData struct {
	Slug, Coll           string
	Filter, Order, Limit string
	// Cursor is the page's cursor ("" on the first page); Next the next
	// page's URL ("" on the last); First the first page's URL.
	Cursor, Next, First string
	Columns             []string
	Items               []recordRow
	Total               *int64
	// Problem is the API's refusal of the query (a bad filter, order,
	// limit or cursor); FilterBefore/FilterAfter split the filter at the
	// position of a filter error.
	Problem                   *tenantProblem
	FilterBefore, FilterAfter string
	// NewData is the create form's text, kept after an error; NewProblem
	// the create's refusal.
	NewData    string
	NewProblem *tenantProblem
}

// maxColumns is how many of the records' data members the table shows as
// columns; the record's page shows everything.
const maxColumns = 8

// tenantRecords is the records browser: a page of the collection's
// records matching the filter, in order, with Next and Back to first
// (the API's opaque cursor). An htmx request gets the results alone.
func (c *Console) tenantRecords(w http.ResponseWriter, r *http.Request, s *session) {
	c.showRecords(w, r, s, http.StatusOK, &recordsData{}, "")
}

// showRecords renders the records browser for the request's query, with
// d's create-form fields.
func (c *Console) showRecords(w http.ResponseWriter, r *http.Request, s *session, status int, d *recordsData, notice string) {
	slug, coll := r.PathValue("slug"), r.PathValue("coll")
	q := r.URL.Query()
	if r.Method != http.MethodGet {
		q = url.Values{} // after a failed create: the first page
	}
	d.Slug, d.Coll = slug, coll
	d.Filter, d.Order, d.Limit, d.Cursor = q.Get("filter"), q.Get("order"), q.Get("limit"), q.Get("cursor")
	base := url.Values{}
	for k, v := range map[string]string{"filter": d.Filter, "order": d.Order, "limit": d.Limit} {
		if v != "" {
			base.Set(k, v)
		}
	}
	self := tenantPath(slug, "collections/"+url.PathEscape(coll))
	d.First = self
	if len(base) > 0 {
		d.First += "?" + base.Encode()
	}
	api := url.Values{}
	for k, v := range base {
		api[k] = v
	}
	if d.Cursor != "" {
		api.Set("cursor", d.Cursor)
	} else {
		api.Set("count", "true")
	}
	var page struct {
		Items      []recordInfo `json:"items"`
		NextCursor string       `json:"next_cursor"`
		Total      *int64       `json:"total"`
	}
	if p := c.tcall(r, s, http.MethodGet, tenantAPI(slug, "collections/"+url.PathEscape(coll)+"/records?"+api.Encode()), nil, nil, &page); p != nil {
		if p.NotFound() {
			c.renderNotFound(w, r, s)
			return
		}
		d.Problem = p
		if p.Code == "invalid_filter" || p.Code == "unknown_field" || p.Code == "encrypted_field" {
			if p.Position >= 0 && p.Position <= len(d.Filter) {
				d.FilterBefore, d.FilterAfter = d.Filter[:p.Position], d.Filter[p.Position:]
			}
		}
		if status == http.StatusOK {
			status = p.Status
		}
	}
	d.Total = page.Total
	if page.NextCursor != "" {
		next := url.Values{}
		for k, v := range base {
			next[k] = v
		}
		next.Set("cursor", page.NextCursor)
		d.Next = self + "?" + next.Encode()
	}
	d.Columns, d.Items = recordTable(page.Items)
	v := c.view(s, "Records of "+coll, "t-collections", d)
	v.Notice = notice
	if v.Notice == "" {
		v.Notice = doneNotice(r)
	}
	w.Header().Set("Vary", "HX-Request, HX-History-Restore-Request") // the same URL answers a fragment to htmx
	// htmx restoring a page of its history it no longer holds asks for the
	// whole page.
	if isHTMX(r) && r.Header.Get("HX-History-Restore-Request") != "true" {
		c.renderFragment(w, r, "tenant/records", "results", v)
		return
	}
	c.render(w, r, status, "tenant/records", v)
}

// recordTable lays records out as a table: the data's top-level members
// (the first maxColumns by name) as columns, each cell a short text.
func recordTable(items []recordInfo) ([]string, []recordRow) {
	datas := make([]map[string]json.RawMessage, len(items))
	seen := map[string]bool{}
	var cols []string
	for i, it := range items {
		_ = json.Unmarshal(it.Data, &datas[i])
		for k := range datas[i] {
			if !seen[k] {
				seen[k] = true
				cols = append(cols, k)
			}
		}
	}
	slices.Sort(cols)
	if len(cols) > maxColumns {
		cols = cols[:maxColumns]
	}
	rows := make([]recordRow, len(items))
	for i, it := range items {
		rows[i] = recordRow{recordInfo: it, Cells: make([]string, len(cols))}
		for j, col := range cols {
			rows[i].Cells[j] = cellText(datas[i][col])
		}
	}
	return cols, rows
}

// cellText is a data member as a table cell: a string as itself, anything
// else as compact JSON, cut at 80 characters; "" for a missing member.
func cellText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var str string
	t := string(raw)
	if json.Unmarshal(raw, &str) == nil {
		t = str
	} else {
		var b bytes.Buffer
		if json.Compact(&b, raw) == nil {
			t = b.String()
		}
	}
	if r := []rune(t); len(r) > 80 {
		t = string(r[:79]) + "…"
	}
	return t
}

// tenantCreateRecord stores the form's JSON object as a new record and
// opens it.
func (c *Console) tenantCreateRecord(w http.ResponseWriter, r *http.Request, s *session) {
	slug, coll := r.PathValue("slug"), r.PathValue("coll")
	d := &recordsData{NewData: r.PostFormValue("data")}
	if p := localJSONObject(d.NewData); p != nil {
		d.NewProblem = p
		c.showRecords(w, r, s, p.Status, d, "")
		return
	}
	var rec recordInfo
	p := c.tcall(r, s, http.MethodPost, tenantAPI(slug, "collections/"+url.PathEscape(coll)+"/records"), nil,
		json.RawMessage(d.NewData), &rec)
	if p != nil {
		if p.NotFound() {
			c.renderNotFound(w, r, s)
			return
		}
		d.NewProblem = p
		c.showRecords(w, r, s, p.Status, d, "")
		return
	}
	redirectDone(w, r, tenantPath(slug, "collections/"+url.PathEscape(coll)+"/records/"+url.PathEscape(rec.ID)), "created")
}

// localJSONObject refuses, as the API would, a text that is not one JSON
// object, before it is sent.
func localJSONObject(text string) *tenantProblem {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(text))
	if err := dec.Decode(&m); err != nil || m == nil || dec.More() {
		return &tenantProblem{APIError: &APIError{Status: http.StatusBadRequest, Code: "invalid_json", Title: "Bad Request",
			Detail: "the record's data must be one JSON object, such as {\"title\": \"write docs\"}"}, Position: -1}
	}
	return nil
}

// recordData is a record page's data.
type recordData struct {
	Slug, Coll string
	Record     recordInfo
	// JSON is the whole record, indented; Edit the edit form's text (the
	// data, or what the person typed when their edit was refused) and
	// Version the version the edit applies to.
	JSON    string
	Edit    string
	Version int64
	// Problem is the refusal of an edit or a delete; Conflict says it was
	// 409 or 412, explained in plain words.
	Problem  *tenantProblem
	Conflict string
}

// tenantRecord shows one record (JSON) with the forms that edit and
// delete it.
func (c *Console) tenantRecord(w http.ResponseWriter, r *http.Request, s *session) {
	c.showRecord(w, r, s, http.StatusOK, &recordData{}, doneNotice(r))
}

// showRecord renders a record's page; d may carry a refused edit.
func (c *Console) showRecord(w http.ResponseWriter, r *http.Request, s *session, status int, d *recordData, notice string) {
	slug, coll, id := r.PathValue("slug"), r.PathValue("coll"), r.PathValue("id")
	d.Slug, d.Coll = slug, coll
	raw := json.RawMessage{}
	if err := c.call(r, s, http.MethodGet, recordAPI(slug, coll, id), nil, &raw); err != nil {
		c.renderError(w, r, s, 0, err)
		return
	}
	if err := json.Unmarshal(raw, &d.Record); err != nil {
		c.renderError(w, r, s, 0, err)
		return
	}
	d.JSON = prettyJSON(raw)
	if d.Edit == "" {
		d.Edit = prettyJSON(d.Record.Data)
	}
	d.Version = d.Record.Version
	v := c.view(s, "Record "+id, "t-collections", d)
	v.Notice = notice
	c.render(w, r, status, "tenant/record", v)
}

// recordAPI is the API path of a record.
func recordAPI(slug, coll, id string) string {
	return tenantAPI(slug, "collections/"+url.PathEscape(coll)+"/records/"+url.PathEscape(id))
}

// ifMatch is the If-Match header of a write to version.
func ifMatch(version string) http.Header {
	return http.Header{"If-Match": {`"` + version + `"`}}
}

// tenantUpdateRecord saves the edit form: the new data replaces the old,
// sent as the JSON merge patch that turns the one into the other, applied
// only if the record is still at the version the form was opened at.
func (c *Console) tenantUpdateRecord(w http.ResponseWriter, r *http.Request, s *session) {
	slug, coll, id := r.PathValue("slug"), r.PathValue("coll"), r.PathValue("id")
	d := &recordData{Edit: r.PostFormValue("data")}
	version := r.PostFormValue("version")
	if _, err := strconv.ParseInt(version, 10, 64); err != nil {
		d.Problem = &tenantProblem{APIError: &APIError{Status: http.StatusBadRequest, Code: "invalid_request", Title: "Bad Request",
			Detail: "the form lacks the record's version; reload the page"}, Position: -1}
		c.showRecord(w, r, s, http.StatusBadRequest, d, "")
		return
	}
	if p := localJSONObject(d.Edit); p != nil {
		d.Problem = p
		c.showRecord(w, r, s, p.Status, d, "")
		return
	}
	var cur recordInfo
	if err := c.call(r, s, http.MethodGet, recordAPI(slug, coll, id), nil, &cur); err != nil {
		c.renderError(w, r, s, 0, err)
		return
	}
	patch, err := mergePatch(cur.Data, json.RawMessage(d.Edit))
	if err != nil {
		c.renderError(w, r, s, 0, err)
		return
	}
	var saved recordInfo
	if p := c.tcall(r, s, http.MethodPatch, recordAPI(slug, coll, id), ifMatch(version), patch, &saved); p != nil {
		if p.NotFound() {
			c.renderNotFound(w, r, s)
			return
		}
		d.Problem, d.Conflict = p, conflictText(p, "saved")
		c.showRecord(w, r, s, p.Status, d, "")
		return
	}
	c.showRecord(w, r, s, http.StatusOK, &recordData{}, fmt.Sprintf("Record saved: version %d.", saved.Version))
}

// tenantDeleteRecord deletes a record, only if it is still at the version
// the page showed and the person ticked the confirmation.
func (c *Console) tenantDeleteRecord(w http.ResponseWriter, r *http.Request, s *session) {
	slug, coll, id := r.PathValue("slug"), r.PathValue("coll"), r.PathValue("id")
	version := r.PostFormValue("version")
	if r.PostFormValue("confirm") != "yes" {
		d := &recordData{Problem: &tenantProblem{APIError: &APIError{Status: http.StatusBadRequest, Code: "confirmation_required",
			Title: "Bad Request", Detail: "tick the box to confirm the deletion"}, Position: -1}}
		c.showRecord(w, r, s, http.StatusBadRequest, d, "")
		return
	}
	if p := c.tcall(r, s, http.MethodDelete, recordAPI(slug, coll, id), ifMatch(version), nil, nil); p != nil {
		if p.NotFound() {
			c.renderNotFound(w, r, s)
			return
		}
		d := &recordData{Problem: p, Conflict: conflictText(p, "deleted")}
		c.showRecord(w, r, s, p.Status, d, "")
		return
	}
	redirectDone(w, r, tenantPath(slug, "collections/"+url.PathEscape(coll)), "deleted")
}

// conflictText explains a 409 or 412 in plain words; "" for other
// refusals.
func conflictText(p *tenantProblem, what string) string {
	switch p.Status {
	case http.StatusPreconditionFailed:
		return "Someone changed this record after you opened it, so it was not " + what +
			". The page now shows the current record; your text is kept in the form. Compare, then try again."
	case http.StatusConflict:
		return "The record was not " + what + ": it conflicts with another record (" + p.Detail + ")."
	}
	return ""
}

// mergePatch is the JSON merge patch (RFC 7386) that turns the object
// from into the object to: members of from missing in to become null,
// objects present in both are patched member by member, anything else
// that differs is replaced. (A merge patch cannot set a member to null:
// null removes it.)
func mergePatch(from, to json.RawMessage) (map[string]any, error) {
	var a, b map[string]any
	for _, x := range []struct {
		raw json.RawMessage
		v   *map[string]any
	}{{from, &a}, {to, &b}} {
		dec := json.NewDecoder(bytes.NewReader(x.raw))
		dec.UseNumber()
		if err := dec.Decode(x.v); err != nil {
			return nil, fmt.Errorf("console: a record's data does not decode: %w", err)
		}
	}
	return diffObjects(a, b), nil
}

// diffObjects is mergePatch on decoded objects.
func diffObjects(from, to map[string]any) map[string]any {
	patch := map[string]any{}
	for k := range from {
		if _, ok := to[k]; !ok {
			patch[k] = nil
		}
	}
	for k, tv := range to {
		fv, had := from[k]
		fObj, fIsObj := fv.(map[string]any)
		tObj, tIsObj := tv.(map[string]any)
		switch {
		case had && fIsObj && tIsObj:
			if sub := diffObjects(fObj, tObj); len(sub) > 0 {
				patch[k] = sub
			}
		case !had || !reflect.DeepEqual(fv, tv):
			patch[k] = tv
		}
	}
	return patch
}
