package api

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Failed sign-ins a client may make in a loginWindow: for one user, and
// for all users together. Past either, its sign-ins are refused until the
// window ends, without a password being checked.
const (
	loginWindow       = time.Minute
	maxFailsPerUser   = 10
	maxFailsPerClient = 30
	// maxLoginWindows bounds the windows kept: past it, ended windows
	// are dropped, then any.
	maxLoginWindows = 1 << 16
)

// loginGuard slows password guessing: a client (its address) that has
// failed to sign in too often in a window is refused (429) until the
// window ends, and no password is checked for it meanwhile, so that a
// flood of wrong passwords costs no bcrypt either. Signing in as one user
// from elsewhere is not held up by a client guessing that user's password.
// Counts are per process: behind a balancer each replica keeps its own.
type loginGuard struct {
	now func() time.Time
	// refused counts refused sign-ins, by reason: a wrong credential, or
	// throttled (no credential checked).
	refused *prometheus.CounterVec

	mu      sync.Mutex
	windows map[string]*loginWindowCount
}

type loginWindowCount struct {
	start time.Time
	fails int
}

// newLoginGuard is a guard on clock now whose counter is registered in
// reg (nil: not registered).
func newLoginGuard(now func() time.Time, reg *prometheus.Registry) *loginGuard {
	g := &loginGuard{now: now, windows: map[string]*loginWindowCount{},
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvreg_sign_ins_refused_total",
			Help: "Sign-ins with a password or robot secret (Basic on /v2/ and the UI, and /token) refused, by reason: wrong_credential, or throttled (the client failed too often; nothing checked).",
		}, []string{"reason"})}
	if reg != nil {
		reg.MustRegister(g.refused)
	}
	return g
}

func userKey(user, client string) string { return "u\x00" + user + "\x00" + client }
func clientOnlyKey(client string) string { return "c\x00" + client }

// wait is how long client must wait before it may try to sign in as user
// again: 0 when it may now.
func (g *loginGuard) wait(user, client string) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	var longest time.Duration
	for _, k := range []struct {
		key string
		max int
	}{{userKey(user, client), maxFailsPerUser}, {clientOnlyKey(client), maxFailsPerClient}} {
		w := g.windows[k.key]
		if w == nil || !now.Before(w.start.Add(loginWindow)) || w.fails < k.max {
			continue
		}
		if d := w.start.Add(loginWindow).Sub(now); d > longest {
			longest = d
		}
	}
	return longest
}

// failed counts a failed sign-in of client as user.
func (g *loginGuard) failed(user, client string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	for _, key := range []string{userKey(user, client), clientOnlyKey(client)} {
		w := g.windows[key]
		if w == nil || !now.Before(w.start.Add(loginWindow)) {
			if len(g.windows) >= maxLoginWindows {
				g.prune(now)
			}
			w = &loginWindowCount{start: now}
			g.windows[key] = w
		}
		w.fails++
	}
}

// prune drops the windows that have ended, and if that is not enough,
// any others until a tenth of the room is free.
func (g *loginGuard) prune(now time.Time) {
	for k, w := range g.windows {
		if !now.Before(w.start.Add(loginWindow)) {
			delete(g.windows, k)
		}
	}
	for k := range g.windows { // map order is random
		if len(g.windows) < maxLoginWindows-maxLoginWindows/10 {
			break
		}
		delete(g.windows, k)
	}
}

// throttled is the refusal of a sign-in from a client that failed too
// often: 429 TOOMANYREQUESTS with Retry-After.
func throttled(wait time.Duration) *Error {
	secs := int((wait + time.Second - 1) / time.Second)
	e := apiErr(kTooManyRequests, "too many failed sign-ins from this client: retry in %d s", secs)
	e.header = http.Header{"Retry-After": {strconv.Itoa(secs)}}
	return e
}

// guardedLogin runs attempt, a sign-in as user by the client that sent r,
// unless that client has failed too often (then a throttled error, and
// attempt does not run); attempt reports whether the credentials were
// wrong, which counts as a failure.
func (s *Server) guardedLogin(r *http.Request, user string, attempt func() (wrong bool)) *Error {
	client := clientAddr(r, s.cfg.TrustedProxies)
	if w := s.logins.wait(user, client); w > 0 {
		s.logins.refused.WithLabelValues("throttled").Inc()
		return throttled(w)
	}
	if attempt() {
		s.logins.refused.WithLabelValues("wrong_credential").Inc()
		s.logins.failed(user, client)
	}
	return nil
}
