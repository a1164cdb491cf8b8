package backup_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/backup"
	"github.com/bulkheadhq/bulkhead/internal/observe"
)

// clock returns a NowFunc that starts at a fixed time and advances an
// hour at each call, so that backups taken in a row get distinct names in
// time order.
func clock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Hour)
		return t
	}
}

// TestDestinations uploads backups to a local directory and to a bucket
// URL (fileblob), lists them, downloads one and verifies the download,
// and prunes all but the newest two.
func TestDestinations(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, false, 2)
	p.write(t, 2)
	p.src.NowFunc = clock()
	for _, tc := range []struct {
		name string
		loc  func(dir string) string
	}{
		{"Directory", func(dir string) string { return dir }},
		// With a query, the URL is fileblob's to open, as any bucket URL.
		{"BucketURL", func(dir string) string { return "file://" + (&url.URL{Path: dir}).EscapedPath() + "?metadata=skip" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			d, err := backup.OpenDest(ctx, tc.loc(dir))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			staging := t.TempDir()
			var names []string
			for range 4 {
				m, local := p.take(t, staging)
				if err := d.Upload(ctx, local); err != nil {
					t.Fatal(err)
				}
				names = append(names, m.Name)
			}
			// A backup whose upload broke off before its manifest is not
			// listed (nor pruned, nor counted among those kept).
			partial := backup.Name(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
			if err := os.MkdirAll(filepath.Join(dir, partial), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, partial, "bulkhead.db"), []byte("half"), 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.name == "Directory" {
				for _, f := range []string{backup.ManifestFile, "bulkhead.db"} {
					if fi, err := os.Stat(filepath.Join(dir, names[0], f)); err != nil || fi.Mode().Perm() != 0o600 {
						t.Errorf("%s in the destination: %v, %v; want mode 0600", f, fi.Mode(), err)
					}
				}
			}
			got, err := d.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, names) {
				t.Fatalf("List = %v, want %v", got, names)
			}
			local, err := d.Download(ctx, names[1], t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if r := p.check(t, local); !r.OK {
				t.Fatalf("Verify of the downloaded backup = %+v", r)
			}
			pruned, err := d.Prune(ctx, 2)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(pruned, names[:2]) {
				t.Errorf("Prune(2) deleted %v, want %v", pruned, names[:2])
			}
			if got, _ := d.List(ctx); !slices.Equal(got, names[2:]) {
				t.Errorf("after Prune(2), List = %v, want %v", got, names[2:])
			}
			if _, err := d.Download(ctx, names[0], t.TempDir()); err == nil {
				t.Errorf("Download of a pruned backup succeeded")
			}
			if _, err := d.Download(ctx, "../etc", t.TempDir()); err == nil {
				t.Errorf("Download of a name outside the destination succeeded")
			}
		})
	}
}

// TestScheduler drives a Scheduler with ticks: each tick takes, uploads,
// downloads and verifies a backup, the destination keeps the newest Keep,
// and the metrics and log say so. A backup that fails verification is
// counted at stage verify and logged as an error.
func TestScheduler(t *testing.T) {
	t.Parallel()
	backends(t, 2, func(t *testing.T, p *platform) {
		p.write(t, 2)
		p.src.NowFunc = clock()
		dest := t.TempDir()
		metrics := observe.NewMetrics()
		var logs strings.Builder
		var logMu sync.Mutex
		s := &backup.Scheduler{
			Source: p.src, Dest: "file://" + dest, Every: time.Hour, Keep: 2, Verify: p.verify,
			StagingDir: t.TempDir(), Metrics: metrics.Backups(),
			Logger: slog.New(slog.NewTextHandler(lockedWriter{&logs, &logMu}, nil)),
		}
		ticks := make(chan time.Time)
		s.Ticks = ticks
		done := make(chan struct{})
		go func() { defer close(done); s.Run(context.Background()) }()
		for range 3 {
			ticks <- time.Time{}
			p.write(t, 1) // each backup differs
		}
		close(ticks)
		<-done

		d, err := backup.OpenDest(context.Background(), dest)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		names, err := d.List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(names) != 2 {
			t.Fatalf("after 3 scheduled backups with Keep 2, the destination holds %v", names)
		}
		if got := gauge(t, metrics, "bulkhead_backup_last_success_timestamp_seconds"); got <= 0 {
			t.Errorf("last success timestamp = %v, want set", got)
		}
		if got := gauge(t, metrics, "bulkhead_backup_size_bytes"); got <= 0 {
			t.Errorf("backup size = %v, want > 0", got)
		}
		if n := strings.Count(logs.String(), "scheduled backup taken and verified"); n != 3 {
			t.Errorf("log has %d success lines, want 3:\n%s", n, logs.String())
		}

		// A backup that does not verify (the platform's key is not the
		// one it is checked against) fails at stage verify.
		other, _, _ := ed25519.GenerateKey(nil)
		s.Verify.TrustedKey = other
		if _, err := s.RunOnce(context.Background()); err == nil {
			t.Fatal("RunOnce with the wrong trusted key succeeded")
		}
		if got := failures(t, metrics, observe.BackupVerify); got != 1 {
			t.Errorf("verify failures = %v, want 1", got)
		}
		// ... and is not kept: the destination holds the same two.
		if got, _ := d.List(context.Background()); !slices.Equal(got, names) {
			t.Errorf("after a backup that did not verify, the destination holds %v, want %v", got, names)
		}
		// A backup that cannot be taken fails at stage take.
		s.Source = &backup.Source{SQLitePath: filepath.Join(t.TempDir(), "missing", "bulkhead.db")}
		if _, err := s.RunOnce(context.Background()); err == nil {
			t.Fatal("RunOnce of a missing store succeeded")
		}
		if got := failures(t, metrics, observe.BackupTake); got != 1 {
			t.Errorf("take failures = %v, want 1", got)
		}
		if n := strings.Count(logs.String(), "level=ERROR msg=\"scheduled backup failed\""); n != 2 {
			t.Errorf("log has %d error lines, want 2:\n%s", n, logs.String())
		}
	})
}

// TestSchedulerOneNode: of two nodes whose ticks coincide, the one that
// finds the lock taken skips, and the one that takes the lock after the
// other's backup skips too, since the destination already holds this
// interval's backup.
func TestSchedulerOneNode(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, false, 1)
	now := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	p.src.NowFunc = func() time.Time { return now }
	var mu sync.Mutex
	locked := false
	lock := func(context.Context) (func(), bool, error) {
		mu.Lock()
		defer mu.Unlock()
		if locked {
			return nil, false, nil
		}
		locked = true
		return func() { mu.Lock(); locked = false; mu.Unlock() }, true, nil
	}
	dest := t.TempDir()
	node := func() *backup.Scheduler {
		return &backup.Scheduler{Source: p.src, Dest: dest, Every: 6 * time.Hour, Verify: p.verify, StagingDir: t.TempDir(),
			LockFunc: lock, NowFunc: func() time.Time { return now }}
	}
	a, b := node(), node()
	unlock, _, _ := lock(context.Background()) // a node is mid-backup
	if _, err := b.RunOnce(context.Background()); !errors.Is(err, backup.ErrSkipped) {
		t.Fatalf("RunOnce while another node holds the lock = %v, want ErrSkipped", err)
	}
	unlock()
	if _, err := a.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute) // b's tick, a minute later
	if _, err := b.RunOnce(context.Background()); !errors.Is(err, backup.ErrSkipped) {
		t.Fatalf("RunOnce just after another node's backup = %v, want ErrSkipped", err)
	}
	now = now.Add(6 * time.Hour) // the next interval
	if _, err := b.RunOnce(context.Background()); err != nil {
		t.Fatalf("RunOnce in the next interval = %v", err)
	}
	d, _ := backup.OpenDest(context.Background(), dest)
	defer d.Close()
	if names, _ := d.List(context.Background()); len(names) != 2 {
		t.Errorf("destination holds %v, want one backup per interval", names)
	}
}

type lockedWriter struct {
	b  *strings.Builder
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func gauge(t *testing.T, m *observe.Metrics, name string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func failures(t *testing.T, m *observe.Metrics, stage string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "bulkhead_backup_failures_total" {
			continue
		}
		for _, mm := range mf.GetMetric() {
			for _, l := range mm.GetLabel() {
				if l.GetName() == "stage" && l.GetValue() == stage {
					return mm.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("bulkhead_backup_failures_total{stage=%q} not found", stage)
	return 0
}
