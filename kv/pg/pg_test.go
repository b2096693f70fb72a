package pgkv_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/kvreg/kvreg/kv/backend"
	pgkv "github.com/kvreg/kvreg/kv/pg"
	"github.com/kvreg/kvreg/kv/pg/pgtest"
)

func put(t *testing.T, s backend.Store, n int) {
	t.Helper()
	if err := s.Update(func(tx backend.Tx) error {
		for i := 0; i < n; i++ {
			if err := tx.Put([]byte("t"), []byte(fmt.Sprintf("k%04d", i)), []byte{byte(i)}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// roundTrips runs fn in a View and returns the round trips it took.
func roundTrips(t *testing.T, s *pgkv.Store, fn func(backend.Tx) error) uint64 {
	t.Helper()
	before := s.TxStats().RoundTrips
	if err := s.View(fn); err != nil {
		t.Fatal(err)
	}
	after := s.TxStats().RoundTrips
	return after - before
}

// A scan that stops at its first key reads one small page; a long scan
// reads pages that grow.
func TestScanPages(t *testing.T) {
	s := open(t, pgtest.NewDatabase(t), pgkv.Options{})
	put(t, s, 100)
	got := roundTrips(t, s, func(tx backend.Tx) error {
		return tx.Scan([]byte("t"), []byte("k0050"), func(k, _ []byte) (bool, error) { return false, nil })
	})
	if got != 2 { // BEGIN with one page, ROLLBACK
		t.Errorf("a scan stopped at its first key took %d round trips, want 2", got)
	}
	n := 0
	got = roundTrips(t, s, func(tx backend.Tx) error {
		return tx.Scan([]byte("t"), nil, func(k, _ []byte) (bool, error) {
			if want := fmt.Sprintf("k%04d", n); string(k) != want {
				return false, fmt.Errorf("key %d is %q, want %q", n, k, want)
			}
			n++
			return true, nil
		})
	})
	if n != 100 {
		t.Fatalf("scanned %d keys of 100", n)
	}
	if got != 4 { // BEGIN with a page of 16, pages of 32 and 64, ROLLBACK
		t.Errorf("a scan of 100 keys took %d round trips, want 4", got)
	}
	// A callback may read in the middle of a scan.
	if err := s.View(func(tx backend.Tx) error {
		return tx.Scan([]byte("t"), nil, func(k, v []byte) (bool, error) {
			w, err := tx.Get([]byte("t"), k)
			if err != nil || string(w) != string(v) {
				return false, fmt.Errorf("get %q during a scan: %q, %v", k, w, err)
			}
			return true, nil
		})
	}); err != nil {
		t.Fatal(err)
	}
}

// Writes are queued and go out with the next read or the commit; BEGIN
// goes with the first round trip.
func TestUpdateRoundTrips(t *testing.T) {
	s := open(t, pgtest.NewDatabase(t), pgkv.Options{})
	update := func(fn func(backend.Tx) error) uint64 {
		before := s.TxStats().RoundTrips
		if err := s.Update(fn); err != nil {
			t.Fatal(err)
		}
		after := s.TxStats().RoundTrips
		return after - before
	}
	k := func(s string) []byte { return []byte(s) }
	if n := update(func(tx backend.Tx) error {
		for _, key := range []string{"a", "b", "c"} {
			if err := tx.Put(k("t"), k(key), k("v")); err != nil {
				return err
			}
		}
		return tx.Delete(k("t"), k("b"))
	}); n != 1 {
		t.Errorf("an Update of writes only took %d round trips, want 1", n)
	}
	if n := update(func(tx backend.Tx) error {
		if err := tx.Put(k("t"), k("d"), k("v")); err != nil {
			return err
		}
		v, err := tx.Get(k("t"), k("d")) // its own write: no round trip
		if err != nil || string(v) != "v" {
			return fmt.Errorf("own queued write reads %q, %v", v, err)
		}
		for i := 0; i < 2; i++ { // read once from the database
			if v, err := tx.Get(k("t"), k("b")); err != nil || v != nil {
				return fmt.Errorf("deleted key reads %q, %v", v, err)
			}
		}
		if v, err := tx.Get(k("t"), k("a")); err != nil || string(v) != "v" {
			return fmt.Errorf("a reads %q, %v", v, err)
		}
		if err := tx.Delete(k("t"), k("a")); err != nil {
			return err
		}
		if v, err := tx.Get(k("t"), k("a")); err != nil || v != nil {
			return fmt.Errorf("a reads %q after its delete, %v", v, err)
		}
		return tx.Put(k("t"), k("e"), k("v"))
	}); n != 3 {
		t.Errorf("an Update reading two keys took %d round trips, want 3", n)
	}
	if n := update(func(tx backend.Tx) error { return nil }); n != 0 {
		t.Errorf("an empty Update took %d round trips", n)
	}
	var keys []string
	if err := s.View(func(tx backend.Tx) error {
		return tx.Scan(k("t"), nil, func(key, _ []byte) (bool, error) { keys = append(keys, string(key)); return true, nil })
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(keys) != "[c d e]" {
		t.Fatalf("keys %q", keys)
	}
}

func TestSize(t *testing.T) {
	s := open(t, pgtest.NewDatabase(t), pgkv.Options{})
	n, err := s.Size()
	if err != nil || n <= 0 {
		t.Fatalf("Size: %d, %v", n, err)
	}
}

// A closure that keeps conflicting is given up with ErrConflict, and the
// reruns are counted.
func TestConflictGivesUp(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := open(t, url, pgkv.Options{MaxAttempts: 3})
	put(t, s, 1)
	other := open(t, url, pgkv.Options{})
	runs := 0
	err := s.Update(func(tx backend.Tx) error {
		runs++
		if _, err := tx.Get([]byte("t"), []byte("k0000")); err != nil {
			return err
		}
		// Another transaction changes what this one read, and commits first.
		if err := other.Update(func(tx backend.Tx) error { return tx.Put([]byte("t"), []byte("k0000"), []byte("x")) }); err != nil {
			return err
		}
		return tx.Put([]byte("t"), []byte("k0000"), []byte("y"))
	})
	if !errors.Is(err, backend.ErrConflict) {
		t.Fatalf("Update: %v, want ErrConflict", err)
	}
	if retries := s.TxStats().Retries; runs != 3 || retries != 3 {
		t.Fatalf("%d runs, %d retries counted; want 3 and 3", runs, retries)
	}
}

// A failed statement ends the transaction: the closure's later calls fail
// too, and an error it swallowed still fails the Update.
func TestFailedStatementEndsTransaction(t *testing.T) {
	s := open(t, pgtest.NewDatabase(t), pgkv.Options{})
	err := s.Update(func(tx backend.Tx) error {
		tx.Put([]byte("t"), nil, []byte("a key must not be NULL")) //nolint:errcheck // swallowed on purpose
		return tx.Put([]byte("t"), []byte("k"), []byte("v"))
	})
	if err == nil {
		t.Fatal("an Update whose statement failed committed")
	}
	if got := get(t, s, "k"); got != nil {
		t.Fatalf("k = %q after a failed Update", got)
	}
}

func get(t *testing.T, s backend.Store, key string) []byte {
	t.Helper()
	var out []byte
	if err := s.View(func(tx backend.Tx) error {
		v, err := tx.Get([]byte("t"), []byte(key))
		out = append([]byte(nil), v...)
		if v == nil {
			out = nil
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// Processes opening a fresh database at once migrate it once, and all
// open it.
func TestConcurrentOpensMigrateOnce(t *testing.T) {
	url := pgtest.NewDatabase(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := pgkv.Open(url, pgkv.Options{})
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
	}
	conn := connect(t, url)
	var rows, max int
	if err := conn.QueryRow(t.Context(), "SELECT count(*), max(version) FROM kv_migrations").Scan(&rows, &max); err != nil {
		t.Fatal(err)
	}
	if rows != pgkv.SchemaVersion() || max != pgkv.SchemaVersion() {
		t.Fatalf("%d migrations recorded up to version %d, want %d", rows, max, pgkv.SchemaVersion())
	}
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(t.Context()) })
	return c
}

func TestSchemaTooNewRefused(t *testing.T) {
	url := pgtest.NewDatabase(t)
	open(t, url, pgkv.Options{}).Close()
	if _, err := connect(t, url).Exec(t.Context(), "INSERT INTO kv_migrations (version, name) VALUES (1000, 'from the future')"); err != nil {
		t.Fatal(err)
	}
	if _, err := pgkv.Open(url, pgkv.Options{}); !errors.Is(err, pgkv.ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
}

func TestUnreachableIsUnavailable(t *testing.T) {
	url := pgtest.NewDatabase(t)
	bad := strings.Replace(url, "/t_", "/missing_", 1)
	if _, err := pgkv.Open(bad, pgkv.Options{}); err == nil || !strings.Contains(err.Error(), "missing_") {
		t.Fatalf("Open of a missing database: %v", err)
	}
}

// A writer that waits for a row another transaction holds gives up the
// wait after LockWait and reruns, instead of waiting out lock_timeout (or
// PostgreSQL's deadlock detection); it succeeds once the holder is done.
func TestLockWaitReruns(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a := open(t, url, pgkv.Options{})
	b := open(t, url, pgkv.Options{LockWait: 20 * time.Millisecond})
	locked, release := make(chan struct{}), make(chan struct{})
	errA := make(chan error, 1)
	go func() {
		errA <- a.Update(func(tx backend.Tx) error {
			if err := tx.Put([]byte("t"), []byte("row"), []byte("a")); err != nil {
				return err
			}
			if _, err := tx.Get([]byte("t"), []byte("other")); err != nil { // sends the Put: the row is locked
				return err
			}
			select {
			case <-locked:
			default:
				close(locked)
			}
			<-release
			return nil
		})
	}()
	<-locked
	errB := make(chan error, 1)
	go func() {
		errB <- b.Update(func(tx backend.Tx) error {
			if _, err := tx.Get([]byte("t"), []byte("other")); err != nil {
				return err
			}
			return tx.Put([]byte("t"), []byte("row"), []byte("b"))
		})
	}()
	eventually(t, "b rerunning", func() error {
		if retries := b.TxStats().Retries; retries == 0 {
			return errors.New("b has not rerun")
		}
		return nil
	})
	close(release)
	if err := <-errA; err != nil {
		t.Fatal(err)
	}
	if err := <-errB; err != nil {
		t.Fatalf("b after the holder committed: %v", err)
	}
	if got := string(get(t, a, "row")); got != "b" {
		t.Fatalf("row = %q, want b's write, committed last", got)
	}
}

// OnAbort's functions run once, as soon as an attempt surely did not
// commit: before the rerun of a closure whose transaction conflicted, and
// before Update returns the closure's error; never for an attempt that
// committed.
func TestOnAbort(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := open(t, url, pgkv.Options{})
	put(t, s, 1)
	other := open(t, url, pgkv.Options{})
	var events []string
	runs := 0
	err := s.Update(func(tx backend.Tx) error {
		runs++
		run := runs
		events = append(events, fmt.Sprintf("run %d", run))
		tx.(backend.Aborter).OnAbort(func() { events = append(events, fmt.Sprintf("abort %d", run)) })
		if _, err := tx.Get([]byte("t"), []byte("k0000")); err != nil {
			return err
		}
		if run == 1 {
			// Another transaction changes what this one read, and commits first.
			if err := other.Update(func(tx backend.Tx) error { return tx.Put([]byte("t"), []byte("k0000"), []byte("x")) }); err != nil {
				return err
			}
		}
		return tx.Put([]byte("t"), []byte("k0000"), []byte("y"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(events, ", "); got != "run 1, abort 1, run 2" {
		t.Fatalf("events %q, want the first run aborted before the second, which commits", got)
	}

	events = nil
	failed := errors.New("the closure fails")
	err = s.Update(func(tx backend.Tx) error {
		tx.(backend.Aborter).OnAbort(func() { events = append(events, "abort") })
		if err := tx.Put([]byte("t"), []byte("k0001"), []byte("z")); err != nil {
			return err
		}
		return failed
	})
	if !errors.Is(err, failed) || len(events) != 1 {
		t.Fatalf("Update: %v, events %q; want the closure's error and one abort", err, events)
	}
}
