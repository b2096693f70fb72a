package upstream_test

// The upstreams of the tests are real kvreg registries (package api over
// a registry from regtest) on loopback, filled by go-containerregistry's
// remote as any client would; proxies in front of them inject faults,
// redirect blob GETs or count requests, and forward everything else.

import (
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/kvreg/kvreg/api"
	"github.com/kvreg/kvreg/api/auth"
	"github.com/kvreg/kvreg/api/auth/token"
	"github.com/kvreg/kvreg/api/upstream"
	"github.com/kvreg/kvreg/refcount/regtest"
	"golang.org/x/crypto/bcrypt"
)

func TestMain(m *testing.M) { os.Exit(regtest.Run(m)) }

// The upstream's one user, who may do everything; anonymous callers pull
// public/*.
const (
	user = "alice"
	pass = "alice-pw"
)

var rules = []auth.Rule{
	{Repos: []string{"*"}, Users: []string{user}, Actions: []auth.Action{auth.Pull, auth.Push, auth.Delete}},
	{Repos: []string{"public/*"}, Anonymous: true, Actions: []auth.Action{auth.Pull}},
}

// mode is how the upstream authenticates.
type mode int

const (
	anonymous mode = iota // no authentication
	tokens                // the token flow, its realm its own /token
	basic                 // Basic only
)

type upstreamOpts struct {
	mode mode
	// realm, in token mode, is the token endpoint's URL in challenges
	// (empty: the upstream's own /token).
	realm string
}

// startUpstream serves a fresh kvreg on loopback until the test ends, in
// the mode o asks for; pushes go to the same registry through a second
// server with no authentication (pushed records the URL of the latter).
func startUpstream(t *testing.T, o upstreamOpts) *httptest.Server {
	t.Helper()
	reg := regtest.Open(t, regtest.Options{})
	cfg := api.Config{}
	if o.mode != anonymous {
		h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		users, err := auth.ParseHtpasswd(strings.NewReader(fmt.Sprintf("%s:%s\n", user, h)), auth.Options{})
		if err != nil {
			t.Fatal(err)
		}
		access, err := auth.NewAccess(rules, nil, users.Has)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Users, cfg.Access = users, access
	}
	if o.mode == tokens {
		key, err := token.NewSigningKey()
		if err != nil {
			t.Fatal(err)
		}
		iss, err := token.NewIssuer(token.IssuerConfig{Key: key})
		if err != nil {
			t.Fatal(err)
		}
		ver, err := token.NewVerifier(token.VerifierConfig{ValidName: api.ValidRepositoryName})
		if err != nil {
			t.Fatal(err)
		}
		ver.SetOwnKeys(key)
		cfg.Tokens = &api.TokenConfig{Issuer: iss, Verifier: ver, Realm: o.realm}
	}
	srv := httptest.NewServer(api.New(reg.Registry, cfg))
	t.Cleanup(srv.Close)
	open := httptest.NewServer(api.New(reg.Registry, api.Config{}))
	t.Cleanup(open.Close)
	pushTo.Store(srv.URL, open.URL)
	return srv
}

// pushTo maps an upstream's URL to that of its server without
// authentication.
var pushTo sync.Map

// image is what the tests push: an image and its parts.
type image struct {
	img      v1.Image
	digest   string
	manifest []byte
	layers   []v1.Layer
}

// push writes a random image to repo:tag of the upstream at base.
func push(t *testing.T, base, repoTag string, seed int64) image {
	t.Helper()
	if open, ok := pushTo.Load(base); ok {
		base = open.(string)
	}
	img, err := random.Image(4096, 2, random.WithSource(rand.NewSource(seed)))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(strings.TrimPrefix(base, "http://")+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(authn.Anonymous)); err != nil {
		t.Fatalf("push %s: %v", repoTag, err)
	}
	d, _ := img.Digest()
	raw, _ := img.RawManifest()
	ls, _ := img.Layers()
	return image{img: img, digest: d.String(), manifest: raw, layers: ls}
}

// clock is a settable clock for the client's token cache.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// counting counts the requests the client sends, by path, keeps the
// Authorization header of each, and forwards them untouched.
type counting struct {
	mu   sync.Mutex
	sent []sent
	base http.RoundTripper
}

// sent is one request the client sent.
type sent struct {
	host, path, auth string
}

func newCounting() *counting { return &counting{base: http.DefaultTransport} }

func (c *counting) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.sent = append(c.sent, sent{req.URL.Host, req.URL.Path, req.Header.Get("Authorization")})
	c.mu.Unlock()
	return c.base.RoundTrip(req)
}

// count is the number of requests to path, or with path "/v2/" to any
// path under it.
func (c *counting) count(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, s := range c.sent {
		if s.path == path || (path == "/v2/" && strings.HasPrefix(s.path, path)) {
			n++
		}
	}
	return n
}

func (c *counting) all() []sent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]sent(nil), c.sent...)
}

// newClient is a client of base with the counting transport and clock.
func newClient(t *testing.T, base string, creds bool, ct *counting, clk *clock) *upstream.Client {
	t.Helper()
	cfg := upstream.Config{URL: base, Transport: ct, Clock: clk.Now, Timeout: 10 * time.Second}
	if creds {
		cfg.Username, cfg.Password = user, pass
	}
	c, err := upstream.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// proxy is a reverse proxy to target whose answers fault (when set) may
// replace or change. The Host the client sent goes to the upstream, so
// that the realm it derives is the proxy's.
type proxy struct {
	*httptest.Server
	mu    sync.Mutex
	fault func(w http.ResponseWriter, r *http.Request) bool // true: answered
}

func startProxy(t *testing.T, target string, modify func(*http.Response) error) *proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host
		},
		ModifyResponse: modify,
	}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		f := p.fault
		p.mu.Unlock()
		if f != nil && f(w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *proxy) setFault(f func(w http.ResponseWriter, r *http.Request) bool) {
	p.mu.Lock()
	p.fault = f
	p.mu.Unlock()
}

func readAll(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
