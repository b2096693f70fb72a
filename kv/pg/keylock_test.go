package pgkv_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/kvreg/kvreg/kv/backend"
	pgkv "github.com/kvreg/kvreg/kv/pg"
	"github.com/kvreg/kvreg/kv/pg/pgtest"
)

// waitFor polls cond (a state another goroutine or process reaches) for up
// to ten seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Two stores on one database are two processes: a key lock one holds
// makes the other wait, and no other key.
func TestKeyLockAcrossStores(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := open(t, url, pgkv.Options{}), open(t, url, pgkv.Options{})
	rt := a.TxStats().RoundTrips
	unlockA, err := a.Lock([]byte("sha256:aa"))
	if err != nil {
		t.Fatal(err)
	}
	if n := a.TxStats().RoundTrips - rt; n != 1 {
		t.Errorf("an uncontended lock took %d round trips, want 1", n)
	}
	// Another key is free.
	unlockOther, err := b.Lock([]byte("sha256:bb"))
	if err != nil {
		t.Fatal(err)
	}
	unlockOther()
	if w := b.TxStats().LockWaits; w != 0 {
		t.Fatalf("LockWaits = %d after a free key", w)
	}

	got := make(chan func(), 1)
	go func() {
		unlock, err := b.Lock([]byte("sha256:aa"))
		if err != nil {
			t.Error(err)
			unlock = func() {}
		}
		got <- unlock
	}()
	waitFor(t, "the second store to wait", func() bool { return b.TxStats().LockWaits == 1 })
	select {
	case <-got:
		t.Fatal("the second store took a lock the first holds")
	default:
	}
	rt = a.TxStats().RoundTrips
	unlockA()
	if n := a.TxStats().RoundTrips - rt; n != 1 {
		t.Errorf("an unlock took %d round trips, want 1", n)
	}
	(<-got)()
}

// A lock that stays held past KeyLockWait is ErrUnavailable.
func TestKeyLockWaitBounded(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a := open(t, url, pgkv.Options{})
	b := open(t, url, pgkv.Options{LockTimeout: 50 * time.Millisecond, KeyLockWait: 300 * time.Millisecond})
	unlock, err := a.Lock([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if _, err := b.Lock([]byte("k")); !errors.Is(err, backend.ErrUnavailable) {
		t.Fatalf("Lock of a held key = %v, want ErrUnavailable", err)
	}
	// The failed wait left no lock behind on b's side: once a lets go,
	// the key can be taken again. b's cut-off session may hold the lock
	// for a moment (until the server sees its connection gone), longer
	// than b's short wait on a busy machine, so a takes it, with the
	// default wait: a lock left behind for good would fail it.
	unlock()
	u2, err := a.Lock([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	u2()
}

// A lock ends with its session: once the holder's connection is gone,
// another store takes it, and the holder's unlock does no harm.
func TestKeyLockEndsWithConnection(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := open(t, url, pgkv.Options{}), open(t, url, pgkv.Options{})
	unlockA, err := a.Lock([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND granted`, int64(0x6b726c6b)).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminating the holder: %d sessions, %v", n, err)
	}
	unlockB, err := b.Lock([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	unlockA() // its connection is gone: closed, not pooled
	unlockB()
	again, err := a.Lock([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	again()
}

// Several keys are locked together: in one round trip when free, and
// each of them makes another store wait while held.
func TestKeyLockSeveralKeys(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := open(t, url, pgkv.Options{}), open(t, url, pgkv.Options{})
	rt := a.TxStats().RoundTrips
	unlock, err := a.Lock([]byte("sha256:aa"), []byte("upload/u1"))
	if err != nil {
		t.Fatal(err)
	}
	if n := a.TxStats().RoundTrips - rt; n != 1 {
		t.Errorf("two free keys took %d round trips, want 1", n)
	}
	for _, k := range []string{"sha256:aa", "upload/u1"} {
		short := open(t, url, pgkv.Options{LockTimeout: 50 * time.Millisecond, KeyLockWait: 200 * time.Millisecond})
		if _, err := short.Lock([]byte(k)); !errors.Is(err, backend.ErrUnavailable) {
			t.Fatalf("Lock of %s, held with another key: %v, want ErrUnavailable", k, err)
		}
	}
	rt = a.TxStats().RoundTrips
	unlock()
	if n := a.TxStats().RoundTrips - rt; n != 1 {
		t.Errorf("unlocking two keys took %d round trips, want 1", n)
	}
	for _, k := range []string{"sha256:aa", "upload/u1"} {
		u, err := b.Lock([]byte(k))
		if err != nil {
			t.Fatalf("Lock of %s after the unlock: %v", k, err)
		}
		u()
	}
}

// Holders of overlapping sets of keys, asked for in every order, all get
// them: none waits for another in a ring (which the server would end
// with a deadlock error).
func TestKeyLocksNoRing(t *testing.T) {
	url := pgtest.NewDatabase(t)
	stores := []*pgkv.Store{open(t, url, pgkv.Options{}), open(t, url, pgkv.Options{})}
	sets := [][]string{{"x", "y"}, {"y", "x"}, {"y", "z"}, {"z", "x", "y"}, {"x"}, {"z", "y"}}
	errs := make(chan error, 4*40)
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 40 {
				var keys [][]byte
				for _, k := range sets[(g+i)%len(sets)] {
					keys = append(keys, []byte(k))
				}
				unlock, err := stores[g%2].Lock(keys...)
				if err != nil {
					errs <- err
					return
				}
				time.Sleep(100 * time.Microsecond)
				unlock()
			}
		}()
	}
	for range 4 {
		<-done
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
