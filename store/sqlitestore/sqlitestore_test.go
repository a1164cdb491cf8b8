package sqlitestore_test

import (
	"path/filepath"
	"testing"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/sqlitestore"
	"github.com/bulkheadhq/bulkhead/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlitestore.Open(filepath.Join(t.TempDir(), "bulkhead.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close = %v", err)
			}
		})
		return s
	}, storetest.Caps{})
}
