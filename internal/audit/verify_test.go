package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/store"
)

// chainLength crosses two page boundaries of pageSize; with checkpointEvery
// it has checkpoints at 100, 200, …, 2500, including both ends of the first
// page boundary's page (1000) and the last entry.
const (
	chainLength     = 2500
	checkpointEvery = 100
)

type testBundle struct {
	key   ed25519.PrivateKey
	log   *Log
	chain *fakeAuditTx // pristine; tests tamper with clones
}

func setup(t testing.TB, n int) *testBundle {
	t.Helper()
	key := testKey(1)
	b := &testBundle{
		key:   key,
		log:   New(Config{SigningKey: key, CheckpointEvery: checkpointEvery, NowFunc: testClock()}),
		chain: newFakeAuditTx(tenantA),
	}
	appendN(t, b.log, b.chain, n)
	return b
}

// broken returns the Report for chain tx that verifies up to and including
// entry length and checkpoints, then fails at at for reason.
func broken(tx *fakeAuditTx, length, at int64, reason string, checkpoints int) *Report {
	r := &Report{Length: length, BrokenAt: at, Reason: reason, Checkpoints: checkpoints}
	if length > 0 {
		r.Head = tx.entry(length).Hash
	}
	return r
}

func (b *testBundle) ok(length int64) *Report {
	r := &Report{OK: true, Length: length, Checkpoints: int(length / checkpointEvery)}
	if length > 0 {
		r.Head = b.chain.entry(length).Hash
	}
	return r
}

func verify(t *testing.T, l *Log, tx store.Tx, opts VerifyOptions) *Report {
	t.Helper()
	got, err := l.VerifyWith(context.Background(), tx, TenantChain(tx.Tenant()), opts)
	if err != nil {
		t.Fatalf("VerifyWith: %v", err)
	}
	return got
}

func TestVerifyOK(t *testing.T) {
	t.Parallel()
	b := setup(t, chainLength)
	for _, n := range []int64{0, 1, 99, 100, 999, 1000, 1001, 2000, 2001, chainLength} {
		t.Run(fmt.Sprintf("Length%d", n), func(t *testing.T) {
			t.Parallel()
			tx := b.chain.clone()
			tx.deleteEntries(n+1, chainLength)
			for _, c := range b.chain.checkpoints {
				if c.Seq > n {
					tx.deleteCheckpoint(c.Seq)
				}
			}
			got := verify(t, b.log, tx, VerifyOptions{})
			if diff := cmp.Diff(b.ok(n), got); diff != "" {
				t.Errorf("Verify of %d entries (-want +got):\n%s", n, diff)
			}
		})
	}
}

func TestVerifyReadsPages(t *testing.T) {
	t.Parallel()
	b := setup(t, chainLength)
	tx := &countingTx{fakeAuditTx: b.chain.clone()}
	got := verify(t, b.log, tx, VerifyOptions{})
	if !got.OK {
		t.Fatalf("Verify = %+v, want OK", got)
	}
	// 3 pages, each after the first overlapping the previous one by an
	// entry, and one holding only the last entry, which ends the chain.
	want := []string{"ListAudit(0, 1000)", "ListAudit(999, 1000)", "ListAudit(1998, 1000)", "ListAudit(2499, 1000)"}
	if diff := cmp.Diff(want, tx.listAudit); diff != "" {
		t.Errorf("ListAudit calls (-want +got):\n%s", diff)
	}
}

type countingTx struct {
	*fakeAuditTx
	listAudit []string
}

func (c *countingTx) ListAudit(ctx context.Context, after int64, limit int) ([]*store.AuditEntry, error) {
	c.listAudit = append(c.listAudit, fmt.Sprintf("ListAudit(%d, %d)", after, limit))
	return c.fakeAuditTx.ListAudit(ctx, after, limit)
}

// tamperCase is one attack on a pristine chain and the report it must give.
type tamperCase struct {
	name   string
	tamper func(b *testBundle, tx *fakeAuditTx)
	want   func(tx *fakeAuditTx) *Report // tx is the tampered chain
}

// Entry positions attacked: first, middle, both sides of the first page
// boundary, last.
var positions = []int64{1, 1250, pageSize, pageSize + 1, chainLength}

// Checkpoint positions attacked: first, on the page boundary, middle, last.
var checkpointPositions = []int64{checkpointEvery, pageSize, 1200, chainLength}

// isCheckpoint reports whether the pristine chain has a checkpoint at seq.
func isCheckpoint(seq int64) bool { return seq%checkpointEvery == 0 }

// cpsBefore is the number of checkpoints at Seq < seq.
func cpsBefore(seq int64) int { return int((seq - 1) / checkpointEvery) }

// failsAt is the usual report: entries before at verify, at fails.
func failsAt(at int64, reason string) func(tx *fakeAuditTx) *Report {
	return func(tx *fakeAuditTx) *Report { return broken(tx, at-1, at, reason, cpsBefore(at)) }
}

func tamperCases() []tamperCase {
	var cases []tamperCase
	add := func(name string, tamper func(b *testBundle, tx *fakeAuditTx), want func(tx *fakeAuditTx) *Report) {
		cases = append(cases, tamperCase{name, tamper, want})
	}

	fields := []struct {
		name string
		edit func(e *store.AuditEntry)
	}{
		{"Actor", func(e *store.AuditEntry) { e.Actor = "user:9999" }},
		{"Action", func(e *store.AuditEntry) { e.Action = "record.read" }},
		{"Resource", func(e *store.AuditEntry) { e.Resource += "x" }},
		{"RequestID", func(e *store.AuditEntry) { e.RequestID = "" }},
		{"Outcome", func(e *store.AuditEntry) { e.Outcome = Denied }},
		{"Time", func(e *store.AuditEntry) { e.Time = e.Time.Add(-1e3) }},
		{"PrevHash", func(e *store.AuditEntry) { e.PrevHash[0] ^= 0x80 }},
		{"Hash", func(e *store.AuditEntry) { e.Hash[31] ^= 1 }},
	}
	for _, p := range positions {
		for _, f := range fields {
			add(fmt.Sprintf("Edit%s/At%d", f.name, p),
				func(b *testBundle, tx *fakeAuditTx) { f.edit(tx.entry(p)) },
				failsAt(p, ReasonEntryHash))
		}

		// The attacker recomputes the edited entry's hash: the link to
		// the next entry breaks, or the checkpoint on the entry catches it.
		want := failsAt(p+1, ReasonPrevHash)
		if isCheckpoint(p) {
			want = failsAt(p, ReasonCheckpointMismatch)
		}
		add(fmt.Sprintf("EditAndRehash/At%d", p), func(b *testBundle, tx *fakeAuditTx) {
			e := tx.entry(p)
			e.Outcome = Denied
			e.Hash = Hash(TenantChain(tx.tid), e)
		}, want)

		// Deleting the last entry leaves its checkpoint beyond the end.
		want = failsAt(p, ReasonSequenceGap)
		if p == chainLength {
			want = failsAt(p, ReasonCheckpointBeyondEnd)
		}
		add(fmt.Sprintf("Delete/At%d", p), func(b *testBundle, tx *fakeAuditTx) { tx.deleteEntries(p, p) }, want)

		// Swap Seq with the neighbour (the one before, for the last).
		lo := min(p, chainLength-1)
		add(fmt.Sprintf("SwapSeq/At%d", p), func(b *testBundle, tx *fakeAuditTx) {
			tx.entry(lo).Seq, tx.entry(lo+1).Seq = lo+1, lo
			tx.sortEntries()
		}, failsAt(lo, ReasonEntryHash))

		// A second row with the same Seq, right after the original.
		add(fmt.Sprintf("Duplicate/At%d", p), func(b *testBundle, tx *fakeAuditTx) {
			i := int(p) // index after entry p
			dup := cloneEntry(tx.entries[i-1])
			dup.Actor = "user:evil"
			tx.entries = append(tx.entries[:i], append([]*store.AuditEntry{dup}, tx.entries[i:]...)...)
		}, func(tx *fakeAuditTx) *Report {
			// Entry p verifies, with its checkpoint; the extra row fails.
			return broken(tx, p, p+1, ReasonSequenceOrder, int(p/checkpointEvery))
		})
	}
	add("SwapSeq/FirstAndLast", func(b *testBundle, tx *fakeAuditTx) {
		tx.entry(1).Seq, tx.entry(chainLength).Seq = chainLength, 1
		tx.sortEntries()
	}, failsAt(1, ReasonEntryHash))

	other := testKey(2)
	for _, c := range checkpointPositions {
		add(fmt.Sprintf("CheckpointEditHash/At%d", c),
			func(b *testBundle, tx *fakeAuditTx) { tx.checkpoint(c).Hash[0] ^= 1 },
			failsAt(c, ReasonCheckpointSignature))
		add(fmt.Sprintf("CheckpointEditSignature/At%d", c),
			func(b *testBundle, tx *fakeAuditTx) { tx.checkpoint(c).Signature[5] ^= 1 },
			failsAt(c, ReasonCheckpointSignature))
		add(fmt.Sprintf("CheckpointTruncatedSignature/At%d", c),
			func(b *testBundle, tx *fakeAuditTx) { cp := tx.checkpoint(c); cp.Signature = cp.Signature[:10] },
			failsAt(c, ReasonCheckpointSignature))
		add(fmt.Sprintf("CheckpointSignedByUnknownKey/At%d", c), func(b *testBundle, tx *fakeAuditTx) {
			cp := tx.checkpoint(c)
			cp.KeyID = keyring.KeyID(other.Public().(ed25519.PublicKey))
			cp.Signature = ed25519.Sign(other, CheckpointMessage(TenantChain(tx.tid), cp.Seq, cp.Hash))
		}, failsAt(c, ReasonCheckpointKey))
		add(fmt.Sprintf("CheckpointForgedWithUnknownKeyUnderKnownID/At%d", c), func(b *testBundle, tx *fakeAuditTx) {
			cp := tx.checkpoint(c)
			cp.Signature = ed25519.Sign(other, CheckpointMessage(TenantChain(tx.tid), cp.Seq, cp.Hash))
		}, failsAt(c, ReasonCheckpointSignature))
		add(fmt.Sprintf("CheckpointEditKeyID/At%d", c),
			func(b *testBundle, tx *fakeAuditTx) { tx.checkpoint(c).KeyID = "0000000000000000" },
			failsAt(c, ReasonCheckpointKey))
		// Validly signed, but over the previous entry's hash.
		add(fmt.Sprintf("CheckpointWrongHash/At%d", c), func(b *testBundle, tx *fakeAuditTx) {
			cp := tx.checkpoint(c)
			cp.Hash = tx.entry(c - 1).Hash
			cp.Signature = ed25519.Sign(b.key, CheckpointMessage(TenantChain(tx.tid), cp.Seq, cp.Hash))
		}, failsAt(c, ReasonCheckpointMismatch))
		// Moving a checkpoint to the next Seq breaks its signature there.
		add(fmt.Sprintf("CheckpointEditSeq/At%d", c), func(b *testBundle, tx *fakeAuditTx) {
			tx.checkpoint(c).Seq++
		}, func(tx *fakeAuditTx) *Report {
			return broken(tx, c, c+1, ReasonCheckpointSignature, cpsBefore(c))
		})
	}

	// Truncating the tail behind a checkpoint: every entry from `from` on.
	for _, from := range []int64{1, pageSize, pageSize + 1, 1250, 2450, chainLength} {
		add(fmt.Sprintf("Truncate/From%d", from),
			func(b *testBundle, tx *fakeAuditTx) { tx.deleteEntries(from, chainLength) },
			failsAt(from, ReasonCheckpointBeyondEnd))
	}
	// Truncation plus a forged checkpoint beyond the new end: the forgery
	// is reported where it stands.
	add("TruncateAndForgeCheckpoint", func(b *testBundle, tx *fakeAuditTx) {
		tx.deleteEntries(2401, chainLength)
		tx.checkpoint(chainLength).Signature[0] ^= 1
	}, func(tx *fakeAuditTx) *Report { return broken(tx, 2400, chainLength, ReasonCheckpointSignature, 24) })

	return cases
}

func TestVerifyTamper(t *testing.T) {
	t.Parallel()
	b := setup(t, chainLength)
	if got := verify(t, b.log, b.chain.clone(), VerifyOptions{}); !got.OK {
		t.Fatalf("pristine chain: Verify = %+v, want OK", got)
	}
	for _, tc := range tamperCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tx := b.chain.clone()
			tc.tamper(b, tx)
			got := verify(t, b.log, tx, VerifyOptions{})
			if diff := cmp.Diff(tc.want(tx), got); diff != "" {
				t.Errorf("Verify after %s (-want +got):\n%s", tc.name, diff)
			}
		})
	}
}

func TestVerifyOtherTenant(t *testing.T) {
	t.Parallel()
	b := setup(t, 250)
	tx := b.chain.clone()
	tx.tid = tenantB // tenant A's rows, read as tenant B's chain
	got := verify(t, b.log, tx, VerifyOptions{})
	if diff := cmp.Diff(broken(tx, 0, 1, ReasonEntryHash, 0), got); diff != "" {
		t.Errorf("Verify of A's chain as B (-want +got):\n%s", diff)
	}

	// Even with entry hashes recomputed for B, A's checkpoints do not
	// verify for B.
	prev := genesis
	for _, e := range tx.entries {
		e.PrevHash = prev
		e.Hash = Hash(TenantChain(tenantB), e)
		prev = e.Hash
	}
	for _, c := range tx.checkpoints {
		c.Hash = tx.entry(c.Seq).Hash
	}
	got = verify(t, b.log, tx, VerifyOptions{})
	if diff := cmp.Diff(failsAt(100, ReasonCheckpointSignature)(tx), got); diff != "" {
		t.Errorf("Verify of A's chain rehashed as B's (-want +got):\n%s", diff)
	}
}

func TestVerifyKeyRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := testKey(1), testKey(2)
	oldPub, newPub := oldKey.Public().(ed25519.PublicKey), newKey.Public().(ed25519.PublicKey)
	tx := newFakeAuditTx(tenantA)
	appendN(t, New(Config{SigningKey: oldKey}), tx, 250) // checkpoints 100, 200 by the old key
	rotated := New(Config{SigningKey: newKey, VerifyKeys: []ed25519.PublicKey{oldPub}})
	appendN(t, rotated, tx, 250) // 300, 400, 500 by the new key

	if got, want := tx.checkpoint(200).KeyID, keyring.KeyID(oldPub); got != want {
		t.Fatalf("checkpoint 200 KeyID = %q, want old key %q", got, want)
	}
	if got, want := tx.checkpoint(300).KeyID, keyring.KeyID(newPub); got != want {
		t.Fatalf("checkpoint 300 KeyID = %q, want new key %q", got, want)
	}

	head := tx.entry(500).Hash
	tests := []struct {
		name string
		log  *Log
		want *Report
	}{
		{"RotatedWithOldKey", rotated, &Report{OK: true, Length: 500, Head: head, Checkpoints: 5}},
		{"VerifyOnly", New(Config{VerifyKeys: []ed25519.PublicKey{newPub, oldPub}}),
			&Report{OK: true, Length: 500, Head: head, Checkpoints: 5}},
		{"NewKeyAlone", New(Config{SigningKey: newKey}),
			&Report{Length: 99, Head: tx.entry(99).Hash, BrokenAt: 100, Reason: ReasonCheckpointKey}},
		{"OldKeyAlone", New(Config{SigningKey: oldKey}),
			&Report{Length: 299, Head: tx.entry(299).Hash, BrokenAt: 300, Reason: ReasonCheckpointKey, Checkpoints: 2}},
		{"NoKeys", New(Config{}),
			&Report{Length: 99, Head: tx.entry(99).Hash, BrokenAt: 100, Reason: ReasonCheckpointKey}},
	}
	for _, tt := range tests {
		got := verify(t, tt.log, tx, VerifyOptions{})
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: Verify (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestVerifyPinned(t *testing.T) {
	t.Parallel()
	// 2550 entries: the last 50 lie after the last checkpoint (2500).
	const n = chainLength + 50
	b := setup(t, n)

	// What checkpoints cannot see: the tail after the last one can be
	// truncated or rewritten undetected, unless a head is pinned.
	truncated := b.chain.clone()
	truncated.deleteEntries(2531, n)
	rewritten := b.chain.clone()
	for seq := int64(2520); seq <= n; seq++ {
		e := rewritten.entry(seq)
		if seq == 2520 {
			e.Outcome = Denied
		} else {
			e.PrevHash = rewritten.entry(seq - 1).Hash
		}
		e.Hash = Hash(TenantChain(rewritten.tid), e)
	}
	if got := verify(t, b.log, truncated, VerifyOptions{}); !got.OK || got.Length != 2530 {
		t.Errorf("truncated after last checkpoint: Verify = %+v, want OK with Length 2530 (undetectable without a pin)", got)
	}
	if got := verify(t, b.log, rewritten, VerifyOptions{}); !got.OK || got.Length != n {
		t.Errorf("rewritten after last checkpoint: Verify = %+v, want OK (undetectable without a pin)", got)
	}

	pinned := func(seq int64) VerifyOptions {
		return VerifyOptions{PinnedSeq: seq, PinnedHash: b.chain.entry(seq).Hash}
	}
	tests := []struct {
		name string
		tx   *fakeAuditTx
		opts VerifyOptions
		want *Report
	}{
		{"PristineHead", b.chain, pinned(n), b.ok(n)},
		{"PristineMiddle", b.chain, pinned(1001), b.ok(n)},
		{"PristineFirst", b.chain, pinned(1), b.ok(n)},
		{"TruncatedBehindPin", truncated, pinned(n), broken(truncated, 2530, 2531, ReasonPinnedMissing, 25)},
		{"TruncatedBeforePin", truncated, pinned(2530), b.ok(2530)},
		{"RewrittenHead", rewritten, pinned(n), broken(rewritten, n-1, n, ReasonPinnedMismatch, 25)},
		{"RewrittenPinInside", rewritten, pinned(2525), broken(rewritten, 2524, 2525, ReasonPinnedMismatch, 25)},
		{"RewrittenPinBefore", rewritten, pinned(2519), &Report{OK: true, Length: n, Head: rewritten.entry(n).Hash, Checkpoints: 25}},
		{"EmptyChain", newFakeAuditTx(tenantA), pinned(1), broken(nil, 0, 1, ReasonPinnedMissing, 0)},
	}
	for _, tt := range tests {
		got := verify(t, b.log, tt.tx, tt.opts)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: VerifyWith(PinnedSeq %d) (-want +got):\n%s", tt.name, tt.opts.PinnedSeq, diff)
		}
	}
}

func TestVerifyRequireCheckpoints(t *testing.T) {
	t.Parallel()
	b := setup(t, chainLength)
	for _, c := range checkpointPositions {
		tx := b.chain.clone()
		tx.deleteCheckpoint(c)
		if got := verify(t, b.log, tx, VerifyOptions{}); !got.OK {
			t.Errorf("checkpoint %d deleted: Verify = %+v, want OK (undetectable by default)", c, got)
		}
		got := verify(t, b.log, tx, VerifyOptions{RequireCheckpoints: true})
		if diff := cmp.Diff(failsAt(c, ReasonCheckpointMissing)(tx), got); diff != "" {
			t.Errorf("checkpoint %d deleted: VerifyWith(RequireCheckpoints) (-want +got):\n%s", c, diff)
		}
	}
	if got := verify(t, b.log, b.chain, VerifyOptions{RequireCheckpoints: true}); !got.OK {
		t.Errorf("pristine chain: VerifyWith(RequireCheckpoints) = %+v, want OK", got)
	}
}

func TestVerifyInvalidOptions(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	tests := []struct {
		name string
		opts VerifyOptions
	}{
		{"NegativeSeq", VerifyOptions{PinnedSeq: -1, PinnedHash: make([]byte, 32)}},
		{"ShortHash", VerifyOptions{PinnedSeq: 1, PinnedHash: make([]byte, 31)}},
		{"NoHash", VerifyOptions{PinnedSeq: 1}},
		{"HashWithoutSeq", VerifyOptions{PinnedHash: make([]byte, 32)}},
	}
	for _, tt := range tests {
		if got, err := b.log.VerifyWith(context.Background(), b.chain, TenantChain(b.chain.Tenant()), tt.opts); err == nil {
			t.Errorf("VerifyWith(%s) = %+v, nil; want an error", tt.name, got)
		}
	}
}

func TestVerifyStoreErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, 150)
	for _, method := range []string{"ListAudit", "ListAuditCheckpoints"} {
		tx := b.chain.clone()
		tx.failOn = method
		got, err := b.log.Verify(context.Background(), tx, TenantChain(tx.Tenant()))
		if !errors.Is(err, errFake) {
			t.Errorf("Verify with failing %s = %+v, %v; want error wrapping %v", method, got, err, errFake)
		}
	}

	// Checkpoints out of Seq order are a broken store, not a broken chain.
	tx := b.chain.clone()
	early := cloneCheckpoint(tx.checkpoints[0])
	early.Seq = 50
	tx.checkpoints = append(tx.checkpoints, early) // [100, 50]
	if got, err := b.log.Verify(context.Background(), tx, TenantChain(tx.Tenant())); err == nil {
		t.Errorf("Verify with checkpoints out of order = %+v, nil; want an error", got)
	}
}

func TestVerifyHeadIsEntryHash(t *testing.T) {
	t.Parallel()
	b := setup(t, 5)
	got, err := b.log.Verify(context.Background(), b.chain, TenantChain(b.chain.Tenant()))
	if err != nil {
		t.Fatal(err)
	}
	seq, head, _ := b.chain.AuditHead(context.Background())
	if got.Length != seq || !bytes.Equal(got.Head, head) {
		t.Errorf("Verify = Length %d, Head %x; want AuditHead %d, %x", got.Length, got.Head, seq, head)
	}
}
