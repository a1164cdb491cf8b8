//go:build unix

package cli

import (
	"encoding/json"
	"log/slog"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead"
)

// SIGHUP makes a running server re-read its keys: a signing key rotated
// in its key directory becomes the one it signs with.
func TestHangupReloads(t *testing.T) {
	dir := t.TempDir()
	app, err := bulkhead.New(bulkhead.Config{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	stop := reloadOnHangup(app)
	defer stop()
	before := app.Core().Tokens().KeyID()
	out := mustRun(t, dir, "keys", "rotate-signing")
	var rotated struct{ Kid string }
	json.Unmarshal([]byte(out), &rotated)
	if rotated.Kid == before {
		t.Fatalf("rotation kept kid %s", before)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for app.Core().Tokens().KeyID() != rotated.Kid {
		if time.Now().After(deadline) {
			t.Fatalf("after SIGHUP the signing kid is %s, want %s", app.Core().Tokens().KeyID(), rotated.Kid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
