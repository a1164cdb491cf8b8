package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

const (
	tenantA tenant.ID = "0192f0a4-6c1e-7b3a-9d2f-4e8a1c5b7d90"
	tenantB tenant.ID = "0192f0a4-6c1e-7b3a-9d2f-4e8a1c5b7d91"
)

// testKey returns a deterministic Ed25519 key; different n give different keys.
func testKey(n byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{n}, ed25519.SeedSize))
}

var testEpoch = time.Date(2026, 11, 26, 10, 0, 0, 123456789, time.UTC)

// testClock returns a NowFunc that starts at testEpoch and advances 1.5ms per
// call, with sub-microsecond digits that Append must drop.
func testClock() func() time.Time {
	t := testEpoch
	return func() time.Time {
		t = t.Add(1500 * time.Microsecond)
		return t
	}
}

// testEvent returns a distinct event for i.
func testEvent(i int) Event {
	return Event{
		Time:      testEpoch.Add(time.Duration(i) * time.Millisecond),
		Actor:     fmt.Sprintf("user:%04d", i%7),
		Action:    "record.update",
		Resource:  fmt.Sprintf("record:notes/%06d", i),
		RequestID: fmt.Sprintf("req-%08x", i),
		Outcome:   Success,
	}
}

// appendN appends n test events to tx.
func appendN(t testing.TB, l *Log, tx store.Tx, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		if _, err := l.Append(ctx, tx, TenantChain(tx.Tenant()), testEvent(i)); err != nil {
			t.Fatalf("Append(%d): %v", i, err)
		}
	}
}

func TestAppend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := New(Config{SigningKey: testKey(1), NowFunc: testClock()})
	tx := newFakeAuditTx(tenantA)

	events := []Event{
		testEvent(0),
		{Time: time.Date(2026, 11, 26, 12, 0, 0, 999999999, time.FixedZone("CET", 3600)), Actor: "operator",
			Action: "tenant.suspend", Resource: "tenant:x", Outcome: Denied},
		{Actor: "user:1"}, // zero Time: NowFunc
	}
	wantTimes := []time.Time{
		time.Date(2026, 11, 26, 10, 0, 0, 123456000, time.UTC),
		time.Date(2026, 11, 26, 11, 0, 0, 999999000, time.UTC),
		time.Date(2026, 11, 26, 10, 0, 0, 124956000, time.UTC), // testEpoch + 1.5ms, truncated
	}
	prev := make([]byte, 32)
	for i, ev := range events {
		got, err := l.Append(ctx, tx, TenantChain(tx.Tenant()), ev)
		if err != nil {
			t.Fatalf("Append(%d): %v", i, err)
		}
		want := &store.AuditEntry{
			Seq: int64(i + 1), Time: wantTimes[i], Actor: ev.Actor, Action: ev.Action, Resource: ev.Resource,
			RequestID: ev.RequestID, Outcome: ev.Outcome, PrevHash: prev,
		}
		want.Hash = Hash(TenantChain(tenantA), want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Append(%d) entry mismatch (-want +got):\n%s", i, diff)
		}
		// The stored row, after the store's microsecond truncation, must
		// be the returned entry, so that it re-hashes identically.
		if diff := cmp.Diff(got, tx.entry(int64(i+1))); diff != "" {
			t.Errorf("Append(%d): stored entry differs from returned (-returned +stored):\n%s", i, diff)
		}
		if h := Hash(TenantChain(tenantA), tx.entry(int64(i+1))); !bytes.Equal(h, got.Hash) {
			t.Errorf("Append(%d): stored entry hashes to %x, want %x", i, h, got.Hash)
		}
		prev = got.Hash
	}
	if len(tx.checkpoints) != 0 {
		t.Errorf("Append wrote %d checkpoints for 3 entries, want 0", len(tx.checkpoints))
	}
}

func TestAppendCheckpoints(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		every   int
		entries int
		want    []int64
	}{
		{"DefaultEvery", 0, 250, []int64{100, 200}},
		{"Every7", 7, 30, []int64{7, 14, 21, 28}},
		{"Every1", 1, 3, []int64{1, 2, 3}},
		{"NoneYet", 100, 99, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key := testKey(1)
			pub := key.Public().(ed25519.PublicKey)
			now := time.Date(2026, 11, 26, 9, 0, 0, 555, time.UTC)
			l := New(Config{SigningKey: key, CheckpointEvery: tt.every, NowFunc: func() time.Time { return now }})
			tx := newFakeAuditTx(tenantA)
			appendN(t, l, tx, tt.entries)

			var got []int64
			for _, c := range tx.checkpoints {
				got = append(got, c.Seq)
				e := tx.entry(c.Seq)
				if !bytes.Equal(c.Hash, e.Hash) {
					t.Errorf("checkpoint %d: Hash = %x, want entry hash %x", c.Seq, c.Hash, e.Hash)
				}
				if want := keyring.KeyID(pub); c.KeyID != want {
					t.Errorf("checkpoint %d: KeyID = %q, want %q", c.Seq, c.KeyID, want)
				}
				if !ed25519.Verify(pub, CheckpointMessage(TenantChain(tenantA), c.Seq, c.Hash), c.Signature) {
					t.Errorf("checkpoint %d: signature does not verify", c.Seq)
				}
				if want := now.Truncate(time.Microsecond); !c.Time.Equal(want) {
					t.Errorf("checkpoint %d: Time = %v, want %v", c.Seq, c.Time, want)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("checkpoint seqs mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAppendCleansStrings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"plain", "plain"},
		{"", ""},
		{"héllo ✓", "héllo ✓"},
		{"bad\xffbyte", "bad\uFFFDbyte"},
		{"nul\x00byte", "nul\uFFFDbyte"},
		{"\x00\xfe\xff", "\uFFFD\uFFFD"}, // ToValidUTF8 merges the invalid run
	}
	for _, tt := range tests {
		l := New(Config{SigningKey: testKey(1)})
		tx := newFakeAuditTx(tenantA)
		e, err := l.Append(context.Background(), tx, TenantChain(tx.Tenant()), Event{Actor: tt.in, Action: tt.in, Resource: tt.in, RequestID: tt.in, Outcome: tt.in})
		if err != nil {
			t.Fatalf("Append(%q): %v", tt.in, err)
		}
		for name, got := range map[string]string{"Actor": e.Actor, "Action": e.Action, "Resource": e.Resource,
			"RequestID": e.RequestID, "Outcome": e.Outcome} {
			if got != tt.want {
				t.Errorf("Append(%q): %s = %q, want %q", tt.in, name, got, tt.want)
			}
		}
	}
}

func TestAppendErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		failOn  string
		noKey   bool
		want    error
		entries int // rows stored before the failing Append
	}{
		{"AuditHead", "AuditHead", false, errFake, 0},
		{"AppendAudit", "AppendAudit", false, errFake, 0},
		{"PutAuditCheckpoint", "PutAuditCheckpoint", false, errFake, 1},
		{"NoSigningKey", "", true, ErrNoSigningKey, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := Config{SigningKey: testKey(1), CheckpointEvery: 1}
			if tt.noKey {
				cfg.SigningKey = nil
				cfg.VerifyKeys = []ed25519.PublicKey{testKey(1).Public().(ed25519.PublicKey)}
			}
			tx := newFakeAuditTx(tenantA)
			tx.failOn = tt.failOn
			_, err := New(cfg).Append(context.Background(), tx, TenantChain(tx.Tenant()), testEvent(0))
			if !errors.Is(err, tt.want) {
				t.Errorf("Append error = %v, want %v", err, tt.want)
			}
			if len(tx.entries) != tt.entries {
				t.Errorf("Append stored %d entries, want %d", len(tx.entries), tt.entries)
			}
		})
	}

	t.Run("SeqTaken", func(t *testing.T) {
		t.Parallel()
		tx := &racingTx{fakeAuditTx: newFakeAuditTx(tenantA)}
		l := New(Config{SigningKey: testKey(1)})
		appendN(t, l, tx, 2)
		tx.staleHead = true
		if _, err := l.Append(context.Background(), tx, TenantChain(tx.Tenant()), testEvent(2)); !errors.Is(err, store.ErrConflict) {
			t.Errorf("Append with a stale head: error = %v, want store.ErrConflict", err)
		}
	})
}

// racingTx reports an old head, as a store that failed to hold the head
// against a concurrent appender would.
type racingTx struct {
	*fakeAuditTx
	staleHead bool
}

func (r *racingTx) AuditHead(ctx context.Context) (int64, []byte, error) {
	if r.staleHead {
		e := r.entries[0]
		return e.Seq, e.Hash, nil
	}
	return r.fakeAuditTx.AuditHead(ctx)
}

func TestNewPanics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"NegativeEvery", Config{CheckpointEvery: -1}, "audit: CheckpointEvery must be >= 0, got -1"},
		{"ShortSigningKey", Config{SigningKey: make([]byte, 32)}, "audit: SigningKey has 32 bytes, want 64"},
		{"ShortVerifyKey", Config{VerifyKeys: []ed25519.PublicKey{make([]byte, 31)}}, "audit: VerifyKeys[0] has 31 bytes, want 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			defer func() {
				if got := recover(); got != tt.want {
					t.Errorf("New(%s) panic = %v, want %q", tt.name, got, tt.want)
				}
			}()
			New(tt.cfg)
		})
	}
}

func TestHashCoversEveryField(t *testing.T) {
	t.Parallel()
	base := func() *store.AuditEntry {
		return &store.AuditEntry{
			Seq: 42, Time: testEpoch.Truncate(time.Microsecond), Actor: "user:1", Action: "record.create",
			Resource: "record:notes/1", RequestID: "req-1", Outcome: Success, PrevHash: bytes.Repeat([]byte{7}, 32),
		}
	}
	baseHash := Hash(TenantChain(tenantA), base())

	tests := []struct {
		name   string
		tid    tenant.ID
		change func(e *store.AuditEntry)
	}{
		{"Tenant", tenantB, func(e *store.AuditEntry) {}},
		{"Seq", tenantA, func(e *store.AuditEntry) { e.Seq++ }},
		{"Time", tenantA, func(e *store.AuditEntry) { e.Time = e.Time.Add(time.Microsecond) }},
		{"Actor", tenantA, func(e *store.AuditEntry) { e.Actor += "x" }},
		{"Action", tenantA, func(e *store.AuditEntry) { e.Action = "record.delete" }},
		{"Resource", tenantA, func(e *store.AuditEntry) { e.Resource = "record:notes/2" }},
		{"RequestID", tenantA, func(e *store.AuditEntry) { e.RequestID = "" }},
		{"Outcome", tenantA, func(e *store.AuditEntry) { e.Outcome = Denied }},
		{"PrevHash", tenantA, func(e *store.AuditEntry) { e.PrevHash[31] ^= 1 }},
		{"PrevHashLength", tenantA, func(e *store.AuditEntry) { e.PrevHash = e.PrevHash[:31] }},
		// Moving bytes across a field boundary keeps the concatenation
		// but not the length prefixes.
		{"ShiftActorAction", tenantA, func(e *store.AuditEntry) { e.Actor, e.Action = "user:1r", "ecord.create" }},
		{"ShiftOutcomeIntoRequestID", tenantA, func(e *store.AuditEntry) { e.RequestID, e.Outcome = "req-1success", "" }},
	}
	for _, tt := range tests {
		e := base()
		tt.change(e)
		if got := Hash(TenantChain(tt.tid), e); bytes.Equal(got, baseHash) {
			t.Errorf("Hash after changing %s = %x, the unchanged hash", tt.name, got)
		}
	}

	same := []struct {
		name   string
		change func(e *store.AuditEntry)
	}{
		{"StoredHash", func(e *store.AuditEntry) { e.Hash = []byte("anything") }},
		{"SubMicrosecond", func(e *store.AuditEntry) { e.Time = e.Time.Add(999 * time.Nanosecond) }},
		{"TimeZone", func(e *store.AuditEntry) { e.Time = e.Time.In(time.FixedZone("X", -7*3600)) }},
	}
	for _, tt := range same {
		e := base()
		tt.change(e)
		if got := Hash(TenantChain(tenantA), e); !bytes.Equal(got, baseHash) {
			t.Errorf("Hash after changing %s = %x, want unchanged %x", tt.name, got, baseHash)
		}
	}
}

func TestCheckpointMessageDomains(t *testing.T) {
	t.Parallel()
	h := bytes.Repeat([]byte{9}, 32)
	base := CheckpointMessage(TenantChain(tenantA), 100, h)
	others := map[string][]byte{
		"Tenant": CheckpointMessage(TenantChain(tenantB), 100, h),
		"Seq":    CheckpointMessage(TenantChain(tenantA), 101, h),
		"Hash":   CheckpointMessage(TenantChain(tenantA), 100, bytes.Repeat([]byte{8}, 32)),
	}
	for name, m := range others {
		if bytes.Equal(m, base) {
			t.Errorf("CheckpointMessage with another %s = the same bytes", name)
		}
	}
	// A checkpoint message can never be mistaken for an entry preimage.
	if p := entryPreimage(nil, TenantChain(tenantA), &store.AuditEntry{Seq: 100}); bytes.HasPrefix(p, base[:8+len(checkpointTag)]) {
		t.Errorf("entry preimage starts with the checkpoint tag")
	}
}
