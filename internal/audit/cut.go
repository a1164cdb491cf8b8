package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
)

// cutTag separates the cut signature's domain from the checkpoints': a
// checkpoint, which the log signs every CheckpointEvery entries, can never
// pass for a cut, which only retention makes.
const cutTag = "bulkhead/audit-cut/v1"

// Reasons a Report gives for a chain whose signed start (a cut) fails.
const (
	// ReasonCutSignature: the chain's start (a cut) has a signature that
	// does not verify, or names a key the Log does not accept. Entries
	// before it were removed without the signing key's consent.
	ReasonCutSignature = "chain start signature invalid"
	// ReasonCutMismatch: the first entry kept is not the one the signed
	// start names.
	ReasonCutMismatch = "entry does not match chain start"
)

// starter is the part of a tenant's Tx that knows where its chain starts.
type starter interface {
	AuditStart(ctx context.Context) (*store.AuditCut, error)
}

// CutMessage returns the bytes a cut's Ed25519 signature is made over:
//
//	str("bulkhead/audit-cut/v1") str(chain) u64(Seq) str(Hash)
//
// with str and u64 as in the package documentation.
func CutMessage(chain Chain, seq int64, hash []byte) []byte {
	b := make([]byte, 0, 8+len(cutTag)+8+len(chain.name)+8+8+len(hash))
	b = appendString(b, cutTag)
	b = appendString(b, chain.name)
	b = binary.BigEndian.AppendUint64(b, uint64(seq))
	return appendBytes(b, hash)
}

// Checkpoint signs a checkpoint of entry e of chain and stores it in s,
// unless one with e's hash is stored already. Retention calls it to make
// the entry it cuts at a checkpoint.
func (l *Log) Checkpoint(ctx context.Context, s store.AuditLog, chain Chain, e *store.AuditEntry) error {
	if l.signer == nil {
		return ErrNoSigningKey
	}
	cps, err := s.ListAuditCheckpoints(ctx, e.Seq-1, 1)
	if err != nil {
		return fmt.Errorf("list audit checkpoints after %d: %w", e.Seq-1, err)
	}
	if len(cps) == 1 && cps[0].Seq == e.Seq {
		if !bytes.Equal(cps[0].Hash, e.Hash) {
			return fmt.Errorf("audit checkpoint %d does not match its entry", e.Seq)
		}
		return nil
	}
	c := &store.AuditCheckpoint{
		Seq:       e.Seq,
		Hash:      append([]byte(nil), e.Hash...),
		KeyID:     l.signID,
		Signature: ed25519.Sign(l.signer, CheckpointMessage(chain, e.Seq, e.Hash)),
		Time:      l.nowFunc().UTC().Truncate(time.Microsecond),
	}
	if err := s.PutAuditCheckpoint(ctx, c); err != nil {
		return fmt.Errorf("put audit checkpoint %d: %w", e.Seq, err)
	}
	return nil
}

// Cut returns the signed start of chain at entry e: what
// store.RetentionTx.CutAudit records before it removes the entries below
// e. The caller must have verified the chain up to e, and made e a
// checkpoint (Checkpoint): the signature vouches for e's hash.
func (l *Log) Cut(chain Chain, e *store.AuditEntry) (*store.AuditCut, error) {
	if l.signer == nil {
		return nil, ErrNoSigningKey
	}
	return &store.AuditCut{
		Seq:       e.Seq,
		Hash:      append([]byte(nil), e.Hash...),
		KeyID:     l.signID,
		Signature: ed25519.Sign(l.signer, CutMessage(chain, e.Seq, e.Hash)),
		Time:      l.nowFunc().UTC().Truncate(time.Microsecond),
	}, nil
}

// start returns the chain's signed start, or nil if it starts at entry 1.
func (w *walk) start(ctx context.Context) (*store.AuditCut, error) {
	st, ok := w.s.(starter)
	if !ok {
		return nil, nil
	}
	c, err := st.AuditStart(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read audit chain start: %w", err)
	}
	return c, nil
}

// cutValid reports whether c's signature verifies under a key the Log
// accepts.
func (w *walk) cutValid(c *store.AuditCut) bool {
	pub, ok := w.log.keys[c.KeyID]
	return ok && c.Seq >= 1 && ed25519.Verify(pub, CutMessage(w.chain, c.Seq, c.Hash), c.Signature)
}
