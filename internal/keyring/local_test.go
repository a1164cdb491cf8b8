package keyring

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkheadhq/bulkhead/tenant"
)

const (
	tidA = tenant.ID("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
	tidB = tenant.ID("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c")
)

func openLocal(t *testing.T, cfg LocalConfig) *Local {
	t.Helper()
	l, err := OpenLocal(cfg)
	if err != nil {
		t.Fatalf("OpenLocal = %v", err)
	}
	return l
}

func TestLocalWrapUnwrap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	l := openLocal(t, LocalConfig{Dir: dir})
	if l.Err() != nil {
		t.Fatalf("Err() = %v", l.Err())
	}
	st, err := os.Stat(filepath.Join(dir, kekFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("kek.key: stat = %v, %v; want mode 0600", st, err)
	}
	if _, err := l.Wrap(ctx, tidA, NewKey(), nil); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("Wrap before CreateKey = %v, want ErrKeyNotFound", err)
	}
	for _, tid := range []tenant.ID{tidA, tidB} {
		if err := l.CreateKey(ctx, tid); err != nil {
			t.Fatalf("CreateKey(%s) = %v", tid, err)
		}
	}
	st, err = os.Stat(filepath.Join(dir, tenantKeyDir, string(tidA)+".key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("tenant key file: stat = %v, %v; want mode 0600", st, err)
	}
	dek := NewKey()
	w, err := l.Wrap(ctx, tidA, dek, []byte("data/1"))
	if err != nil {
		t.Fatalf("Wrap = %v", err)
	}
	if bytes.Contains(w, dek) {
		t.Fatal("the wrapped key holds the key in clear")
	}
	got, err := l.Unwrap(ctx, tidA, w, []byte("data/1"))
	if err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("Unwrap = %x, %v; want the key", got, err)
	}
	// Another tenant's key, or other associated data, opens nothing.
	if _, err := l.Unwrap(ctx, tidB, w, []byte("data/1")); !errors.Is(err, ErrOpen) {
		t.Errorf("Unwrap as another tenant = %v, want ErrOpen", err)
	}
	if _, err := l.Unwrap(ctx, tidA, w, []byte("data/2")); !errors.Is(err, ErrOpen) {
		t.Errorf("Unwrap with other aad = %v, want ErrOpen", err)
	}
	// A second process with the same directory opens it too.
	l2 := openLocal(t, LocalConfig{Dir: dir})
	if got, err := l2.Unwrap(ctx, tidA, w, []byte("data/1")); err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("Unwrap after reopening = %x, %v", got, err)
	}

	// rotate-kek: a new KEK version, every tenant file re-wrapped; the
	// wrapped data key still opens, and the tenant file changed.
	before, _ := os.ReadFile(filepath.Join(dir, tenantKeyDir, string(tidA)+".key"))
	if err := l2.RotateKEK(ctx, nil); err != nil {
		t.Fatalf("RotateKEK = %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, tenantKeyDir, string(tidA)+".key"))
	if !strings.HasPrefix(string(after), "v2 ") || bytes.Equal(before, after) {
		t.Errorf("tenant key file after RotateKEK = %q, want it re-wrapped under v2", after)
	}
	l3 := openLocal(t, LocalConfig{Dir: dir})
	if l3.KEKVersion() != 2 {
		t.Errorf("KEKVersion after rotation = %d, want 2", l3.KEKVersion())
	}
	if got, err := l3.Unwrap(ctx, tidA, w, []byte("data/1")); err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("Unwrap after RotateKEK = %x, %v", got, err)
	}

	// Crypto-shredding: once destroyed, nothing opens the wrapped key, in
	// this process or a new one.
	if err := l3.DestroyKey(ctx, tidA); err != nil {
		t.Fatalf("DestroyKey = %v", err)
	}
	if _, err := l3.Unwrap(ctx, tidA, w, []byte("data/1")); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("Unwrap after DestroyKey = %v, want ErrKeyNotFound", err)
	}
	if _, err := openLocal(t, LocalConfig{Dir: dir}).Unwrap(ctx, tidA, w, []byte("data/1")); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("Unwrap after DestroyKey, new process = %v, want ErrKeyNotFound", err)
	}
	if err := l3.DestroyKey(ctx, tidA); err != nil {
		t.Errorf("DestroyKey again = %v, want nil", err)
	}
}

func TestLocalKEKUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	setup := func(t *testing.T) (string, []byte) {
		dir := t.TempDir()
		l := openLocal(t, LocalConfig{Dir: dir})
		if err := l.CreateKey(ctx, tidA); err != nil {
			t.Fatal(err)
		}
		w, err := l.Wrap(ctx, tidA, NewKey(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return dir, w
	}
	t.Run("Deleted", func(t *testing.T) {
		t.Parallel()
		dir, w := setup(t)
		os.Remove(filepath.Join(dir, kekFile))
		l := openLocal(t, LocalConfig{Dir: dir})
		if l.Err() == nil {
			t.Fatal("Err() = nil with kek.key deleted and a tenant key file present")
		}
		if _, err := os.Stat(filepath.Join(dir, kekFile)); err == nil {
			t.Fatal("a new kek.key was created while wrapped keys exist")
		}
		if _, err := l.Unwrap(ctx, tidA, w, nil); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Unwrap = %v, want ErrUnavailable", err)
		}
		if err := l.CreateKey(ctx, tidB); !errors.Is(err, ErrUnavailable) {
			t.Errorf("CreateKey = %v, want ErrUnavailable", err)
		}
	})
	t.Run("DeletedWithKeysInDatabase", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		l := openLocal(t, LocalConfig{Dir: dir, WrappedKeysExist: true})
		if l.Err() == nil {
			t.Fatal("Err() = nil with no kek.key and wrapped keys in the database")
		}
		if _, err := os.Stat(filepath.Join(dir, kekFile)); err == nil {
			t.Fatal("a new kek.key was created while wrapped keys exist")
		}
	})
	t.Run("Garbled", func(t *testing.T) {
		t.Parallel()
		dir, w := setup(t)
		os.WriteFile(filepath.Join(dir, kekFile), []byte("1 not-base64!!\n"), 0o600)
		l := openLocal(t, LocalConfig{Dir: dir})
		if l.Err() == nil {
			t.Fatal("Err() = nil with a garbled kek.key")
		}
		if _, err := l.Unwrap(ctx, tidA, w, nil); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Unwrap = %v, want ErrUnavailable", err)
		}
	})
	t.Run("Replaced", func(t *testing.T) {
		t.Parallel()
		dir, w := setup(t)
		other := base64.StdEncoding.EncodeToString(NewKey())
		os.WriteFile(filepath.Join(dir, kekFile), []byte("1 "+other+"\n"), 0o600)
		l := openLocal(t, LocalConfig{Dir: dir})
		if _, err := l.Unwrap(ctx, tidA, w, nil); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Unwrap under another KEK = %v, want ErrUnavailable", err)
		}
	})
	t.Run("Env", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		k1 := base64.StdEncoding.EncodeToString(NewKey())
		l := openLocal(t, LocalConfig{Dir: dir, EnvKEK: k1})
		if l.Err() != nil {
			t.Fatalf("Err() = %v", l.Err())
		}
		if _, err := os.Stat(filepath.Join(dir, kekFile)); err == nil {
			t.Error("kek.key was created although BULKHEAD_KEK is set")
		}
		if err := l.CreateKey(ctx, tidA); err != nil {
			t.Fatal(err)
		}
		w, _ := l.Wrap(ctx, tidA, NewKey(), nil)
		// Appending a key and rotating re-wraps under it; the old key
		// alone no longer opens the tenant's file.
		k2 := base64.StdEncoding.EncodeToString(NewKey())
		l2 := openLocal(t, LocalConfig{Dir: dir, EnvKEK: k1 + "," + k2})
		if err := l2.RotateKEK(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := openLocal(t, LocalConfig{Dir: dir, EnvKEK: k1 + "," + k2}).Unwrap(ctx, tidA, w, nil); err != nil {
			t.Errorf("Unwrap after rotation = %v", err)
		}
		if _, err := openLocal(t, LocalConfig{Dir: dir, EnvKEK: k1}).Unwrap(ctx, tidA, w, nil); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Unwrap with the old KEK only = %v, want ErrUnavailable", err)
		}
		if l := openLocal(t, LocalConfig{Dir: dir, EnvKEK: "short"}); l.Err() == nil {
			t.Error("Err() = nil for a BULKHEAD_KEK that is not 32 bytes")
		}
	})
}
