// Package audit keeps each tenant's audit log: a hash chain of entries,
// appended in the same store transaction as the write they record, with a
// signed checkpoint every Config.CheckpointEvery entries, and a verifier that
// walks the chain and reports the first entry that fails.
//
// # Chain
//
// Entries of a tenant are numbered 1, 2, 3, … without gaps (Seq). Entry n
// stores PrevHash = Hash of entry n-1, and for entry 1 the genesis value: 32
// zero bytes. The tenant id is part of every hash, so the genesis value need
// not be tenant specific and entries cannot be moved to another tenant's
// chain.
//
// # Entry hash, version 1
//
// An outside verifier can recompute an entry's hash as SHA-256 over the
// concatenation of
//
//	str("bulkhead/audit/v1")   domain separation and version
//	str(chain)                 the tenant.ID (canonical UUID text), or "platform"
//	u64(Seq)
//	u64(Time)                  Unix time in microseconds
//	str(Actor)
//	str(Action)
//	str(Resource)
//	str(RequestID)
//	str(Outcome)
//	str(PrevHash)              raw bytes, 32 zero bytes for Seq 1
//
// where u64(n) is the int64 n in two's complement as 8 bytes big-endian and
// str(b) is u64(len(b)) followed by the bytes of b (strings as their UTF-8
// bytes). Every variable-length field carries its length, so no choice of
// field values can shift a boundary and collide with another entry. Time is
// truncated to microseconds before it is hashed and stored, because the
// stores keep microseconds; sub-microsecond digits and the time zone are not
// part of the hash.
//
// # Checkpoint signature, version 1
//
// A checkpoint at Seq n carries the Hash of entry n and an Ed25519 signature
// (RFC 8032, pure Ed25519, no pre-hash) over
//
//	str("bulkhead/audit-checkpoint/v1") str(tenant id) u64(Seq) str(Hash)
//
// with the same str and u64 as above. Its KeyID is keyring.KeyID of the public
// key: the first 8 bytes of SHA-256(public key), in lowercase hex. The
// checkpoint's Time is informational and not signed. The signing key lives
// outside the database (package keyring), so write access to the database
// alone cannot forge a checkpoint.
//
// Test vectors for both encodings, with their preimages in hex, are in
// testdata/vectors.json. They are checked by the tests, so the encodings
// cannot change silently; a change needs a new version tag.
//
// # What verification detects
//
// Log.Verify walks the whole chain in Seq order and stops at the first
// failure, reported as Report.BrokenAt and a short Reason:
//
//   - a changed field of an entry, including its stored Hash or PrevHash:
//     ReasonEntryHash at that entry;
//   - a changed entry whose Hash was recomputed to match: ReasonPrevHash at the
//     next entry, or ReasonCheckpointMismatch at the entry itself if a
//     checkpoint covers it;
//   - a deleted entry: ReasonSequenceGap at the missing Seq;
//   - entries whose Seq values were swapped: ReasonEntryHash at the lower Seq;
//   - a duplicated Seq: ReasonSequenceOrder;
//   - an entry chain of another tenant: ReasonEntryHash at Seq 1;
//   - a checkpoint signed by a key the Log does not know: ReasonCheckpointKey;
//   - a checkpoint whose signature does not verify (forged, or its Seq or Hash
//     edited): ReasonCheckpointSignature;
//   - a validly signed checkpoint whose Hash is not its entry's:
//     ReasonCheckpointMismatch;
//   - entries deleted from the end of the chain, up to or past a checkpoint:
//     ReasonCheckpointBeyondEnd at the first missing Seq.
//
// # What it cannot detect
//
// Hashes alone prove only that the chain is consistent, not that it is the
// chain that was written: whoever can write the database can rewrite or
// delete every entry after the last checkpoint and recompute the hashes. So
//
//   - entries after the last valid checkpoint can be deleted from the end, or
//     edited with recomputed hashes, without a trace;
//   - checkpoints can be deleted. Together with the previous point, deleting
//     the last checkpoints lets the tail behind them be truncated or
//     rewritten. VerifyOptions.RequireCheckpoints catches deleted checkpoints
//     where entries remain, if CheckpointEvery never changed for the chain;
//   - an entry can be recorded falsely in the first place: the log proves what
//     was appended, not that it is true.
//
// A verifier that keeps an earlier Report.Head with its Length closes the
// first two gaps up to that point: VerifyWith with VerifyOptions.PinnedSeq and
// PinnedHash fails if the chain no longer holds that hash at that Seq.
//
// # Stability
//
// The v1 encodings above are stable. The Go API (Config, Report, the Reason
// strings) may still change.
package audit
