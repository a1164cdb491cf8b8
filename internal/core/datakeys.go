package core

import (
	"context"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"sync"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/changefeed"
	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// ErrKeysUnavailable means the tenant's data keys cannot be had now: the
// platform KEK is missing or corrupt, or the KMS cannot be reached. Nothing
// is sealed, opened, or answered in clear in their absence; operations that
// need no key go on.
var ErrKeysUnavailable = errors.New("encryption keys unavailable")

// ErrSealBroken means a sealed value does not open under the tenant's keys:
// it was altered, or copied from another record, field or tenant.
var ErrSealBroken = errors.New("a sealed value does not open")

// dataKeys seals and opens a tenant's secrets under its data key. aad binds
// a sealed value to where it belongs (tenant, collection, record, field, or
// the purpose of a secret): opening it with other aad fails.
type dataKeys interface {
	Seal(aad, plaintext []byte) ([]byte, error)
	Open(aad, sealed []byte) ([]byte, error)
}

// tenantKeys returns tid's data keys, creating them on first use. It may
// read and write the store, so callers get the keys before they open a
// transaction, never inside one. It returns an error wrapping
// ErrKeysUnavailable when the KMS cannot serve.
func (c *Core) tenantKeys(ctx context.Context, tid tenant.ID) (dataKeys, error) {
	return c.keySet(ctx, tid)
}

// keySet is a tenant's unwrapped keys, as this node caches them: every
// data key version still able to open (active, retiring, and retired ones
// whose material is kept for replays), and the blind-index key. It is
// immutable once made and safe for concurrent use.
type keySet struct {
	tid    tenant.ID
	active int
	data   map[int][]byte
	aeads  map[int]cipher.AEAD // of data, made once: the key schedule is not free
	index  []byte
	macs   sync.Pool // of HMAC-SHA-256 under index
	core   *Core
	loaded time.Time
}

// Sealed values are sealVersion1 | DEK version (4 bytes, big-endian) |
// nonce | ciphertext | tag; the version is bound in the associated data too.
const (
	sealVersion1 = 0x01
	sealHead     = 5
	nonceSize    = 12
	tagSize      = 16
)

// Seal seals plaintext under the active data key.
func (k *keySet) Seal(aad, plaintext []byte) ([]byte, error) {
	return k.sealAD(append(make([]byte, sealHead, sealHead+len(aad)), aad...), plaintext)
}

// sealAD is Seal with the associated data given after sealHead bytes of
// room for the header, which it fills in.
func (k *keySet) sealAD(ad, plaintext []byte) ([]byte, error) {
	g := k.aeads[k.active]
	if g == nil {
		return nil, keysUnavailable(k.tid, errors.New("no active data key"))
	}
	out := make([]byte, sealHead+nonceSize, sealHead+nonceSize+len(plaintext)+tagSize)
	out[0] = sealVersion1
	binary.BigEndian.PutUint32(out[1:sealHead], uint32(k.active))
	if _, err := rand.Read(out[sealHead:]); err != nil {
		return nil, err
	}
	copy(ad, out[:sealHead])
	return g.Seal(out, out[sealHead:], plaintext, ad), nil
}

// Open opens what Seal sealed under any version the tenant still has. A
// version this node does not know (another node rotated) is looked up
// once more in the store.
func (k *keySet) Open(aad, sealed []byte) ([]byte, error) {
	return k.openAD(nil, append(make([]byte, sealHead, sealHead+len(aad)), aad...), sealed)
}

// openAD is Open appending the plaintext to dst, with the associated data
// given after sealHead bytes of room for the header, which it fills in.
func (k *keySet) openAD(dst, ad, sealed []byte) ([]byte, error) {
	v, ok := sealedVersion(sealed)
	if !ok || len(sealed) < sealHead+nonceSize+tagSize {
		return nil, ErrSealBroken
	}
	g := k.aeads[v]
	if g == nil && k.core != nil {
		k.core.forgetKeys(k.tid)
		fresh, err := k.core.keySet(context.Background(), k.tid)
		if err != nil {
			return nil, err
		}
		g = fresh.aeads[v]
	}
	if g == nil {
		return nil, fmt.Errorf("data key version %d: %w", v, ErrSealBroken)
	}
	copy(ad, sealed[:sealHead])
	pt, err := g.Open(dst, sealed[sealHead:sealHead+nonceSize], sealed[sealHead+nonceSize:], ad)
	if err != nil {
		return nil, ErrSealBroken
	}
	return pt, nil
}

// sealedVersion returns the data key version a sealed value names.
func sealedVersion(sealed []byte) (int, bool) {
	if len(sealed) < sealHead || sealed[0] != sealVersion1 {
		return 0, false
	}
	return int(binary.BigEndian.Uint32(sealed[1:sealHead])), true
}

// blindTo appends the keyed blind index of msg to dst: HMAC-SHA-256 under
// the tenant's index key, which never changes with data key rotation.
func (k *keySet) blindTo(dst, msg []byte) []byte {
	m, _ := k.macs.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, k.index)
	}
	m.Write(msg)
	dst = m.Sum(dst)
	m.Reset()
	k.macs.Put(m)
	return dst
}

// keyCache holds each tenant's unwrapped keys on this node.
type keyCache struct {
	mu   sync.Mutex
	sets map[tenant.ID]*keySet
	gen  uint64
}

// wrapAAD binds a wrapped key to its tenant, purpose and version: a
// wrapped key row moved to another tenant or version does not unwrap.
func wrapAAD(tid tenant.ID, purpose store.KeyPurpose, version int) []byte {
	return []byte("bulkhead data key\x00" + string(tid) + "\x00" + string(purpose) + "\x00" + strconv.Itoa(version))
}

// DataKeyAAD is the additional data a tenant's data key is wrapped with:
// what a KMS's Unwrap of a stored store.DataKey needs (backups check with
// it that the keys at hand open their data).
func DataKeyAAD(k *store.DataKey) []byte { return wrapAAD(k.Tenant, k.Purpose, k.Version) }

// keysUnavailable wraps a KMS failure as ErrKeysUnavailable.
func keysUnavailable(tid tenant.ID, err error) error {
	return fmt.Errorf("%w: tenant %s: %w", ErrKeysUnavailable, tid, err)
}

// keySet returns tid's keys from the cache, or unwraps them from the
// store's rows, creating the first ones if the tenant has none.
func (c *Core) keySet(ctx context.Context, tid tenant.ID) (*keySet, error) {
	c.deks.mu.Lock()
	ks, ok := c.deks.sets[tid]
	gen := c.deks.gen
	c.deks.mu.Unlock()
	// Like the node's other caches: kept while the change feed is live
	// (which drops it when the keys change), for CacheTTL otherwise, so
	// that a node that missed a rotation seals under the old version for
	// a moment at most.
	if ok && c.now().Sub(ks.loaded) <= c.maxAge() {
		return ks, nil
	}
	if c.kms == nil {
		return nil, keysUnavailable(tid, errors.New("no key management service is configured"))
	}
	var rows []*store.DataKey
	err := c.store.ReadPlatform(ctx, func(tx store.PlatformTx) (err error) {
		rows, err = tx.ListDataKeys(ctx, tid)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		if rows, err = c.createKeys(ctx, tid); err != nil {
			return nil, err
		}
	}
	c.eraseRetired(tid, rows)
	ks = &keySet{tid: tid, data: map[int][]byte{}, aeads: map[int]cipher.AEAD{}, core: c, loaded: c.now()}
	for _, r := range rows {
		if r.Wrapped == nil {
			continue // retired and erased
		}
		key, err := c.kms.Unwrap(ctx, tid, r.Wrapped, wrapAAD(tid, r.Purpose, r.Version))
		if err != nil {
			return nil, keysUnavailable(tid, err)
		}
		switch r.Purpose {
		case store.PurposeIndex:
			ks.index = key
		case store.PurposeData:
			ks.data[r.Version] = key
			if ks.aeads[r.Version], err = keyring.AEAD(key); err != nil {
				return nil, keysUnavailable(tid, err)
			}
			if r.State == store.KeyActive {
				ks.active = r.Version
			}
		}
	}
	if ks.active == 0 || ks.index == nil {
		return nil, keysUnavailable(tid, errors.New("the tenant's key rows are incomplete"))
	}
	c.deks.mu.Lock()
	if c.deks.gen == gen {
		c.deks.sets[tid] = ks
	}
	c.deks.mu.Unlock()
	return ks, nil
}

// createKeys makes tid's key in the KMS and its first data key and
// blind-index key, and stores them wrapped. If another node created them
// meanwhile, it returns those.
func (c *Core) createKeys(ctx context.Context, tid tenant.ID) ([]*store.DataKey, error) {
	if err := c.kms.CreateKey(ctx, tid); err != nil {
		return nil, keysUnavailable(tid, err)
	}
	now := c.now()
	var rows []*store.DataKey
	for _, p := range []store.KeyPurpose{store.PurposeData, store.PurposeIndex} {
		w, err := c.kms.Wrap(ctx, tid, keyring.NewKey(), wrapAAD(tid, p, 1))
		if err != nil {
			return nil, keysUnavailable(tid, err)
		}
		rows = append(rows, &store.DataKey{Tenant: tid, Purpose: p, Version: 1, State: store.KeyActive, Wrapped: w,
			CreatedAt: now, UpdatedAt: now})
	}
	err := c.store.InPlatform(ctx, func(tx store.PlatformTx) error {
		for _, r := range rows {
			if err := tx.CreateDataKey(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, store.ErrConflict) {
		err = c.store.ReadPlatform(ctx, func(tx store.PlatformTx) (err error) {
			rows, err = tx.ListDataKeys(ctx, tid)
			return err
		})
	}
	return rows, err
}

// forgetKeys drops tid's keys from this node's cache.
func (c *Core) forgetKeys(tid tenant.ID) {
	c.deks.mu.Lock()
	if tid == "" {
		clear(c.deks.sets)
	} else {
		delete(c.deks.sets, tid)
	}
	c.deks.gen++
	c.deks.mu.Unlock()
}

// announceKeys drops tid's keys from every node's cache.
func (c *Core) announceKeys(tid tenant.ID) {
	c.announce(changefeed.Event{Kind: changefeed.KindDataKeys, Tenant: tid})
}

// retiredKeyLife is how long a retired data key's material is kept: long
// enough to open the idempotent responses sealed under it.
const retiredKeyLife = IdempotencyTTL + time.Hour
