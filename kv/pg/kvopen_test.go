package pgkv_test

import (
	"errors"
	"testing"

	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/kv/pg/pgtest"
)

// kv.Open takes a PostgreSQL URL: kv's schema is set up on it, a second
// exclusive writer is refused, and a reader opens beside the writer.
func TestKVOpenURL(t *testing.T) {
	url := pgtest.NewDatabase(t)
	if !kv.IsURL(url) {
		t.Fatalf("%s is not taken for a URL", url)
	}
	db, err := kv.Open(url, kv.Options{Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const d = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
	if err := db.Update(func(tx *kv.Tx) error { return tx.CreateBlob(d, kv.Blob{Size: 3, Created: 1}) }); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Open(url, kv.Options{Exclusive: true}); !errors.Is(err, kv.ErrLocked) {
		t.Fatalf("second exclusive kv.Open: %v, want ErrLocked", err)
	}
	ro, err := kv.Open(url, kv.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only kv.Open beside the writer: %v", err)
	}
	defer ro.Close()
	if err := ro.View(func(tx *kv.Tx) error {
		b, ok, err := tx.Blob(d)
		if err == nil && (!ok || b.Size != 3) {
			err = errors.New("the blob written by the writer is not read beside it")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if db.Size() <= 0 || db.Path() != "" {
		t.Fatalf("size %d, path %q", db.Size(), db.Path())
	}
}
