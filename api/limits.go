package api

import (
	"net/http"
	"sync"
)

// uploadLimiter bounds the upload requests (those that carry or start blob
// bytes) one client runs at once. A client is its user name when it logged
// in, else its IP address (see clientAddr: behind a trusted proxy, the
// address the proxy forwarded).
type uploadLimiter struct {
	max int // no limit when zero

	mu      sync.Mutex
	running map[string]int
}

func newUploadLimiter(max int) *uploadLimiter {
	return &uploadLimiter{max: max, running: map[string]int{}}
}

// acquire takes a slot for client, or reports that it has none left.
func (l *uploadLimiter) acquire(client string) (release func(), ok bool) {
	if l.max <= 0 {
		return func() {}, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.running[client] >= l.max {
		return nil, false
	}
	l.running[client]++
	return func() {
		l.mu.Lock()
		if l.running[client]--; l.running[client] <= 0 {
			delete(l.running, client)
		}
		l.mu.Unlock()
	}, true
}

// clientKey names the client for the limits and for the pins of its
// pushes: its user when it logged in, else its address.
func (s *Server) clientKey(r *http.Request, ri *reqInfo) string {
	if !ri.caller.Anonymous() {
		return "user:" + ri.caller.User
	}
	return "ip:" + clientAddr(r, s.cfg.TrustedProxies)
}

// isUpload reports whether a request sends blob bytes or starts a session.
func isUpload(k routeKind, method string) bool {
	switch k {
	case routeUploadStart:
		return method == http.MethodPost
	case routeUpload:
		return method == http.MethodPatch || method == http.MethodPut
	}
	return false
}

// limitBody applies the blob and chunk limits to an upload request: a
// Content-Length over either is refused before a byte is read, and the
// body is cut at the chunk limit whatever it announced. 413 SIZE_INVALID.
func (s *Server) limitBody(w http.ResponseWriter, r *http.Request) *Error {
	if mb := s.cfg.MaxBlobBytes; mb > 0 && r.ContentLength > mb {
		return apiErr(kBlobTooLarge, "body of %d bytes is over the blob size limit of %d", r.ContentLength, mb)
	}
	mc := s.cfg.MaxChunkBytes
	if mc <= 0 {
		return nil
	}
	if r.ContentLength > mc {
		return apiErr(kBlobTooLarge, "body of %d bytes is over the chunk size limit of %d", r.ContentLength, mc)
	}
	r.Body = http.MaxBytesReader(w, r.Body, mc)
	return nil
}
