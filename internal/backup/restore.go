package backup

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkheadhq/bulkhead/internal/audit"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/pgstore"
	"github.com/bulkheadhq/bulkhead/store/sqlitestore"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// RestoreOptions configure Restore. Set SQLitePath for an SQLite backup,
// PostgresURL and AppURL for a PostgreSQL one.
type RestoreOptions struct {
	// Verify configures the verification that comes first. Its
	// TrustedKey is required: the public half of the audit signing key in
	// the keys that the restored platform will run with. Its KMS, if set,
	// must open each tenant's data key in the backup (otherwise Restore
	// returns ErrWrongKeys). Restore copies
	// its PostgresURL, AppURL and PgRestore from the fields below.
	Verify VerifyOptions
	// SQLitePath is the target's main database file; its directory is
	// the data directory, which receives tenants/.
	SQLitePath string
	// SQLiteJobsPath is the target's job queue file.
	SQLiteJobsPath string
	// PostgresURL is a superuser's URL of the target database.
	PostgresURL string
	// AppURL is the application role's URL of the target database: the
	// restored store is opened and checked as the server opens it.
	AppURL string
	// PgRestore is the pg_restore program. Defaults to "pg_restore".
	PgRestore string
	// Force replaces what the target holds: SQLite files are moved aside
	// into a directory replaced-<time> beside them; PostgreSQL schemas of
	// the store are dropped.
	Force bool
	// NowFunc returns the current time. Defaults to time.Now.
	NowFunc func() time.Time
}

// RestoreSummary is what Restore did.
type RestoreSummary struct {
	Name  string `json:"name"`
	Store string `json:"store"`
	// Target is the data directory or the database (its URL without the
	// password) restored into.
	Target string `json:"target"`
	// Files are the SQLite files written, relative to the data directory.
	Files []string `json:"files,omitempty"`
	// Replaced is the directory the target's previous SQLite files were
	// moved into (with Force).
	Replaced string `json:"replaced,omitempty"`
	// Moved are the files and directories moved into Replaced.
	Moved []string `json:"moved,omitempty"`
	// DroppedSchemas are the PostgreSQL schemas dropped (with Force).
	DroppedSchemas []string `json:"dropped_schemas,omitempty"`
	// CreatedRoles are the silo tenants' PostgreSQL roles that did not
	// exist and were created.
	CreatedRoles []string `json:"created_roles,omitempty"`
	// Tenants is the number of tenants restored; Silo how many of them
	// are silo tenants; Records the number of records.
	Tenants int   `json:"tenants"`
	Silo    int   `json:"silo_tenants"`
	Records int64 `json:"records"`
	// PlatformAuditSeq is the platform audit chain's last entry.
	PlatformAuditSeq int64 `json:"platform_audit_seq"`
	// Verified is the verification of the backup, before the restore.
	Verified *Report `json:"verified"`
}

// ErrWrongKeys is returned by Restore when the backup was signed by
// another audit key than the one given: the keys at hand are not the
// restored platform's.
var ErrWrongKeys = errors.New("the keys are not this backup's")

// ErrTargetNotEmpty is returned by Restore when the target holds a store
// and Force is not set.
var ErrTargetNotEmpty = errors.New("the target already holds a store")

// ErrTargetInUse is returned by Restore when a server is using the target.
var ErrTargetInUse = errors.New("the target is in use")

// ErrNotVerified is returned by Restore when the backup does not verify;
// nothing was written.
var ErrNotVerified = errors.New("the backup does not verify")

// Restore restores the backup in directory dir into the target that opts
// names. It checks first that the backup was signed by the trusted audit
// key (the keys the platform will run with) and the target (no store in
// it unless Force, not in use), then verifies the backup as Verify does
// (with Verify.KMS, also that the tenants' data keys open), then checks
// the target again, and refuses (writing nothing) if any of this fails. It then writes the store:
// SQLite files are staged beside their final names, synced, and renamed
// into place, after the target's old files (with Force) are moved aside;
// a PostgreSQL dump is restored with pg_restore as a superuser. Last it
// opens the restored store and checks it against the manifest again.
func Restore(ctx context.Context, dir string, opts *RestoreOptions) (*RestoreSummary, error) {
	o := *opts
	trusted := o.Verify.TrustedKey
	if len(trusted) != ed25519.PublicKeySize {
		return nil, errors.New("restore: the platform's audit key is needed to check the backup and the keys")
	}
	m, _, err := readManifest(dir, trusted)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if m.AuditKey == "" {
		return nil, errors.New("restore: the backup is not signed, so nothing shows that the keys at hand are its platform's; take a signed backup (with the keys directory in place)")
	}
	if m.AuditKey != hex.EncodeToString(trusted) {
		return nil, fmt.Errorf("restore: %w: the backup's audit key is %s, the keys' audit-signing.key is %s; restore the keys directory that belongs with this backup first",
			ErrWrongKeys, short(m.AuditKey), short(hex.EncodeToString(trusted)))
	}
	switch m.Store {
	case SQLite:
		if o.SQLitePath == "" {
			return nil, errors.New("restore: an SQLite backup needs an SQLite target")
		}
		if err := sqliteTargetFree(&o); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
	case Postgres:
		if o.PostgresURL == "" || o.AppURL == "" {
			return nil, errors.New("restore: a PostgreSQL backup needs a PostgreSQL target: a superuser's URL and the application role's URL")
		}
		c, _, _, err := postgresTarget(ctx, &o)
		if err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		c.Close(ctx)
		o.Verify.PostgresURL, o.Verify.AppURL, o.Verify.PgRestore = o.PostgresURL, o.AppURL, o.PgRestore
	default:
		return nil, fmt.Errorf("restore: manifest: unknown store %q", m.Store)
	}
	r, err := Verify(ctx, dir, &o.Verify)
	if err != nil {
		return nil, fmt.Errorf("restore: verify: %w", err)
	}
	if r.KeysFailed > 0 {
		return &RestoreSummary{Name: m.Name, Store: m.Store, Verified: r},
			fmt.Errorf("restore: %w (nothing was written): %d tenant(s)' data keys do not open with the keys at hand, the first: %s; restore the keys directory (or BULKHEAD_KEK) that belongs with this backup first",
				ErrWrongKeys, r.KeysFailed, firstKeyProblem(r.Problems))
	}
	if !r.OK {
		return &RestoreSummary{Name: m.Name, Store: m.Store, Verified: r},
			fmt.Errorf("restore: %w (nothing was written): %d problem(s), the first: %s", ErrNotVerified, len(r.Problems), r.Problems[0])
	}
	s := &RestoreSummary{Name: m.Name, Store: m.Store, Verified: r, Tenants: len(m.Tenants), PlatformAuditSeq: m.Platform.AuditSeq}
	for _, t := range m.Tenants {
		s.Records += t.Records
		if t.Isolation == tenant.Silo {
			s.Silo++
		}
	}
	now := time.Now
	if o.NowFunc != nil {
		now = o.NowFunc
	}
	var open func() (store.Store, error)
	if m.Store == SQLite {
		s.Target = filepath.Dir(o.SQLitePath)
		if abs, err := filepath.Abs(s.Target); err == nil {
			s.Target = abs
		}
		if err := restoreSQLiteFiles(dir, m, &o, now().UTC(), s); err != nil {
			return s, fmt.Errorf("restore: %w", err)
		}
		open = func() (store.Store, error) {
			return sqlitestore.Open(o.SQLitePath, &sqlitestore.Options{Logger: o.Verify.Logger})
		}
	} else {
		s.Target = redact(o.PostgresURL)
		if err := restorePostgresInto(ctx, dir, m, &o, s); err != nil {
			return s, fmt.Errorf("restore: %w", err)
		}
		open = func() (store.Store, error) {
			return pgstore.Open(ctx, o.AppURL, &pgstore.Options{Logger: o.Verify.Logger, MaxConns: 2})
		}
	}
	// What is in place now, checked as the backup was.
	st, err := open()
	if err != nil {
		return s, fmt.Errorf("restore: open the restored store: %w", err)
	}
	defer st.Close()
	log := audit.New(audit.Config{VerifyKeys: []ed25519.PublicKey{trusted}})
	if p := check(ctx, st, m, log, nil); len(p) > 0 {
		return s, fmt.Errorf("restore: the restored store does not match the backup: %d problem(s), the first: %s", len(p), p[0])
	}
	return s, nil
}

// firstKeyProblem returns the first of problems about a data key.
func firstKeyProblem(problems []string) string {
	for _, p := range problems {
		if strings.Contains(p, "data key does not open") {
			return p
		}
	}
	return problems[0]
}

// sqliteTargets are the target's paths a restore replaces, and their names
// in a backup ("" for the WAL files, never in a backup).
func sqliteTargets(o *RestoreOptions) [][2]string {
	var t [][2]string
	for _, p := range [][2]string{{o.SQLitePath, "bulkhead.db"}, {o.SQLiteJobsPath, JobsFile}} {
		if p[0] == "" {
			continue
		}
		t = append(t, p, [2]string{p[0] + "-wal", ""}, [2]string{p[0] + "-shm", ""}, [2]string{p[0] + "-journal", ""})
	}
	return append(t, [2]string{filepath.Join(filepath.Dir(o.SQLitePath), "tenants"), "tenants"})
}

// sqliteTargetFree checks that no server has the target open and that it
// holds no store, unless Force.
func sqliteTargetFree(o *RestoreOptions) error {
	for _, p := range []string{o.SQLitePath, o.SQLiteJobsPath} {
		if p == "" {
			continue
		}
		inUse, err := sqliteInUse(p)
		if err != nil {
			return fmt.Errorf("check whether %s is in use: %w", p, err)
		}
		if inUse {
			return fmt.Errorf("%w: a process has %s open (stop the server first)", ErrTargetInUse, p)
		}
	}
	var present []string
	for _, t := range sqliteTargets(o) {
		if _, err := os.Lstat(t[0]); err == nil {
			present = append(present, t[0])
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if len(present) > 0 && !o.Force {
		return fmt.Errorf("%w: %s (with --force they are moved aside into a directory replaced-<time>)", ErrTargetNotEmpty, strings.Join(present, ", "))
	}
	return nil
}

// restoreSQLiteFiles copies the backup's files into the target. The new
// files are written under a staging directory .restore-* in the data
// directory (the same file system), synced, and only then are the old
// files moved into replaced-<time> and the new ones renamed into place,
// so that an interruption leaves the old files whole (in place or in
// replaced-<time>) and the new ones whole (in place or in .restore-*).
func restoreSQLiteFiles(dir string, m *Manifest, o *RestoreOptions, now time.Time, s *RestoreSummary) error {
	data := filepath.Dir(o.SQLitePath)
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	staging, err := os.MkdirTemp(data, ".restore-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(staging)
	for _, f := range m.Files {
		rel := filepath.FromSlash(f.Path)
		if err := copyFile(filepath.Join(dir, rel), filepath.Join(staging, rel), true); err != nil {
			return fmt.Errorf("stage %s: %w", f.Path, err)
		}
	}
	if err := os.MkdirAll(filepath.Join(staging, "tenants"), 0o700); err != nil {
		return err
	}
	if err := errors.Join(syncDir(filepath.Join(staging, "tenants")), syncDir(staging)); err != nil {
		return err
	}
	// Recheck: a server may have started while the files were staged.
	if err := sqliteTargetFree(o); err != nil {
		return err
	}
	targets := sqliteTargets(o)
	var replaced string
	for _, t := range targets {
		if _, err := os.Lstat(t[0]); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if replaced == "" {
			replaced = filepath.Join(data, "replaced-"+now.Format("20060102T150405.000Z"))
			if err := os.Mkdir(replaced, 0o700); err != nil {
				return err
			}
		}
		if err := os.Rename(t[0], filepath.Join(replaced, filepath.Base(t[0]))); err != nil {
			return fmt.Errorf("move %s aside: %w", t[0], err)
		}
		s.Moved = append(s.Moved, filepath.Base(t[0]))
	}
	s.Replaced = replaced
	if replaced != "" {
		if err := errors.Join(syncDir(replaced), syncDir(data)); err != nil {
			return err
		}
	}
	if testInterrupt != nil {
		if err := testInterrupt("moved aside"); err != nil {
			return err
		}
	}
	// The main file last: until it is there, the store is not whole.
	for _, t := range slices.Backward(targets) {
		if t[1] == "" {
			continue
		}
		src := filepath.Join(staging, t[1])
		if _, err := os.Lstat(src); errors.Is(err, fs.ErrNotExist) {
			continue // no job queue in the backup
		}
		if err := os.Rename(src, t[0]); err != nil {
			return fmt.Errorf("put %s in place: %w", t[1], err)
		}
	}
	for _, f := range m.Files {
		s.Files = append(s.Files, f.Path)
	}
	return syncDir(data)
}

// testInterrupt, set by tests, is called between the steps of an SQLite
// restore; an error stops the restore there, as a crash would.
var testInterrupt func(step string) error

// copyFile copies src to the new file dst (mode 0600, its directory made
// with 0700), and syncs it if durable: a restore's files must survive a
// crash, a verification's scratch copies need not.
func copyFile(src, dst string, durable bool) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil && durable {
		err = out.Sync()
	}
	return errors.Join(err, out.Close())
}

// syncDir syncs a directory, making the renames and creations in it
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// storeSchemas matches the names of the PostgreSQL schemas a store holds:
// its own, the job queue's and each silo tenant's.
const storeSchemas = `nspname IN ('bulkhead', 'bulkhead_keys', 'bulkhead_jobs') OR nspname ~ '^t_[0-9a-f]{32}$'`

// sessionGrace is how long a restore waits for the sessions connected to
// its target PostgreSQL database to end before refusing.
const sessionGrace = 5 * time.Second

// postgresTarget connects to the target database and checks it: the
// superuser's and the application role's URLs name the same database, no
// other client is connected, and it holds none of a store's schemas
// unless Force. It returns the connection (to close), the application
// role, and the store's schemas the database holds.
func postgresTarget(ctx context.Context, o *RestoreOptions) (*pgx.Conn, string, []string, error) {
	appURL, err := url.Parse(o.AppURL)
	if err != nil || appURL.User == nil {
		return nil, "", nil, errors.New("the application role's URL does not name its role")
	}
	superURL, err := url.Parse(o.PostgresURL)
	if err != nil {
		return nil, "", nil, errors.New("the superuser's URL does not parse")
	}
	if a, b := strings.Trim(appURL.Path, "/"), strings.Trim(superURL.Path, "/"); a != b {
		return nil, "", nil, fmt.Errorf("the superuser's URL names database %q, the application role's %q: both must name the target", b, a)
	}
	c, err := pgx.Connect(ctx, o.PostgresURL)
	if err != nil {
		return nil, "", nil, err
	}
	present, err := func() ([]string, error) {
		// A server stopped just before may still have sessions ending:
		// they get sessionGrace to go.
		var others int
		for deadline := time.Now().Add(sessionGrace); ; {
			if err := c.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`).Scan(&others); err != nil {
				return nil, err
			}
			if others == 0 || time.Now().After(deadline) {
				break
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
		if others > 0 {
			return nil, fmt.Errorf("%w: %d other session(s) are connected to the target database (stop the servers first)", ErrTargetInUse, others)
		}
		rows, err := c.Query(ctx, `SELECT nspname FROM pg_namespace WHERE `+storeSchemas+` ORDER BY nspname`)
		if err != nil {
			return nil, err
		}
		present, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, err
		}
		if len(present) > 0 && !o.Force {
			return nil, fmt.Errorf("%w: the database holds schema(s) %s (with --force they are dropped, with everything in them)", ErrTargetNotEmpty, strings.Join(present, ", "))
		}
		return present, nil
	}()
	if err != nil {
		c.Close(context.Background())
		return nil, "", nil, err
	}
	return c, appURL.User.Username(), present, nil
}

// restorePostgresInto restores the dump into the target database, after
// checking it again and, with Force, dropping the store's schemas it
// holds.
func restorePostgresInto(ctx context.Context, dir string, m *Manifest, o *RestoreOptions, s *RestoreSummary) error {
	c, appRole, present, err := postgresTarget(ctx, o)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	if len(present) > 0 {
		var b bytes.Buffer
		for _, n := range present {
			fmt.Fprintf(&b, "DROP SCHEMA %s CASCADE;\n", pgx.Identifier{n}.Sanitize())
		}
		if _, err := c.Exec(ctx, "BEGIN;\n"+b.String()+"COMMIT;"); err != nil {
			return fmt.Errorf("drop the target's schemas: %w", err)
		}
		s.DroppedSchemas = present
	}
	created, err := pgRestore(ctx, o.PostgresURL, appRole, dir, m, o.PgRestore)
	s.CreatedRoles = created
	if err != nil {
		return fmt.Errorf("%w (the target database holds part of the backup: run again with --force)", err)
	}
	return nil
}
