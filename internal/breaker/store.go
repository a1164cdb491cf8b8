package breaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// PingTimeout bounds each ping of a Store: past it the database counts as
// not answering.
const PingTimeout = 2 * time.Second

// DatabaseOutage reports whether err is a failure of the database itself:
// store.ErrUnavailable (unreachable, connection refused or reset, a connect
// or ping that timed out, restarting, out of memory or connections,
// read-only, an I/O error), but not the contention of one workload that
// the store reports the same way — a serialization failure or deadlock
// (PostgreSQL 40001, 40P01) or a lock held past the busy timeout (SQLite
// BUSY, LOCKED). Everything else — a constraint violation, a statement
// timeout, a record not found, a context ended by the client — is not.
func DatabaseOutage(err error) bool {
	if err == nil || !errors.Is(err, store.ErrUnavailable) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01") {
		return false
	}
	var coder interface{ Code() int } // *sqlite.Error
	if errors.As(err, &coder) {
		switch coder.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return false
		}
	}
	return true
}

// Store is a store.Store whose every call to the database goes through one
// Breaker: while it is open, transactions, lookups and pings fail at once
// with an error wrapping store.ErrUnavailable (and the *OpenError), which
// the API answers with 503 unavailable and Retry-After, without waiting for
// a connection. Only DatabaseOutage errors count against it.
type Store struct {
	store.Store
	b *Breaker
}

// NewStore wraps st in a breaker named name ("database") with settings s;
// s.Name and s.IsFailure are set by NewStore.
func NewStore(st store.Store, s Settings) *Store {
	s.IsFailure = DatabaseOutage
	return &Store{Store: st, b: New(s)}
}

// Breaker returns the store's breaker.
func (s *Store) Breaker() *Breaker { return s.b }

// Unwrap returns the wrapped store.
func (s *Store) Unwrap() store.Store { return s.Store }

func (s *Store) do(fn func() error) error {
	err := s.b.Do(fn)
	var open *OpenError
	if errors.As(err, &open) && !errors.Is(err, store.ErrUnavailable) {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// InTenant runs store.Store.InTenant through the breaker.
func (s *Store) InTenant(ctx context.Context, tid tenant.ID, fn func(tx store.Tx) error) error {
	return s.do(func() error { return s.Store.InTenant(ctx, tid, fn) })
}

// ReadTenant runs store.Store.ReadTenant through the breaker.
func (s *Store) ReadTenant(ctx context.Context, tid tenant.ID, fn func(tx store.Tx) error) error {
	return s.do(func() error { return s.Store.ReadTenant(ctx, tid, fn) })
}

// InPlatform runs store.Store.InPlatform through the breaker.
func (s *Store) InPlatform(ctx context.Context, fn func(tx store.PlatformTx) error) error {
	return s.do(func() error { return s.Store.InPlatform(ctx, fn) })
}

// ReadPlatform runs store.Store.ReadPlatform through the breaker.
func (s *Store) ReadPlatform(ctx context.Context, fn func(tx store.PlatformTx) error) error {
	return s.do(func() error { return s.Store.ReadPlatform(ctx, fn) })
}

// CreateTenant runs store.Store.CreateTenant through the breaker.
func (s *Store) CreateTenant(ctx context.Context, params *store.CreateTenantParams, initPlatform func(tx store.PlatformTx) error,
	initTenant func(tx store.Tx) error) (t *store.Tenant, err error) {
	err = s.do(func() (err error) {
		t, err = s.Store.CreateTenant(ctx, params, initPlatform, initTenant)
		return err
	})
	return t, err
}

// DeleteTenant runs store.Store.DeleteTenant through the breaker.
func (s *Store) DeleteTenant(ctx context.Context, tid tenant.ID, fn func(tx store.PlatformTx) error) error {
	return s.do(func() error { return s.Store.DeleteTenant(ctx, tid, fn) })
}

// LookupAPIKey runs store.Store.LookupAPIKey through the breaker.
func (s *Store) LookupAPIKey(ctx context.Context, tid tenant.ID, id store.APIKeyID) (k *store.KeyLookup, err error) {
	err = s.do(func() (err error) {
		k, err = s.Store.LookupAPIKey(ctx, tid, id)
		return err
	})
	return k, err
}

// BuildIndexes runs store.Store.BuildIndexes through the breaker.
func (s *Store) BuildIndexes(ctx context.Context, tid tenant.ID, col store.CollectionName) error {
	return s.do(func() error { return s.Store.BuildIndexes(ctx, tid, col) })
}

// PendingIndexBuilds runs store.Store.PendingIndexBuilds through the
// breaker.
func (s *Store) PendingIndexBuilds(ctx context.Context) (b []store.IndexBuild, err error) {
	err = s.do(func() (err error) {
		b, err = s.Store.PendingIndexBuilds(ctx)
		return err
	})
	return b, err
}

// Ping pings the database through the breaker, for at most PingTimeout: a
// ping that does not answer in time is a failure of the database
// (store.ErrUnavailable), unless ctx itself ended.
func (s *Store) Ping(ctx context.Context) error {
	return s.do(func() error {
		pctx, cancel := context.WithTimeout(ctx, PingTimeout)
		defer cancel()
		err := s.Store.Ping(pctx)
		if err != nil && ctx.Err() == nil && pctx.Err() != nil && !errors.Is(err, store.ErrUnavailable) {
			err = fmt.Errorf("%w: no answer to a ping within %v: %w", store.ErrUnavailable, PingTimeout, err)
		}
		return err
	})
}

// Probe pings the database every interval while the breaker is not closed,
// until ctx ends: an open breaker turns half-open once its Timeout has
// passed and the ping is its probe, so the breaker closes by itself soon
// after the database answers again, with or without traffic.
func (s *Store) Probe(ctx context.Context, interval time.Duration, log *slog.Logger) {
	s.b.ProbeWhileOpen(ctx, interval, func() {
		if err := s.Ping(ctx); err != nil && log != nil {
			var open *OpenError
			if !errors.As(err, &open) {
				log.Debug("database probe failed", "breaker", s.b.Name(), "err", err)
			}
		}
	})
}
