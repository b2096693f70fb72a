package kv

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
)

// A version 4 store's pins (one per object) open as version 5 pins of the
// empty client, with their ends and expiry entries kept, in transactions of
// flattenBatch keys; a pin converted before a crash is not converted twice.
// Pins of several clients of one object are then read by one range read,
// and one client's pin is deleted without the others'.
func TestMigratePinClientsV5(t *testing.T) {
	defer func(n int) { flattenBatch = n }(flattenBatch)
	flattenBatch = 1
	path := filepath.Join(t.TempDir(), "kvreg.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fillV3(t, db)
	want := snapshotV3(t, db)
	v4 := func(kind LeaseKind, repo, digest string) []byte {
		return append([]byte{byte(kind)}, repoKey(repo, digest)...)
	}
	v4Expiry := func(until int64, k []byte) []byte {
		e := make([]byte, 8)
		putU64(e, uint64(until))
		return append(e, k...)
	}
	u := func(until int64) []byte { v := make([]byte, 8); putU64(v, uint64(until)); return v }
	err = db.Update(func(tx *Tx) error {
		for _, p := range []struct {
			kind    LeaseKind
			repo, d string
			until   int64
		}{{LeaseLink, "team/a", "sha256:a", 30}, {LeaseManifest, "team/a", "sha256:a", 20}, {LeaseLink, "team/b", "sha256:b", 40}} {
			k := v4(p.kind, p.repo, p.d)
			if err := tx.b.Put(tablePins, k, u(p.until)); err != nil {
				return err
			}
			if err := tx.b.Put(tablePinExpiry, v4Expiry(p.until, k), []byte{}); err != nil {
				return err
			}
		}
		// Converted before a crash: a version 5 key among version 4 ones.
		if err := tx.b.Put(tablePins, pinKey(LeaseLink, "team/c", "sha256:c", ""), u(50)); err != nil {
			return err
		}
		if err := tx.b.Put(tablePinExpiry, pinExpiryKey(Pin{Kind: LeaseLink, Repo: "team/c", Digest: "sha256:c", Until: 50}), []byte{}); err != nil {
			return err
		}
		return tx.b.Put(tableMeta, keySchemaVersion, []byte{0, 0, 0, 4})
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(path, Options{ReadOnly: true}); !errors.Is(err, ErrSchemaTooOld) {
		t.Fatalf("read-only open of version 4: %v", err)
	}
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := db.SchemaVersion(); err != nil || v != SchemaVersion {
		t.Fatalf("version %d, %v", v, err)
	}
	if got := snapshotV3(t, db); got != want {
		t.Fatalf("after the migration:\n%s\nwant\n%s", got, want)
	}
	all := func() string {
		var got []Pin
		if err := db.View(func(tx *Tx) error {
			return tx.ForEachPin(func(p Pin) error { got = append(got, p); return nil })
		}); err != nil {
			t.Fatal(err)
		}
		return fmtPins(got)
	}
	expired := func(now int64) string {
		var got []Pin
		if err := db.View(func(tx *Tx) error {
			var err error
			got, err = tx.ExpiredPins(now, 10)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return fmtPins(got)
	}
	if got, want := all(), `l team/a sha256:a -@30; l team/b sha256:b -@40; l team/c sha256:c -@50; m team/a sha256:a -@20`; got != want {
		t.Fatalf("pins after the migration: %s, want %s", got, want)
	}
	if got, want := expired(100), `m team/a sha256:a -@20; l team/a sha256:a -@30; l team/b sha256:b -@40; l team/c sha256:c -@50`; got != want {
		t.Fatalf("expiry index after the migration: %s, want %s", got, want)
	}
	var keys int
	if err := db.View(func(tx *Tx) error {
		return tx.b.Scan(tablePinExpiry, nil, func(_, _ []byte) (bool, error) { keys++; return true, nil })
	}); err != nil || keys != 4 {
		t.Fatalf("%d expiry entries (%v), want 4: one per pin", keys, err)
	}

	// Clients of one object: a row each, read together, deleted apart.
	err = db.Update(func(tx *Tx) error {
		for _, p := range []Pin{
			{Kind: LeaseLink, Repo: "team/a", Digest: "sha256:a", Client: "ip:127.0.0.2", Until: 60},
			{Kind: LeaseLink, Repo: "team/a", Digest: "sha256:a", Client: "user:bob", Until: 70},
			{Kind: LeaseLink, Repo: "team/a", Digest: "sha256:a", Client: "ip:127.0.0.2", Until: 80}, // replaces its own
			{Kind: LeaseLink, Repo: "team/a", Digest: "sha256:ab", Client: "x", Until: 90},           // another digest
		} {
			if err := tx.PutPin(p); err != nil {
				return err
			}
		}
		ps, err := tx.Pins(LeaseLink, "team/a", "sha256:a")
		if err != nil {
			return err
		}
		if got, want := fmtPins(ps), `l team/a sha256:a -@30; l team/a sha256:a ip:127.0.0.2@80; l team/a sha256:a user:bob@70`; got != want {
			return fmt.Errorf("pins of the object: %s, want %s", got, want)
		}
		if err := tx.DeletePin(LeaseLink, "team/a", "sha256:a", "ip:127.0.0.2"); err != nil {
			return err
		}
		ps, err = tx.Pins(LeaseLink, "team/a", "sha256:a")
		if err != nil {
			return err
		}
		if got, want := fmtPins(ps), `l team/a sha256:a -@30; l team/a sha256:a user:bob@70`; got != want {
			return fmt.Errorf("pins after one client's delete: %s, want %s", got, want)
		}
		if err := tx.DeletePins(ps); err != nil {
			return err
		}
		ps, err = tx.Pins(LeaseLink, "team/a", "sha256:a")
		if err != nil || len(ps) != 0 {
			return fmt.Errorf("pins after deleting all: %v %v", ps, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := expired(1000), `m team/a sha256:a -@20; l team/b sha256:b -@40; l team/c sha256:c -@50; l team/a sha256:ab x@90`; got != want {
		t.Fatalf("expiry index after the deletes: %s, want %s", got, want)
	}
}

// fmtPins prints pins as "<kind> <repo> <digest> <client or ->@<until>".
func fmtPins(ps []Pin) string {
	out := ""
	for i, p := range ps {
		if i > 0 {
			out += "; "
		}
		c := p.Client
		if c == "" {
			c = "-"
		}
		out += fmt.Sprintf("%c %s %s %s@%d", p.Kind, p.Repo, p.Digest, c, p.Until)
	}
	return out
}
