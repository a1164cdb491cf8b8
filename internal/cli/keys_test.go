package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type keysOut struct {
	KMS           string `json:"kms"`
	ActiveVersion int    `json:"active_version"`
	Versions      []struct {
		Version int
		State   string
	} `json:"versions"`
	Rotation struct{ State string } `json:"rotation"`
}

func TestKeysRotate(t *testing.T) {
	t.Setenv("BULKHEAD_ADMIN_TOKEN", "")
	t.Setenv("BULKHEAD_KEK", "")
	t.Setenv("BULKHEAD_KMS", "")
	dir := dataDir(t)
	mustRun(t, dir, "tenant", "create", "--slug", "acme")
	var st keysOut
	json.Unmarshal([]byte(mustRun(t, dir, "keys", "status", "--tenant", "acme")), &st)
	if st.KMS != "local" || st.ActiveVersion != 0 || len(st.Versions) != 0 {
		t.Fatalf("keys status before any key = %+v", st)
	}
	// The first rotation makes the tenant's keys, then rotates them.
	json.Unmarshal([]byte(mustRun(t, dir, "keys", "rotate", "--tenant", "acme")), &st)
	if st.ActiveVersion != 2 || len(st.Versions) != 2 || st.Versions[0].State != "retired" || st.Rotation.State != "idle" {
		t.Fatalf("keys rotate printed %+v, want version 2 active and 1 retired", st)
	}
	tenantKeys, _ := filepath.Glob(filepath.Join(dir, "keys", "tenant-keys", "*.key"))
	if len(tenantKeys) != 1 {
		t.Fatalf("tenant key files = %v, want one", tenantKeys)
	}
	var kek struct {
		Rewrapped int `json:"rewrapped_data_keys"`
	}
	json.Unmarshal([]byte(mustRun(t, dir, "keys", "rotate-kek")), &kek)
	if kek.Rewrapped != 3 { // two data key versions and the index key
		t.Errorf("keys rotate-kek re-wrapped %d keys, want 3", kek.Rewrapped)
	}
	if b, _ := os.ReadFile(tenantKeys[0]); !strings.HasPrefix(string(b), "v2 ") {
		t.Errorf("the tenant key file is not wrapped by KEK version 2 after rotate-kek")
	}
	// Still usable afterwards: another rotation unwraps everything.
	json.Unmarshal([]byte(mustRun(t, dir, "keys", "rotate", "--tenant", "acme")), &st)
	if st.ActiveVersion != 3 {
		t.Errorf("rotation after rotate-kek = %+v", st)
	}

	for _, args := range [][]string{
		{"keys", "rotate"},                                       // no tenant
		{"keys", "rotate", "--tenant", "nobody"},                 // unknown
		{"--kms", "vault", "keys", "status", "--tenant", "acme"}, // no Vault address or token
		{"--kms", "hsm", "keys", "rotate-kek"},                   // no such KMS
	} {
		if code, _, errOut := run(t, dir, args...); code == 0 || errOut == "" {
			t.Errorf("bulkhead %s = exit %d, stderr %q; want a failure explained", strings.Join(args, " "), code, errOut)
		}
	}

	// A garbled KEK: commands that need keys fail, and say so.
	os.WriteFile(filepath.Join(dir, "keys", "kek.key"), []byte("garbage\n"), 0o600)
	if code, _, errOut := run(t, dir, "keys", "rotate", "--tenant", "acme"); code == 0 || !strings.Contains(errOut, "unavailable") {
		t.Errorf("keys rotate with a garbled KEK = exit %d, stderr %q", code, errOut)
	}
}
