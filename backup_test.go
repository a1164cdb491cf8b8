package bulkhead

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/backup"
	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/store/pgstore"
	"github.com/bulkheadhq/bulkhead/store/pgstore/pgtest"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// TestScheduledBackup: a server configured with BackupEvery takes a
// backup of its own store (signed by its audit key, with its tenants),
// verifies it against that key and keeps BackupKeep of them, on both
// stores. The schedule's tick is called directly: no clock is involved.
func TestScheduledBackup(t *testing.T) {
	t.Parallel()
	for _, postgres := range []bool{false, true} {
		name := map[bool]string{false: "SQLite", true: "Postgres"}[postgres]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dest := t.TempDir()
			cfg := Config{DataDir: t.TempDir(), BackupEvery: 6 * time.Hour, BackupKeep: 2, BackupDir: "file://" + dest,
				AdminToken: "test-operator-token-0123", Logger: slog.New(slog.DiscardHandler)}
			if postgres {
				pgtest.SuperURL(t)
				d := pgtest.New(t, t)
				if err := pgstore.Migrate(ctx, d.OwnerURL(t), d.App); err != nil {
					t.Fatal(err)
				}
				cfg.DatabaseURL, cfg.ProvisionURL, cfg.BackupPostgresURL = d.AppURL(t), d.OwnerURL(t), d.URL(t, "")
			}
			app, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer app.Close()
			ctl, _ := app.Core().Control(core.Operator(), "test")
			for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
				if _, err := ctl.CreateTenant(ctx, core.CreateTenantParams{Slug: tenant.Slug("t-" + string(iso)), Name: "t", Isolation: iso}, nil); err != nil {
					t.Fatal(err)
				}
			}
			if app.backups == nil {
				t.Fatal("BackupEvery set, but no scheduler")
			}
			// A clock that the test moves: one interval per backup.
			now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			app.backups.NowFunc = func() time.Time { return now }
			app.backups.Source.NowFunc = app.backups.NowFunc
			for range 3 {
				now = now.Add(cfg.BackupEvery)
				r, err := app.backups.RunOnce(ctx)
				if err != nil {
					t.Fatalf("scheduled backup = %v", err)
				}
				if !r.OK || r.Tenants != 2 {
					t.Fatalf("scheduled backup verified as %+v", r)
				}
			}
			if postgres {
				// Nodes share the lock: a second tick in the same interval
				// (another node's) finds this interval's backup and skips.
				now = now.Add(time.Minute)
				if _, err := app.backups.RunOnce(ctx); !errors.Is(err, backup.ErrSkipped) {
					t.Errorf("second backup in one interval = %v, want ErrSkipped", err)
				}
			}
			d, err := backup.OpenDest(ctx, dest)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			names, err := d.List(ctx)
			if err != nil || len(names) != 2 {
				t.Fatalf("destination holds %v (%v), want BackupKeep = 2", names, err)
			}
			// The stored backup verifies on its own too, against the key.
			local, err := d.Download(ctx, names[1], t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			// With SQLite the job queue's own file is in it.
			if _, err := os.Stat(jobsPath(&app.cfg)); !postgres && err == nil {
				if _, err := os.Stat(filepath.Join(local, backup.JobsFile)); err != nil {
					t.Errorf("the job queue's file is not in the backup: %v", err)
				}
			}
			opts := app.backups.Verify
			opts.ScratchDir = t.TempDir()
			if r, err := backup.Verify(ctx, local, &opts); err != nil || !r.OK {
				t.Errorf("Verify = %+v, %v", r, err)
			}
		})
	}
}

func TestConfigValidateBackups(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // substring of the error; "" for valid
	}{
		{"Off", Config{BackupDir: "x"}, ""},
		{"SQLite", Config{BackupEvery: time.Hour, BackupDir: "/srv/backups"}, ""},
		{"NoDir", Config{BackupEvery: time.Hour}, "BackupDir"},
		{"Negative", Config{BackupEvery: -time.Hour}, "BackupEvery"},
		{"TooOften", Config{BackupEvery: time.Second, BackupDir: "x"}, "at least 1m"},
		{"NegativeKeep", Config{BackupKeep: -1}, "BackupKeep"},
		{"PostgresWithoutSuperuser", Config{DatabaseURL: "postgres://app@db/bulkhead", BackupEvery: time.Hour, BackupDir: "x"}, "BackupPostgresURL"},
		{"Postgres", Config{DatabaseURL: "postgres://app@db/bulkhead", BackupEvery: time.Hour, BackupDir: "x", BackupPostgresURL: "postgres://root@db/bulkhead"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("validate() = %v, want an error naming %q", err, tc.want)
			}
		})
	}
}
