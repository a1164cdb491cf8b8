package pgstore

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// TestPostgresAuditCut proves in the database itself what the roles the
// store runs as can do to audit entries: a silo role can neither delete
// entries nor change or remove cuts; audit_cut() removes only what lies
// below the latest cut, only when that cut matches its entry and
// checkpoint, and only the current tenant's rows.
func TestPostgresAuditCut(t *testing.T) {
	superURL(t)
	t.Parallel()
	b := setupRLS(t)
	ctx := b.ctx
	// Entries 2..4 after populate's entry 1 (hash "h", cut at 1), and a
	// checkpoint at 3.
	for _, tid := range []tenant.ID{b.a, b.b, b.siloA} {
		err := b.s.InTenant(ctx, tid, func(tx store.Tx) error {
			if _, _, err := tx.AuditHead(ctx); err != nil {
				return err
			}
			for seq := int64(2); seq <= 4; seq++ {
				if err := tx.AppendAudit(ctx, &store.AuditEntry{Seq: seq, Time: base, Actor: "a", Action: "x", Resource: "r",
					RequestID: "q", Outcome: "success", Hash: []byte(fmt.Sprint("h", seq))}); err != nil {
					return err
				}
			}
			return tx.PutAuditCheckpoint(ctx, &store.AuditCheckpoint{Seq: 3, Hash: []byte("h3"), KeyID: "k", Signature: []byte("s"), Time: base})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	entries := func(tx pgx.Tx, schema string, tid tenant.ID) int64 {
		return count(t, tx, fmt.Sprintf("SELECT count(*) FROM %s.audit_log WHERE tenant_id = $1", schema), string(tid))
	}

	t.Run("SiloRole", func(t *testing.T) {
		schema := b.siloSchema(b.siloA)
		inTx(t, b.app, b.siloA, func(tx pgx.Tx) {
			if _, err := tx.Exec(ctx, "SELECT set_config('role', $1, true)", b.siloRole(b.siloA)); err != nil {
				t.Fatal(err)
			}
			for _, stmt := range []string{
				"DELETE FROM %s.audit_log",
				"DELETE FROM %s.audit_checkpoints",
				"DELETE FROM %s.audit_cuts",
				"UPDATE %s.audit_cuts SET seq = seq + 1",
				"UPDATE %s.audit_log SET actor = 'mallory'",
			} {
				mustFail(t, tx, "42501", "permission denied", fmt.Sprintf(stmt, schema))
			}
			// A cut that matches no entry and checkpoint removes nothing.
			sp, err := tx.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sp.Exec(ctx, fmt.Sprintf("INSERT INTO %s.audit_cuts (tenant_id, seq, hash, key_id, signature, time) VALUES ($1, 4, 'h4', 'k', 's', now())", schema),
				string(b.siloA)); err != nil {
				t.Fatal(err)
			}
			mustFail(t, sp, "P0002", "matches no entry and checkpoint", fmt.Sprintf("SELECT %s.audit_cut()", schema))
			sp.Rollback(ctx)
			if n := entries(tx, schema, b.siloA); n != 4 {
				t.Errorf("entries after refused cuts = %d, want 4", n)
			}
			// A matching cut removes exactly what lies below it.
			if _, err := tx.Exec(ctx, fmt.Sprintf("INSERT INTO %s.audit_cuts (tenant_id, seq, hash, key_id, signature, time) VALUES ($1, 3, 'h3', 'k', 's', now())", schema),
				string(b.siloA)); err != nil {
				t.Fatal(err)
			}
			var removed int64
			if err := tx.QueryRow(ctx, fmt.Sprintf("SELECT %s.audit_cut()", schema)).Scan(&removed); err != nil {
				t.Fatal(err)
			}
			if n := entries(tx, schema, b.siloA); removed != 2 || n != 2 {
				t.Errorf("audit_cut() removed %d, %d entries left; want 2 removed, 2 left", removed, n)
			}
		})
	})

	t.Run("PooledTenantOnly", func(t *testing.T) {
		inTx(t, b.app, b.a, func(tx pgx.Tx) {
			if _, err := tx.Exec(ctx, "INSERT INTO bulkhead.audit_cuts (tenant_id, seq, hash, key_id, signature, time) VALUES ($1, 3, 'h3', 'k', 's', now())",
				string(b.a)); err != nil {
				t.Fatal(err)
			}
			var removed int64
			if err := tx.QueryRow(ctx, "SELECT bulkhead.audit_cut()").Scan(&removed); err != nil || removed != 2 {
				t.Errorf("audit_cut() = %d, %v; want 2 removed", removed, err)
			}
			if _, err := tx.Exec(ctx, "SELECT set_config('bulkhead.tenant_id', $1, true)", string(b.b)); err != nil {
				t.Fatal(err)
			}
			if n := entries(tx, "bulkhead", b.b); n != 4 {
				t.Errorf("tenant B's entries after A's cut = %d, want its 4", n)
			}
			// B has no cut at 3: calling it as B removes nothing of B's.
			var n int64
			if err := tx.QueryRow(ctx, "SELECT bulkhead.audit_cut()").Scan(&n); err != nil || n != 0 {
				t.Errorf("audit_cut() as B = %d, %v; want 0", n, err)
			}
		})
		inTx(t, b.app, "", func(tx pgx.Tx) {
			mustFail(t, tx, "42501", "no tenant", "SELECT bulkhead.audit_cut()")
		})
	})
}

// TestPostgresAuditCutReplaced: Open refuses a database whose audit_cut
// has another body than this build's migration gave it, since it runs
// with its owner's rights.
func TestPostgresAuditCutReplaced(t *testing.T) {
	superURL(t)
	t.Parallel()
	d := newTestDB(t, t, true)
	body := strings.Replace(auditCutSource, "k.seq < cut_seq", "true", 1)
	superExec(t, d.ownerURL(t), "CREATE OR REPLACE FUNCTION bulkhead.audit_cut() RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = bulkhead, pg_temp AS $b$"+
		body+"$b$")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Open(ctx, d.appURL(t), nil)
	if err == nil {
		s.Close()
		t.Fatal("Open accepted a changed audit_cut")
	}
	if !strings.Contains(err.Error(), "function audit_cut is SECURITY DEFINER") {
		t.Errorf("Open = %v, want audit_cut named", err)
	}
}
