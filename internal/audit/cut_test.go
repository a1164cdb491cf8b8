package audit

import (
	"context"
	"crypto/ed25519"
	"slices"
	"testing"

	"github.com/bulkheadhq/bulkhead/store"
)

// AuditStart returns the fake's latest cut, as the stores do.
func (f *fakeAuditTx) AuditStart(ctx context.Context) (*store.AuditCut, error) {
	if f.cut == nil {
		return nil, store.ErrNotFound
	}
	c := *f.cut
	c.Hash, c.Signature = slices.Clone(c.Hash), slices.Clone(c.Signature)
	return &c, nil
}

// cutAt does what retention does at entry seq: checkpoint it, sign the
// cut, and remove what lies below it, as CutAudit does.
func cutAt(t *testing.T, l *Log, f *fakeAuditTx, seq int64) {
	t.Helper()
	ctx := context.Background()
	e := f.entry(seq)
	if err := l.Checkpoint(ctx, f, TenantChain(f.tid), e); err != nil {
		t.Fatalf("Checkpoint(%d) = %v", seq, err)
	}
	c, err := l.Cut(TenantChain(f.tid), e)
	if err != nil {
		t.Fatalf("Cut(%d) = %v", seq, err)
	}
	f.cut = c
	f.entries = slices.DeleteFunc(f.entries, func(e *store.AuditEntry) bool { return e.Seq < seq })
	f.checkpoints = slices.DeleteFunc(f.checkpoints, func(c *store.AuditCheckpoint) bool { return c.Seq < seq })
}

func TestVerifyCut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const n = 1300
	setupCut := func(t *testing.T, seq int64) (*testBundle, *fakeAuditTx) {
		b := setup(t, n)
		f := b.chain.clone()
		cutAt(t, b.log, f, seq)
		return b, f
	}
	verify := func(t *testing.T, b *testBundle, f *fakeAuditTx) *Report {
		t.Helper()
		r, err := b.log.Verify(ctx, f, TenantChain(f.tid))
		if err != nil {
			t.Fatalf("Verify = %v", err)
		}
		return r
	}

	t.Run("VerifiesFromTheCut", func(t *testing.T) {
		t.Parallel()
		for _, seq := range []int64{1, 2, 150, 1000, 1001, n} { // without a checkpoint, at one, across a page
			b, f := setupCut(t, seq)
			r := verify(t, b, f)
			if !r.OK || r.Start != seq || r.Length != n {
				t.Errorf("cut at %d: Verify = %+v, want OK from %d to %d", seq, r, seq, n)
			}
		}
	})
	t.Run("SecondCut", func(t *testing.T) {
		t.Parallel()
		b, f := setupCut(t, 300)
		cutAt(t, b.log, f, 777)
		if r := verify(t, b, f); !r.OK || r.Start != 777 {
			t.Errorf("Verify = %+v, want OK from 777", r)
		}
	})
	t.Run("EntriesDeletedWithoutCut", func(t *testing.T) {
		t.Parallel()
		b := setup(t, n)
		f := b.chain.clone()
		f.entries = f.entries[300:]
		f.checkpoints = slices.DeleteFunc(f.checkpoints, func(c *store.AuditCheckpoint) bool { return c.Seq <= 300 })
		if r := verify(t, b, f); r.OK || r.BrokenAt != 1 || r.Reason != ReasonSequenceGap {
			t.Errorf("Verify = %+v, want a gap at 1", r)
		}
	})
	t.Run("MiddleDeletedAfterCut", func(t *testing.T) {
		t.Parallel()
		b, f := setupCut(t, 300)
		f.entries = slices.DeleteFunc(f.entries, func(e *store.AuditEntry) bool { return e.Seq == 500 })
		if r := verify(t, b, f); r.OK || r.BrokenAt != 500 || r.Reason != ReasonSequenceGap {
			t.Errorf("Verify = %+v, want a gap at 500", r)
		}
	})
	t.Run("ForgedCut", func(t *testing.T) {
		t.Parallel()
		// An attacker with the database removes more, moving the cut
		// forward to an entry of their choice, without the signing key.
		b, f := setupCut(t, 300)
		e := f.entry(900)
		forged := testKey(9)
		f.cut = &store.AuditCut{Seq: 900, Hash: slices.Clone(e.Hash), KeyID: f.cut.KeyID,
			Signature: ed25519.Sign(forged, CutMessage(TenantChain(f.tid), 900, e.Hash))}
		f.entries = slices.DeleteFunc(f.entries, func(e *store.AuditEntry) bool { return e.Seq < 900 })
		if r := verify(t, b, f); r.OK || r.BrokenAt != 900 || r.Reason != ReasonCutSignature {
			t.Errorf("Verify = %+v, want the cut's signature refused", r)
		}
	})
	t.Run("CheckpointReplayedAsCut", func(t *testing.T) {
		t.Parallel()
		// A genuine checkpoint's signature does not make a cut: the
		// domains differ.
		b, f := setupCut(t, 300)
		var cp *store.AuditCheckpoint
		for _, c := range f.checkpoints {
			if c.Seq == 900 {
				cp = c
			}
		}
		f.cut = &store.AuditCut{Seq: cp.Seq, Hash: cp.Hash, KeyID: cp.KeyID, Signature: cp.Signature}
		f.entries = slices.DeleteFunc(f.entries, func(e *store.AuditEntry) bool { return e.Seq < 900 })
		if r := verify(t, b, f); r.OK || r.Reason != ReasonCutSignature {
			t.Errorf("Verify = %+v, want the cut's signature refused", r)
		}
	})
	t.Run("CutMovedToOtherEntry", func(t *testing.T) {
		t.Parallel()
		// A valid cut whose Seq is edited no longer verifies; one left
		// alone but whose entry was rewritten fails at that entry.
		b, f := setupCut(t, 300)
		f.cut.Seq = 400
		if r := verify(t, b, f); r.OK || r.Reason != ReasonCutSignature {
			t.Errorf("edited Seq: Verify = %+v, want the cut's signature refused", r)
		}
		_, f = setupCut(t, 300)
		e := f.entry(300)
		e.Actor = "mallory"
		e.Hash = Hash(TenantChain(f.tid), e)
		if r := verify(t, b, f); r.OK || r.BrokenAt != 300 || r.Reason != ReasonCutMismatch {
			t.Errorf("rewritten start: Verify = %+v, want a mismatch at 300", r)
		}
	})
	t.Run("EverythingDeletedBehindCut", func(t *testing.T) {
		t.Parallel()
		b, f := setupCut(t, 300)
		f.entries, f.checkpoints = nil, nil
		if r := verify(t, b, f); r.OK || r.BrokenAt != 300 {
			t.Errorf("Verify = %+v, want a failure at 300", r)
		}
	})
}
