package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// codeError stands in for *sqlite.Error, whose fields the driver keeps to
// itself: interpretError looks only at Code.
type codeError int

func (e codeError) Error() string { return fmt.Sprintf("sqlite error (%d)", int(e)) }
func (e codeError) Code() int     { return int(e) }

func TestInterpretError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want error // nil: returned unchanged
	}{
		{"NoRows", sql.ErrNoRows, store.ErrNotFound},
		{"Unique", codeError(2067), store.ErrConflict},
		{"PrimaryKey", codeError(1555), store.ErrConflict},
		{"Full", codeError(13), store.ErrStorageFull},
		{"Busy", codeError(5), store.ErrUnavailable},
		{"BusySnapshot", codeError(5 | 2<<8), store.ErrUnavailable},
		{"Locked", codeError(6), store.ErrUnavailable},
		{"NoMem", codeError(7), store.ErrUnavailable},
		{"ReadOnly", codeError(8), store.ErrUnavailable},
		{"ReadOnlyDBMoved", codeError(8 | 4<<8), store.ErrUnavailable},
		{"IOErr", codeError(10), store.ErrUnavailable},
		{"IOErrFsync", codeError(10 | 4<<8), store.ErrUnavailable},
		{"CantOpen", codeError(14), store.ErrUnavailable},
		{"Protocol", codeError(15), store.ErrUnavailable},
		{"Wrapped", fmt.Errorf("commit batch: %w", codeError(13)), store.ErrStorageFull},
		{"ENOSPC", &fsError{syscall.ENOSPC}, store.ErrStorageFull},
		{"EDQUOT", &fsError{syscall.EDQUOT}, store.ErrStorageFull},
		{"EROFS", &fsError{syscall.EROFS}, store.ErrUnavailable},
		{"EIO", &fsError{syscall.EIO}, store.ErrUnavailable},
		{"Corrupt", codeError(11), nil},
		{"NotADB", codeError(26), nil},
		{"Error", codeError(1), nil},
		{"ConstraintCheck", codeError(275), nil},
		{"Interrupt", codeError(9), nil},
		{"Canceled", context.Canceled, nil},
		{"DeadlineExceeded", fmt.Errorf("x: %w", context.DeadlineExceeded), nil},
		{"Other", errors.New("other"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := interpretError(tc.err)
			if tc.want == nil {
				if got != tc.err {
					t.Errorf("interpretError(%v) = %v, want it unchanged", tc.err, got)
				}
				return
			}
			if !errors.Is(got, tc.want) {
				t.Errorf("interpretError(%v) = %v, want %v", tc.err, got, tc.want)
			}
			// Faults keep the driver's error in the chain, and are not
			// wrapped again.
			if tc.want == store.ErrStorageFull || tc.want == store.ErrUnavailable {
				if !errors.Is(got, tc.err) {
					t.Errorf("interpretError(%v) = %v, which lost the original error", tc.err, got)
				}
				if again := interpretError(got); again != got {
					t.Errorf("interpretError twice = %v, want %v", again, got)
				}
			}
			for _, other := range []error{store.ErrNotFound, store.ErrConflict, store.ErrStorageFull, store.ErrUnavailable} {
				if other != tc.want && errors.Is(got, other) {
					t.Errorf("interpretError(%v) = %v, which also matches %v", tc.err, got, other)
				}
			}
		})
	}
}

// fsError is an *os.PathError-like error from the file system.
type fsError struct{ errno syscall.Errno }

func (e *fsError) Error() string { return "open x: " + e.errno.Error() }
func (e *fsError) Unwrap() error { return e.errno }

// writerPragma runs pragma on the writer connection of tid's database file,
// outside any batch. The writer is idle between the test's transactions,
// and a *sql.Conn is safe for concurrent use anyway.
func (b *testBundle) writerPragma(t *testing.T, tid tenant.ID, pragma string) {
	t.Helper()
	if _, err := b.writer(t, tid).c.sc.ExecContext(b.ctx, "PRAGMA "+pragma); err != nil {
		t.Fatalf("PRAGMA %s: %v", pragma, err)
	}
}

// bigRec is a record of about 4 KiB, a page of its own.
func bigRec(id string) *store.Record {
	r := rec(id)
	r.Data = json.RawMessage(`{"pad":"` + strings.Repeat("x", 4000) + `"}`)
	return r
}

// When SQLite runs out of room, writes fail with ErrStorageFull and leave
// nothing behind, in a group commit too; reads go on; once there is room
// again the store works, and nothing acknowledged is lost. SQLite reports
// the full disk itself: max_page_count caps the file's size on the writer
// connection.
func TestStorageFull(t *testing.T) {
	t.Parallel()
	for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
		t.Run(string(iso), func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			tid := b.tenant(t, iso)
			var pages int64
			if err := b.writer(t, tid).c.sc.QueryRowContext(b.ctx, "PRAGMA page_count").Scan(&pages); err != nil {
				t.Fatal(err)
			}
			b.writerPragma(t, tid, fmt.Sprintf("max_page_count = %d", pages+8))

			write := func(r *store.Record) error {
				return b.s.InTenant(b.ctx, tid, func(tx store.Tx) error { return tx.CreateRecord(b.ctx, r) })
			}
			var acked, failed []string
			var full error
			for i := 0; full == nil; i++ {
				if i == 200 {
					t.Fatal("200 writes of 4 KiB fit in 8 pages")
				}
				id := fmt.Sprint("r", i)
				if err := write(bigRec(id)); err != nil {
					full = err
					failed = append(failed, id)
				} else {
					acked = append(acked, id)
				}
			}
			t.Logf("after %d writes: %v", len(acked), full)
			if !errors.Is(full, store.ErrStorageFull) || errors.Is(full, store.ErrUnavailable) {
				t.Fatalf("write to a full database = %v, want ErrStorageFull", full)
			}

			// A batch of writes into the full file: small ones may still
			// fit in a page with room, big ones cannot. Each either
			// commits or fails with ErrStorageFull.
			release := b.blockWriter(t, tid)
			ids := []string{"b0", "b1", "b2", "b3", "b4", "b5"}
			wait := b.enqueue(len(ids), func(i int) error {
				if i%2 == 0 {
					return write(rec(ids[i]))
				}
				return write(bigRec(ids[i]))
			})
			release()
			for i, err := range wait() {
				t.Logf("write %s in a batch into the full database: %v", ids[i], err)
				switch {
				case err == nil:
					acked = append(acked, ids[i])
				case errors.Is(err, store.ErrStorageFull):
					failed = append(failed, ids[i])
				default:
					t.Errorf("write %s in a batch into a full database = %v, want nil or ErrStorageFull", ids[i], err)
				}
			}
			checkRecords(t, b, tid, acked, failed)

			// Room again: the same store writes, and loses nothing.
			b.writerPragma(t, tid, "max_page_count = 1073741823")
			for _, id := range failed {
				if err := write(bigRec(id)); err != nil {
					t.Fatalf("write %s after making room = %v", id, err)
				}
			}
			checkRecords(t, b, tid, append(acked, failed...), nil)
		})
	}
}

// checkRecords checks that tid has exactly the records present (and
// nothing of absent), and that its usage counts them.
func checkRecords(t *testing.T, b *testBundle, tid tenant.ID, present, absent []string) {
	t.Helper()
	err := b.s.ReadTenant(b.ctx, tid, func(tx store.Tx) error {
		for _, id := range present {
			if _, err := tx.GetRecord(b.ctx, "c", store.RecordID(id)); err != nil {
				t.Errorf("acknowledged record %s: %v", id, err)
			}
		}
		for _, id := range absent {
			if _, err := tx.GetRecord(b.ctx, "c", store.RecordID(id)); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("record %s of a failed write: GetRecord = %v, want ErrNotFound", id, err)
			}
		}
		u, err := tx.Usage(b.ctx)
		if err != nil {
			return err
		}
		if u.Records != int64(len(present)) {
			t.Errorf("Usage.Records = %d, want %d", u.Records, len(present))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ReadTenant = %v", err)
	}
}

// A database SQLite cannot write (here: its writer connection is made
// query-only, which fails writes with SQLITE_READONLY as a read-only file
// would) fails writes with ErrUnavailable, and works again once writable.
func TestReadOnlyDatabase(t *testing.T) {
	t.Parallel()
	for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
		t.Run(string(iso), func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			tid := b.tenant(t, iso)
			write := func(id string) error {
				return b.s.InTenant(b.ctx, tid, func(tx store.Tx) error { return tx.CreateRecord(b.ctx, rec(id)) })
			}
			b.writerPragma(t, tid, "query_only = 1")
			err := write("ro")
			t.Logf("write to a read-only database: %v", err)
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("write to a read-only database = %v, want ErrUnavailable", err)
			}
			if err := b.s.Ping(b.ctx); err != nil {
				t.Errorf("Ping with a read-only writer = %v", err)
			}
			b.writerPragma(t, tid, "query_only = 0")
			if err := write("rw"); err != nil {
				t.Errorf("write once writable again = %v", err)
			}
			checkRecords(t, b, tid, []string{"rw"}, []string{"ro"})
		})
	}
}

// A group commit that fails as a whole (here: its BEGIN, on a database
// locked by another connection past the busy timeout) fails every request
// of the batch with ErrUnavailable.
func TestBusyBatch(t *testing.T) {
	t.Parallel()
	b := setup(t, &Options{BusyTimeout: 50 * time.Millisecond})
	tid := b.tenant(t, tenant.Pooled)
	other, err := sql.Open("sqlite", "file:"+b.path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.Conn(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(b.ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	wait := b.enqueue(3, func(i int) error {
		return b.s.InTenant(b.ctx, tid, func(tx store.Tx) error { return tx.CreateRecord(b.ctx, rec(fmt.Sprint(i))) })
	})
	for i, err := range wait() {
		if i == 0 {
			t.Logf("write while another connection holds the lock: %v", err)
		}
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("write %d while another connection holds the lock = %v, want ErrUnavailable", i, err)
		}
	}
	if _, err := lock.ExecContext(b.ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := b.s.InTenant(b.ctx, tid, func(tx store.Tx) error { return tx.CreateRecord(b.ctx, rec("after")) }); err != nil {
		t.Errorf("write after the lock is released = %v", err)
	}
}

// TestMaxFileSize: with MaxFileSize, a write that would grow a database
// file past it fails with ErrStorageFull and writes nothing, for the main
// file and a silo file alike; what was written before stays, and the file
// stays within the bound.
func TestMaxFileSize(t *testing.T) {
	t.Parallel()
	const max = 160 * pageSize
	dir := t.TempDir()
	s, err := Open(dir+"/bulkhead.db", &Options{MaxFileSize: max})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
		t.Run(string(iso), func(t *testing.T) {
			tn, err := s.CreateTenant(ctx, &store.CreateTenantParams{ID: tenant.ID(uuid.NewString()), Slug: tenant.Slug("t-" + string(iso)),
				Name: "t", Plan: tenant.DefaultPlan, Isolation: iso, CreatedAt: time.Now()}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = s.InTenant(ctx, tn.ID, func(tx store.Tx) error {
				_, err := tx.PutCollection(ctx, &store.Collection{Name: "c", CreatedAt: time.Now(), UpdatedAt: time.Now()})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			data := json.RawMessage(`{"x":"` + strings.Repeat("x", 8000) + `"}`)
			written := 0
			for i := 0; ; i++ {
				err := s.InTenant(ctx, tn.ID, func(tx store.Tx) error {
					return tx.CreateRecord(ctx, &store.Record{Collection: "c", ID: store.RecordID(fmt.Sprintf("r%03d", i)), Version: 1,
						Data: data, CreatedAt: time.Now(), UpdatedAt: time.Now()})
				})
				if errors.Is(err, store.ErrStorageFull) {
					break
				}
				if err != nil || i > 1000 {
					t.Fatalf("write %d = %v, want success or ErrStorageFull", i, err)
				}
				written++
			}
			err = s.ReadTenant(ctx, tn.ID, func(tx store.Tx) error {
				u, err := tx.Usage(ctx)
				if err == nil && u.Records != int64(written) {
					t.Errorf("after the full write, %d records, want the %d acknowledged", u.Records, written)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if written == 0 {
				t.Error("no write fit")
			}
		})
	}
}
