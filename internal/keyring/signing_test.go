package keyring

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func versions(ks []SigningKey) []int {
	var v []int
	for _, k := range ks {
		v = append(v, k.Version)
	}
	return v
}

func TestSigningKeyRotation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kr, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	const keep = 17 * time.Minute
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

	// Before any rotation, token-signing.key is version 1 and current.
	ks, err := LoadSigningKeys(dir, t0, keep)
	if err != nil {
		t.Fatal(err)
	}
	if ks.Current.Version != 1 || !bytes.Equal(ks.Current.Key, kr.TokenKey) || len(ks.Previous) != 0 {
		t.Fatalf("before rotation: current %d, previous %v; want 1 (token-signing.key), none", ks.Current.Version, versions(ks.Previous))
	}

	k2, dropped, err := RotateSigningKey(dir, t0, keep)
	if err != nil || k2.Version != 2 || len(dropped) != 0 {
		t.Fatalf("RotateSigningKey = %d, %v, %v; want version 2, nothing dropped", k2.Version, dropped, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "token-signing.v2.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token-signing.v2.key: %v, %v; want mode 0600", fi, err)
	}
	// Load (a restarting node) signs with the new key.
	if kr2, err := Load(dir); err != nil || !bytes.Equal(kr2.TokenKey, k2.Key) {
		t.Fatalf("Load after rotation: %v; TokenKey is not version 2", err)
	}
	ks, _ = LoadSigningKeys(dir, t0.Add(keep-time.Second), keep)
	if ks.Current.Version != 2 || !slices.Equal(versions(ks.Previous), []int{1}) {
		t.Errorf("within keep: current %d, previous %v; want 2, [1]", ks.Current.Version, versions(ks.Previous))
	}
	k3, dropped, err := RotateSigningKey(dir, t0.Add(time.Minute), keep)
	if err != nil || k3.Version != 3 || len(dropped) != 0 {
		t.Fatalf("second rotation = %d, %v, %v", k3.Version, dropped, err)
	}
	ks, _ = LoadSigningKeys(dir, t0.Add(2*time.Minute), keep)
	if ks.Current.Version != 3 || !slices.Equal(versions(ks.Previous), []int{2, 1}) {
		t.Errorf("after two rotations: current %d, previous %v; want 3, [2 1]", ks.Current.Version, versions(ks.Previous))
	}
	// keep after version 2 became current, version 1 stops verifying.
	ks, _ = LoadSigningKeys(dir, t0.Add(keep), keep)
	if !slices.Equal(versions(ks.Previous), []int{2}) {
		t.Errorf("keep after the first rotation: previous %v, want [2]", versions(ks.Previous))
	}
	ks, _ = LoadSigningKeys(dir, t0.Add(time.Minute+keep), keep)
	if len(ks.Previous) != 0 {
		t.Errorf("keep after the second rotation: previous %v, want none", versions(ks.Previous))
	}
	// The next rotation deletes the files of retired keys, version 1's
	// included, and Load does not make a new version 1.
	k4, dropped, err := RotateSigningKey(dir, t0.Add(time.Hour), keep)
	if err != nil || k4.Version != 4 || !slices.Equal(dropped, []int{1, 2}) {
		t.Fatalf("third rotation = %d, %v, %v; want 4, [1 2]", k4.Version, dropped, err)
	}
	for _, f := range []string{"token-signing.key", "token-signing.v2.key"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Errorf("%s after it was retired: %v, want deleted", f, err)
		}
	}
	if kr, err := Load(dir); err != nil || !bytes.Equal(kr.TokenKey, k4.Key) {
		t.Errorf("Load after retirement: %v; TokenKey is not version 4", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "token-signing.key")); !os.IsNotExist(err) {
		t.Errorf("Load re-created token-signing.key: %v", err)
	}
	ks, _ = LoadSigningKeys(dir, t0.Add(time.Hour), keep)
	if ks.Current.Version != 4 || !slices.Equal(versions(ks.Previous), []int{3}) {
		t.Errorf("after the third rotation: current %d, previous %v; want 4, [3]", ks.Current.Version, versions(ks.Previous))
	}
}

// A malformed key file is an error, so that a node keeps the keys it has
// rather than sign with a key it half read.
func TestSigningKeyMalformed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := Load(dir); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"ShortSeed": "abcd\ncurrent-since 2026-12-05T10:00:00Z\n",
		"NoSince":   "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
		"BadSince":  "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\ncurrent-since yesterday\n",
	} {
		path := filepath.Join(dir, "token-signing.v2.key")
		os.WriteFile(path, []byte(content), 0o600)
		if _, err := LoadSigningKeys(dir, time.Now(), time.Hour); err == nil {
			t.Errorf("%s: LoadSigningKeys succeeded", name)
		}
		os.Remove(path)
	}
	// Files that are not ours are ignored.
	os.WriteFile(filepath.Join(dir, "token-signing.v2.key~"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(dir, "token-signing.v02.key"), []byte("x"), 0o600)
	if ks, err := LoadSigningKeys(dir, time.Now(), time.Hour); err != nil || ks.Current.Version != 1 {
		t.Errorf("with foreign files: %v, %v", ks, err)
	}
}
