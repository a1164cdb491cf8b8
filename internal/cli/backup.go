package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bulkheadhq/bulkhead"
	"github.com/bulkheadhq/bulkhead/internal/backup"
	"github.com/bulkheadhq/bulkhead/internal/keyring"
)

// backupOptions are serve's flags for scheduled backups.
type backupOptions struct {
	every, keep, dir, postgresURL string
}

func (b *backupOptions) flags(fs *pflag.FlagSet) {
	fs.StringVar(&b.every, "backup-every", os.Getenv("BULKHEAD_BACKUP_EVERY"),
		"take, verify and keep a backup of the whole platform at this interval, e.g. 6h; empty means none (env BULKHEAD_BACKUP_EVERY)")
	fs.StringVar(&b.keep, "backup-keep", envOr("BULKHEAD_BACKUP_KEEP", "7"), "how many scheduled backups to keep (env BULKHEAD_BACKUP_KEEP)")
	fs.StringVar(&b.dir, "backup-dir", os.Getenv("BULKHEAD_BACKUP_DIR"),
		"where scheduled backups go: a directory or a bucket URL (file:///…, s3://bucket?endpoint=…&region=…) (env BULKHEAD_BACKUP_DIR)")
	postgresURLFlag(fs, &b.postgresURL)
}

// postgresURLFlag is the superuser URL that PostgreSQL backups and their
// verification need.
func postgresURLFlag(fs *pflag.FlagSet, v *string) {
	fs.StringVar(v, "backup-postgres-url", os.Getenv("BULKHEAD_BACKUP_POSTGRES_URL"),
		"PostgreSQL: a superuser's URL of the store's database, for pg_dump (which must see every tenant's rows) and for restoring into a scratch database to verify (env BULKHEAD_BACKUP_POSTGRES_URL)")
}

// apply sets cfg's backup fields.
func (b *backupOptions) apply(cfg *bulkhead.Config) error {
	if b.every != "" {
		d, err := time.ParseDuration(b.every)
		if err != nil {
			return fmt.Errorf("--backup-every: %w", err)
		}
		cfg.BackupEvery = d
	}
	keep, err := strconv.Atoi(b.keep)
	if err != nil {
		return fmt.Errorf("--backup-keep: %q is not a number", b.keep)
	}
	cfg.BackupKeep, cfg.BackupDir, cfg.BackupPostgresURL = keep, b.dir, b.postgresURL
	return nil
}

func newBackup(o *options) *cobra.Command {
	var out, postgresURL string
	cmd := &cobra.Command{
		Use:   "backup --out DIR",
		Short: "Back up the whole platform while it serves; see backup verify",
		Long: "backup copies the store online, beside a running server on the same data directory: the\n" +
			"SQLite files with SQLite's online backup API, or PostgreSQL with pg_dump of one snapshot (as a\n" +
			"superuser, --backup-postgres-url). The backup is a directory named bulkhead-<time> in --out (a\n" +
			"directory or a bucket URL) with a manifest signed by the platform's audit key, listing each\n" +
			"file's SHA-256 and each tenant's audit head and record count. It does not hold the keys of\n" +
			"--data/keys: back them up separately (see docs/backups.md).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			src := &backup.Source{Version: version()}
			if strings.HasPrefix(o.database, "postgres") {
				if postgresURL == "" {
					return errors.New("backing up PostgreSQL needs a superuser's URL: --backup-postgres-url (or BULKHEAD_BACKUP_POSTGRES_URL)")
				}
				src.PostgresURL = postgresURL
			} else {
				cfg := &bulkhead.Config{DataDir: o.data, DatabaseURL: o.database}
				src.SQLitePath, src.SQLiteJobsPath = bulkhead.SQLitePath(cfg), bulkhead.SQLiteJobsPath(cfg)
				if _, err := os.Stat(src.SQLitePath); err != nil {
					return fmt.Errorf("no SQLite store to back up: %w", err)
				}
			}
			key, err := auditKey(o.data)
			if err != nil {
				return err
			}
			if key == nil {
				fmt.Fprintln(o.stderr, "bulkhead: warning: no audit key in", filepath.Join(o.data, "keys"), "- the manifest is not signed")
			}
			src.AuditKey = key
			dest, err := backup.OpenDest(ctx, out)
			if err != nil {
				return err
			}
			defer dest.Close()
			staging, err := os.MkdirTemp("", "bulkhead-backup-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(staging)
			m, err := backup.Take(ctx, src, staging)
			if err != nil {
				return err
			}
			if err := dest.Upload(ctx, filepath.Join(staging, m.Name)); err != nil {
				return err
			}
			return o.print(m)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "where to put the backup: a directory or a bucket URL (file:///…, s3://bucket?endpoint=…&region=…) (required)")
	postgresURLFlag(cmd.Flags(), &postgresURL)
	cmd.MarkFlagRequired("out")
	cmd.AddCommand(newBackupVerify(o), newBackupRestore(o))
	return cmd
}

func newBackupVerify(o *options) *cobra.Command {
	var postgresURL string
	cmd := &cobra.Command{
		Use:   "verify DIR [NAME|latest]",
		Short: "Restore a backup into a scratch location and check it against its manifest",
		Long: "verify checks a backup's manifest signature and files, restores it (SQLite: into a temporary\n" +
			"directory; PostgreSQL: into a scratch database created and dropped with --backup-postgres-url,\n" +
			"opened as the role of --database), verifies every tenant's audit chain and the platform's, and\n" +
			"compares each chain's head and each tenant's record count with the manifest. DIR is the backup's\n" +
			"own directory; or, with NAME, the directory or bucket URL holding backups (latest: the newest).\n" +
			"The signature is checked against --data/keys/audit-signing.key when it exists. It prints a\n" +
			"report and exits with status 1 on any problem.",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			dir, cleanup, err := fetchBackup(ctx, args)
			if err != nil {
				return err
			}
			defer cleanup()
			opts := &backup.VerifyOptions{PostgresURL: postgresURL, AppURL: o.database}
			if key, err := auditKey(o.data); err != nil {
				return err
			} else if key != nil {
				opts.TrustedKey = key.Public().(ed25519.PublicKey)
			}
			r, err := backup.Verify(ctx, dir, opts)
			if err != nil {
				return err
			}
			if err := o.print(r); err != nil {
				return err
			}
			if !r.OK {
				return fmt.Errorf("backup %s does not verify: %d problem(s), the first: %s", r.Name, len(r.Problems), r.Problems[0])
			}
			return nil
		},
	}
	postgresURLFlag(cmd.Flags(), &postgresURL)
	return cmd
}

// fetchBackup returns the local directory of the backup that args name:
// [DIR] or [DEST NAME|latest], downloaded into a temporary directory that
// cleanup removes.
func fetchBackup(ctx context.Context, args []string) (dir string, cleanup func(), err error) {
	if len(args) == 1 {
		return args[0], func() {}, nil
	}
	dest, err := backup.OpenDest(ctx, args[0])
	if err != nil {
		return "", nil, err
	}
	defer dest.Close()
	name := args[1]
	if name == "latest" {
		names, err := dest.List(ctx)
		if err != nil {
			return "", nil, err
		}
		if len(names) == 0 {
			return "", nil, fmt.Errorf("no backup in %s", args[0])
		}
		name = names[len(names)-1]
	}
	tmp, err := os.MkdirTemp("", "bulkhead-backup-")
	if err != nil {
		return "", nil, err
	}
	if dir, err = dest.Download(ctx, name, tmp); err != nil {
		os.RemoveAll(tmp)
		return "", nil, err
	}
	return dir, func() { os.RemoveAll(tmp) }, nil
}

// restoreReminder is printed before every restore.
const restoreReminder = "bulkhead: a backup holds neither the keys directory (%s) nor the admin token (%s): restore them\n" +
	"from their own backup before restoring the data; the keys are checked against the backup first.\n"

func newBackupRestore(o *options) *cobra.Command {
	var postgresURL string
	var force bool
	cmd := &cobra.Command{
		Use:   "restore DEST NAME|latest",
		Short: "Verify a backup, then restore it into the store of --data or --database",
		Long: "restore first checks that the keys in --data/keys are the backup's (the manifest must be\n" +
			"signed by keys/audit-signing.key: restore the keys directory and admin-token from their own\n" +
			"backup first, a backup holds neither), then verifies the backup as backup verify does and\n" +
			"unwraps each tenant's data keys in it with the KMS of --kms (local: kek.key or BULKHEAD_KEK,\n" +
			"and keys/tenant-keys), and writes nothing if any of this fails.\n\n" +
			"SQLite: the files go into the data directory (of --data, or of --database sqlite:PATH), staged\n" +
			"beside their final names, synced, and renamed into place. A target that holds a database is\n" +
			"refused unless --force, which moves its main file, -wal/-shm, jobs file and tenants/ into a\n" +
			"directory replaced-<time> (never deleting them). A target that a process has open (a running\n" +
			"server) is refused (detected on Linux through SQLite's own lock; elsewhere stop it first).\n\n" +
			"PostgreSQL: pg_restore --exit-on-error as the superuser of --backup-postgres-url into that\n" +
			"URL's database, which must be the database of --database, have no other client connected, and\n" +
			"hold none of the store's schemas (bulkhead, bulkhead_keys, bulkhead_jobs, t_<hex>); --force\n" +
			"drops those schemas, and everything in them, first.\n\n" +
			"The restored store is then opened and checked against the manifest again. DEST NAME as for\n" +
			"verify; DIR alone is the backup's own directory. It prints a JSON summary.",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			fmt.Fprintf(o.stderr, restoreReminder, filepath.Join(o.data, "keys"), filepath.Join(o.data, "admin-token"))
			key, err := auditKey(o.data)
			if err != nil {
				return err
			}
			if key == nil {
				return fmt.Errorf("no audit key in %s: restore the keys directory from its own backup first (a backup does not hold it)", filepath.Join(o.data, "keys"))
			}
			opts := &backup.RestoreOptions{Force: force}
			opts.Verify.TrustedKey = key.Public().(ed25519.PublicKey)
			if opts.Verify.KMS, err = o.restoreKMS(); err != nil {
				return err
			}
			if strings.HasPrefix(o.database, "postgres") {
				if postgresURL == "" {
					return errors.New("restoring into PostgreSQL needs a superuser's URL of the target database: --backup-postgres-url (or BULKHEAD_BACKUP_POSTGRES_URL)")
				}
				opts.PostgresURL, opts.AppURL = postgresURL, o.database
			} else {
				cfg := &bulkhead.Config{DataDir: o.data, DatabaseURL: o.database}
				opts.SQLitePath, opts.SQLiteJobsPath = bulkhead.SQLitePath(cfg), bulkhead.SQLiteJobsPath(cfg)
			}
			dir, cleanup, err := fetchBackup(ctx, args)
			if err != nil {
				return err
			}
			defer cleanup()
			s, err := backup.Restore(ctx, dir, opts)
			if s != nil && s.Verified != nil && !s.Verified.OK {
				o.print(s.Verified)
			}
			if err != nil {
				return err
			}
			return o.print(s)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace a store the target holds: SQLite files are moved aside into replaced-<time>/, PostgreSQL schemas are dropped")
	cmd.Flags().StringVar(&postgresURL, "backup-postgres-url", os.Getenv("BULKHEAD_BACKUP_POSTGRES_URL"),
		"PostgreSQL: a superuser's URL of the database to restore into (the database of --database), also used for the scratch database that verifies (env BULKHEAD_BACKUP_POSTGRES_URL)")
	return cmd
}

// restoreKMS opens the key management service that --kms selects, to
// check that it opens the tenants' data keys of a backup: the local KMS of
// --data/keys (or BULKHEAD_KEK), never creating a KEK, or Vault.
func (o *options) restoreKMS() (keyring.KMS, error) {
	if o.kms.kind == "vault" {
		return keyring.OpenVault(keyring.VaultConfig{Address: o.kms.vaultAddr, Token: os.Getenv("VAULT_TOKEN"), Mount: o.kms.vaultMount})
	}
	return keyring.OpenLocal(keyring.LocalConfig{Dir: filepath.Join(o.data, "keys"), EnvKEK: os.Getenv("BULKHEAD_KEK"), WrappedKeysExist: true})
}

// auditKey reads the platform's audit signing key from dataDir/keys, or
// returns nil if there is none: a backup taken or verified away from the
// data directory must not make up a new key.
func auditKey(dataDir string) (ed25519.PrivateKey, error) {
	dir := filepath.Join(dataDir, "keys")
	if _, err := os.Stat(filepath.Join(dir, "audit-signing.key")); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	keys, err := keyring.Load(dir)
	if err != nil {
		return nil, err
	}
	return keys.AuditKey, nil
}
