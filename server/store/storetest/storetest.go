// Package storetest opens real stores for tests: a bbolt file in the
// test's temporary directory, closed when the test ends.
package storetest

import (
	"path/filepath"
	"testing"

	"relais/server/store"
)

// Open opens a fresh store for t, closed at the end of t.
func Open(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "relais.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
