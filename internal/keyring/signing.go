package keyring

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Token signing keys are versioned. Version 1 is token-signing.key, the
// file of the versions before rotation existed, so an existing deployment
// keeps its key. Each rotation writes token-signing.vN.key with the next
// version N: the seed in hex on the first line and, on the second,
// "current-since <RFC 3339 time>", when it became the signing key. The
// highest version signs. An older key verifies until every token it can
// have signed has expired — keep after its successor became current — and
// is then left out of the set and deleted by the next rotation.
const (
	legacySigningFile = "token-signing.key"
	signingPrefix     = "token-signing.v"
	signingSuffix     = ".key"
	sincePrefix       = "current-since "
)

// SigningKey is one version of the token signing key.
type SigningKey struct {
	// Version numbers the key: 1 for token-signing.key, then one more for
	// each rotation.
	Version int
	// Key is the Ed25519 private key.
	Key ed25519.PrivateKey
	// Since is when the key became the signing key; zero for version 1.
	Since time.Time
}

// Public returns the key's public half.
func (k SigningKey) Public() ed25519.PublicKey { return k.Key.Public().(ed25519.PublicKey) }

// SigningKeys are the token signing keys of a key directory at one time:
// the key that signs and the previous keys that still verify.
type SigningKeys struct {
	// Current signs new tokens: the highest version.
	Current SigningKey
	// Previous are the older keys whose tokens may still be valid, newest
	// first.
	Previous []SigningKey
}

// LoadSigningKeys reads the token signing keys of dir as of now: the
// current one, and the previous ones whose successor became current less
// than keep before now. keep must cover the longest lifetime an access
// token may claim plus the time nodes take to pick up a rotation. It
// returns an error if a key file is unreadable or malformed, or if dir has
// no signing key at all (Load creates version 1).
func LoadSigningKeys(dir string, now time.Time, keep time.Duration) (*SigningKeys, error) {
	all, err := readSigningKeys(dir)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("no token signing key in %s", dir)
	}
	ks := &SigningKeys{Current: all[len(all)-1]}
	for i := len(all) - 2; i >= 0; i-- {
		if !retired(all[i+1], now, keep) {
			ks.Previous = append(ks.Previous, all[i])
		}
	}
	return ks, nil
}

// retired reports whether the key before successor no longer verifies.
func retired(successor SigningKey, now time.Time, keep time.Duration) bool {
	return !successor.Since.IsZero() && now.Sub(successor.Since) >= keep
}

// RotateSigningKey makes a new token signing key current in dir at now and
// deletes the files of keys retired as of now (see LoadSigningKeys for
// keep). It returns the new key and the versions it deleted. Two
// rotations at once cannot take the same version: the second fails and
// may be retried.
func RotateSigningKey(dir string, now time.Time, keep time.Duration) (SigningKey, []int, error) {
	all, err := readSigningKeys(dir)
	if err != nil {
		return SigningKey{}, nil, err
	}
	next := 1
	if len(all) > 0 {
		next = all[len(all)-1].Version + 1
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return SigningKey{}, nil, err
	}
	k := SigningKey{Version: next, Key: ed25519.NewKeyFromSeed(seed), Since: now.UTC().Truncate(time.Microsecond)}
	content := hex.EncodeToString(seed) + "\n" + sincePrefix + k.Since.Format(time.RFC3339Nano) + "\n"
	if err := writeNew(filepath.Join(dir, signingFile(next)), content); err != nil {
		return SigningKey{}, nil, err
	}
	all = append(all, k)
	var dropped []int
	for i := 0; i+1 < len(all); i++ {
		if retired(all[i+1], now, keep) {
			if err := os.Remove(filepath.Join(dir, signingFile(all[i].Version))); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return k, dropped, fmt.Errorf("delete retired signing key %d: %w", all[i].Version, err)
			}
			dropped = append(dropped, all[i].Version)
		}
	}
	return k, dropped, nil
}

// signingFile is the name of version v's file.
func signingFile(v int) string {
	if v == 1 {
		return legacySigningFile
	}
	return signingPrefix + strconv.Itoa(v) + signingSuffix
}

// readSigningKeys returns every signing key of dir in version order.
func readSigningKeys(dir string) ([]SigningKey, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read key directory: %w", err)
	}
	var keys []SigningKey
	for _, e := range entries {
		name := e.Name()
		var k SigningKey
		switch {
		case name == legacySigningFile:
			k.Version = 1
			if k.Key, err = loadEd25519(filepath.Join(dir, name)); err != nil {
				return nil, err
			}
		case strings.HasPrefix(name, signingPrefix) && strings.HasSuffix(name, signingSuffix):
			v, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, signingPrefix), signingSuffix))
			if err != nil || v < 2 || signingFile(v) != name {
				continue // not ours (an editor's backup, say)
			}
			if k, err = readVersioned(filepath.Join(dir, name), v); err != nil {
				return nil, err
			}
		default:
			continue
		}
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].Version < keys[j].Version })
	return keys, nil
}

// readVersioned parses the file of version v.
func readVersioned(path string, v int) (SigningKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return SigningKey{}, fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\r\n"), "\n")
	seed := make([]byte, ed25519.SeedSize)
	if len(lines) != 2 {
		return SigningKey{}, fmt.Errorf("%s: want 2 lines, got %d", filepath.Base(path), len(lines))
	}
	if n, err := hex.Decode(seed, []byte(strings.TrimSpace(lines[0]))); err != nil || n != len(seed) {
		return SigningKey{}, fmt.Errorf("%s: the first line is not %d hex-encoded bytes", filepath.Base(path), len(seed))
	}
	s, ok := strings.CutPrefix(strings.TrimSpace(lines[1]), sincePrefix)
	since, err := time.Parse(time.RFC3339Nano, s)
	if !ok || err != nil {
		return SigningKey{}, fmt.Errorf("%s: the second line is not %q and a RFC 3339 time", filepath.Base(path), sincePrefix)
	}
	return SigningKey{Version: v, Key: ed25519.NewKeyFromSeed(seed), Since: since.UTC()}, nil
}

// writeNew creates path with content and mode 0600, whole or not at all:
// it writes and syncs a temporary file, then links it to path, which fails
// if path exists.
func writeNew(path, content string) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("create %s: %w", filepath.Base(path), err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("create %s: %w", filepath.Base(path), err)
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", filepath.Base(path), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := os.Link(tmp, path); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Base(path), err)
	}
	return nil
}
