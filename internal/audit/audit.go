package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// Outcomes commonly recorded in Event.Outcome. Outcome is free-form; these
// keep the common ones spelled alike.
const (
	// Success is the outcome of an operation that took effect.
	Success = "success"
	// Denied is the outcome of an operation refused by access control.
	Denied = "denied"
	// Failure is the outcome of an operation attempted that did not take
	// effect for another reason, such as a wrong password.
	Failure = "failure"
)

const (
	// entryTag and checkpointTag separate the two hash domains and name the
	// encoding version.
	entryTag      = "bulkhead/audit/v1"
	checkpointTag = "bulkhead/audit-checkpoint/v1"

	// DefaultCheckpointEvery is Config.CheckpointEvery's default.
	DefaultCheckpointEvery = 100
)

// genesis is PrevHash of entry 1.
var genesis = make([]byte, sha256.Size)

// ErrNoSigningKey is returned by Append on a Log made without a signing key;
// such a Log can only verify.
var ErrNoSigningKey = errors.New("audit log has no signing key")

// Event is what happened, as the caller records it. Append turns it into an
// entry of the tenant's chain.
type Event struct {
	// Time is when it happened. The zero Time means Config.NowFunc(). It is
	// stored in UTC, truncated to microseconds.
	Time time.Time
	// Actor is who acted, such as tenant.Principal.Actor().
	Actor string
	// Action is what was done, such as "record.create".
	Action string
	// Resource is what it was done to, such as "record:notes/0192…".
	Resource string
	// RequestID is the request the event belongs to, if any.
	RequestID string
	// Outcome is how it ended, such as Success or Denied.
	Outcome string
}

// Config configures a Log. Every field is optional, but the zero Config makes
// a Log that cannot append and accepts no checkpoint: set SigningKey to
// append, and SigningKey or VerifyKeys to verify checkpoints.
type Config struct {
	// SigningKey signs checkpoints; its public key always verifies them. If
	// nil, the Log can only verify and Append returns ErrNoSigningKey.
	SigningKey ed25519.PrivateKey
	// VerifyKeys are further public keys accepted on checkpoints, such as the
	// keys that signed before the last rotation. Defaults to none.
	VerifyKeys []ed25519.PublicKey
	// CheckpointEvery is how many entries lie between checkpoints: a
	// checkpoint is written at every Seq that is a multiple of it. Defaults
	// to DefaultCheckpointEvery.
	CheckpointEvery int
	// NowFunc returns the current time, for events without a Time and for
	// checkpoints. Defaults to time.Now.
	NowFunc func() time.Time
}

// Log appends to and verifies tenants' audit chains. It holds no per-tenant
// state and is safe for concurrent use; appends to one tenant are serialized
// by the store (Tx.AuditHead holds the tenant's head).
type Log struct {
	signer  ed25519.PrivateKey
	signID  string
	keys    map[string]ed25519.PublicKey // by keyring.KeyID
	every   int64
	nowFunc func() time.Time
}

// New returns a Log configured by cfg. It panics if cfg is invalid: a key of
// the wrong length or a negative CheckpointEvery. Keys from keyring.Load are
// always valid.
func New(cfg Config) *Log {
	l := &Log{
		keys:    make(map[string]ed25519.PublicKey, len(cfg.VerifyKeys)+1),
		every:   DefaultCheckpointEvery,
		nowFunc: cfg.NowFunc,
	}
	if cfg.CheckpointEvery < 0 {
		panic(fmt.Sprintf("audit: CheckpointEvery must be >= 0, got %d", cfg.CheckpointEvery))
	}
	if cfg.CheckpointEvery > 0 {
		l.every = int64(cfg.CheckpointEvery)
	}
	if l.nowFunc == nil {
		l.nowFunc = time.Now
	}
	for i, pub := range cfg.VerifyKeys {
		if len(pub) != ed25519.PublicKeySize {
			panic(fmt.Sprintf("audit: VerifyKeys[%d] has %d bytes, want %d", i, len(pub), ed25519.PublicKeySize))
		}
		l.keys[keyring.KeyID(pub)] = pub
	}
	if cfg.SigningKey != nil {
		if len(cfg.SigningKey) != ed25519.PrivateKeySize {
			panic(fmt.Sprintf("audit: SigningKey has %d bytes, want %d", len(cfg.SigningKey), ed25519.PrivateKeySize))
		}
		pub := cfg.SigningKey.Public().(ed25519.PublicKey)
		l.signer = cfg.SigningKey
		l.signID = keyring.KeyID(pub)
		l.keys[l.signID] = pub
	}
	return l
}

// Append records ev as the next entry of the chain named chain (a tenant's
// id, or a name such as "platform" for a chain that is no tenant's) stored
// in s and, when the new Seq is a multiple of Config.CheckpointEvery, a
// signed checkpoint of it, both in s's transaction. It returns the entry as stored. Invalid UTF-8 and NUL bytes in ev's
// strings are replaced by U+FFFD, so that every backend stores them byte for
// byte. Store errors are returned wrapped; the caller should then roll back
// tx, since the write it audits must not commit without its entry.
func (l *Log) Append(ctx context.Context, s store.AuditLog, chain Chain, ev Event) (*store.AuditEntry, error) {
	if l.signer == nil {
		return nil, ErrNoSigningKey
	}
	if !chain.valid() {
		return nil, errors.New("append audit entry: no chain name")
	}
	head, headHash, err := s.AuditHead(ctx)
	if err != nil {
		return nil, fmt.Errorf("read audit head: %w", err)
	}
	prev := genesis
	if head > 0 {
		prev = headHash
	}
	t := ev.Time
	if t.IsZero() {
		t = l.nowFunc()
	}
	e := &store.AuditEntry{
		Seq:       head + 1,
		Time:      t.UTC().Truncate(time.Microsecond),
		Actor:     clean(ev.Actor),
		Action:    clean(ev.Action),
		Resource:  clean(ev.Resource),
		RequestID: clean(ev.RequestID),
		Outcome:   clean(ev.Outcome),
		PrevHash:  append([]byte(nil), prev...),
	}
	e.Hash = Hash(chain, e)
	if err := s.AppendAudit(ctx, e); err != nil {
		return nil, fmt.Errorf("append audit entry %d: %w", e.Seq, err)
	}
	if e.Seq%l.every == 0 {
		c := &store.AuditCheckpoint{
			Seq:       e.Seq,
			Hash:      e.Hash,
			KeyID:     l.signID,
			Signature: ed25519.Sign(l.signer, CheckpointMessage(chain, e.Seq, e.Hash)),
			Time:      l.nowFunc().UTC().Truncate(time.Microsecond),
		}
		if err := s.PutAuditCheckpoint(ctx, c); err != nil {
			return nil, fmt.Errorf("put audit checkpoint %d: %w", e.Seq, err)
		}
	}
	return e, nil
}

// clean makes s safe to store unchanged in every backend: PostgreSQL text
// holds neither invalid UTF-8 nor NUL, and a backend that altered a string
// would break the entry's hash.
func clean(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// Hash returns the SHA-256 hash of e in the named chain, as described in the
// package documentation. It reads every field of e except e.Hash.
func Hash(chain Chain, e *store.AuditEntry) []byte {
	sum := hashEntry(chain, e)
	return sum[:]
}

// hashEntry is Hash without the allocation of its result.
func hashEntry(chain Chain, e *store.AuditEntry) [sha256.Size]byte {
	var buf [512]byte // typical entries fit; longer ones grow it
	return sha256.Sum256(entryPreimage(buf[:0], chain, e))
}

// entryPreimage appends the v1 encoding of e to b.
func entryPreimage(b []byte, chain Chain, e *store.AuditEntry) []byte {
	b = appendString(b, entryTag)
	b = appendString(b, chain.name)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixMicro()))
	b = appendString(b, e.Actor)
	b = appendString(b, e.Action)
	b = appendString(b, e.Resource)
	b = appendString(b, e.RequestID)
	b = appendString(b, e.Outcome)
	b = appendBytes(b, e.PrevHash)
	return b
}

// CheckpointMessage returns the bytes a checkpoint's Ed25519 signature is
// made over, as described in the package documentation.
func CheckpointMessage(chain Chain, seq int64, hash []byte) []byte {
	b := make([]byte, 0, 8+len(checkpointTag)+8+len(chain.name)+8+8+len(hash))
	b = appendString(b, checkpointTag)
	b = appendString(b, chain.name)
	b = binary.BigEndian.AppendUint64(b, uint64(seq))
	return appendBytes(b, hash)
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, p []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(p)))
	return append(b, p...)
}

// Chain names an audit chain: a tenant's (TenantChain) or the platform's.
// Its text is part of every entry's hash, so that an entry cannot be moved
// into another chain.
type Chain struct{ name string }

// PlatformChain is the platform's own chain, which records what the
// operator does to tenants and plans.
var PlatformChain = Chain{name: "platform"}

// TenantChain names tenant id's chain by the tenant's ID.
func TenantChain(id tenant.ID) Chain { return Chain{name: string(id)} }

func (c Chain) valid() bool { return c.name != "" }

// String returns the chain's name: the tenant's ID, or "platform".
func (c Chain) String() string { return c.name }
