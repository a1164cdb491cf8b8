package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	sqlite "modernc.org/sqlite"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// ChainState is an audit chain's head and a tenant's record count as one
// backup copy holds them.
type ChainState struct {
	// Tenant is the tenant, or zero for the platform's own chain.
	Tenant    tenant.ID
	Isolation tenant.Isolation
	// AuditSeq and AuditHash are the last entry of the chain (0 and nil
	// for an empty chain).
	AuditSeq  int64
	AuditHash []byte
	// Records is how many records the tenant holds; 0 for the platform.
	Records int64
}

// Backup is what BackupFiles copied.
type Backup struct {
	// Files are the copies, relative to the destination directory:
	// "bulkhead.db" first, then "tenants/<id>.db" for each silo tenant.
	Files []string
	// Platform is the platform chain's state in the main file's copy.
	Platform ChainState
	// Tenants are every tenant of the main file's copy, each as of its
	// own file's copy.
	Tenants []ChainState
	// SchemaVersion is the main file's PRAGMA user_version.
	SchemaVersion int
}

const (
	sqlBackupTenants   = `SELECT id, isolation FROM tenants ORDER BY id`
	sqlBackupHeads     = `SELECT a.tenant_id, a.seq, a.hash FROM audit_log a JOIN (SELECT tenant_id, max(seq) AS seq FROM audit_log GROUP BY tenant_id) m ON m.tenant_id = a.tenant_id AND m.seq = a.seq`
	sqlBackupRecords   = `SELECT tenant_id, count(*) FROM records GROUP BY tenant_id`
	backupMainFileName = "bulkhead.db"
)

// BackupFiles copies the store whose main database file is mainPath into
// the directory dir (which must not hold a backup yet) while the store may
// be serving, from this process or another: it never takes the writer's
// lock, and writers are never blocked (WAL readers do not block writers).
//
// Each file is copied with SQLite's online backup API inside one read
// transaction, in which the chain heads and record counts of the tenants it
// holds are read too: each file's copy and its ChainStates are one snapshot.
// The main file comes first; the silo files of the tenants in its copy
// follow, each as of its own copy, so a silo tenant's data may be a little
// newer than the main file (tenants created since are not in the backup).
// A silo tenant deleted between the two copies fails the backup: run it
// again.
func BackupFiles(ctx context.Context, mainPath, dir string) (*Backup, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tenants"), dirMode); err != nil {
		return nil, fmt.Errorf("sqlitestore: backup: %w", err)
	}
	b := &Backup{}
	var silos []tenant.ID
	err := copyFile(ctx, mainPath, filepath.Join(dir, backupMainFileName), func(ctx context.Context, c *sql.Conn) error {
		if err := c.QueryRowContext(ctx, "PRAGMA user_version").Scan(&b.SchemaVersion); err != nil {
			return err
		}
		states, err := readStates(ctx, c)
		if err != nil {
			return err
		}
		rows, err := c.QueryContext(ctx, sqlBackupTenants)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id tenant.ID
			var iso tenant.Isolation
			if err := rows.Scan(&id, &iso); err != nil {
				return err
			}
			st := states[string(id)]
			st.Tenant, st.Isolation = id, iso
			if iso == tenant.Silo {
				silos = append(silos, id)
				st = ChainState{Tenant: id, Isolation: iso} // filled from its own file
			}
			b.Tenants = append(b.Tenants, st)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		b.Platform = states[platformChain]
		b.Platform.Tenant, b.Platform.Records = "", 0
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: backup %s: %w", mainPath, err)
	}
	b.Files = append(b.Files, backupMainFileName)
	siloDir := filepath.Join(filepath.Dir(mainPath), "tenants")
	for _, id := range silos {
		if !id.Valid() {
			return nil, fmt.Errorf("sqlitestore: backup: silo tenant id %q is not a canonical UUID", id)
		}
		name := filepath.Join("tenants", string(id)+".db")
		src := filepath.Join(siloDir, string(id)+".db")
		if _, err := os.Stat(src); err != nil {
			return nil, fmt.Errorf("sqlitestore: backup: silo tenant %s (deleted during the backup? run it again): %w", id, err)
		}
		err := copyFile(ctx, src, filepath.Join(dir, name), func(ctx context.Context, c *sql.Conn) error {
			states, err := readStates(ctx, c)
			if err != nil {
				return err
			}
			for i := range b.Tenants {
				if b.Tenants[i].Tenant == id {
					st := states[string(id)]
					st.Tenant, st.Isolation = id, tenant.Silo
					b.Tenants[i] = st
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("sqlitestore: backup silo tenant %s: %w", id, err)
		}
		b.Files = append(b.Files, filepath.ToSlash(name))
	}
	return b, nil
}

// BackupFile copies the SQLite database src (any, such as the job queue's
// file beside the store) to dst, a new file of mode 0600, online and
// consistent, like BackupFiles.
func BackupFile(ctx context.Context, src, dst string) error {
	if err := copyFile(ctx, src, dst, func(context.Context, *sql.Conn) error { return nil }); err != nil {
		return fmt.Errorf("sqlitestore: backup %s: %w", src, err)
	}
	return nil
}

// readStates reads every chain head and record count of the file c is
// on, by tenant_id.
func readStates(ctx context.Context, c *sql.Conn) (map[string]ChainState, error) {
	out := map[string]ChainState{}
	rows, err := c.QueryContext(ctx, sqlBackupHeads)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		var st ChainState
		if err := rows.Scan(&id, &st.AuditSeq, &st.AuditHash); err != nil {
			rows.Close()
			return nil, err
		}
		out[id] = st
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}
	rows, err = c.QueryContext(ctx, sqlBackupRecords)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		st := out[id]
		st.Records = n
		out[id] = st
	}
	return out, rows.Err()
}

// backuper is the method of modernc.org/sqlite's connection that starts
// an online backup.
type backuper interface {
	NewBackup(dstURI string) (*sqlite.Backup, error)
}

// copyFile copies the database src to dst (created with the store's file
// mode) in one read transaction of src, in which read runs first: what
// read sees is exactly what the copy holds.
func copyFile(ctx context.Context, src, dst string, read func(ctx context.Context, c *sql.Conn) error) error {
	f, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return err
	}
	if err := errors.Join(f.Chmod(fileMode), f.Close()); err != nil {
		return err
	}
	// mode=rw without create: a missing source is an error, not a new
	// empty file. The connection never writes.
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: src}).EscapedPath()+"?mode=rw&_pragma=busy_timeout(5000)")
	if err != nil {
		return err
	}
	defer db.Close()
	c, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "BEGIN"); err != nil {
		return err
	}
	defer c.ExecContext(context.Background(), "ROLLBACK")
	// The first read starts the snapshot that the backup then copies: the
	// backup API reuses the source connection's open read transaction.
	if err := read(ctx, c); err != nil {
		return err
	}
	return c.Raw(func(dc any) error {
		bc, ok := dc.(backuper)
		if !ok {
			return fmt.Errorf("the SQLite driver has no online backup (%T)", dc)
		}
		bk, err := bc.NewBackup("file:" + (&url.URL{Path: dst}).EscapedPath() + "?mode=rw")
		if err != nil {
			return err
		}
		_, err = bk.Step(-1)
		return errors.Join(err, bk.Finish())
	})
}
