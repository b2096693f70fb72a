package pgtest

import (
	"bytes"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

// CommitCut relays connections to the test server. Armed, it cuts the
// client's connection when the server answers a COMMIT (its
// CommandComplete, tag "COMMIT"), before that answer reaches the client,
// once: the transaction is stored and the client never hears so. Told to
// (CutNext), it cuts the connections of the next answers, whatever they
// say.
type CommitCut struct {
	ln    net.Listener
	armed atomic.Bool
	next  atomic.Int32
	cuts  atomic.Int32
	wg    sync.WaitGroup
}

// NewCommitCut starts a CommitCut in front of the server of dbURL (a URL
// from NewDatabase) and returns it with the URL of the same database
// through it. It stops when t ends.
func NewCommitCut(t testing.TB, dbURL string) (*CommitCut, string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &CommitCut{ln: ln}
	target := u.Host
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
	u.Host = ln.Addr().String()
	return p, u.String()
}

// Arm makes the next COMMIT's answer the one cut.
func (p *CommitCut) Arm() { p.armed.Store(true) }

// CutNext makes the next n answers, of any statement, ones cut.
func (p *CommitCut) CutNext(n int) { p.next.Store(int32(n)) }

// take reports whether an answer is to be cut by CutNext, counting it.
func (p *CommitCut) take() bool {
	for {
		n := p.next.Load()
		if n <= 0 {
			return false
		}
		if p.next.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// Cuts is how many answers were cut.
func (p *CommitCut) Cuts() int { return int(p.cuts.Load()) }

// commitDone is a CommandComplete message's tag, as the server sends it.
var commitDone = []byte("COMMIT\x00")

// answers relays the server's answers to the client, unless armed and one
// says a COMMIT is done: then both ends are closed and it is not relayed.
func (p *CommitCut) answers(c, s net.Conn) {
	defer c.Close()
	defer s.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			if p.take() || bytes.Contains(buf[:n], commitDone) && p.armed.CompareAndSwap(true, false) {
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
