package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Config says which upstream a client talks to, and how.
type Config struct {
	// URL is the upstream's base, http(s)://host[:port], without a path.
	URL string
	// Username and Password are the upstream credentials (none when
	// Username is empty). They go to the upstream itself when it asks for
	// Basic, and to the token realm its Bearer challenge names; never to
	// a redirect target or any other URL.
	Username, Password string
	// Timeout bounds one request until its answer's headers, a manifest
	// or token body, and any wait for the next byte of a blob stream (30s
	// when zero).
	Timeout time.Duration
	// Transport carries the requests (nil: a transport with dial, TLS
	// handshake and response header timeouts).
	Transport http.RoundTripper
	// Clock is the time of the token cache (time.Now when nil).
	Clock func() time.Time
	// UserAgent is sent with every request ("kvreg" when empty).
	UserAgent string
	// MaxManifestBytes bounds a manifest body (4 MiB when zero).
	MaxManifestBytes int64
}

const (
	defaultTimeout     = 30 * time.Second
	defaultMaxManifest = 4 << 20
	// maxRedirects bounds the redirects one request follows.
	maxRedirects = 5
)

// Client talks to one upstream registry. It is safe for concurrent use.
type Client struct {
	cfg    Config
	base   *url.URL
	hc     *http.Client
	tokens *tokenCache
	// basic is set once the upstream asked for Basic: later requests
	// send the credentials at once instead of being refused first.
	basic  atomic.Bool
	counts counts
}

// New checks cfg and returns a client of its upstream.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: upstream URL: %v", ErrInvalid, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "" {
		return nil, fmt.Errorf("%w: upstream URL %q: want http(s)://host[:port]", ErrInvalid, safeURL(u))
	}
	u.Path, u.RawPath = "", ""
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "kvreg"
	}
	if cfg.MaxManifestBytes <= 0 {
		cfg.MaxManifestBytes = defaultMaxManifest
	}
	if cfg.Transport == nil {
		cfg.Transport = defaultTransport(cfg.Timeout)
	}
	c := &Client{cfg: cfg, base: u, tokens: newTokenCache(cfg.Clock)}
	c.hc = &http.Client{
		Transport: cfg.Transport,
		// Redirects are followed by hand (follow), which decides what
		// credentials go where.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// defaultTransport is a transport whose every wait is bounded.
func defaultTransport(timeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,
		ForceAttemptHTTP2:     true,
	}
}

// URL is the upstream's base URL.
func (c *Client) URL() string { return c.base.String() }

// v2 is the URL of a path under the upstream's /v2/.
func (c *Client) v2(parts ...string) *url.URL {
	u := *c.base
	u.Path = "/v2/" + strings.Join(parts, "/")
	return &u
}

// sameOrigin says whether u is the upstream itself (scheme, host and
// port): the only place, with the token realm, credentials may go.
func (c *Client) sameOrigin(u *url.URL) bool {
	return u.Scheme == c.base.Scheme && strings.EqualFold(u.Host, c.base.Host)
}

func (c *Client) newRequest(ctx context.Context, method string, u *url.URL) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %v", ErrInvalid, method, safeURL(u), err)
	}
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	// Bytes as stored: the transport would otherwise ask for gzip and
	// undo it, and a blob's bytes would not be the ones its digest names.
	req.Header.Set("Accept-Encoding", "identity")
	return req, nil
}

// get sends method to u, a URL of the upstream, for repo: with the token
// the cache has for repo's pull scope (or Basic credentials, once the
// upstream asked for them); on a 401 it answers the challenge and tries
// once more. Redirects are followed without credentials unless they stay
// on the upstream. The answer is any status but 401 and 3xx; a 401 after
// the credentials were tried is ErrDenied.
func (c *Client) get(ctx context.Context, method, repo string, u *url.URL, accept string) (*http.Response, error) {
	scope := "repository:" + repo + ":pull"
	send := func(auth string) (*http.Response, error) {
		req, err := c.newRequest(ctx, method, u)
		if err != nil {
			return nil, err
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			return nil, transportError(ctx, method, u, err)
		}
		return c.follow(ctx, resp, scope, accept)
	}
	auth := c.authorization(scope)
	resp, err := send(auth)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !c.sameOrigin(resp.Request.URL) {
		return resp, err
	}
	// A 401 from the upstream itself: answer its challenge, once.
	auth, err = c.answer(ctx, resp, scope, auth)
	if err != nil {
		return nil, err
	}
	return send(auth)
}

// follow follows resp's redirects, sending the upstream's credentials
// only to the upstream itself: a blob store the upstream redirects to
// gets a plain GET.
func (c *Client) follow(ctx context.Context, resp *http.Response, scope, accept string) (*http.Response, error) {
	for hops := 0; ; hops++ {
		switch resp.StatusCode {
		case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
			http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		default:
			return resp, nil
		}
		from := resp.Request
		loc, err := resp.Location()
		drain(resp)
		if err != nil {
			return nil, fmt.Errorf("%w: %s %s: %d without a usable Location: %v", ErrInvalid, from.Method, safeURL(from.URL), resp.StatusCode, err)
		}
		if hops == maxRedirects {
			return nil, fmt.Errorf("%w: %s %s: more than %d redirects", ErrInvalid, from.Method, safeURL(from.URL), maxRedirects)
		}
		if loc.Scheme != "http" && loc.Scheme != "https" {
			return nil, fmt.Errorf("%w: %s %s: redirect to a %q URL", ErrInvalid, from.Method, safeURL(from.URL), loc.Scheme)
		}
		req, err := c.newRequest(ctx, from.Method, loc)
		if err != nil {
			return nil, err
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		if c.sameOrigin(loc) {
			if auth := c.authorization(scope); auth != "" {
				req.Header.Set("Authorization", auth)
			}
		}
		if resp, err = c.hc.Do(req); err != nil {
			return nil, transportError(ctx, req.Method, loc, err)
		}
	}
}

// drain reads a little of a body that is not wanted, so that the
// connection can be used again, and closes it.
func drain(resp *http.Response) {
	io.CopyN(io.Discard, resp.Body, 4<<10)
	resp.Body.Close()
}

// check turns an answer other than want into its error (closing it).
func check(resp *http.Response, want ...int) error {
	for _, s := range want {
		if resp.StatusCode == s {
			return nil
		}
	}
	return statusError(resp)
}

// withTimeout bounds ctx by the client's timeout.
func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, c.cfg.Timeout, errTimedOut)
}

// readLimited reads r up to limit bytes: more is ErrTooLarge.
func readLimited(r io.Reader, limit int64, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s over %d bytes", ErrTooLarge, what, limit)
	}
	return b, nil
}

// bodyError is a failure while reading an answer's body: the upstream
// stopped answering unless the caller gave up.
func bodyError(ctx context.Context, resp *http.Response, err error) error {
	if errors.Is(err, ErrTooLarge) {
		return fmt.Errorf("%s %s: %w", resp.Request.Method, safeURL(resp.Request.URL), err)
	}
	return transportError(ctx, resp.Request.Method, resp.Request.URL, err)
}
