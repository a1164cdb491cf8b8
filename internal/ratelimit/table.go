package ratelimit

import (
	"hash/maphash"
	"math/bits"
	"strings"
)

// table is one shard's buckets: an open-addressing hash table with linear
// probing, holding each bucket's TAT inline next to its key and hash. It
// replaces a map[Key]int64 because the hot path then hashes the key once
// (the shard already needs the tenant's hash), probes once, and updates the
// TAT in place, where the map hashes the two-string key again for the lookup
// and again for the store. Not safe for concurrent use: the shard's mutex
// guards it.
type table struct {
	slots []slot // len is 0 or a power of two
	n     int    // occupied slots
}

type slot struct {
	hash uint64 // the key's hash with occupied set; 0 when empty
	tat  int64
	key  Key
}

// occupied marks a slot in use. Indexes come from a hash's low bits, so
// setting the top bit changes no index.
const occupied = 1 << 63

// minSlots is the smallest table allocated.
const minSlots = 8

var hashSeed = maphash.MakeSeed()

// tenantHash hashes a tenant ID. Its top 6 bits choose the shard (see
// shardOf); its low bits index the shard's table.
func tenantHash(owner string) uint64 { return maphash.String(hashSeed, owner) }

// keyHash returns the hash of Key{Owner: t, Actor: actor} given th =
// tenantHash(t). A tenant's own bucket (actor "") hashes as the tenant.
func keyHash(th uint64, actor string) uint64 {
	if actor == "" {
		return th
	}
	return th ^ bits.RotateLeft64(maphash.String(hashSeed, actor), 29)
}

// find returns the index of key's slot, or -1 if key is absent.
func (t *table) find(h uint64, key Key) int {
	if t.n == 0 {
		return -1
	}
	h |= occupied
	mask := len(t.slots) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.hash == h && s.key == key {
			return i
		}
		if s.hash == 0 {
			return -1
		}
	}
}

// insert adds key, which must be absent, with its TAT. It copies the key's
// strings, so the table never pins a caller's larger buffer (such as a
// request's token) in memory. It grows the table past 3/4 full.
func (t *table) insert(h uint64, key Key, tat int64) {
	if 4*(t.n+1) > 3*len(t.slots) {
		t.resize(max(minSlots, 2*len(t.slots)))
	}
	key = Key{Owner: strings.Clone(key.Owner), Actor: strings.Clone(key.Actor)}
	t.place(slot{hash: h | occupied, tat: tat, key: key})
	t.n++
}

func (t *table) place(s slot) {
	mask := len(t.slots) - 1
	i := int(s.hash) & mask
	for t.slots[i].hash != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = s
}

func (t *table) resize(size int) {
	old := t.slots
	t.slots = make([]slot, size)
	for _, s := range old {
		if s.hash != 0 {
			t.place(s)
		}
	}
}

// deleteAt empties slot i and shifts later slots of its probe run back
// (Knuth's algorithm R), so lookups need no tombstones.
func (t *table) deleteAt(i int) {
	mask := len(t.slots) - 1
	for j := (i + 1) & mask; t.slots[j].hash != 0; j = (j + 1) & mask {
		home := int(t.slots[j].hash) & mask
		// The entry at j may move to i unless its home lies cyclically in
		// (i, j]: then i is before its home and a lookup would miss it.
		var stays bool
		if i < j {
			stays = i < home && home <= j
		} else {
			stays = i < home || home <= j
		}
		if !stays {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = slot{}
	t.n--
}

// sweep deletes every bucket whose TAT is at or before now: such a bucket is
// full again and decides exactly as an absent one. A table left under 1/8
// full shrinks, so memory follows the live buckets, not the peak.
func (t *table) sweep(now int64) {
	for i := 0; i < len(t.slots); i++ {
		// deleteAt may shift a later entry into i: look at i again. An entry
		// shifted from the start of the array to its end is merely seen
		// twice.
		for t.slots[i].hash != 0 && t.slots[i].tat <= now {
			t.deleteAt(i)
		}
	}
	if len(t.slots) > minSlots && 8*t.n < len(t.slots) {
		if t.n == 0 {
			t.slots = nil
			return
		}
		t.resize(max(minSlots, 1<<bits.Len(uint(2*t.n))))
	}
}
