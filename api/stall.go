package api

import (
	"net/http"
	"time"
)

// stallGuard cuts off a client whose request or response body stops moving.
// A whole-request ReadTimeout or WriteTimeout would also cut off a big
// upload or download that is merely slow; instead each read of the request
// body and each write of the response must make progress within the stall
// timeout, through deadlines on the connection (HTTP/1) or the stream
// (HTTP/2). Work between reads and writes (a commit's fsync) is not timed.
type stallGuard struct {
	rc      *http.ResponseController
	timeout time.Duration
}

// newStallGuard returns nil (no guard) for a timeout of zero. Deadlines are
// wall-clock time, whatever clock the registry runs on.
func newStallGuard(w http.ResponseWriter, timeout time.Duration) *stallGuard {
	if timeout <= 0 {
		return nil
	}
	g := &stallGuard{rc: http.NewResponseController(w), timeout: timeout}
	// A deadline left by the previous request on this connection is void.
	g.rc.SetWriteDeadline(time.Time{})
	return g
}

func (g *stallGuard) beforeRead() {
	if g != nil {
		g.rc.SetReadDeadline(time.Now().Add(g.timeout))
	}
}

// atEOF lifts the read deadline once the body is all read: the server then
// watches the connection for the client going away, which must not time
// out while the handler works.
func (g *stallGuard) atEOF() {
	if g != nil {
		g.rc.SetReadDeadline(time.Time{})
	}
}

func (g *stallGuard) beforeWrite() {
	if g != nil {
		g.rc.SetWriteDeadline(time.Now().Add(g.timeout))
	}
}

// done bounds the flush of what the handler left buffered.
func (g *stallGuard) done() { g.beforeWrite() }
