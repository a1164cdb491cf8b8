package core

import (
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// The types below are the JSON bodies of the HTTP API (docs/api.md and
// internal/httpapi/openapi.json describe them): core
// returns them so that the command line and the API show the same thing.

// Tenant is a tenant as the operator sees it.
type Tenant struct {
	ID        tenant.ID        `json:"id"`
	Slug      tenant.Slug      `json:"slug"`
	Name      string           `json:"name"`
	Plan      string           `json:"plan"`
	Isolation tenant.Isolation `json:"isolation"`
	Status    tenant.Status    `json:"status"`
	CreatedAt time.Time        `json:"created_at"`
	UpdatedAt time.Time        `json:"updated_at"`
	// PurgeAt is when a deleting tenant's keys are shredded and its data
	// purged; absent unless Status is deleting (or deleted).
	PurgeAt *time.Time `json:"purge_at,omitempty"`
}

func tenantView(t *store.Tenant) *Tenant {
	return &Tenant{ID: t.ID, Slug: t.Slug, Name: t.Name, Plan: t.Plan, Isolation: t.Isolation,
		Status: t.Status, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt, PurgeAt: t.PurgeAt}
}

// List is one page of a listing.
type List[T any] struct {
	Items []T `json:"items"`
	// NextCursor continues the listing; empty when it is complete.
	NextCursor string `json:"next_cursor"`
}

// RecordList is a page of records.
type RecordList struct {
	Items []*Record `json:"items"`
	// NextCursor continues the listing; empty when it is complete.
	NextCursor string `json:"next_cursor"`
	// Total is the number of records matching the filter over all pages,
	// when the listing asked for it.
	Total *int64 `json:"total,omitempty"`
}

// User is a tenant user. The password hash is never shown.
type User struct {
	ID        store.UserID `json:"id"`
	Email     string       `json:"email"`
	Role      tenant.Role  `json:"role"`
	CreatedAt time.Time    `json:"created_at"`
}

func userView(u *store.User) *User {
	return &User{ID: u.ID, Email: u.Email, Role: u.Role, CreatedAt: u.CreatedAt}
}

// APIKey describes a key without its secret.
type APIKey struct {
	ID        store.APIKeyID `json:"id"`
	Name      string         `json:"name"`
	Role      tenant.Role    `json:"role"`
	CreatedBy string         `json:"created_by"`
	CreatedAt time.Time      `json:"created_at"`
	RevokedAt *time.Time     `json:"revoked_at,omitempty"`
}

func apiKeyView(k *store.APIKey) *APIKey {
	return &APIKey{ID: k.ID, Name: k.Name, Role: k.Role, CreatedBy: k.CreatedBy, CreatedAt: k.CreatedAt, RevokedAt: k.RevokedAt}
}

// NewAPIKey is a freshly created key: the only time its secret is shown.
type NewAPIKey struct {
	APIKey
	Key string `json:"key"`
}

// TokenPair is the answer to a login or refresh.
type TokenPair struct {
	AccessToken string `json:"access_token"`
	// RefreshToken is absent from a restricted answer (Scope set).
	RefreshToken string `json:"refresh_token,omitempty"`
	TokenType    string `json:"token_type"`
	// ExpiresIn is the access token's lifetime in seconds.
	ExpiresIn int64 `json:"expires_in"`
	// Scope is set when the access token is restricted to one purpose:
	// "mfa_enrollment" when the tenant's policy requires the user to enrol
	// in TOTP first. Such a token may only enrol; it comes without a
	// refresh token.
	Scope string `json:"scope,omitempty"`
}

// Collection describes a collection.
type Collection struct {
	Name   store.CollectionName `json:"name"`
	Schema json.RawMessage      `json:"schema,omitempty"`
	// EncryptedFields are the fields stored sealed; absent for none.
	EncryptedFields []string `json:"encrypted_fields,omitempty"`
	Indexes         []Index  `json:"indexes"`
	// Retention is how long records are kept, such as "90d"; absent for
	// ever. RetentionField is what their age counts from.
	Retention      string    `json:"retention,omitempty"`
	RetentionField string    `json:"retention_field,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// Index describes a declared index and its state.
type Index struct {
	// Name is the index's fields joined by commas, as errors name it.
	Name   string           `json:"name"`
	Fields []string         `json:"fields"`
	Unique bool             `json:"unique"`
	State  store.IndexState `json:"state"`
	// Error says why the build failed (state "failed").
	Error string `json:"error,omitempty"`
}

func collectionView(c *store.Collection) *Collection {
	v := &Collection{Name: c.Name, Schema: c.Schema, EncryptedFields: c.EncryptedFields, Indexes: make([]Index, 0, len(c.Indexes)), CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
	if c.Retention > 0 {
		v.Retention, v.RetentionField = formatRetention(c.Retention), retentionField(c)
	} else {
		v.RetentionField = c.RetentionField // declared, without effect until a retention is
	}
	for i := range c.Indexes {
		ix := &c.Indexes[i]
		v.Indexes = append(v.Indexes, Index{Name: ix.Name(), Fields: ix.Fields, Unique: ix.Unique, State: ix.State, Error: ix.Error})
	}
	return v
}

// Record is a record as clients see it.
type Record struct {
	ID        store.RecordID  `json:"id"`
	Version   int64           `json:"version"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
	Data      json.RawMessage `json:"data"`
}

// AppendJSON appends r's JSON encoding to b: the same bytes as
// json.Marshal(r), without reflection or re-validating Data, which the store
// holds as compact JSON already. Records are the hottest responses. (Ids and
// cursors are ASCII without quotes or backslashes, so Go's quoting is JSON's.)
func (r *Record) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendQuote(b, string(r.ID))
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, r.Version, 10)
	b = append(b, `,"created_at":"`...)
	b = r.CreatedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","updated_at":"`...)
	b = r.UpdatedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","data":`...)
	b = append(b, r.Data...)
	return append(b, '}')
}

// AppendRecordList appends the JSON encoding of a page of records to b, as
// Record.AppendJSON does for one.
func AppendRecordList(b []byte, l *RecordList) []byte {
	b = append(b, `{"items":[`...)
	for i, r := range l.Items {
		if i > 0 {
			b = append(b, ',')
		}
		b = r.AppendJSON(b)
	}
	b = append(b, `],"next_cursor":`...)
	b = strconv.AppendQuote(b, l.NextCursor)
	if l.Total != nil {
		b = append(b, `,"total":`...)
		b = strconv.AppendInt(b, *l.Total, 10)
	}
	return append(b, '}')
}

func recordView(r *store.Record) *Record {
	return &Record{ID: r.ID, Version: r.Version, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Data: r.Data}
}

// AuditEntry is one link of an audit chain; hashes are hex.
type AuditEntry struct {
	Seq       int64     `json:"seq"`
	Time      time.Time `json:"time"`
	Actor     string    `json:"actor"`
	Action    string    `json:"action"`
	Resource  string    `json:"resource"`
	RequestID string    `json:"request_id"`
	Outcome   string    `json:"outcome"`
	PrevHash  string    `json:"prev_hash"`
	Hash      string    `json:"hash"`
}

func auditView(e *store.AuditEntry) AuditEntry {
	return AuditEntry{Seq: e.Seq, Time: e.Time, Actor: e.Actor, Action: e.Action, Resource: e.Resource,
		RequestID: e.RequestID, Outcome: e.Outcome, PrevHash: hex.EncodeToString(e.PrevHash), Hash: hex.EncodeToString(e.Hash)}
}

// AuditVerification is the result of verifying an audit chain.
type AuditVerification struct {
	OK bool `json:"ok"`
	// Length is the number of entries.
	Length int64 `json:"length"`
	// Head is the hash of the last entry, hex; pin it to detect a later
	// truncation.
	Head        string `json:"head"`
	Checkpoints int    `json:"checkpoints"`
	// BrokenAt is the sequence number of the first entry that fails.
	BrokenAt int64  `json:"broken_at,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Start is the seq of the signed cut the chain starts at, when audit
	// retention removed the entries before it.
	Start int64 `json:"start,omitempty"`
}

// Usage is what a tenant stores now, against its plan's limits.
type Usage struct {
	Records    int64  `json:"records"`
	Bytes      int64  `json:"bytes"`
	Plan       string `json:"plan"`
	MaxRecords int64  `json:"max_records"`
	MaxBytes   int64  `json:"max_bytes"`
}
