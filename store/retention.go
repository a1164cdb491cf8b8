package store

import (
	"context"
	"time"
)

// Retention fields of a collection, besides a top-level data key.
const (
	// RetentionCreatedAt measures a record's age from its CreatedAt; it is
	// what an empty Collection.RetentionField means.
	RetentionCreatedAt = "created_at"
	// RetentionUpdatedAt measures it from its UpdatedAt.
	RetentionUpdatedAt = "updated_at"
)

// ExpireRecordsParams selects the expired records of a collection that
// Tx.ExpireRecords deletes.
type ExpireRecordsParams struct {
	Collection CollectionName
	// Field is RetentionCreatedAt, RetentionUpdatedAt or a top-level data
	// key holding an RFC 3339 timestamp (with a time zone offset or Z). A
	// record lacking the key or holding anything else there never expires.
	Field string
	// Before is the cut: records whose time is before it expire.
	Before time.Time
	// After continues a pass over a data field from the id NextAfter
	// returned; empty starts at the first record. System fields ignore it.
	After RecordID
	// Limit bounds the records deleted (system fields) or examined (data
	// fields) by one call, at least 1.
	Limit int
}

// ExpireRecordsResult is what one Tx.ExpireRecords call did.
type ExpireRecordsResult struct {
	// Deleted and Bytes are the records deleted and their data's size,
	// which the call subtracted from the usage.
	Deleted int64
	Bytes   int64
	// More reports that expired records may remain: call again, with
	// After set to NextAfter.
	More      bool
	NextAfter RecordID
}

// AuditRetention is how long a tenant keeps its audit entries.
type AuditRetention struct {
	// Keep is the age past which entries are cut.
	Keep      time.Duration
	UpdatedBy string
	UpdatedAt time.Time
}

// AuditCut is the signed start of a tenant's audit chain after entries
// before it were removed: entry Seq, whose Hash it carries, is the first
// entry kept, and a checkpoint at Seq exists. Signature is package audit's
// cut signature (see audit.CutMessage), made with the key KeyID names.
type AuditCut struct {
	Seq       int64
	Hash      []byte
	KeyID     string
	Signature []byte
	Time      time.Time
}

// RetentionTx holds a tenant's retention work: the expiry of records and
// the cut of its audit log.
type RetentionTx interface {
	// ExpireRecords deletes the expired records params selects, as
	// described there, and subtracts them from the usage. Created_at and
	// updated_at use the records' time indexes; data fields are read in id
	// order, Limit records per call. It returns ErrNotFound if the
	// collection does not exist.
	ExpireRecords(ctx context.Context, params *ExpireRecordsParams) (*ExpireRecordsResult, error)
	// CountExpiredRecords returns how many records ExpireRecords would
	// delete for the same collection, field and cut: exactly for system
	// fields, an upper bound for data fields.
	CountExpiredRecords(ctx context.Context, collection CollectionName, field string, before time.Time) (int64, error)

	// GetAuditRetention returns ErrNotFound if none is set.
	GetAuditRetention(ctx context.Context) (*AuditRetention, error)
	// PutAuditRetention creates or replaces the tenant's audit retention.
	PutAuditRetention(ctx context.Context, r *AuditRetention) error
	// CutAudit records c as the chain's start and removes the entries and
	// checkpoints with a Seq below c.Seq, in the transaction. It returns
	// ErrNotFound unless entry c.Seq and a checkpoint at c.Seq exist, both
	// with c.Hash, and ErrConflict unless c.Seq is beyond every earlier
	// cut. The store does not check c's signature: package audit's
	// verifier does.
	CutAudit(ctx context.Context, c *AuditCut) error
	// AuditStart returns the latest cut, or ErrNotFound if the chain was
	// never cut and starts at entry 1.
	AuditStart(ctx context.Context) (*AuditCut, error)
}
