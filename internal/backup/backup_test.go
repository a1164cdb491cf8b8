package backup_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/bulkheadhq/bulkhead"
	"github.com/bulkheadhq/bulkhead/internal/backup"
	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/store/pgstore"
	"github.com/bulkheadhq/bulkhead/store/pgstore/pgtest"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// platform is a running bulkhead with tenants, and how to back it up and
// verify its backups.
type platform struct {
	app     *bulkhead.App
	src     *backup.Source
	verify  backup.VerifyOptions
	key     ed25519.PrivateKey
	tenants []*core.Scope // each tenant's admin, with a collection "notes"
	data    string        // the data directory, which holds the keys
}

// backends runs fn on an SQLite and a PostgreSQL platform of nTenants
// tenants (half of them silo tenants).
func backends(t *testing.T, nTenants int, fn func(t *testing.T, p *platform)) {
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		fn(t, newPlatform(t, false, nTenants))
	})
	t.Run("Postgres", func(t *testing.T) {
		t.Parallel()
		pgtest.SuperURL(t) // skips without PostgreSQL
		fn(t, newPlatform(t, true, nTenants))
	})
}

func newPlatform(t testing.TB, postgres bool, nTenants int) *platform {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	cfg := bulkhead.Config{DataDir: filepath.Join(dir, "data"), Logger: slog.New(slog.DiscardHandler)}
	p := &platform{src: &backup.Source{}, verify: backup.VerifyOptions{ScratchDir: dir}}
	if postgres {
		d := pgtest.New(t, t)
		if err := pgstore.Migrate(ctx, d.OwnerURL(t), d.App); err != nil {
			t.Fatal(err)
		}
		cfg.DatabaseURL, cfg.ProvisionURL = d.AppURL(t), d.OwnerURL(t)
		p.src.PostgresURL = d.URL(t, "") // the superuser, on the store's database
		p.verify.PostgresURL, p.verify.AppURL = d.Super, d.AppURL(t)
	} else {
		p.src.SQLitePath = filepath.Join(cfg.DataDir, "bulkhead.db")
	}
	app, err := bulkhead.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	p.app = app
	p.data = cfg.DataDir
	keys, err := keyring.Load(filepath.Join(cfg.DataDir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	p.key = keys.AuditKey
	p.src.AuditKey = keys.AuditKey
	p.verify.TrustedKey = keys.AuditKey.Public().(ed25519.PublicKey)
	ctl, err := app.Core().Control(core.Operator(), "test")
	if err != nil {
		t.Fatal(err)
	}
	for i := range nTenants {
		iso := tenant.Pooled
		if i%2 == 1 {
			iso = tenant.Silo
		}
		slug := tenant.Slug(fmt.Sprintf("t%d", i))
		if _, err := ctl.CreateTenant(ctx, core.CreateTenantParams{Slug: slug, Name: string(slug), Isolation: iso}, nil); err != nil {
			t.Fatal(err)
		}
		op, err := app.Core().Scope(ctx, core.Operator(), slug, "test")
		if err != nil {
			t.Fatal(err)
		}
		k, err := op.CreateAPIKey(ctx, core.CreateAPIKeyParams{Name: "admin", Role: tenant.Admin})
		if err != nil {
			t.Fatal(err)
		}
		pr, err := app.Core().Authenticate(ctx, k.Key)
		if err != nil {
			t.Fatal(err)
		}
		sc, err := app.Core().Scope(ctx, pr, slug, "test")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sc.PutCollection(ctx, "notes", core.PutCollectionParams{}); err != nil {
			t.Fatal(err)
		}
		p.tenants = append(p.tenants, sc)
	}
	return p
}

// write creates n records in every tenant.
func (p *platform) write(t testing.TB, n int) {
	t.Helper()
	for _, sc := range p.tenants {
		for i := range n {
			if _, err := sc.CreateRecord(context.Background(), "notes", []byte(fmt.Sprintf(`{"n":%d}`, i)), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// writers keeps writing to every tenant until stop is called, which
// returns how many records each wrote. It returns once each has written
// at least one.
func (p *platform) writers(t *testing.T) (stop func() []int64) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	counts := make([]atomic.Int64, len(p.tenants))
	var started sync.WaitGroup
	for i, sc := range p.tenants {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			first := true
			for ctx.Err() == nil {
				_, err := sc.CreateRecord(ctx, "notes", []byte(`{"w":1}`), nil)
				if err != nil && ctx.Err() == nil {
					t.Errorf("tenant %d: CreateRecord = %v", i, err)
					if first {
						started.Done()
					}
					return
				}
				if err == nil {
					counts[i].Add(1)
				}
				if first {
					first = false
					started.Done()
				}
			}
		}()
	}
	started.Wait()
	return func() []int64 {
		cancel()
		wg.Wait()
		out := make([]int64, len(counts))
		for i := range counts {
			out[i] = counts[i].Load()
		}
		return out
	}
}

// take takes a backup into dir and returns its manifest and directory.
func (p *platform) take(t testing.TB, dir string) (*backup.Manifest, string) {
	t.Helper()
	m, err := backup.Take(context.Background(), p.src, dir)
	if err != nil {
		t.Fatalf("Take = %v", err)
	}
	return m, filepath.Join(dir, m.Name)
}

func (p *platform) check(t testing.TB, dir string) *backup.Report {
	t.Helper()
	r, err := backup.Verify(context.Background(), dir, &p.verify)
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	return r
}

// TestBackupWhileServing backs up a platform whose every tenant is being
// written to: the backup verifies, every tenant is in it with the records
// and audit entries it had when its copy was taken (some, not all, of what
// the writers wrote), and the chains' heads and record counts of the
// restored store are the manifest's.
func TestBackupWhileServing(t *testing.T) {
	t.Parallel()
	backends(t, 4, func(t *testing.T, p *platform) {
		p.write(t, 3)
		stop := p.writers(t)
		m, dir := p.take(t, t.TempDir())
		p.write(t, 1) // after the backup, so it is not in it
		written := stop()

		r := p.check(t, dir)
		if !r.OK || r.Tenants != len(p.tenants) {
			t.Fatalf("Verify = %+v, want OK with %d tenants", r, len(p.tenants))
		}
		if len(m.Tenants) != len(p.tenants) {
			t.Fatalf("manifest has %d tenants, want %d", len(m.Tenants), len(p.tenants))
		}
		byID := map[tenant.ID]backup.Tenant{}
		for _, mt := range m.Tenants {
			byID[mt.ID] = mt
		}
		for i, sc := range p.tenants {
			mt, ok := byID[sc.Tenant().ID]
			if !ok {
				t.Fatalf("tenant %d is not in the manifest", i)
			}
			all := 3 + written[i] + 1
			if mt.Records < 3 || mt.Records >= all {
				t.Errorf("tenant %d: manifest has %d records, want between 3 and %d (exclusive)", i, mt.Records, all)
			}
			if mt.AuditSeq <= mt.Records || mt.AuditHash == "" {
				t.Errorf("tenant %d: manifest audit head %d %q, want past its %d record creations", i, mt.AuditSeq, mt.AuditHash, mt.Records)
			}
			if mt.Isolation != sc.Tenant().Isolation {
				t.Errorf("tenant %d: isolation %s, want %s", i, mt.Isolation, sc.Tenant().Isolation)
			}
		}
		if m.Platform.AuditSeq < int64(len(p.tenants)) {
			t.Errorf("platform audit head %d, want at least one entry per tenant created", m.Platform.AuditSeq)
		}
	})
}

// TestVerifyDetectsDamage alters backups in the ways a disk, a transfer or
// a person can, and checks that each fails verification with a message
// that names what is wrong.
func TestVerifyDetectsDamage(t *testing.T) {
	t.Parallel()
	backends(t, 2, func(t *testing.T, p *platform) {
		p.write(t, 5)
		m, clean := p.take(t, t.TempDir())
		if r := p.check(t, clean); !r.OK {
			t.Fatalf("undamaged backup: Verify = %+v, want OK", r)
		}
		dataFile := m.Files[len(m.Files)-1].Path // a silo tenant's file, or the dump
		silo := m.Tenants[1]
		if silo.Isolation != tenant.Silo {
			t.Fatalf("tenant 1 is %s, want silo", silo.Isolation)
		}
		for _, tc := range []struct {
			name   string
			damage func(t *testing.T, dir string)
			want   string
		}{
			{"FlippedBytes", func(t *testing.T, dir string) {
				flip(t, filepath.Join(dir, dataFile))
			}, "file " + dataFile + ": SHA-256"},
			{"Truncated", func(t *testing.T, dir string) {
				if err := os.Truncate(filepath.Join(dir, dataFile), 4096); err != nil {
					t.Fatal(err)
				}
			}, "file " + dataFile + ": 4096 bytes"},
			{"ManifestEdited", func(t *testing.T, dir string) {
				editManifest(t, dir, nil, func(m *backup.Manifest) { m.Tenants[0].Records++ })
			}, "the signature does not verify"},
			{"ManifestSignatureRemoved", func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, backup.SignatureFile)); err != nil {
					t.Fatal(err)
				}
			}, "signature file manifest.sig is missing"},
			{"ManifestResignedByAnotherKey", func(t *testing.T, dir string) {
				_, other, _ := ed25519.GenerateKey(nil)
				editManifest(t, dir, other, func(m *backup.Manifest) {})
			}, "signed by another key"},
			// With the platform's key (as if stolen), a consistent edit
			// passes every file check: the restore must still catch it.
			{"RecordCountMismatch", func(t *testing.T, dir string) {
				editManifest(t, dir, p.key, func(m *backup.Manifest) { m.Tenants[1].Records++ })
			}, fmt.Sprintf("tenant %s: %d records, the manifest says %d", silo.ID, silo.Records, silo.Records+1)},
			{"AuditHeadMismatch", func(t *testing.T, dir string) {
				editManifest(t, dir, p.key, func(m *backup.Manifest) { m.Tenants[1].AuditSeq-- })
			}, fmt.Sprintf("tenant %s: audit head is entry %d", silo.ID, silo.AuditSeq)},
			{"TenantMissing", func(t *testing.T, dir string) {
				editManifest(t, dir, p.key, func(m *backup.Manifest) { m.Tenants = m.Tenants[1:] })
			}, "in the restored store but not in the manifest"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				dir := copyDir(t, clean)
				tc.damage(t, dir)
				r := p.check(t, dir)
				if r.OK {
					t.Fatalf("Verify of a damaged backup = OK, want a problem with %q", tc.want)
				}
				if !strings.Contains(strings.Join(r.Problems, "\n"), tc.want) {
					t.Errorf("Verify problems = %q, want one with %q", r.Problems, tc.want)
				}
			})
		}
	})
}

// TestVerifyDetectsBrokenChain rewrites an audit entry inside an SQLite
// silo file of the backup and fixes up the manifest's hashes and
// signature, as someone holding the platform key could: the restored
// chain no longer verifies.
func TestVerifyDetectsBrokenChain(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, false, 2)
	p.write(t, 3)
	m, dir := p.take(t, t.TempDir())
	silo := m.Tenants[1]
	path := filepath.Join(dir, "tenants", string(silo.ID)+".db")
	execSQLite(t, path, `UPDATE audit_log SET actor = 'someone else' WHERE seq = 2`)
	editManifest(t, dir, p.key, func(m *backup.Manifest) {
		for i := range m.Files {
			if m.Files[i].Path == "tenants/"+string(silo.ID)+".db" {
				m.Files[i].Size, m.Files[i].SHA256 = hashOf(t, path)
			}
		}
	})
	var broken []string
	p.verify.OnBrokenChain = func(chain string) { broken = append(broken, chain) }
	r := p.check(t, dir)
	want := fmt.Sprintf("tenant %s: audit chain broken at entry 2: entry hash mismatch", silo.ID)
	if r.OK || !strings.Contains(strings.Join(r.Problems, "\n"), want) {
		t.Fatalf("Verify = %+v, want a problem %q", r, want)
	}
	if strings.Join(broken, ",") != "tenant" {
		t.Errorf("OnBrokenChain heard %q, want one tenant chain", broken)
	}
}

func flip(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	off := fi.Size() / 2
	b := make([]byte, 16)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] ^= 0xa5
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// editManifest rewrites dir's manifest with edit and signs it with key
// (nil: keeps the old signature).
func editManifest(t *testing.T, dir string, key ed25519.PrivateKey, edit func(m *backup.Manifest)) {
	t.Helper()
	path := filepath.Join(dir, backup.ManifestFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m backup.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(&m)
	if key != nil {
		m.AuditKey = hex.EncodeToString(key.Public().(ed25519.PublicKey))
	}
	if b, err = json.MarshalIndent(&m, "", "  "); err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if key != nil {
		sig := hex.EncodeToString(ed25519.Sign(key, b)) + "\n"
		if err := os.WriteFile(filepath.Join(dir, backup.SignatureFile), []byte(sig), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	err := filepath.WalkDir(src, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if e.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(filepath.Join(dst, rel))
		if err != nil {
			return err
		}
		_, err = io.Copy(out, in)
		return errorsJoin(err, out.Close())
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func errorsJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func execSQLite(t *testing.T, path, stmt string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

func hashOf(t *testing.T, path string) (int64, string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return int64(len(b)), hex.EncodeToString(sum[:])
}

// TestVerifyPostgresAfterDeletion verifies a PostgreSQL backup of a silo
// tenant deleted since: its role, which is cluster-wide and went with the
// tenant, is made for the restore and dropped afterwards.
func TestVerifyPostgresAfterDeletion(t *testing.T) {
	pgtest.SuperURL(t)
	t.Parallel()
	p := newPlatform(t, true, 2)
	p.write(t, 2)
	m, dir := p.take(t, t.TempDir())
	ctl, _ := p.app.Core().Control(core.Operator(), "test")
	silo := p.tenants[1]
	op, err := p.app.Core().Scope(context.Background(), core.Operator(), silo.Tenant().Slug, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := ctl.DeleteTenant(context.Background(), op); err != nil {
		t.Fatal(err)
	}
	if r := p.check(t, dir); !r.OK || r.Tenants != len(m.Tenants) {
		t.Fatalf("Verify after the silo tenant's deletion = %+v", r)
	}
	role := "bulkhead_t_" + strings.ReplaceAll(string(silo.Tenant().ID), "-", "")
	var n int
	c := connectPG(t, p.verify.PostgresURL)
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM pg_roles WHERE rolname = $1", role).Scan(&n); err != nil || n != 0 {
		t.Errorf("the silo role made for the restore is left behind (%d, %v)", n, err)
	}
}

// TestVerifyPostgresEditedDump rewrites a PostgreSQL dump so that its file
// checks pass (sizes, hashes and signature fixed, as by someone holding
// the platform key): the restore refuses it, and Verify says so.
func TestVerifyPostgresEditedDump(t *testing.T) {
	pgtest.SuperURL(t)
	t.Parallel()
	p := newPlatform(t, true, 1)
	p.write(t, 2)
	_, dir := p.take(t, t.TempDir())
	path := filepath.Join(dir, backup.DumpFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b[:len(b)*2/3], 0o600); err != nil { // a dump cut short
		t.Fatal(err)
	}
	editManifest(t, dir, p.key, func(m *backup.Manifest) { m.Files[0].Size, m.Files[0].SHA256 = hashOf(t, path) })
	r := p.check(t, dir)
	if r.OK || !strings.Contains(strings.Join(r.Problems, "\n"), "restore: pg_restore:") {
		t.Fatalf("Verify of an edited dump = %+v, want a pg_restore problem", r)
	}
}

func connectPG(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}
