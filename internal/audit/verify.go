package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/bulkheadhq/bulkhead/store"
)

// Reasons a Report gives for a broken chain. They are short and name no
// data, so they are safe to show a tenant admin.
const (
	// ReasonSequenceGap: the entry at BrokenAt is missing (deleted).
	ReasonSequenceGap = "sequence gap"
	// ReasonSequenceOrder: an entry with a Seq already seen (a duplicate)
	// stands where BrokenAt should be.
	ReasonSequenceOrder = "sequence out of order"
	// ReasonEntryHash: the entry's fields do not hash to its stored Hash.
	ReasonEntryHash = "entry hash mismatch"
	// ReasonPrevHash: the entry's PrevHash is not the previous entry's Hash
	// (or, for Seq 1, the genesis value).
	ReasonPrevHash = "previous hash mismatch"
	// ReasonCheckpointKey: a checkpoint names a key the Log does not accept.
	ReasonCheckpointKey = "checkpoint key unknown"
	// ReasonCheckpointSignature: a checkpoint's signature does not verify.
	ReasonCheckpointSignature = "checkpoint signature invalid"
	// ReasonCheckpointMismatch: a validly signed checkpoint's hash is not its
	// entry's.
	ReasonCheckpointMismatch = "checkpoint does not match entry"
	// ReasonCheckpointBeyondEnd: a validly signed checkpoint names a Seq past
	// the last entry, so the end of the chain was deleted.
	ReasonCheckpointBeyondEnd = "checkpoint beyond end of chain"
	// ReasonCheckpointMissing: VerifyOptions.RequireCheckpoints is set and the
	// entry at BrokenAt has no checkpoint.
	ReasonCheckpointMissing = "checkpoint missing"
	// ReasonPinnedMismatch: the entry at VerifyOptions.PinnedSeq does not
	// have PinnedHash.
	ReasonPinnedMismatch = "pinned hash mismatch"
	// ReasonPinnedMissing: the chain ends before VerifyOptions.PinnedSeq.
	ReasonPinnedMissing = "pinned entry missing"
)

// pageSize is how many entries or checkpoints Verify reads per store call.
// It must be at least 2, since entry pages overlap by one.
const pageSize = 1000

// Report is the result of verifying a chain.
type Report struct {
	// OK reports whether the whole chain verified.
	OK bool
	// Length is the number of entries verified: the chain's length if OK,
	// else the entries before the failure.
	Length int64
	// Head is the Hash of entry Length, nil if Length is 0. Keep it with
	// Length and pass both to VerifyWith later to detect a truncated or
	// rewritten tail.
	Head []byte
	// BrokenAt is the Seq of the first entry or checkpoint that failed, or
	// for a deleted tail the first missing Seq; 0 if OK.
	BrokenAt int64
	// Reason is one of the Reason constants; empty if OK.
	Reason string
	// Checkpoints is the number of checkpoints verified.
	Checkpoints int
	// Start is the Seq of the signed cut the chain starts at, where
	// retention removed the entries before it; 0 if the chain starts at
	// entry 1. Length then still counts from 1: it is the last Seq
	// verified.
	Start int64
}

// VerifyOptions are the optional checks of VerifyWith. The zero value adds
// none.
type VerifyOptions struct {
	// PinnedSeq and PinnedHash are a Length and Head from an earlier Report,
	// kept outside the database. If PinnedSeq is not 0, the chain must hold
	// an entry with Seq PinnedSeq and Hash PinnedHash.
	PinnedSeq  int64
	PinnedHash []byte
	// RequireCheckpoints makes every entry whose Seq is a multiple of
	// Config.CheckpointEvery need a checkpoint, to detect deleted
	// checkpoints. Set it only if CheckpointEvery has not changed since the
	// chain began, or older entries fail with ReasonCheckpointMissing.
	RequireCheckpoints bool
}

func (o *VerifyOptions) validate() error {
	switch {
	case o.PinnedSeq < 0:
		return fmt.Errorf("PinnedSeq must be >= 0, got %d", o.PinnedSeq)
	case o.PinnedSeq > 0 && len(o.PinnedHash) != sha256.Size:
		return fmt.Errorf("PinnedHash must have %d bytes, got %d", sha256.Size, len(o.PinnedHash))
	case o.PinnedSeq == 0 && len(o.PinnedHash) > 0:
		return errors.New("PinnedHash is set but PinnedSeq is 0")
	}
	return nil
}

// Verify checks the named chain in s and its checkpoints from the first entry to
// the last and reports the first failure, as described in the package
// documentation. A broken chain is not an error: Verify returns a Report with
// OK false. Errors are the store's, wrapped. It reads the chain in pages of
// 1,000 entries and holds one page at a time; run it in a ReadTenant
// transaction so that it sees one snapshot.
func (l *Log) Verify(ctx context.Context, s store.AuditLog, chain Chain) (*Report, error) {
	return l.VerifyWith(ctx, s, chain, VerifyOptions{})
}

// VerifyWith is Verify with the further checks of opts. It returns an error
// if opts is invalid.
func (l *Log) VerifyWith(ctx context.Context, s store.AuditLog, chain Chain, opts VerifyOptions) (*Report, error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("verify audit chain: %w", err)
	}
	w := &walk{log: l, s: s, chain: chain, opts: opts}
	return w.run(ctx)
}

// walk is one verification: a merge of the entry and checkpoint streams in
// Seq order.
type walk struct {
	log   *Log
	s     store.AuditLog
	chain Chain
	opts  VerifyOptions
	rep   Report

	cps     []*store.AuditCheckpoint // fetched, not yet checked
	cpAfter int64                    // Seq to list checkpoints after
	cpDone  bool
}

func (w *walk) run(ctx context.Context) (*Report, error) {
	first := int64(1)
	prev := genesis
	cut, err := w.start(ctx)
	if err != nil {
		return nil, err
	}
	if cut != nil {
		// Entries and checkpoints before a validly signed cut were removed
		// by retention; the walk starts at the cut's entry, whose hash the
		// signature vouches for in place of its predecessors.
		if !w.cutValid(cut) {
			return w.fail(cut.Seq, ReasonCutSignature), nil
		}
		first, w.rep.Start, w.cpAfter = cut.Seq, cut.Seq, cut.Seq-1
	}
	want := first
	for {
		// Pages after the first start one entry back, at the last entry
		// verified, so that a second row with that Seq (which a unique
		// index would forbid) cannot hide between two pages.
		after := max(want-2, first-1)
		page, err := w.s.ListAudit(ctx, after, pageSize)
		if err != nil {
			return nil, fmt.Errorf("list audit entries after %d: %w", after, err)
		}
		if want > first && len(page) > 0 && page[0].Seq == want-1 && w.isEntry(page[0], prev) {
			page = page[1:]
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			sum := hashEntry(w.chain, e)
			// Only e.Seq == want goes on, so the next page always starts
			// further on.
			switch {
			case e.Seq > want:
				return w.fail(want, ReasonSequenceGap), nil
			case e.Seq < want:
				return w.fail(want, ReasonSequenceOrder), nil
			case !bytes.Equal(sum[:], e.Hash):
				return w.fail(want, ReasonEntryHash), nil
			case cut != nil && want == first && !bytes.Equal(e.Hash, cut.Hash):
				return w.fail(want, ReasonCutMismatch), nil
			case (cut == nil || want > first) && !bytes.Equal(e.PrevHash, prev):
				return w.fail(want, ReasonPrevHash), nil
			case w.opts.PinnedSeq == want && !bytes.Equal(e.Hash, w.opts.PinnedHash):
				return w.fail(want, ReasonPinnedMismatch), nil
			}
			seen := false
			for {
				c, err := w.peek(ctx)
				if err != nil {
					return nil, err
				}
				if c == nil || c.Seq > want {
					break
				}
				w.cps = w.cps[1:]
				if reason := w.checkSignature(c); reason != "" {
					return w.fail(want, reason), nil
				}
				if c.Seq != e.Seq || !bytes.Equal(c.Hash, e.Hash) {
					return w.fail(want, ReasonCheckpointMismatch), nil
				}
				w.rep.Checkpoints++
				seen = true
			}
			if w.opts.RequireCheckpoints && want%w.log.every == 0 && !seen {
				return w.fail(want, ReasonCheckpointMissing), nil
			}
			prev = e.Hash
			w.rep.Length, w.rep.Head = want, e.Hash
			want++
		}
	}

	// Past the last entry: any checkpoint left names a deleted entry.
	c, err := w.peek(ctx)
	if err != nil {
		return nil, err
	}
	if c != nil {
		if reason := w.checkSignature(c); reason != "" {
			return w.fail(c.Seq, reason), nil
		}
		return w.fail(want, ReasonCheckpointBeyondEnd), nil
	}
	if cut != nil && want == first {
		// The entry the chain starts at is gone, with everything after it.
		return w.fail(first, ReasonSequenceGap), nil
	}
	if w.opts.PinnedSeq >= want {
		return w.fail(want, ReasonPinnedMissing), nil
	}
	w.rep.OK = true
	return &w.rep, nil
}

// isEntry reports whether e is the entry verified with hash h.
func (w *walk) isEntry(e *store.AuditEntry, h []byte) bool {
	sum := hashEntry(w.chain, e)
	return bytes.Equal(e.Hash, h) && bytes.Equal(sum[:], h)
}

func (w *walk) fail(at int64, reason string) *Report {
	w.rep.BrokenAt, w.rep.Reason = at, reason
	return &w.rep
}

// peek returns the next checkpoint to check, or nil if none remains.
func (w *walk) peek(ctx context.Context) (*store.AuditCheckpoint, error) {
	if len(w.cps) == 0 && !w.cpDone {
		page, err := w.s.ListAuditCheckpoints(ctx, w.cpAfter, pageSize)
		if err != nil {
			return nil, fmt.Errorf("list audit checkpoints after %d: %w", w.cpAfter, err)
		}
		after := w.cpAfter
		for _, c := range page {
			// A database cannot return these under ORDER BY seq; without
			// this check a broken store could make the walk loop.
			if c.Seq <= after || c.Seq < w.cpAfter {
				return nil, fmt.Errorf("list audit checkpoints after %d: store returned seq %d out of order", after, c.Seq)
			}
			w.cpAfter = c.Seq
		}
		w.cps, w.cpDone = page, len(page) == 0
	}
	if len(w.cps) == 0 {
		return nil, nil
	}
	return w.cps[0], nil
}

// checkSignature returns the reason c's signature fails, or "".
func (w *walk) checkSignature(c *store.AuditCheckpoint) string {
	pub, ok := w.log.keys[c.KeyID]
	if !ok {
		return ReasonCheckpointKey
	}
	if !ed25519.Verify(pub, CheckpointMessage(w.chain, c.Seq, c.Hash), c.Signature) {
		return ReasonCheckpointSignature
	}
	return ""
}
