package core

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/bulkheadhq/bulkhead/internal/access"
	"github.com/bulkheadhq/bulkhead/internal/archive"
	"github.com/bulkheadhq/bulkhead/internal/jobs"
	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// An export is a job of kind KindExport: it writes the tenant's archive
// (package archive) to the blob bucket under exports/<tenant id>/<export
// id>, where it is downloaded from until it expires.
const (
	KindExport jobs.Kind = "export"
	// ExportLife is how long an export can be downloaded; SweepExports
	// deletes it afterwards.
	ExportLife = 7 * 24 * time.Hour
	// ExportPage is how many records, audit checkpoints or audit entries
	// one read transaction of an export reads.
	ExportPage = 100
)

// exportShare is the share of the time an export may keep reading and
// encoding: after a page (of records, checkpoints or audit entries) that
// took d it rests d×(1−share)/share, so that the tenant's and others'
// requests keep their latency on a small machine
// (BenchmarkVictimDuringExport: a victim's p99 was 4.2× its p99 alone
// while an unpaced export ran, 1.9× at a share of 0.25, 1.4× at 0.1).
// The audit chain is paced like the records: a tenant has about as many
// audit entries as writes, and reading them in unpaced pages of 1,000
// held a processor for tens of milliseconds at a time.
const exportShare = 0.1

// pace rests after a batch of background work that took d, so that the
// work takes about share of the time, or until ctx ends.
func pace(ctx context.Context, d time.Duration, share float64) error {
	t := time.NewTimer(time.Duration(float64(d) * (1 - share) / share))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ExportResult is the result of an export job.
type ExportResult struct {
	ExportID string `json:"export_id"`
}

type exportArgs struct {
	ExportID string `json:"export_id"`
}

// Archive items. Users and API keys carry no secret: no password hash, no
// TOTP seed, no key hash.
type (
	archiveIndex struct {
		Fields []string `json:"fields"`
		Unique bool     `json:"unique,omitempty"`
	}
	archiveCollection struct {
		Name            store.CollectionName `json:"name"`
		Schema          json.RawMessage      `json:"schema,omitempty"`
		Indexes         []archiveIndex       `json:"indexes,omitempty"`
		EncryptedFields []string             `json:"encrypted_fields,omitempty"`
		// Retention and RetentionField are the collection's retention
		// setting (store.Collection's), if it has one.
		Retention      time.Duration `json:"retention,omitempty"`
		RetentionField string        `json:"retention_field,omitempty"`
		CreatedAt      time.Time     `json:"created_at"`
		UpdatedAt      time.Time     `json:"updated_at"`
	}
	archiveRecord struct {
		Collection store.CollectionName `json:"collection"`
		ID         store.RecordID       `json:"id"`
		Version    int64                `json:"version"`
		// Data is the record's plaintext: encrypted fields are opened,
		// to be sealed again under the keys of the tenant restored into.
		Data      json.RawMessage `json:"data"`
		CreatedAt time.Time       `json:"created_at"`
		UpdatedAt time.Time       `json:"updated_at"`
	}
	archiveUser struct {
		ID        store.UserID `json:"id"`
		Email     string       `json:"email"`
		Role      tenant.Role  `json:"role"`
		CreatedAt time.Time    `json:"created_at"`
		UpdatedAt time.Time    `json:"updated_at"`
	}
	archiveAPIKey struct {
		ID        store.APIKeyID `json:"id"`
		Name      string         `json:"name"`
		Role      tenant.Role    `json:"role"`
		CreatedBy string         `json:"created_by"`
		CreatedAt time.Time      `json:"created_at"`
		RevokedAt *time.Time     `json:"revoked_at,omitempty"`
	}
)

// errNoExports refuses exports and restores on a server without a job
// runner or a blob bucket.
var errNoExports = refuse(KindUnsupported, "exports and restores need a job runner and a blob bucket, which this server lacks")

func exportKey(tid tenant.ID, id string) string { return "exports/" + string(tid) + "/" + id }

func restoreKey(tid tenant.ID, id string) string { return "restores/" + string(tid) + "/" + id }

// archiveKeyAAD binds an archive key, wrapped by the tenant's KMS key, to
// its tenant and export.
func archiveKeyAAD(tid tenant.ID, exportID string) []byte {
	return []byte("bulkhead archive key\x00" + string(tid) + "\x00" + exportID)
}

// StartExport enqueues an export of the tenant's data and returns its job.
func (s *Scope) StartExport(ctx context.Context) (*Job, error) {
	if err := s.allow(access.ExportData); err != nil {
		return nil, err
	}
	c := s.core
	if c.jobs == nil || c.blobs == nil {
		return nil, errNoExports
	}
	id := newID()
	err := s.write(ctx, func(tx store.Tx) error {
		return s.append(ctx, tx, s.event("tenant.export", "export:"+id))
	})
	if err != nil {
		return nil, err
	}
	j, err := c.jobs.Enqueue(ctx, s.tenant.ID, KindExport, exportArgs{ExportID: id}, &jobs.EnqueueOptions{CreatedBy: s.principal.Actor()})
	if err != nil {
		return nil, err
	}
	return jobView(j), nil
}

// exportWork writes the archive of the task's tenant to the bucket. A
// retry writes it again from the start under the same key.
func (c *Core) exportWork(ctx context.Context, t *jobs.Task) (any, error) {
	var args exportArgs
	if err := json.Unmarshal(t.Args, &args); err != nil || args.ExportID == "" {
		return nil, fmt.Errorf("export arguments: %w", jobs.ErrPermanent)
	}
	if c.blobs == nil {
		return nil, fmt.Errorf("no blob bucket: %w", jobs.ErrPermanent)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bw, err := c.blobs.NewWriter(wctx, exportKey(t.Tenant, args.ExportID), &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return nil, err
	}
	if _, err := c.writeArchive(wctx, t.Tenant, args.ExportID, bw, t.Progress); err != nil {
		cancel() // the partial blob is discarded
		bw.Close()
		return nil, err
	}
	if err := bw.Close(); err != nil {
		return nil, err
	}
	return ExportResult(args), nil
}

// ExportTenant writes the archive of the scope's tenant to w, for the
// operator's command line; progress, if not nil, is told the records
// written out of the total.
func (ct *Control) ExportTenant(ctx context.Context, sc *Scope, w io.Writer, progress func(done, total int64)) (*archive.Manifest, error) {
	if err := ct.target(sc); err != nil {
		return nil, err
	}
	return ct.core.writeArchive(ctx, sc.tenant.ID, newID(), w, progress)
}

// writeArchive writes tid's archive to w: each page of records is read in
// a transaction of its own (batch work under the ticket ctx carries), and
// encrypted fields are opened outside it. The pages are not one snapshot:
// records written during the export may or may not be in it.
func (c *Core) writeArchive(ctx context.Context, tid tenant.ID, exportID string, w io.Writer, progress func(done, total int64)) (*archive.Manifest, error) {
	if c.kms == nil {
		return nil, keysUnavailable(tid, errors.New("no key management service is configured"))
	}
	if len(c.keys.ExportKey) != ed25519.PrivateKeySize {
		return nil, errors.New("export: the keyring has no export signing key")
	}
	if progress == nil {
		progress = func(int64, int64) {}
	}
	// The archive key: fresh for each archive, wrapped by the tenant's key
	// in the KMS, so that crypto-shredding the tenant shreds its exports.
	if err := c.kms.CreateKey(ctx, tid); err != nil {
		return nil, keysUnavailable(tid, err)
	}
	key := keyring.NewKey()
	wrapped, err := c.kms.Wrap(ctx, tid, key, archiveKeyAAD(tid, exportID))
	if err != nil {
		return nil, keysUnavailable(tid, err)
	}
	aw, err := archive.NewWriter(w, &archive.Header{Tenant: tid, ExportID: exportID, CreatedAt: c.now(), WrappedKey: wrapped}, key, c.keys.ExportKey)
	if err != nil {
		return nil, err
	}
	var cols []*store.Collection
	var usage *store.Usage
	err = c.store.ReadTenant(ctx, tid, func(tx store.Tx) (err error) {
		if cols, err = tx.ListCollections(ctx); err != nil {
			return err
		}
		usage, err = tx.Usage(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	total := usage.Records
	progress(0, total)
	for _, col := range cols {
		item := archiveCollection{Name: col.Name, Schema: col.Schema, EncryptedFields: col.EncryptedFields,
			Retention: col.Retention, RetentionField: col.RetentionField, CreatedAt: col.CreatedAt, UpdatedAt: col.UpdatedAt}
		for _, ix := range col.Indexes {
			item.Indexes = append(item.Indexes, archiveIndex{Fields: ix.Fields, Unique: ix.Unique})
		}
		if err := aw.Add(archive.PartCollections, item); err != nil {
			return nil, err
		}
	}
	var done int64
	for _, col := range cols {
		fc, err := c.cipherFor(ctx, tid, col.Name, col.EncryptedFields)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		err = c.eachRecordPage(ctx, tid, col.Name, ExportPage, func(records []*store.Record, last bool) error {
			for _, r := range records {
				open, err := fc.open(r)
				if err != nil {
					return err
				}
				err = aw.Add(archive.PartRecords, archiveRecord{Collection: col.Name, ID: r.ID, Version: r.Version,
					Data: open.Data, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt})
				if err != nil {
					return err
				}
			}
			done += int64(len(records))
			progress(done, max(total, done))
			if last {
				return nil
			}
			err := pace(ctx, time.Since(start), exportShare)
			start = time.Now()
			return err
		})
		if err != nil && !errors.Is(err, store.ErrNotFound) { // not found: dropped during the export
			return nil, err
		}
	}
	var users []*store.User
	var keys []*store.APIKey
	err = c.store.ReadTenant(ctx, tid, func(tx store.Tx) (err error) {
		if users, err = tx.ListUsers(ctx); err != nil {
			return err
		}
		keys, err = tx.ListAPIKeys(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		if err := aw.Add(archive.PartUsers, archiveUser{ID: u.ID, Email: u.Email, Role: u.Role, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}); err != nil {
			return nil, err
		}
	}
	for _, k := range keys {
		if err := aw.Add(archive.PartAPIKeys, archiveAPIKey{ID: k.ID, Name: k.Name, Role: k.Role, CreatedBy: k.CreatedBy,
			CreatedAt: k.CreatedAt, RevokedAt: k.RevokedAt}); err != nil {
			return nil, err
		}
	}
	// The chain's signed start, if retention cut it, then its checkpoints,
	// then the chain (see archive.Parts), each in pages.
	var start *store.AuditCut
	err = c.store.ReadTenant(ctx, tid, func(tx store.Tx) (err error) {
		start, err = tx.AuditStart(ctx)
		if errors.Is(err, store.ErrNotFound) {
			start, err = nil, nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if start != nil {
		if err := aw.Add(archive.PartAuditStart, start); err != nil {
			return nil, err
		}
	}
	for after := int64(0); ; {
		start := time.Now()
		var cps []*store.AuditCheckpoint
		err := c.store.ReadTenant(ctx, tid, func(tx store.Tx) (err error) {
			cps, err = tx.ListAuditCheckpoints(ctx, after, ExportPage)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, cp := range cps {
			if err := aw.Add(archive.PartCheckpoints, cp); err != nil {
				return nil, err
			}
			after = cp.Seq
		}
		if len(cps) < ExportPage {
			break
		}
		if err := pace(ctx, time.Since(start), exportShare); err != nil {
			return nil, err
		}
	}
	for after := int64(0); ; {
		start := time.Now()
		var entries []*store.AuditEntry
		err := c.store.ReadTenant(ctx, tid, func(tx store.Tx) (err error) {
			entries, err = tx.ListAudit(ctx, after, ExportPage)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if err := aw.Add(archive.PartAudit, e); err != nil {
				return nil, err
			}
			after = e.Seq
		}
		if len(entries) < ExportPage {
			break
		}
		if err := pace(ctx, time.Since(start), exportShare); err != nil {
			return nil, err
		}
	}
	return aw.Close()
}

// Download is an export archive being read.
type Download struct {
	io.ReadCloser
	Size int64
	// ETag identifies the archive's content.
	ETag    string
	ModTime time.Time
}

// OpenExport opens the tenant's export id for download. The blob key comes
// from the scope's tenant, so an export of another tenant is ErrNotFound,
// as is an expired one.
func (s *Scope) OpenExport(ctx context.Context, id string) (*Download, error) {
	if err := s.allow(access.ExportData); err != nil {
		return nil, err
	}
	c := s.core
	if c.blobs == nil {
		return nil, errNoExports
	}
	if _, err := parseUUID(id); err != nil {
		return nil, store.ErrNotFound
	}
	key := exportKey(s.tenant.ID, id)
	attrs, err := c.blobs.Attributes(ctx, key)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if c.now().Sub(attrs.ModTime) > ExportLife {
		return nil, store.ErrNotFound
	}
	r, err := c.blobs.NewReader(ctx, key, nil)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	etag := attrs.ETag
	if etag == "" && len(attrs.MD5) > 0 {
		etag = fmt.Sprintf(`"%x"`, attrs.MD5)
	}
	if etag == "" {
		etag = fmt.Sprintf(`"%s-%d-%d"`, id, attrs.Size, attrs.ModTime.UnixNano())
	}
	return &Download{ReadCloser: r, Size: r.Size(), ETag: etag, ModTime: attrs.ModTime}, nil
}

// SweepExports deletes export archives older than ExportLife and restore
// uploads older than a day (a restore reads its upload within hours).
// It returns how many it deleted.
func (c *Core) SweepExports(ctx context.Context) (int, error) {
	if c.blobs == nil {
		return 0, nil
	}
	n := 0
	for _, sweep := range []struct {
		prefix string
		life   time.Duration
	}{{"exports/", ExportLife}, {"restores/", 24 * time.Hour}} {
		it := c.blobs.List(&blob.ListOptions{Prefix: sweep.prefix})
		for {
			obj, err := it.Next(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				return n, err
			}
			if obj.IsDir || c.now().Sub(obj.ModTime) <= sweep.life {
				continue
			}
			if err := c.blobs.Delete(ctx, obj.Key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// parseUUID accepts a canonical lower-case UUID, as export ids are.
func parseUUID(s string) (string, error) {
	if _, err := tenant.ParseID(s); err != nil || strings.ToLower(s) != s {
		return "", store.ErrNotFound
	}
	return s, nil
}
