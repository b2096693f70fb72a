package upstream_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/api/upstream"
	"github.com/opencontainers/go-digest"
)

// every runs the three requests of a cache against c for img of repo and
// returns their errors by name.
func every(c *upstream.Client, repo string, img image) map[string]error {
	ctx := context.Background()
	ld, _ := img.layers[0].Digest()
	errs := map[string]error{
		"manifest by tag":    second(c.Manifest(ctx, repo, "v1")),
		"manifest by digest": second(c.Manifest(ctx, repo, img.digest)),
		"HEAD":               fourth(c.HeadManifest(ctx, repo, "v1")),
	}
	rc, _, err := c.Blob(ctx, repo, digest.Digest(ld.String()))
	if err == nil {
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
	}
	errs["blob"] = err
	return errs
}

// An upstream that is stopped, or answers 429 or 5xx, or cuts the
// connection, is unavailable: a cache serves what it has.
func TestUnavailableUpstream(t *testing.T) {
	stopped := httptest.NewServer(http.NotFoundHandler())
	stopped.Close()
	c := newClient(t, stopped.URL, true, newCounting(), newClock())
	ctx := context.Background()
	if _, err := c.Manifest(ctx, "lib/app", "v1"); !errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("stopped upstream: manifest: %v, want ErrUnavailable", err)
	}
	if _, _, _, err := c.HeadManifest(ctx, "lib/app", "v1"); !errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("stopped upstream: HEAD: %v, want ErrUnavailable", err)
	}
	if _, _, err := c.Blob(ctx, "lib/app", digest.FromString("x")); !errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("stopped upstream: blob: %v, want ErrUnavailable", err)
	}
	if got := c.Requests()[upstream.RequestKey{Kind: "manifest", Outcome: "unavailable"}]; got != 1 {
		t.Errorf("manifest unavailable counter %d, want 1", got)
	}

	srv := startUpstream(t, upstreamOpts{mode: tokens})
	img := push(t, srv.URL, "private/app:v1", 9)
	front := startProxy(t, srv.URL, nil)
	c = newClient(t, front.URL, true, newCounting(), newClock())
	for what, err := range every(c, "private/app", img) {
		if err != nil {
			t.Fatalf("through the proxy with no fault: %s: %v", what, err)
		}
	}
	for _, status := range []int{http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable} {
		front.setFault(func(w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "fault", status)
			return true
		})
		for what, err := range every(c, "private/app", img) {
			if !errors.Is(err, upstream.ErrUnavailable) || !strings.Contains(err.Error(), strconv.Itoa(status)) {
				t.Errorf("%d: %s: %v, want ErrUnavailable naming the status", status, what, err)
			}
		}
	}
	// A realm that fails the same way: a client with no token yet.
	front.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/token" {
			return false
		}
		http.Error(w, "slow down", http.StatusTooManyRequests)
		return true
	})
	fresh := newClient(t, front.URL, true, newCounting(), newClock())
	if _, err := fresh.Manifest(ctx, "private/app", "v1"); !errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("realm answering 429: %v, want ErrUnavailable", err)
	}
	if got := fresh.Requests()[upstream.RequestKey{Kind: "token", Outcome: "unavailable"}]; got != 1 {
		t.Errorf("token unavailable counter %d, want 1", got)
	}
	// A connection cut before any answer.
	front.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return true
		}
		conn.Close()
		return true
	})
	for what, err := range every(c, "private/app", img) {
		if !errors.Is(err, upstream.ErrUnavailable) {
			t.Errorf("connection cut: %s: %v, want ErrUnavailable", what, err)
		}
	}
}

// An upstream that sends no answer, or stops in the middle of a blob, is
// unavailable after the client's timeout.
func TestStalledUpstream(t *testing.T) {
	srv := startUpstream(t, upstreamOpts{})
	img := push(t, srv.URL, "lib/app:v1", 10)
	front := startProxy(t, srv.URL, nil)
	c, err := upstream.New(upstream.Config{URL: front.URL, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	front.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		<-r.Context().Done()
		return true
	})
	if _, err := c.Manifest(ctx, "lib/app", "v1"); !errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("no answer: manifest: %v, want ErrUnavailable", err)
	}
	ld, _ := img.layers[0].Digest()
	if _, _, err := c.Blob(ctx, "lib/app", digest.Digest(ld.String())); !errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("no answer: blob: %v, want ErrUnavailable", err)
	}
	front.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Length", "1000")
		w.Write([]byte("half"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		return true
	})
	rc, _, err := c.Blob(ctx, "lib/app", digest.Digest(ld.String()))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); !errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("a blob that stops: %v, want ErrUnavailable", err)
	}
}

// Bytes changed on the way (a proxy flips one, or drops the last) never
// pass for the content asked for.
func TestDigestMismatch(t *testing.T) {
	srv := startUpstream(t, upstreamOpts{})
	img := push(t, srv.URL, "lib/app:v1", 11)
	var truncate bool
	front := startProxy(t, srv.URL, func(resp *http.Response) error {
		if resp.StatusCode != http.StatusOK || resp.Request.Method != http.MethodGet {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if truncate {
			b = b[:len(b)-1]
		} else {
			b[len(b)/2] ^= 1
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	})
	c := newClient(t, front.URL, false, newCounting(), newClock())
	ctx := context.Background()
	for _, ref := range []string{"v1", img.digest} {
		if _, err := c.Manifest(ctx, "lib/app", ref); !errors.Is(err, upstream.ErrDigestMismatch) {
			t.Errorf("flipped manifest %s: %v, want ErrDigestMismatch", ref, err)
		}
	}
	for _, tr := range []bool{false, true} {
		truncate = tr
		for _, l := range img.layers {
			ld, _ := l.Digest()
			d := digest.Digest(ld.String())
			size, _ := l.Size()
			rc, _, err := c.Blob(ctx, "lib/app", d)
			if err != nil {
				t.Fatal(err)
			}
			// The length the caller expects from the manifest, not the
			// one the proxy announces.
			_, err = io.Copy(io.Discard, upstream.VerifyingReader(rc, d, size))
			rc.Close()
			if !errors.Is(err, upstream.ErrDigestMismatch) {
				t.Errorf("changed blob (truncated %v): %v, want ErrDigestMismatch", tr, err)
			}
		}
	}
}

// VerifyingReader passes the right bytes, and refuses others, a wrong
// length, and more bytes than announced as soon as they come.
func TestVerifyingReader(t *testing.T) {
	b := []byte("some blob bytes")
	d := digest.FromBytes(b)
	for _, c := range []struct {
		name string
		data []byte
		size int64
		ok   bool
	}{
		{"right", b, int64(len(b)), true},
		{"size unknown", b, -1, true},
		{"other bytes", []byte("some blob bytez"), int64(len(b)), false},
		{"shorter than said", b, int64(len(b)) + 1, false},
		{"longer than said", b, int64(len(b)) - 1, false},
	} {
		got, err := io.ReadAll(upstream.VerifyingReader(bytes.NewReader(c.data), d, c.size))
		if c.ok && (err != nil || !bytes.Equal(got, b)) {
			t.Errorf("%s: %v", c.name, err)
		}
		if !c.ok && !errors.Is(err, upstream.ErrDigestMismatch) {
			t.Errorf("%s: %v, want ErrDigestMismatch", c.name, err)
		}
	}
}

// A challenge the client cannot read is an error of its own: no panic,
// no request to a made-up realm, not "denied".
func TestMalformedChallenge(t *testing.T) {
	for _, h := range []string{`Bearer realm="unterminated`, `Bearer realm=`, `=x`, `Bearer realm="ftp://x/token"`, `Bearer realm="http://a/t" junk`} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", h)
			w.WriteHeader(http.StatusUnauthorized)
		}))
		ct := newCounting()
		c := newClient(t, srv.URL, true, ct, newClock())
		_, err := c.Manifest(context.Background(), "lib/app", "v1")
		if !errors.Is(err, upstream.ErrInvalid) || errors.Is(err, upstream.ErrDenied) {
			t.Errorf("challenge %q: %v, want ErrInvalid", h, err)
		}
		if n := len(ct.all()); n != 1 {
			t.Errorf("challenge %q: %d requests, want 1", h, n)
		}
		srv.Close()
	}
}
