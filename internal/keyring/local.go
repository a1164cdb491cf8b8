package keyring

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// LocalConfig configures a Local KMS.
type LocalConfig struct {
	// Dir is the key directory (the data directory's keys). The platform
	// KEK file (kek.key) and the tenant key files (tenant-keys/<id>.key)
	// live there, with mode 0600. Required.
	Dir string
	// EnvKEK, when not empty, is the platform KEK instead of kek.key: the
	// base64 of 32 bytes, or several such keys separated by commas, oldest
	// first (their versions count from 1; the last seals). To rotate it,
	// append a new key and run rotate-kek. (BULKHEAD_KEK.)
	EnvKEK string
	// WrappedKeysExist says that wrapped data keys already exist (the
	// database holds some): then a missing kek.key is not created afresh,
	// which would orphan them, and the KMS is unavailable instead.
	WrappedKeysExist bool
}

// Local is a KMS whose per-tenant key-encryption keys are files in the key
// directory, outside the database, each sealed (AES-256-GCM) under the
// platform KEK. The KEK comes from the environment or from kek.key, which
// is created on first start — but never when wrapped keys already exist,
// since a new KEK could open none of them: the KMS is then unavailable
// (every operation fails with ErrUnavailable) until the KEK is restored.
type Local struct {
	dir     string
	fromEnv bool
	err     error // why the KEK is unavailable, or nil

	mu      sync.Mutex
	kek     map[int][]byte // version -> key
	current int
}

var _ KMS = (*Local)(nil)

const (
	kekFile      = "kek.key"
	tenantKeyDir = "tenant-keys"
	kekAADPrefix = "bulkhead tenant-kek\x00"
	dekAADPrefix = "bulkhead dek\x00"
	wrapFormatV1 = 1
)

// OpenLocal returns a Local KMS. It fails only if cfg is invalid or the key
// directory cannot be created; a missing or corrupt KEK makes a KMS whose
// Err says why and whose operations return ErrUnavailable, so that
// everything that needs no key keeps running.
func OpenLocal(cfg LocalConfig) (*Local, error) {
	if cfg.Dir == "" {
		return nil, errors.New("keyring: LocalConfig.Dir is required")
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, tenantKeyDir), 0o700); err != nil {
		return nil, fmt.Errorf("keyring: create key directory: %w", err)
	}
	l := &Local{dir: cfg.Dir, fromEnv: cfg.EnvKEK != ""}
	if l.fromEnv {
		l.kek, l.current, l.err = parseKEK(strings.ReplaceAll(cfg.EnvKEK, ",", "\n"), true)
		if l.err != nil {
			l.err = fmt.Errorf("BULKHEAD_KEK: %w", l.err)
		}
		return l, nil
	}
	path := filepath.Join(cfg.Dir, kekFile)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if n := l.tenantFiles(); n > 0 || cfg.WrappedKeysExist {
			l.err = fmt.Errorf("%s is missing but wrapped keys exist (%d tenant key files): restore it (or set BULKHEAD_KEK); a new KEK would open none of them", kekFile, n)
			return l, nil
		}
		key := NewKey()
		if err := writeFileAtomic(path, []byte(formatKEK(map[int][]byte{1: key}))); err != nil {
			return nil, fmt.Errorf("keyring: create %s: %w", kekFile, err)
		}
		l.kek, l.current = map[int][]byte{1: key}, 1
	case err != nil:
		l.err = fmt.Errorf("read %s: %w", kekFile, err)
	default:
		l.kek, l.current, l.err = parseKEK(string(b), false)
		if l.err != nil {
			l.err = fmt.Errorf("%s: %w", kekFile, l.err)
		}
	}
	return l, nil
}

// Err returns why the KMS is unavailable, or nil.
func (l *Local) Err() error { return l.err }

// Name returns "local".
func (l *Local) Name() string { return "local" }

func (l *Local) tenantFiles() int {
	es, _ := os.ReadDir(filepath.Join(l.dir, tenantKeyDir))
	n := 0
	for _, e := range es {
		if strings.HasSuffix(e.Name(), ".key") {
			n++
		}
	}
	return n
}

// parseKEK reads "version base64" lines (a file), or bare base64 lines (the
// environment, numbered from 1).
func parseKEK(s string, bare bool) (map[int][]byte, int, error) {
	keys := map[int][]byte{}
	current := 0
	n := 0
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		n++
		v, enc := n, line
		if !bare {
			vs, rest, ok := strings.Cut(line, " ")
			var err error
			if v, err = strconv.Atoi(vs); !ok || err != nil || v < 1 {
				return nil, 0, errors.New("not a KEK file: each line is a version and a base64 key")
			}
			enc = rest
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
		if err != nil || len(key) != KeySize {
			return nil, 0, fmt.Errorf("version %d is not the base64 of %d bytes", v, KeySize)
		}
		if _, dup := keys[v]; dup {
			return nil, 0, fmt.Errorf("version %d appears twice", v)
		}
		keys[v] = key
		current = max(current, v)
	}
	if current == 0 {
		return nil, 0, errors.New("holds no key")
	}
	return keys, current, nil
}

func formatKEK(keys map[int][]byte) string {
	var b strings.Builder
	for v := 1; len(keys) > 0 && v <= maxKey(keys); v++ {
		if k, ok := keys[v]; ok {
			fmt.Fprintf(&b, "%d %s\n", v, base64.StdEncoding.EncodeToString(k))
		}
	}
	return b.String()
}

func maxKey(m map[int][]byte) int {
	n := 0
	for v := range m {
		n = max(n, v)
	}
	return n
}

func (l *Local) tenantPath(tid tenant.ID) (string, error) {
	if _, ok := tid.Bytes(); !ok {
		return "", fmt.Errorf("keyring: tenant id %q is not canonical", tid)
	}
	return filepath.Join(l.dir, tenantKeyDir, string(tid)+".key"), nil
}

// tenantKey returns tid's unwrapped key, reading its file, or creating it
// when create is set and it does not exist. l.mu is held. The key is read
// at every use, never cached: once its file is destroyed — by this process
// or any other sharing the key directory — it unwraps nothing more.
// (Callers cache the data keys they unwrap, and drop them when told.)
func (l *Local) tenantKey(tid tenant.ID, create bool) ([]byte, error) {
	if l.err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, l.err)
	}
	path, err := l.tenantPath(tid)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if !create {
			return nil, fmt.Errorf("tenant %s: %w", tid, ErrKeyNotFound)
		}
		key := NewKey()
		if err := l.writeTenantKey(tid, path, key); err != nil {
			return nil, err
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: read key of tenant %s: %v", ErrUnavailable, tid, err)
	}
	key, _, err := l.openTenantFile(tid, b)
	return key, err
}

// openTenantFile reads "v<kek version> <base64 sealed key>".
func (l *Local) openTenantFile(tid tenant.ID, b []byte) ([]byte, int, error) {
	vs, enc, ok := strings.Cut(strings.TrimSpace(string(b)), " ")
	v, err := strconv.Atoi(strings.TrimPrefix(vs, "v"))
	sealed, derr := base64.StdEncoding.DecodeString(enc)
	if !ok || err != nil || derr != nil {
		return nil, 0, fmt.Errorf("%w: key file of tenant %s is corrupt", ErrUnavailable, tid)
	}
	kek, ok := l.kek[v]
	if !ok {
		return nil, 0, fmt.Errorf("%w: key of tenant %s is wrapped by KEK version %d, which is not loaded", ErrUnavailable, tid, v)
	}
	key, err := Open(kek, []byte(kekAADPrefix+string(tid)), sealed)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: key of tenant %s does not open under KEK version %d (wrong or corrupt KEK)", ErrUnavailable, tid, v)
	}
	return key, v, nil
}

func (l *Local) writeTenantKey(tid tenant.ID, path string, key []byte) error {
	sealed, err := Seal(l.kek[l.current], []byte(kekAADPrefix+string(tid)), key)
	if err != nil {
		return err
	}
	line := fmt.Sprintf("v%d %s\n", l.current, base64.StdEncoding.EncodeToString(sealed))
	if err := writeFileAtomic(path, []byte(line)); err != nil {
		return fmt.Errorf("%w: write key of tenant %s: %v", ErrUnavailable, tid, err)
	}
	return nil
}

// CreateKey creates tid's key file unless it exists.
func (l *Local) CreateKey(ctx context.Context, tid tenant.ID) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := l.tenantKey(tid, true)
	return err
}

func dekAAD(tid tenant.ID, aad []byte) []byte {
	return append([]byte(dekAADPrefix+string(tid)+"\x00"), aad...)
}

// Wrap seals dek under tid's key.
func (l *Local) Wrap(ctx context.Context, tid tenant.ID, dek, aad []byte) ([]byte, error) {
	l.mu.Lock()
	key, err := l.tenantKey(tid, false)
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	sealed, err := Seal(key, dekAAD(tid, aad), dek)
	if err != nil {
		return nil, err
	}
	return append([]byte{wrapFormatV1}, sealed...), nil
}

// Unwrap opens what Wrap sealed.
func (l *Local) Unwrap(ctx context.Context, tid tenant.ID, wrapped, aad []byte) ([]byte, error) {
	l.mu.Lock()
	key, err := l.tenantKey(tid, false)
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if len(wrapped) < 1 || wrapped[0] != wrapFormatV1 {
		return nil, ErrOpen
	}
	return Open(key, dekAAD(tid, aad), wrapped[1:])
}

// Rewrap unwraps and wraps again. A tenant's local key has one version, so
// this only renews the nonce; RotateKEK re-wraps the tenant key files.
func (l *Local) Rewrap(ctx context.Context, tid tenant.ID, wrapped, aad []byte) ([]byte, error) {
	dek, err := l.Unwrap(ctx, tid, wrapped, aad)
	if err != nil {
		return nil, err
	}
	return l.Wrap(ctx, tid, dek, aad)
}

// RotateKEK adds a new version of the platform KEK (to kek.key; with
// BULKHEAD_KEK the newest key of the list is used instead) and re-wraps
// every tenant key file under it. The old versions stay in kek.key, since
// a copy of a tenant key file wrapped under them may be restored; remove
// them by hand once no copy needs them.
func (l *Local) RotateKEK(ctx context.Context, _ []tenant.ID) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, l.err)
	}
	if !l.fromEnv {
		next := l.current + 1
		keys := make(map[int][]byte, len(l.kek)+1)
		for v, k := range l.kek {
			keys[v] = k
		}
		keys[next] = NewKey()
		if err := writeFileAtomic(filepath.Join(l.dir, kekFile), []byte(formatKEK(keys))); err != nil {
			return fmt.Errorf("keyring: write %s: %w", kekFile, err)
		}
		l.kek, l.current = keys, next
	}
	es, err := os.ReadDir(filepath.Join(l.dir, tenantKeyDir))
	if err != nil {
		return fmt.Errorf("keyring: list tenant keys: %w", err)
	}
	for _, e := range es {
		name, ok := strings.CutSuffix(e.Name(), ".key")
		if !ok {
			continue
		}
		tid := tenant.ID(name)
		path, err := l.tenantPath(tid)
		if err != nil {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("keyring: read key of tenant %s: %w", tid, err)
		}
		key, v, err := l.openTenantFile(tid, b)
		if err != nil {
			return err
		}
		if v == l.current {
			continue
		}
		if err := l.writeTenantKey(tid, path, key); err != nil {
			return err
		}
	}
	return nil
}

// KEKVersion returns the version of the platform KEK that wraps new tenant
// keys, or 0 when the KEK is unavailable.
func (l *Local) KEKVersion() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return 0
	}
	return l.current
}

// DestroyKey removes tid's key file. The file is
// overwritten before it is removed, which on most file systems, though not
// on every SSD or copy-on-write one, also destroys its bytes; what makes
// the data unreadable is that no copy of the key remains anywhere.
func (l *Local) DestroyKey(ctx context.Context, tid tenant.ID) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	path, err := l.tenantPath(tid)
	if err != nil {
		return err
	}
	if f, err := os.OpenFile(path, os.O_WRONLY, 0); err == nil {
		if st, err := f.Stat(); err == nil {
			f.Write(make([]byte, st.Size()))
			f.Sync()
		}
		f.Close()
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("keyring: destroy key of tenant %s: %w", tid, err)
	}
	return syncDir(filepath.Dir(path))
}

// writeFileAtomic writes b to path with mode 0600: to a temporary file in
// the same directory, synced, then renamed over path, and the directory
// synced, so that a crash leaves the old file or the new one, never part.
func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op once renamed
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
