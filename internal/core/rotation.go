package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/access"
	"github.com/bulkheadhq/bulkhead/internal/audit"
	"github.com/bulkheadhq/bulkhead/internal/jobs"
	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/internal/secevent"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// ReencryptBatch is how many records one transaction of a rotation
// re-encrypts.
const ReencryptBatch = 25

// rotations are the re-encryptions running on this node.
type rotations struct {
	mu      sync.Mutex
	running map[tenant.ID]*rotation
	erasing map[tenant.ID]bool // retired keys being erased
}

// rotation is the progress of one tenant's re-encryption on this node.
type rotation struct {
	done     atomic.Int64 // records re-encrypted
	started  time.Time
	progress func(done, total int64) // the job's Progress
	ended    chan struct{}           // closed when it ends
}

// KeyVersion describes one version of a tenant's data key, without any key
// material.
type KeyVersion struct {
	Version   int                `json:"version"`
	State     store.DataKeyState `json:"state"`
	CreatedAt time.Time          `json:"created_at"`
	UpdatedAt time.Time          `json:"updated_at"`
}

// RotationStatus is the state of a tenant's key rotation.
type RotationStatus struct {
	// State is "idle" (no version is retiring), "running" (this node is
	// re-encrypting records) or "pending" (a version is retiring and no
	// re-encryption runs on this node: another node's, or one a restart
	// resumes).
	State string `json:"state"`
	// Reencrypted counts the records this node re-encrypted in the
	// running rotation.
	Reencrypted int64 `json:"reencrypted"`
}

// KeyStatus is the answer of GET …/keys.
type KeyStatus struct {
	// KMS names the key management service holding the tenant's
	// key-encryption key: "local" or "vault".
	KMS string `json:"kms"`
	// ActiveVersion is the data key version new writes use; 0 while the
	// tenant has no keys (they are made at first use).
	ActiveVersion int            `json:"active_version"`
	Versions      []KeyVersion   `json:"versions"`
	Rotation      RotationStatus `json:"rotation"`
}

// Keys returns the versions of the tenant's data keys and the progress of
// a rotation, for the operator and the tenant's admins. It holds no key
// material.
func (s *Scope) Keys(ctx context.Context) (*KeyStatus, error) {
	if err := s.allow(access.ReadKeys); err != nil {
		return nil, err
	}
	return s.core.keyStatus(ctx, s.tenant.ID)
}

func (c *Core) keyStatus(ctx context.Context, tid tenant.ID) (*KeyStatus, error) {
	var rows []*store.DataKey
	err := c.store.ReadPlatform(ctx, func(tx store.PlatformTx) (err error) {
		rows, err = tx.ListDataKeys(ctx, tid)
		return err
	})
	if err != nil {
		return nil, err
	}
	st := &KeyStatus{Versions: []KeyVersion{}, Rotation: RotationStatus{State: "idle"}}
	if c.kms != nil {
		st.KMS = c.kms.Name()
	}
	retiring := false
	for _, r := range rows {
		if r.Purpose != store.PurposeData {
			continue
		}
		st.Versions = append(st.Versions, KeyVersion{Version: r.Version, State: r.State, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt})
		if r.State == store.KeyActive {
			st.ActiveVersion = r.Version
		}
		retiring = retiring || r.State == store.KeyRetiring
	}
	c.rotations.mu.Lock()
	run := c.rotations.running[tid]
	c.rotations.mu.Unlock()
	switch {
	case run != nil:
		st.Rotation = RotationStatus{State: "running", Reencrypted: run.done.Load()}
	case retiring:
		st.Rotation.State = "pending"
	}
	return st, nil
}

// RotateKeys gives the tenant a new data key version, which seals every
// write from now on, and re-encrypts its records under it in the
// background, as a rotate_keys job of the tenant (batch work that
// survives restarts); records stay readable throughout. The old version is
// retired once no record uses it. The tenant's chain records the rotation.
// Without a job runner it returns ErrJobsUnavailable and changes nothing.
func (ct *Control) RotateKeys(ctx context.Context, sc *Scope) (*KeyStatus, error) {
	if err := ct.target(sc); err != nil {
		return nil, err
	}
	c, tid := ct.core, sc.tenant.ID
	if c.jobs == nil {
		return nil, ErrJobsUnavailable
	}
	if _, err := c.keySet(ctx, tid); err != nil { // makes the first keys if needed
		return nil, err
	}
	var rows []*store.DataKey
	err := c.store.ReadPlatform(ctx, func(tx store.PlatformTx) (err error) {
		rows, err = tx.ListDataKeys(ctx, tid)
		return err
	})
	if err != nil {
		return nil, err
	}
	next := 1
	for _, r := range rows {
		if r.Purpose == store.PurposeData {
			next = max(next, r.Version+1)
		}
	}
	wrapped, err := c.kms.Wrap(ctx, tid, keyring.NewKey(), wrapAAD(tid, store.PurposeData, next))
	if err != nil {
		return nil, keysUnavailable(tid, err)
	}
	now := c.now()
	err = c.store.InPlatform(ctx, func(tx store.PlatformTx) error {
		rows, err := tx.ListDataKeys(ctx, tid)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if r.Purpose == store.PurposeData && r.State == store.KeyActive {
				r.State, r.UpdatedAt = store.KeyRetiring, now
				if err := tx.UpdateDataKey(ctx, r); err != nil {
					return err
				}
			}
		}
		return tx.CreateDataKey(ctx, &store.DataKey{Tenant: tid, Purpose: store.PurposeData, Version: next,
			State: store.KeyActive, Wrapped: wrapped, CreatedAt: now, UpdatedAt: now})
	})
	if errors.Is(err, store.ErrConflict) {
		return nil, &Error{Kind: KindConflict, Detail: "another rotation of this tenant's keys began at the same time", Pos: -1}
	}
	if err != nil {
		return nil, err
	}
	c.forgetKeys(tid)
	c.announceKeys(tid)
	ev := ct.event("keys.rotate", "data_key:"+strconv.Itoa(next))
	if err := c.store.InTenant(ctx, tid, func(tx store.Tx) error {
		_, err := c.audit.Append(ctx, tx, audit.TenantChain(tid), ev)
		return err
	}); err != nil {
		c.log.Error("rotation not recorded in the tenant's audit chain", "tenant", string(tid), "err", err)
	}
	c.emit(ctx, secevent.Event{Action: "data-key-rotated", Category: "configuration", Outcome: "success", Severity: 1,
		Tenant: tid, TenantSlug: sc.tenant.Slug, Actor: ct.principal.Actor(), Target: "data_key:" + strconv.Itoa(next),
		RequestID: ct.requestID, Reason: "data key rotation requested"})
	if _, err := c.enqueue(ctx, tid, KindRotateKeys, struct{}{}, ct.principal.Actor(), false); err != nil {
		// The new version seals writes already; the next start's
		// ResumeRotations enqueues the re-encryption.
		c.log.Error("re-encryption not enqueued", "tenant", string(tid), "err", err)
	}
	return c.keyStatus(ctx, tid)
}

// ResumeRotations enqueues a re-encryption for every tenant with a
// retiring data key and none queued or running: what a node stopped before
// jobs ran rotations, or a lost job queue, left. App calls it at start.
func (c *Core) ResumeRotations(ctx context.Context) error {
	var rows []*store.DataKey
	err := c.store.ReadPlatform(ctx, func(tx store.PlatformTx) (err error) {
		rows, err = tx.ListDataKeys(ctx, "")
		return err
	})
	if err != nil {
		return err
	}
	var tids []tenant.ID
	for _, r := range rows {
		if r.State == store.KeyRetiring && !slices.Contains(tids, r.Tenant) {
			tids = append(tids, r.Tenant)
		}
	}
	for _, tid := range tids {
		if _, err := c.enqueue(ctx, tid, KindRotateKeys, struct{}{}, systemActor, true); err != nil {
			return err
		}
	}
	return nil
}

// rotateResult is what a rotate_keys job made.
type rotateResult struct {
	// Reencrypted counts the records it re-encrypted.
	Reencrypted int64 `json:"reencrypted"`
}

// rotateKeysWork is the work of a rotate_keys job: passes over every
// collection with encrypted fields re-seal, ReencryptBatch records per
// transaction, each record sealed under another version than the active
// one; when a whole pass finds none, the retiring versions are retired.
// Its database work is the tenant's batch work (the runner's ticket); a
// failure for the database's or the KMS's sake is retried by the runner.
// One rotation of a tenant runs on a node at a time: a job that finds one
// running waits for it to end, then makes its own passes (which find
// little left).
func (c *Core) rotateKeysWork(ctx context.Context, t *jobs.Task) (any, error) {
	tid := t.Tenant
	run := &rotation{started: c.now(), progress: t.Progress, ended: make(chan struct{})}
	for {
		c.rotations.mu.Lock()
		other := c.rotations.running[tid]
		if other == nil {
			c.rotations.running[tid] = run
		}
		c.rotations.mu.Unlock()
		if other == nil {
			break
		}
		select {
		case <-other.ended:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	defer func() {
		c.rotations.mu.Lock()
		delete(c.rotations.running, tid)
		c.rotations.mu.Unlock()
		close(run.ended)
	}()
	ctx, stop := c.withLife(ctx)
	defer stop()
	err := c.rotate(ctx, tid, run)
	if errors.Is(err, store.ErrNotFound) {
		err = nil // the tenant is gone
	}
	return rotateResult{Reencrypted: run.done.Load()}, err
}

// errRotatedAgain says the active version changed during a pass.
var errRotatedAgain = errors.New("the active data key changed during the pass")

// rotate runs passes until one re-encrypts nothing, then retires the
// versions no record uses.
func (c *Core) rotate(ctx context.Context, tid tenant.ID, run *rotation) error {
	for {
		ks, err := c.keySet(ctx, tid)
		if err != nil {
			return err
		}
		n, err := c.reencryptPass(ctx, tid, ks, run)
		if err != nil {
			return err
		}
		if n > 0 {
			continue // nodes that had not yet heard of the rotation may have written meanwhile
		}
		err = c.retire(ctx, tid, ks.active)
		if errors.Is(err, errRotatedAgain) {
			continue
		}
		return err
	}
}

// reencryptPass re-seals under ks.active every record of tid sealed under
// another version, and returns how many it re-sealed. Each page is opened
// and sealed again outside any transaction; the write transaction only
// checks that each record is still the version that was read and stores
// the new form, so it holds the tenant's writer for the writes alone.
// After each batch the pass rests, so that re-encryption takes at most
// about a reencryptShare of the time and the tenant's (and, on a single
// writer, everyone's) interactive writes keep their latency.
func (c *Core) reencryptPass(ctx context.Context, tid tenant.ID, ks *keySet, run *rotation) (int, error) {
	var cols []*store.Collection
	err := c.store.ReadTenant(ctx, tid, func(tx store.Tx) (err error) {
		cols, err = tx.ListCollections(ctx)
		return err
	})
	if err != nil {
		return 0, err
	}
	total := 0
	for _, col := range cols {
		if len(col.EncryptedFields) == 0 {
			continue
		}
		fc := &fieldCipher{keys: ks, tid: tid, col: col.Name, fields: col.EncryptedFields}
		start := time.Now()
		err := c.eachRecordPage(ctx, tid, col.Name, ReencryptBatch, func(records []*store.Record, _ bool) error {
			defer func() { start = time.Now() }()
			var batch []*store.Record
			for _, r := range records {
				if !needsReseal(r.Data, ks.active) {
					continue
				}
				resealed, err := fc.resealRecord(r)
				if err != nil {
					return err
				}
				batch = append(batch, resealed)
			}
			if len(batch) == 0 {
				return nil
			}
			n, err := c.storeResealed(ctx, tid, fc, batch)
			if err != nil {
				return err
			}
			total += n
			if done := run.done.Add(int64(n)); run.progress != nil {
				run.progress(done, 0)
			}
			return pace(ctx, time.Since(start), reencryptShare)
		})
		if err != nil && !errors.Is(err, store.ErrNotFound) { // not found: the collection is gone
			return total, err
		}
	}
	return total, nil
}

// reencryptShare is the share of time a rotation's re-encryption may take:
// after a batch that took d it rests d×(1−share)/share.
const reencryptShare = 0.25

// needsReseal reports whether a stored record holds a value sealed under
// another version than active.
func needsReseal(data []byte, active int) bool {
	doc, err := decodeObject(data)
	if err != nil {
		return false
	}
	for _, v := range sealedVersions(doc) {
		if v != active {
			return true
		}
	}
	return false
}

// resealRecord returns r with its sealed values opened and sealed again
// under the active version, and r's version: the version the write must
// find for the new form to replace it.
func (fc *fieldCipher) resealRecord(r *store.Record) (*store.Record, error) {
	doc, err := decodeObject(r.Data)
	if err != nil {
		return nil, err
	}
	if err := fc.openDoc(r.ID, doc); err != nil {
		return nil, err
	}
	if err := fc.seal(r.ID, doc); err != nil {
		return nil, err
	}
	data, err := encodeCompact(doc)
	if err != nil {
		return nil, err
	}
	out := *r
	out.Data = data
	return &out, nil
}

// storeResealed stores, in one transaction, the re-sealed forms of batch
// whose records are still the version that was read. A record changed or
// deleted meanwhile is left to the next pass, or needs nothing.
// Re-encryption keeps the record's data and updated_at; its version
// increments, as for any change of what is stored.
func (c *Core) storeResealed(ctx context.Context, tid tenant.ID, fc *fieldCipher, batch []*store.Record) (int, error) {
	n := 0
	err := c.store.InTenant(ctx, tid, func(tx store.Tx) error {
		n = 0
		col, err := tx.GetCollection(ctx, fc.col)
		if err != nil {
			return err
		}
		if err := fc.check(col); err != nil {
			return store.ErrNotFound // another collection of that name now
		}
		for _, r := range batch {
			_, err := tx.UpdateRecord(ctx, &store.UpdateRecordParams{Collection: fc.col, ID: r.ID, IfVersion: r.Version,
				Data: r.Data, UpdatedAt: r.UpdatedAt})
			if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrVersionMismatch) {
				continue
			}
			if err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	return n, err
}

// retire marks retired the retiring data keys of tid older than active,
// unless active is no longer the active version. Their wrapped material is
// kept for retiredKeyLife, to open the idempotent responses sealed under
// them, and erased afterwards (eraseRetired).
func (c *Core) retire(ctx context.Context, tid tenant.ID, active int) error {
	now := c.now()
	var retired []int
	err := c.store.InPlatform(ctx, func(tx store.PlatformTx) error {
		retired = nil
		rows, err := tx.ListDataKeys(ctx, tid)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if r.Purpose == store.PurposeData && r.State == store.KeyActive && r.Version != active {
				return errRotatedAgain
			}
		}
		for _, r := range rows {
			if r.Purpose == store.PurposeData && r.State == store.KeyRetiring && r.Version < active {
				r.State, r.UpdatedAt = store.KeyRetired, now
				if err := tx.UpdateDataKey(ctx, r); err != nil {
					return err
				}
				retired = append(retired, r.Version)
			}
		}
		return nil
	})
	if err != nil || len(retired) == 0 {
		return err
	}
	c.forgetKeys(tid)
	c.announceKeys(tid)
	ev := audit.Event{Time: now, Actor: "system", Action: "keys.retire", Resource: "data_key:" + fmt.Sprint(retired),
		Outcome: audit.Success}
	if err := c.store.InTenant(ctx, tid, func(tx store.Tx) error {
		_, err := c.audit.Append(ctx, tx, audit.TenantChain(tid), ev)
		return err
	}); err != nil && !errors.Is(err, store.ErrNotFound) {
		c.log.Error("key retirement not recorded in the tenant's audit chain", "tenant", string(tid), "err", err)
	}
	c.emit(ctx, secevent.Event{Action: "data-key-retired", Category: "configuration", Outcome: "success", Severity: 1,
		Tenant: tid, Actor: "system", Target: "data_key:" + fmt.Sprint(retired), Reason: "no record uses it any more"})
	return nil
}

// eraseRetired erases the wrapped material of tid's data keys retired for
// longer than retiredKeyLife. It runs in the background after a key set is
// loaded: first a re-encryption pass re-seals whatever a node that had not
// heard of the rotation may still have sealed under them, then, if that
// pass found nothing, the material goes.
func (c *Core) eraseRetired(tid tenant.ID, rows []*store.DataKey) {
	now := c.now()
	var old []*store.DataKey
	for _, r := range rows {
		if r.State == store.KeyRetired && r.Wrapped != nil && now.Sub(r.UpdatedAt) > retiredKeyLife {
			old = append(old, r)
		}
	}
	if len(old) == 0 {
		return
	}
	c.rotations.mu.Lock()
	if c.rotations.erasing[tid] {
		c.rotations.mu.Unlock()
		return
	}
	c.rotations.erasing[tid] = true
	c.rotations.mu.Unlock()
	c.builds.Add(1)
	go func() {
		defer c.builds.Done()
		defer func() {
			c.rotations.mu.Lock()
			delete(c.rotations.erasing, tid)
			c.rotations.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(c.life, time.Hour)
		defer cancel()
		ks, err := c.keySet(ctx, tid)
		if err != nil {
			return
		}
		if n, err := c.reencryptPass(ctx, tid, ks, &rotation{}); err != nil || n > 0 {
			return // the next load tries again
		}
		err = c.store.InPlatform(ctx, func(tx store.PlatformTx) error {
			for _, r := range old {
				k := *r
				k.Wrapped, k.UpdatedAt = nil, now
				if err := tx.UpdateDataKey(ctx, &k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			c.log.Warn("retired data keys not erased; the next load tries again", "tenant", string(tid), "err", err)
			return
		}
		c.forgetKeys(tid)
		c.announceKeys(tid)
	}()
}

// RotateKEK rotates the keys that wrap tenants' keys in the KMS (Local:
// the platform KEK; Vault: each tenant's transit key) and re-wraps every
// stored data key under the new versions. Records are not rewritten: their
// data keys do not change. The platform chain records it.
func (ct *Control) RotateKEK(ctx context.Context) (int, error) {
	if err := ct.check(); err != nil {
		return 0, err
	}
	c := ct.core
	if c.kms == nil {
		return 0, keysUnavailable("", errors.New("no key management service is configured"))
	}
	var rows []*store.DataKey
	err := c.store.ReadPlatform(ctx, func(tx store.PlatformTx) (err error) {
		rows, err = tx.ListDataKeys(ctx, "")
		return err
	})
	if err != nil {
		return 0, err
	}
	var tids []tenant.ID
	for _, r := range rows {
		if !slices.Contains(tids, r.Tenant) {
			tids = append(tids, r.Tenant)
		}
	}
	if err := c.kms.RotateKEK(ctx, tids); err != nil {
		return 0, keysUnavailable("", err)
	}
	now := c.now()
	n := 0
	for _, tid := range tids {
		var mine []*store.DataKey
		for _, r := range rows {
			if r.Tenant == tid && r.Wrapped != nil {
				w, err := c.kms.Rewrap(ctx, tid, r.Wrapped, wrapAAD(tid, r.Purpose, r.Version))
				if err != nil {
					return n, keysUnavailable(tid, err)
				}
				k := *r
				k.Wrapped, k.UpdatedAt = w, now
				mine = append(mine, &k)
			}
		}
		err := c.store.InPlatform(ctx, func(tx store.PlatformTx) error {
			for _, k := range mine {
				if err := tx.UpdateDataKey(ctx, k); err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return n, err
		}
		n += len(mine)
		c.forgetKeys(tid)
		c.announceKeys(tid)
	}
	err = c.store.InPlatform(ctx, func(tx store.PlatformTx) error {
		_, err := c.audit.Append(ctx, tx, audit.PlatformChain, ct.event("keys.rotate_kek", "kms:"+c.kms.Name()))
		return err
	})
	if err != nil {
		return n, err
	}
	c.emit(ctx, secevent.Event{Action: "kek-rotated", Category: "configuration", Outcome: "success", Severity: 2,
		Actor: ct.principal.Actor(), Target: "kms:" + c.kms.Name(), RequestID: ct.requestID,
		Reason: fmt.Sprintf("%d wrapped data keys of %d tenants re-wrapped", n, len(tids))})
	return n, nil
}

// shred destroys tid's keys — its key in the KMS, then its wrapped data
// keys — before its data is purged: every copy of its encrypted values,
// in the database or any backup of it, is then unreadable. The platform
// chain records it in tx.
func (c *Core) shred(ctx context.Context, ct *Control, t *store.Tenant) error {
	var rows []*store.DataKey
	err := c.store.ReadPlatform(ctx, func(tx store.PlatformTx) (err error) {
		rows, err = tx.ListDataKeys(ctx, t.ID)
		return err
	})
	if err != nil {
		return err
	}
	if c.kms != nil {
		if err := c.kms.DestroyKey(ctx, t.ID); err != nil {
			if len(rows) > 0 {
				return keysUnavailable(t.ID, err) // it had keys, and they are not destroyed: no deletion
			}
			c.log.Warn("tenant key not destroyed in the KMS; the tenant had no data keys", "tenant", string(t.ID), "err", err)
		}
	}
	err = c.store.InPlatform(ctx, func(tx store.PlatformTx) error {
		if err := tx.DeleteDataKeys(ctx, t.ID); err != nil {
			return err
		}
		_, err := c.audit.Append(ctx, tx, audit.PlatformChain, ct.event("tenant.shred", "tenant:"+string(t.ID)))
		return err
	})
	if err != nil {
		return err
	}
	c.forgetKeys(t.ID)
	c.announceKeys(t.ID)
	c.emit(ctx, secevent.Event{Action: "tenant-crypto-shredded", Category: "configuration", Outcome: "success", Severity: 3,
		Tenant: t.ID, TenantSlug: t.Slug, Actor: ct.principal.Actor(), Target: "tenant:" + string(t.ID),
		RequestID: ct.requestID, Reason: fmt.Sprintf("tenant deleted: its KMS key and %d wrapped data keys destroyed", len(rows))})
	return nil
}
