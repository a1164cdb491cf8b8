package ratelimit

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestTableMatchesMap drives the open-addressing table and a map with the
// same random inserts, updates and sweeps. Hashes are drawn from a tiny range
// so that probe runs collide, cluster and wrap around the end of the array,
// which is where backward-shift deletion can go wrong.
func TestTableMatchesMap(t *testing.T) {
	t.Parallel()
	for _, hashRange := range []int{1, 3, 16, 1 << 20} {
		t.Run(fmt.Sprint("HashRange", hashRange), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(uint64(hashRange), 9))
			var tab table
			type entry struct {
				h   uint64
				tat int64
			}
			ref := map[Key]entry{}
			hashes := map[Key]uint64{}
			keyOf := func(i int) Key {
				k := Key{Owner: fmt.Sprint("t", i%37), Actor: fmt.Sprint("a", i)}
				if _, ok := hashes[k]; !ok {
					// Homes among the first or the last hashRange slots of
					// any table size, so runs also wrap around the end.
					h := uint64(rng.IntN(hashRange))
					if rng.IntN(2) == 0 {
						h = 1<<30 - 1 - h
					}
					hashes[k] = h | uint64(rng.IntN(4))<<40
					if hashRange > 16 {
						hashes[k] = uint64(rng.Int64())
					}
				}
				return k
			}
			check := func(op int) {
				t.Helper()
				if tab.n != len(ref) {
					t.Fatalf("op %d: n = %d, want %d", op, tab.n, len(ref))
				}
				occupiedSlots := 0
				for _, s := range tab.slots {
					if s.hash != 0 {
						occupiedSlots++
					}
				}
				if occupiedSlots != len(ref) {
					t.Fatalf("op %d: %d occupied slots, want %d", op, occupiedSlots, len(ref))
				}
				for k, e := range ref {
					i := tab.find(e.h, k)
					if i < 0 || tab.slots[i].tat != e.tat {
						t.Fatalf("op %d: find(%+v) = %d, want its slot with TAT %d", op, k, i, e.tat)
					}
				}
			}
			now := int64(0)
			for op := range 20000 {
				switch r := rng.IntN(10); {
				case r < 6: // decide on some key: insert or update
					k := keyOf(rng.IntN(300))
					h := hashes[k]
					tat := now + rng.Int64N(100)
					if i := tab.find(h, k); i >= 0 {
						if _, ok := ref[k]; !ok {
							t.Fatalf("op %d: found %+v, which is absent", op, k)
						}
						tab.slots[i].tat = tat
					} else {
						if _, ok := ref[k]; ok {
							t.Fatalf("op %d: missed %+v, which is present", op, k)
						}
						tab.insert(h, k, tat)
					}
					ref[k] = entry{h, tat}
				case r < 9:
					now += rng.Int64N(20)
				default:
					tab.sweep(now)
					for k, e := range ref {
						if e.tat <= now {
							delete(ref, k)
						}
					}
				}
				if op%50 == 0 {
					check(op)
				}
			}
			check(-1)
			tab.sweep(now + 1000)
			if tab.n != 0 || tab.slots != nil {
				t.Errorf("after sweeping everything: n = %d, %d slots, want an empty, released table", tab.n, len(tab.slots))
			}
		})
	}
}

func TestTableShrinks(t *testing.T) {
	t.Parallel()
	var tab table
	for i := range 10000 {
		k := Key{Owner: fmt.Sprint(i)}
		tab.insert(tenantHash(k.Owner), k, int64(i))
	}
	big := len(tab.slots)
	tab.sweep(9989) // keeps TATs 9990..9999
	if tab.n != 10 || len(tab.slots) > 32 {
		t.Errorf("after a sweep keeping 10 of 10000: n = %d, %d slots (was %d), want 10 in at most 32", tab.n, len(tab.slots), big)
	}
	for i := 9990; i < 10000; i++ {
		k := Key{Owner: fmt.Sprint(i)}
		if tab.find(tenantHash(k.Owner), k) < 0 {
			t.Errorf("key %d lost by the shrink", i)
		}
	}
}
