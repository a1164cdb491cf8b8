package fairq

import "time"

// heapItem is an element of a timeHeap: it knows its key and its index.
type heapItem interface {
	heapKey() time.Time
	heapIndex() *int // -1 when not in a heap
}

// timeHeap is a binary min-heap by heapKey that keeps each item's index, so
// items can be removed or moved in O(log n).
type timeHeap[T heapItem] []T

// waiterHeap orders queued waiters by deadline.
type waiterHeap = timeHeap[*waiter]

// lingerHeap orders idle tenants kept for their breaker by forgetAt.
type lingerHeap = timeHeap[*tenantState]

func (w *waiter) heapKey() time.Time      { return w.deadline }
func (w *waiter) heapIndex() *int         { return &w.heapIdx }
func (t *tenantState) heapKey() time.Time { return t.forgetAt }
func (t *tenantState) heapIndex() *int    { return &t.lingerIdx }

func (h timeHeap[T]) less(i, j int) bool { return h[i].heapKey().Before(h[j].heapKey()) }

func (h timeHeap[T]) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	*h[i].heapIndex() = i
	*h[j].heapIndex() = j
}

// set adds x, or restores the order after x's key changed.
func (h *timeHeap[T]) set(x T) {
	i := *x.heapIndex()
	if i < 0 {
		i = len(*h)
		*x.heapIndex() = i
		*h = append(*h, x)
	}
	h.fix(i)
}

func (h *timeHeap[T]) remove(x T) {
	i := *x.heapIndex()
	last := len(*h) - 1
	if i != last {
		h.swap(i, last)
	}
	var zero T
	(*h)[last] = zero
	*h = (*h)[:last]
	if i != last {
		h.fix(i)
	}
	*x.heapIndex() = -1
}

func (h timeHeap[T]) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

func (h timeHeap[T]) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

// down sifts i down and reports whether it moved.
func (h timeHeap[T]) down(i int) bool {
	i0 := i
	for {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		m := l
		if r := l + 1; r < len(h) && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			break
		}
		h.swap(i, m)
		i = m
	}
	return i > i0
}
