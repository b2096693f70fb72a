package s3test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Gate is an S3 endpoint in front of a server that holds the first PUT to
// a key containing a given part until Release, and says so on Held: the
// moment between two requests of one operation, stretched, for tests of
// what another process does meanwhile. It holds from the start when made
// armed, else from Arm on.
type Gate struct {
	URL  string
	Held chan struct{} // closed when the PUT is held

	mu      sync.Mutex
	armed   bool
	done    bool
	release chan struct{}
}

// HoldWrites puts a gate in front of endpoint, holding the first PUT to a
// key that contains part; armed says whether it holds from the start.
func HoldWrites(t testing.TB, endpoint, part string, armed bool) *Gate {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	g := &Gate{Held: make(chan struct{}), armed: armed, release: make(chan struct{})}
	proxy := httputil.NewSingleHostReverseProxy(target)
	// The client signs the Host it dials; the server checks the Host it
	// receives, which the proxy leaves as it came.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, part) && g.take() {
			close(g.Held)
			<-g.release
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		g.Release()
		srv.Close()
	})
	g.URL = srv.URL
	return g
}

// take reports whether this request is the one to hold.
func (g *Gate) take() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.armed || g.done {
		return false
	}
	g.done = true
	return true
}

// Arm makes the gate hold the next PUT to a matching key.
func (g *Gate) Arm() {
	g.mu.Lock()
	g.armed = true
	g.mu.Unlock()
}

// Release lets the held PUT (and any later one) through.
func (g *Gate) Release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.release:
	default:
		close(g.release)
	}
}
