package kv

import (
	"errors"
	"testing"
)

// migratedFrom makes a store of schema version from (the version 3
// fixture, marked so), checks that a read-only open refuses it, opens it
// writable (which migrates it to SchemaVersion) and checks that it answers
// what it did before. The caller goes on with the migrated store and
// what it answered (snapshotV3).
func migratedFrom(t *testing.T, from uint32) (*DB, string) {
	t.Helper()
	path := target(t)
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fillV3(t, db)
	want := snapshotV3(t, db)
	setVersion(t, db, from)
	db.Close()
	if _, err := Open(path, Options{ReadOnly: true}); !errors.Is(err, ErrSchemaTooOld) {
		t.Fatalf("read-only open of version %d: %v", from, err)
	}
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if v, err := db.SchemaVersion(); err != nil || v != SchemaVersion {
		t.Fatalf("version %d, %v; want %d", v, err, SchemaVersion)
	}
	if got := snapshotV3(t, db); got != want {
		t.Fatalf("after the migration:\n%s\nwant\n%s", got, want)
	}
	return db, want
}
