package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/filter"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// putIndexes declares indexes on collection name of tid, creating it if
// needed, and returns whether it was created.
func (e *env) putIndexes(tid tenant.ID, name store.CollectionName, ixs ...store.Index) bool {
	e.t.Helper()
	var created bool
	e.in(tid, func(tx store.Tx) error {
		var err error
		created, err = tx.PutCollection(e.ctx, &store.Collection{Name: name, Indexes: ixs, CreatedAt: base, UpdatedAt: base})
		return err
	})
	return created
}

// build runs BuildIndexes and fails the test if it returns an error.
func (e *env) build(tid tenant.ID, name store.CollectionName) {
	e.t.Helper()
	if err := e.s.BuildIndexes(e.ctx, tid, name); err != nil {
		e.t.Fatalf("BuildIndexes(%s) = %v", name, err)
	}
}

// indexes returns the declared indexes of collection name of tid.
func (e *env) indexes(tid tenant.ID, name store.CollectionName) []store.Index {
	e.t.Helper()
	var ixs []store.Index
	e.read(tid, func(tx store.Tx) error {
		c, err := tx.GetCollection(e.ctx, name)
		if err != nil {
			return err
		}
		ixs = c.Indexes
		return nil
	})
	return ixs
}

// pending reports whether PendingIndexBuilds lists tid's collection name.
func (e *env) pending(tid tenant.ID, name store.CollectionName) bool {
	e.t.Helper()
	builds, err := e.s.PendingIndexBuilds(e.ctx)
	if err != nil {
		e.t.Fatalf("PendingIndexBuilds = %v", err)
	}
	return slices.Contains(builds, store.IndexBuild{Tenant: tid, Collection: name})
}

// uniqueIs reports, with t.Errorf, an error that is not a *UniqueError
// naming index of collection, or that does not match ErrConflict.
func uniqueIs(t *testing.T, what string, err error, collection store.CollectionName, index string) {
	t.Helper()
	var ue *store.UniqueError
	if !errors.As(err, &ue) || ue.Collection != collection || ue.Index != index || !errors.Is(err, store.ErrConflict) {
		t.Errorf("%s = %v, want a *store.UniqueError of index %q of collection %q", what, err, index, collection)
	}
}

func ix(unique bool, fields ...string) store.Index {
	return store.Index{Fields: fields, Unique: unique}
}

func withState(state store.IndexState, ixs ...store.Index) []store.Index {
	out := make([]store.Index, len(ixs))
	for i, x := range ixs {
		x.State = state
		out[i] = x
	}
	return out
}

func (h *harness) testIndexes(t *testing.T, iso tenant.Isolation) {
	setup := func(t *testing.T) (*env, *store.Tenant) {
		t.Parallel()
		e := h.setup(t)
		return e, e.tenant(iso)
	}

	// Declarations are stored building whatever state they claim, built to
	// ready, kept across replacements that keep them, and forgotten when
	// no longer declared.
	t.Run("IndexDeclarations", func(t *testing.T) {
		e, tn := setup(t)
		owner, nOwner, title := ix(false, "owner"), ix(true, "-n", "owner"), ix(false, "title", "created_at")
		claimed := owner
		claimed.State, claimed.Error = store.IndexReady, "claimed"
		if !e.putIndexes(tn.ID, "docs", claimed, nOwner) {
			t.Error("PutCollection(new, with indexes) created = false")
		}
		diff(t, "declared indexes", withState(store.IndexBuilding, owner, nOwner), e.indexes(tn.ID, "docs"))
		e.read(tn.ID, func(tx store.Tx) error {
			cs, err := tx.ListCollections(e.ctx)
			if errIs(t, "ListCollections", err, nil) && len(cs) == 1 {
				diff(t, "ListCollections' indexes", withState(store.IndexBuilding, owner, nOwner), cs[0].Indexes)
			}
			return nil
		})
		if !e.pending(tn.ID, "docs") {
			t.Error("PendingIndexBuilds does not list a collection with indexes building")
		}

		e.build(tn.ID, "docs")
		diff(t, "built indexes", withState(store.IndexReady, owner, nOwner), e.indexes(tn.ID, "docs"))
		if e.pending(tn.ID, "docs") {
			t.Error("PendingIndexBuilds lists a collection whose indexes are built")
		}
		e.build(tn.ID, "docs") // nothing to do
		diff(t, "indexes built twice", withState(store.IndexReady, owner, nOwner), e.indexes(tn.ID, "docs"))

		// Replace: the kept index keeps its state (in its new position),
		// the new one is building, the dropped one is gone.
		if e.putIndexes(tn.ID, "docs", title, nOwner) {
			t.Error("PutCollection(replace) created = true")
		}
		want := []store.Index{withState(store.IndexBuilding, title)[0], withState(store.IndexReady, nOwner)[0]}
		diff(t, "replaced indexes", want, e.indexes(tn.ID, "docs"))
		e.build(tn.ID, "docs")
		diff(t, "replaced indexes built", withState(store.IndexReady, title, nOwner), e.indexes(tn.ID, "docs"))
		// As many fields as an index may have, unique or not.
		wide := ix(true, "a", "-b", "c", "d", "e", "f", "g", "h")
		wider := ix(false, "-a", "b", "c", "d", "e", "f", "g", "h")
		e.putIndexes(tn.ID, "docs", wide, wider)
		e.build(tn.ID, "docs")
		diff(t, "indexes of 8 fields", withState(store.IndexReady, wide, wider), e.indexes(tn.ID, "docs"))
		// The same fields with another uniqueness is another index.
		nOwnerPlain := ix(false, "-n", "owner")
		e.putIndexes(tn.ID, "docs", nOwnerPlain)
		diff(t, "uniqueness changed", withState(store.IndexBuilding, nOwnerPlain), e.indexes(tn.ID, "docs"))
		e.build(tn.ID, "docs")
		// Declaring none removes them all.
		e.putIndexes(tn.ID, "docs")
		if got := e.indexes(tn.ID, "docs"); got != nil {
			t.Errorf("indexes after declaring none = %+v, want nil", got)
		}
		e.build(tn.ID, "docs")
		if e.pending(tn.ID, "docs") {
			t.Error("PendingIndexBuilds lists a collection without indexes")
		}

		// Invalid declarations are refused and change nothing.
		for _, bad := range [][]store.Index{
			{ix(false)},
			{ix(false, "a b")},
			{ix(false, "+a")},
			{ix(false, "a", "a")},
			{ix(false, "a"), ix(true, "a")}, // two indexes of one name
			{ix(false, "a", "b", "c", "d", "e", "f", "g", "h", "i")},
		} {
			err := e.s.InTenant(e.ctx, tn.ID, func(tx store.Tx) error {
				_, err := tx.PutCollection(e.ctx, &store.Collection{Name: "docs", Indexes: bad, CreatedAt: base, UpdatedAt: base})
				return err
			})
			if err == nil {
				t.Errorf("PutCollection(indexes %+v) = nil error", bad)
			}
		}
		if got := e.indexes(tn.ID, "docs"); got != nil {
			t.Errorf("indexes after refused declarations = %+v, want nil", got)
		}

		err := e.s.BuildIndexes(e.ctx, tn.ID, "nope")
		errIs(t, "BuildIndexes(unknown collection)", err, store.ErrNotFound)
		err = e.s.BuildIndexes(e.ctx, tenant.ID(createParams(iso).ID), "docs")
		errIs(t, "BuildIndexes(unknown tenant)", err, store.ErrNotFound)
		errIs(t, "BuildIndexes(no tenant)", e.s.BuildIndexes(e.ctx, "", "docs"), store.ErrNoTenant)
	})

	// A unique index refuses a second record with equal values in its
	// fields, by type (5 is not "5"), and ignores records lacking one of
	// them or holding null there; the transaction goes on after the
	// refusal. Another collection of the tenant is not concerned.
	t.Run("UniqueIndex", func(t *testing.T) {
		e, tn := setup(t)
		email, orgEmail := ix(true, "email"), ix(true, "org", "-email")
		e.putIndexes(tn.ID, "people", email)
		e.putIndexes(tn.ID, "members", orgEmail)
		e.putIndexes(tn.ID, "others", email)
		e.in(tn.ID, func(tx store.Tx) error {
			for i, d := range []string{`{"email":"a@x"}`, `{"email":"b@x"}`, `{}`, `{"email":null}`, `{"x":1}`,
				`{"email":"5"}`, `{"email":5}`, `{"email":true}`, `{"email":[1]}`, `{"email":{"a":1}}`} {
				errIs(t, "CreateRecord", tx.CreateRecord(e.ctx, record("people", store.RecordID(fmt.Sprintf("p%d", i)), d, base)), nil)
			}
			for i, d := range []string{`{"org":1,"email":"a"}`, `{"org":2,"email":"a"}`, `{"email":"a"}`, `{"email":"a"}`, `{"org":1}`, `{"org":1}`} {
				errIs(t, "CreateRecord", tx.CreateRecord(e.ctx, record("members", store.RecordID(fmt.Sprintf("m%d", i)), d, base)), nil)
			}
			return nil
		})
		for _, col := range []store.CollectionName{"people", "members", "others"} {
			e.build(tn.ID, col)
		}
		diff(t, "indexes", withState(store.IndexReady, email), e.indexes(tn.ID, "people"))
		e.in(tn.ID, func(tx store.Tx) error {
			ctx := e.ctx
			uniqueIs(t, "CreateRecord(duplicate email)", tx.CreateRecord(ctx, record("people", "d1", `{"email":"a@x","y":2}`, base)), "people", "email")
			uniqueIs(t, "CreateRecord(duplicate number)", tx.CreateRecord(ctx, record("people", "d2", `{"email":5.0}`, base)), "people", "email")
			uniqueIs(t, "CreateRecord(duplicate boolean)", tx.CreateRecord(ctx, record("people", "d3", `{"email":true}`, base)), "people", "email")
			uniqueIs(t, "CreateRecord(duplicate org and email)", tx.CreateRecord(ctx, record("members", "d4", `{"org":1,"email":"a","x":1}`, base)),
				"members", "org,-email")
			// The transaction goes on after a refusal. Objects and arrays,
			// which sort alike, never conflict.
			for id, d := range map[store.RecordID]string{"n1": `{"name":"x"}`, "n2": `{"email":null}`, "n3": `{"email":"c@x"}`,
				"n4": `{"email":[1]}`, "n5": `{"email":{"a":1}}`, "n6": `{"email":"A@x"}`} {
				errIs(t, "CreateRecord(accepted "+string(id)+")", tx.CreateRecord(ctx, record("people", id, d, base)), nil)
			}
			errIs(t, "CreateRecord(other org)", tx.CreateRecord(ctx, record("members", "n7", `{"org":3,"email":"a"}`, base)), nil)
			errIs(t, "CreateRecord(other collection)", tx.CreateRecord(ctx, record("others", "o1", `{"email":"a@x"}`, base)), nil)
			errIs(t, "CreateRecord(duplicate id)", tx.CreateRecord(ctx, record("people", "n3", `{"email":"z@x"}`, base)), store.ErrConflict)

			_, err := tx.UpdateRecord(ctx, &store.UpdateRecordParams{Collection: "people", ID: "p1", Data: json.RawMessage(`{"email":"a@x"}`), UpdatedAt: at(time.Hour)})
			uniqueIs(t, "UpdateRecord(to a taken email)", err, "people", "email")
			_, err = tx.UpdateRecord(ctx, &store.UpdateRecordParams{Collection: "people", ID: "p1", IfVersion: 1, Data: json.RawMessage(`{"email":"b@x","v":2}`), UpdatedAt: at(time.Hour)})
			errIs(t, "UpdateRecord(keeping its own email)", err, nil)
			_, err = tx.UpdateRecord(ctx, &store.UpdateRecordParams{Collection: "people", ID: "p1", IfVersion: 1, Data: json.RawMessage(`{"email":"d@x"}`), UpdatedAt: at(time.Hour)})
			errIs(t, "UpdateRecord(stale version)", err, store.ErrVersionMismatch)
			_, err = tx.UpdateRecord(ctx, &store.UpdateRecordParams{Collection: "people", ID: "p2", Data: json.RawMessage(`{"email":"d@x"}`), UpdatedAt: at(time.Hour)})
			errIs(t, "UpdateRecord(missing email to a new one)", err, nil)
			_, err = tx.UpdateRecord(ctx, &store.UpdateRecordParams{Collection: "people", ID: "nope", Data: json.RawMessage(`{}`), UpdatedAt: at(time.Hour)})
			errIs(t, "UpdateRecord(unknown record)", err, store.ErrNotFound)
			_, err = tx.UpdateRecord(ctx, &store.UpdateRecordParams{Collection: "members", ID: "m2", Data: json.RawMessage(`{"org":2,"email":"a"}`), UpdatedAt: at(time.Hour)})
			uniqueIs(t, "UpdateRecord(to a taken org and email)", err, "members", "org,-email")
			return nil
		})
		e.read(tn.ID, func(tx store.Tx) error {
			got, err := tx.GetRecord(e.ctx, "people", "p1")
			if errIs(t, "GetRecord(p1)", err, nil) && (got.Version != 2 || string(got.Data) != `{"email":"b@x","v":2}`) {
				t.Errorf("p1 = version %d %s after one update and one refused, want version 2", got.Version, got.Data)
			}
			for _, id := range []store.RecordID{"d1", "d2", "d3"} {
				_, err := tx.GetRecord(e.ctx, "people", id)
				errIs(t, "GetRecord(refused "+string(id)+")", err, store.ErrNotFound)
			}
			_, err = tx.GetRecord(e.ctx, "members", "d4")
			errIs(t, "GetRecord(refused d4)", err, store.ErrNotFound)
			u, err := tx.Usage(e.ctx)
			// 10 people, 6 members, 6 more people, 1 more member, 1 other.
			if errIs(t, "Usage", err, nil) && u.Records != 24 {
				t.Errorf("Usage().Records = %d, want 24: refused records must not count", u.Records)
			}
			return nil
		})

		// No longer declared, the index no longer refuses.
		e.putIndexes(tn.ID, "people")
		e.build(tn.ID, "people")
		e.in(tn.ID, func(tx store.Tx) error {
			errIs(t, "CreateRecord(email of a dropped unique index)", tx.CreateRecord(e.ctx, record("people", "d5", `{"email":"c@x"}`, base)), nil)
			return nil
		})
	})

	// A unique index over records that violate it fails to build, with a
	// reason, and does not refuse writes; declaring it again retries.
	t.Run("UniqueIndexOverDuplicates", func(t *testing.T) {
		e, tn := setup(t)
		e.collection(tn.ID, "tags")
		e.in(tn.ID, func(tx store.Tx) error {
			errIs(t, "CreateRecord", tx.CreateRecord(e.ctx, record("tags", "t1", `{"k":"x"}`, base)), nil)
			errIs(t, "CreateRecord", tx.CreateRecord(e.ctx, record("tags", "t2", `{"k":"x"}`, base)), nil)
			return nil
		})
		k := ix(true, "k")
		e.putIndexes(tn.ID, "tags", k)
		e.build(tn.ID, "tags")
		got := e.indexes(tn.ID, "tags")
		if len(got) != 1 || got[0].State != store.IndexFailed || got[0].Error == "" {
			t.Fatalf("unique index over duplicates = %+v, want failed with a reason", got)
		}
		if e.pending(tn.ID, "tags") {
			t.Error("PendingIndexBuilds lists a collection whose index failed")
		}
		e.in(tn.ID, func(tx store.Tx) error {
			errIs(t, "CreateRecord(under a failed unique index)", tx.CreateRecord(e.ctx, record("tags", "t3", `{"k":"x"}`, base)), nil)
			return nil
		})
		// Re-declared unchanged, a failed index is retried.
		e.putIndexes(tn.ID, "tags", k)
		diff(t, "failed index declared again", withState(store.IndexBuilding, k), e.indexes(tn.ID, "tags"))
		e.in(tn.ID, func(tx store.Tx) error {
			for _, id := range []store.RecordID{"t2", "t3"} {
				_, err := tx.DeleteRecord(e.ctx, "tags", id, 0)
				errIs(t, "DeleteRecord", err, nil)
			}
			return nil
		})
		e.build(tn.ID, "tags")
		diff(t, "retried index", withState(store.IndexReady, k), e.indexes(tn.ID, "tags"))
		e.in(tn.ID, func(tx store.Tx) error {
			uniqueIs(t, "CreateRecord(duplicate)", tx.CreateRecord(e.ctx, record("tags", "t4", `{"k":"x"}`, base)), "tags", "k")
			return nil
		})
	})

	t.Run("DeleteCollection", func(t *testing.T) {
		e, tn := setup(t)
		e.collection(tn.ID, "keep")
		e.putIndexes(tn.ID, "gone", ix(true, "k"))
		e.build(tn.ID, "gone")
		e.in(tn.ID, func(tx store.Tx) error {
			errIs(t, "CreateRecord", tx.CreateRecord(e.ctx, record("keep", "r1", `{"k":"x"}`, base)), nil)
			errIs(t, "CreateRecord", tx.CreateRecord(e.ctx, record("gone", "r1", `{"k":"x"}`, base)), nil)
			errIs(t, "CreateRecord", tx.CreateRecord(e.ctx, record("gone", "r2", `{"k":"yy"}`, base)), nil)
			return nil
		})
		e.read(tn.ID, func(tx store.Tx) error {
			errIs(t, "DeleteCollection(read-only)", tx.DeleteCollection(e.ctx, "gone"), store.ErrReadOnly)
			return nil
		})
		// A failed function rolls the deletion back.
		err := e.s.InTenant(e.ctx, tn.ID, func(tx store.Tx) error {
			errIs(t, "DeleteCollection", tx.DeleteCollection(e.ctx, "gone"), nil)
			return errTest
		})
		errIs(t, "InTenant(failing)", err, errTest)
		e.in(tn.ID, func(tx store.Tx) error {
			errIs(t, "DeleteCollection", tx.DeleteCollection(e.ctx, "gone"), nil)
			errIs(t, "DeleteCollection(again)", tx.DeleteCollection(e.ctx, "gone"), store.ErrNotFound)
			errIs(t, "DeleteCollection(unknown)", tx.DeleteCollection(e.ctx, "nope"), store.ErrNotFound)
			return nil
		})
		e.read(tn.ID, func(tx store.Tx) error {
			_, err := tx.GetCollection(e.ctx, "gone")
			errIs(t, "GetCollection(deleted)", err, store.ErrNotFound)
			_, err = tx.GetRecord(e.ctx, "gone", "r1")
			errIs(t, "GetRecord(of a deleted collection)", err, store.ErrNotFound)
			_, err = tx.GetRecord(e.ctx, "keep", "r1")
			errIs(t, "GetRecord(of another collection)", err, nil)
			if cs, err := tx.ListCollections(e.ctx); errIs(t, "ListCollections", err, nil) && (len(cs) != 1 || cs[0].Name != "keep") {
				t.Errorf("ListCollections after the deletion = %d collections, want keep alone", len(cs))
			}
			u, err := tx.Usage(e.ctx)
			if errIs(t, "Usage", err, nil) {
				diff(t, "Usage after DeleteCollection", &store.Usage{Records: 1, Bytes: int64(len(`{"k":"x"}`))}, u)
			}
			return nil
		})
		errIs(t, "BuildIndexes(deleted collection)", e.s.BuildIndexes(e.ctx, tn.ID, "gone"), store.ErrNotFound)
		// Made again, the collection has none of the old declarations,
		// and once its indexes are built (which drops any physical index
		// of the old one) refuses nothing the old index would have.
		e.collection(tn.ID, "gone")
		if got := e.indexes(tn.ID, "gone"); got != nil {
			t.Errorf("indexes of the collection made again = %+v, want nil", got)
		}
		e.build(tn.ID, "gone")
		e.in(tn.ID, func(tx store.Tx) error {
			errIs(t, "CreateRecord", tx.CreateRecord(e.ctx, record("gone", "r1", `{"k":"x"}`, base)), nil)
			errIs(t, "CreateRecord", tx.CreateRecord(e.ctx, record("gone", "r2", `{"k":"x"}`, base)), nil)
			return nil
		})
		if e.pending(tn.ID, "gone") {
			t.Error("PendingIndexBuilds lists a collection with nothing left to build or drop")
		}
	})

	// Count asks for the number of records the filter matches, whatever
	// the page.
	t.Run("Count", func(t *testing.T) {
		e, tn := setup(t)
		e.loadFixture(tn.ID)
		e.read(tn.ID, func(tx store.Tx) error {
			p := &store.ListRecordsParams{Collection: fixtureCollection, Filter: c("n", filter.Ge, num(5)), Order: orderByID, Limit: 2}
			page, err := tx.ListRecords(e.ctx, p)
			if errIs(t, "ListRecords(no count)", err, nil) && page.Total != -1 {
				t.Errorf("Total without Count = %d, want -1", page.Total)
			}
			p.Count = true
			for pages := 0; pages < 5; pages++ {
				page, err := tx.ListRecords(e.ctx, p)
				if !errIs(t, "ListRecords(count)", err, nil) {
					break
				}
				if page.Total != 5 {
					t.Errorf("page %d: Total = %d, want 5", pages, page.Total)
				}
				if page.Next == nil {
					break
				}
				p.After = page.Next
			}
			page, err = tx.ListRecords(e.ctx, &store.ListRecordsParams{Collection: fixtureCollection, Order: orderByID, Limit: 1, Count: true})
			if errIs(t, "ListRecords(count all)", err, nil) && page.Total != int64(len(fixture)) {
				t.Errorf("Total of every record = %d, want %d", page.Total, len(fixture))
			}
			page, err = tx.ListRecords(e.ctx, &store.ListRecordsParams{Collection: "nope", Limit: 1, Count: true})
			if errIs(t, "ListRecords(count, unknown collection)", err, nil) && (page.Total != 0 || len(page.Records) != 0) {
				t.Errorf("unknown collection: Total = %d with %d records, want 0", page.Total, len(page.Records))
			}
			return nil
		})
	})

	// With indexes on the fields it filters and sorts by, a listing
	// selects and orders exactly what it does without: the indexes change
	// how the database finds records, never which.
	t.Run("FiltersWithIndexes", func(t *testing.T) {
		e, tn := setup(t)
		e.loadFixture(tn.ID)
		e.putIndexes(tn.ID, fixtureCollection, ix(false, "n"), ix(false, "-s"), ix(false, "b", "-n"), ix(false, "s", "created_at"),
			ix(false, "id"), ix(true, "s", "n", "b"))
		e.build(tn.ID, fixtureCollection)
		diff(t, "indexes", withState(store.IndexReady, ix(false, "n"), ix(false, "-s"), ix(false, "b", "-n"), ix(false, "s", "created_at"),
			ix(false, "id"), ix(true, "s", "n", "b")), e.indexes(tn.ID, fixtureCollection))
		e.read(tn.ID, func(tx store.Tx) error {
			for _, tc := range filterCases {
				rs, err := listAll(e.ctx, tx, store.ListRecordsParams{Collection: fixtureCollection, Filter: tc.expr, Order: orderByID})
				if err != nil {
					t.Errorf("%s: ListRecords = %v", tc.name, err)
					continue
				}
				if got := recordIDs(rs); len(got)+len(tc.want) > 0 {
					diff(t, tc.name, tc.want, got)
				}
			}
			for _, o := range fixtureOrders {
				for _, f := range []filter.Expr{nil, c("n", filter.Eq, num(5)), c("s", filter.Prefix, str("a")), c("b", filter.Eq, boolean(true))} {
					want := refOrder(o)
					full, err := listAll(e.ctx, tx, store.ListRecordsParams{Collection: fixtureCollection, Filter: f, Order: o})
					if !errIs(t, orderName(o), err, nil) {
						continue
					}
					if f == nil {
						diff(t, orderName(o), want, recordIDs(full))
					}
					name := fmt.Sprintf("%s/%s", orderName(o), filter.Format(f))
					got := paginate(t, e, tx, name, store.ListRecordsParams{Collection: fixtureCollection, Filter: f, Order: o, Limit: 3}, len(full))
					diff(t, name, recordIDs(full), got)
				}
			}
			return nil
		})
	})
}

// testIndexIsolation shows that a unique index is one tenant's collection's
// only: the same values are accepted in another tenant's collection of the
// same name and index, pooled or silo, and building one tenant's indexes
// gives another tenant nothing.
func (h *harness) testIndexIsolation(t *testing.T) {
	t.Parallel()
	e := h.setup(t)
	tenants := []*store.Tenant{e.tenant(tenant.Pooled), e.tenant(tenant.Pooled), e.tenant(tenant.Silo), e.tenant(tenant.Silo)}
	email := ix(true, "email")
	for i, tn := range tenants {
		e.putIndexes(tn.ID, "people", email)
		if i%2 == 0 {
			e.build(tn.ID, "people")
		}
	}
	for i, tn := range tenants {
		want := withState(store.IndexBuilding, email)
		if i%2 == 0 {
			want = withState(store.IndexReady, email)
		}
		diff(t, fmt.Sprintf("tenant %d's index", i), want, e.indexes(tn.ID, "people"))
		if e.pending(tn.ID, "people") != (i%2 == 1) {
			t.Errorf("PendingIndexBuilds lists tenant %d's collection: %v, want %v", i, !(i%2 == 1), i%2 == 1)
		}
	}
	for i, tn := range tenants {
		e.build(tn.ID, "people")
		e.in(tn.ID, func(tx store.Tx) error {
			errIs(t, fmt.Sprintf("tenant %d: CreateRecord", i), tx.CreateRecord(e.ctx, record("people", "r1", `{"email":"a@x"}`, base)), nil)
			uniqueIs(t, fmt.Sprintf("tenant %d: CreateRecord(duplicate)", i), tx.CreateRecord(e.ctx, record("people", "r2", `{"email":"a@x"}`, base)),
				"people", "email")
			return nil
		})
	}
	// Deleting a tenant leaves the others' indexes alone.
	if err := e.s.DeleteTenant(e.ctx, tenants[0].ID, nil); err != nil {
		t.Fatalf("DeleteTenant = %v", err)
	}
	if err := e.s.DeleteTenant(e.ctx, tenants[2].ID, nil); err != nil {
		t.Fatalf("DeleteTenant = %v", err)
	}
	for _, i := range []int{1, 3} {
		e.in(tenants[i].ID, func(tx store.Tx) error {
			uniqueIs(t, fmt.Sprintf("tenant %d after deletions: CreateRecord(duplicate)", i),
				tx.CreateRecord(e.ctx, record("people", "r3", `{"email":"a@x"}`, base)), "people", "email")
			return nil
		})
		diff(t, fmt.Sprintf("tenant %d's index after deletions", i), withState(store.IndexReady, email), e.indexes(tenants[i].ID, "people"))
	}
}
