package backup

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/bulkheadhq/bulkhead/store/sqlitestore"
)

// TestRestoreInterrupted stops a forced SQLite restore after the old files
// were moved aside and before the new ones are in place, as a crash would:
// the old files are whole in replaced-<time>, the target holds no store,
// and running the restore again completes it.
func TestRestoreInterrupted(t *testing.T) {
	ctx := context.Background()
	_, key, _ := ed25519.GenerateKey(nil)
	src := filepath.Join(t.TempDir(), "bulkhead.db")
	st, err := sqlitestore.Open(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	out := t.TempDir()
	m, err := Take(ctx, &Source{SQLitePath: src, AuditKey: key}, out)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(out, m.Name)
	data := t.TempDir()
	opts := &RestoreOptions{
		Verify:     VerifyOptions{TrustedKey: key.Public().(ed25519.PublicKey), ScratchDir: t.TempDir()},
		SQLitePath: filepath.Join(data, "bulkhead.db"),
	}
	if _, err := Restore(ctx, dir, opts); err != nil {
		t.Fatalf("Restore = %v", err)
	}
	_, old, err := hashFile(opts.SQLitePath)
	if err != nil {
		t.Fatal(err)
	}

	crash := errors.New("interrupted")
	testInterrupt = func(step string) error {
		if step == "moved aside" {
			return crash
		}
		return nil
	}
	t.Cleanup(func() { testInterrupt = nil })
	opts.Force = true
	s, err := Restore(ctx, dir, opts)
	if !errors.Is(err, crash) {
		t.Fatalf("interrupted Restore = %v, want the interruption", err)
	}
	if _, err := os.Stat(opts.SQLitePath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after the interruption bulkhead.db is there (%v), want it moved aside", err)
	}
	if _, moved, err := hashFile(filepath.Join(s.Replaced, "bulkhead.db")); err != nil || moved != old {
		t.Errorf("the old bulkhead.db in %q: %v, SHA-256 %s, want it whole (%s)", s.Replaced, err, moved, old)
	}

	testInterrupt = nil
	opts.Force = false // the target holds no store now
	if _, err := Restore(ctx, dir, opts); err != nil {
		t.Fatalf("Restore after the interruption = %v", err)
	}
	if _, err := os.Stat(opts.SQLitePath); err != nil {
		t.Errorf("after the second restore: %v", err)
	}
}
