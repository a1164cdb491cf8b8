package httpapi

import (
	"database/sql"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulkheadhq/bulkhead/internal/audit"
	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// TestAuditTrail makes one request of every mutating kind and checks that
// each appended exactly the entry it should, with the request's id, and that
// reads and refused requests appended nothing.
func TestAuditTrail(t *testing.T) {
	t.Parallel()
	for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
		t.Run(string(iso), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			type want struct{ actor, action, resource, outcome string }
			var wants []want
			var reqIDs []string
			expect := func(r *response, w want) {
				t.Helper()
				wants = append(wants, w)
				reqIDs = append(reqIDs, r.Header.Get("X-Request-Id"))
				if reqIDs[len(reqIDs)-1] == "" {
					t.Fatalf("response has no X-Request-Id")
				}
			}

			r := b.must(201, "POST", "/v1/tenants", b.admin, map[string]any{"slug": "acme", "name": "Acme", "isolation": iso})
			var tn tenantBody
			r.JSON(t, &tn)
			expect(r, want{"operator", "tenant.create", "tenant:" + tn.ID, "success"})

			r = b.must(201, "POST", tpath("acme", "api-keys"), b.admin, map[string]any{"name": "admin", "role": "admin"})
			var adminKey apiKeyBody
			r.JSON(t, &adminKey)
			expect(r, want{"operator", "api_key.create", "api_key:" + adminKey.ID, "success"})
			keyActor := "key:" + adminKey.ID
			admin := adminKey.Key

			r = b.must(201, "POST", tpath("acme", "users"), admin, map[string]any{"email": "ada@example.com", "password": testPassword, "role": "member"})
			var u userBody
			r.JSON(t, &u)
			expect(r, want{keyActor, "user.create", "user:" + u.ID, "success"})
			userActor := "user:" + u.ID

			r = b.must(200, "POST", tpath("acme", "auth", "login"), "", map[string]any{"email": "ada@example.com", "password": testPassword})
			var pair struct {
				AccessToken  string `json:"access_token"`
				RefreshToken string `json:"refresh_token"`
			}
			r.JSON(t, &pair)
			expect(r, want{userActor, "auth.login", userActor, "success"})

			r = b.do("POST", tpath("acme", "auth", "login"), "", map[string]any{"email": "ada@example.com", "password": "not the password"})
			b.core.Flush() // a failure is audited after its answer
			expect(r, want{userActor, "auth.login", userActor, "failure"})

			r = b.must(200, "POST", tpath("acme", "auth", "refresh"), "", map[string]any{"refresh_token": pair.RefreshToken})
			expect(r, want{userActor, "auth.refresh", userActor, "success"})

			r = b.do("POST", tpath("acme", "auth", "refresh"), "", map[string]any{"refresh_token": pair.RefreshToken})
			expect(r, want{userActor, "auth.refresh_reuse", userActor, "denied"})

			// The reuse ended the session: its access token no longer works.
			b.must(401, "GET", tpath("acme", "collections"), pair.AccessToken, nil)
			r = b.must(200, "POST", tpath("acme", "auth", "login"), "", map[string]any{"email": "ada@example.com", "password": testPassword})
			r.JSON(t, &pair)
			expect(r, want{userActor, "auth.login", userActor, "success"})

			r = b.must(200, "PUT", tpath("acme", "collections", "notes"), admin, map[string]any{})
			expect(r, want{keyActor, "collection.put", "collection:notes", "success"})

			r = b.must(201, "POST", tpath("acme", "collections", "notes", "records"), pair.AccessToken, map[string]any{"a": 1})
			var rec record
			r.JSON(t, &rec)
			res := "record:notes/" + rec.ID
			expect(r, want{userActor, "record.create", res, "success"})

			r = b.must(200, "PATCH", tpath("acme", "collections", "notes", "records", rec.ID), admin, map[string]any{"a": 2})
			expect(r, want{keyActor, "record.update", res, "success"})
			// A refused update appends nothing.
			b.must(412, "PATCH", tpath("acme", "collections", "notes", "records", rec.ID), admin, map[string]any{"a": 3}, "If-Match", `"7"`)

			r = b.must(201, "POST", tpath("acme", "api-keys"), admin, map[string]any{"name": "spare", "role": "viewer"})
			var spare apiKeyBody
			r.JSON(t, &spare)
			expect(r, want{keyActor, "api_key.create", "api_key:" + spare.ID, "success"})

			r = b.must(204, "DELETE", tpath("acme", "api-keys", spare.ID), admin, nil)
			expect(r, want{keyActor, "api_key.revoke", "api_key:" + spare.ID, "success"})

			r = b.must(204, "DELETE", tpath("acme", "collections", "notes", "records", rec.ID), admin, nil)
			expect(r, want{keyActor, "record.delete", res, "success"})

			// A credential's 404 is audited in its own tenant after the
			// answer (its repetitions within a minute aggregated).
			gone := tpath("acme", "collections", "notes", "records", rec.ID)
			r = b.must(404, "GET", gone, admin, nil)
			b.core.Flush()
			expect(r, want{keyActor, "access.denied", "request:" + gone, "denied"})

			// Reads and other refusals append nothing.
			b.must(200, "GET", tpath("acme", "collections"), admin, nil)
			b.must(200, "GET", tpath("acme", "usage"), admin, nil)
			b.must(403, "PUT", tpath("acme", "collections", "x"), pair.AccessToken, map[string]any{})
			b.must(400, "POST", tpath("acme", "collections", "notes", "records"), admin, `[1]`)
			b.must(400, "POST", tpath("acme", "users"), admin, map[string]any{"email": "x@example.com", "password": "short", "role": "viewer"})
			b.must(403, "GET", tpath("acme", "collections", "notes", "records"), b.admin, nil)
			b.must(200, "GET", tpath("acme", "audit", "verify"), b.admin, nil)
			// A suspension is the platform's business, not the tenant's.
			b.must(200, "PATCH", "/v1/tenants/acme", b.admin, map[string]any{"status": "suspended"})
			b.must(200, "PATCH", "/v1/tenants/acme", b.admin, map[string]any{"status": "active"})

			entries := b.auditLog("acme", admin)
			if len(entries) != len(wants) {
				t.Errorf("%d audit entries, want %d", len(entries), len(wants))
			}
			for i, e := range entries {
				if i >= len(wants) {
					t.Errorf("extra entry %+v", e)
					continue
				}
				got := want{e.Actor, e.Action, e.Resource, e.Outcome}
				if got != wants[i] {
					t.Errorf("entry %d = %+v, want %+v", e.Seq, got, wants[i])
				}
				if e.RequestID != reqIDs[i] {
					t.Errorf("entry %d (%s) request_id = %q, want the X-Request-Id %q", e.Seq, e.Action, e.RequestID, reqIDs[i])
				}
				if e.Seq != int64(i+1) {
					t.Errorf("entry %d has seq %d", i+1, e.Seq)
				}
				if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
					t.Errorf("entry %d time %q: %v", e.Seq, e.Time, err)
				}
				wantPrev := "0000000000000000000000000000000000000000000000000000000000000000"
				if i > 0 {
					wantPrev = entries[i-1].Hash
				}
				if e.PrevHash != wantPrev || len(e.Hash) != 64 {
					t.Errorf("entry %d prev_hash %s hash %s, want prev %s and a 32-byte hash", e.Seq, e.PrevHash, e.Hash, wantPrev)
				}
			}

			for _, token := range []string{admin, b.admin} {
				v := b.verify("acme", token)
				want := verification{OK: true, Length: int64(len(entries)), Head: entries[len(entries)-1].Hash}
				if diff := cmp.Diff(want, v); diff != "" {
					t.Errorf("verify (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestAuditListPaging(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	admin := b.apiKey("acme", tenant.Admin)
	b.collection("acme", admin, "notes", nil)
	for i := range 8 {
		b.createRecord("acme", admin, "notes", map[string]any{"i": i})
	}
	all := b.auditLog("acme", admin) // 1 + 1 + 1 + 8 entries
	if len(all) != 11 {
		t.Fatalf("%d entries, want 11", len(all))
	}

	var paged []auditEntry
	after := "0"
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		var p page[auditEntry]
		b.must(200, "GET", tpath("acme", "audit")+"?limit=3&after="+after, admin, nil).JSON(t, &p)
		paged = append(paged, p.Items...)
		if p.NextCursor == "" {
			if pages != 3 {
				t.Errorf("%d pages, want 4", pages+1)
			}
			break
		}
		if last := strconv.FormatInt(p.Items[len(p.Items)-1].Seq, 10); p.NextCursor != last {
			t.Errorf("next_cursor = %q, want the last seq %s", p.NextCursor, last)
		}
		after = p.NextCursor
	}
	if diff := cmp.Diff(all, paged); diff != "" {
		t.Errorf("paged entries (-all +paged):\n%s", diff)
	}

	viewer := b.apiKey("acme", tenant.Viewer)
	member := b.apiKey("acme", tenant.Member)
	runScenarios(t, b, []apiScenario{
		{name: "AfterEnd", method: "GET", path: tpath("acme", "audit") + "?after=13", token: admin, wantStatus: 200,
			wantContains: []string{`"items":[]`, `"next_cursor":""`}},
		{name: "AfterMiddle", method: "GET", path: tpath("acme", "audit") + "?after=9", token: admin, wantStatus: 200,
			check: func(t *testing.T, r *response) {
				var p page[auditEntry]
				r.JSON(t, &p)
				// 9, 10, 11, then the two api_key.create entries above.
				if len(p.Items) != 4 || p.Items[0].Seq != 10 {
					t.Errorf("after=9 = %+v, want seq 10..13", p.Items)
				}
			}},
		{name: "DefaultLimit", method: "GET", path: tpath("acme", "audit"), token: admin, wantStatus: 200},
		{name: "Limit1001", method: "GET", path: tpath("acme", "audit") + "?limit=1001", token: admin,
			wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "AfterNegative", method: "GET", path: tpath("acme", "audit") + "?after=-1", token: admin,
			wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "AfterText", method: "GET", path: tpath("acme", "audit") + "?after=x", token: admin,
			wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "Viewer", method: "GET", path: tpath("acme", "audit"), token: viewer, wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "Member", method: "GET", path: tpath("acme", "audit"), token: member, wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "MemberVerify", method: "GET", path: tpath("acme", "audit", "verify"), token: member, wantStatus: 403, wantCode: problem.CodeForbidden},
	})
}

// chainFixture is a tenant whose audit chain has exactly n entries, and a
// neighbour tenant of the same isolation with its own chain.
type chainFixture struct {
	b         *testBundle
	id        tenant.ID
	slug      string
	key       string
	iso       tenant.Isolation
	n         int64
	neighbour verification
	nkey      string
}

// newChain builds a chainFixture: entry 1 is tenant.create, 2 the key, 3 the
// collection and the rest record creations.
func newChain(t *testing.T, iso tenant.Isolation, n int) *chainFixture {
	t.Helper()
	if n < 4 {
		t.Fatalf("newChain: n = %d, want >= 4", n)
	}
	b := setup(t)
	f := &chainFixture{b: b, slug: "target", iso: iso, n: int64(n)}
	f.id = b.tenant(f.slug, iso)
	f.key = b.apiKey(f.slug, tenant.Admin)
	b.collection(f.slug, f.key, "notes", nil)
	for i := 3; i < n; i++ {
		b.createRecord(f.slug, f.key, "notes", map[string]any{"i": i})
	}
	b.tenant(neighbourSlug, iso)
	f.nkey = b.apiKey(neighbourSlug, tenant.Admin)
	b.collection(neighbourSlug, f.nkey, "notes", nil)
	b.createRecord(neighbourSlug, f.nkey, "notes", map[string]any{"n": 1})
	f.neighbour = b.verify(neighbourSlug, "")

	if v := b.verify(f.slug, f.key); !v.OK || v.Length != f.n {
		t.Fatalf("fresh chain verifies as %+v, want ok with length %d", v, n)
	}
	if !f.neighbour.OK || f.neighbour.Length != 4 {
		t.Fatalf("neighbour chain verifies as %+v", f.neighbour)
	}
	return f
}

// db opens the file holding the target tenant's rows.
func (f *chainFixture) db() *sql.DB { return f.b.tenantDB(f.id, f.iso) }

// expectBroken checks that verification now fails at seq with reason, for
// the tenant's admin and for the operator alike, and that the neighbour's
// chain is untouched.
func (f *chainFixture) expectBroken(t *testing.T, seq int64, reason string) {
	t.Helper()
	b := f.b.withT(t)
	for _, token := range []string{f.key, b.admin} {
		v := b.verify(f.slug, token)
		if v.OK || v.BrokenAt != seq || v.Reason != reason {
			t.Errorf("verify = %+v, want ok false, broken_at %d, reason %q", v, seq, reason)
		}
		if v.Length != seq-1 {
			t.Errorf("verify length = %d, want the %d entries before the break", v.Length, seq-1)
		}
	}
	if v := b.verify(neighbourSlug, f.nkey); v != f.neighbour {
		t.Errorf("neighbour verify = %+v, want unchanged %+v", v, f.neighbour)
	}
	// The platform chain lives in the main file too and is untouched.
	var pv verification
	b.must(200, "GET", "/v1/audit/verify", b.admin, nil).JSON(t, &pv)
	if !pv.OK {
		t.Errorf("platform chain verify = %+v, want ok", pv)
	}
}

// flipByte changes one byte of s, keeping it valid UTF-8 for ASCII input.
func flipByte(s string, i int) string {
	b := []byte(s)
	b[i] ^= 0x01
	return string(b)
}

// editField changes one byte of one column of entry seq.
func (f *chainFixture) editField(t *testing.T, db *sql.DB, seq int64, column string) {
	t.Helper()
	where := " WHERE tenant_id = ? AND seq = ?"
	switch column {
	case "time":
		execRows(t, db, 1, "UPDATE audit_log SET time = time + 1"+where, string(f.id), seq)
	case "prev_hash", "hash":
		var v []byte
		if err := db.QueryRow("SELECT "+column+" FROM audit_log"+where, string(f.id), seq).Scan(&v); err != nil {
			t.Fatal(err)
		}
		v[len(v)-1] ^= 0x01
		execRows(t, db, 1, "UPDATE audit_log SET "+column+" = ?"+where, v, string(f.id), seq)
	default:
		var v string
		if err := db.QueryRow("SELECT "+column+" FROM audit_log"+where, string(f.id), seq).Scan(&v); err != nil {
			t.Fatal(err)
		}
		execRows(t, db, 1, "UPDATE audit_log SET "+column+" = ?"+where, flipByte(v, len(v)/2), string(f.id), seq)
	}
}

// swapSeq swaps the seq values of two entries.
func (f *chainFixture) swapSeq(t *testing.T, db *sql.DB, a, c int64) {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, step := range [][2]int64{{a, -1}, {c, a}, {-1, c}} {
		res, err := tx.Exec("UPDATE audit_log SET seq = ? WHERE tenant_id = ? AND seq = ?", step[1], string(f.id), step[0])
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("swap step %v changed %d rows", step, n)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestAuditTamper edits, deletes and reorders entries of a chain directly in
// the SQLite file, at its first, a middle and its last entry, in pooled and
// silo tenants, and checks that verification names the exact entry.
func TestAuditTamper(t *testing.T) {
	t.Parallel()
	const n = 8
	type tamperCase struct {
		name   string
		n      int // chain length; 0 means n
		tamper func(t *testing.T, f *chainFixture, db *sql.DB)
		seq    int64
		reason string
	}
	edit := func(seq int64, column string) func(*testing.T, *chainFixture, *sql.DB) {
		return func(t *testing.T, f *chainFixture, db *sql.DB) { f.editField(t, db, seq, column) }
	}
	del := func(seq int64) func(*testing.T, *chainFixture, *sql.DB) {
		return func(t *testing.T, f *chainFixture, db *sql.DB) {
			execRows(t, db, 1, "DELETE FROM audit_log WHERE tenant_id = ? AND seq = ?", string(f.id), seq)
		}
	}
	swap := func(a, c int64) func(*testing.T, *chainFixture, *sql.DB) {
		return func(t *testing.T, f *chainFixture, db *sql.DB) { f.swapSeq(t, db, a, c) }
	}
	cases := []tamperCase{
		{name: "EditFirst", tamper: edit(1, "actor"), seq: 1, reason: audit.ReasonEntryHash},
		{name: "EditMiddle", tamper: edit(4, "resource"), seq: 4, reason: audit.ReasonEntryHash},
		{name: "EditLast", tamper: edit(n, "request_id"), seq: n, reason: audit.ReasonEntryHash},
		{name: "DeleteFirst", tamper: del(1), seq: 1, reason: audit.ReasonSequenceGap},
		{name: "DeleteMiddle", tamper: del(4), seq: 4, reason: audit.ReasonSequenceGap},
		// Deleting the newest entry is only detectable where a signed
		// checkpoint covers it (audit/doc.go), so this chain ends at one.
		{name: "DeleteLast", n: 100, tamper: del(100), seq: 100, reason: audit.ReasonCheckpointBeyondEnd},
		{name: "SwapFirst", tamper: swap(1, n), seq: 1, reason: audit.ReasonEntryHash},
		{name: "SwapMiddle", tamper: swap(4, 5), seq: 4, reason: audit.ReasonEntryHash},
		{name: "SwapLast", tamper: swap(n-1, n), seq: n - 1, reason: audit.ReasonEntryHash},
	}
	for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
		for _, tc := range cases {
			t.Run(string(iso)+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				length := n
				if tc.n != 0 {
					length = tc.n
				}
				f := newChain(t, iso, length)
				db := f.db()
				tc.tamper(t, f, db)
				f.expectBroken(t, tc.seq, tc.reason)
			})
		}
	}
}

// TestAuditTamperFields edits each column of a middle entry in turn.
func TestAuditTamperFields(t *testing.T) {
	t.Parallel()
	for _, column := range []string{"time", "actor", "action", "resource", "request_id", "outcome", "prev_hash", "hash"} {
		t.Run(column, func(t *testing.T) {
			t.Parallel()
			f := newChain(t, tenant.Pooled, 6)
			f.editField(t, f.db(), 3, column)
			f.expectBroken(t, 3, audit.ReasonEntryHash)
		})
	}

	// An entry edited with its hash recomputed breaks the link to the next.
	t.Run("RecomputedHash", func(t *testing.T) {
		t.Parallel()
		f := newChain(t, tenant.Silo, 6)
		db := f.db()
		var e store.AuditEntry
		var at int64
		err := db.QueryRow(`SELECT seq, time, actor, action, resource, request_id, outcome, prev_hash
			FROM audit_log WHERE tenant_id = ? AND seq = 3`, string(f.id)).
			Scan(&e.Seq, &at, &e.Actor, &e.Action, &e.Resource, &e.RequestID, &e.Outcome, &e.PrevHash)
		if err != nil {
			t.Fatal(err)
		}
		e.Time = time.UnixMicro(at).UTC()
		e.Actor = "operator"
		execRows(t, db, 1, "UPDATE audit_log SET actor = ?, hash = ? WHERE tenant_id = ? AND seq = 3",
			e.Actor, audit.Hash(audit.TenantChain(f.id), &e), string(f.id))
		f.expectBroken(t, 4, audit.ReasonPrevHash)
	})

	// An entry copied from the neighbour's chain does not fit this one.
	t.Run("ForeignEntry", func(t *testing.T) {
		t.Parallel()
		f := newChain(t, tenant.Pooled, 6)
		var nid string
		db := f.db()
		if err := db.QueryRow(`SELECT id FROM tenants WHERE slug = ?`, neighbourSlug).Scan(&nid); err != nil {
			t.Fatal(err)
		}
		execRows(t, db, 1, "DELETE FROM audit_log WHERE tenant_id = ? AND seq = 1", string(f.id))
		execRows(t, db, 1, `INSERT INTO audit_log (tenant_id, seq, time, actor, action, resource, request_id, outcome, prev_hash, hash)
			SELECT ?, seq, time, actor, action, resource, request_id, outcome, prev_hash, hash
			FROM audit_log WHERE tenant_id = ? AND seq = 1`, string(f.id), nid)
		f.expectBroken(t, 1, audit.ReasonEntryHash)
	})
}

// TestAuditTailTruncation documents what verification cannot see: the
// newest entries after the last checkpoint can be deleted without a trace in
// the chain itself. A client that kept an earlier length and head sees it.
func TestAuditTailTruncation(t *testing.T) {
	t.Parallel()
	f := newChain(t, tenant.Pooled, 8)
	before := f.b.verify(f.slug, f.key)
	execRows(t, f.db(), 1, "DELETE FROM audit_log WHERE tenant_id = ? AND seq = 8", string(f.id))
	after := f.b.verify(f.slug, f.key)
	if !after.OK || after.Length != 7 || after.Head == before.Head {
		t.Errorf("after truncating the tail: verify = %+v (before %+v), want ok with length 7 and another head", after, before)
	}
}

// TestAuditCheckpoint crosses a checkpoint (every 100 entries) and tampers
// with it.
func TestAuditCheckpoint(t *testing.T) {
	t.Parallel()
	for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
		t.Run(string(iso), func(t *testing.T) {
			t.Parallel()
			f := newChain(t, iso, 105)
			v := f.b.verify(f.slug, f.key)
			if !v.OK || v.Length != 105 || v.Checkpoints != 1 {
				t.Fatalf("verify = %+v, want ok, 105 entries, 1 checkpoint", v)
			}
			db := f.db()
			var count int
			if err := db.QueryRow("SELECT count(*) FROM audit_checkpoints WHERE tenant_id = ? AND seq = 100", string(f.id)).Scan(&count); err != nil || count != 1 {
				t.Fatalf("checkpoint rows at 100 = %d, %v; want 1", count, err)
			}

			t.Run("Signature", func(t *testing.T) {
				var sig []byte
				if err := db.QueryRow("SELECT signature FROM audit_checkpoints WHERE tenant_id = ? AND seq = 100", string(f.id)).Scan(&sig); err != nil {
					t.Fatal(err)
				}
				orig := append([]byte(nil), sig...)
				sig[10] ^= 0x01
				execRows(t, db, 1, "UPDATE audit_checkpoints SET signature = ? WHERE tenant_id = ? AND seq = 100", sig, string(f.id))
				f.expectBroken(t, 100, audit.ReasonCheckpointSignature)
				execRows(t, db, 1, "UPDATE audit_checkpoints SET signature = ? WHERE tenant_id = ? AND seq = 100", orig, string(f.id))
				if v := f.b.withT(t).verify(f.slug, f.key); !v.OK || v.Length != 105 {
					t.Errorf("after restoring the signature: verify = %+v, want ok", v)
				}
			})
			t.Run("KeyID", func(t *testing.T) {
				execRows(t, db, 1, "UPDATE audit_checkpoints SET key_id = 'deadbeefdeadbeef' WHERE tenant_id = ? AND seq = 100", string(f.id))
				f.expectBroken(t, 100, audit.ReasonCheckpointKey)
			})
		})
	}

	// A covered entry edited with its hash recomputed no longer matches
	// its checkpoint.
	t.Run("RecomputedUnderCheckpoint", func(t *testing.T) {
		t.Parallel()
		f := newChain(t, tenant.Pooled, 100)
		db := f.db()
		var e store.AuditEntry
		var at int64
		err := db.QueryRow(`SELECT seq, time, actor, action, resource, request_id, outcome, prev_hash
			FROM audit_log WHERE tenant_id = ? AND seq = 100`, string(f.id)).
			Scan(&e.Seq, &at, &e.Actor, &e.Action, &e.Resource, &e.RequestID, &e.Outcome, &e.PrevHash)
		if err != nil {
			t.Fatal(err)
		}
		e.Time = time.UnixMicro(at).UTC()
		e.Outcome = "failure"
		execRows(t, db, 1, "UPDATE audit_log SET outcome = ?, hash = ? WHERE tenant_id = ? AND seq = 100",
			e.Outcome, audit.Hash(audit.TenantChain(f.id), &e), string(f.id))
		f.expectBroken(t, 100, audit.ReasonCheckpointMismatch)
	})
}

// TestPlatformAuditTamper edits the platform chain, which shares the main
// file with pooled tenants.
func TestPlatformAuditTamper(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.tenant("acme", tenant.Pooled)
	b.tenant("beta", tenant.Pooled)
	b.must(200, "PATCH", "/v1/tenants/acme", b.admin, map[string]any{"status": "suspended"})
	db := b.tenantDB(id, tenant.Pooled)
	execRows(t, db, 1, "UPDATE audit_log SET action = 'tenant.resume' WHERE tenant_id = 'platform' AND seq = 3")
	var v verification
	b.must(200, "GET", "/v1/audit/verify", b.admin, nil).JSON(t, &v)
	if v.OK || v.BrokenAt != 3 || v.Reason != audit.ReasonEntryHash {
		t.Errorf("platform verify = %+v, want broken at 3: %s", v, audit.ReasonEntryHash)
	}
	// The tenants' own chains are separate and fine.
	for _, slug := range []string{"acme", "beta"} {
		if v := b.verify(slug, ""); !v.OK {
			t.Errorf("%s verify = %+v, want ok", slug, v)
		}
	}
}
