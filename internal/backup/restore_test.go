package backup_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkheadhq/bulkhead"
	"github.com/bulkheadhq/bulkhead/internal/backup"
	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/pgstore/pgtest"
	"github.com/bulkheadhq/bulkhead/store/sqlitestore"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// apiKeys makes an admin API key in each tenant, to sign in to the
// restored platform with.
func (p *platform) apiKeys(t *testing.T) []string {
	t.Helper()
	var keys []string
	for _, sc := range p.tenants {
		op, err := p.app.Core().Scope(context.Background(), core.Operator(), sc.Tenant().Slug, "test")
		if err != nil {
			t.Fatal(err)
		}
		k, err := op.CreateAPIKey(context.Background(), core.CreateAPIKeyParams{Name: "restore", Role: tenant.Admin})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.Key)
	}
	return keys
}

// secrets stores, in each tenant, a record with a field sealed under the
// tenant's data key, and returns the records' ids.
func (p *platform) secrets(t *testing.T) []store.RecordID {
	t.Helper()
	ctx := context.Background()
	var ids []store.RecordID
	for i, sc := range p.tenants {
		if _, err := sc.PutCollection(ctx, "secrets", core.PutCollectionParams{EncryptedFields: []string{"ssn"}}); err != nil {
			t.Fatal(err)
		}
		r, err := sc.CreateRecord(ctx, "secrets", []byte(fmt.Sprintf(`{"ssn":"secret-%d"}`, i)), nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	return ids
}

// localKMS opens the local KMS of the data directory data, as a restore
// checks keys with it.
func localKMS(t *testing.T, data string) keyring.KMS {
	t.Helper()
	kms, err := keyring.OpenLocal(keyring.LocalConfig{Dir: filepath.Join(data, "keys"), WrappedKeysExist: true})
	if err != nil {
		t.Fatal(err)
	}
	return kms
}

// copyKeys copies the keys directory of the data directory src into the
// new data directory dst, as an operator restores it from its own backup.
func copyKeys(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.CopyFS(filepath.Join(dst, "keys"), os.DirFS(filepath.Join(src, "keys"))); err != nil {
		t.Fatal(err)
	}
}

// checkRestored opens the platform restored with cfg and finds, signing
// in with each tenant's API key (which needs the same keys), the tenant,
// its records and a verifying audit chain, and a verifying platform chain.
func checkRestored(t *testing.T, cfg bulkhead.Config, m *backup.Manifest, p *platform, keys []string, secrets []store.RecordID) {
	t.Helper()
	ctx := context.Background()
	cfg.Logger = slog.New(slog.DiscardHandler)
	app, err := bulkhead.New(cfg)
	if err != nil {
		t.Fatalf("open the restored platform: %v", err)
	}
	defer app.Close()
	records := map[tenant.ID]int64{}
	for _, mt := range m.Tenants {
		records[mt.ID] = mt.Records
	}
	for i, sc := range p.tenants {
		pr, err := app.Core().Authenticate(ctx, keys[i])
		if err != nil {
			t.Fatalf("tenant %d: sign in to the restored platform: %v", i, err)
		}
		rs, err := app.Core().Scope(ctx, pr, sc.Tenant().Slug, "test")
		if err != nil {
			t.Fatalf("tenant %d: %v", i, err)
		}
		if rs.Tenant().ID != sc.Tenant().ID || rs.Tenant().Isolation != sc.Tenant().Isolation {
			t.Errorf("tenant %d: restored as %s (%s), want %s (%s)", i, rs.Tenant().ID, rs.Tenant().Isolation, sc.Tenant().ID, sc.Tenant().Isolation)
		}
		l, err := rs.ListRecords(ctx, "notes", core.ListQuery{Limit: core.MaxLimit, Count: true})
		if err != nil {
			t.Fatalf("tenant %d: list records: %v", i, err)
		}
		secret, err := rs.GetRecord(ctx, "secrets", secrets[i])
		if err != nil || !strings.Contains(string(secret.Data), fmt.Sprintf(`"secret-%d"`, i)) {
			t.Errorf("tenant %d: the sealed record reads %v, %v; want its secret opened", i, secret, err)
		}
		if int64(len(l.Items))+1 != records[sc.Tenant().ID] || len(l.Items) == 0 {
			t.Errorf("tenant %d: %d notes and 1 secret restored, the backup holds %d records", i, len(l.Items), records[sc.Tenant().ID])
		}
		v, err := rs.VerifyAudit(ctx)
		if err != nil || !v.OK {
			t.Errorf("tenant %d: audit verify = %+v, %v", i, v, err)
		}
	}
	ctl, err := app.Core().Control(core.Operator(), "test")
	if err != nil {
		t.Fatal(err)
	}
	v, err := ctl.VerifyPlatformAudit(ctx)
	if err != nil || !v.OK || v.Length != m.Platform.AuditSeq {
		t.Errorf("platform audit verify = %+v, %v; want OK with %d entries", v, err, m.Platform.AuditSeq)
	}
}

// listDir lists the names under dir, recursively, with their sizes.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, fmt.Sprintf("%s %d %v", rel, info.Size(), info.Mode()))
		return nil
	})
	return out
}

// TestRestoreSQLite restores a backup of pooled and silo tenants into a
// fresh data directory that has the platform's keys, opens it, and finds
// the same tenants, records and verifying audit chains. It then checks the
// refusals: a damaged backup, a target that holds a store (and --force,
// which moves it aside), other keys, and a target a process has open.
func TestRestoreSQLite(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, false, 4)
	p.write(t, 3)
	keys := p.apiKeys(t)
	secrets := p.secrets(t)
	m, dir := p.take(t, t.TempDir())

	data := filepath.Join(t.TempDir(), "data")
	copyKeys(t, p.data, data)
	opts := func(d string) *backup.RestoreOptions {
		return &backup.RestoreOptions{
			Verify:     backup.VerifyOptions{TrustedKey: p.verify.TrustedKey, ScratchDir: t.TempDir(), KMS: localKMS(t, d)},
			SQLitePath: filepath.Join(d, "bulkhead.db"), SQLiteJobsPath: filepath.Join(d, "jobs.db"),
		}
	}
	ctx := context.Background()

	t.Run("damaged backup", func(t *testing.T) {
		damaged := copyDir(t, dir)
		flip(t, filepath.Join(damaged, filepath.FromSlash(m.Files[1].Path)))
		before := listDir(t, data)
		_, err := backup.Restore(ctx, damaged, opts(data))
		if !errors.Is(err, backup.ErrNotVerified) || !strings.Contains(err.Error(), m.Files[1].Path) {
			t.Fatalf("Restore of a damaged backup = %v, want ErrNotVerified naming %s", err, m.Files[1].Path)
		}
		if after := listDir(t, data); !slices.Equal(before, after) {
			t.Errorf("a refused restore wrote to the target: before %v, after %v", before, after)
		}
	})

	t.Run("other KEK", func(t *testing.T) {
		// The platform's signing keys with another platform's KEK: the
		// tenants' data keys do not open.
		stale := filepath.Join(t.TempDir(), "data")
		copyKeys(t, p.data, stale)
		other := t.TempDir()
		if _, err := keyring.OpenLocal(keyring.LocalConfig{Dir: other}); err != nil {
			t.Fatal(err)
		}
		kek, err := os.ReadFile(filepath.Join(other, "kek.key"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(stale, "keys", "kek.key"), kek, 0o600); err != nil {
			t.Fatal(err)
		}
		before := listDir(t, stale)
		_, err = backup.Restore(ctx, dir, opts(stale))
		if !errors.Is(err, backup.ErrWrongKeys) || !strings.Contains(err.Error(), "data key does not open") {
			t.Fatalf("Restore with another KEK = %v, want ErrWrongKeys saying a data key does not open", err)
		}
		if after := listDir(t, stale); !slices.Equal(before, after) {
			t.Errorf("a refused restore wrote to the target: before %v, after %v", before, after)
		}
	})

	t.Run("other keys", func(t *testing.T) {
		o := opts(data)
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		o.Verify.TrustedKey = pub
		before := listDir(t, data)
		_, err := backup.Restore(ctx, dir, o)
		if !errors.Is(err, backup.ErrWrongKeys) || !strings.Contains(err.Error(), "restore the keys directory") {
			t.Fatalf("Restore with other keys = %v, want ErrWrongKeys", err)
		}
		if after := listDir(t, data); !slices.Equal(before, after) {
			t.Errorf("a refused restore wrote to the target: before %v, after %v", before, after)
		}
	})

	s, err := backup.Restore(ctx, dir, opts(data))
	if err != nil {
		t.Fatalf("Restore = %v", err)
	}
	var records int64
	for _, mt := range m.Tenants {
		records += mt.Records
	}
	if s.Name != m.Name || s.Tenants != 4 || s.Silo != 2 || s.Records != records || records != 16 || s.Verified.KeysChecked != 8 || s.Replaced != "" || len(s.Files) != len(m.Files) || !s.Verified.OK {
		t.Errorf("Restore summary = %+v, want 4 tenants (2 silo), 16 records, 8 data keys checked, %d records, %d files, nothing replaced", s, records, len(m.Files))
	}
	for _, f := range []string{"bulkhead.db", "tenants", m.Files[1].Path} {
		info, err := os.Stat(filepath.Join(data, filepath.FromSlash(f)))
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if info.IsDir() {
			want = 0o700 | os.ModeDir
		}
		if info.Mode() != want {
			t.Errorf("%s: mode %v, want %v", f, info.Mode(), want)
		}
	}
	if leftovers, _ := filepath.Glob(filepath.Join(data, ".restore-*")); len(leftovers) > 0 {
		t.Errorf("staging left behind: %v", leftovers)
	}
	checkRestored(t, bulkhead.Config{DataDir: data}, m, p, keys, secrets)

	t.Run("target holds a store", func(t *testing.T) {
		_, before := hashOf(t, filepath.Join(data, "bulkhead.db"))
		_, err := backup.Restore(ctx, dir, opts(data))
		if !errors.Is(err, backup.ErrTargetNotEmpty) || !strings.Contains(err.Error(), filepath.Join(data, "bulkhead.db")) {
			t.Fatalf("Restore onto a store = %v, want ErrTargetNotEmpty naming bulkhead.db", err)
		}
		if _, after := hashOf(t, filepath.Join(data, "bulkhead.db")); after != before {
			t.Error("a refused restore changed bulkhead.db")
		}
	})

	t.Run("force", func(t *testing.T) {
		// A change after the restore, to find in the file moved aside.
		p.write(t, 1)
		m2, dir2 := p.take(t, t.TempDir())
		_, old := hashOf(t, filepath.Join(data, "bulkhead.db"))
		o := opts(data)
		o.Force = true
		o.NowFunc = func() time.Time { return time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC) }
		s, err := backup.Restore(ctx, dir2, o)
		if err != nil {
			t.Fatalf("Restore --force = %v", err)
		}
		replaced := filepath.Join(data, "replaced-20261205T060000.000Z")
		if s.Replaced != replaced || !slices.Contains(s.Moved, "bulkhead.db") || !slices.Contains(s.Moved, "tenants") {
			t.Errorf("Restore --force summary = %+v, want the old files moved into %s", s, replaced)
		}
		if _, moved := hashOf(t, filepath.Join(replaced, "bulkhead.db")); moved != old {
			t.Error("the old bulkhead.db is not in the replaced directory unchanged")
		}
		if _, err := os.Stat(filepath.Join(replaced, filepath.FromSlash(m.Files[1].Path))); err != nil {
			t.Errorf("the old silo file was not moved aside: %v", err)
		}
		checkRestored(t, bulkhead.Config{DataDir: data}, m2, p, keys, secrets)
	})

	t.Run("in use", func(t *testing.T) {
		st, err := sqlitestore.Open(filepath.Join(data, "bulkhead.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		o := opts(data)
		o.Force = true
		_, err = backup.Restore(ctx, dir, o)
		if !errors.Is(err, backup.ErrTargetInUse) {
			t.Fatalf("Restore onto a store a process has open = %v, want ErrTargetInUse", err)
		}
	})
}

// TestRestorePostgres restores a PostgreSQL backup into a fresh database
// made for the test, opens it and finds the same tenants, records and
// chains; then refuses to restore over it without --force, and with
// --force drops the store's schemas and restores again.
func TestRestorePostgres(t *testing.T) {
	t.Parallel()
	pgtest.SuperURL(t) // skips without PostgreSQL
	ctx := context.Background()
	p := newPlatform(t, true, 4)
	p.write(t, 2)
	keys := p.apiKeys(t)
	secrets := p.secrets(t)
	m, dir := p.take(t, t.TempDir())

	name := "bulkhead_restore_" + randHex(6)
	admin := connectPG(t, p.verify.PostgresURL)
	app, _ := url.Parse(p.verify.AppURL)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Error(err)
		}
	})
	if _, err := admin.Exec(ctx, "GRANT CONNECT ON DATABASE "+pgx.Identifier{name}.Sanitize()+" TO "+pgx.Identifier{app.User.Username()}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "data")
	copyKeys(t, p.data, data)
	opts := &backup.RestoreOptions{
		Verify:      backup.VerifyOptions{TrustedKey: p.verify.TrustedKey, KMS: localKMS(t, data)},
		PostgresURL: withDB(t, p.verify.PostgresURL, name), AppURL: withDB(t, p.verify.AppURL, name),
	}
	s, err := backup.Restore(ctx, dir, opts)
	if err != nil {
		t.Fatalf("Restore = %v", err)
	}
	if s.Tenants != 4 || s.Silo != 2 || s.Records != 12 || s.Verified.KeysChecked != 8 || len(s.DroppedSchemas) != 0 {
		t.Errorf("Restore summary = %+v, want 4 tenants (2 silo), 12 records, 8 data keys checked, nothing dropped", s)
	}
	checkRestored(t, bulkhead.Config{DataDir: data, DatabaseURL: opts.AppURL}, m, p, keys, secrets)

	_, err = backup.Restore(ctx, dir, opts)
	if !errors.Is(err, backup.ErrTargetNotEmpty) || !strings.Contains(err.Error(), "bulkhead_keys") {
		t.Fatalf("Restore into a database that holds the store = %v, want ErrTargetNotEmpty naming its schemas", err)
	}
	opts.Force = true
	// A client connected to the target, as a server still running is.
	client := connectPG(t, opts.AppURL)
	_, err = backup.Restore(ctx, dir, opts)
	if !errors.Is(err, backup.ErrTargetInUse) {
		t.Fatalf("Restore into a database a client is connected to = %v, want ErrTargetInUse", err)
	}
	client.Close(ctx)
	s, err = backup.Restore(ctx, dir, opts)
	if err != nil {
		t.Fatalf("Restore --force = %v", err)
	}
	// The store's schemas and each silo tenant's.
	if !slices.Contains(s.DroppedSchemas, "bulkhead") || !slices.Contains(s.DroppedSchemas, "bulkhead_keys") || len(s.DroppedSchemas) < 4 {
		t.Errorf("Restore --force dropped %v, want the store's schemas and the silo tenants'", s.DroppedSchemas)
	}
	checkRestored(t, bulkhead.Config{DataDir: data, DatabaseURL: opts.AppURL}, m, p, keys, secrets)
}

func withDB(t *testing.T, raw, name string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
