package backup_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/bulkheadhq/bulkhead/internal/audit"
	"github.com/bulkheadhq/bulkhead/internal/backup"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/pgstore"
	"github.com/bulkheadhq/bulkhead/store/pgstore/pgtest"
	"github.com/bulkheadhq/bulkhead/store/sqlitestore"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// benchTenants is how many tenants BenchmarkBackup's store holds
// (BULKHEAD_BENCH_TENANTS, default 1000), one in ten of them silo tenants,
// each with benchRecords records and as many audit entries.
func benchTenants() int {
	if n, err := strconv.Atoi(os.Getenv("BULKHEAD_BENCH_TENANTS")); err == nil && n > 0 {
		return n
	}
	return 1000
}

const benchRecords = 20

// populate creates n tenants in st, 8 at a time, and returns the audit
// key that signed their chains' checkpoints.
func populate(b *testing.B, st store.Store, n int) ed25519.PrivateKey {
	b.Helper()
	_, key, _ := ed25519.GenerateKey(nil)
	log := audit.New(audit.Config{SigningKey: key})
	ctx := context.Background()
	work := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	var failed error
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				iso := tenant.Pooled
				if i%10 == 9 {
					iso = tenant.Silo
				}
				id := tenant.ID(uuid.NewString())
				_, err := st.CreateTenant(ctx, &store.CreateTenantParams{ID: id, Slug: tenant.Slug(fmt.Sprintf("bench-%d", i)),
					Name: "bench", Plan: "free", Isolation: iso, CreatedAt: time.Now()}, nil, func(tx store.Tx) error {
					now := time.Now()
					if _, err := tx.PutCollection(ctx, &store.Collection{Name: "notes", CreatedAt: now, UpdatedAt: now}); err != nil {
						return err
					}
					for j := range benchRecords {
						r := &store.Record{Collection: "notes", ID: store.RecordID(uuid.NewString()), Version: 1, CreatedAt: now, UpdatedAt: now,
							Data: []byte(fmt.Sprintf(`{"title":"note %d of tenant %d","body":"lorem ipsum dolor sit amet, consectetur adipiscing elit"}`, j, i))}
						if err := tx.CreateRecord(ctx, r); err != nil {
							return err
						}
						if _, err := log.Append(ctx, tx, audit.TenantChain(id), audit.Event{Actor: "bench", Action: "record.create",
							Resource: "record:notes/" + string(r.ID), Outcome: audit.Success}); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					once.Do(func() { failed = err })
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if failed != nil {
		b.Fatal(failed)
	}
	return key
}

// BenchmarkBackup takes and verifies a backup of a store of benchTenants()
// tenants, and reports the backup's and the store's sizes and, as the
// baseline measured in the same run, how long a plain copy of the same data
// takes: the SQLite files copied byte for byte, or a bare pg_dump of the
// same schemas.
func BenchmarkBackup(b *testing.B) {
	n := benchTenants()
	b.Run("SQLite", func(b *testing.B) {
		dir := b.TempDir()
		path := filepath.Join(dir, "data", "bulkhead.db")
		st, err := sqlitestore.Open(path, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		populate(b, st, n)
		storeBytes := dirSize(b, filepath.Dir(path))
		baseline := func(out string) {
			copyTree(b, filepath.Dir(path), out)
		}
		runBackupBench(b, &backup.Source{SQLitePath: path}, &backup.VerifyOptions{ScratchDir: dir}, storeBytes, baseline)
	})
	b.Run("Postgres", func(b *testing.B) {
		pgtest.SuperURL(b)
		ctx := context.Background()
		d := pgtest.New(b, b)
		if err := pgstore.Migrate(ctx, d.OwnerURL(b), d.App); err != nil {
			b.Fatal(err)
		}
		st, err := pgstore.Open(ctx, d.AppURL(b), &pgstore.Options{ProvisionURL: d.OwnerURL(b)})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		populate(b, st, n)
		c, err := pgx.Connect(ctx, d.URL(b, ""))
		if err != nil {
			b.Fatal(err)
		}
		var storeBytes int64
		err = c.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&storeBytes)
		c.Close(ctx)
		if err != nil {
			b.Fatal(err)
		}
		var schemas []string
		if err := pgstore.WithSnapshot(ctx, d.URL(b, ""), nil, func(s *pgstore.Snapshot) error { schemas = s.Schemas; return nil }); err != nil {
			b.Fatal(err)
		}
		baseline := func(out string) {
			args := []string{"--format=custom", "--file=" + filepath.Join(out, "plain.dump"), "--dbname=" + d.URL(b, "")}
			for _, s := range schemas {
				args = append(args, "--schema="+s)
			}
			if out, err := execCommand("pg_dump", args...); err != nil {
				b.Fatalf("pg_dump: %v: %s", err, out)
			}
		}
		runBackupBench(b, &backup.Source{PostgresURL: d.URL(b, "")}, &backup.VerifyOptions{ScratchDir: b.TempDir(),
			PostgresURL: d.Super, AppURL: d.AppURL(b)}, storeBytes, baseline)
	})
}

func runBackupBench(b *testing.B, src *backup.Source, verify *backup.VerifyOptions, storeBytes int64, baseline func(out string)) {
	ctx := context.Background()
	var take, base, check time.Duration
	var size int64
	iters := 0
	for b.Loop() {
		out := b.TempDir()
		start := time.Now()
		baseline(out)
		base += time.Since(start)

		start = time.Now()
		m, err := backup.Take(ctx, src, out)
		if err != nil {
			b.Fatal(err)
		}
		take += time.Since(start)
		size = m.Size()

		start = time.Now()
		r, err := backup.Verify(ctx, filepath.Join(out, m.Name), verify)
		if err != nil || !r.OK {
			b.Fatalf("Verify = %+v, %v", r, err)
		}
		check += time.Since(start)
		iters++
	}
	b.ReportMetric(take.Seconds()/float64(iters), "take-s")
	b.ReportMetric(check.Seconds()/float64(iters), "verify-s")
	b.ReportMetric(float64(take)/float64(base), "take/baseline")
	b.ReportMetric(float64(size)/(1<<20), "backup-MiB")
	b.ReportMetric(float64(storeBytes)/(1<<20), "store-MiB")
}

func dirSize(b *testing.B, dir string) int64 {
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// copyTree copies the regular files under src into dst, byte for byte.
func copyTree(b *testing.B, src, dst string) {
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, "plain", rel)
		if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
			return err
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(to)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		b.Fatal(err)
	}
}

func execCommand(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).CombinedOutput()
}

// BenchmarkRestore restores a signed SQLite backup of benchTenants()
// tenants into a fresh data directory, and reports its time beside, as the
// baseline measured in the same run, a plain verification of the same
// backup (which a restore begins with).
func BenchmarkRestore(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	path := filepath.Join(dir, "data", "bulkhead.db")
	st, err := sqlitestore.Open(path, nil)
	if err != nil {
		b.Fatal(err)
	}
	key := populate(b, st, benchTenants())
	st.Close()
	m, err := backup.Take(ctx, &backup.Source{SQLitePath: path, AuditKey: key}, dir)
	if err != nil {
		b.Fatal(err)
	}
	src := filepath.Join(dir, m.Name)
	verify := backup.VerifyOptions{TrustedKey: key.Public().(ed25519.PublicKey), ScratchDir: dir}
	var restore, base time.Duration
	iters := 0
	for b.Loop() {
		start := time.Now()
		if r, err := backup.Verify(ctx, src, &verify); err != nil || !r.OK {
			b.Fatalf("Verify = %+v, %v", r, err)
		}
		base += time.Since(start)

		target := filepath.Join(b.TempDir(), "data")
		start = time.Now()
		if _, err := backup.Restore(ctx, src, &backup.RestoreOptions{Verify: verify, SQLitePath: filepath.Join(target, "bulkhead.db")}); err != nil {
			b.Fatal(err)
		}
		restore += time.Since(start)
		iters++
	}
	b.ReportMetric(restore.Seconds()/float64(iters), "restore-s")
	b.ReportMetric(base.Seconds()/float64(iters), "verify-s")
	b.ReportMetric(float64(restore)/float64(base), "restore/verify")
	b.ReportMetric(float64(m.Size())/(1<<20), "backup-MiB")
}
