package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/bulkheadhq/bulkhead/store"
)

// testWriteTransactions covers what a read-write transaction sees of its
// own writes while it runs: Usage counts them, the audit head follows the
// appends, and listings see the entries appended. It also checks that a
// quota checked against Usage after a write holds under concurrent writers.
func (h *harness) testWriteTransactions(t *testing.T) {
	for _, iso := range isolations {
		t.Run(isoName(iso), func(t *testing.T) {
			t.Parallel()
			e := h.setup(t)
			tn := e.tenant(iso)
			e.collection(tn.ID, "c")
			ctx := e.ctx
			d1, d2 := `{"a":1}`, `{"b":"two"}`
			usage := func(tx store.Tx, what string, want store.Usage) {
				t.Helper()
				got, err := tx.Usage(ctx)
				if errIs(t, what+": Usage", err, nil) {
					diff(t, what+": Usage", &want, got)
				}
			}
			e.in(tn.ID, func(tx store.Tx) error {
				usage(tx, "before any write", store.Usage{})
				errIs(t, "CreateRecord", tx.CreateRecord(ctx, record("c", "1", d1, base)), nil)
				usage(tx, "after a create", store.Usage{Records: 1, Bytes: int64(len(d1))})
				errIs(t, "CreateRecord", tx.CreateRecord(ctx, record("c", "2", d2, base)), nil)
				usage(tx, "after two creates", store.Usage{Records: 2, Bytes: int64(len(d1) + len(d2))})
				return nil
			})
			e.in(tn.ID, func(tx store.Tx) error {
				usage(tx, "in the next transaction", store.Usage{Records: 2, Bytes: int64(len(d1) + len(d2))})
				_, err := tx.UpdateRecord(ctx, &store.UpdateRecordParams{Collection: "c", ID: "1", Data: json.RawMessage(`{"a":"longer"}`), UpdatedAt: base})
				errIs(t, "UpdateRecord", err, nil)
				_, err = tx.DeleteRecord(ctx, "c", "2", 0)
				errIs(t, "DeleteRecord", err, nil)
				usage(tx, "after an update and a delete", store.Usage{Records: 1, Bytes: int64(len(`{"a":"longer"}`))})
				return nil
			})
			// A transaction that fails counts nothing.
			err := e.s.InTenant(ctx, tn.ID, func(tx store.Tx) error {
				errIs(t, "CreateRecord", tx.CreateRecord(ctx, record("c", "3", d2, base)), nil)
				usage(tx, "before failing", store.Usage{Records: 2, Bytes: int64(len(`{"a":"longer"}`) + len(d2))})
				return errTest
			})
			errIs(t, "InTenant(failing)", err, errTest)
			e.read(tn.ID, func(tx store.Tx) error {
				usage(tx, "after a failed transaction", store.Usage{Records: 1, Bytes: int64(len(`{"a":"longer"}`))})
				return nil
			})

			// Usage, AuditHead and AppendAudit interleaved: the head
			// follows the transaction's own appends, a seq that is taken
			// is refused at once (and the transaction goes on), and a
			// listing sees the entries appended.
			entry := func(seq int64, prev []byte) *store.AuditEntry {
				return &store.AuditEntry{Seq: seq, Time: base, Actor: "a", Action: "x", Resource: "r", RequestID: fmt.Sprint(seq),
					Outcome: "success", PrevHash: prev, Hash: fmt.Appendf(nil, "h%d", seq)}
			}
			e.in(tn.ID, func(tx store.Tx) error {
				usage(tx, "before the appends", store.Usage{Records: 1, Bytes: int64(len(`{"a":"longer"}`))})
				for i := int64(1); i <= 3; i++ {
					seq, hash, err := tx.AuditHead(ctx)
					if !errIs(t, "AuditHead", err, nil) {
						return nil
					}
					if seq != i-1 {
						t.Errorf("AuditHead = %d, want %d", seq, i-1)
					}
					errIs(t, fmt.Sprintf("AppendAudit(%d)", i), tx.AppendAudit(ctx, entry(i, hash)), nil)
				}
				errIs(t, "AppendAudit(taken seq)", tx.AppendAudit(ctx, entry(3, []byte("h2"))), store.ErrConflict)
				seq, hash, err := tx.AuditHead(ctx)
				if errIs(t, "AuditHead", err, nil) && (seq != 3 || string(hash) != "h3") {
					t.Errorf("AuditHead = %d, %q; want 3, h3", seq, hash)
				}
				es, err := tx.ListAudit(ctx, 0, 10)
				if errIs(t, "ListAudit", err, nil) && len(es) != 3 {
					t.Errorf("ListAudit in the appending transaction = %d entries, want 3", len(es))
				}
				return nil
			})
			e.read(tn.ID, func(tx store.Tx) error {
				es, err := tx.ListAudit(ctx, 0, 10)
				if errIs(t, "ListAudit", err, nil) && len(es) != 3 {
					t.Errorf("ListAudit after the commit = %d entries, want 3", len(es))
				}
				return nil
			})

			// Writers that each create a record and give up if Usage then
			// exceeds a cap never take the tenant past the cap together.
			const limit, goroutines, attempts = 12, 6, 4
			qt := e.tenant(iso)
			e.collection(qt.ID, "c")
			errOver := errors.New("over the cap")
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					for i := range attempts {
						err := e.s.InTenant(ctx, qt.ID, func(tx store.Tx) error {
							if err := tx.CreateRecord(ctx, record("c", store.RecordID(fmt.Sprintf("g%d-%d", g, i)), `{}`, base)); err != nil {
								return err
							}
							u, err := tx.Usage(ctx)
							if err != nil {
								return err
							}
							if u.Records > limit {
								return errOver
							}
							return nil
						})
						if err != nil && !errors.Is(err, errOver) {
							t.Errorf("InTenant = %v", err)
						}
					}
				})
			}
			wg.Wait()
			e.read(qt.ID, func(tx store.Tx) error {
				u, err := tx.Usage(ctx)
				if errIs(t, "Usage", err, nil) && u.Records != limit {
					t.Errorf("after %d capped writes of at most %d records, Usage.Records = %d, want %d",
						goroutines*attempts, limit, u.Records, limit)
				}
				rs, err := listAll(ctx, tx, store.ListRecordsParams{Collection: "c"})
				if errIs(t, "ListRecords", err, nil) && len(rs) != limit {
					t.Errorf("%d records, want %d", len(rs), limit)
				}
				return nil
			})
		})
	}
}
