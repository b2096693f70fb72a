package pgkv_test

import (
	"errors"
	"testing"
	"time"

	"github.com/kvreg/kvreg/kv/backend"
	pgkv "github.com/kvreg/kvreg/kv/pg"
	"github.com/kvreg/kvreg/kv/pg/pgtest"
)

func putKey(s backend.Store, key string) error {
	return s.Update(func(tx backend.Tx) error { return tx.Put([]byte("t"), []byte(key), []byte("v")) })
}

// eventually retries fn until it succeeds, for at most 20 s.
func eventually(t *testing.T, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A restart of the database under an open store: an Update during the
// outage fails promptly with ErrUnavailable, and Updates succeed again by
// themselves once the database is back.
func TestDatabaseRestart(t *testing.T) {
	s := open(t, pgtest.NewDatabase(t), pgkv.Options{})
	if err := putKey(s, "before"); err != nil {
		t.Fatal(err)
	}
	pgtest.Stop(t)
	start := time.Now()
	err := putKey(s, "during")
	took := time.Since(start)
	if !errors.Is(err, backend.ErrUnavailable) {
		pgtest.Start(t)
		t.Fatalf("Update during an outage: %v, want ErrUnavailable", err)
	}
	if err := s.View(func(backend.Tx) error { return nil }); !errors.Is(err, backend.ErrUnavailable) {
		pgtest.Start(t)
		t.Fatalf("View during an outage: %v, want ErrUnavailable", err)
	}
	pgtest.Start(t)
	t.Logf("Update during the outage failed in %v: %v", took, err)
	if took > 5*time.Second {
		t.Errorf("Update during the outage took %v", took)
	}
	if err := putKey(s, "after"); err != nil {
		t.Fatalf("first Update after the restart: %v", err)
	}
	if get(t, s, "before") == nil || get(t, s, "after") == nil || get(t, s, "during") != nil {
		t.Fatal("wrong keys after the restart")
	}
}

// One exclusive store per database: a second is refused with ErrLocked,
// a store without Exclusive opens beside it, and the lock is free once
// the holder closes.
func TestExclusive(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a := open(t, url, pgkv.Options{Exclusive: true})
	_, err := pgkv.Open(url, pgkv.Options{Exclusive: true})
	if !errors.Is(err, backend.ErrLocked) {
		t.Fatalf("second exclusive Open: %v, want ErrLocked", err)
	}
	t.Logf("refused: %v", err)
	op := open(t, url, pgkv.Options{})
	if err := putKey(op, "operator"); err != nil {
		t.Fatal(err)
	}
	if err := putKey(a, "writer"); err != nil {
		t.Fatal(err)
	}
	a.Close()
	b := open(t, url, pgkv.Options{Exclusive: true})
	if err := putKey(b, "next"); err != nil {
		t.Fatal(err)
	}
}

// Replicas share the write lock: they open side by side and write, an
// exclusive store is refused while any replica holds it, and a replica is
// refused while an exclusive store holds it; once the replicas close, the
// exclusive store opens.
func TestReplicasShareTheWriteLock(t *testing.T) {
	url := pgtest.NewDatabase(t)
	r1 := open(t, url, pgkv.Options{Replica: true})
	r2 := open(t, url, pgkv.Options{Replica: true})
	if err := putKey(r1, "one"); err != nil {
		t.Fatal(err)
	}
	if err := putKey(r2, "two"); err != nil {
		t.Fatal(err)
	}
	if _, err := pgkv.Open(url, pgkv.Options{Exclusive: true}); !errors.Is(err, backend.ErrLocked) {
		t.Fatalf("exclusive Open beside replicas: %v, want ErrLocked", err)
	}
	r1.Close()
	if _, err := pgkv.Open(url, pgkv.Options{Exclusive: true}); !errors.Is(err, backend.ErrLocked) {
		t.Fatalf("exclusive Open beside one replica: %v, want ErrLocked", err)
	}
	r2.Close()
	x := open(t, url, pgkv.Options{Exclusive: true})
	_, err := pgkv.Open(url, pgkv.Options{Replica: true})
	if !errors.Is(err, backend.ErrLocked) {
		t.Fatalf("replica Open beside an exclusive store: %v, want ErrLocked", err)
	}
	t.Logf("refused: %v", err)
	if err := putKey(x, "alone"); err != nil {
		t.Fatal(err)
	}
}

// An exclusive store that lost its lock with its connection refuses to
// write while another process holds the lock, and takes it again (and
// writes) once that one is gone.
func TestExclusiveLockLost(t *testing.T) {
	url := pgtest.NewDatabase(t)
	// Checks only when woken by a failed transaction, so that the test
	// decides when the lock is retaken.
	a := open(t, url, pgkv.Options{Exclusive: true, LockCheck: time.Hour})
	pgtest.Stop(t)
	if err := putKey(a, "during"); !errors.Is(err, backend.ErrUnavailable) {
		pgtest.Start(t)
		t.Fatalf("Update during an outage: %v", err)
	}
	eventually(t, "noticing the lost lock", func() error {
		if a.HoldsWriteLock() {
			return errors.New("still believes it holds the lock")
		}
		return nil
	})
	pgtest.Start(t)
	b, err := pgkv.Open(url, pgkv.Options{Exclusive: true})
	if err != nil {
		t.Fatalf("exclusive Open while the holder's lock is lost: %v", err)
	}
	if err := putKey(b, "b"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := putKey(a, "a"); !errors.Is(err, backend.ErrUnavailable) {
			b.Close()
			t.Fatalf("Update of the store that lost its lock to another: %v, want ErrUnavailable", err)
		}
	}
	b.Close()
	eventually(t, "writing once the other store closed", func() error { return putKey(a, "a") })
	if !a.HoldsWriteLock() {
		t.Fatal("a writes without holding the lock")
	}
	if _, err := pgkv.Open(url, pgkv.Options{Exclusive: true}); !errors.Is(err, backend.ErrLocked) {
		t.Fatalf("exclusive Open after a retook the lock: %v, want ErrLocked", err)
	}
}

// A transaction open when the database stops fails with ErrUnavailable,
// and stores nothing.
func TestDatabaseStopsMidTransaction(t *testing.T) {
	s := open(t, pgtest.NewDatabase(t), pgkv.Options{})
	inTx, release := make(chan struct{}), make(chan struct{})
	errc := make(chan error, 1)
	runs := 0
	go func() {
		errc <- s.Update(func(tx backend.Tx) error {
			runs++
			if err := tx.Put([]byte("t"), []byte("first"), []byte("v")); err != nil {
				return err
			}
			if runs == 1 {
				close(inTx)
				<-release
			}
			return tx.Put([]byte("t"), []byte("second"), []byte("v"))
		})
	}()
	<-inTx
	pgtest.Stop(t)
	close(release)
	err := <-errc
	pgtest.Start(t)
	if !errors.Is(err, backend.ErrUnavailable) {
		t.Fatalf("Update cut by a stop: %v, want ErrUnavailable", err)
	}
	if get(t, s, "first") != nil {
		t.Fatal("half a transaction was stored")
	}
}
