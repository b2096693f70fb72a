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
	"fmt"
	"log/slog"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvreg/kvreg/api/racetest"
	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

// ---- the registry ----

type raceEnv struct {
	t     *testing.T
	reg   *refcount.Registry
	rt    *regtest.Registry
	srv   *httptest.Server
	stats *racetest.Stats
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
	return &raceEnv{t: t, reg: reg.Registry, rt: reg, srv: srv, stats: &racetest.Stats{}}
}

// replicaClient is a client of another registry over the same database
// and blob store (a replica: PostgreSQL with Shared), served on a port of
// its own; without one, a client of the one registry.
func (e *raceEnv) replicaClient() *racetest.Client {
	c := e.client()
	if e.rt.Backend.DB != "postgres" || !e.rt.Opts().Shared {
		return c
	}
	srv := httptest.NewServer(New(e.rt.Replica().Registry, raceAPIConfig()))
	e.t.Cleanup(srv.Close)
	c.Base = srv.URL
	return c
}

// client is a race client of the registry, with its own connections.
func (e *raceEnv) client() *racetest.Client {
	return racetest.New(e.t, e.srv.URL, e.stats, racetest.Options{IdleConnsPerHost: 4, Timeout: 60 * time.Second})
}

// ---- the state afterwards ----

// verify runs after the clients stop: fsck is clean, every listed tag
// pulls in full, every manifest stored (tagged or held by a lease) is
// served with every blob and child it needs, and no upload is left. It
// returns the tags it pulled, as repo:tag -> manifest digest.
func (e *raceEnv) verify() map[string]digest.Digest {
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
	pulled := map[string]digest.Digest{}
	for _, repo := range c.Catalog() {
		for _, tag := range c.Tags(repo) {
			pulled[repo+":"+tag] = digest.FromBytes(c.Pull(repo, tag, true))
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
		if got := c.Pull(n.repo, n.manifest, true); got == nil || digest.FromBytes(got).String() != n.manifest {
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

func (e *raceEnv) hasBlobFile(b racetest.Blob) bool {
	got, err := storedBlob(e.reg, b.Digest)
	if err == nil && !bytes.Equal(got, b.Data) {
		e.t.Errorf("blob file %s holds other bytes", b.Digest)
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
	bases := []racetest.Blob{racetest.RandomBlob(rng, 48<<10), racetest.RandomBlob(rng, 24<<10), racetest.RandomBlob(rng, 12<<10)}
	var layers, configs []racetest.Blob
	for i := 0; i < 10; i++ {
		layers = append(layers, racetest.RandomBlob(rng, 2<<10+rng.Intn(6<<10)))
	}
	for i := 0; i < 6; i++ {
		configs = append(configs, racetest.RandomConfig(rng))
	}
	var images []*racetest.Manifest
	for i := 0; i < 16; i++ {
		ls := []racetest.Blob{bases[i%3]}
		if i%4 == 0 {
			ls = append(ls, bases[(i+1)%3])
		}
		ls = append(ls, layers[i%len(layers)])
		images = append(images, racetest.Image(configs[i%len(configs)], ls...))
	}
	var indexes []*racetest.Manifest
	for i := 0; i < 4; i++ {
		indexes = append(indexes, racetest.Index(images[i], images[i+5]))
	}
	allBlobs := append(append(append([]racetest.Blob(nil), bases...), layers...), configs...)
	all := map[digest.Digest]bool{}
	for _, m := range append(append([]*racetest.Manifest(nil), images...), indexes...) {
		all[m.Digest] = true
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
					for _, ch := range ix.Children {
						if s := c.Push(rng, repo, ch.Digest.String(), ch, other, true); s != http.StatusCreated {
							st = s
							break
						}
					}
					if st == http.StatusCreated {
						st = c.PutManifest(repo, tag, ix, true)
					}
				} else {
					st = c.Push(rng, repo, tag, images[rng.Intn(len(images))], other, true)
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
					r := c.Do("tag DELETE", http.MethodDelete, "/v2/"+repo+"/manifests/"+tag, nil, nil)
					c.Expect("DELETE tag "+repo+":"+tag, r, http.StatusAccepted, http.StatusNotFound)
				case k < 7:
					var m *racetest.Manifest
					if rng.Intn(4) == 0 {
						m = indexes[rng.Intn(len(indexes))]
					} else {
						m = images[rng.Intn(len(images))]
					}
					r := c.Do("manifest DELETE", http.MethodDelete, "/v2/"+repo+"/manifests/"+m.Digest.String(), nil, nil)
					c.Expect("DELETE manifest "+repo+"@"+m.Digest.String(), r, http.StatusAccepted, http.StatusNotFound, http.StatusConflict)
				default:
					b := allBlobs[rng.Intn(len(allBlobs))]
					r := c.Do("blob DELETE", http.MethodDelete, "/v2/"+repo+"/blobs/"+b.Digest.String(), nil, nil)
					c.Expect("DELETE blob "+repo+"@"+b.Digest.String(), r, http.StatusAccepted, http.StatusNotFound, http.StatusConflict)
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
					for _, tag := range c.Tags(repo) {
						c.Pull(repo, tag, false)
					}
				case 1:
					c.Pull(repo, tags[rng.Intn(len(tags))], false)
				case 2:
					b := allBlobs[rng.Intn(len(allBlobs))]
					r := c.Do("blob HEAD", http.MethodHead, "/v2/"+repo+"/blobs/"+b.Digest.String(), nil, nil)
					if c.Expect("HEAD blob", r, http.StatusOK, http.StatusNotFound) && r.Status == http.StatusOK {
						c.PullBlob(repo, b.Digest.String(), len(b.Data), false)
					}
				case 3:
					c.Catalog()
				}
			}
		}(w)
	}
	wg.Wait()
	t.Logf("%d pushes, %d acknowledged (%d of them indexes)", pushes, acks, indexAcks)
	t.Logf("%s", e.stats.Report())
	if bad := e.stats.Failures(); len(bad) > 0 {
		t.Fatalf("%d responses were 5xx or failed, first: %s", len(bad), bad[0])
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
		layer := racetest.RandomBlob(rng, 16<<10)
		old := racetest.Image(racetest.RandomConfig(rng), layer)
		newer := racetest.Image(racetest.RandomConfig(rng), layer)
		repo, target := "ra/x", "ra/x"
		how := []racetest.Way{racetest.Monolithic, racetest.Chunked, racetest.HeadFirst, racetest.Mount, racetest.PostPut}[i%5]
		if how == racetest.Mount || i%3 == 0 {
			target = "ra/y"
		}
		if setup.Push(rng, repo, "old", old, "", false) != http.StatusCreated {
			t.Fatalf("iteration %d: setup push failed", i)
		}
		var del racetest.Response
		var put, head int
		racetest.Together(
			func() { del = a.Do("tag DELETE", http.MethodDelete, "/v2/"+repo+"/manifests/old", nil, nil) },
			func() {
				if how == racetest.HeadFirst {
					// As docker does: upload only if HEAD says it is missing.
					head = b.Do("blob HEAD", http.MethodHead, "/v2/"+target+"/blobs/"+layer.Digest.String(), nil, nil).Status
					if head != http.StatusOK && !b.Upload(target, layer, racetest.Monolithic, "") {
						return
					}
				} else if !b.Upload(target, layer, how, repo) {
					return
				}
				if !b.Upload(target, newer.Blobs[0], racetest.Monolithic, "") {
					return
				}
				put = b.PutManifest(target, "new", newer, true)
			},
		)
		what := fmt.Sprintf("iteration %d (%s into %s)", i, how, target)
		if how == racetest.HeadFirst {
			what += fmt.Sprintf(", HEAD of the layer said %d", head)
		}
		if del.Status != http.StatusAccepted {
			t.Fatalf("%s: DELETE of the last reference: %d %s", what, del.Status, del.Body)
		}
		if put != http.StatusCreated {
			t.Fatalf("%s: the push that re-used the layer got %d", what, put)
		}
		e.checkClean(what)
		b.Pull(target, "new", true)
		if r := b.Do("manifest GET", http.MethodGet, "/v2/"+repo+"/manifests/"+old.Digest.String(), nil, nil); r.Status != http.StatusNotFound {
			t.Fatalf("%s: the deleted image answers %d", what, r.Status)
		}
		if e.hasBlobFile(old.Blobs[0]) {
			t.Fatalf("%s: the deleted image's config is still on disk", what)
		}
		if !e.hasBlobFile(layer) {
			t.Fatalf("%s: the layer's file is gone", what)
		}
		// Clean up: nothing is left once the new tag goes.
		r := setup.Do("tag DELETE", http.MethodDelete, "/v2/"+target+"/manifests/new", nil, nil)
		setup.Expect(what+": cleanup", r, http.StatusAccepted)
		e.expectEmpty(what)
	})
	t.Logf("%d iterations; %s", i, e.stats.Report())
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
		layer := racetest.RandomBlob(rng, 16<<10)
		old := racetest.Image(racetest.RandomConfig(rng), layer)
		newer := racetest.Image(racetest.RandomConfig(rng), layer)
		repo := "rh/x"
		if setup.Push(rng, repo, "old", old, "", false) != http.StatusCreated {
			t.Fatalf("iteration %d: setup push failed", i)
		}
		var del, head racetest.Response
		var deleted atomic.Bool
		delay := 0
		racetest.Together(
			func() {
				del = a.Do("tag DELETE", http.MethodDelete, "/v2/"+repo+"/manifests/old", nil, nil)
				deleted.Store(true)
			},
			func() {
				// One HEAD, sent after a number of cheap requests that grows
				// with the iteration, so that over the iterations it lands
				// before, during and after the deletion's commit. (A second
				// HEAD would find the pin of the first.)
				for k := 0; k < i%30 && !deleted.Load(); k++ {
					b.Do("base GET", http.MethodGet, "/v2/", nil, nil)
					delay++
				}
				head = b.Do("blob HEAD", http.MethodHead, "/v2/"+repo+"/blobs/"+layer.Digest.String(), nil, nil)
			},
		)
		what := fmt.Sprintf("iteration %d: HEAD (after %d requests) %d, DELETE of the last reference %d", i, delay, head.Status, del.Status)
		if del.Status != http.StatusAccepted || (head.Status != http.StatusOK && head.Status != http.StatusNotFound) {
			t.Fatalf("%s", what)
		}
		if head.Status == http.StatusNotFound {
			outcomes["HEAD 404"]++
		} else {
			if !b.Upload(repo, newer.Blobs[0], racetest.Monolithic, "") {
				t.Fatalf("%s: config upload failed", what)
			}
			put := b.PutManifest(repo, "new", newer, true)
			outcomes[fmt.Sprintf("HEAD 200, PUT %d", put)]++
			if put != http.StatusCreated {
				broken = append(broken, fmt.Sprintf("%s: told the layer exists, the manifest PUT got %d", what, put))
				// What the client would do next: upload it after all.
				if !b.Upload(repo, layer, racetest.Monolithic, "") || b.PutManifest(repo, "new", newer, false) != http.StatusCreated {
					t.Fatalf("%s: the retry failed", what)
				}
			}
			b.Pull(repo, "new", true)
			r := setup.Do("tag DELETE", http.MethodDelete, "/v2/"+repo+"/manifests/new", nil, nil)
			setup.Expect(what+": cleanup", r, http.StatusAccepted)
		}
		// Each HEAD that said 200 holds the layer for a push in flight:
		// let it go explicitly.
		for _, bl := range []racetest.Blob{layer, newer.Blobs[0]} {
			r := setup.Do("blob DELETE", http.MethodDelete, "/v2/"+repo+"/blobs/"+bl.Digest.String(), nil, nil)
			setup.Expect(what+": cleanup", r, http.StatusAccepted, http.StatusNotFound)
		}
		e.expectEmpty(what)
	})
	t.Logf("%d iterations, outcomes %v; %s", i, outcomes, e.stats.Report())
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
		cfg, layer := racetest.RandomConfig(rng), racetest.RandomBlob(rng, 8<<10)
		m := racetest.Image(cfg, layer)
		repo := "rb/x"
		for _, bl := range m.Blobs {
			if !setup.Upload(repo, bl, racetest.Monolithic, "") {
				t.Fatalf("iteration %d: setup upload failed", i)
			}
		}
		victim := layer // the layer on even iterations, the config on odd ones
		if i%2 == 1 {
			victim = cfg
		}
		var del racetest.Response
		var put racetest.Response
		racetest.Together(
			func() {
				del = a.Do("blob DELETE", http.MethodDelete, "/v2/"+repo+"/blobs/"+victim.Digest.String(), nil, nil)
			},
			func() {
				put = b.Do("manifest PUT", http.MethodPut, "/v2/"+repo+"/manifests/v", http.Header{"Content-Type": {m.MediaType}}, m.Body)
			},
		)
		what := fmt.Sprintf("iteration %d: PUT %d %s, DELETE blob %d %s", i, put.Status, put.Body, del.Status, del.Body)
		switch {
		case put.Status == http.StatusCreated && del.Status == http.StatusConflict:
			wins["manifest PUT"]++
			b.Pull(repo, "v", true)
			r := setup.Do("tag DELETE", http.MethodDelete, "/v2/"+repo+"/manifests/v", nil, nil)
			setup.Expect(what+": cleanup", r, http.StatusAccepted)
		case del.Status == http.StatusAccepted && put.Status == http.StatusBadRequest && put.Code() == "MANIFEST_BLOB_UNKNOWN":
			wins["blob DELETE"]++
			if !strings.Contains(string(put.Body), victim.Digest.String()) {
				t.Fatalf("%s: the error does not name the missing blob", what)
			}
			if r := b.Do("blob GET", http.MethodGet, "/v2/"+repo+"/blobs/"+victim.Digest.String(), nil, nil); r.Status != http.StatusNotFound {
				t.Fatalf("%s: the deleted blob answers %d", what, r.Status)
			}
			if e.hasBlobFile(victim) {
				t.Fatalf("%s: the deleted blob's file is still there", what)
			}
			if r := b.Do("manifest GET", http.MethodGet, "/v2/"+repo+"/manifests/v", nil, nil); r.Status != http.StatusNotFound {
				t.Fatalf("%s: the refused manifest answers %d", what, r.Status)
			}
			other := cfg
			if victim.Digest == cfg.Digest {
				other = layer
			}
			r := setup.Do("blob DELETE", http.MethodDelete, "/v2/"+repo+"/blobs/"+other.Digest.String(), nil, nil)
			setup.Expect(what+": cleanup", r, http.StatusAccepted)
		default:
			t.Fatalf("%s: not one of the two allowed outcomes", what)
		}
		e.expectEmpty(what)
	})
	t.Logf("%d iterations, winners %v; %s", i, wins, e.stats.Report())
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
		child := racetest.Image(racetest.RandomConfig(rng), racetest.RandomBlob(rng, 4<<10))
		ix := racetest.Index(child)
		repo := "rb/ix"
		if setup.Push(rng, repo, child.Digest.String(), child, "", false) != http.StatusCreated {
			t.Fatalf("iteration %d: setup push failed", i)
		}
		var del, put racetest.Response
		racetest.Together(
			func() {
				del = a.Do("manifest DELETE", http.MethodDelete, "/v2/"+repo+"/manifests/"+child.Digest.String(), nil, nil)
			},
			func() {
				put = b.Do("manifest PUT", http.MethodPut, "/v2/"+repo+"/manifests/idx", http.Header{"Content-Type": {ix.MediaType}}, ix.Body)
			},
		)
		what := fmt.Sprintf("iteration %d: index PUT %d %s, child DELETE %d %s", i, put.Status, put.Body, del.Status, del.Body)
		switch {
		case put.Status == http.StatusCreated && del.Status == http.StatusConflict:
			wins["index PUT"]++
			b.Pull(repo, "idx", true)
			r := setup.Do("tag DELETE", http.MethodDelete, "/v2/"+repo+"/manifests/idx", nil, nil)
			setup.Expect(what+": cleanup", r, http.StatusAccepted)
			// The child was pushed by digest: its lease ended when the index
			// took it; the blobs' leases ended when the child did.
		case del.Status == http.StatusAccepted && put.Status == http.StatusBadRequest && put.Code() == "MANIFEST_BLOB_UNKNOWN":
			wins["child DELETE"]++
			if r := b.Do("manifest GET", http.MethodGet, "/v2/"+repo+"/manifests/"+child.Digest.String(), nil, nil); r.Status != http.StatusNotFound {
				t.Fatalf("%s: the deleted child answers %d", what, r.Status)
			}
		default:
			t.Fatalf("%s: not one of the two allowed outcomes", what)
		}
		e.expectEmpty(what)
	})
	t.Logf("%d iterations, winners %v; %s", i, wins, e.stats.Report())
}

// (c) Two uploads of one digest at once, into one repository or two, in
// different ways: both 201, one file with the right bytes, one record
// linked from each repository, fsck clean, and each repository can use it.
func TestRaceTwoUploadsOfOneDigest(t *testing.T) {
	e := newRaceEnv(t)
	setup, a, b := e.client(), e.client(), e.client()
	rng := rand.New(rand.NewSource(10))
	i := e.rounds(raceIterations, func(i int) {
		x := racetest.RandomBlob(rng, 64<<10)
		ra, rb := "rc/x", "rc/x"
		if i%2 == 1 {
			rb = "rc/y"
		}
		howA, howB := []racetest.Way{racetest.Monolithic, racetest.Chunked, racetest.PostPut}[i%3], []racetest.Way{racetest.Monolithic, racetest.Chunked, racetest.PostPut}[(i/3)%3]
		var okA, okB bool
		racetest.Together(
			func() { okA = a.Upload(ra, x, howA, "") },
			func() { okB = b.Upload(rb, x, howB, "") },
		)
		what := fmt.Sprintf("iteration %d (%s into %s, %s into %s)", i, howA, ra, howB, rb)
		if !okA || !okB {
			t.Fatalf("%s: an upload was not acknowledged", what)
		}
		if n := e.blobFileCount(); n != 1 || !e.hasBlobFile(x) {
			t.Fatalf("%s: %d blob files, want the one", what, n)
		}
		err := e.reg.DB().View(func(tx *kv.Tx) error {
			rec, ok, err := tx.Blob(x.Digest.String())
			if err != nil || !ok || rec.Size != int64(len(x.Data)) {
				return fmt.Errorf("blob record %+v, %v, %v", rec, ok, err)
			}
			want := map[string]bool{ra: true, rb: true}
			got, err := tx.LinkingRepos(x.Digest.String())
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
			m := racetest.Image(racetest.RandomConfig(rng), x)
			if !setup.Upload(repo, m.Blobs[0], racetest.Monolithic, "") || setup.PutManifest(repo, fmt.Sprint("v", k), m, false) != http.StatusCreated {
				t.Fatalf("%s: a push using the blob in %s failed", what, repo)
			}
			setup.Pull(repo, fmt.Sprint("v", k), true)
		}
		e.checkClean(what)
		for k, repo := range []string{ra, rb} {
			r := setup.Do("tag DELETE", http.MethodDelete, "/v2/"+repo+"/manifests/"+fmt.Sprint("v", k), nil, nil)
			setup.Expect(what+": cleanup", r, http.StatusAccepted)
		}
		e.expectEmpty(what)
	})
	t.Logf("%d iterations; %s", i, e.stats.Report())
}

// Two pushes of different images under one tag at once, sharing a base
// layer: both 201; the tag ends on one of them, which pulls; the other's
// own layer and config are freed at once; the base stays.
func TestRaceTwoPushesOfOneTag(t *testing.T) {
	e := newRaceEnv(t)
	a, b := e.client(), e.client()
	rng := rand.New(rand.NewSource(11))
	base := racetest.RandomBlob(rng, 32<<10)
	i := e.rounds(raceIterations, func(i int) {
		ma := racetest.Image(racetest.RandomConfig(rng), base, racetest.RandomBlob(rng, 4<<10))
		mb := racetest.Image(racetest.RandomConfig(rng), base, racetest.RandomBlob(rng, 4<<10))
		repo := "rd/x"
		// Upload first, so that the PUTs race each other.
		for _, m := range []*racetest.Manifest{ma, mb} {
			for _, bl := range m.Blobs {
				if !a.Upload(repo, bl, racetest.Monolithic, "") {
					t.Fatalf("iteration %d: upload failed", i)
				}
			}
		}
		var sa, sb int
		racetest.Together(
			func() { sa = a.PutManifest(repo, "v", ma, false) },
			func() { sb = b.PutManifest(repo, "v", mb, false) },
		)
		what := fmt.Sprintf("iteration %d", i)
		if sa != http.StatusCreated || sb != http.StatusCreated {
			t.Fatalf("%s: PUTs %d and %d", what, sa, sb)
		}
		got := digest.FromBytes(a.Pull(repo, "v", true))
		winner, loser := ma, mb
		if got == mb.Digest {
			winner, loser = mb, ma
		} else if got != ma.Digest {
			t.Fatalf("%s: the tag names %s, neither image", what, got)
		}
		e.checkClean(what)
		// The loser was pushed by tag only: overwriting freed it (its blobs'
		// upload leases ended when it was stored).
		if r := a.Do("manifest GET", http.MethodGet, "/v2/"+repo+"/manifests/"+loser.Digest.String(), nil, nil); r.Status != http.StatusNotFound {
			t.Fatalf("%s: the overwritten image answers %d", what, r.Status)
		}
		for _, bl := range loser.Blobs {
			if bl.Digest != base.Digest && e.hasBlobFile(bl) {
				t.Fatalf("%s: the overwritten image's blob %s is still on disk", what, bl.Digest)
			}
		}
		for _, bl := range winner.Blobs {
			if !e.hasBlobFile(bl) {
				t.Fatalf("%s: the winner's blob %s is gone", what, bl.Digest)
			}
		}
	})
	t.Logf("%d iterations; %s", i, e.stats.Report())
}
