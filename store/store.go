// Package store is bulkhead's persistence contract. Every statement on tenant
// data runs inside Store.InTenant or Store.ReadTenant, which take the tenant as
// an argument: there is no way to build a tenant query without naming the
// tenant. Backends (sqlitestore, pgstore) implement Store and pass the
// conformance suite in storetest.
package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/bulkheadhq/bulkhead/filter"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// Store is implemented by sqlitestore and pgstore. All methods are safe for
// concurrent use. Times passed in are stored with microsecond precision and
// returned in UTC. Any method, and any method of a Tx, may fail with an
// error wrapping ErrUnavailable or ErrStorageFull when the database cannot
// serve it; fn should pass a Tx's errors on wrapped with %w, not replace
// them, so that the caller of InTenant can still tell.
type Store interface {
	// InTenant runs fn in one read-write transaction confined to tid and
	// commits it if fn returns nil. It returns fn's error, ErrNoTenant if tid
	// is zero, and ErrNotFound if no such tenant exists. The Tx must not be
	// used after fn returns, and fn must not start another write (InTenant,
	// InPlatform, CreateTenant, DeleteTenant): a backend may have a single
	// writer, which is busy running fn.
	InTenant(ctx context.Context, tid tenant.ID, fn func(tx Tx) error) error
	// ReadTenant is InTenant for reads: fn sees one consistent snapshot and
	// the Tx's write methods return ErrReadOnly.
	ReadTenant(ctx context.Context, tid tenant.ID, fn func(tx Tx) error) error
	// InPlatform runs fn in one read-write transaction on the control plane:
	// tenants, plans and platform idempotency keys. It cannot reach tenant data.
	InPlatform(ctx context.Context, fn func(tx PlatformTx) error) error
	// ReadPlatform is InPlatform for reads.
	ReadPlatform(ctx context.Context, fn func(tx PlatformTx) error) error
	// CreateTenant provisions a tenant: its row, its storage (a silo
	// tenant's own database or schema) and whatever initTenant writes into
	// it in the tenant's first transaction (such as the first audit entry).
	// initPlatform runs in the control-plane transaction that inserts the
	// tenant's row (to audit the creation). Either all of it exists
	// afterwards or none of it. Either function may be nil. It returns
	// ErrConflict if the slug or id is taken.
	CreateTenant(ctx context.Context, params *CreateTenantParams, initPlatform func(tx PlatformTx) error, initTenant func(tx Tx) error) (*Tenant, error)
	// DeleteTenant removes the tenant and all its data. fn, if not nil, runs
	// in the control-plane transaction that deletes the tenant's row. It
	// returns ErrNotFound if no such tenant exists.
	DeleteTenant(ctx context.Context, tid tenant.ID, fn func(tx PlatformTx) error) error
	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	// LookupAPIKey reads, in one transaction, the API key id of tenant tid
	// together with the tenant's row and its plan: everything authenticating
	// a request by that key and scoping it to its tenant needs. It returns
	// ErrNotFound if the tenant or the key does not exist; a revoked key is
	// returned with RevokedAt set.
	LookupAPIKey(ctx context.Context, tid tenant.ID, id APIKeyID) (*KeyLookup, error)
	// BuildIndexes brings the physical indexes of tenant tid's collection in
	// line with its declared Indexes: it builds each index in state
	// IndexBuilding and marks it IndexReady (or IndexFailed, with the
	// reason, when its data violates a unique index), and drops physical
	// indexes no longer declared. It runs outside any caller's transaction
	// and never blocks other tenants' reads and writes for longer than a
	// catalog update (PostgreSQL builds CONCURRENTLY). It returns
	// ErrNotFound if the tenant or collection does not exist. Calling it
	// again after a crash finishes what was left.
	BuildIndexes(ctx context.Context, tid tenant.ID, collection CollectionName) error
	// PendingIndexBuilds lists the collections, across all tenants, with an
	// index still in state IndexBuilding, or a removed index whose physical
	// index the backend has yet to drop: what a restarted node resumes
	// with BuildIndexes (which returns ErrNotFound for a collection deleted
	// since, after dropping what was left of it).
	PendingIndexBuilds(ctx context.Context) ([]IndexBuild, error)
	// MaxConns is how many transactions can run at once before one waits
	// for a database connection, at least 1. A scheduler in front of the
	// store sizes its slots to it.
	MaxConns() int
	// Close releases the store's connections. Transactions in progress finish
	// first.
	Close() error
}

// PlatformTx is a transaction on the control plane.
type PlatformTx interface {
	// GetTenant returns ErrNotFound if no tenant has id.
	GetTenant(ctx context.Context, id tenant.ID) (*Tenant, error)
	// GetTenantBySlug returns ErrNotFound if no tenant has slug.
	GetTenantBySlug(ctx context.Context, slug tenant.Slug) (*Tenant, error)
	// ListTenants returns up to params.Limit tenants in (CreatedAt, ID) order,
	// starting after params.After.
	ListTenants(ctx context.Context, params *ListTenantsParams) ([]*Tenant, error)
	// UpdateTenant changes the non-nil fields of params and sets UpdatedAt. It
	// returns ErrNotFound if no tenant has params.ID, and ErrNotFound wrapped
	// if params.Plan names no plan.
	UpdateTenant(ctx context.Context, params *UpdateTenantParams) (*Tenant, error)

	// ListPlans returns every plan ordered by name.
	ListPlans(ctx context.Context) ([]*tenant.Plan, error)
	// GetPlan returns ErrNotFound if no plan has name.
	GetPlan(ctx context.Context, name string) (*tenant.Plan, error)
	// PutPlan creates or replaces the plan named plan.Name.
	PutPlan(ctx context.Context, plan *tenant.Plan) error

	// GetIdempotency returns the stored response for an operator's
	// Idempotency-Key, or ErrNotFound.
	GetIdempotency(ctx context.Context, key string) (*Idempotency, error)
	// PutIdempotency stores or replaces the response for rec.Key.
	PutIdempotency(ctx context.Context, rec *Idempotency) error

	// AuditLog is the platform's own audit chain, which records what the
	// operator does to tenants and plans.
	AuditLog

	// DataKeyStore keeps tenants' wrapped data keys.
	DataKeyStore
}

// DataKeyStore keeps tenants' data keys, wrapped by a key management
// service: the database never holds a key that opens anything by itself.
type DataKeyStore interface {
	// ListDataKeys returns tid's keys ordered by Purpose, then Version. A
	// zero tid lists every tenant's keys, ordered by tenant first.
	ListDataKeys(ctx context.Context, tid tenant.ID) ([]*DataKey, error)
	// CreateDataKey stores a new key. It returns ErrConflict if tid already
	// has a key of k.Purpose and k.Version, and ErrNotFound if no tenant
	// has k.Tenant.
	CreateDataKey(ctx context.Context, k *DataKey) error
	// UpdateDataKey replaces the State, Wrapped and UpdatedAt of the key
	// named by k's Tenant, Purpose and Version. It returns ErrNotFound if
	// there is none.
	UpdateDataKey(ctx context.Context, k *DataKey) error
	// DeleteDataKeys removes every key of tid; none is not an error.
	DeleteDataKeys(ctx context.Context, tid tenant.ID) error
}

// KeyPurpose says what a tenant's data key is for.
type KeyPurpose string

const (
	// PurposeData keys seal values (AES-256-GCM). They are versioned and
	// rotated.
	PurposeData KeyPurpose = "data"
	// PurposeIndex keys the blind index of encrypted fields (HMAC-SHA-256).
	// It does not change when data keys rotate, so that equality lookups
	// keep finding records sealed under any version.
	PurposeIndex KeyPurpose = "index"
)

// DataKeyState is the lifecycle state of a data key version.
type DataKeyState string

const (
	// KeyActive keys seal new values; one data key per tenant is active.
	KeyActive DataKeyState = "active"
	// KeyRetiring keys only open values, while a rotation re-seals what
	// they sealed.
	KeyRetiring DataKeyState = "retiring"
	// KeyRetired keys seal and open nothing: no stored value uses them any
	// more, and their wrapped material has been erased.
	KeyRetired DataKeyState = "retired"
)

// DataKey is one version of a tenant's data key, as the database keeps it:
// wrapped by the tenant's key in the key management service.
type DataKey struct {
	Tenant  tenant.ID
	Purpose KeyPurpose
	Version int
	State   DataKeyState
	// Wrapped is the key sealed by the key management service; nil once
	// the key is retired.
	Wrapped   []byte
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Tx is a transaction confined to one tenant. Every method reads and writes
// only that tenant's rows; ids of another tenant's rows behave as if they did
// not exist (ErrNotFound).
type Tx interface {
	// Tenant returns the tenant the transaction is confined to.
	Tenant() tenant.ID

	// CreateUser returns ErrConflict if the email is taken in this tenant.
	CreateUser(ctx context.Context, u *User) error
	// GetUser returns ErrNotFound if no user has id.
	GetUser(ctx context.Context, id UserID) (*User, error)
	// GetUserByEmail returns ErrNotFound if no user has email (exact match;
	// callers normalize).
	GetUserByEmail(ctx context.Context, email string) (*User, error)
	// ListUsers returns every user, oldest first.
	ListUsers(ctx context.Context) ([]*User, error)
	// SetUserRole changes the user's role, sets UpdatedAt to at and returns
	// the user. It returns ErrNotFound if no user has id.
	SetUserRole(ctx context.Context, id UserID, role tenant.Role, at time.Time) (*User, error)
	// DeleteUser removes the user and every refresh token, identity link,
	// TOTP enrolment, recovery code and remembered login address of
	// theirs. It returns ErrNotFound if no user has id.
	DeleteUser(ctx context.Context, id UserID) error

	// PutOIDCConfig creates or replaces the tenant's OIDC federation. On
	// replace, CreatedAt keeps its stored value.
	PutOIDCConfig(ctx context.Context, c *OIDCConfig) error
	// GetOIDCConfig returns ErrNotFound if the tenant has no federation.
	GetOIDCConfig(ctx context.Context) (*OIDCConfig, error)
	// DeleteOIDCConfig removes the federation, keeping identity links
	// (they name their issuer, so they serve again only if it comes back).
	// It returns ErrNotFound if there is none.
	DeleteOIDCConfig(ctx context.Context) error
	// CreateIdentityLink links (l.Issuer, l.Subject) to l.UserID. It
	// returns ErrConflict if that identity is linked already, and
	// ErrNotFound if no user has l.UserID.
	CreateIdentityLink(ctx context.Context, l *IdentityLink) error
	// GetIdentityLink returns the link of (issuer, subject), or
	// ErrNotFound.
	GetIdentityLink(ctx context.Context, issuer, subject string) (*IdentityLink, error)

	// CreateAPIKey stores a key; only its hash is kept.
	CreateAPIKey(ctx context.Context, k *APIKey) error
	// GetAPIKey returns the key, revoked or not, or ErrNotFound.
	GetAPIKey(ctx context.Context, id APIKeyID) (*APIKey, error)
	// ListAPIKeys returns every key, revoked ones included, oldest first.
	ListAPIKeys(ctx context.Context) ([]*APIKey, error)
	// RevokeAPIKey marks the key revoked at at. It returns ErrNotFound if no
	// such key exists or it is already revoked.
	RevokeAPIKey(ctx context.Context, id APIKeyID, at time.Time) error

	// CreateRefreshToken stores a refresh token; only its hash is kept.
	CreateRefreshToken(ctx context.Context, t *RefreshToken) error
	// GetRefreshToken returns the token or ErrNotFound.
	GetRefreshToken(ctx context.Context, id RefreshTokenID) (*RefreshToken, error)
	// UseRefreshToken marks an unused, unrevoked token used at at. It returns
	// ErrConflict if the token was already used or revoked, ErrNotFound if it
	// does not exist.
	UseRefreshToken(ctx context.Context, id RefreshTokenID, at time.Time) error
	// RevokeRefreshFamily revokes every token of the family.
	RevokeRefreshFamily(ctx context.Context, family string, at time.Time) error
	// RevokeUserRefreshTokens revokes every token of the user, in every
	// family.
	RevokeUserRefreshTokens(ctx context.Context, user UserID, at time.Time) error
	// RefreshFamilyEnded reports whether the family's session is over: the
	// family has no token (its user was deleted), or one of its tokens was
	// revoked.
	RefreshFamilyEnded(ctx context.Context, family string) (bool, error)

	// PutCollection creates the collection or replaces its schema and its
	// declared indexes. It reports whether it created it. On replace,
	// CreatedAt keeps its stored value. Each index of c.Indexes that was
	// already declared with the same Fields and Unique keeps its stored
	// State; a new one is stored in state IndexBuilding (c.Indexes' States
	// are ignored), and Store.BuildIndexes builds it after the commit.
	// Indexes no longer declared stop being used at once, but for one
	// thing: a backend that cannot drop an index inside a transaction
	// (pgstore) goes on refusing duplicates under a removed unique index
	// until Store.BuildIndexes has dropped it, and says so with a
	// *UniqueError naming it.
	PutCollection(ctx context.Context, c *Collection) (created bool, err error)
	// DeleteCollection removes the collection, its records and its
	// indexes' declarations, and subtracts the records from the usage. It
	// returns ErrNotFound if no collection has name. Physical indexes are
	// dropped by the next Store.BuildIndexes of that name, or left unused.
	DeleteCollection(ctx context.Context, name CollectionName) error
	// GetCollection returns ErrNotFound if no collection has name.
	GetCollection(ctx context.Context, name CollectionName) (*Collection, error)
	// ListCollections returns every collection ordered by name.
	ListCollections(ctx context.Context) ([]*Collection, error)

	// CreateRecord stores r with r.Version, which callers set to 1. It returns
	// ErrNotFound if the collection does not exist and ErrConflict if the id
	// is taken, or a *UniqueError (which wraps ErrConflict) if a unique
	// index of the collection already holds r's values. UpdateRecord
	// returns *UniqueError likewise. It adds one record and len(r.Data) bytes to the usage.
	CreateRecord(ctx context.Context, r *Record) error
	// GetRecord returns ErrNotFound if the collection holds no record id.
	GetRecord(ctx context.Context, collection CollectionName, id RecordID) (*Record, error)
	// UpdateRecord replaces the record's data, increments its version and
	// sets UpdatedAt. It returns ErrNotFound if the record does not exist and
	// ErrVersionMismatch if params.IfVersion is not zero and not the current
	// version. Usage bytes change by the size difference.
	UpdateRecord(ctx context.Context, params *UpdateRecordParams) (*Record, error)
	// DeleteRecord removes the record, with the same errors as UpdateRecord,
	// and returns what was deleted.
	DeleteRecord(ctx context.Context, collection CollectionName, id RecordID, ifVersion int64) (*Record, error)
	// ListRecords returns one page of records matching params, in
	// params.Order, with the key to continue from if more remain.
	ListRecords(ctx context.Context, params *ListRecordsParams) (*RecordPage, error)

	// Usage returns the tenant's current record count and bytes, the
	// transaction's own writes included. In a read-write transaction no
	// other transaction that changes them commits between Usage and the
	// end of this one, so a quota checked against Usage after a write
	// holds when the tenant's writers run concurrently.
	Usage(ctx context.Context) (*Usage, error)

	// GetIdempotency returns the stored response for an Idempotency-Key, or
	// ErrNotFound.
	GetIdempotency(ctx context.Context, key string) (*Idempotency, error)
	// PutIdempotency stores or replaces the response for rec.Key.
	PutIdempotency(ctx context.Context, rec *Idempotency) error

	// LoginSecurity holds the tenant's TOTP enrolments, login throttles
	// and authentication policy.
	LoginSecurity
	// BreakGlassTx holds the operator's break-glass grants on the tenant.
	BreakGlassTx

	// Jobs keeps the tenant's background job records.
	Jobs

	// AuditLog is the tenant's own audit chain.
	AuditLog

	// Containments, the actions automatic containment took against a
	// tenant's credentials and accounts, are in containment.go.
	Containments

	// RetentionTx expires records and cuts the audit log (retention.go).
	RetentionTx
}

// AuditLog stores one hash-chained audit log: a tenant's (in its Tx) or the
// platform's (in a PlatformTx). Package audit computes the chain; the store
// only keeps it.
type AuditLog interface {
	// AuditHead returns the last entry's sequence number and hash; (0, nil)
	// for an empty log. In a read-write transaction it also holds the
	// tenant's audit head against concurrent appenders until the transaction
	// ends, so two transactions never append the same Seq.
	AuditHead(ctx context.Context) (seq int64, hash []byte, err error)
	// AppendAudit stores e. Callers compute e.Seq = head+1 and the hashes;
	// it returns ErrConflict if e.Seq is taken.
	AppendAudit(ctx context.Context, e *AuditEntry) error
	// ListAudit returns up to limit entries with Seq > after, in Seq order.
	ListAudit(ctx context.Context, after int64, limit int) ([]*AuditEntry, error)
	// PutAuditCheckpoint stores a signed checkpoint.
	PutAuditCheckpoint(ctx context.Context, c *AuditCheckpoint) error
	// ListAuditCheckpoints returns up to limit checkpoints with Seq > after,
	// in Seq order.
	ListAuditCheckpoints(ctx context.Context, after int64, limit int) ([]*AuditCheckpoint, error)
}

// Tenant is a tenant's control-plane row.
type Tenant struct {
	ID        tenant.ID
	Slug      tenant.Slug
	Name      string
	Plan      string
	Isolation tenant.Isolation
	Status    tenant.Status
	CreatedAt time.Time
	UpdatedAt time.Time
}

// CreateTenantParams describes a new tenant. Every field is required; Plan
// must name an existing plan (else ErrNotFound).
type CreateTenantParams struct {
	ID        tenant.ID
	Slug      tenant.Slug
	Name      string
	Plan      string
	Isolation tenant.Isolation
	CreatedAt time.Time
}

// UpdateTenantParams changes a tenant; nil fields are left alone.
type UpdateTenantParams struct {
	ID        tenant.ID
	Name      *string
	Plan      *string
	Status    *tenant.Status
	UpdatedAt time.Time
}

// TenantKey is a position in the tenant listing.
type TenantKey struct {
	CreatedAt time.Time
	ID        tenant.ID
}

// ListTenantsParams selects a page of tenants.
type ListTenantsParams struct {
	// After continues a listing; nil starts at the beginning.
	After *TenantKey
	Limit int
}

// UserID identifies a user within a tenant.
type UserID string

// User is a person who logs in to a tenant.
type User struct {
	ID           UserID
	Email        string
	PasswordHash string
	Role         tenant.Role
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// APIKeyID identifies an API key. It is public: it appears in the key itself
// and in listings.
type APIKeyID string

// APIKey is a tenant credential for machines.
type APIKey struct {
	ID   APIKeyID
	Name string
	Role tenant.Role
	// Hash is a keyed hash of the full key; the key itself is never stored.
	Hash      []byte
	CreatedBy string
	CreatedAt time.Time
	// RevokedAt is nil while the key is valid.
	RevokedAt *time.Time
}

// RefreshTokenID identifies a refresh token.
type RefreshTokenID string

// RefreshToken lets a user get a new access token once. Tokens issued from
// one login share a Family; reusing a used token revokes the family.
type RefreshToken struct {
	ID        RefreshTokenID
	UserID    UserID
	Family    string
	Hash      []byte
	ExpiresAt time.Time
	CreatedAt time.Time
	UsedAt    *time.Time
	RevokedAt *time.Time
}

// CollectionName names a collection within a tenant.
type CollectionName string

// Collection groups records, optionally under a JSON Schema.
type Collection struct {
	Name CollectionName
	// Schema is the JSON Schema records must satisfy; nil means any object.
	Schema json.RawMessage
	// Indexes are the collection's declared secondary indexes, in declared
	// order.
	Indexes []Index
	// EncryptedFields are the top-level data keys whose values the server
	// stores sealed; nil for none. PutCollection stores them as given.
	EncryptedFields []string
	// Retention, if not zero, is how long records are kept: a record whose
	// time in RetentionField is before now − Retention is expired, and the
	// retention job deletes it.
	Retention time.Duration
	// RetentionField is RetentionCreatedAt (what empty means),
	// RetentionUpdatedAt or a top-level data key holding an RFC 3339
	// timestamp; see ExpireRecordsParams.Field.
	RetentionField string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Index is a secondary index declared on one tenant's collection. It holds
// that collection's records only: a unique index makes its fields unique
// within the collection, never across tenants.
type Index struct {
	// Fields are top-level data keys or the system fields of package
	// filter, each optionally prefixed with "-" for descending order, such
	// as ["owner", "-n"]. Records are keyed by each field's typed sort key
	// (see filter.Order), then by id.
	Fields []string
	// Unique forbids two records with equal values in every field. Records
	// lacking one of the fields (or holding null there) never conflict;
	// nor do records holding an object or an array there, which sort
	// alike and so cannot be told apart by the index.
	Unique bool
	// State says whether the index is being built, serves queries, or
	// failed to build.
	State IndexState
	// Error says why a build failed, such as duplicate values under a
	// unique index; empty otherwise.
	Error string
}

// Name is the index's name in answers and errors: its fields joined by
// commas, such as "owner,-n".
func (ix *Index) Name() string { return strings.Join(ix.Fields, ",") }

// IndexState is the lifecycle state of a declared index.
type IndexState string

const (
	// IndexBuilding indexes are declared but not yet built; queries do not
	// use them and unique ones are not yet enforced.
	IndexBuilding IndexState = "building"
	// IndexReady indexes serve queries and enforce uniqueness.
	IndexReady IndexState = "ready"
	// IndexFailed indexes could not be built; see Index.Error. Declaring
	// the collection's indexes again retries.
	IndexFailed IndexState = "failed"
)

// IndexBuild names a collection whose indexes need building.
type IndexBuild struct {
	Tenant     tenant.ID
	Collection CollectionName
}

// UniqueError is returned when a write would give two records of a
// collection equal values under a unique index. It wraps ErrConflict.
type UniqueError struct {
	Collection CollectionName
	// Index is the violated index's Name.
	Index string
}

func (e *UniqueError) Error() string {
	return fmt.Sprintf("unique index %q of collection %q: %v", e.Index, e.Collection, ErrConflict)
}

func (e *UniqueError) Unwrap() error { return ErrConflict }

// KeyLookup is what Store.LookupAPIKey reads in one transaction.
type KeyLookup struct {
	Key    *APIKey
	Tenant *Tenant
	Plan   *tenant.Plan
	// Containments are the tenant's containments not lifted (expired
	// ones included), newest first, at most MaxLookupContainments: what
	// authentication checks the key against, read in the same
	// transaction. nil if there are none.
	Containments []*Containment
}

// RecordID identifies a record within a tenant's collection. It is server
// generated.
type RecordID string

// Record is one JSON object in a collection.
type Record struct {
	Collection CollectionName
	ID         RecordID
	Version    int64
	// Data is a JSON object in compact form.
	Data      json.RawMessage
	CreatedAt time.Time
	UpdatedAt time.Time
}

// UpdateRecordParams replaces a record's data.
type UpdateRecordParams struct {
	Collection CollectionName
	ID         RecordID
	// IfVersion, when not zero, must equal the current version.
	IfVersion int64
	Data      json.RawMessage
	UpdatedAt time.Time
}

// RecordKey is a position in a record listing under some filter.Order, as
// described in package filter: which fields are used depends on the order.
type RecordKey struct {
	Rank int
	Num  float64
	Str  string
	Time time.Time
	ID   RecordID
}

// ListRecordsParams selects a page of records.
type ListRecordsParams struct {
	Collection CollectionName
	// Filter selects records; nil selects all.
	Filter filter.Expr
	Order  filter.Order
	// After continues a listing from the key a previous page returned.
	After *RecordKey
	// Limit is the page size, at least 1.
	Limit int
	// Count asks for RecordPage.Total.
	Count bool
}

// RecordPage is one page of a listing.
type RecordPage struct {
	Records []*Record
	// Next is the key to continue from, or nil when no records remain.
	Next *RecordKey
	// Total is the number of records matching the filter, whatever the
	// page, when ListRecordsParams.Count asked for it; else -1.
	Total int64
}

// Usage is what a tenant currently stores.
type Usage struct {
	Records int64
	Bytes   int64
}

// Idempotency is a stored response to a request made with an
// Idempotency-Key.
type Idempotency struct {
	Key string
	// RequestHash identifies the request (method, path, body) the response
	// answered.
	RequestHash []byte
	// Response is the encoded response, opaque to the store.
	Response  []byte
	CreatedAt time.Time
}

// AuditEntry is one link of a tenant's hash-chained audit log.
type AuditEntry struct {
	Seq       int64
	Time      time.Time
	Actor     string
	Action    string
	Resource  string
	RequestID string
	Outcome   string
	PrevHash  []byte
	Hash      []byte
}

// AuditCheckpoint is a signature over the audit chain's hash at Seq.
type AuditCheckpoint struct {
	Seq       int64
	Hash      []byte
	KeyID     string
	Signature []byte
	Time      time.Time
}
