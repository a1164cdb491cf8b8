package audit

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sort"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// fakeAuditTx is a unit-test fake of store.Tx holding one tenant's audit rows
// in memory. It implements only Tenant and the audit methods; every other
// method panics on the nil embedded store.Tx. Like a database it keeps times
// in UTC at microsecond precision and hands out copies, so tests tamper with
// its rows directly, as an attacker with database access would.
type fakeAuditTx struct {
	store.Tx

	tid         tenant.ID
	entries     []*store.AuditEntry      // in Seq order
	checkpoints []*store.AuditCheckpoint // in Seq order
	cut         *store.AuditCut          // the chain's start; nil for entry 1

	// failOn names a method that returns errFake instead of working.
	failOn string
}

var errFake = errors.New("fake store failure")

var _ store.Tx = (*fakeAuditTx)(nil)

func newFakeAuditTx(tid tenant.ID) *fakeAuditTx { return &fakeAuditTx{tid: tid} }

func (f *fakeAuditTx) Tenant() tenant.ID { return f.tid }

func (f *fakeAuditTx) AuditHead(ctx context.Context) (int64, []byte, error) {
	if f.failOn == "AuditHead" {
		return 0, nil, errFake
	}
	if len(f.entries) == 0 {
		return 0, nil, nil
	}
	last := f.entries[len(f.entries)-1]
	return last.Seq, slices.Clone(last.Hash), nil
}

func (f *fakeAuditTx) AppendAudit(ctx context.Context, e *store.AuditEntry) error {
	if f.failOn == "AppendAudit" {
		return errFake
	}
	i, found := slices.BinarySearchFunc(f.entries, e.Seq, func(e *store.AuditEntry, seq int64) int { return cmp.Compare(e.Seq, seq) })
	if found {
		return store.ErrConflict
	}
	stored := cloneEntry(e)
	stored.Time = stored.Time.UTC().Truncate(time.Microsecond)
	f.entries = slices.Insert(f.entries, i, stored)
	return nil
}

func (f *fakeAuditTx) ListAudit(ctx context.Context, after int64, limit int) ([]*store.AuditEntry, error) {
	if f.failOn == "ListAudit" {
		return nil, errFake
	}
	i := sort.Search(len(f.entries), func(i int) bool { return f.entries[i].Seq > after })
	var page []*store.AuditEntry
	for ; i < len(f.entries) && len(page) < limit; i++ {
		page = append(page, cloneEntry(f.entries[i]))
	}
	return page, nil
}

func (f *fakeAuditTx) PutAuditCheckpoint(ctx context.Context, c *store.AuditCheckpoint) error {
	if f.failOn == "PutAuditCheckpoint" {
		return errFake
	}
	stored := cloneCheckpoint(c)
	stored.Time = stored.Time.UTC().Truncate(time.Microsecond)
	f.checkpoints = append(f.checkpoints, stored)
	f.sortCheckpoints()
	return nil
}

func (f *fakeAuditTx) ListAuditCheckpoints(ctx context.Context, after int64, limit int) ([]*store.AuditCheckpoint, error) {
	if f.failOn == "ListAuditCheckpoints" {
		return nil, errFake
	}
	i := sort.Search(len(f.checkpoints), func(i int) bool { return f.checkpoints[i].Seq > after })
	var page []*store.AuditCheckpoint
	for ; i < len(f.checkpoints) && len(page) < limit; i++ {
		page = append(page, cloneCheckpoint(f.checkpoints[i]))
	}
	return page, nil
}

// clone returns a deep copy of f, to tamper with.
func (f *fakeAuditTx) clone() *fakeAuditTx {
	g := &fakeAuditTx{tid: f.tid, failOn: f.failOn, cut: f.cut}
	for _, e := range f.entries {
		g.entries = append(g.entries, cloneEntry(e))
	}
	for _, c := range f.checkpoints {
		g.checkpoints = append(g.checkpoints, cloneCheckpoint(c))
	}
	return g
}

// entry returns the stored row with seq, for tampering.
func (f *fakeAuditTx) entry(seq int64) *store.AuditEntry {
	for _, e := range f.entries {
		if e.Seq == seq {
			return e
		}
	}
	panic("fakeAuditTx: no entry with that seq")
}

// checkpoint returns the stored checkpoint with seq, for tampering.
func (f *fakeAuditTx) checkpoint(seq int64) *store.AuditCheckpoint {
	for _, c := range f.checkpoints {
		if c.Seq == seq {
			return c
		}
	}
	panic("fakeAuditTx: no checkpoint with that seq")
}

// deleteEntries deletes the rows with from <= Seq <= to.
func (f *fakeAuditTx) deleteEntries(from, to int64) {
	f.entries = slices.DeleteFunc(f.entries, func(e *store.AuditEntry) bool { return e.Seq >= from && e.Seq <= to })
}

// deleteCheckpoint deletes the checkpoint with seq.
func (f *fakeAuditTx) deleteCheckpoint(seq int64) {
	f.checkpoints = slices.DeleteFunc(f.checkpoints, func(c *store.AuditCheckpoint) bool { return c.Seq == seq })
}

// sortEntries restores Seq order after a test edits Seq values, as a
// database's ORDER BY would.
func (f *fakeAuditTx) sortEntries() {
	slices.SortStableFunc(f.entries, func(a, b *store.AuditEntry) int { return cmp.Compare(a.Seq, b.Seq) })
}

func (f *fakeAuditTx) sortCheckpoints() {
	slices.SortStableFunc(f.checkpoints, func(a, b *store.AuditCheckpoint) int { return cmp.Compare(a.Seq, b.Seq) })
}

func cloneEntry(e *store.AuditEntry) *store.AuditEntry {
	c := *e
	c.PrevHash = slices.Clone(e.PrevHash)
	c.Hash = slices.Clone(e.Hash)
	return &c
}

func cloneCheckpoint(c *store.AuditCheckpoint) *store.AuditCheckpoint {
	d := *c
	d.Hash = slices.Clone(c.Hash)
	d.Signature = slices.Clone(c.Signature)
	return &d
}
