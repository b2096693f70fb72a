package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The pull-through cache against a real upstream: a plain kvreg holding
// images crane pushed, and a second kvreg caching it as the mirror "hub"
// (also the default mirror). The upstream's access log counts what the
// cache asked of it.

// upstreamRequests counts the upstream's logged requests of a route and
// method (the JSON access log's "request" lines).
func upstreamRequests(t testing.TB, up *registry, route, method string) int {
	t.Helper()
	n := 0
	for _, l := range strings.Split(up.log(), "\n") {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var e struct{ Msg, Route, Method string }
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("upstream log line is not JSON: %v: %s", err, l)
		}
		if e.Msg == "request" && e.Route == route && e.Method == method {
			n++
		}
	}
	return n
}

func upstreamBlobGETs(t testing.TB, up *registry) int {
	t.Helper()
	return upstreamRequests(t, up, "blob", "GET")
}

// metric is the value of a series of the registry's /metrics (name with
// its labels as the exposition writes them), or -1 when it is absent.
func metric(t testing.TB, reg *registry, series string) float64 {
	t.Helper()
	st, _, body := reg.do(t, http.MethodGet, "/metrics", nil)
	if st != http.StatusOK {
		t.Fatalf("GET /metrics: %d", st)
	}
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatalf("/metrics: %q: %v", l, err)
			}
			return f
		}
	}
	return -1
}

// startCachePair starts an upstream kvreg and a cache kvreg that mirrors it
// under the prefix hub, hub being the default mirror too.
func startCachePair(t *testing.T, cacheArgs ...string) (up, cache *registry) {
	t.Helper()
	up = startRegistryWith(t, "", "--log-format", "json")
	args := append([]string{"--log-format", "json", "--mirror", "hub=http://" + up.addr, "--mirror-default", "hub"}, cacheArgs...)
	cache = startRegistryWith(t, "", args...)
	return up, cache
}

// pushUpstream pushes an image of one layer of size random bytes (on top of
// base when base is not "") with crane and returns its digest and blobs.
func pushUpstream(t *testing.T, c *crane, up *registry, rng io.Reader, repoTag, base string, size int64) (string, manifest) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "layer.tar")
	writeLayerFile(t, p, rng, textFile("etc/"+strings.ReplaceAll(repoTag, "/", "_"), repoTag+"\n"), randomFile("opt/data.bin", size))
	args := []string{"append", "-f", p, "-t", up.ref(repoTag)}
	if base != "" {
		args = append(args, "-b", up.ref(base))
	}
	c.must(t, args...)
	d := strings.TrimSpace(c.must(t, "digest", up.ref(repoTag)))
	repo, tag, _ := strings.Cut(repoTag, ":")
	m, md := up.getManifest(t, repo, tag)
	if md != d {
		t.Fatalf("upstream %s: crane digest %s, registry %s", repoTag, d, md)
	}
	return d, m
}

// TestCacheClients: crane, skopeo and regctl pull through the cache, by
// hub/<repo>:tag and through the default mirror by <repo>:tag (skopeo's
// first pull comes that way); digests equal the upstream's, and only the
// first pull fetches blobs upstream, one GET per blob.
func TestCacheClients(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end suite; not in -short")
	}
	t.Parallel()
	defer step(t, "cache clients")()
	c := newCrane(t)
	sk := newSkopeo(t)
	rc := newRegctl(t)
	up, cache := startCachePair(t)
	rc.must(t, "registry", "set", cache.host(), "--tls", "disabled")
	rng := newRand()

	type client struct {
		name  string
		first string // the name of the first pull: prefixed, or bare (the default mirror)
		// pull pulls ref (host/repo:tag) whole and returns the digest the
		// client reports for what it pulled.
		pull func(t *testing.T, ref string) string
	}
	clients := []client{
		{"crane", "hub/", func(t *testing.T, ref string) string {
			c.must(t, "pull", ref, filepath.Join(t.TempDir(), "img.tar"))
			return strings.TrimSpace(c.must(t, "digest", ref))
		}},
		{"skopeo", "", func(t *testing.T, ref string) string {
			dir := filepath.Join(t.TempDir(), "dir")
			sk.must(t, "copy", "--src-tls-verify=false", "docker://"+ref, "dir:"+dir)
			raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
			if err != nil {
				t.Fatal(err)
			}
			inspected := strings.TrimSpace(sk.must(t, "inspect", "--tls-verify=false", "--format", "{{.Digest}}", "docker://"+ref))
			if got := sha256Digest(raw); got != inspected {
				t.Errorf("skopeo: copied manifest is %s, inspect says %s", got, inspected)
			}
			return inspected
		}},
		{"regctl", "hub/", func(t *testing.T, ref string) string {
			layout := "ocidir://" + filepath.Join(t.TempDir(), "layout") + ":1"
			rc.must(t, "image", "copy", ref, layout)
			copied := strings.TrimSpace(rc.must(t, "image", "digest", layout))
			if reported := strings.TrimSpace(rc.must(t, "image", "digest", ref)); reported != copied {
				t.Errorf("regctl: copied image is %s, the cache says %s", copied, reported)
			}
			return copied
		}},
	}
	for _, cl := range clients {
		repo := "e2e/" + cl.name
		want, m := pushUpstream(t, c, up, rng, repo+":1", "", 512<<10)
		t.Run(cl.name, func(t *testing.T) {
			defer step(t, cl.name+" through the cache")()
			before := upstreamBlobGETs(t, up)
			if got := cl.pull(t, cache.ref(cl.first+repo+":1")); got != want {
				t.Errorf("%s pulled %s%s:1 through the cache as %s, upstream has %s", cl.name, cl.first, repo, got, want)
			}
			first := upstreamBlobGETs(t, up)
			if n := first - before; n != len(m.blobs()) {
				t.Errorf("first pull of %s%s:1: %d blob GETs upstream, want %d (one per blob)", cl.first, repo, n, len(m.blobs()))
			}
			// Again, by the prefixed name, by the bare name the default
			// mirror serves, and by digest: the cache answers alone.
			for _, ref := range []string{"hub/" + repo + ":1", repo + ":1", "hub/" + repo + "@" + want, repo + "@" + want} {
				if got := cl.pull(t, cache.ref(ref)); got != want {
					t.Errorf("%s pulled %s through the cache as %s, upstream has %s", cl.name, ref, got, want)
				}
			}
			if n := upstreamBlobGETs(t, up) - first; n != 0 {
				t.Errorf("pulls of a cached image made %d blob GETs upstream, want 0", n)
			}
		})
	}
	// The cache's own count of its upstream blob requests agrees with the
	// upstream's log.
	const series = `kvreg_upstream_requests_total{kind="blob",mirror="hub",outcome="ok"}`
	if got, want := metric(t, cache, series), float64(upstreamBlobGETs(t, up)); got != want {
		t.Errorf("cache's %s is %v, the upstream logged %v blob GETs", series, got, want)
	}
}

// faultProxy stands between the cache and the upstream: it forwards every
// request, or answers it with a fault status when one is set.
type faultProxy struct {
	srv     *httptest.Server
	status  atomic.Int32 // 0: forward
	seen    atomic.Int64 // requests received
	faulted atomic.Int64 // requests answered with the fault
}

func newFaultProxy(t *testing.T, upstream string) *faultProxy {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{}
	fwd := httputil.NewSingleHostReverseProxy(u)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.seen.Add(1)
		if st := int(p.status.Load()); st != 0 {
			p.faulted.Add(1)
			w.Header().Set("Retry-After", "60")
			http.Error(w, http.StatusText(st), st)
			return
		}
		fwd.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// TestCacheUpstreamDown: with the upstream answering 429, then 500, then
// stopped (the proxy in front of it answers 502), then unreachable
// (connection refused), cached images still pull by tag and by digest. Tags
// are rechecked on every pull, so each pull by tag asks the failing upstream
// and falls back; pulls by digest never ask it. An uncached image is a 503
// UNAVAILABLE.
func TestCacheUpstreamDown(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end suite; not in -short")
	}
	t.Parallel()
	defer step(t, "cache with the upstream failing")()
	c := newCrane(t)
	up := startRegistryWith(t, "", "--log-format", "json")
	proxy := newFaultProxy(t, "http://"+up.addr)
	cache := startRegistryWith(t, "", "--log-format", "json", "--mirror", "hub="+proxy.srv.URL, "--mirror-default", "hub",
		"--mirror-recheck", "1ms")
	rng := newRand()
	want, _ := pushUpstream(t, c, up, rng, "e2e/kept:1", "", 256<<10)
	pushUpstream(t, c, up, rng, "e2e/never:1", "", 64<<10)

	c.must(t, "pull", cache.ref("hub/e2e/kept:1"), filepath.Join(t.TempDir(), "img.tar"))
	if got := strings.TrimSpace(c.must(t, "digest", cache.ref("hub/e2e/kept:1"))); got != want {
		t.Fatalf("cached hub/e2e/kept:1 is %s, upstream has %s", got, want)
	}

	pullCached := func(t *testing.T, refs ...string) {
		t.Helper()
		for _, ref := range refs {
			c.must(t, "pull", cache.ref(ref), filepath.Join(t.TempDir(), "img.tar"))
			raw := c.must(t, "manifest", cache.ref(ref))
			if got := sha256Digest([]byte(raw)); got != want {
				t.Errorf("crane manifest %s: bytes of %s, want %s", ref, got, want)
			}
		}
	}
	phase := func(t *testing.T, asked bool) {
		t.Helper()
		seen := proxy.seen.Load()
		pullCached(t, "hub/e2e/kept@"+want, "e2e/kept@"+want)
		if n := proxy.seen.Load() - seen; n != 0 {
			t.Errorf("pulls by digest of a cached image sent %d requests upstream, want 0", n)
		}
		pullCached(t, "hub/e2e/kept:1", "e2e/kept:1")
		if n := proxy.seen.Load() - seen; asked && n == 0 {
			t.Errorf("pulls by tag with a 1ms recheck sent no request upstream")
		}
		for _, repo := range []string{"hub/e2e/never", "e2e/never"} {
			st, _, body := cache.do(t, http.MethodGet, "/v2/"+repo+"/manifests/1", map[string]string{"Accept": manifestAccept})
			if st != http.StatusServiceUnavailable || !strings.Contains(string(body), "UNAVAILABLE") {
				t.Errorf("GET %s:1 (never cached): %d %s, want 503 UNAVAILABLE", repo, st, body)
			}
			t.Logf("GET %s:1 (never cached): %d %s", repo, st, strings.TrimSpace(string(body)))
		}
	}
	for _, st := range []int{http.StatusTooManyRequests, http.StatusInternalServerError} {
		t.Run(fmt.Sprint(st), func(t *testing.T) {
			proxy.status.Store(int32(st))
			faulted := proxy.faulted.Load()
			phase(t, true)
			if proxy.faulted.Load() == faulted {
				t.Errorf("the upstream never answered %d", st)
			}
		})
	}
	proxy.status.Store(0)
	t.Run("Stopped", func(t *testing.T) {
		up.stop(t) // the proxy answers 502
		phase(t, true)
	})
	t.Run("Unreachable", func(t *testing.T) {
		proxy.srv.Close() // connection refused
		phase(t, false)
	})
}

// cacheStats is the part of `kvreg stats --json` about the cache.
type cacheStats struct {
	Cache *struct {
		Bytes    int64 `json:"bytes"`
		Images   int64 `json:"images"`
		MaxBytes int64 `json:"maxBytes"`
	} `json:"cache"`
}

// TestCacheBudget: two images sharing a base layer and a budget that holds
// one. Pulling B after A evicts A (the least recently pulled); B then pulls
// with no upstream blob GET, the cache's bytes stay within the budget,
// pulling A again goes upstream and evicts B, and fsck is clean.
func TestCacheBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end suite; not in -short")
	}
	t.Parallel()
	defer step(t, "cache budget")()
	c := newCrane(t)
	rng := newRand()
	up := startRegistryWith(t, "", "--log-format", "json")
	pushUpstream(t, c, up, rng, "e2e/base:1", "", 384<<10)
	digA, _ := pushUpstream(t, c, up, rng, "e2e/a:1", "e2e/base:1", 192<<10)
	digB, _ := pushUpstream(t, c, up, rng, "e2e/b:1", "e2e/base:1", 192<<10)
	imgBytes := func(repo, d string) (int64, map[string]int64) {
		_, _, body := up.do(t, "GET", "/v2/"+repo+"/manifests/"+d, map[string]string{"Accept": manifestAccept})
		var m struct {
			Config descriptor   `json:"config"`
			Layers []descriptor `json:"layers"`
		}
		mustJSON(t, body, &m)
		blobs := map[string]int64{m.Config.Digest: m.Config.Size}
		for _, l := range m.Layers {
			blobs[l.Digest] = l.Size
		}
		n := int64(len(body))
		for _, s := range blobs {
			n += s
		}
		return n, blobs
	}
	sizeA, blobsA := imgBytes("e2e/a", digA)
	sizeB, blobsB := imgBytes("e2e/b", digB)
	union := sizeA + sizeB
	shared := 0
	for d, s := range blobsA {
		if _, ok := blobsB[d]; ok {
			union -= s
			shared++
		}
	}
	if shared != 1 {
		t.Fatalf("images a and b share %d blobs, want 1 (the base layer)", shared)
	}
	budget := (max(sizeA, sizeB) + union) / 2
	t.Logf("image a %d bytes, b %d, both %d; budget %d", sizeA, sizeB, union, budget)

	cache := startRegistryWith(t, "", "--log-format", "json", "--mirror", "hub=http://"+up.addr, "--mirror-default", "hub",
		"--cache-max-bytes", fmt.Sprint(budget))
	pull := func(t *testing.T, ref string) {
		t.Helper()
		c.must(t, "pull", cache.ref(ref), filepath.Join(t.TempDir(), "img.tar"))
	}
	cachedRepos := func(t *testing.T) map[string]int {
		t.Helper()
		var rep struct {
			Repositories []struct {
				Name      string `json:"name"`
				Manifests int    `json:"manifests"`
				Cached    bool   `json:"cached"`
			} `json:"repositories"`
		}
		out := mustRun(t, time.Minute, nil, kvregBin, "ls", "--root", cache.root, "--json").stdout
		mustJSON(t, []byte(out), &rep)
		got := map[string]int{}
		for _, r := range rep.Repositories {
			if !r.Cached {
				t.Errorf("kvreg ls: %s is not marked cached", r.Name)
			}
			if r.Manifests > 0 {
				got[r.Name] = r.Manifests
			}
		}
		t.Logf("cached repositories holding manifests: %v", got)
		return got
	}
	withinBudget := func(t *testing.T) {
		t.Helper()
		var st cacheStats
		mustJSON(t, []byte(mustRun(t, time.Minute, nil, kvregBin, "stats", "--root", cache.root, "--json").stdout), &st)
		if st.Cache == nil {
			t.Fatalf("kvreg stats --json has no cache line")
		}
		if st.Cache.MaxBytes != budget || st.Cache.Bytes > budget || st.Cache.Images != 1 {
			t.Errorf("kvreg stats: cache %d bytes in %d images, budget %d; want at most %d bytes in 1 image", st.Cache.Bytes, st.Cache.Images, st.Cache.MaxBytes, budget)
		}
		if n := cache.blobsSize(t); n > budget {
			t.Errorf("the cache's blob store holds %d bytes, over the budget %d", n, budget)
		}
		text := mustRun(t, time.Minute, nil, kvregBin, "stats", "--root", cache.root).stdout
		if !strings.Contains(text, "cache ") || !strings.Contains(text, "budget") {
			t.Errorf("kvreg stats has no cache line with the budget:\n%s", text)
		}
	}

	pull(t, "hub/e2e/a:1")
	if got := cachedRepos(t); got["hub/e2e/a"] != 1 {
		t.Fatalf("after pulling a: cached %v, want hub/e2e/a", got)
	}
	pull(t, "hub/e2e/b:1")
	if got := cachedRepos(t); got["hub/e2e/a"] != 0 || got["hub/e2e/b"] != 1 {
		t.Errorf("after pulling b: cached %v, want hub/e2e/b alone (a evicted)", got)
	}
	withinBudget(t)
	for d := range blobsA {
		if _, inB := blobsB[d]; inB && !cache.hasBlobFile(t, d) {
			t.Errorf("base layer %s, which b still uses, was freed with a", d)
		}
		if _, inB := blobsB[d]; !inB && cache.hasBlobFile(t, d) {
			t.Errorf("blob %s of the evicted a alone is still stored", d)
		}
	}

	before := upstreamBlobGETs(t, up)
	pull(t, "hub/e2e/b:1")
	pull(t, "e2e/b@"+digB)
	if n := upstreamBlobGETs(t, up) - before; n != 0 {
		t.Errorf("pulling the cached b made %d blob GETs upstream, want 0", n)
	}

	// a by digest is gone from the cache: it is fetched again, and b, now
	// the least recently pulled, goes.
	manBefore := upstreamRequests(t, up, "manifest", "GET")
	raw := c.must(t, "manifest", cache.ref("hub/e2e/a@"+digA))
	if got := sha256Digest([]byte(raw)); got != digA {
		t.Errorf("crane manifest hub/e2e/a@%s: bytes of %s", digA, got)
	}
	if n := upstreamRequests(t, up, "manifest", "GET") - manBefore; n < 1 {
		t.Errorf("the evicted a by digest made %d manifest GETs upstream, want at least 1", n)
	}
	if n := upstreamBlobGETs(t, up) - before; n < 1 {
		t.Errorf("refilling the evicted a made no blob GET upstream")
	}
	if got := cachedRepos(t); got["hub/e2e/a"] != 1 || got["hub/e2e/b"] != 0 {
		t.Errorf("after pulling a again: cached %v, want hub/e2e/a alone (b evicted)", got)
	}
	withinBudget(t)
	if got := metric(t, cache, "kvreg_cache_evictions_total"); got != 2 {
		t.Errorf("kvreg_cache_evictions_total %v, want 2 (a, then b)", got)
	}
	cache.fsck(t, true)
}
