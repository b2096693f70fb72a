package pgkv_test

import (
	"errors"
	"testing"

	"github.com/kvreg/kvreg/kv/backend"
	pgkv "github.com/kvreg/kvreg/kv/pg"
	"github.com/kvreg/kvreg/kv/pg/pgtest"
)

// An Update whose COMMIT is answered by a cut connection fails with
// ErrCommitUnknown (and ErrUnavailable) and is not run again, though it
// committed; one cut before its COMMIT fails with ErrUnavailable alone.
func TestCommitAnswerLost(t *testing.T) {
	direct := pgtest.NewDatabase(t)
	p, through := pgtest.NewCommitCut(t, direct)
	s := open(t, through, pgkv.Options{})
	if err := putKey(s, "before"); err != nil {
		t.Fatal(err)
	}

	runs := 0
	p.Arm()
	err := s.Update(func(tx backend.Tx) error {
		runs++
		return tx.Put([]byte("t"), []byte("lost answer"), []byte("v"))
	})
	if p.Cuts() != 1 {
		t.Fatalf("the proxy cut %d connections at a COMMIT, want 1", p.Cuts())
	}
	if !errors.Is(err, backend.ErrCommitUnknown) || !errors.Is(err, backend.ErrUnavailable) {
		t.Fatalf("Update whose COMMIT's answer was lost: %v; want ErrCommitUnknown and ErrUnavailable", err)
	}
	if runs != 1 {
		t.Fatalf("the Update ran %d times; a commit that may have been stored must not run again", runs)
	}
	check := open(t, direct, pgkv.Options{})
	if get(t, check, "lost answer") == nil {
		t.Fatal("the Update whose answer was lost is not stored; the proxy cut before the COMMIT")
	}

	// Cut by a stop of the server before its COMMIT: nothing stored, and
	// not ErrCommitUnknown.
	inTx, release := make(chan struct{}), make(chan struct{})
	errc := make(chan error, 1)
	runs = 0
	go func() {
		errc <- s.Update(func(tx backend.Tx) error {
			runs++
			if _, err := tx.Get([]byte("t"), []byte("before")); err != nil {
				return err
			}
			if runs == 1 {
				close(inTx)
				<-release
			}
			return tx.Put([]byte("t"), []byte("cut early"), []byte("v"))
		})
	}()
	<-inTx
	pgtest.Stop(t)
	close(release)
	err = <-errc
	pgtest.Start(t)
	if !errors.Is(err, backend.ErrUnavailable) || errors.Is(err, backend.ErrCommitUnknown) {
		t.Fatalf("Update cut before its COMMIT: %v; want ErrUnavailable and not ErrCommitUnknown", err)
	}
	check = open(t, direct, pgkv.Options{})
	if get(t, check, "cut early") != nil {
		t.Fatal("an Update cut before its COMMIT was stored")
	}
}
