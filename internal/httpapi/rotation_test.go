package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

type keyStatus struct {
	KMS           string `json:"kms"`
	ActiveVersion int    `json:"active_version"`
	Versions      []struct {
		Version int    `json:"version"`
		State   string `json:"state"`
	} `json:"versions"`
	Rotation struct {
		State       string `json:"state"`
		Reencrypted int64  `json:"reencrypted"`
	} `json:"rotation"`
}

func (k keyStatus) states() string {
	var s []string
	for _, v := range k.Versions {
		s = append(s, fmt.Sprintf("%d:%s", v.Version, v.State))
	}
	return strings.Join(s, ",")
}

// sealedVersionsOf returns the data key versions sealing a stored
// record's values.
func sealedVersionsOf(t *testing.T, doc map[string]any) []int {
	t.Helper()
	var vs []int
	for _, s := range doc["$enc"].(map[string]any) {
		b, err := base64.StdEncoding.DecodeString(s.(string))
		if err != nil || len(b) < 5 {
			t.Fatalf("sealed value %q", s)
		}
		vs = append(vs, int(binary.BigEndian.Uint32(b[1:5])))
	}
	return vs
}

func (b *testBundle) waitBackground() {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.core.WaitBackground(ctx); err != nil {
		b.t.Fatalf("background work did not finish: %v", err)
	}
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	key := b.apiKey("acme", tenant.Admin)
	member := b.apiKey("acme", tenant.Member)
	b.putPeople("acme", key)
	const n = core.ReencryptBatch*2 + 17 // several batches
	ids := make([]string, n)
	for i := range n {
		ids[i] = b.createRecord("acme", key, "people", map[string]any{"name": fmt.Sprint(i), "ssn": fmt.Sprintf("ssn-%04d", i)}).ID
	}
	var st keyStatus
	b.must(200, "GET", tpath("acme", "keys"), key, nil).JSON(t, &st)
	if st.ActiveVersion != 1 || st.states() != "1:active" || st.KMS != "local" || st.Rotation.State != "idle" {
		t.Fatalf("keys before rotation = %+v", st)
	}
	b.must(200, "GET", tpath("acme", "keys"), b.admin, nil) // the operator too
	b.mustProblem(403, problem.CodeForbidden, "GET", tpath("acme", "keys"), member, nil)
	r := b.do("POST", tpath("acme", "keys", "rotate"), key, nil)
	if r.Status != 403 && r.Status != 404 {
		t.Fatalf("a tenant admin rotates: %d %s, want it refused", r.Status, r.Body)
	}

	b.must(202, "POST", tpath("acme", "keys", "rotate"), b.admin, nil).JSON(t, &st)
	if st.ActiveVersion != 2 || !strings.HasPrefix(st.states(), "1:retiring,2:active") && !strings.HasPrefix(st.states(), "1:retired,2:active") {
		t.Fatalf("keys after rotate = %+v", st)
	}
	// Readable throughout: records sealed under either version open.
	for _, i := range []int{0, n / 2, n - 1} {
		var got record
		b.must(200, "GET", tpath("acme", "collections", "people", "records", ids[i]), key, nil).JSON(t, &got)
		if got.Data["ssn"] != fmt.Sprintf("ssn-%04d", i) {
			t.Fatalf("record %d during rotation = %v", i, got.Data)
		}
	}
	fresh := b.createRecord("acme", key, "people", map[string]any{"name": "new", "ssn": "ssn-new"})
	b.waitBackground()

	b.must(200, "GET", tpath("acme", "keys"), key, nil).JSON(t, &st)
	if st.ActiveVersion != 2 || st.states() != "1:retired,2:active" || st.Rotation.State != "idle" {
		t.Fatalf("keys after re-encryption = %+v", st)
	}
	if vs := sealedVersionsOf(t, b.rawRecord(fresh.ID)); len(vs) != 1 || vs[0] != 2 {
		t.Errorf("a write after the rotation is sealed under %v, want [2]", vs)
	}
	for i, id := range ids {
		for _, v := range sealedVersionsOf(t, b.rawRecord(id)) {
			if v != 2 {
				t.Fatalf("record %d is still sealed under version %d", i, v)
			}
		}
	}
	// The blind index did not change: equality filters still find.
	want := fmt.Sprintf("ssn-%04d", n/2)
	page := b.listRecords("acme", key, "people", url.Values{"filter": {`ssn = "` + want + `"`}})
	if len(page.Items) != 1 || page.Items[0].ID != ids[n/2] || page.Items[0].Data["ssn"] != want {
		t.Fatalf("filter after rotation = %+v", page.Items)
	}
	var actions []string
	for _, e := range b.auditLog("acme", key) {
		actions = append(actions, e.Action+" "+e.Resource)
	}
	joined := strings.Join(actions, "; ")
	if !strings.Contains(joined, "keys.rotate data_key:2") || !strings.Contains(joined, "keys.retire data_key:[1]") {
		t.Errorf("tenant audit = %s, want the rotation and the retirement", joined)
	}

	// A second rotation works the same way.
	b.must(202, "POST", tpath("acme", "keys", "rotate"), b.admin, nil)
	b.waitBackground()
	b.must(200, "GET", tpath("acme", "keys"), key, nil).JSON(t, &st)
	if st.states() != "1:retired,2:retired,3:active" {
		t.Fatalf("keys after a second rotation = %+v", st)
	}
	var got record
	b.must(200, "GET", tpath("acme", "collections", "people", "records", ids[7]), key, nil).JSON(t, &got)
	if got.Data["ssn"] != "ssn-0007" {
		t.Fatalf("record after two rotations = %v", got.Data)
	}
}

// TestKeyRotationResumes leaves a rotation where a node that stopped would
// leave it — a new active version, the old one retiring, every record
// still sealed under the old one — and starts a node, which resumes it.
func TestKeyRotationResumes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := setupIn(t, dir)
	tid := b.tenant("acme", tenant.Pooled)
	key := b.apiKey("acme", tenant.Admin)
	b.putPeople("acme", key)
	var ids []string
	for i := range 30 {
		ids = append(ids, b.createRecord("acme", key, "people", map[string]any{"name": "n", "ssn": "ssn" + strconv.Itoa(i)}).ID)
	}
	// What RotateKeys commits before its re-encryption starts.
	kms, err := keyring.OpenLocal(keyring.LocalConfig{Dir: filepath.Join(dir, "keys"), WrappedKeysExist: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	wrapped, err := kms.Wrap(ctx, tid, keyring.NewKey(), []byte("bulkhead data key\x00"+string(tid)+"\x00data\x002"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	err = b.store.InPlatform(ctx, func(tx store.PlatformTx) error {
		if err := tx.UpdateDataKey(ctx, &store.DataKey{Tenant: tid, Purpose: store.PurposeData, Version: 1, State: store.KeyRetiring,
			Wrapped: mustKey(t, b, tid, 1), UpdatedAt: now}); err != nil {
			return err
		}
		return tx.CreateDataKey(ctx, &store.DataKey{Tenant: tid, Purpose: store.PurposeData, Version: 2, State: store.KeyActive,
			Wrapped: wrapped, CreatedAt: now, UpdatedAt: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	b.srv.Close()
	b.core.Close()
	b.store.Close()

	b = setupIn(t, dir)
	var st keyStatus
	b.must(200, "GET", tpath("acme", "keys"), key, nil).JSON(t, &st)
	if st.Rotation.State != "pending" || st.states() != "1:retiring,2:active" {
		t.Fatalf("keys of the stopped rotation = %+v", st)
	}
	if err := b.core.ResumeRotations(ctx); err != nil {
		t.Fatal(err)
	}
	b.waitBackground()
	b.must(200, "GET", tpath("acme", "keys"), key, nil).JSON(t, &st)
	if st.states() != "1:retired,2:active" || st.Rotation.State != "idle" {
		t.Fatalf("keys after resuming = %+v", st)
	}
	for i, id := range ids {
		if vs := sealedVersionsOf(t, b.rawRecord(id)); len(vs) != 1 || vs[0] != 2 {
			t.Fatalf("record %d sealed under %v after resuming, want [2]", i, vs)
		}
		var got record
		b.must(200, "GET", tpath("acme", "collections", "people", "records", id), key, nil).JSON(t, &got)
		if got.Data["ssn"] != "ssn"+strconv.Itoa(i) {
			t.Fatalf("record %d = %v", i, got.Data)
		}
	}
}

func mustKey(t *testing.T, b *testBundle, tid tenant.ID, version int) []byte {
	t.Helper()
	var w []byte
	err := b.store.ReadPlatform(context.Background(), func(tx store.PlatformTx) error {
		ks, err := tx.ListDataKeys(context.Background(), tid)
		for _, k := range ks {
			if k.Purpose == store.PurposeData && k.Version == version {
				w = k.Wrapped
			}
		}
		return err
	})
	if err != nil || w == nil {
		t.Fatalf("data key %d of %s: %v", version, tid, err)
	}
	return w
}

// TestRotateKEK re-wraps every tenant key and data key under a new KEK
// version without rewriting a record; everything opens afterwards, in a
// new process too, and the platform chain records it.
func TestRotateKEK(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := setupIn(t, dir)
	tid := b.tenant("acme", tenant.Pooled)
	b.tenant("globex", tenant.Silo)
	key, gkey := b.apiKey("acme", tenant.Admin), b.apiKey("globex", tenant.Admin)
	b.putPeople("acme", key)
	b.putPeople("globex", gkey)
	rec := b.createRecord("acme", key, "people", map[string]any{"name": "a", "ssn": "acme-ssn"})
	grec := b.createRecord("globex", gkey, "people", map[string]any{"name": "g", "ssn": "globex-ssn"})
	before := b.rawRecord(rec.ID)
	wrappedBefore := mustKey(t, b, tid, 1)

	ctl, err := b.core.Control(core.Operator(), "test")
	if err != nil {
		t.Fatal(err)
	}
	n, err := ctl.RotateKEK(context.Background())
	if err != nil || n != 4 { // a data and an index key per tenant
		t.Fatalf("RotateKEK = %d, %v; want 4 re-wrapped keys", n, err)
	}
	kek, _ := os.ReadFile(filepath.Join(dir, "keys", "kek.key"))
	if !strings.HasPrefix(string(kek), "1 ") || !strings.Contains(string(kek), "\n2 ") {
		t.Errorf("kek.key after rotation holds %d lines, want versions 1 and 2", strings.Count(string(kek), "\n"))
	}
	tkey, _ := os.ReadFile(filepath.Join(dir, "keys", "tenant-keys", string(tid)+".key"))
	if !strings.HasPrefix(string(tkey), "v2 ") {
		t.Errorf("tenant key file after rotation = %.3s…, want it wrapped by KEK v2", tkey)
	}
	if string(mustKey(t, b, tid, 1)) == string(wrappedBefore) {
		t.Error("the wrapped data key did not change")
	}
	if after := b.rawRecord(rec.ID); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Error("rotate-kek rewrote a record")
	}
	var audit struct{ Items []auditEntry }
	b.must(200, "GET", "/v1/audit?limit=1000", b.admin, nil).JSON(t, &audit)
	if last := audit.Items[len(audit.Items)-1]; last.Action != "keys.rotate_kek" {
		t.Errorf("last platform audit entry = %+v, want keys.rotate_kek", last)
	}
	b.srv.Close()
	b.core.Close()
	b.store.Close()
	b = setupIn(t, dir)
	for _, tc := range []struct{ slug, key, id, want string }{{"acme", key, rec.ID, "acme-ssn"}, {"globex", gkey, grec.ID, "globex-ssn"}} {
		var got record
		b.must(200, "GET", tpath(tc.slug, "collections", "people", "records", tc.id), tc.key, nil).JSON(t, &got)
		if got.Data["ssn"] != tc.want {
			t.Fatalf("%s after rotate-kek and a restart = %v", tc.slug, got.Data)
		}
	}
}
