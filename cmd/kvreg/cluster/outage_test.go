package cluster

import (
	"math/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs/s3/s3test"
	"github.com/kvreg/kvreg/kv/pg/pgtest"
)

// PostgreSQL stopped hard under load and started again, then the S3
// server likewise: while a dependency is down every replica answers 503
// UNAVAILABLE with Retry-After (never a 500) to what needs it, and
// /readyz 503, so haproxy takes them out; once it is back the replicas
// serve again by themselves, no restart of kvreg. Every acknowledged
// push pulls and fsck is clean.
// emptyDigest is the digest of the empty blob.
const emptyDigest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func TestClusterOutages(t *testing.T) {
	// Few, short retries of S3 requests: an outage longer than them is
	// what the test is about.
	c := newCluster(t, "max-attempts=3", "max-backoff=200ms")
	rng := rand.New(rand.NewSource(4242))
	l := newLoad(c, "outage/app", rng)
	stop := l.run(3, 77)
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	time.Sleep(1500 * time.Millisecond) // load before the outage
	c.outage(l, "database", "/v2/outage/app/tags/list", http.MethodGet, func() { pgtest.Stop(t) }, func() { pgtest.Start(t) })
	// A blob pushed whole (POST with its digest; the empty blob): the
	// start of an upload alone stores nothing, its record waits for its
	// first bytes, so it needs no storage.
	c.outage(l, "blob storage", "/v2/outage/app/blobs/uploads/?digest="+emptyDigest, http.MethodPost, func() { s3test.Stop(t) }, func() { s3test.Start(t) })
	time.Sleep(1500 * time.Millisecond) // load after both
	stop()
	stop = nil
	t.Logf("%s", l.summary())
	l.check(t)

	took, _ := c.waitClean(time.Now(), settleWithin)
	pulled := l.verify(t)
	t.Logf("fsck clean %v after the load; %d tags pulled byte for byte", took.Round(100*time.Millisecond), pulled)
	l.check(t)
	c.fsck()
}

// outage takes a dependency down (down), checks that every replica
// answers a request needing it (method path) and /readyz with 503, and
// that haproxy answers 503 too; then brings it back (up) and waits, bounded,
// for every replica to be ready again by itself.
func (c *cluster) outage(l *load, what, path, method string, down, up func()) {
	t := c.t
	t.Helper()
	down()
	began := time.Now()
	hc := &http.Client{Timeout: time.Minute}
	ask := func(method, url string) answer {
		a := l.send(t.Context(), hc, method, url, nil, nil)
		if a.err != nil {
			t.Fatalf("%s with the %s down: %v", url, what, a.err)
		}
		return a
	}
	for i, r := range c.replicas {
		a := ask(method, r.URL+path)
		if a.status != http.StatusServiceUnavailable || !strings.Contains(string(a.body), `"UNAVAILABLE"`) || a.header.Get("Retry-After") == "" {
			t.Fatalf("%s %s of replica %d with the %s down: %d (Retry-After %q): %s", method, path, i, what, a.status, a.header.Get("Retry-After"), a.body)
		}
		if rd := l.send(t.Context(), hc, http.MethodGet, r.URL+"/readyz", nil, nil); rd.err != nil || rd.status != http.StatusServiceUnavailable {
			t.Fatalf("/readyz of replica %d with the %s down: %d %v", i, what, rd.status, rd.err)
		}
	}
	// haproxy's checks take every replica out (two failed checks a
	// second apart); until then the replicas' own 503s come through. The
	// outage lasts two seconds at least, the load running into it.
	for {
		a := ask(method, c.lb.URL+path)
		if a.status != http.StatusServiceUnavailable {
			t.Fatalf("%s %s through haproxy with the %s down: %d: %s", method, path, what, a.status, a.body)
		}
		if (a.replica == "" && time.Since(began) > 2*time.Second) || time.Since(began) > 10*time.Second {
			break // haproxy's own: no replica left in the rotation
		}
		time.Sleep(200 * time.Millisecond) // waiting for haproxy's checks
	}
	held := time.Since(began)
	up()
	back := time.Now()
	for i, r := range c.replicas {
		for {
			rd := l.send(t.Context(), hc, http.MethodGet, r.URL+"/readyz", nil, nil)
			if rd.err == nil && rd.status == http.StatusOK {
				break
			}
			if time.Since(back) > 30*time.Second {
				t.Fatalf("replica %d not ready 30 s after the %s came back: %d %v", i, what, rd.status, rd.err)
			}
			time.Sleep(100 * time.Millisecond) // polling the replica
		}
	}
	ready := time.Since(back)
	// Through haproxy: every replica back in the rotation, serving.
	seen := map[string]bool{}
	for len(seen) < replicas {
		a := ask(http.MethodGet, c.lb.URL+"/v2/")
		if a.status == http.StatusOK {
			seen[a.replica] = true
		}
		if time.Since(back) > 30*time.Second {
			t.Fatalf("30 s after the %s came back haproxy reaches only %v", what, seen)
		}
		time.Sleep(50 * time.Millisecond) // waiting for haproxy's checks
	}
	t.Logf("%s down for %v; replicas ready %v and all in haproxy's rotation %v after it came back",
		what, held.Round(100*time.Millisecond), ready.Round(100*time.Millisecond), time.Since(back).Round(100*time.Millisecond))
}
