package pgstore

import (
	"context"
	"errors"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// The method below is a placeholder until the one-transaction key lookup
// lands in this backend; it fails plainly.

var errPending = errors.New("pgstore: not implemented yet")

// LookupAPIKey implements store.Store.
func (s *Store) LookupAPIKey(ctx context.Context, tid tenant.ID, id store.APIKeyID) (*store.KeyLookup, error) {
	return nil, errPending
}
