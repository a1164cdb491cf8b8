package sqlitestore

import (
	"context"
	"errors"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// The methods below are placeholders until declared indexes and the
// one-transaction key lookup land in this backend; they fail plainly.

var errPending = errors.New("sqlitestore: not implemented yet")

// BuildIndexes implements store.Store.
func (s *Store) BuildIndexes(ctx context.Context, tid tenant.ID, collection store.CollectionName) error {
	return errPending
}

// PendingIndexBuilds implements store.Store.
func (s *Store) PendingIndexBuilds(ctx context.Context) ([]store.IndexBuild, error) {
	return nil, errPending
}

func (t *tx) DeleteCollection(ctx context.Context, name store.CollectionName) error {
	return errPending
}
