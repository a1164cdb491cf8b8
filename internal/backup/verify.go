package backup

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/bulkheadhq/bulkhead/internal/audit"
	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/pgstore"
	"github.com/bulkheadhq/bulkhead/store/sqlitestore"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// VerifyOptions configure Verify. The zero value verifies SQLite backups
// in the system's temporary directory.
type VerifyOptions struct {
	// TrustedKey, if set, is the platform's audit public key: the
	// manifest must be signed by it, and the audit chains' checkpoints
	// verify against it. Without it the key the manifest names is used,
	// which detects damage but not a forger who re-signs.
	TrustedKey ed25519.PublicKey
	// ScratchDir is where SQLite backups are restored, in a directory of
	// their own removed afterwards. Defaults to os.TempDir().
	ScratchDir string
	// PostgresURL connects, as a superuser, to the PostgreSQL server to
	// restore into: Verify creates a scratch database there, restores the
	// dump into it with the owners and privileges it records, and drops it
	// afterwards. Required for PostgreSQL backups.
	PostgresURL string
	// AppURL is the application role's URL (its database is replaced by
	// the scratch database): the restored store is opened as the server
	// opens it. Required for PostgreSQL backups.
	AppURL string
	// PgRestore is the pg_restore program. Defaults to "pg_restore".
	PgRestore string
	// Logger receives the store's warnings. Defaults to discarding.
	Logger *slog.Logger
	// KMS, if set, is the key management service the restored platform
	// will run with: each tenant's active data keys in the backup (the
	// data key and the blind-index key) must unwrap with it, so that keys
	// that do not open the backup's data are found before it is restored.
	KMS keyring.KMS
	// OnBrokenChain, if set, is called with "platform" or "tenant" for
	// each audit chain of the backup found broken (a metric counts them).
	OnBrokenChain func(chain string)
}

// Report is the result of Verify.
type Report struct {
	Name  string `json:"name"`
	Store string `json:"store"`
	// OK is true when nothing is wrong.
	OK bool `json:"ok"`
	// Tenants is the number of tenants checked.
	Tenants int `json:"tenants"`
	// Size is the size of the backup's data files.
	Size int64 `json:"size"`
	// KeysChecked is the number of tenants' data keys unwrapped with
	// VerifyOptions.KMS.
	KeysChecked int `json:"keys_checked,omitempty"`
	// KeysFailed is the number of tenants' data keys that did not unwrap
	// with VerifyOptions.KMS (each is also a problem).
	KeysFailed int `json:"keys_failed,omitempty"`
	// Problems lists what is wrong, one sentence each.
	Problems []string `json:"problems,omitempty"`
}

// Verify checks the backup in directory dir: the manifest's signature,
// each file's size and SHA-256, then restores it into a scratch location,
// opens it with the store and verifies every audit chain (the platform's
// and each tenant's, as GET /audit/verify does) and that each chain's head
// and each tenant's record count are the manifest's. A backup that fails a
// check is a Report with OK false; an error means Verify could not check.
func Verify(ctx context.Context, dir string, opts *VerifyOptions) (*Report, error) {
	var o VerifyOptions
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	m, problems, err := readManifest(dir, o.TrustedKey)
	if err != nil {
		return nil, err
	}
	r := &Report{Name: m.Name, Store: m.Store, Size: m.Size(), Problems: problems}
	for _, f := range m.Files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if !filepath.IsLocal(filepath.FromSlash(f.Path)) {
			r.Problems = append(r.Problems, fmt.Sprintf("file %s: not a path inside the backup", f.Path))
			continue
		}
		size, sum, err := hashFile(p)
		switch {
		case err != nil:
			r.Problems = append(r.Problems, fmt.Sprintf("file %s: %v", f.Path, err))
		case size != f.Size:
			r.Problems = append(r.Problems, fmt.Sprintf("file %s: %d bytes, the manifest says %d", f.Path, size, f.Size))
		case sum != f.SHA256:
			r.Problems = append(r.Problems, fmt.Sprintf("file %s: SHA-256 %s, the manifest says %s (the file is damaged or altered)", f.Path, sum, f.SHA256))
		}
	}
	if len(r.Problems) > 0 {
		// Restoring what does not match its manifest proves nothing.
		return r, nil
	}
	key := o.TrustedKey
	if key == nil && m.AuditKey != "" {
		key, _ = hex.DecodeString(m.AuditKey) // checked by readManifest
	}
	var log *audit.Log
	if key != nil {
		log = audit.New(audit.Config{VerifyKeys: []ed25519.PublicKey{key}})
	} else {
		log = audit.New(audit.Config{})
	}
	restore := restoreSQLite
	switch m.Store {
	case SQLite:
	case Postgres:
		restore = restorePostgres
	default:
		return nil, fmt.Errorf("manifest: unknown store %q", m.Store)
	}
	err = restore(ctx, dir, m, &o, func(st store.Store) error {
		r.Tenants = len(m.Tenants)
		r.Problems = append(r.Problems, check(ctx, st, m, log, o.OnBrokenChain)...)
		if o.KMS != nil {
			n, problems := checkKeys(ctx, st, o.KMS)
			r.KeysChecked, r.KeysFailed, r.Problems = n, len(problems), append(r.Problems, problems...)
		}
		return nil
	})
	if err != nil {
		r.Problems = append(r.Problems, "restore: "+err.Error())
	}
	r.OK = len(r.Problems) == 0
	return r, nil
}

// restoreSQLite copies the backup's files into a scratch directory and
// opens the store on them.
func restoreSQLite(ctx context.Context, dir string, m *Manifest, o *VerifyOptions, fn func(store.Store) error) error {
	scratch, err := os.MkdirTemp(o.ScratchDir, "bulkhead-verify-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	for _, f := range m.Files {
		if err := copyFile(filepath.Join(dir, filepath.FromSlash(f.Path)), filepath.Join(scratch, filepath.FromSlash(f.Path)), false); err != nil {
			return err
		}
	}
	st, err := sqlitestore.Open(filepath.Join(scratch, "bulkhead.db"), &sqlitestore.Options{Logger: o.Logger})
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(st)
}

// restorePostgres restores the dump into a scratch database, opens the
// store on it as the application role, and drops the database (and any
// silo role it had to create) afterwards.
func restorePostgres(ctx context.Context, dir string, m *Manifest, o *VerifyOptions, fn func(store.Store) error) (err error) {
	if o.PostgresURL == "" || o.AppURL == "" {
		return errors.New("verifying a PostgreSQL backup needs a superuser URL to restore with and the application role's URL")
	}
	appURL, err := url.Parse(o.AppURL)
	if err != nil || appURL.User == nil {
		return errors.New("the application role's URL does not name its role")
	}
	appRole := appURL.User.Username()
	suffix := make([]byte, 6)
	rand.Read(suffix)
	name := "bulkhead_verify_" + hex.EncodeToString(suffix)
	admin, err := pgx.Connect(ctx, o.PostgresURL)
	if err != nil {
		return err
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create scratch database: %w", err)
	}
	var created []string // silo roles made for the restore
	defer func() {
		// The database first: the roles own its objects.
		_, derr := admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		err = errors.Join(err, derr, pgstore.DropRoles(context.Background(), o.PostgresURL, created))
	}()
	if _, err := admin.Exec(ctx, "REVOKE ALL ON DATABASE "+pgx.Identifier{name}.Sanitize()+" FROM PUBLIC; "+
		"GRANT CONNECT ON DATABASE "+pgx.Identifier{name}.Sanitize()+" TO "+pgx.Identifier{appRole}.Sanitize()); err != nil {
		return fmt.Errorf("grant on scratch database: %w", err)
	}
	superScratch, err := withDatabase(o.PostgresURL, name)
	if err != nil {
		return err
	}
	// The scratch database is thrown away: its commits need not wait for
	// the disk, and a restore that stops halfway leaves nothing.
	created, err = pgRestore(ctx, superScratch, appRole, dir, m, o.PgRestore, "PGOPTIONS=-c synchronous_commit=off")
	if err != nil {
		return err
	}
	appScratch, err := withDatabase(o.AppURL, name)
	if err != nil {
		return err
	}
	st, err := pgstore.Open(ctx, appScratch, &pgstore.Options{Logger: o.Logger, MaxConns: 2})
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(st)
}

// pgRestore restores the backup's dump in dir into the database of
// superURL (a superuser's, so that owners and privileges are restored as
// they were), after creating the silo roles of m's tenants that do not
// exist with appRole a member. It returns the roles it created, also when
// it fails. env is added to pg_restore's environment.
func pgRestore(ctx context.Context, superURL, appRole, dir string, m *Manifest, program string, env ...string) ([]string, error) {
	var silos []tenant.ID
	for _, t := range m.Tenants {
		if t.Isolation == tenant.Silo {
			silos = append(silos, t.ID)
		}
	}
	created, err := pgstore.PrepareRestore(ctx, superURL, appRole, silos)
	if err != nil {
		return created, err
	}
	// Not --single-transaction: one transaction would lock every table and
	// index of every silo schema at once, past max_locks_per_transaction on
	// a platform of a hundred silo tenants.
	cmd := exec.CommandContext(ctx, cmp.Or(program, "pg_restore"), "--exit-on-error", "--no-password",
		"--dbname="+superURL, filepath.Join(dir, DumpFile))
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return created, fmt.Errorf("pg_restore: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return created, nil
}

// withDatabase returns the PostgreSQL URL raw with its database replaced.
func withDatabase(raw, name string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("PostgreSQL URL does not parse")
	}
	u.Path = "/" + name
	return u.String(), nil
}

// check compares the opened store with the manifest.
func check(ctx context.Context, st store.Store, m *Manifest, log *audit.Log, onBroken func(string)) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	var tenants []*store.Tenant
	err := st.ReadPlatform(ctx, func(tx store.PlatformTx) error {
		tenants = tenants[:0]
		var after *store.TenantKey
		for {
			page, err := tx.ListTenants(ctx, &store.ListTenantsParams{After: after, Limit: 1000})
			if err != nil {
				return err
			}
			tenants = append(tenants, page...)
			if len(page) < 1000 {
				break
			}
			last := page[len(page)-1]
			after = &store.TenantKey{CreatedAt: last.CreatedAt, ID: last.ID}
		}
		problems = append(problems, chainProblems(ctx, tx, log, audit.PlatformChain, m.Platform, "platform", onBroken)...)
		return nil
	})
	if err != nil {
		add("platform: %v", err)
		return problems
	}
	have := map[tenant.ID]*store.Tenant{}
	for _, t := range tenants {
		have[t.ID] = t
	}
	want := map[tenant.ID]bool{}
	for _, mt := range m.Tenants {
		want[mt.ID] = true
		t, ok := have[mt.ID]
		switch {
		case !ok:
			add("tenant %s: in the manifest but not in the restored store", mt.ID)
			continue
		case t.Isolation != mt.Isolation:
			add("tenant %s: isolation %s, the manifest says %s", mt.ID, t.Isolation, mt.Isolation)
		}
		err := st.ReadTenant(ctx, mt.ID, func(tx store.Tx) error {
			problems = append(problems, chainProblems(ctx, tx, log, audit.TenantChain(mt.ID), mt.Chain, "tenant "+string(mt.ID), onBroken)...)
			n, err := countRecords(ctx, tx)
			if err != nil {
				return err
			}
			if n != mt.Records {
				add("tenant %s: %d records, the manifest says %d", mt.ID, n, mt.Records)
			}
			return nil
		})
		if err != nil {
			add("tenant %s: %v", mt.ID, err)
		}
	}
	var extra []string
	for id := range have {
		if !want[id] {
			extra = append(extra, string(id))
		}
	}
	slices.Sort(extra)
	for _, id := range extra {
		add("tenant %s: in the restored store but not in the manifest", id)
	}
	return problems
}

// checkKeys unwraps each tenant's active data keys with kms and returns
// how many it unwrapped and the problems, one per key that does not open.
func checkKeys(ctx context.Context, st store.Store, kms keyring.KMS) (int, []string) {
	var keys []*store.DataKey
	err := st.ReadPlatform(ctx, func(tx store.PlatformTx) (err error) {
		keys, err = tx.ListDataKeys(ctx, "")
		return err
	})
	if err != nil {
		return 0, []string{fmt.Sprintf("data keys: %v", err)}
	}
	var problems []string
	n := 0
	for _, k := range keys {
		if k.State != store.KeyActive || k.Wrapped == nil {
			continue
		}
		if _, err := kms.Unwrap(ctx, k.Tenant, k.Wrapped, core.DataKeyAAD(k)); err != nil {
			problems = append(problems, fmt.Sprintf("tenant %s: its data key does not open with the keys at hand (%s key version %d): %v", k.Tenant, k.Purpose, k.Version, err))
			continue
		}
		n++
	}
	return n, problems
}

// chainProblems verifies one chain and compares its head with want.
// onBroken, if not nil, hears of a broken chain: "platform" or "tenant".
func chainProblems(ctx context.Context, l store.AuditLog, log *audit.Log, chain audit.Chain, want Chain, who string, onBroken func(string)) []string {
	r, err := log.Verify(ctx, l, chain)
	if err != nil {
		return []string{fmt.Sprintf("%s: audit chain not verified: %v", who, err)}
	}
	if !r.OK {
		if onBroken != nil {
			onBroken(map[bool]string{true: "platform", false: "tenant"}[chain == audit.PlatformChain])
		}
		return []string{fmt.Sprintf("%s: audit chain broken at entry %d: %s", who, r.BrokenAt, r.Reason)}
	}
	if got := hex.EncodeToString(r.Head); r.Length != want.AuditSeq || got != want.AuditHash {
		return []string{fmt.Sprintf("%s: audit head is entry %d (%s), the manifest says %d (%s)", who, r.Length, short(got), want.AuditSeq, short(want.AuditHash))}
	}
	return nil
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}

// countRecords counts the tenant's records in every collection.
func countRecords(ctx context.Context, tx store.Tx) (int64, error) {
	cols, err := tx.ListCollections(ctx)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, c := range cols {
		page, err := tx.ListRecords(ctx, &store.ListRecordsParams{Collection: c.Name, Limit: 1, Count: true})
		if err != nil {
			return 0, fmt.Errorf("count records of %s: %w", c.Name, err)
		}
		n += page.Total
	}
	return n, nil
}
