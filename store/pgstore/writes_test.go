package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// A transaction that changes the usage while another holds the tenant's
// audit head (having read the usage for a quota check) commits only after
// that one ends, although it never locked the head itself: its commit
// batch does.
func TestPostgresUsageWaitsForQuotaCheck(t *testing.T) {
	superURL(t)
	t.Parallel()
	ctx := context.Background()
	d := newTestDB(t, t, true)
	s := openStore(t, d, nil)
	s2 := openStore(t, d, nil)
	for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
		tid := createTenant(t, s, iso)
		create := func(tx store.Tx, id store.RecordID) error {
			return tx.CreateRecord(ctx, &store.Record{Collection: "c", ID: id, Version: 1, Data: json.RawMessage(`{}`), CreatedAt: base, UpdatedAt: base})
		}
		if err := s.InTenant(ctx, tid, func(tx store.Tx) error {
			_, err := tx.PutCollection(ctx, &store.Collection{Name: "c", CreatedAt: base, UpdatedAt: base})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		holding, release, checked := make(chan struct{}), make(chan struct{}), make(chan error, 1)
		var releaseOnce sync.Once
		letGo := func() { releaseOnce.Do(func() { close(release) }) }
		defer letGo() // also when the test fails: Close waits for the transaction
		go func() {
			checked <- s.InTenant(ctx, tid, func(tx store.Tx) error {
				if err := create(tx, "checked"); err != nil {
					return err
				}
				u, err := tx.Usage(ctx)
				if err != nil {
					return err
				}
				if u.Records != 1 {
					return fmt.Errorf("usage %+v, want 1 record", u)
				}
				close(holding)
				<-release
				return nil
			})
		}()
		<-holding
		// The other write comes through another store, as from another
		// node: one store queues its own writes of a tenant before the
		// database (see writers), so only another process's write meets
		// the lock.
		other := make(chan error, 1)
		go func() {
			other <- s2.InTenant(ctx, tid, func(tx store.Tx) error { return create(tx, "other") })
		}()
		// Wait until the other transaction waits for a lock.
		admin := connect(t, d.adminURL(t))
		for deadline := time.Now().Add(time.Minute); ; {
			var waiting int
			err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND wait_event_type = 'Lock'`, d.App).Scan(&waiting)
			if err != nil {
				t.Fatal(err)
			}
			if waiting > 0 {
				break
			}
			select {
			case err := <-other:
				t.Fatalf("%s: a write committed while another transaction held the head after its quota check (%v)", iso, err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the other write never waited for a lock", iso)
			}
			time.Sleep(10 * time.Millisecond)
		}
		letGo()
		if err := <-checked; err != nil {
			t.Fatalf("%s: checked write = %v", iso, err)
		}
		if err := <-other; err != nil {
			t.Fatalf("%s: other write = %v", iso, err)
		}
		err := s.ReadTenant(ctx, tid, func(tx store.Tx) error {
			u, err := tx.Usage(ctx)
			if err == nil && u.Records != 2 {
				err = fmt.Errorf("usage %+v, want 2 records", u)
			}
			return err
		})
		if err != nil {
			t.Errorf("%s: %v", iso, err)
		}
	}
}

// An append deferred to COMMIT's batch that turns out to conflict (here the
// head row was set back behind the log behind the store's back) fails the
// transaction, which commits nothing: not the append, not the record, not
// the usage.
func TestPostgresDeferredAppendConflict(t *testing.T) {
	superURL(t)
	t.Parallel()
	ctx := context.Background()
	d := newTestDB(t, t, true)
	s := openStore(t, d, nil)
	tid := createTenant(t, s, tenant.Pooled)
	entry := func(seq int64) *store.AuditEntry {
		return &store.AuditEntry{Seq: seq, Time: base, Actor: "a", Action: "x", Resource: "r", RequestID: "q",
			Outcome: "success", Hash: fmt.Appendf(nil, "h%d", seq)}
	}
	err := s.InTenant(ctx, tid, func(tx store.Tx) error {
		if _, err := tx.PutCollection(ctx, &store.Collection{Name: "c", CreatedAt: base, UpdatedAt: base}); err != nil {
			return err
		}
		for seq := int64(1); seq <= 2; seq++ {
			if err := tx.AppendAudit(ctx, entry(seq)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	superExec(t, d.adminURL(t), fmt.Sprintf(`UPDATE bulkhead.audit_heads SET seq = 1 WHERE tenant_id = '%s'`, tid))

	var appendErr error
	err = s.InTenant(ctx, tid, func(tx store.Tx) error {
		if err := tx.CreateRecord(ctx, &store.Record{Collection: "c", ID: "r", Version: 1, Data: json.RawMessage(`{}`), CreatedAt: base, UpdatedAt: base}); err != nil {
			return err
		}
		if _, err := tx.Usage(ctx); err != nil {
			return err
		}
		seq, _, err := tx.AuditHead(ctx)
		if err != nil {
			return err
		}
		appendErr = tx.AppendAudit(ctx, entry(seq+1))
		return nil
	})
	t.Logf("AppendAudit = %v, InTenant = %v", appendErr, err)
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("InTenant = %v, want ErrConflict", err)
	}
	err = s.ReadTenant(ctx, tid, func(tx store.Tx) error {
		if _, err := tx.GetRecord(ctx, "c", "r"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetRecord = %v, want ErrNotFound", err)
		}
		if u, err := tx.Usage(ctx); err != nil || u.Records != 0 {
			t.Errorf("Usage = %+v, %v; want none", u, err)
		}
		es, err := tx.ListAudit(ctx, 0, 10)
		if err != nil || len(es) != 2 {
			t.Errorf("ListAudit = %d entries, %v; want 2", len(es), err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPostgresWritesQueueInProcess: a store lets one write transaction of a
// tenant at a time reach the database, and other tenants' writes pass.
func TestPostgresWritesQueueInProcess(t *testing.T) {
	superURL(t)
	t.Parallel()
	ctx := context.Background()
	d := newTestDB(t, t, true)
	s := openStore(t, d, nil)
	a, b := createTenant(t, s, tenant.Pooled), createTenant(t, s, tenant.Pooled)
	holding, release := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- s.InTenant(ctx, a, func(tx store.Tx) error {
			close(holding)
			<-release
			return nil
		})
	}()
	<-holding
	// Another tenant's write is not held up.
	if err := s.InTenant(ctx, b, func(tx store.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	// The same tenant's next write waits for its turn: here until its
	// context ends, holding no connection meanwhile.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	ran := false
	err := s.InTenant(short, a, func(tx store.Tx) error { ran = true; return nil })
	if !errors.Is(err, context.DeadlineExceeded) || ran {
		t.Errorf("second write of the tenant = %v (ran %v), want it to wait until its context ended", err, ran)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := s.InTenant(ctx, a, func(tx store.Tx) error { return nil }); err != nil {
		t.Errorf("write after the turn was released = %v", err)
	}
}
