package api

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/kvreg/kvreg/api/auth"
	"github.com/kvreg/kvreg/api/auth/token"
)

// Token mode on /v2/: who the caller is (a Bearer token, Basic credentials
// of an htpasswd user, or nobody) and the Bearer challenge of its 401s.

// tokenState is the token mode's configuration and what it keeps.
type tokenState struct {
	cfg     *TokenConfig
	cache   *tokenCache
	metrics *tokenMetrics
}

// identify finds who sends a /v2/ request: in Basic mode as authenticate
// does; in token mode a Bearer token is verified (a failure answers 401
// with error="invalid_token") and Basic credentials are checked as in Basic
// mode, their refusal answered with the Bearer challenge.
func (s *Server) identify(r *http.Request, scope string) (principal, *Error) {
	if !s.tokenMode() {
		c, err := s.authenticate(r)
		return principal{Caller: c}, err
	}
	h := r.Header.Get("Authorization")
	if raw, ok := bearerToken(h); ok {
		cl, err := s.verifyBearer(raw)
		if err != nil {
			reason := token.Reason(err)
			s.tokenRefused(r, reason, err)
			return principal{}, s.bearerChallenge(r, scope, "invalid_token", "token refused: %s", reason)
		}
		p := principal{Caller: auth.Caller{User: cl.Subject}, tok: &cl}
		p.own = cl.Issuer == s.tokens.cfg.IssuerName && cl.Subject != "" && s.cfg.Users.Has(cl.Subject)
		return p, nil
	}
	c, err := s.authenticate(r)
	if err != nil {
		return principal{}, s.bearerChallenge(r, scope, "", "%s", err.message)
	}
	return principal{Caller: c}, nil
}

// bearerToken reads "Bearer <token>" (the scheme is case-insensitive).
func bearerToken(h string) (string, bool) {
	const scheme = "bearer "
	if len(h) < len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	return strings.TrimSpace(h[len(scheme):]), true
}

// verifyBearer checks an access token, through the cache of tokens that
// verified before.
func (s *Server) verifyBearer(raw string) (token.Claims, error) {
	ts := s.tokens
	if len(raw) > token.MaxTokenBytes {
		// Not even hashed for the cache.
		return ts.cfg.Verifier.Verify(raw)
	}
	if cl, ok := ts.cache.get(raw); ok {
		return cl, nil
	}
	cl, err := ts.cfg.Verifier.Verify(raw)
	if err != nil {
		return token.Claims{}, err
	}
	ts.cache.add(raw, cl)
	return cl, nil
}

// tokenRefused counts and logs a refusal: the reason and the error, never
// the token or a secret.
func (s *Server) tokenRefused(r *http.Request, reason string, err error) {
	s.tokens.metrics.refused.WithLabelValues(reason).Inc()
	attrs := []slog.Attr{
		slog.String("id", info(r).id),
		slog.String("path", r.URL.Path),
		slog.String("reason", reason),
		slog.String("remote", clientAddr(r, s.cfg.TrustedProxies)),
	}
	if err != nil {
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	s.cfg.Logger.LogAttrs(r.Context(), slog.LevelWarn, "token refused", attrs...)
}

// bearerChallenge is a 401 UNAUTHORIZED with the Bearer challenge: the
// realm, the service, the scope the route needs (when there is one) and,
// when a token was sent, why it did not do (RFC 6750's error).
func (s *Server) bearerChallenge(r *http.Request, scope, errCode, format string, args ...any) *Error {
	v := fmt.Sprintf("Bearer realm=%s,service=%s", quote(s.realm(r)), quote(s.tokens.cfg.Service))
	if scope != "" {
		v += ",scope=" + quote(scope)
	}
	if errCode != "" {
		v += ",error=" + quote(errCode)
	}
	e := apiErr(kUnauthorized, format, args...)
	e.header = http.Header{"Www-Authenticate": {v}}
	return e
}

// quote is an auth-param's quoted-string.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// realm is the token endpoint's URL: the configured one, or this server's
// as the client reached it.
func (s *Server) realm(r *http.Request) string {
	if s.tokens.cfg.Realm != "" {
		return s.tokens.cfg.Realm
	}
	return s.scheme(r) + "://" + r.Host + "/token"
}

// scheme is how the client reached kvreg: https when the connection is
// TLS, or when a trusted proxy in front says so in X-Forwarded-Proto.
func (s *Server) scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if peer, err := netip.ParseAddr(host); err == nil && isTrusted(peer.Unmap(), s.cfg.TrustedProxies) {
		// The proxy nearest to kvreg appends last.
		vs := strings.Split(r.Header.Get("X-Forwarded-Proto"), ",")
		switch strings.ToLower(strings.TrimSpace(vs[len(vs)-1])) {
		case "https":
			return "https"
		}
	}
	return "http"
}
