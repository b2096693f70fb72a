package pgkv_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kvreg/kvreg/kv/backend"
	pgkv "github.com/kvreg/kvreg/kv/pg"
	"github.com/kvreg/kvreg/kv/pg/pgtest"
)

// A range scanned again in a transaction is served from memory until a
// write of the transaction falls in it; a write outside it keeps it.
func TestScanRangeRemembered(t *testing.T) {
	s := open(t, pgtest.NewDatabase(t), pgkv.Options{})
	put(t, s, 3) // k0000..k0002
	k := func(s string) []byte { return []byte(s) }
	scan := func(tx backend.Tx, from, to string) (string, error) {
		var got []string
		err := tx.(backend.RangeScanner).ScanRange(k("t"), k(from), k(to), func(key, v []byte) (bool, error) {
			got = append(got, string(key)+"="+string(v))
			return true, nil
		})
		return strings.Join(got, ","), err
	}
	var trips []uint64
	mark := func() { trips = append(trips, s.TxStats().RoundTrips) }
	if err := s.Update(func(tx backend.Tx) error {
		trips = trips[:0]
		mark()
		want := "k0000=\x00,k0001=\x01,k0002=\x02"
		for i := 0; i < 2; i++ {
			if got, err := scan(tx, "k", "l"); err != nil || got != want {
				return fmt.Errorf("scan %d: %q, %v", i, got, err)
			}
			mark()
		}
		// Outside the range: still served from memory.
		if err := tx.Put(k("t"), k("m"), k("v")); err != nil {
			return err
		}
		if got, err := scan(tx, "k", "l"); err != nil || got != want {
			return fmt.Errorf("scan after a write outside: %q, %v", got, err)
		}
		mark()
		// Inside it: read again, with the write.
		if err := tx.Delete(k("t"), k("k0001")); err != nil {
			return err
		}
		if got, err := scan(tx, "k", "l"); err != nil || got != "k0000=\x00,k0002=\x02" {
			return fmt.Errorf("scan after a delete inside: %q, %v", got, err)
		}
		mark()
		if err := tx.Put(k("t"), k("k0005"), k("new")); err != nil {
			return err
		}
		if got, err := scan(tx, "k", "l"); err != nil || got != "k0000=\x00,k0002=\x02,k0005=new" {
			return fmt.Errorf("scan after a put inside: %q, %v", got, err)
		}
		mark()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var d []uint64
	for i := 1; i < len(trips); i++ {
		d = append(d, trips[i]-trips[i-1])
	}
	// BEGIN with the first scan; the second from memory; after a write
	// outside, from memory; after each write inside, read again.
	if fmt.Sprint(d) != "[1 0 0 1 1]" {
		t.Errorf("round trips of the scans: %v, want [1 0 0 1 1]", d)
	}
	// Committed as written.
	var got []string
	if err := s.View(func(tx backend.Tx) error {
		return tx.Scan(k("t"), nil, func(key, _ []byte) (bool, error) { got = append(got, string(key)); return true, nil })
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[k0000 k0002 k0005 m]" {
		t.Errorf("after commit: %v", got)
	}
}

// A range longer than its first page: the first page comes from memory,
// the rest from the database, and the scan is whole.
func TestScanRangeRememberedFirstPageOnly(t *testing.T) {
	s := open(t, pgtest.NewDatabase(t), pgkv.Options{})
	put(t, s, 40) // pages of 16 and 32
	n := 0
	got := roundTrips(t, s, func(tx backend.Tx) error {
		for i := 0; i < 2; i++ {
			n = 0
			if err := tx.Scan([]byte("t"), nil, func(k, _ []byte) (bool, error) {
				if want := fmt.Sprintf("k%04d", n); string(k) != want {
					return false, fmt.Errorf("scan %d: key %d is %q, want %q", i, n, k, want)
				}
				n++
				return true, nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if n != 40 {
		t.Fatalf("scanned %d keys of 40", n)
	}
	if got != 4 { // BEGIN with 16, 32; 32 again; ROLLBACK
		t.Errorf("two scans of 40 keys took %d round trips, want 4", got)
	}
}
