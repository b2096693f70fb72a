package pgkv_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kvreg/kvreg/kv/backend"
	pgkv "github.com/kvreg/kvreg/kv/pg"
	"github.com/kvreg/kvreg/kv/pg/pgtest"
)

// cutProxy relays connections to a PostgreSQL server on loopback. Armed,
// it cuts the client's connection when the server answers a COMMIT (its
// CommandComplete, tag "COMMIT"), before that answer reaches the client:
// the transaction is stored and the client never hears so.
type cutProxy struct {
	ln    net.Listener
	armed atomic.Bool
	cuts  atomic.Int32
	wg    sync.WaitGroup
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.wg.Add(2)
			go func() { defer p.wg.Done(); io.Copy(s, c); s.Close() }()
			go func() { defer p.wg.Done(); p.answers(c, s) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

// commitDone is a CommandComplete message's tag, as the server sends it.
var commitDone = []byte("COMMIT\x00")

// answers relays the server's answers to the client, unless armed and one
// says a COMMIT is done: then both ends are closed and it is not relayed.
func (p *cutProxy) answers(c, s net.Conn) {
	defer c.Close()
	defer s.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			if bytes.Contains(buf[:n], commitDone) && p.armed.CompareAndSwap(true, false) {
				p.cuts.Add(1)
				return
			}
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// An Update whose COMMIT is answered by a cut connection fails with
// ErrCommitUnknown (and ErrUnavailable) and is not run again, though it
// committed; one cut before its COMMIT fails with ErrUnavailable alone.
func TestCommitAnswerLost(t *testing.T) {
	direct := pgtest.NewDatabase(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	p := newCutProxy(t, u.Host)
	u.Host = p.ln.Addr().String()
	s := open(t, u.String(), pgkv.Options{})
	if err := putKey(s, "before"); err != nil {
		t.Fatal(err)
	}

	runs := 0
	p.armed.Store(true)
	err = s.Update(func(tx backend.Tx) error {
		runs++
		return tx.Put([]byte("t"), []byte("lost answer"), []byte("v"))
	})
	if p.cuts.Load() != 1 {
		t.Fatalf("the proxy cut %d connections at a COMMIT, want 1", p.cuts.Load())
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
