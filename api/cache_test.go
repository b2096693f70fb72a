package api_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvreg/kvreg/api"
	"github.com/kvreg/kvreg/api/auth"
)

// upstreamRegistry is a kvreg serving as the upstream of a mirror, behind
// a proxy that counts the requests it forwards and can be told to answer
// with a status of its own (429, 500) or to act as gone (502 from a
// closed upstream is what a stopped one gives: connection refused).
type upstreamRegistry struct {
	*testRegistry
	front    *httptest.Server
	mu       sync.Mutex
	gets     map[string]int // path -> GETs forwarded
	fail     atomic.Int32   // answer this status instead, when not 0
	stopped  atomic.Bool
	upstream *url.URL
}

func startUpstream(t *testing.T) *upstreamRegistry {
	t.Helper()
	u := &upstreamRegistry{testRegistry: startRegistry(t, regOptions{}), gets: map[string]int{}}
	target, _ := url.Parse(u.srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	u.front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u.stopped.Load() {
			// As a stopped server: the connection goes without an answer.
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
					return
				}
			}
		}
		if st := u.fail.Load(); st != 0 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, http.StatusText(int(st)), int(st))
			return
		}
		if r.Method == http.MethodGet {
			u.mu.Lock()
			u.gets[r.URL.Path]++
			u.mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(u.front.Close)
	return u
}

// blobGets counts the GETs of blob d the upstream was sent.
func (u *upstreamRegistry) blobGets(repo, d string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.gets["/v2/"+repo+"/blobs/"+d]
}

func (u *upstreamRegistry) allBlobGets() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for p, c := range u.gets {
		if strings.Contains(p, "/blobs/") {
			n += c
		}
	}
	return n
}

// startCache is a kvreg caching u as mirror hub (the default mirror),
// with the budget given (0: none) and a recheck of a tag at every pull.
func startCache(t *testing.T, u *upstreamRegistry, budget int64) *testRegistry {
	t.Helper()
	ms, err := api.CheckMirrors([]api.Mirror{{Prefix: "hub", URL: u.front.URL, Default: true, Recheck: time.Nanosecond}})
	if err != nil {
		t.Fatal(err)
	}
	return startRegistry(t, regOptions{Config: api.Config{Mirrors: ms, CacheMaxBytes: budget}})
}

// pullAll pulls ref's manifest and every blob through r, checking what it
// gets against m.
func pullAll(t *testing.T, r *testRegistry, repo, ref string, m manifest) {
	t.Helper()
	resp := r.get("/v2/"+repo+"/manifests/"+ref, nil)
	if resp.Status != http.StatusOK || !bytes.Equal(resp.Body, m.Body) || resp.Header.Get("Docker-Content-Digest") != m.Digest {
		t.Fatalf("GET %s:%s: %d %s", repo, ref, resp.Status, resp.Body)
	}
	for _, b := range m.AllBlobs() {
		resp := r.get("/v2/"+repo+"/blobs/"+b.Digest, nil)
		if resp.Status != http.StatusOK || !bytes.Equal(resp.Body, b.Data) {
			t.Fatalf("GET blob %s of %s: %d, %d bytes", b.Digest, repo, resp.Status, len(resp.Body))
		}
	}
}

// A pull through the cache gets the upstream's bytes and digests; a second
// pull sends no blob request upstream; by prefix, by the default mirror
// and by containerd's ?ns= alike; an unknown ns is never dialed; clients
// cannot push to or delete from a cached repository.
func TestCachePullThrough(t *testing.T) {
	up := startUpstream(t)
	rng := testRand(151)
	m := randomOCIImage(rng, nil, 3<<10, 5<<10)
	if resp := up.pushImage("library/app", "v1", m); resp.Status != http.StatusCreated {
		t.Fatalf("push upstream: %s", resp)
	}
	c := startCache(t, up, 0)
	pullAll(t, c, "hub/library/app", "v1", m)
	for _, b := range m.Blobs() {
		if n := up.blobGets("library/app", b.Digest); n != 1 {
			t.Errorf("blob %s: %d GETs upstream after the first pull, want 1", b.Digest, n)
		}
	}
	before := up.allBlobGets()
	pullAll(t, c, "hub/library/app", "v1", m)
	pullAll(t, c, "library/app", "v1", m) // the default mirror
	pullAll(t, c, "library/app", m.Digest, m)
	host := strings.TrimPrefix(up.front.URL, "http://")
	hostname := host[:strings.LastIndex(host, ":")]
	pullAll(t, c, "library/app", "v1?ns="+hostname, m)
	if n := up.allBlobGets(); n != before {
		t.Errorf("pulls of a cached image sent %d blob GETs upstream", n-before)
	}
	// HEAD, fresh and after a recheck, says the manifest's size.
	for i := 0; i < 2; i++ {
		if resp := c.head("/v2/hub/library/app/manifests/v1", nil); resp.Status != http.StatusOK || resp.Header.Get("Content-Length") != fmt.Sprint(len(m.Body)) {
			t.Errorf("HEAD of the cached manifest: %d, Content-Length %q, want %d", resp.Status, resp.Header.Get("Content-Length"), len(m.Body))
		}
	}
	if resp := c.get("/v2/library/app/manifests/v1?ns=example.com", nil); resp.Status != http.StatusNotFound {
		t.Errorf("an unknown ns: %d", resp.Status)
	}
	// The cached image is an ordinary record: tags list, stats.
	if resp := c.get("/v2/hub/library/app/tags/list", nil); resp.Status != http.StatusOK || !strings.Contains(string(resp.Body), `"v1"`) {
		t.Errorf("tags of the cached repository: %d %s", resp.Status, resp.Body)
	}
	if resp := c.do(http.MethodPut, "/v2/hub/library/app/manifests/v2", hdr("Content-Type", m.MediaType), m.Body); resp.Status != http.StatusForbidden {
		t.Errorf("a push to a cached repository: %d", resp.Status)
	}
	if resp := c.do(http.MethodPost, "/v2/hub/library/app/blobs/uploads/", nil, nil); resp.Status != http.StatusForbidden {
		t.Errorf("an upload to a cached repository: %d", resp.Status)
	}
	if resp := c.do(http.MethodDelete, "/v2/hub/library/app/manifests/"+m.Digest, nil, nil); resp.Status != http.StatusForbidden {
		t.Errorf("a delete in a cached repository: %d", resp.Status)
	}
	// A local repository of the default mirror's name stays local.
	local := randomOCIImage(rng, nil, 1<<10)
	if resp := c.pushImage("team/app", "v1", local); resp.Status != http.StatusCreated {
		t.Fatalf("local push: %s", resp)
	}
	pullAll(t, c, "team/app", "v1", local)
	if u, err := c.reg.CacheUsage(); err != nil || u.Images != 1 {
		t.Errorf("cache usage %+v %v, want 1 image", u, err)
	}
	// Counted: the one fill (the manifest, and its blobs when the pull
	// asked for them after the fill, as hits), the upstream's requests.
	ms := c.scrape()
	expectMetric(t, ms, `kvreg_cache_misses_total{kind="manifest"}`, 1)
	expectMetric(t, ms, `kvreg_upstream_requests_total{kind="blob",mirror="hub",outcome="ok"}`, float64(len(m.Blobs())))
	if ms[`kvreg_cache_hits_total{kind="blob"}`] < float64(5*len(m.Blobs())) || ms[`kvreg_cache_misses_total{kind="tag_recheck"}`] < 3 {
		t.Errorf("cache hits and rechecks: %v %v", ms[`kvreg_cache_hits_total{kind="blob"}`], ms[`kvreg_cache_misses_total{kind="tag_recheck"}`])
	}
}

// With the upstream stopped, or answering 429 or 500, cached pulls by tag
// and by digest still succeed; an uncached one is 503, and a pull by a
// tag the upstream now names differently takes the new image.
func TestCacheServesWhatItHasWhenTheUpstreamFails(t *testing.T) {
	up := startUpstream(t)
	rng := testRand(152)
	m := randomOCIImage(rng, nil, 2<<10)
	up.pushImage("library/app", "v1", m)
	c := startCache(t, up, 0)
	pullAll(t, c, "hub/library/app", "v1", m)

	for _, mode := range []string{"stopped", "429", "500"} {
		switch mode {
		case "stopped":
			up.stopped.Store(true)
		case "429":
			up.stopped.Store(false)
			up.fail.Store(http.StatusTooManyRequests)
		case "500":
			up.fail.Store(http.StatusInternalServerError)
		}
		pullAll(t, c, "hub/library/app", "v1", m)
		pullAll(t, c, "hub/library/app", m.Digest, m)
		if resp := c.get("/v2/hub/library/other/manifests/v1", nil); resp.Status != http.StatusServiceUnavailable {
			t.Errorf("%s: an uncached image: %d %s", mode, resp.Status, resp.Body)
		}
	}
	up.fail.Store(0)
	// The tag moves upstream: the next pull (recheck at every pull here)
	// takes the new image.
	m2 := randomOCIImage(rng, nil, 2<<10)
	up.pushImage("library/app", "v1", m2)
	pullAll(t, c, "hub/library/app", "v1", m2)
}

// Twenty pulls at once of an image nobody has pulled: one GET upstream per
// blob, every pull gets the image.
func TestCacheConcurrentPullsFetchOnce(t *testing.T) {
	up := startUpstream(t)
	rng := testRand(153)
	m := randomOCIImage(rng, nil, 64<<10, 96<<10, 32<<10)
	up.pushImage("library/big", "v1", m)
	c := startCache(t, up, 0)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { pullAll(t, c, "library/big", "v1", m) })
	}
	wg.Wait()
	for _, b := range m.Blobs() {
		if n := up.blobGets("library/big", b.Digest); n != 1 {
			t.Errorf("blob %s: %d GETs upstream, want 1", b.Digest, n)
		}
	}
}

// Two cached images sharing a base layer, a budget that holds one: the
// least recently pulled goes, its own layers freed, the base kept; the
// other still pulls; the cache's bytes end within the budget.
func TestCacheEvictsLeastRecentlyPulled(t *testing.T) {
	up := startUpstream(t)
	rng := testRand(154)
	base := randomLayer(rng, mtOCILayer, 40<<10)
	a := randomOCIImage(rng, []blob{base}, 30<<10)
	b := randomOCIImage(rng, []blob{base}, 30<<10)
	up.pushImage("library/a", "v1", a)
	up.pushImage("library/b", "v1", b)
	budget := int64(len(base.Data)+30<<10) + 8<<10 // the base, one own layer, a config and a manifest
	c := startCache(t, up, budget)
	pullAll(t, c, "hub/library/a", "v1", a)
	pullAll(t, c, "hub/library/b", "v1", b)
	reg := c.reg.Registry
	// The fill that went over the budget evicted before it answered.
	if u, err := reg.CacheUsage(); err != nil || u.Bytes > budget || u.Images != 1 {
		t.Fatalf("usage %+v (%v), want 1 image within the budget %d", u, err, budget)
	}
	// a was pulled first: it went, its own layer freed; b stays and
	// pulls with no request upstream.
	if _, err := reg.GetManifest("hub/library/a", a.Digest, false); err == nil {
		t.Errorf("the least recently pulled image was kept")
	}
	if c.hasBlobFile(a.Layers[1]) || c.hasBlobFile(*a.Config) {
		t.Errorf("the evicted image's own blobs are still stored")
	}
	if !c.hasBlobFile(base) {
		t.Errorf("the shared base layer was freed")
	}
	before := up.allBlobGets()
	pullAll(t, c, "hub/library/b", b.Digest, b)
	if n := up.allBlobGets(); n != before {
		t.Errorf("the surviving image sent %d blob GETs upstream", n-before)
	}
}

// An index is answered with the upstream's bytes at once and filled in the
// background (its children and their blobs, then the index with its tag):
// the client's requests for the children and the blobs are answered as
// they are stored, and once the fill is done the image is an ordinary
// cached record whose next pull goes nowhere upstream.
func TestCacheFillsAnIndexInTheBackground(t *testing.T) {
	up := startUpstream(t)
	rng := testRand(155)
	amd, arm := randomOCIImage(rng, nil, 20<<10), randomOCIImage(rng, nil, 30<<10)
	for _, c := range []manifest{amd, arm} {
		for _, b := range c.Blobs() {
			up.pushBlob("library/multi", b)
		}
		up.pushManifest("library/multi", c.Digest, c)
	}
	idx := index(mtOCIIndex, amd, arm)
	if resp := up.pushManifest("library/multi", "v1", idx); resp.Status != http.StatusCreated {
		t.Fatalf("push index upstream: %s", resp)
	}
	c := startCache(t, up, 0)
	pullAll(t, c, "library/multi", "v1", idx)
	for _, child := range idx.Children {
		pullAll(t, c, "library/multi", child.Digest, child)
	}
	if err := c.srv.Config.Handler.(*api.Server).Drain(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, b := range idx.AllBlobs() {
		if n := up.blobGets("library/multi", b.Digest); n != 1 {
			t.Errorf("blob %s: %d GETs upstream, want 1", b.Digest, n)
		}
	}
	info, err := c.reg.GetManifest("hub/library/multi", "v1", false)
	if err != nil || info.Digest.String() != idx.Digest {
		t.Fatalf("the index after the fill: %+v %v", info, err)
	}
	before := up.allBlobGets()
	pullAll(t, c, "hub/library/multi", idx.Digest, idx)
	if n := up.allBlobGets(); n != before {
		t.Errorf("a pull of the filled index sent %d blob GETs upstream", n-before)
	}
	if u, err := c.reg.CacheUsage(); err != nil || u.Images != 1 || u.Manifests != 3 {
		t.Errorf("cache usage %+v %v, want 1 image of 3 manifests", u, err)
	}
}

// Reached by ?ns= or through the default mirror, a cached repository is
// judged by its own access rules too: whoever may pull the short name may
// not pull what the rules keep from them under the cache's name.
func TestCacheRulesHoldThroughNsAndTheDefaultMirror(t *testing.T) {
	up := startUpstream(t)
	m := randomOCIImage(testRand(156), nil, 2<<10)
	up.pushImage("public/app", "v1", m)
	ms, err := api.CheckMirrors([]api.Mirror{{Prefix: "hub", URL: up.front.URL, Default: true}})
	if err != nil {
		t.Fatal(err)
	}
	rules := []auth.Rule{
		{Repos: []string{"*"}, Users: []string{"alice"}, Actions: []auth.Action{auth.Pull, auth.Push, auth.Delete}},
		{Repos: []string{"public/*"}, Anonymous: true, Actions: []auth.Action{auth.Pull}},
	}
	c := startRegistry(t, regOptions{Config: authConfig(t, api.Config{Mirrors: ms}, rules)})
	host := strings.TrimPrefix(up.front.URL, "http://")
	for _, p := range []string{"/v2/hub/public/app/manifests/v1", "/v2/public/app/manifests/v1?ns=" + host[:strings.LastIndex(host, ":")], "/v2/public/app/manifests/v1"} {
		if resp := c.get(p, nil); resp.Status == http.StatusOK {
			t.Errorf("anonymous GET %s of a cache the rules keep from anonymous callers: %d", p, resp.Status)
		}
	}
	if n := up.allBlobGets(); n != 0 {
		t.Errorf("refused pulls sent %d blob GETs upstream", n)
	}
}

// An upstream answer kvreg does not classify (400) is a 503 that says so,
// never a 500.
func TestCacheUnclassifiedUpstreamAnswerIs503(t *testing.T) {
	up := startUpstream(t)
	c := startCache(t, up, 0)
	up.fail.Store(http.StatusBadRequest)
	for _, p := range []string{"/v2/hub/library/other/manifests/v1", "/v2/hub/library/other/blobs/sha256:" + strings.Repeat("a", 64)} {
		if resp := c.get(p, nil); resp.Status != http.StatusServiceUnavailable {
			t.Errorf("upstream 400, GET %s: %d %s", p, resp.Status, resp.Body)
		}
	}
}
