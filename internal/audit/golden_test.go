package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const vectorsFile = "testdata/vectors.json"

// vectors is the layout of testdata/vectors.json: inputs and outputs of the
// v1 encodings, for outside verifiers. Byte strings are lowercase hex.
type vectors struct {
	Comment     string             `json:"comment"`
	Entries     []entryVector      `json:"entries"`
	Checkpoints []checkpointVector `json:"checkpoints"`
}

type entryVector struct {
	Name          string    `json:"name"`
	Tenant        tenant.ID `json:"tenant"`
	Seq           int64     `json:"seq"`
	Time          time.Time `json:"time"`
	TimeUnixMicro int64     `json:"time_unix_micro"`
	Actor         string    `json:"actor"`
	Action        string    `json:"action"`
	Resource      string    `json:"resource"`
	RequestID     string    `json:"request_id"`
	Outcome       string    `json:"outcome"`
	PrevHash      string    `json:"prev_hash"`
	Preimage      string    `json:"preimage"`
	Hash          string    `json:"hash"`
}

type checkpointVector struct {
	Name      string    `json:"name"`
	Seed      string    `json:"ed25519_seed"`
	PublicKey string    `json:"public_key"`
	KeyID     string    `json:"key_id"`
	Tenant    tenant.ID `json:"tenant"`
	Seq       int64     `json:"seq"`
	Hash      string    `json:"hash"`
	Message   string    `json:"message"`
	Signature string    `json:"signature"`
}

// makeVectors computes the vectors from fixed inputs with the package's code.
func makeVectors() *vectors {
	v := &vectors{Comment: "bulkhead audit v1 test vectors; see package internal/audit's documentation. " +
		"Regenerate with: go test ./internal/audit -run TestGoldenVectors -update"}

	// A chain of three entries of one tenant, then entries chosen to
	// exercise the edges of the encoding.
	chain := []*store.AuditEntry{
		{Seq: 1, Time: time.Date(2026, 11, 26, 10, 0, 0, 123456000, time.UTC), Actor: "operator",
			Action: "tenant.create", Resource: "tenant:" + string(tenantA), RequestID: "req-0001", Outcome: Success},
		{Seq: 2, Time: time.Date(2026, 11, 26, 10, 0, 1, 0, time.UTC), Actor: "user:0192f0a4-0000-7000-8000-000000000001",
			Action: "record.create", Resource: "record:notes/0192f0a4-0000-7000-8000-0000000000aa", RequestID: "req-0002", Outcome: Success},
		{Seq: 3, Time: time.Date(2026, 11, 26, 10, 0, 2, 999999000, time.UTC), Actor: "apikey:k_123",
			Action: "record.delete", Resource: "record:notes/0192f0a4-0000-7000-8000-0000000000aa", RequestID: "", Outcome: Denied},
	}
	names := []string{"chain entry 1 (genesis prev_hash)", "chain entry 2", "chain entry 3 (empty request_id)"}
	prev := genesis
	for i, e := range chain {
		e.PrevHash = prev
		e.Hash = Hash(TenantChain(tenantA), e)
		prev = e.Hash
		v.Entries = append(v.Entries, newEntryVector(names[i], tenantA, e))
	}
	edges := []struct {
		name string
		tid  tenant.ID
		e    *store.AuditEntry
	}{
		{"entry 1 of another tenant, same fields", tenantB, chain[0]},
		{"all strings empty, zero prev_hash, seq 1, Unix epoch", tenantA,
			&store.AuditEntry{Seq: 1, Time: time.Unix(0, 0).UTC(), PrevHash: genesis}},
		{"time before 1970 (negative microseconds)", tenantA,
			&store.AuditEntry{Seq: 7, Time: time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC), Actor: "a",
				Action: "b", Resource: "c", RequestID: "d", Outcome: "e", PrevHash: bytes.Repeat([]byte{0xff}, 32)}},
		{"non-ASCII UTF-8", tenantA,
			&store.AuditEntry{Seq: 9001, Time: time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC), Actor: "user:Zoë",
				Action: "record.update", Resource: "record:笔记/1", RequestID: "req-✓", Outcome: Success,
				PrevHash: bytes.Repeat([]byte{0x5a}, 32)}},
		{"boundary shift: actor \"ab\", action \"c\"", tenantA,
			&store.AuditEntry{Seq: 5, Time: time.Unix(1700000000, 0).UTC(), Actor: "ab", Action: "c", PrevHash: genesis}},
		{"boundary shift: actor \"a\", action \"bc\"", tenantA,
			&store.AuditEntry{Seq: 5, Time: time.Unix(1700000000, 0).UTC(), Actor: "a", Action: "bc", PrevHash: genesis}},
	}
	for _, x := range edges {
		e := *x.e
		e.Hash = Hash(TenantChain(x.tid), &e)
		v.Entries = append(v.Entries, newEntryVector(x.name, x.tid, &e))
	}

	for _, c := range []struct {
		name string
		seed byte
		tid  tenant.ID
		e    *store.AuditEntry
	}{
		{"checkpoint of chain entry 3", 1, tenantA, chain[2]},
		{"same entry under another key", 2, tenantA, chain[2]},
		{"same seq and hash for another tenant", 1, tenantB, chain[2]},
	} {
		key := testKey(c.seed)
		pub := key.Public().(ed25519.PublicKey)
		msg := CheckpointMessage(TenantChain(c.tid), c.e.Seq, c.e.Hash)
		v.Checkpoints = append(v.Checkpoints, checkpointVector{
			Name: c.name, Seed: hex.EncodeToString(key.Seed()), PublicKey: hex.EncodeToString(pub),
			KeyID: keyring.KeyID(pub), Tenant: c.tid, Seq: c.e.Seq, Hash: hex.EncodeToString(c.e.Hash),
			Message: hex.EncodeToString(msg), Signature: hex.EncodeToString(ed25519.Sign(key, msg)),
		})
	}
	return v
}

func newEntryVector(name string, tid tenant.ID, e *store.AuditEntry) entryVector {
	return entryVector{
		Name: name, Tenant: tid, Seq: e.Seq, Time: e.Time, TimeUnixMicro: e.Time.UnixMicro(),
		Actor: e.Actor, Action: e.Action, Resource: e.Resource, RequestID: e.RequestID, Outcome: e.Outcome,
		PrevHash: hex.EncodeToString(e.PrevHash), Preimage: hex.EncodeToString(entryPreimage(nil, TenantChain(tid), e)),
		Hash: hex.EncodeToString(e.Hash),
	}
}

func TestGoldenVectors(t *testing.T) {
	got := makeVectors()
	if *update {
		b, err := json.MarshalIndent(got, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(vectorsFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorsFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	var want vectors
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("parse %s: %v", vectorsFile, err)
	}
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Errorf("the v1 encodings changed: %s differs (-file +code):\n%s\n"+
			"A change to a v1 encoding breaks every stored chain; make it a new version instead.", vectorsFile, diff)
	}
}

// TestGoldenVectorsFromFile recomputes every vector from the inputs in the
// file alone, as an outside verifier would.
func TestGoldenVectorsFromFile(t *testing.T) {
	b, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Entries) == 0 || len(v.Checkpoints) == 0 {
		t.Fatalf("%s has %d entry and %d checkpoint vectors, want some of each", vectorsFile, len(v.Entries), len(v.Checkpoints))
	}
	for _, x := range v.Entries {
		if x.Time.UnixMicro() != x.TimeUnixMicro {
			t.Errorf("%s: time %v is %d µs, file says %d", x.Name, x.Time, x.Time.UnixMicro(), x.TimeUnixMicro)
		}
		e := &store.AuditEntry{Seq: x.Seq, Time: x.Time, Actor: x.Actor, Action: x.Action, Resource: x.Resource,
			RequestID: x.RequestID, Outcome: x.Outcome, PrevHash: mustHex(t, x.PrevHash)}
		if got := hex.EncodeToString(entryPreimage(nil, TenantChain(x.Tenant), e)); got != x.Preimage {
			t.Errorf("%s: preimage = %s, want %s", x.Name, got, x.Preimage)
		}
		if got := hex.EncodeToString(Hash(TenantChain(x.Tenant), e)); got != x.Hash {
			t.Errorf("%s: Hash = %s, want %s", x.Name, got, x.Hash)
		}
	}
	for _, x := range v.Checkpoints {
		pub := ed25519.NewKeyFromSeed(mustHex(t, x.Seed)).Public().(ed25519.PublicKey)
		if got := hex.EncodeToString(pub); got != x.PublicKey {
			t.Errorf("%s: public key = %s, want %s", x.Name, got, x.PublicKey)
		}
		if got := keyring.KeyID(pub); got != x.KeyID {
			t.Errorf("%s: KeyID = %s, want %s", x.Name, got, x.KeyID)
		}
		msg := CheckpointMessage(TenantChain(x.Tenant), x.Seq, mustHex(t, x.Hash))
		if got := hex.EncodeToString(msg); got != x.Message {
			t.Errorf("%s: CheckpointMessage = %s, want %s", x.Name, got, x.Message)
		}
		if !ed25519.Verify(pub, msg, mustHex(t, x.Signature)) {
			t.Errorf("%s: signature does not verify", x.Name)
		}
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return b
}
