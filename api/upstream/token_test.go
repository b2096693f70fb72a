package upstream_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvreg/kvreg/api/upstream"
	"github.com/opencontainers/go-digest"
)

// A token-mode upstream: public repositories pull without credentials,
// a private one is denied without them and served with them; tokens are
// asked for once per scope and kept until shortly before they expire (by
// the client's clock); the credentials go to the realm alone.
func TestTokenFlow(t *testing.T) {
	srv := startUpstream(t, upstreamOpts{mode: tokens})
	pub := push(t, srv.URL, "public/app:v1", 3)
	priv := push(t, srv.URL, "private/app:v1", 4)
	ctx := context.Background()

	anon := newClient(t, srv.URL, false, newCounting(), newClock())
	if m, err := anon.Manifest(ctx, "public/app", "v1"); err != nil || m.Digest.String() != pub.digest {
		t.Errorf("anonymous public pull: %v %v", m.Digest, err)
	}
	if _, err := anon.Manifest(ctx, "private/app", "v1"); !errors.Is(err, upstream.ErrDenied) {
		t.Errorf("anonymous private pull: %v, want ErrDenied", err)
	}
	ld, _ := priv.layers[0].Digest()
	if _, _, err := anon.Blob(ctx, "private/app", digest.Digest(ld.String())); !errors.Is(err, upstream.ErrDenied) {
		t.Errorf("anonymous private blob: %v, want ErrDenied", err)
	}

	wrong, err := upstream.New(upstream.Config{URL: srv.URL, Username: user, Password: "wrong"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.Manifest(ctx, "private/app", "v1"); !errors.Is(err, upstream.ErrDenied) || strings.Contains(err.Error(), "wrong") {
		t.Errorf("a wrong password: %v, want ErrDenied without the password", err)
	}
	if n := wrong.Requests()[upstream.RequestKey{Kind: "token", Outcome: "denied"}]; n != 1 {
		t.Errorf("token requests denied: %d, want 1", n)
	}

	ct, clk := newCounting(), newClock()
	c := newClient(t, srv.URL, true, ct, clk)
	pull := func(repo, ref string) {
		t.Helper()
		m, err := c.Manifest(ctx, repo, ref)
		if err != nil {
			t.Fatalf("pull %s:%s: %v", repo, ref, err)
		}
		if ref == "v1" && repo == "private/app" && m.Digest.String() != priv.digest {
			t.Fatalf("pull %s: %s, want %s", repo, m.Digest, priv.digest)
		}
	}
	pull("private/app", "v1")
	pull("private/app", priv.digest)
	if _, _, _, err := c.HeadManifest(ctx, "private/app", "v1"); err != nil {
		t.Fatal(err)
	}
	rc, n, err := c.Blob(ctx, "private/app", digest.Digest(ld.String()))
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, upstream.VerifyingReader(rc, digest.Digest(ld.String()), n))
	rc.Close()
	if got := ct.count("/token"); got != 1 {
		t.Errorf("%d token requests for one scope, want 1", got)
	}
	// kvreg's tokens live 5 minutes; the client keeps them a little less.
	clk.advance(4 * time.Minute)
	pull("private/app", "v1")
	if got := ct.count("/token"); got != 1 {
		t.Errorf("%d token requests after 4 minutes, want 1", got)
	}
	clk.advance(time.Minute)
	pull("private/app", "v1")
	if got := ct.count("/token"); got != 2 {
		t.Errorf("%d token requests after 5 minutes, want 2 (the token expired)", got)
	}
	push(t, srv.URL, "private/other:v1", 8)
	pull("private/other", "v1") // another scope
	pull("private/other", "v1")
	if got := ct.count("/token"); got != 3 {
		t.Errorf("%d token requests after a second scope, want 3", got)
	}
	for _, s := range ct.all() {
		switch {
		case s.path == "/token" && !strings.HasPrefix(s.auth, "Basic "):
			t.Errorf("token request without the credentials: %q", s.auth)
		case s.path != "/token" && strings.HasPrefix(s.auth, "Basic "):
			t.Errorf("credentials sent to %s", s.path)
		}
	}
	if got := c.Requests()[upstream.RequestKey{Kind: "token", Outcome: "ok"}]; got != 3 {
		t.Errorf("token ok counter %d, want 3", got)
	}
}

// The realm may be on another host than the registry (auth.docker.io for
// registry-1.docker.io): the credentials go there, and only there.
func TestTokenRealmOnAnotherHost(t *testing.T) {
	var target atomic.Pointer[url.URL]
	realm := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target.Load())
	}})
	t.Cleanup(realm.Close)
	srv := startUpstream(t, upstreamOpts{mode: tokens, realm: realm.URL + "/token"})
	u, _ := url.Parse(srv.URL)
	target.Store(u)
	priv := push(t, srv.URL, "private/app:v1", 5)

	ct := newCounting()
	c := newClient(t, srv.URL, true, ct, newClock())
	m, err := c.Manifest(context.Background(), "private/app", "v1")
	if err != nil || m.Digest.String() != priv.digest {
		t.Fatalf("pull through a realm on another host: %v %v", m.Digest, err)
	}
	realmHost := strings.TrimPrefix(realm.URL, "http://")
	var toRealm, bearer int
	for _, s := range ct.all() {
		switch {
		case s.host == realmHost && strings.HasPrefix(s.auth, "Basic "):
			toRealm++
		case s.host == realmHost:
			t.Errorf("a token request without the credentials: %q", s.auth)
		case strings.HasPrefix(s.auth, "Basic "):
			t.Errorf("credentials sent to %s%s", s.host, s.path)
		case strings.HasPrefix(s.auth, "Bearer "):
			bearer++
		}
	}
	if toRealm != 1 || bearer != 1 {
		t.Errorf("%d token requests to the realm, %d requests with the token; want 1 and 1", toRealm, bearer)
	}
}

// A Basic upstream gets the credentials after its first challenge, then
// with every request; without them, or with wrong ones, it is denied.
func TestBasicUpstream(t *testing.T) {
	srv := startUpstream(t, upstreamOpts{mode: basic})
	priv := push(t, srv.URL, "private/app:v1", 6)
	ctx := context.Background()
	ct := newCounting()
	c := newClient(t, srv.URL, true, ct, newClock())
	for range 2 {
		if m, err := c.Manifest(ctx, "private/app", "v1"); err != nil || m.Digest.String() != priv.digest {
			t.Fatalf("pull with Basic: %v %v", m.Digest, err)
		}
	}
	if got := ct.count("/v2/private/app/manifests/v1"); got != 3 {
		t.Errorf("%d requests for two pulls, want 3 (one refused with the challenge)", got)
	}
	if _, err := newClient(t, srv.URL, false, newCounting(), newClock()).Manifest(ctx, "private/app", "v1"); !errors.Is(err, upstream.ErrDenied) {
		t.Errorf("no credentials: %v, want ErrDenied", err)
	}
	wrong, _ := upstream.New(upstream.Config{URL: srv.URL, Username: user, Password: "wrong"})
	for range 2 {
		if _, err := wrong.Manifest(ctx, "private/app", "v1"); !errors.Is(err, upstream.ErrDenied) {
			t.Errorf("wrong password: %v, want ErrDenied", err)
		}
	}
}

// A blob GET the upstream redirects to another server (its blob store)
// follows the redirect with no credentials at all, in both modes.
func TestRedirectGetsNoCredentials(t *testing.T) {
	for _, m := range []mode{tokens, basic} {
		srv := startUpstream(t, upstreamOpts{mode: m})
		img := push(t, srv.URL, "private/app:v1", 7)
		blobs := map[string][]byte{}
		for _, l := range img.layers {
			d, _ := l.Digest()
			blobs[d.String()] = readCompressed(t, l)
		}
		var mu atomic.Int32
		var gotAuth atomic.Value
		gotAuth.Store("unset")
		store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Add(1)
			gotAuth.Store(r.Header.Get("Authorization") + r.Header.Get("Cookie"))
			b, ok := blobs[strings.TrimPrefix(r.URL.Path, "/store/")]
			if !ok {
				http.NotFound(w, r)
				return
			}
			w.Write(b)
		}))
		t.Cleanup(store.Close)
		front := startProxy(t, srv.URL, nil)
		front.setFault(func(w http.ResponseWriter, r *http.Request) bool {
			i := strings.Index(r.URL.Path, "/blobs/")
			if i < 0 || r.Header.Get("Authorization") == "" {
				return false // the upstream asks for credentials
			}
			http.Redirect(w, r, store.URL+"/store/"+r.URL.Path[i+len("/blobs/"):]+"?sig=secret", http.StatusTemporaryRedirect)
			return true
		})
		c := newClient(t, front.URL, true, newCounting(), newClock())
		for d, want := range blobs {
			rc, n, err := c.Blob(context.Background(), "private/app", digest.Digest(d))
			if err != nil {
				t.Fatalf("mode %d: blob %s: %v", m, d, err)
			}
			got := readAll(t, upstream.VerifyingReader(rc, digest.Digest(d), n))
			rc.Close()
			if len(got) != len(want) {
				t.Errorf("mode %d: blob %s: %d bytes, want %d", m, d, len(got), len(want))
			}
			if a := gotAuth.Load().(string); a != "" {
				t.Errorf("mode %d: the redirect target got %q", m, a)
			}
		}
		if mu.Load() != int32(len(blobs)) {
			t.Errorf("mode %d: the store got %d requests, want %d", m, mu.Load(), len(blobs))
		}
	}
}

// Concurrent requests that meet the same challenge fetch one token; a
// cached token the upstream refuses is fetched again, once.
func TestTokenFetchedOnceAndAgainWhenRefused(t *testing.T) {
	srv := startUpstream(t, upstreamOpts{mode: tokens})
	priv := push(t, srv.URL, "private/app:v1", 13)
	front := startProxy(t, srv.URL, nil)
	ct := newCounting()
	c := newClient(t, front.URL, true, ct, newClock())
	ctx := context.Background()
	const n = 16
	errs := make(chan error, n)
	for range n {
		go func() {
			m, err := c.Manifest(ctx, "private/app", "v1")
			if err == nil && m.Digest.String() != priv.digest {
				err = errors.New("wrong digest " + m.Digest.String())
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := ct.count("/token"); got != 1 {
		t.Errorf("%d concurrent pulls asked for %d tokens, want 1", n, got)
	}

	var refuse atomic.Bool
	refuse.Store(true)
	front.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") || !refuse.CompareAndSwap(true, false) {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+front.URL+`/token",service="kvreg",scope="repository:private/app:pull",error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
		return true
	})
	if _, err := c.Manifest(ctx, "private/app", "v1"); err != nil {
		t.Fatalf("after a refused token: %v", err)
	}
	if got := ct.count("/token"); got != 2 {
		t.Errorf("%d token requests after one was refused, want 2", got)
	}
	if _, err := c.Manifest(ctx, "private/app", "v1"); err != nil || ct.count("/token") != 2 {
		t.Errorf("the new token is kept: %v, %d token requests", err, ct.count("/token"))
	}
}

// Credentials never leave a TLS upstream in clear text, even to its realm.
func TestNoCredentialsToPlainRealmOfTLSUpstream(t *testing.T) {
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="http://127.0.0.1:1/token",service="x"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(tls.Close)
	ct := newCounting()
	ct.base = tls.Client().Transport
	c := newClient(t, tls.URL, true, ct, newClock())
	if _, err := c.Manifest(context.Background(), "private/app", "v1"); !errors.Is(err, upstream.ErrInvalid) {
		t.Errorf("an http realm for an https upstream: %v, want ErrInvalid", err)
	}
	if n := len(ct.all()); n != 1 {
		t.Errorf("%d requests, want 1 (none to the realm)", n)
	}
}
