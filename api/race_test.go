package api

// Push/delete races against one registry: real metadata (bbolt, or
// PostgreSQL with KVREG_TEST_BACKENDS=postgres) and a blob directory in a
// temporary directory, served over loopback by httptest, and clients that
// each have their own http.Client. Run them under the race detector:
//
//	go test -race -count=1 -run Race ./api/
//	KVREG_TEST_BACKENDS=postgres go test -race -count=1 -run Race ./api/
//
// Every test is bounded in operations and in time (the mixed one 4 s, each
// focused one 40 rounds or 20 s). Afterwards: no response
// was a 5xx, the invariant checker (what kvreg fsck runs) finds nothing,
// every listed tag pulls, and every blob a stored manifest needs is served.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

// ---- statistics ----

// raceStats counts responses by operation and status.
type raceStats struct {
	mu     sync.Mutex
	counts map[string]map[int]int
	sent   int
	server []string // 5xx responses
}

func (s *raceStats) add(op string, status int, what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts == nil {
		s.counts = map[string]map[int]int{}
	}
	if s.counts[op] == nil {
		s.counts[op] = map[int]int{}
	}
	s.counts[op][status]++
	s.sent++
	if status >= 500 {
		s.server = append(s.server, what)
	}
}

// report is "N requests; op: status×count ..." sorted.
func (s *raceStats) report() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ops []string
	for op := range s.counts {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests, %d 5xx", s.sent, len(s.server))
	for _, op := range ops {
		var sts []int
		for st := range s.counts[op] {
			sts = append(sts, st)
		}
		sort.Ints(sts)
		fmt.Fprintf(&b, "\n  %-22s", op)
		for _, st := range sts {
			fmt.Fprintf(&b, " %d×%d", st, s.counts[op][st])
		}
	}
	return b.String()
}

// ---- the registry ----

type raceEnv struct {
	t     *testing.T
	reg   *refcount.Registry
	rt    *regtest.Registry
	srv   *httptest.Server
	stats *raceStats
}

// newRaceEnv opens a registry through regtest (leases of an hour, pins of
// ten minutes, a clock that stands still: nothing expires while a test
// runs) and serves it on loopback.
func newRaceEnv(t *testing.T) *raceEnv {
	t.Helper()
	return newRaceEnvWith(t, regtest.Options{})
}

// raceAPIConfig is the API's configuration in the race tests: errors behind a
// 500 go to stderr, so that a failed race says why.
func raceAPIConfig() Config {
	return Config{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))}
}

// newRaceEnvWith is newRaceEnv with the registry's options.
func newRaceEnvWith(t *testing.T, o regtest.Options) *raceEnv {
	t.Helper()
	reg := regtest.Open(t, o)
	srv := httptest.NewServer(New(reg.Registry, raceAPIConfig()))
	t.Cleanup(srv.Close)
	return &raceEnv{t: t, reg: reg.Registry, rt: reg, srv: srv, stats: &raceStats{}}
}

// replicaClient is a client of another registry over the same database
// and blob store (a replica: PostgreSQL with Shared), served on a port of
// its own; without one, a client of the one registry.
func (e *raceEnv) replicaClient() *raceClient {
	c := e.client()
	if e.rt.Backend.DB != "postgres" || !e.rt.Opts().Shared {
		return c
	}
	srv := httptest.NewServer(New(e.rt.Replica().Registry, raceAPIConfig()))
	e.t.Cleanup(srv.Close)
	c.url = srv.URL
	return c
}

// raceClient is one client with its own connections. Its methods may run
// on any goroutine: they report with t.Errorf, never t.Fatal.
type raceClient struct {
	e   *raceEnv
	hc  *http.Client
	url string // the server it talks to, when not e.srv (a replica)
}

func (e *raceEnv) client() *raceClient {
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &raceClient{e: e, hc: &http.Client{
		Transport:     tr,
		Timeout:       60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type raceResp struct {
	status int
	header http.Header
	body   []byte
}

// code is the first error code of a spec error body.
func (r raceResp) code() string {
	var v struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	json.Unmarshal(r.body, &v)
	if len(v.Errors) == 0 {
		return ""
	}
	return v.Errors[0].Code
}

// do sends one request and counts its answer under op. A transport error
// is reported and returned as status 0.
func (c *raceClient) do(op, method, p string, h http.Header, body []byte) raceResp {
	u := p
	if !strings.HasPrefix(u, "http") {
		base := c.e.srv.URL
		if c.url != "" {
			base = c.url
		}
		u = base + p
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		c.e.t.Errorf("%s %s: %v", method, p, err)
		return raceResp{}
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.e.t.Errorf("%s %s: %v", method, p, err)
		return raceResp{}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.e.t.Errorf("%s %s: reading the body: %v", method, p, err)
	}
	c.e.stats.add(op, resp.StatusCode, method+" "+p)
	if resp.StatusCode >= 500 {
		c.e.t.Errorf("%s %s: %d %s", method, p, resp.StatusCode, b)
	}
	return raceResp{resp.StatusCode, resp.Header, b}
}

// expect reports a status outside want; it returns whether it was in.
func (c *raceClient) expect(what string, r raceResp, want ...int) bool {
	for _, w := range want {
		if r.status == w {
			return true
		}
	}
	if r.status != 0 && r.status < 500 {
		c.e.t.Errorf("%s: %d %s, want one of %v", what, r.status, r.body, want)
	}
	return false
}

// ---- content ----

type raceBlob struct {
	data   []byte
	digest string
}

func raceNewBlob(data []byte) raceBlob {
	return raceBlob{data: data, digest: digest.FromBytes(data).String()}
}

func raceRandomBlob(rng *rand.Rand, n int) raceBlob {
	b := make([]byte, n)
	rng.Read(b)
	return raceNewBlob(b)
}

func raceConfig(rng *rand.Rand) raceBlob {
	return raceNewBlob([]byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","config":{"Env":["SEED=%d"]}}`, rng.Int63())))
}

type raceManifest struct {
	mediaType string
	body      []byte
	digest    string
	blobs     []raceBlob      // config first
	children  []*raceManifest // of an index
}

type raceDesc struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int    `json:"size"`
}

func raceImage(config raceBlob, layers ...raceBlob) *raceManifest {
	v := struct {
		SchemaVersion int        `json:"schemaVersion"`
		MediaType     string     `json:"mediaType"`
		Config        raceDesc   `json:"config"`
		Layers        []raceDesc `json:"layers"`
	}{2, refcount.MediaTypeOCIManifest, raceDesc{"application/vnd.oci.image.config.v1+json", config.digest, len(config.data)}, []raceDesc{}}
	for _, l := range layers {
		v.Layers = append(v.Layers, raceDesc{"application/vnd.oci.image.layer.v1.tar", l.digest, len(l.data)})
	}
	body, _ := json.Marshal(v)
	return &raceManifest{mediaType: refcount.MediaTypeOCIManifest, body: body, digest: digest.FromBytes(body).String(),
		blobs: append([]raceBlob{config}, layers...)}
}

func raceIndex(children ...*raceManifest) *raceManifest {
	v := struct {
		SchemaVersion int        `json:"schemaVersion"`
		MediaType     string     `json:"mediaType"`
		Manifests     []raceDesc `json:"manifests"`
	}{2, refcount.MediaTypeOCIIndex, []raceDesc{}}
	for _, c := range children {
		v.Manifests = append(v.Manifests, raceDesc{c.mediaType, c.digest, len(c.body)})
	}
	body, _ := json.Marshal(v)
	return &raceManifest{mediaType: refcount.MediaTypeOCIIndex, body: body, digest: digest.FromBytes(body).String(), children: children}
}

// ---- push ----

// Ways to upload a blob.
const (
	upMonolithic = iota // POST ?digest= with the bytes
	upPostPut           // POST, then PUT ?digest= with the bytes
	upChunked           // POST, PATCH chunks with Content-Range, PUT ?digest=
	upMount             // POST ?mount=&from=; an upload if it is not mountable
	upHeadFirst         // HEAD; a monolithic upload only if it is not there
	upWays
)

var upNames = [...]string{"monolithic", "post+put", "chunked", "mount", "head-first"}

// uploadBlob stores b in repo the way how says; it reports whether the
// registry acknowledged it (201, or 200 to the HEAD of upHeadFirst).
func (c *raceClient) uploadBlob(repo string, b raceBlob, how int, from string) bool {
	base := "/v2/" + repo + "/blobs/uploads/"
	what := fmt.Sprintf("%s upload of %s to %s", upNames[how], b.digest[:19], repo)
	switch how {
	case upMonolithic:
		r := c.do("blob POST monolithic", http.MethodPost, base+"?digest="+b.digest, nil, b.data)
		return c.expect(what, r, http.StatusCreated)
	case upHeadFirst:
		r := c.do("blob HEAD", http.MethodHead, "/v2/"+repo+"/blobs/"+b.digest, nil, nil)
		if r.status == http.StatusOK {
			return true
		}
		if !c.expect(what+": HEAD", r, http.StatusNotFound) {
			return false
		}
		return c.uploadBlob(repo, b, upMonolithic, "")
	case upMount:
		r := c.do("blob POST mount", http.MethodPost, base+"?mount="+b.digest+"&from="+from, nil, nil)
		if r.status == http.StatusCreated {
			return true
		}
		if !c.expect(what+": mount", r, http.StatusAccepted) {
			return false
		}
		// Not mountable: the answer is a session to upload into.
		p := c.do("blob PUT", http.MethodPut, withDigest(r.header.Get("Location"), b.digest), nil, b.data)
		return c.expect(what+": PUT after a refused mount", p, http.StatusCreated)
	}
	r := c.do("blob POST start", http.MethodPost, base, nil, nil)
	if !c.expect(what+": POST", r, http.StatusAccepted) {
		return false
	}
	loc := r.header.Get("Location")
	body := b.data
	if how == upChunked {
		chunk := len(b.data)/3 + 1
		for off := 0; off < len(b.data); off += chunk {
			end := min(off+chunk, len(b.data))
			h := http.Header{"Content-Range": {fmt.Sprintf("%d-%d", off, end-1)}, "Content-Type": {"application/octet-stream"}}
			p := c.do("blob PATCH", http.MethodPatch, loc, h, b.data[off:end])
			if !c.expect(what+": PATCH", p, http.StatusAccepted) {
				return false
			}
			if l := p.header.Get("Location"); l != "" {
				loc = l
			}
		}
		body = nil
	}
	p := c.do("blob PUT", http.MethodPut, withDigest(loc, b.digest), nil, body)
	return c.expect(what+": PUT", p, http.StatusCreated)
}

// putManifest PUTs m under ref. It returns the status: 201, or 400
// MANIFEST_BLOB_UNKNOWN when allowMissing (something it names was deleted
// under it); anything else is reported.
func (c *raceClient) putManifest(repo, ref string, m *raceManifest, allowMissing bool) int {
	r := c.do("manifest PUT", http.MethodPut, "/v2/"+repo+"/manifests/"+ref, http.Header{"Content-Type": {m.mediaType}}, m.body)
	what := fmt.Sprintf("PUT manifest %s:%s", repo, ref)
	switch {
	case r.status == http.StatusCreated:
		if got := r.header.Get("Docker-Content-Digest"); got != m.digest {
			c.e.t.Errorf("%s: Docker-Content-Digest %q, want %q", what, got, m.digest)
		}
	case allowMissing && r.status == http.StatusBadRequest && r.code() == "MANIFEST_BLOB_UNKNOWN":
	default:
		c.expect(what, r, http.StatusCreated)
	}
	return r.status
}

// pushImage uploads m's blobs (each in a random way) and PUTs it under ref.
func (c *raceClient) pushImage(rng *rand.Rand, repo, ref string, m *raceManifest, from string, allowMissing bool) int {
	for _, b := range m.blobs {
		if !c.uploadBlob(repo, b, rng.Intn(upWays), from) {
			return 0
		}
	}
	return c.putManifest(repo, ref, m, allowMissing)
}

// ---- pull ----

// pull GETs ref in repo and, recursively, every child and blob it names,
// checking each digest. strict: everything must be there; otherwise a 404
// (something deleted meanwhile) ends the pull quietly. It returns the
// manifest's digest, "" if it was not there.
func (c *raceClient) pull(repo, ref string, strict bool) string {
	what := "GET manifest " + repo + ":" + ref
	r := c.do("manifest GET", http.MethodGet, "/v2/"+repo+"/manifests/"+ref, nil, nil)
	if r.status != http.StatusOK {
		if strict {
			c.expect(what, r, http.StatusOK)
		} else {
			c.expect(what, r, http.StatusNotFound)
		}
		return ""
	}
	d := digest.FromBytes(r.body).String()
	if got := r.header.Get("Docker-Content-Digest"); got != d {
		c.e.t.Errorf("%s: Docker-Content-Digest %q, bytes are %s", what, got, d)
	}
	if strings.Contains(ref, ":") && ref != d {
		c.e.t.Errorf("%s: served a manifest of digest %s", what, d)
	}
	var v struct {
		Config    *raceDesc  `json:"config"`
		Layers    []raceDesc `json:"layers"`
		Manifests []raceDesc `json:"manifests"`
	}
	if err := json.Unmarshal(r.body, &v); err != nil {
		c.e.t.Errorf("%s: %v", what, err)
		return d
	}
	descs := v.Layers
	if v.Config != nil {
		descs = append([]raceDesc{*v.Config}, descs...)
	}
	for _, ds := range descs {
		c.pullBlob(repo, ds.Digest, ds.Size, strict)
	}
	for _, ch := range v.Manifests {
		if c.pull(repo, ch.Digest, strict) == "" && !strict {
			return d
		}
	}
	return d
}

func (c *raceClient) pullBlob(repo, d string, size int, strict bool) bool {
	what := "GET blob " + repo + "@" + d
	r := c.do("blob GET", http.MethodGet, "/v2/"+repo+"/blobs/"+d, nil, nil)
	if r.status != http.StatusOK {
		if strict {
			c.expect(what, r, http.StatusOK)
		} else {
			c.expect(what, r, http.StatusNotFound)
		}
		return false
	}
	if got := digest.FromBytes(r.body).String(); got != d || (size >= 0 && len(r.body) != size) {
		c.e.t.Errorf("%s: served %d bytes of digest %s", what, len(r.body), got)
		return false
	}
	return true
}

func (c *raceClient) tags(repo string) []string {
	r := c.do("tags GET", http.MethodGet, "/v2/"+repo+"/tags/list", nil, nil)
	if r.status != http.StatusOK {
		c.expect("tags of "+repo, r, http.StatusNotFound)
		return nil
	}
	var v struct{ Tags []string }
	if err := json.Unmarshal(r.body, &v); err != nil {
		c.e.t.Errorf("tags of %s: %v", repo, err)
	}
	return v.Tags
}

func (c *raceClient) catalog() []string {
	r := c.do("catalog GET", http.MethodGet, "/v2/_catalog", nil, nil)
	if !c.expect("catalog", r, http.StatusOK) {
		return nil
	}
	var v struct{ Repositories []string }
	if err := json.Unmarshal(r.body, &v); err != nil {
		c.e.t.Errorf("catalog: %v", err)
	}
	return v.Repositories
}

// ---- the state afterwards ----

// verify runs after the clients stop: fsck is clean, every listed tag
// pulls in full, every manifest stored (tagged or held by a lease) is
// served with every blob and child it needs, and no upload is left. It
// returns the tags it pulled, as repo:tag -> manifest digest.
func (e *raceEnv) verify() map[string]string {
	t := e.t
	t.Helper()
	if _, err := e.reg.Sweep(1 << 20); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	probs, err := e.reg.Check(true)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	for _, p := range probs {
		t.Errorf("Check: %s", p)
	}
	c := e.client()
	pulled := map[string]string{}
	for _, repo := range c.catalog() {
		for _, tag := range c.tags(repo) {
			pulled[repo+":"+tag] = c.pull(repo, tag, true)
		}
	}
	// Every manifest the database holds, and what it needs.
	type need struct{ repo, manifest string }
	var needs []need
	blobsOf := map[need][]string{}
	err = e.reg.DB().View(func(tx *kv.Tx) error {
		repos, _, err := tx.Repos("", -1)
		if err != nil {
			return err
		}
		for _, repo := range repos {
			err := tx.ForEachManifest(repo, func(d string, m kv.Manifest) error {
				n := need{repo, d}
				needs = append(needs, n)
				blobsOf[n] = append(append([]string(nil), m.Blobs...), m.Children...)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range needs {
		if c.pull(n.repo, n.manifest, true) != n.manifest {
			t.Errorf("manifest %s@%s is stored but does not pull", n.repo, n.manifest)
		}
	}
	if ids := storedUploads(t, e.reg); len(ids) != 0 {
		t.Errorf("uploads left: %d", len(ids))
	}
	if t.Failed() {
		t.FailNow()
	}
	return pulled
}

// blobFileCount is the number of blobs stored.
func (e *raceEnv) blobFileCount() int {
	n := 0
	e.reg.Blobs().Walk(func(digest.Digest, string, int64) error { n++; return nil })
	return n
}

func (e *raceEnv) hasBlobFile(b raceBlob) bool {
	got, err := storedBlob(e.reg, digest.Digest(b.digest))
	if err == nil && !bytes.Equal(got, b.data) {
		e.t.Errorf("blob file %s holds other bytes", b.digest)
	}
	return err == nil
}

// raceBudget bounds a test in time (each client also has a bound in count).
type raceBudget struct {
	deadline time.Time
	// enough, when set, keeps the race going past deadline, up to hard,
	// until it has something to show: slower storage (blobs on S3) makes
	// fewer pushes fit in the same time.
	enough func() bool
	hard   time.Time
}

func (b raceBudget) over() bool {
	now := time.Now()
	if now.Before(b.deadline) {
		return false
	}
	return b.enough == nil || b.enough() || now.After(b.hard)
}

// ---- the tests ----

// Many clients push images that share base layers, overwrite the same tags
// with other images, delete tags, manifests by digest and blobs, and pull,
// for a bounded time, in two repositories.
func TestRacePushDeleteOverwrite(t *testing.T) {
	e := newRaceEnv(t)
	rng := rand.New(rand.NewSource(42))
	bases := []raceBlob{raceRandomBlob(rng, 48<<10), raceRandomBlob(rng, 24<<10), raceRandomBlob(rng, 12<<10)}
	var layers, configs []raceBlob
	for i := 0; i < 10; i++ {
		layers = append(layers, raceRandomBlob(rng, 2<<10+rng.Intn(6<<10)))
	}
	for i := 0; i < 6; i++ {
		configs = append(configs, raceConfig(rng))
	}
	var images []*raceManifest
	for i := 0; i < 16; i++ {
		ls := []raceBlob{bases[i%3]}
		if i%4 == 0 {
			ls = append(ls, bases[(i+1)%3])
		}
		ls = append(ls, layers[i%len(layers)])
		images = append(images, raceImage(configs[i%len(configs)], ls...))
	}
	var indexes []*raceManifest
	for i := 0; i < 4; i++ {
		indexes = append(indexes, raceIndex(images[i], images[i+5]))
	}
	allBlobs := append(append(append([]raceBlob(nil), bases...), layers...), configs...)
	all := map[string]bool{}
	for _, m := range append(append([]*raceManifest(nil), images...), indexes...) {
		all[m.digest] = true
	}
	repos := []string{"race/a", "race/b"}
	tags := []string{"t0", "t1", "t2", "t3"}

	const pushers, deleters, readers = 5, 2, 1
	// Bounds per client: pushes are slow (several requests, each write
	// fsynced), deletes and reads fast; all stop at the deadline.
	const maxPushes, maxOps = 400, 3000
	var wg sync.WaitGroup
	var pushes, acks, indexAcks int
	var mu sync.Mutex
	budget := raceBudget{deadline: time.Now().Add(4 * time.Second), hard: time.Now().Add(30 * time.Second), enough: func() bool {
		mu.Lock()
		defer mu.Unlock()
		return acks > 0
	}}
	for w := 0; w < pushers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := e.client()
			rng := rand.New(rand.NewSource(int64(100 + w)))
			for op := 0; op < maxPushes && !budget.over(); op++ {
				ri := rng.Intn(len(repos))
				repo, other, tag := repos[ri], repos[1-ri], tags[rng.Intn(len(tags))]
				var st int
				isIndex := rng.Intn(6) == 0
				if isIndex {
					ix := indexes[rng.Intn(len(indexes))]
					st = http.StatusCreated
					for _, ch := range ix.children {
						if s := c.pushImage(rng, repo, ch.digest, ch, other, true); s != http.StatusCreated {
							st = s
							break
						}
					}
					if st == http.StatusCreated {
						st = c.putManifest(repo, tag, ix, true)
					}
				} else {
					st = c.pushImage(rng, repo, tag, images[rng.Intn(len(images))], other, true)
				}
				mu.Lock()
				pushes++
				if st == http.StatusCreated {
					acks++
					if isIndex {
						indexAcks++
					}
				}
				mu.Unlock()
			}
		}(w)
	}
	for w := 0; w < deleters; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := e.client()
			rng := rand.New(rand.NewSource(int64(200 + w)))
			for op := 0; op < maxOps && !budget.over(); op++ {
				repo := repos[rng.Intn(len(repos))]
				switch k := rng.Intn(10); {
				case k < 4:
					tag := tags[rng.Intn(len(tags))]
					r := c.do("tag DELETE", http.MethodDelete, "/v2/"+repo+"/manifests/"+tag, nil, nil)
					c.expect("DELETE tag "+repo+":"+tag, r, http.StatusAccepted, http.StatusNotFound)
				case k < 7:
					var m *raceManifest
					if rng.Intn(4) == 0 {
						m = indexes[rng.Intn(len(indexes))]
					} else {
						m = images[rng.Intn(len(images))]
					}
					r := c.do("manifest DELETE", http.MethodDelete, "/v2/"+repo+"/manifests/"+m.digest, nil, nil)
					c.expect("DELETE manifest "+repo+"@"+m.digest, r, http.StatusAccepted, http.StatusNotFound, http.StatusConflict)
				default:
					b := allBlobs[rng.Intn(len(allBlobs))]
					r := c.do("blob DELETE", http.MethodDelete, "/v2/"+repo+"/blobs/"+b.digest, nil, nil)
					c.expect("DELETE blob "+repo+"@"+b.digest, r, http.StatusAccepted, http.StatusNotFound, http.StatusConflict)
				}
			}
		}(w)
	}
	for w := 0; w < readers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := e.client()
			rng := rand.New(rand.NewSource(int64(300 + w)))
			for op := 0; op < maxOps && !budget.over(); op++ {
				repo := repos[rng.Intn(len(repos))]
				switch rng.Intn(4) {
				case 0:
					for _, tag := range c.tags(repo) {
						c.pull(repo, tag, false)
					}
				case 1:
					c.pull(repo, tags[rng.Intn(len(tags))], false)
				case 2:
					b := allBlobs[rng.Intn(len(allBlobs))]
					r := c.do("blob HEAD", http.MethodHead, "/v2/"+repo+"/blobs/"+b.digest, nil, nil)
					if c.expect("HEAD blob", r, http.StatusOK, http.StatusNotFound) && r.status == http.StatusOK {
						c.pullBlob(repo, b.digest, len(b.data), false)
					}
				case 3:
					c.catalog()
				}
			}
		}(w)
	}
	wg.Wait()
	t.Logf("%d pushes, %d acknowledged (%d of them indexes)", pushes, acks, indexAcks)
	t.Logf("%s", e.stats.report())
	if n := len(e.stats.server); n > 0 {
		t.Fatalf("%d responses were 5xx, first: %s", n, e.stats.server[0])
	}
	if t.Failed() {
		t.FailNow()
	}
	if acks == 0 {
		t.Fatal("no push was acknowledged: the test proved nothing")
	}
	pulled := e.verify()
	for ref, d := range pulled {
		if !all[d] {
			t.Errorf("tag %s names %s, which no client pushed", ref, d)
		}
	}
	t.Logf("afterwards: %d tags pull, %d blob files, fsck clean", len(pulled), e.blobFileCount())
}

// startTogether runs fns at once (as near as goroutines allow) and waits.
func startTogether(fns ...func()) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, fn := range fns {
		wg.Add(1)
		go func(fn func()) {
			defer wg.Done()
			<-start
			fn()
		}(fn)
	}
	close(start)
	wg.Wait()
}

// Each focused test runs raceIterations rounds, or as many as fit in
// raceTimeLimit.
const (
	raceIterations = 40
	raceTimeLimit  = 20 * time.Second
)

// (a) A layer is uploaded again, or found by HEAD or a mount, while the
// deletion of its last reference runs. Either the deletion comes first and
// the upload brings the layer back, or the upload (lease, pin) comes first
// and holds it: the push that follows must succeed and pull, in the same
// repository or, through a mount, in another.
func TestRaceReuploadWhileLastReferenceDeleted(t *testing.T) {
	e := newRaceEnv(t)
	setup, a, b := e.client(), e.client(), e.client()
	rng := rand.New(rand.NewSource(7))
	i := e.rounds(raceIterations, func(i int) {
		layer := raceRandomBlob(rng, 16<<10)
		old := raceImage(raceConfig(rng), layer)
		newer := raceImage(raceConfig(rng), layer)
		repo, target := "ra/x", "ra/x"
		how := []int{upMonolithic, upChunked, upHeadFirst, upMount, upPostPut}[i%5]
		if how == upMount || i%3 == 0 {
			target = "ra/y"
		}
		if setup.pushImage(rng, repo, "old", old, "", false) != http.StatusCreated {
			t.Fatalf("iteration %d: setup push failed", i)
		}
		var del raceResp
		var put, head int
		startTogether(
			func() { del = a.do("tag DELETE", http.MethodDelete, "/v2/"+repo+"/manifests/old", nil, nil) },
			func() {
				if how == upHeadFirst {
					// As docker does: upload only if HEAD says it is missing.
					head = b.do("blob HEAD", http.MethodHead, "/v2/"+target+"/blobs/"+layer.digest, nil, nil).status
					if head != http.StatusOK && !b.uploadBlob(target, layer, upMonolithic, "") {
						return
					}
				} else if !b.uploadBlob(target, layer, how, repo) {
					return
				}
				if !b.uploadBlob(target, newer.blobs[0], upMonolithic, "") {
					return
				}
				put = b.putManifest(target, "new", newer, true)
			},
		)
		what := fmt.Sprintf("iteration %d (%s into %s)", i, upNames[how], target)
		if how == upHeadFirst {
			what += fmt.Sprintf(", HEAD of the layer said %d", head)
		}
		if del.status != http.StatusAccepted {
			t.Fatalf("%s: DELETE of the last reference: %d %s", what, del.status, del.body)
		}
		if put != http.StatusCreated {
			t.Fatalf("%s: the push that re-used the layer got %d", what, put)
		}
		e.checkClean(what)
		b.pull(target, "new", true)
		if r := b.do("manifest GET", http.MethodGet, "/v2/"+repo+"/manifests/"+old.digest, nil, nil); r.status != http.StatusNotFound {
			t.Fatalf("%s: the deleted image answers %d", what, r.status)
		}
		if e.hasBlobFile(old.blobs[0]) {
			t.Fatalf("%s: the deleted image's config is still on disk", what)
		}
		if !e.hasBlobFile(layer) {
			t.Fatalf("%s: the layer's file is gone", what)
		}
		// Clean up: nothing is left once the new tag goes.
		r := setup.do("tag DELETE", http.MethodDelete, "/v2/"+target+"/manifests/new", nil, nil)
		setup.expect(what+": cleanup", r, http.StatusAccepted)
		e.expectEmpty(what)
	})
	t.Logf("%d iterations; %s", i, e.stats.report())
}

// (a), the docker way: HEAD of a layer races the deletion of its last
// reference. A HEAD that answers 200 promises the layer to the push that
// asked (it pins the blob for the pin window, so that a push which was told
// "exists" can still reference it): the manifest PUT that follows, without
// uploading the layer, must be 201.
// A 404 is fine (the client then uploads).
//
// It runs with pins in memory and with pin rows (Shared); with pin rows on
// PostgreSQL, the DELETE goes to a replica of the registry that the HEAD
// goes to.
func TestRaceHeadSaysExistsWhileLastReferenceDeleted(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) { raceHeadSaysExists(t, shared) })
	}
}

func raceHeadSaysExists(t *testing.T, shared bool) {
	e := newRaceEnvWith(t, regtest.Options{Shared: shared})
	setup, a, b := e.client(), e.replicaClient(), e.client()
	rng := rand.New(rand.NewSource(12))
	const iterations = 60
	outcomes := map[string]int{}
	var broken []string
	i := e.rounds(iterations, func(i int) {
		layer := raceRandomBlob(rng, 16<<10)
		old := raceImage(raceConfig(rng), layer)
		newer := raceImage(raceConfig(rng), layer)
		repo := "rh/x"
		if setup.pushImage(rng, repo, "old", old, "", false) != http.StatusCreated {
			t.Fatalf("iteration %d: setup push failed", i)
		}
		var del, head raceResp
		var deleted atomic.Bool
		delay := 0
		startTogether(
			func() {
				del = a.do("tag DELETE", http.MethodDelete, "/v2/"+repo+"/manifests/old", nil, nil)
				deleted.Store(true)
			},
			func() {
				// One HEAD, sent after a number of cheap requests that grows
				// with the iteration, so that over the iterations it lands
				// before, during and after the deletion's commit. (A second
				// HEAD would find the pin of the first.)
				for k := 0; k < i%30 && !deleted.Load(); k++ {
					b.do("base GET", http.MethodGet, "/v2/", nil, nil)
					delay++
				}
				head = b.do("blob HEAD", http.MethodHead, "/v2/"+repo+"/blobs/"+layer.digest, nil, nil)
			},
		)
		what := fmt.Sprintf("iteration %d: HEAD (after %d requests) %d, DELETE of the last reference %d", i, delay, head.status, del.status)
		if del.status != http.StatusAccepted || (head.status != http.StatusOK && head.status != http.StatusNotFound) {
			t.Fatalf("%s", what)
		}
		if head.status == http.StatusNotFound {
			outcomes["HEAD 404"]++
		} else {
			if !b.uploadBlob(repo, newer.blobs[0], upMonolithic, "") {
				t.Fatalf("%s: config upload failed", what)
			}
			put := b.putManifest(repo, "new", newer, true)
			outcomes[fmt.Sprintf("HEAD 200, PUT %d", put)]++
			if put != http.StatusCreated {
				broken = append(broken, fmt.Sprintf("%s: told the layer exists, the manifest PUT got %d", what, put))
				// What the client would do next: upload it after all.
				if !b.uploadBlob(repo, layer, upMonolithic, "") || b.putManifest(repo, "new", newer, false) != http.StatusCreated {
					t.Fatalf("%s: the retry failed", what)
				}
			}
			b.pull(repo, "new", true)
			r := setup.do("tag DELETE", http.MethodDelete, "/v2/"+repo+"/manifests/new", nil, nil)
			setup.expect(what+": cleanup", r, http.StatusAccepted)
		}
		// Each HEAD that said 200 holds the layer for a push in flight:
		// let it go explicitly.
		for _, bl := range []raceBlob{layer, newer.blobs[0]} {
			r := setup.do("blob DELETE", http.MethodDelete, "/v2/"+repo+"/blobs/"+bl.digest, nil, nil)
			setup.expect(what+": cleanup", r, http.StatusAccepted, http.StatusNotFound)
		}
		e.expectEmpty(what)
	})
	t.Logf("%d iterations, outcomes %v; %s", i, outcomes, e.stats.report())
	for _, s := range broken {
		t.Error(s)
	}
}

// rounds runs round(0), round(1), ... until n have run, raceTimeLimit has
// passed or the test has failed; then it checks the registry as a whole
// (verify). It returns how many rounds ran.
func (e *raceEnv) rounds(n int, round func(i int)) int {
	deadline, i := time.Now().Add(raceTimeLimit), 0
	for ; i < n && !e.t.Failed() && time.Now().Before(deadline); i++ {
		round(i)
	}
	e.verify()
	return i
}

// expectEmpty requires, once a round has cleaned up after itself, the
// invariant checker to find nothing and the blob store to hold nothing.
func (e *raceEnv) expectEmpty(what string) {
	e.t.Helper()
	e.checkClean(what)
	if n := e.blobFileCount(); n != 0 {
		e.t.Fatalf("%s: %d blob files left after cleanup", what, n)
	}
}

// checkClean requires the invariant checker to find nothing.
func (e *raceEnv) checkClean(what string) {
	e.t.Helper()
	probs, err := e.reg.Check(true)
	if err != nil {
		e.t.Fatalf("%s: Check: %v", what, err)
	}
	for _, p := range probs {
		e.t.Errorf("%s: Check: %s", what, p)
	}
	if len(probs) > 0 {
		e.t.FailNow()
	}
}

// (b) A manifest PUT races the DELETE of a blob it references. Exactly one
// wins: the PUT (201) and then the DELETE is refused (409), or the DELETE
// (202) and then the PUT fails with MANIFEST_BLOB_UNKNOWN naming the blob.
// Never both: that would be a dangling reference.
func TestRaceManifestPutVsBlobDelete(t *testing.T) {
	e := newRaceEnv(t)
	setup, a, b := e.client(), e.client(), e.client()
	rng := rand.New(rand.NewSource(8))
	wins := map[string]int{}
	i := e.rounds(raceIterations, func(i int) {
		cfg, layer := raceConfig(rng), raceRandomBlob(rng, 8<<10)
		m := raceImage(cfg, layer)
		repo := "rb/x"
		for _, bl := range m.blobs {
			if !setup.uploadBlob(repo, bl, upMonolithic, "") {
				t.Fatalf("iteration %d: setup upload failed", i)
			}
		}
		victim := layer // the layer on even iterations, the config on odd ones
		if i%2 == 1 {
			victim = cfg
		}
		var del raceResp
		var put raceResp
		startTogether(
			func() { del = a.do("blob DELETE", http.MethodDelete, "/v2/"+repo+"/blobs/"+victim.digest, nil, nil) },
			func() {
				put = b.do("manifest PUT", http.MethodPut, "/v2/"+repo+"/manifests/v", http.Header{"Content-Type": {m.mediaType}}, m.body)
			},
		)
		what := fmt.Sprintf("iteration %d: PUT %d %s, DELETE blob %d %s", i, put.status, put.body, del.status, del.body)
		switch {
		case put.status == http.StatusCreated && del.status == http.StatusConflict:
			wins["manifest PUT"]++
			b.pull(repo, "v", true)
			r := setup.do("tag DELETE", http.MethodDelete, "/v2/"+repo+"/manifests/v", nil, nil)
			setup.expect(what+": cleanup", r, http.StatusAccepted)
		case del.status == http.StatusAccepted && put.status == http.StatusBadRequest && put.code() == "MANIFEST_BLOB_UNKNOWN":
			wins["blob DELETE"]++
			if !strings.Contains(string(put.body), victim.digest) {
				t.Fatalf("%s: the error does not name the missing blob", what)
			}
			if r := b.do("blob GET", http.MethodGet, "/v2/"+repo+"/blobs/"+victim.digest, nil, nil); r.status != http.StatusNotFound {
				t.Fatalf("%s: the deleted blob answers %d", what, r.status)
			}
			if e.hasBlobFile(victim) {
				t.Fatalf("%s: the deleted blob's file is still there", what)
			}
			if r := b.do("manifest GET", http.MethodGet, "/v2/"+repo+"/manifests/v", nil, nil); r.status != http.StatusNotFound {
				t.Fatalf("%s: the refused manifest answers %d", what, r.status)
			}
			other := cfg
			if victim.digest == cfg.digest {
				other = layer
			}
			r := setup.do("blob DELETE", http.MethodDelete, "/v2/"+repo+"/blobs/"+other.digest, nil, nil)
			setup.expect(what+": cleanup", r, http.StatusAccepted)
		default:
			t.Fatalf("%s: not one of the two allowed outcomes", what)
		}
		e.expectEmpty(what)
	})
	t.Logf("%d iterations, winners %v; %s", i, wins, e.stats.report())
}

// (b) for indexes: an index PUT races the DELETE by digest of a child it
// lists. The index wins (201; the DELETE is refused, 409) or the DELETE
// does (202; the index is refused with MANIFEST_BLOB_UNKNOWN).
func TestRaceIndexPutVsChildDelete(t *testing.T) {
	e := newRaceEnv(t)
	setup, a, b := e.client(), e.client(), e.client()
	rng := rand.New(rand.NewSource(9))
	wins := map[string]int{}
	i := e.rounds(raceIterations, func(i int) {
		child := raceImage(raceConfig(rng), raceRandomBlob(rng, 4<<10))
		ix := raceIndex(child)
		repo := "rb/ix"
		if setup.pushImage(rng, repo, child.digest, child, "", false) != http.StatusCreated {
			t.Fatalf("iteration %d: setup push failed", i)
		}
		var del, put raceResp
		startTogether(
			func() {
				del = a.do("manifest DELETE", http.MethodDelete, "/v2/"+repo+"/manifests/"+child.digest, nil, nil)
			},
			func() {
				put = b.do("manifest PUT", http.MethodPut, "/v2/"+repo+"/manifests/idx", http.Header{"Content-Type": {ix.mediaType}}, ix.body)
			},
		)
		what := fmt.Sprintf("iteration %d: index PUT %d %s, child DELETE %d %s", i, put.status, put.body, del.status, del.body)
		switch {
		case put.status == http.StatusCreated && del.status == http.StatusConflict:
			wins["index PUT"]++
			b.pull(repo, "idx", true)
			r := setup.do("tag DELETE", http.MethodDelete, "/v2/"+repo+"/manifests/idx", nil, nil)
			setup.expect(what+": cleanup", r, http.StatusAccepted)
			// The child was pushed by digest: its lease ended when the index
			// took it; the blobs' leases ended when the child did.
		case del.status == http.StatusAccepted && put.status == http.StatusBadRequest && put.code() == "MANIFEST_BLOB_UNKNOWN":
			wins["child DELETE"]++
			if r := b.do("manifest GET", http.MethodGet, "/v2/"+repo+"/manifests/"+child.digest, nil, nil); r.status != http.StatusNotFound {
				t.Fatalf("%s: the deleted child answers %d", what, r.status)
			}
		default:
			t.Fatalf("%s: not one of the two allowed outcomes", what)
		}
		e.expectEmpty(what)
	})
	t.Logf("%d iterations, winners %v; %s", i, wins, e.stats.report())
}

// (c) Two uploads of one digest at once, into one repository or two, in
// different ways: both 201, one file with the right bytes, one record
// linked from each repository, fsck clean, and each repository can use it.
func TestRaceTwoUploadsOfOneDigest(t *testing.T) {
	e := newRaceEnv(t)
	setup, a, b := e.client(), e.client(), e.client()
	rng := rand.New(rand.NewSource(10))
	i := e.rounds(raceIterations, func(i int) {
		x := raceRandomBlob(rng, 64<<10)
		ra, rb := "rc/x", "rc/x"
		if i%2 == 1 {
			rb = "rc/y"
		}
		howA, howB := []int{upMonolithic, upChunked, upPostPut}[i%3], []int{upMonolithic, upChunked, upPostPut}[(i/3)%3]
		var okA, okB bool
		startTogether(
			func() { okA = a.uploadBlob(ra, x, howA, "") },
			func() { okB = b.uploadBlob(rb, x, howB, "") },
		)
		what := fmt.Sprintf("iteration %d (%s into %s, %s into %s)", i, upNames[howA], ra, upNames[howB], rb)
		if !okA || !okB {
			t.Fatalf("%s: an upload was not acknowledged", what)
		}
		if n := e.blobFileCount(); n != 1 || !e.hasBlobFile(x) {
			t.Fatalf("%s: %d blob files, want the one", what, n)
		}
		err := e.reg.DB().View(func(tx *kv.Tx) error {
			rec, ok, err := tx.Blob(x.digest)
			if err != nil || !ok || rec.Size != int64(len(x.data)) {
				return fmt.Errorf("blob record %+v, %v, %v", rec, ok, err)
			}
			want := map[string]bool{ra: true, rb: true}
			got, err := tx.LinkingRepos(x.digest)
			if err != nil {
				return err
			}
			if len(got) != len(want) || !want[got[0]] || !want[got[len(got)-1]] {
				return fmt.Errorf("linked from %v, want %v", got, want)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ids := storedUploads(t, e.reg); len(ids) != 0 {
			t.Fatalf("%s: %d uploads left", what, len(ids))
		}
		e.checkClean(what)
		// Each upload is a push in flight that holds the blob until its own
		// manifest arrives: one manifest per upload.
		for k, repo := range []string{ra, rb} {
			m := raceImage(raceConfig(rng), x)
			if !setup.uploadBlob(repo, m.blobs[0], upMonolithic, "") || setup.putManifest(repo, fmt.Sprint("v", k), m, false) != http.StatusCreated {
				t.Fatalf("%s: a push using the blob in %s failed", what, repo)
			}
			setup.pull(repo, fmt.Sprint("v", k), true)
		}
		e.checkClean(what)
		for k, repo := range []string{ra, rb} {
			r := setup.do("tag DELETE", http.MethodDelete, "/v2/"+repo+"/manifests/"+fmt.Sprint("v", k), nil, nil)
			setup.expect(what+": cleanup", r, http.StatusAccepted)
		}
		e.expectEmpty(what)
	})
	t.Logf("%d iterations; %s", i, e.stats.report())
}

// Two pushes of different images under one tag at once, sharing a base
// layer: both 201; the tag ends on one of them, which pulls; the other's
// own layer and config are freed at once; the base stays.
func TestRaceTwoPushesOfOneTag(t *testing.T) {
	e := newRaceEnv(t)
	a, b := e.client(), e.client()
	rng := rand.New(rand.NewSource(11))
	base := raceRandomBlob(rng, 32<<10)
	i := e.rounds(raceIterations, func(i int) {
		ma := raceImage(raceConfig(rng), base, raceRandomBlob(rng, 4<<10))
		mb := raceImage(raceConfig(rng), base, raceRandomBlob(rng, 4<<10))
		repo := "rd/x"
		// Upload first, so that the PUTs race each other.
		for _, m := range []*raceManifest{ma, mb} {
			for _, bl := range m.blobs {
				if !a.uploadBlob(repo, bl, upMonolithic, "") {
					t.Fatalf("iteration %d: upload failed", i)
				}
			}
		}
		var sa, sb int
		startTogether(
			func() { sa = a.putManifest(repo, "v", ma, false) },
			func() { sb = b.putManifest(repo, "v", mb, false) },
		)
		what := fmt.Sprintf("iteration %d", i)
		if sa != http.StatusCreated || sb != http.StatusCreated {
			t.Fatalf("%s: PUTs %d and %d", what, sa, sb)
		}
		got := a.pull(repo, "v", true)
		winner, loser := ma, mb
		if got == mb.digest {
			winner, loser = mb, ma
		} else if got != ma.digest {
			t.Fatalf("%s: the tag names %s, neither image", what, got)
		}
		e.checkClean(what)
		// The loser was pushed by tag only: overwriting freed it (its blobs'
		// upload leases ended when it was stored).
		if r := a.do("manifest GET", http.MethodGet, "/v2/"+repo+"/manifests/"+loser.digest, nil, nil); r.status != http.StatusNotFound {
			t.Fatalf("%s: the overwritten image answers %d", what, r.status)
		}
		for _, bl := range loser.blobs {
			if bl.digest != base.digest && e.hasBlobFile(bl) {
				t.Fatalf("%s: the overwritten image's blob %s is still on disk", what, bl.digest)
			}
		}
		for _, bl := range winner.blobs {
			if !e.hasBlobFile(bl) {
				t.Fatalf("%s: the winner's blob %s is gone", what, bl.digest)
			}
		}
	})
	t.Logf("%d iterations; %s", i, e.stats.report())
}
