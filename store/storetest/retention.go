package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// testRetention covers retention: a collection's retention settings are
// stored; ExpireRecords deletes exactly the records older than the cut, on
// created_at, on updated_at and on a data field (keeping records lacking
// the field or holding anything but an RFC 3339 timestamp), in batches,
// and subtracts them from the usage; audit retention is stored; CutAudit
// removes exactly the entries and checkpoints below the cut, only at a
// matching checkpoint, and only forward. Each tenant reaches only its own,
// pooled and silo alike.
func (h *harness) testRetention(t *testing.T) {
	t.Parallel()
	for _, iso := range isolations {
		t.Run(isoName(iso), func(t *testing.T) {
			t.Parallel()
			e := h.setup(t)
			h.testExpireRecords(t, e, iso)
			h.testAuditCut(t, e, iso)
		})
	}
}

func (h *harness) testExpireRecords(t *testing.T, e *env, iso tenant.Isolation) {
	ctx := e.ctx
	a, b := e.tenant(iso), e.tenant(iso)
	col := &store.Collection{Name: "logs", Retention: 90 * 24 * time.Hour, CreatedAt: base, UpdatedAt: base}
	e.in(a.ID, func(tx store.Tx) error {
		_, err := tx.PutCollection(ctx, col)
		return err
	})
	e.read(a.ID, func(tx store.Tx) error {
		got, err := tx.GetCollection(ctx, "logs")
		if errIs(t, "GetCollection", err, nil) && (got.Retention != col.Retention || got.RetentionField != "") {
			t.Errorf("GetCollection: retention %v %q, want %v %q", got.Retention, got.RetentionField, col.Retention, "")
		}
		return nil
	})
	col.RetentionField, col.Retention, col.UpdatedAt = "ts", 12*time.Hour, at(time.Minute)
	e.in(a.ID, func(tx store.Tx) error {
		_, err := tx.PutCollection(ctx, col)
		return err
	})
	e.read(a.ID, func(tx store.Tx) error {
		cols, err := tx.ListCollections(ctx)
		if errIs(t, "ListCollections", err, nil) && (len(cols) != 1 || cols[0].Retention != 12*time.Hour || cols[0].RetentionField != "ts") {
			t.Errorf("ListCollections after replace: %+v, want retention 12h on ts", cols)
		}
		return nil
	})
	e.collection(b.ID, "logs")

	// Records 0..9 are created an hour apart before base, so that a cut at
	// base-4h30m expires o0..o5 on created_at.
	ts := []struct {
		id      store.RecordID
		data    string
		expired bool // on ts, cut at base
	}{
		{"d0", `{"ts":"2025-03-14T15:09:26.535896Z"}`, true},  // a microsecond before base
		{"d1", `{"ts":"2025-03-14T15:09:26.535897Z"}`, false}, // base itself
		{"d2", `{"ts":"2025-03-14T17:09:26+02:00"}`, true},    // base-535897µs with an offset
		{"d3", `{"ts":"2025-03-14T13:09:27-02:00"}`, false},   // after base with an offset
		{"d4", `{"ts":"2025-03-15T01:00:00+14:00"}`, true},    // a later date text, earlier instant
		{"d5", `{"ts":"2025-03-14T05:00:00-12:00"}`, false},   // an earlier time of day, later instant
		{"d6", `{"ts":"1999-01-01T00:00:00Z"}`, true},
		{"d7", `{"ts":"not a time"}`, false},
		{"d8", `{"ts":"2024-02-30T00:00:00Z"}`, false}, // no such day
		{"d9", `{"ts":"2024-01-01"}`, false},           // a date, not a timestamp
		{"da", `{"ts":12345}`, false},
		{"db", `{"ts":null}`, false},
		{"dc", `{"other":"1999-01-01T00:00:00Z"}`, false},
		{"dd", `{"ts":{"at":"1999-01-01T00:00:00Z"}}`, false},
		{"de", `{"ts":"2025-03-14 15:00:00Z"}`, false}, // a space, not RFC 3339
	}
	var before *store.Usage
	e.in(a.ID, func(tx store.Tx) error {
		for i := range 10 {
			r := record("logs", store.RecordID(fmt.Sprintf("o%d", i)), `{"n":1}`, at(-time.Duration(10-i)*time.Hour))
			errIs(t, "CreateRecord", tx.CreateRecord(ctx, r), nil)
		}
		for _, d := range ts {
			errIs(t, "CreateRecord "+string(d.id), tx.CreateRecord(ctx, record("logs", d.id, d.data, at(time.Hour))), nil)
		}
		var err error
		before, err = tx.Usage(ctx)
		return err
	})
	e.in(b.ID, func(tx store.Tx) error {
		return tx.CreateRecord(ctx, record("logs", "o0", `{"n":1}`, at(-10*time.Hour)))
	})

	cut := at(-4*time.Hour - 30*time.Minute) // o0..o5 are older
	e.read(a.ID, func(tx store.Tx) error {
		n, err := tx.CountExpiredRecords(ctx, "logs", store.RetentionCreatedAt, cut)
		if errIs(t, "CountExpiredRecords(created_at)", err, nil) && n != 6 {
			t.Errorf("CountExpiredRecords(created_at) = %d, want 6", n)
		}
		n, err = tx.CountExpiredRecords(ctx, "logs", "ts", base)
		if errIs(t, "CountExpiredRecords(ts)", err, nil) && n < 4 {
			t.Errorf("CountExpiredRecords(ts) = %d, want at least the 4 expired", n)
		}
		_, err = tx.ExpireRecords(ctx, &store.ExpireRecordsParams{Collection: "logs", Before: cut, Limit: 10})
		errIs(t, "ExpireRecords(read-only)", err, store.ErrReadOnly)
		return nil
	})
	// Tenant B's pass deletes B's record only.
	e.in(b.ID, func(tx store.Tx) error {
		res, err := tx.ExpireRecords(ctx, &store.ExpireRecordsParams{Collection: "logs", Before: base, Limit: 100})
		if errIs(t, "B ExpireRecords", err, nil) && res.Deleted != 1 {
			t.Errorf("B ExpireRecords deleted %d, want its 1", res.Deleted)
		}
		_, err = tx.ExpireRecords(ctx, &store.ExpireRecordsParams{Collection: "nope", Before: base, Limit: 100})
		errIs(t, "ExpireRecords(no collection)", err, store.ErrNotFound)
		return nil
	})

	// created_at, two at a time.
	var deleted, bytes int64
	for pass := 0; ; pass++ {
		var res *store.ExpireRecordsResult
		e.in(a.ID, func(tx store.Tx) (err error) {
			res, err = tx.ExpireRecords(ctx, &store.ExpireRecordsParams{Collection: "logs", Field: store.RetentionCreatedAt, Before: cut, Limit: 2})
			return err
		})
		deleted, bytes = deleted+res.Deleted, bytes+res.Bytes
		if !res.More || pass > 10 {
			break
		}
	}
	if deleted != 6 || bytes != 6*int64(len(`{"n":1}`)) {
		t.Errorf("ExpireRecords(created_at) deleted %d records of %d bytes, want 6 of %d", deleted, bytes, 6*len(`{"n":1}`))
	}
	want := []store.RecordID{"o6", "o7", "o8", "o9"}
	for _, d := range ts {
		want = append(want, d.id)
	}
	e.assertRecords(a.ID, want, before.Records-6, before.Bytes-bytes)

	// updated_at: o6 (created 4h before base) is updated at base, so a cut
	// at base-90m expires o7 and o8 (3h and 2h before) and keeps o6.
	e.in(a.ID, func(tx store.Tx) error {
		_, err := tx.UpdateRecord(ctx, &store.UpdateRecordParams{Collection: "logs", ID: "o6", Data: []byte(`{"n":22}`), UpdatedAt: base})
		return err
	})
	e.in(a.ID, func(tx store.Tx) error {
		res, err := tx.ExpireRecords(ctx, &store.ExpireRecordsParams{Collection: "logs", Field: store.RetentionUpdatedAt, Before: at(-90 * time.Minute), Limit: 100})
		if errIs(t, "ExpireRecords(updated_at)", err, nil) && (res.Deleted != 2 || res.More) {
			t.Errorf("ExpireRecords(updated_at) = %+v, want o7 and o8 deleted, no more", res)
		}
		return nil
	})
	want = slices.DeleteFunc(want, func(id store.RecordID) bool { return id == "o7" || id == "o8" })

	// The data field, three records examined at a time.
	var after store.RecordID
	deleted = 0
	for pass := 0; ; pass++ {
		var res *store.ExpireRecordsResult
		e.in(a.ID, func(tx store.Tx) (err error) {
			res, err = tx.ExpireRecords(ctx, &store.ExpireRecordsParams{Collection: "logs", Field: "ts", Before: base, After: after, Limit: 3})
			return err
		})
		deleted += res.Deleted
		if !res.More || pass > 20 {
			break
		}
		if res.NextAfter <= after {
			t.Fatalf("ExpireRecords(ts) NextAfter %q after %q does not advance", res.NextAfter, after)
		}
		after = res.NextAfter
	}
	want = slices.DeleteFunc(want, func(id store.RecordID) bool {
		for _, d := range ts {
			if d.id == id {
				return d.expired
			}
		}
		return false
	})
	if deleted != 4 {
		t.Errorf("ExpireRecords(ts) deleted %d, want 4", deleted)
	}
	e.read(a.ID, func(tx store.Tx) error {
		page, err := tx.ListRecords(ctx, &store.ListRecordsParams{Collection: "logs", Limit: 100})
		if errIs(t, "ListRecords", err, nil) {
			var got []store.RecordID
			for _, r := range page.Records {
				got = append(got, r.ID)
			}
			slices.Sort(got)
			slices.Sort(want)
			diff(t, "records kept after expiry on ts", want, got)
		}
		return nil
	})
}

// assertRecords checks tid's records in logs and its usage.
func (e *env) assertRecords(tid tenant.ID, want []store.RecordID, records, bytes int64) {
	e.t.Helper()
	e.read(tid, func(tx store.Tx) error {
		page, err := tx.ListRecords(e.ctx, &store.ListRecordsParams{Collection: "logs", Limit: 100})
		if errIs(e.t, "ListRecords", err, nil) {
			var got []store.RecordID
			for _, r := range page.Records {
				got = append(got, r.ID)
			}
			slices.Sort(got)
			w := slices.Sorted(slices.Values(want))
			diff(e.t, "records kept", w, got)
		}
		u, err := tx.Usage(e.ctx)
		if errIs(e.t, "Usage", err, nil) && (u.Records != records || u.Bytes != bytes) {
			e.t.Errorf("Usage = %+v, want %d records, %d bytes", u, records, bytes)
		}
		return nil
	})
}

func cutEntry(seq int64) *store.AuditEntry {
	return &store.AuditEntry{Seq: seq, Time: at(time.Duration(seq) * time.Second), Actor: "a", Action: "x", Resource: "r",
		RequestID: "q", Outcome: "success", PrevHash: []byte(fmt.Sprint("h", seq-1)), Hash: []byte(fmt.Sprint("h", seq))}
}

func (h *harness) testAuditCut(t *testing.T, e *env, iso tenant.Isolation) {
	ctx := e.ctx
	a, b := e.tenant(iso), e.tenant(iso)
	for _, tid := range []tenant.ID{a.ID, b.ID} {
		e.in(tid, func(tx store.Tx) error {
			if _, _, err := tx.AuditHead(ctx); err != nil {
				return err
			}
			for seq := int64(1); seq <= 8; seq++ {
				errIs(t, "AppendAudit", tx.AppendAudit(ctx, cutEntry(seq)), nil)
			}
			for _, seq := range []int64{2, 4, 6} {
				errIs(t, "PutAuditCheckpoint", tx.PutAuditCheckpoint(ctx, &store.AuditCheckpoint{Seq: seq, Hash: []byte(fmt.Sprint("h", seq)),
					KeyID: "k", Signature: []byte("s"), Time: base}), nil)
			}
			return nil
		})
	}
	e.read(a.ID, func(tx store.Tx) error {
		_, err := tx.GetAuditRetention(ctx)
		errIs(t, "GetAuditRetention(none)", err, store.ErrNotFound)
		_, err = tx.AuditStart(ctx)
		errIs(t, "AuditStart(never cut)", err, store.ErrNotFound)
		errIs(t, "PutAuditRetention(read-only)", tx.PutAuditRetention(ctx, &store.AuditRetention{Keep: time.Hour, UpdatedAt: base}), store.ErrReadOnly)
		errIs(t, "CutAudit(read-only)", tx.CutAudit(ctx, &store.AuditCut{Seq: 4, Hash: []byte("h4"), KeyID: "k", Signature: []byte("c"), Time: base}), store.ErrReadOnly)
		return nil
	})
	keep := &store.AuditRetention{Keep: 365 * 24 * time.Hour, UpdatedBy: "user:u1", UpdatedAt: base}
	e.in(a.ID, func(tx store.Tx) error {
		errIs(t, "PutAuditRetention", tx.PutAuditRetention(ctx, &store.AuditRetention{Keep: time.Hour, UpdatedBy: "x", UpdatedAt: base}), nil)
		errIs(t, "PutAuditRetention(replace)", tx.PutAuditRetention(ctx, keep), nil)
		got, err := tx.GetAuditRetention(ctx)
		if errIs(t, "GetAuditRetention", err, nil) {
			diff(t, "GetAuditRetention", keep, got)
		}
		return nil
	})
	e.in(a.ID, func(tx store.Tx) error {
		for _, c := range []struct {
			name string
			cut  *store.AuditCut
		}{
			{"no checkpoint", &store.AuditCut{Seq: 5, Hash: []byte("h5"), KeyID: "k", Signature: []byte("c"), Time: base}},
			{"wrong hash", &store.AuditCut{Seq: 4, Hash: []byte("h5"), KeyID: "k", Signature: []byte("c"), Time: base}},
			{"no entry", &store.AuditCut{Seq: 9, Hash: []byte("h9"), KeyID: "k", Signature: []byte("c"), Time: base}},
		} {
			errIs(t, "CutAudit("+c.name+")", tx.CutAudit(ctx, c.cut), store.ErrNotFound)
		}
		return nil
	})
	cut := &store.AuditCut{Seq: 4, Hash: []byte("h4"), KeyID: "k", Signature: []byte("c"), Time: base}
	e.in(a.ID, func(tx store.Tx) error { return tx.CutAudit(ctx, cut) })
	e.in(a.ID, func(tx store.Tx) error {
		errIs(t, "CutAudit(same)", tx.CutAudit(ctx, cut), store.ErrConflict)
		errIs(t, "CutAudit(backwards)", tx.CutAudit(ctx, &store.AuditCut{Seq: 2, Hash: []byte("h2"), KeyID: "k", Signature: []byte("c"), Time: base}), store.ErrConflict)
		seq, hash, err := tx.AuditHead(ctx)
		if errIs(t, "AuditHead", err, nil) && (seq != 8 || string(hash) != "h8") {
			t.Errorf("AuditHead after cut = %d %q, want 8 h8", seq, hash)
		}
		errIs(t, "AppendAudit after cut", tx.AppendAudit(ctx, cutEntry(9)), nil)
		return nil
	})
	e.read(a.ID, func(tx store.Tx) error {
		got, err := tx.AuditStart(ctx)
		if errIs(t, "AuditStart", err, nil) {
			diff(t, "AuditStart", cut, got)
		}
		es, err := tx.ListAudit(ctx, 0, 100)
		if errIs(t, "ListAudit", err, nil) {
			var seqs []int64
			for _, e := range es {
				seqs = append(seqs, e.Seq)
			}
			diff(t, "entries after cut", []int64{4, 5, 6, 7, 8, 9}, seqs)
		}
		cps, err := tx.ListAuditCheckpoints(ctx, 0, 100)
		if errIs(t, "ListAuditCheckpoints", err, nil) {
			var seqs []int64
			for _, c := range cps {
				seqs = append(seqs, c.Seq)
			}
			diff(t, "checkpoints after cut", []int64{4, 6}, seqs)
		}
		return nil
	})
	// Tenant B's chain, settings and start are untouched.
	e.read(b.ID, func(tx store.Tx) error {
		_, err := tx.AuditStart(ctx)
		errIs(t, "B AuditStart", err, store.ErrNotFound)
		_, err = tx.GetAuditRetention(ctx)
		errIs(t, "B GetAuditRetention", err, store.ErrNotFound)
		es, err := tx.ListAudit(ctx, 0, 100)
		if errIs(t, "B ListAudit", err, nil) && len(es) != 8 {
			t.Errorf("B ListAudit = %d entries, want its 8", len(es))
		}
		return nil
	})
}

// BenchExpireRecords measures Tx.ExpireRecords on s, in tenant tid (which
// it gives a collection "expiring"), and reports records/s: each iteration
// writes 500 expired records beside 2,000 kept ones (not timed) and purges
// them in transactions of at most 500, by created_at (an index range) and
// by a data field (a pass over the collection in id order, Limit 500 a
// call). DeleteEach is the baseline: the same records deleted one by one
// with DeleteRecord, in one transaction. Backends call it from their own
// benchmarks.
func BenchExpireRecords(b *testing.B, s store.Store, tid tenant.ID) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	err := s.InTenant(ctx, tid, func(tx store.Tx) error {
		if _, err := tx.PutCollection(ctx, &store.Collection{Name: "expiring", CreatedAt: now, UpdatedAt: now}); err != nil {
			return err
		}
		for j := range 2000 {
			data := fmt.Sprintf(`{"n":%d,"ts":%q}`, j, now.Add(time.Hour).Format(time.RFC3339Nano))
			if err := tx.CreateRecord(ctx, record("expiring", store.RecordID(fmt.Sprintf("k%05d", j)), data, now)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	const batch = 500
	old := now.Add(-time.Hour)
	cut := now.Add(-30 * time.Minute)
	iter := 0
	fill := func(b *testing.B) []store.RecordID {
		iter++
		ids := make([]store.RecordID, 0, batch)
		err := s.InTenant(ctx, tid, func(tx store.Tx) error {
			for j := range batch {
				id := store.RecordID(fmt.Sprintf("e%06d-%03d", iter, j))
				data := fmt.Sprintf(`{"n":%d,"ts":%q}`, j, old.Format(time.RFC3339Nano))
				if err := tx.CreateRecord(ctx, record("expiring", id, data, old)); err != nil {
					return err
				}
				ids = append(ids, id)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		return ids
	}
	for _, mode := range []string{"CreatedAt", "DataField", "DeleteEach"} {
		b.Run(mode, func(b *testing.B) {
			var n int64
			var took time.Duration
			for range b.N {
				b.StopTimer()
				ids := fill(b)
				b.StartTimer()
				start := time.Now()
				switch mode {
				case "DeleteEach":
					err = s.InTenant(ctx, tid, func(tx store.Tx) error {
						for _, id := range ids {
							if _, err := tx.DeleteRecord(ctx, "expiring", id, 0); err != nil {
								return err
							}
						}
						return nil
					})
					n += int64(len(ids))
				default:
					p := &store.ExpireRecordsParams{Collection: "expiring", Field: store.RetentionCreatedAt, Before: cut, Limit: batch}
					if mode == "DataField" {
						p.Field = "ts"
					}
					for more := true; more && err == nil; {
						err = s.InTenant(ctx, tid, func(tx store.Tx) error {
							r, err := tx.ExpireRecords(ctx, p)
							if err != nil {
								return err
							}
							n, more, p.After = n+r.Deleted, r.More, r.NextAfter
							return nil
						})
					}
				}
				took += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
			}
			if n != int64(b.N*batch) {
				b.Fatalf("purged %d records, want %d", n, b.N*batch)
			}
			b.ReportMetric(float64(n)/took.Seconds(), "records/s")
		})
	}
}
