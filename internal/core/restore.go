package core

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"

	"gocloud.dev/blob"

	"github.com/bulkheadhq/bulkhead/filter"
	"github.com/bulkheadhq/bulkhead/internal/access"
	"github.com/bulkheadhq/bulkhead/internal/archive"
	"github.com/bulkheadhq/bulkhead/internal/audit"
	"github.com/bulkheadhq/bulkhead/internal/jobs"
	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// A restore is a job of kind KindRestore: it makes the tenant's collections
// and records exactly an archive's.
const (
	KindRestore jobs.Kind = "restore"
	// RestoreBatch is how many records one write transaction of a restore
	// stores.
	RestoreBatch = 200
)

var (
	// ErrArchiveTenantMismatch means an archive was made of another tenant
	// than the one it is restored into. Nothing was changed.
	ErrArchiveTenantMismatch = errors.New("the archive belongs to another tenant")
	// ErrArchiveInvalid means an archive does not verify: it is malformed,
	// cut off, altered, signed by another platform, its audit chain is
	// broken, or its tenant's key was destroyed. Nothing was changed.
	ErrArchiveInvalid = errors.New("the archive does not verify")
	// ErrConfirmationRequired means a restore lacks confirm=<the tenant's
	// slug>, which says the caller knows it replaces the tenant's data.
	ErrConfirmationRequired = errors.New("a restore replaces the tenant's data: confirm it with confirm=<the tenant's slug>")
)

type restoreArgs struct {
	RestoreID string `json:"restore_id"`
	// SHA256 is the uploaded archive's, in hex.
	SHA256 string `json:"sha256"`
}

// RestoreResult is the result of a restore job.
type RestoreResult struct {
	// SHA256 is the archive's, in hex, as the restore's audit entry names
	// it.
	SHA256      string `json:"sha256"`
	ExportID    string `json:"export_id"`
	Collections int    `json:"collections"`
	Records     int64  `json:"records"`
}

// StartRestore stores the archive body in the bucket, checks its signed
// header (an archive of another tenant is ErrArchiveTenantMismatch, one
// whose header does not verify ErrArchiveInvalid, and nothing is kept), and
// enqueues the restore, which verifies the whole archive before it writes
// anything. confirm must be the tenant's slug.
func (s *Scope) StartRestore(ctx context.Context, confirm string, body io.Reader) (*Job, error) {
	if err := s.allow(access.RestoreData); err != nil {
		return nil, err
	}
	if confirm != string(s.tenant.Slug) {
		return nil, ErrConfirmationRequired
	}
	c := s.core
	if c.jobs == nil || c.blobs == nil {
		return nil, errNoExports
	}
	id := newID()
	key := restoreKey(s.tenant.ID, id)
	sum, err := c.upload(ctx, key, body)
	if err != nil {
		return nil, err
	}
	keep := false
	defer func() {
		if !keep {
			_ = c.blobs.Delete(context.WithoutCancel(ctx), key)
		}
	}()
	rc, err := c.blobs.NewReader(ctx, key, nil)
	if err != nil {
		return nil, err
	}
	h, _, err := archive.ReadHeader(rc, c.exportPublic())
	rc.Close()
	switch {
	case errors.Is(err, archive.ErrInvalid):
		return nil, fmt.Errorf("%w: %w", ErrArchiveInvalid, err)
	case err != nil:
		return nil, err
	case h.Tenant != s.tenant.ID:
		return nil, ErrArchiveTenantMismatch
	}
	j, err := c.jobs.Enqueue(ctx, s.tenant.ID, KindRestore, restoreArgs{RestoreID: id, SHA256: sum},
		&jobs.EnqueueOptions{CreatedBy: s.principal.Actor()})
	if err != nil {
		return nil, err
	}
	keep = true
	return jobView(j), nil
}

// upload streams body to the bucket under key and returns its SHA-256 in
// hex. A failed upload leaves nothing.
func (c *Core) upload(ctx context.Context, key string, body io.Reader) (string, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bw, err := c.blobs.NewWriter(wctx, key, &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(bw, h), body); err != nil {
		cancel()
		bw.Close()
		return "", err
	}
	if err := bw.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (c *Core) exportPublic() ed25519.PublicKey {
	if len(c.keys.ExportKey) != ed25519.PrivateKeySize {
		return make(ed25519.PublicKey, ed25519.PublicKeySize) // verifies nothing
	}
	return c.keys.ExportKey.Public().(ed25519.PublicKey)
}

// restoreWork verifies the uploaded archive, then makes the tenant's data
// the archive's. A retry starts again from the start and ends in the same
// state.
func (c *Core) restoreWork(ctx context.Context, t *jobs.Task) (any, error) {
	var args restoreArgs
	if err := json.Unmarshal(t.Args, &args); err != nil || args.RestoreID == "" {
		return nil, fmt.Errorf("restore arguments: %w", jobs.ErrPermanent)
	}
	if c.blobs == nil {
		return nil, fmt.Errorf("no blob bucket: %w", jobs.ErrPermanent)
	}
	key := restoreKey(t.Tenant, args.RestoreID)
	open := func() (io.ReadCloser, error) { return c.blobs.NewReader(ctx, key, nil) }
	v, err := c.verifyArchive(ctx, open, t.Tenant)
	if err == nil && args.SHA256 != "" && v.sha256 != args.SHA256 {
		err = fmt.Errorf("%w: the stored archive changed since its upload", ErrArchiveInvalid)
	}
	if errors.Is(err, ErrArchiveInvalid) || errors.Is(err, ErrArchiveTenantMismatch) {
		return nil, jobs.Public(fmt.Errorf("%w: %w", jobs.ErrPermanent, err))
	}
	if err != nil {
		return nil, err
	}
	if err := c.restoreFits(ctx, t.Tenant, v); err != nil {
		return nil, err
	}
	actor, reqID := "", ""
	if t.Job != nil {
		actor, reqID = t.Job.CreatedBy, "job:"+string(t.Job.ID)
	}
	res, err := c.applyArchive(ctx, t.Tenant, open, v, actor, reqID, t.Progress)
	if err != nil {
		return nil, err
	}
	_ = c.blobs.Delete(ctx, key)
	return res, nil
}

// restoreFits fails a restore, before it writes anything, whose archive
// holds more records than the tenant's plan allows: the restore would
// leave the tenant over its quota, where no write of its own could take it.
// (The archive does not count its records' bytes; the byte quota holds
// for the tenant's next writes.)
func (c *Core) restoreFits(ctx context.Context, tid tenant.ID, v *verified) error {
	var t *store.Tenant
	err := c.store.ReadPlatform(ctx, func(tx store.PlatformTx) (err error) {
		t, err = tx.GetTenant(ctx, tid)
		return err
	})
	if err != nil {
		return err
	}
	plan, err := c.plan(ctx, t.Plan)
	if err != nil {
		return err
	}
	if n := v.manifest.Count(archive.PartRecords); plan.MaxRecords > 0 && n > plan.MaxRecords {
		return jobs.Public(fmt.Errorf("%w: the archive holds %d records and the %s plan at most %d; nothing was restored",
			jobs.ErrPermanent, n, plan.Name, plan.MaxRecords))
	}
	return nil
}

// RestoreTenant creates a tenant from p and restores the archive open
// reads into it, for the operator's command line: the archive may be of
// any tenant of this platform (of from's tenant, if from is not nil, else
// ErrArchiveTenantMismatch), and its records are sealed again under the
// new tenant's keys. The archive is verified before the tenant is created;
// users and API keys are not restored (the new tenant has none).
func (ct *Control) RestoreTenant(ctx context.Context, p CreateTenantParams, from *Scope, open func() (io.ReadCloser, error),
	progress func(done, total int64)) (*Tenant, *RestoreResult, error) {
	if err := ct.check(); err != nil {
		return nil, nil, err
	}
	var source tenant.ID
	if from != nil {
		if err := ct.target(from); err != nil {
			return nil, nil, err
		}
		source = from.tenant.ID
	}
	v, err := ct.core.verifyArchive(ctx, open, source)
	if err != nil {
		return nil, nil, err
	}
	t, err := ct.CreateTenant(ctx, p, nil)
	if err != nil {
		return nil, nil, err
	}
	res, err := ct.core.applyArchive(ctx, t.ID, open, v, ct.principal.Actor(), ct.requestID, progress)
	if err != nil {
		return t, nil, fmt.Errorf("restore into the new tenant %s (run again with another slug after deleting it): %w", t.Slug, err)
	}
	return t, res, nil
}

// verified is what verifying an archive learnt, for applying it.
type verified struct {
	header   *archive.Header
	key      []byte
	manifest *archive.Manifest
	sha256   string
	cols     []archiveCollection
	// ids are the record ids of each collection: what a restore keeps.
	// They are the one thing held for every record (tens of bytes each).
	ids map[store.CollectionName]map[store.RecordID]struct{}
}

type hashingReader struct {
	r io.Reader
	h hash.Hash
}

func (hr *hashingReader) Read(p []byte) (int, error) {
	n, err := hr.r.Read(p)
	hr.h.Write(p[:n])
	return n, err
}

// verifyArchive reads the archive open returns to its end: the header's
// and the manifest's signatures, every chunk, the parts' hashes and counts,
// and the audit chain with its checkpoints (audit.Log.Verify). If target is
// not zero the archive must be target's. Failures of the archive are
// ErrArchiveInvalid or ErrArchiveTenantMismatch.
func (c *Core) verifyArchive(ctx context.Context, open func() (io.ReadCloser, error), target tenant.ID) (*verified, error) {
	if c.kms == nil {
		return nil, keysUnavailable(target, errors.New("no key management service is configured"))
	}
	rc, err := open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	hr := &hashingReader{r: rc, h: sha256.New()}
	pub := c.exportPublic()
	h, br, err := archive.ReadHeader(hr, pub)
	if err != nil {
		return nil, badArchive(err)
	}
	if target != "" && h.Tenant != target {
		return nil, ErrArchiveTenantMismatch
	}
	key, err := c.kms.Unwrap(ctx, h.Tenant, h.WrappedKey, archiveKeyAAD(h.Tenant, h.ExportID))
	switch {
	case errors.Is(err, keyring.ErrKeyNotFound) || errors.Is(err, keyring.ErrOpen):
		return nil, fmt.Errorf("%w: its tenant's key does not open it (destroyed, or another platform's): %w", ErrArchiveInvalid, err)
	case err != nil:
		return nil, keysUnavailable(h.Tenant, err)
	}
	ar, err := archive.NewReader(br, h, key, pub)
	if err != nil {
		return nil, err
	}
	v := &verified{header: h, key: key, ids: map[store.CollectionName]map[store.RecordID]struct{}{}}
	src := &archiveAudit{r: ar}
	for src.pending == nil && !src.eof {
		part, item, err := ar.Next()
		if err == io.EOF {
			src.eof = true
			break
		}
		if err != nil {
			return nil, badArchive(err)
		}
		switch part {
		case archive.PartCollections:
			var col archiveCollection
			if err := json.Unmarshal(item, &col); err != nil || col.Name == "" {
				return nil, fmt.Errorf("%w: a malformed collection", ErrArchiveInvalid)
			}
			v.cols = append(v.cols, col)
			v.ids[col.Name] = map[store.RecordID]struct{}{}
		case archive.PartRecords:
			var r struct {
				Collection store.CollectionName `json:"collection"`
				ID         store.RecordID       `json:"id"`
			}
			if err := json.Unmarshal(item, &r); err != nil || v.ids[r.Collection] == nil || r.ID == "" {
				return nil, fmt.Errorf("%w: a malformed record", ErrArchiveInvalid)
			}
			v.ids[r.Collection][r.ID] = struct{}{}
		case archive.PartAuditStart:
			var cut store.AuditCut
			if err := json.Unmarshal(item, &cut); err != nil {
				return nil, fmt.Errorf("%w: a malformed audit start", ErrArchiveInvalid)
			}
			src.start = &cut
		case archive.PartCheckpoints:
			var cp store.AuditCheckpoint
			if err := json.Unmarshal(item, &cp); err != nil {
				return nil, fmt.Errorf("%w: a malformed checkpoint", ErrArchiveInvalid)
			}
			src.cps = append(src.cps, &cp)
		case archive.PartAudit:
			var e store.AuditEntry
			if err := json.Unmarshal(item, &e); err != nil {
				return nil, fmt.Errorf("%w: a malformed audit entry", ErrArchiveInvalid)
			}
			src.pending = &e
		}
	}
	// The chain streams through the verifier from here to the end.
	rep, err := c.audit.Verify(ctx, src, audit.TenantChain(h.Tenant))
	if err != nil {
		return nil, badArchive(err)
	}
	if !rep.OK {
		return nil, fmt.Errorf("%w: its audit chain is broken at %d: %s", ErrArchiveInvalid, rep.BrokenAt, rep.Reason)
	}
	switch _, _, err := ar.Next(); {
	case err == io.EOF:
	case err != nil:
		return nil, badArchive(err)
	default:
		return nil, fmt.Errorf("%w: items after the audit chain", ErrArchiveInvalid)
	}
	if _, err := io.Copy(io.Discard, hr); err != nil {
		return nil, err
	}
	v.manifest = ar.Manifest()
	v.sha256 = hex.EncodeToString(hr.h.Sum(nil))
	return v, nil
}

func badArchive(err error) error {
	if errors.Is(err, archive.ErrInvalid) {
		return fmt.Errorf("%w: %w", ErrArchiveInvalid, err)
	}
	return err
}

// archiveAudit is the audit chain of an archive being read, as the audit
// verifier reads a store's: entries stream from the archive (the verifier
// asks for them in order), checkpoints were read before them.
type archiveAudit struct {
	r       *archive.Reader
	pending *store.AuditEntry // read, not yet listed
	buf     []*store.AuditEntry
	eof     bool
	cps     []*store.AuditCheckpoint
	start   *store.AuditCut // where retention cut the chain; nil if it starts at 1
}

// AuditStart is the chain's signed start, as the verifier asks a store
// for it.
func (a *archiveAudit) AuditStart(context.Context) (*store.AuditCut, error) {
	if a.start == nil {
		return nil, store.ErrNotFound
	}
	return a.start, nil
}

var errReadOnlyChain = errors.New("an archive's audit chain is read-only")

func (a *archiveAudit) AuditHead(context.Context) (int64, []byte, error) {
	return 0, nil, errReadOnlyChain
}
func (a *archiveAudit) AppendAudit(context.Context, *store.AuditEntry) error {
	return errReadOnlyChain
}
func (a *archiveAudit) PutAuditCheckpoint(context.Context, *store.AuditCheckpoint) error {
	return errReadOnlyChain
}

func (a *archiveAudit) ListAudit(_ context.Context, after int64, limit int) ([]*store.AuditEntry, error) {
	a.buf = slices.DeleteFunc(a.buf, func(e *store.AuditEntry) bool { return e.Seq <= after })
	for len(a.buf) < limit {
		if a.pending != nil {
			if a.pending.Seq > after {
				a.buf = append(a.buf, a.pending)
			}
			a.pending = nil
			continue
		}
		if a.eof {
			break
		}
		part, item, err := a.r.Next()
		if err == io.EOF {
			a.eof = true
			break
		}
		if err != nil {
			return nil, err
		}
		var e store.AuditEntry
		if part != archive.PartAudit || json.Unmarshal(item, &e) != nil {
			return nil, fmt.Errorf("%w: a malformed audit entry", archive.ErrInvalid)
		}
		if e.Seq > after {
			a.buf = append(a.buf, &e)
		}
	}
	return slices.Clone(a.buf[:min(limit, len(a.buf))]), nil
}

func (a *archiveAudit) ListAuditCheckpoints(_ context.Context, after int64, limit int) ([]*store.AuditCheckpoint, error) {
	var out []*store.AuditCheckpoint
	for _, cp := range a.cps {
		if cp.Seq > after && len(out) < limit {
			out = append(out, cp)
		}
	}
	return out, nil
}

// applyArchive makes tid's collections and records those of the verified
// archive v: first the collections (one transaction), then the deletion of
// records the archive lacks, then the archive's records in transactions of
// RestoreBatch — each batch work under the ticket ctx carries, so that the
// tenant's and others' interactive writes get the writer between batches.
// Records already equal to the archive's are left alone, so a retry after
// a crash redoes only what differs, and ends in the same state. The
// restore's audit entry comes last, once.
func (c *Core) applyArchive(ctx context.Context, tid tenant.ID, open func() (io.ReadCloser, error), v *verified,
	actor, requestID string, progress func(done, total int64)) (*RestoreResult, error) {
	if progress == nil {
		progress = func(int64, int64) {}
	}
	total := v.manifest.Count(archive.PartRecords)
	progress(0, total)
	var rebuild []store.CollectionName
	err := c.store.InTenant(ctx, tid, func(tx store.Tx) error {
		rebuild = rebuild[:0]
		existing, err := tx.ListCollections(ctx)
		if err != nil {
			return err
		}
		for _, col := range existing {
			if _, keep := v.ids[col.Name]; keep {
				continue
			}
			if err := tx.DeleteCollection(ctx, col.Name); err != nil {
				return err
			}
			if len(col.Indexes) > 0 {
				rebuild = append(rebuild, col.Name)
			}
		}
		for _, ac := range v.cols {
			col := &store.Collection{Name: ac.Name, Schema: ac.Schema, EncryptedFields: ac.EncryptedFields,
				Retention: ac.Retention, RetentionField: ac.RetentionField, CreatedAt: ac.CreatedAt, UpdatedAt: ac.UpdatedAt}
			for _, ix := range ac.Indexes {
				col.Indexes = append(col.Indexes, store.Index{Fields: ix.Fields, Unique: ix.Unique})
			}
			if _, err := tx.PutCollection(ctx, col); err != nil {
				return err
			}
			if len(col.Indexes) > 0 {
				rebuild = append(rebuild, col.Name)
			}
		}
		return nil
	})
	c.forgetEncFields(tid)
	if err != nil {
		return nil, err
	}
	// Records the archive lacks go first, so that the archive's records
	// never meet another record's unique values.
	for _, ac := range v.cols {
		if err := c.deleteMissing(ctx, tid, ac.Name, v.ids[ac.Name]); err != nil {
			return nil, err
		}
	}
	ciphers := map[store.CollectionName]*fieldCipher{}
	for _, ac := range v.cols {
		if ciphers[ac.Name], err = c.cipherFor(ctx, tid, ac.Name, ac.EncryptedFields); err != nil {
			return nil, err
		}
	}
	rc, err := open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	h, br, err := archive.ReadHeader(rc, c.exportPublic())
	if err != nil {
		return nil, badArchive(err)
	}
	ar, err := archive.NewReader(br, h, v.key, c.exportPublic())
	if err != nil {
		return nil, err
	}
	var done int64
	batch := make([]*store.Record, 0, RestoreBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := c.storeRestored(ctx, tid, batch); err != nil {
			return err
		}
		done += int64(len(batch))
		progress(done, total)
		batch = batch[:0]
		return nil
	}
	for {
		part, item, err := ar.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, badArchive(err)
		}
		if part != archive.PartRecords {
			if part != archive.PartCollections {
				break // the records are all read; the rest was verified
			}
			continue
		}
		var r archiveRecord
		if err := json.Unmarshal(item, &r); err != nil {
			return nil, badArchive(err)
		}
		data := []byte(r.Data)
		if fc := ciphers[r.Collection]; fc != nil {
			doc, err := decodeObject(data)
			if err != nil {
				return nil, badArchive(err)
			}
			if err := fc.seal(r.ID, doc); err != nil {
				return nil, err
			}
			if data, err = encodeCompact(doc); err != nil {
				return nil, err
			}
		}
		batch = append(batch, &store.Record{Collection: r.Collection, ID: r.ID, Version: r.Version, Data: data,
			CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt})
		if len(batch) == RestoreBatch {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	ev := audit.Event{Time: c.now(), Actor: actor, Action: "tenant.restore", Resource: "archive:sha256:" + v.sha256,
		RequestID: requestID, Outcome: audit.Success}
	err = c.store.InTenant(ctx, tid, func(tx store.Tx) error {
		if requestID != "" {
			seq, _, err := tx.AuditHead(ctx)
			if err != nil {
				return err
			}
			tail, err := tx.ListAudit(ctx, max(seq-100, 0), 100)
			if err != nil {
				return err
			}
			for _, e := range tail {
				if e.Action == ev.Action && e.RequestID == requestID && e.Resource == ev.Resource {
					return nil // a previous attempt got this far
				}
			}
		}
		_, err := c.audit.Append(ctx, tx, audit.TenantChain(tid), ev)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, name := range rebuild {
		c.buildIndexes(ctx, tid, name, actor)
	}
	return &RestoreResult{SHA256: v.sha256, ExportID: v.header.ExportID, Collections: len(v.cols), Records: done}, nil
}

// deleteMissing deletes the records of tid's collection col whose ids keep
// lacks, a page at a time.
func (c *Core) deleteMissing(ctx context.Context, tid tenant.ID, col store.CollectionName, keep map[store.RecordID]struct{}) error {
	return c.eachRecordPage(ctx, tid, col, ExportPage, func(records []*store.Record, _ bool) error {
		var gone []store.RecordID
		for _, r := range records {
			if _, ok := keep[r.ID]; !ok {
				gone = append(gone, r.ID)
			}
		}
		for len(gone) > 0 {
			n := min(len(gone), RestoreBatch)
			err := c.store.InTenant(ctx, tid, func(tx store.Tx) error {
				for _, id := range gone[:n] {
					if _, err := tx.DeleteRecord(ctx, col, id, 0); err != nil && !errors.Is(err, store.ErrNotFound) {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			gone = gone[n:]
		}
		return nil
	})
}

// eachRecordPage reads collection col of tenant tid in id order, limit
// records a page, each page in a read transaction of its own (so that no
// snapshot is held across pages, nor the reader while fn works), and calls
// fn with each page until fn fails or the pages end; last tells fn that no
// page follows. A collection that does not exist is store.ErrNotFound.
func (c *Core) eachRecordPage(ctx context.Context, tid tenant.ID, col store.CollectionName, limit int,
	fn func(records []*store.Record, last bool) error) error {
	var after *store.RecordKey
	for {
		var page *store.RecordPage
		err := c.store.ReadTenant(ctx, tid, func(tx store.Tx) (err error) {
			page, err = tx.ListRecords(ctx, &store.ListRecordsParams{Collection: col,
				Order: filter.Order{Field: filter.FieldID}, After: after, Limit: limit})
			return err
		})
		if err != nil {
			return err
		}
		if err := fn(page.Records, page.Next == nil); err != nil {
			return err
		}
		if page.Next == nil {
			return nil
		}
		after = page.Next
	}
}

// storeRestored writes one batch of an archive's records in one
// transaction: a record stored exactly so already is left alone, any other
// with its id is replaced (keeping the archive's version and times).
func (c *Core) storeRestored(ctx context.Context, tid tenant.ID, batch []*store.Record) error {
	return c.store.InTenant(ctx, tid, func(tx store.Tx) error {
		for _, r := range batch {
			old, err := tx.GetRecord(ctx, r.Collection, r.ID)
			switch {
			case err == nil:
				if old.Version == r.Version && bytes.Equal(old.Data, r.Data) && old.UpdatedAt.Equal(r.UpdatedAt) {
					continue
				}
				if _, err := tx.DeleteRecord(ctx, r.Collection, r.ID, 0); err != nil {
					return err
				}
			case !errors.Is(err, store.ErrNotFound):
				return err
			}
			if err := tx.CreateRecord(ctx, r); err != nil {
				return fmt.Errorf("restore record %s/%s: %w", r.Collection, r.ID, err)
			}
		}
		return nil
	})
}
