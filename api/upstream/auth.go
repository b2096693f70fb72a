package upstream

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// The Docker token flow towards the upstream: a 401 names a realm (the
// upstream's token endpoint, possibly on another host: auth.docker.io for
// registry-1.docker.io), a service and a scope; the client asks the realm
// for a token, with its credentials if it has any, and sends the request
// again with it. Tokens are kept per scope until shortly before they
// expire. An upstream that asks for Basic gets the credentials instead.

const (
	// defaultTokenLife is a token's life when the realm does not say.
	defaultTokenLife = 60 * time.Second
	// maxTokenMargin bounds how long before its expiry a token is dropped.
	maxTokenMargin = 30 * time.Second
	// maxTokenBody bounds a realm's answer.
	maxTokenBody = 1 << 20
	// maxTokens bounds the tokens kept (one per repository pulled).
	maxTokens = 4096
)

// authorization is what a request to the upstream for scope carries: a
// token the cache still holds, or Basic credentials once the upstream has
// asked for them ("" for nothing).
func (c *Client) authorization(scope string) string {
	if tok, ok := c.tokens.get(scope); ok {
		return "Bearer " + tok
	}
	if c.basic.Load() && c.cfg.Username != "" {
		return c.basicHeader()
	}
	return ""
}

func (c *Client) basicHeader() string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.cfg.Username+":"+c.cfg.Password))
}

// answer answers the challenge of resp, a 401 from the upstream to a
// request for scope that carried sent: the Authorization header to send
// the request again with, or ErrDenied when there is nothing more to try.
func (c *Client) answer(ctx context.Context, resp *http.Response, scope, sent string) (string, error) {
	refused := statusError(resp) // reads and closes the body
	chs, err := parseChallenges(resp.Header.Values("Www-Authenticate"))
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", resp.Request.Method, safeURL(resp.Request.URL), err)
	}
	for _, ch := range chs {
		if ch.scheme == "bearer" && ch.params["realm"] != "" {
			tok, err := c.fetchToken(ctx, ch, scope, sent)
			if err != nil {
				return "", err
			}
			return "Bearer " + tok, nil
		}
	}
	for _, ch := range chs {
		if ch.scheme == "basic" && c.cfg.Username != "" {
			h := c.basicHeader()
			if sent == h {
				return "", refused // the credentials were refused already
			}
			c.basic.Store(true)
			return h, nil
		}
	}
	return "", refused
}

// tokenReply is a realm's JSON answer (token, or access_token of the
// OAuth2 form).
type tokenReply struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// fetchToken returns a token for scope other than the one sent (which the
// upstream refused): one another request has just fetched, or a new one
// from the realm of ch, fetched once for all the requests that need it at
// the same time.
func (c *Client) fetchToken(ctx context.Context, ch challenge, scope, sent string) (string, error) {
	tc := c.tokens
	tc.mu.Lock()
	if t, ok := tc.getLocked(scope); ok {
		if "Bearer "+t != sent {
			tc.mu.Unlock()
			return t, nil
		}
		delete(tc.m, scope) // refused
	}
	call, waiting := tc.inflight[scope]
	if !waiting {
		call = &tokenCall{done: make(chan struct{})}
		tc.inflight[scope] = call
	}
	tc.mu.Unlock()
	if waiting {
		select {
		case <-call.done:
			if errors.Is(call.err, context.Canceled) && ctx.Err() == nil {
				// The first caller gave up; this one has not.
				return c.fetchToken(ctx, ch, scope, sent)
			}
			return call.tok, call.err
		case <-ctx.Done():
			return "", fmt.Errorf("upstream: waiting for a token: %w", context.Cause(ctx))
		}
	}
	// The fetch runs under the first caller's deadline and cancellation.
	tok, life, err := c.requestToken(ctx, ch, scope)
	call.tok, call.err = tok, err
	tc.mu.Lock()
	if err == nil {
		tc.putLocked(scope, tok, life)
	}
	delete(tc.inflight, scope)
	tc.mu.Unlock()
	close(call.done)
	return tok, err
}

// tokenCall is a token fetch others may wait for.
type tokenCall struct {
	done chan struct{}
	tok  string
	err  error
}

// requestToken asks the realm of ch for a token for scope (the challenge's
// own scope when it names one), sending the credentials to that realm
// alone.
func (c *Client) requestToken(ctx context.Context, ch challenge, scope string) (tok string, life time.Duration, err error) {
	defer func() { c.counts.add(KindToken, err) }()
	realm, err := url.Parse(ch.params["realm"])
	if err != nil || (realm.Scheme != "http" && realm.Scheme != "https") || realm.Host == "" || realm.User != nil {
		return "", 0, fmt.Errorf("%w: token realm %q: want an http(s) URL", ErrInvalid, ch.params["realm"])
	}
	creds := c.cfg.Username != ""
	if creds && c.base.Scheme == "https" && realm.Scheme != "https" {
		// The upstream is reached over TLS: its credentials never go out
		// in clear text.
		return "", 0, fmt.Errorf("%w: token realm %s: not https, the credentials would go in clear", ErrInvalid, safeURL(realm))
	}
	q := realm.Query()
	if s := ch.params["service"]; s != "" {
		q.Set("service", s)
	}
	scopes := strings.Fields(ch.params["scope"])
	if len(scopes) == 0 {
		scopes = []string{scope}
	}
	for _, s := range scopes {
		q.Add("scope", s)
	}
	realm.RawQuery = q.Encode()

	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	req, err := c.newRequest(ctx, http.MethodGet, realm)
	if err != nil {
		return "", 0, err
	}
	if creds {
		req.SetBasicAuth(c.cfg.Username, c.cfg.Password)
	}
	resp, err := c.hc.Do(req) // no redirect is followed: the credentials stay with the realm
	if err != nil {
		return "", 0, transportError(ctx, req.Method, realm, err)
	}
	if err := check(resp, http.StatusOK); err != nil {
		return "", 0, fmt.Errorf("token: %w", err)
	}
	defer resp.Body.Close()
	b, err := readLimited(resp.Body, maxTokenBody, "token answer")
	if err != nil {
		return "", 0, bodyError(ctx, resp, err)
	}
	var tr tokenReply
	if err := json.Unmarshal(b, &tr); err != nil {
		return "", 0, fmt.Errorf("%w: token from %s: %v", ErrInvalid, safeURL(realm), err)
	}
	tok = tr.Token
	if tok == "" {
		tok = tr.AccessToken
	}
	if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return "", 0, fmt.Errorf("%w: token from %s: no usable token", ErrInvalid, safeURL(realm))
	}
	life = defaultTokenLife
	if tr.ExpiresIn > 0 {
		life = time.Duration(min(tr.ExpiresIn, int64(24*time.Hour/time.Second))) * time.Second
	}
	return tok, life, nil
}

// tokenCache keeps tokens per scope until shortly before they expire, by
// the client's clock.
type tokenCache struct {
	clock    func() time.Time
	mu       sync.Mutex
	m        map[string]cachedToken
	inflight map[string]*tokenCall
}

type cachedToken struct {
	token string
	until time.Time
}

func newTokenCache(clock func() time.Time) *tokenCache {
	return &tokenCache{clock: clock, m: map[string]cachedToken{}, inflight: map[string]*tokenCall{}}
}

func (tc *tokenCache) get(scope string) (string, bool) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.getLocked(scope)
}

func (tc *tokenCache) getLocked(scope string) (string, bool) {
	t, ok := tc.m[scope]
	if !ok {
		return "", false
	}
	if !tc.clock().Before(t.until) {
		delete(tc.m, scope)
		return "", false
	}
	return t.token, true
}

// putLocked keeps tok for life less a margin (a fifth of it, at most
// 30s), so that a request does not leave with a token about to expire.
func (tc *tokenCache) putLocked(scope, tok string, life time.Duration) {
	now := tc.clock()
	until := now.Add(life - min(life/5, maxTokenMargin))
	if len(tc.m) >= maxTokens {
		for s, t := range tc.m {
			if !now.Before(t.until) {
				delete(tc.m, s)
			}
		}
		if len(tc.m) >= maxTokens {
			clear(tc.m)
		}
	}
	tc.m[scope] = cachedToken{token: tok, until: until}
}
