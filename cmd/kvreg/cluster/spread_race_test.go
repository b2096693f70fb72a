package cluster

import (
	"bytes"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvreg/kvreg/api/racetest"
	"github.com/opencontainers/go-digest"
)

// The race of pushes, deletes and overwrites spread over three replicas.
// Clients through haproxy (every request to whichever replica it picks)
// push images that share layers under shared tags, overwrite and delete
// tags, manifests by digest and blobs, and pull; owners push and delete
// tags that only they write, so that what was acknowledged last is known;
// pinned clients talk to the replicas' own addresses so that a HEAD or a
// cross-repository mount on one races the DELETE of the blob's last
// reference on another, and the manifest that uses the blob goes to the
// third. Every client stops after a fixed number of
// operations (and all at a time limit). Afterwards: no answer was a 5xx,
// no HEAD said "exists" for a blob whose last reference was deleted before
// it was sent, every owned tag acknowledged and not deleted pulls
// byte-exact from every replica, every listed tag pulls from every
// replica, fsck of the shared store is clean, and once everything is
// deleted the bucket holds no blob.
func TestClusterRaceSpread(t *testing.T) {
	c := newCluster(t)
	stats := &racetest.Stats{}
	rng := rand.New(rand.NewSource(42))
	bases := []blob{randomBlob(rng, 48<<10), randomBlob(rng, 24<<10), randomBlob(rng, 12<<10)}
	var layers, configs []blob
	for range 8 {
		layers = append(layers, randomBlob(rng, 2<<10+rng.Intn(6<<10)))
	}
	for range 6 {
		configs = append(configs, randomBlob(rng, 100+rng.Intn(200)))
	}
	var images []image
	for i := range 12 {
		ls := []blob{bases[i%3]}
		if i%4 == 0 {
			ls = append(ls, bases[(i+1)%3])
		}
		images = append(images, newImage(configs[i%len(configs)], append(ls, layers[i%len(layers)])...))
	}
	allBlobs := append(append(append([]blob(nil), bases...), layers...), configs...)
	pushed := map[digest.Digest]image{}
	for _, img := range images {
		pushed[img.Digest] = img
	}
	chaos := []string{"race/a", "race/b"}
	const owned = "race/own"
	tags := []string{"t0", "t1", "t2", "t3"}

	// Bounds: operations per client, and a time limit for all of them.
	// Deleters and the reader go on while pushers push, up to their bound.
	// KVREG_CLUSTER_RACE_SCALE multiplies the bounds for a longer run.
	const pushers, owners, deleters, pinned = 3, 2, 2, replicas
	scale := 1
	if v, err := strconv.Atoi(os.Getenv("KVREG_CLUSTER_RACE_SCALE")); err == nil && v > 1 {
		scale = v
	}
	pushOps, ownerOps, deleteOps, readOps, pinnedRounds := 10*scale, 8*scale, 300*scale, 150*scale, 6*scale
	stop := time.Now().Add(time.Duration(90*scale) * time.Second)
	over := func() bool { return time.Now().After(stop) || t.Failed() }
	var pushing atomic.Int32 // pushers and owners still running
	pushing.Store(pushers + owners)
	busy := func() bool { return pushing.Load() > 0 }

	var wg sync.WaitGroup
	var mu sync.Mutex
	var pushes, acks int
	for w := range pushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pushing.Add(-1)
			r := c.racer(c.lb.URL, stats)
			rng := rand.New(rand.NewSource(int64(100 + w)))
			for op := 0; op < pushOps && !over(); op++ {
				ri := rng.Intn(len(chaos))
				st := r.Push(rng, chaos[ri], tags[rng.Intn(len(tags))], pushable(images[rng.Intn(len(images))]), chaos[1-ri], true)
				mu.Lock()
				pushes++
				if st == http.StatusCreated {
					acks++
				}
				mu.Unlock()
			}
		}()
	}

	// Owners: tags o<w>-<k> of race/own are written by owner w alone; the
	// last acknowledged state of each is what must survive.
	ownedState := make([]map[string]*image, owners) // tag -> image, nil: deleted
	for w := range owners {
		ownedState[w] = map[string]*image{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pushing.Add(-1)
			r := c.racer(c.lb.URL, stats)
			rng := rand.New(rand.NewSource(int64(400 + w)))
			for op := 0; op < ownerOps && !over(); op++ {
				tag := fmt.Sprintf("o%d-%d", w, rng.Intn(3))
				if _, ok := ownedState[w][tag]; ok && rng.Intn(3) == 0 {
					rs := r.Do("owned tag DELETE", http.MethodDelete, "/v2/"+owned+"/manifests/"+tag, nil, nil)
					if r.Expect("DELETE owned tag "+tag, rs, http.StatusAccepted, http.StatusNotFound) {
						ownedState[w][tag] = nil
					}
					continue
				}
				img := images[rng.Intn(len(images))]
				if r.Push(rng, owned, tag, pushable(img), chaos[rng.Intn(len(chaos))], false) == http.StatusCreated {
					ownedState[w][tag] = &img
				}
			}
		}()
	}

	for w := range deleters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := c.racer(c.lb.URL, stats)
			rng := rand.New(rand.NewSource(int64(200 + w)))
			for op := 0; op < deleteOps && busy() && !over(); op++ {
				repo := chaos[rng.Intn(len(chaos))]
				switch k := rng.Intn(10); {
				case k < 4:
					tag := tags[rng.Intn(len(tags))]
					r.Expect("DELETE tag "+repo+":"+tag, r.Do("tag DELETE", http.MethodDelete, "/v2/"+repo+"/manifests/"+tag, nil, nil),
						http.StatusAccepted, http.StatusNotFound)
				case k < 7:
					d := images[rng.Intn(len(images))].Digest.String()
					r.Expect("DELETE manifest "+repo+"@"+d, r.Do("manifest DELETE", http.MethodDelete, "/v2/"+repo+"/manifests/"+d, nil, nil),
						http.StatusAccepted, http.StatusNotFound, http.StatusConflict)
				default:
					d := allBlobs[rng.Intn(len(allBlobs))].Digest.String()
					r.Expect("DELETE blob "+repo+"@"+d, r.Do("blob DELETE", http.MethodDelete, "/v2/"+repo+"/blobs/"+d, nil, nil),
						http.StatusAccepted, http.StatusNotFound, http.StatusConflict)
				}
			}
		}()
	}

	wg.Add(1)
	go func() {
		defer wg.Done()
		r := c.racer(c.lb.URL, stats)
		rng := rand.New(rand.NewSource(300))
		for op := 0; op < readOps && busy() && !over(); op++ {
			repo := chaos[rng.Intn(len(chaos))]
			switch rng.Intn(3) {
			case 0:
				for _, tag := range r.Tags(repo) {
					r.Pull(repo, tag, false)
				}
			case 1:
				r.Pull(repo, tags[rng.Intn(len(tags))], false)
			case 2:
				// What HEAD says exists is served (a delete may come
				// between the two: then a 404).
				b := allBlobs[rng.Intn(len(allBlobs))]
				h := r.Do("blob HEAD", http.MethodHead, "/v2/"+repo+"/blobs/"+b.Digest.String(), nil, nil)
				if r.Expect("HEAD blob", h, http.StatusOK, http.StatusNotFound) && h.Status == http.StatusOK {
					g := r.Do("blob GET", http.MethodGet, "/v2/"+repo+"/blobs/"+b.Digest.String(), nil, nil)
					if r.Expect("GET blob after HEAD said exists", g, http.StatusOK, http.StatusNotFound) && g.Status == http.StatusOK && !bytes.Equal(g.Body, b.Data) {
						t.Errorf("GET blob %s via %q: other bytes", b.Digest, g.Replica)
					}
				}
			}
		}
	}()

	// Pinned clients: client k pushes through replica k, deletes the last
	// reference through replica k+1 while a HEAD (or a mount) of the layer
	// goes to replica k+2, and pushes a manifest using the layer through
	// replica k when the answer said it exists (or once the layer is
	// uploaded after a refused mount).
	var lies []string
	outcomes := map[string]int{}
	for k := range pinned {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := c.racer(c.replicas[k].URL, stats)
			b := c.racer(c.replicas[(k+1)%replicas].URL, stats)
			h := c.racer(c.replicas[(k+2)%replicas].URL, stats)
			rng := rand.New(rand.NewSource(int64(500 + k)))
			repo := fmt.Sprintf("race/pin%d", k)
			for i := 0; i < pinnedRounds && !over(); i++ {
				layer := randomBlob(rng, 16<<10)
				old := newImage(randomBlob(rng, 150), layer)
				img := newImage(randomBlob(rng, 151), layer)
				if a.Push(rng, repo, "old", pushable(old), "", false) != http.StatusCreated {
					return
				}
				// Odd rounds ask with a cross-repository mount into another
				// repository instead of a HEAD: a 201 is the same promise.
				mount, target, asked := i%2 == 1, repo, "HEAD"
				if mount {
					target, asked = repo+"m", "mount"
				}
				var del, head racetest.Response
				var delDone, headSent time.Time
				deleted := make(chan struct{})
				racetest.Together(
					func() {
						del = b.Do("pinned tag DELETE", http.MethodDelete, "/v2/"+repo+"/manifests/old", nil, nil)
						delDone = time.Now()
						close(deleted)
					},
					func() {
						// Every third round asks once the DELETE has
						// answered; the others after a number of cheap
						// requests that grows with the round, so that the
						// question lands before and during the deletion.
						if i%3 == 2 {
							<-deleted
						}
						for range i * 2 {
							h.Do("base GET", http.MethodGet, "/v2/", nil, nil)
						}
						headSent = time.Now()
						if mount {
							head = h.Do("pinned blob mount", http.MethodPost, "/v2/"+target+"/blobs/uploads/?mount="+layer.Digest.String()+"&from="+repo, nil, nil)
						} else {
							head = h.Do("pinned blob HEAD", http.MethodHead, "/v2/"+repo+"/blobs/"+layer.Digest.String(), nil, nil)
						}
					},
				)
				what := fmt.Sprintf("%s round %d: %s via replica %d %d, DELETE via replica %d %d", repo, i, asked, (k+2)%replicas, head.Status, (k+1)%replicas, del.Status)
				exists, missing := http.StatusOK, http.StatusNotFound
				if mount {
					exists, missing = http.StatusCreated, http.StatusAccepted
				}
				if !b.Expect(what, del, http.StatusAccepted) || !h.Expect(what, head, exists, missing) {
					return
				}
				mu.Lock()
				if head.Status == exists && headSent.After(delDone) {
					lies = append(lies, what+": asked after the DELETE answered")
				}
				when := "sent before the DELETE answered"
				if headSent.After(delDone) {
					when = "sent after the DELETE answered"
				}
				outcomes[fmt.Sprintf("%s %d %s", asked, head.Status, when)]++
				mu.Unlock()
				if mount && head.Status == missing {
					// A refused mount is an upload session: finish it.
					p := h.Do("blob PUT", http.MethodPut, withDigest(head.Header.Get("Location"), layer.Digest), http.Header{"Content-Type": {"application/octet-stream"}}, layer.Data)
					if !h.Expect(what+": PUT after the refused mount", p, http.StatusCreated) {
						return
					}
				}
				if head.Status == exists || mount {
					// Told "exists": the manifest needs only its config.
					if !a.Upload(target, racetest.Blob(img.Config), racetest.Monolithic, "") {
						return
					}
					if a.PutManifest(target, "new", pushable(img), false) != http.StatusCreated {
						return
					}
					for _, x := range []*racetest.Client{a, b, h} {
						if got := x.Pull(target, "new", true); !bytes.Equal(got, img.Manifest) {
							t.Errorf("%s: the image pushed after the HEAD does not pull byte-exact from %s", what, x.Base)
						}
					}
					a.Expect(what+": cleanup", b.Do("pinned tag DELETE", http.MethodDelete, "/v2/"+target+"/manifests/new", nil, nil), http.StatusAccepted)
				}
				// The HEAD's pin holds the layer for a push in flight: let
				// it go, then nothing of the round is left anywhere.
				for _, r := range []string{repo, target} {
					for _, bl := range []blob{layer, img.Config} {
						h.Expect(what+": cleanup", h.Do("pinned blob DELETE", http.MethodDelete, "/v2/"+r+"/blobs/"+bl.Digest.String(), nil, nil),
							http.StatusAccepted, http.StatusNotFound)
					}
				}
				for _, x := range []*racetest.Client{a, b, h} {
					for _, r := range []string{repo, target} {
						for _, bl := range append(old.blobs(), img.Config) {
							if rs := x.Do("blob HEAD after delete", http.MethodHead, "/v2/"+r+"/blobs/"+bl.Digest.String(), nil, nil); rs.Status != http.StatusNotFound {
								mu.Lock()
								lies = append(lies, fmt.Sprintf("%s: HEAD of %s in %s via %s after its last reference was deleted: %d", what, bl.Digest, r, x.Base, rs.Status))
								mu.Unlock()
							}
						}
					}
				}
				for _, bl := range append(old.blobs(), img.Config) {
					if ok, err := c.blobs.Has(bl.Digest); err != nil || ok {
						t.Errorf("%s: blob %s in the bucket after its last reference was deleted: %v %v", what, bl.Digest, ok, err)
					}
				}
			}
		}()
	}
	wg.Wait()

	t.Logf("%d pushes through haproxy, %d acknowledged; pinned outcomes %v", pushes, acks, outcomes)
	t.Logf("%s", stats.Report())
	for _, l := range lies {
		t.Errorf("lie after delete: %s", l)
	}
	if bad := stats.Failures(); len(bad) > 0 {
		t.Fatalf("%d answers were 5xx or failed, first: %s", len(bad), bad[0])
	}
	if t.Failed() {
		t.FailNow()
	}
	if acks == 0 {
		t.Fatal("no push was acknowledged: the race proved nothing")
	}

	// Every owned tag: acknowledged and not deleted pulls byte-exact from
	// every replica; deleted is gone from every replica.
	var direct []*racetest.Client
	for _, s := range c.replicas {
		direct = append(direct, c.racer(s.URL, stats))
	}
	kept := 0
	for _, st := range ownedState {
		for tag, img := range st {
			for _, r := range direct {
				if img == nil {
					r.Expect("GET of deleted owned tag "+tag, r.Do("manifest GET", http.MethodGet, "/v2/"+owned+"/manifests/"+tag, nil, nil), http.StatusNotFound)
					continue
				}
				if got := r.Pull(owned, tag, true); !bytes.Equal(got, img.Manifest) {
					t.Errorf("owned tag %s via %s: not the image last acknowledged", tag, r.Base)
				}
				for _, b := range img.blobs() {
					g := r.Do("blob GET", http.MethodGet, "/v2/"+owned+"/blobs/"+b.Digest.String(), nil, nil)
					if !bytes.Equal(g.Body, b.Data) {
						t.Errorf("owned tag %s via %s: blob %s: %d, other bytes", tag, r.Base, b.Digest, g.Status)
					}
				}
			}
			if img != nil {
				kept++
			}
		}
	}
	// Every tag listed pulls from every replica and names a pushed image.
	listed := 0
	for _, repo := range chaos {
		for _, tag := range direct[0].Tags(repo) {
			listed++
			for _, r := range direct {
				got := r.Pull(repo, tag, true)
				if _, ok := pushed[digest.FromBytes(got)]; !ok {
					t.Errorf("tag %s:%s via %s names %s, which no client pushed", repo, tag, r.Base, digest.FromBytes(got))
				}
			}
		}
	}
	t.Logf("afterwards: %d owned tags kept, %d shared tags listed, all pull from every replica", kept, listed)
	// A replica that logged an error or a warning hid a failure behind an
	// answer that was not a 5xx.
	for i, s := range c.replicas {
		for _, line := range strings.Split(s.Log(), "\n") {
			if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") {
				t.Errorf("replica %d logged: %s", i, line)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	c.fsckLive("after the race")

	// Delete everything through haproxy: the bucket then holds no blob.
	r := c.racer(c.lb.URL, stats)
	for _, repo := range append(chaos, owned) {
		for _, tag := range r.Tags(repo) {
			r.Expect("cleanup", r.Do("tag DELETE", http.MethodDelete, "/v2/"+repo+"/manifests/"+tag, nil, nil), http.StatusAccepted)
		}
		for _, img := range images {
			r.Expect("cleanup", r.Do("manifest DELETE", http.MethodDelete, "/v2/"+repo+"/manifests/"+img.Digest.String(), nil, nil), http.StatusAccepted, http.StatusNotFound)
		}
		for _, b := range allBlobs {
			r.Expect("cleanup", r.Do("blob DELETE", http.MethodDelete, "/v2/"+repo+"/blobs/"+b.Digest.String(), nil, nil), http.StatusAccepted, http.StatusNotFound)
		}
	}
	if cat := c.catalog(); len(cat) != 0 {
		t.Errorf("catalog after everything was deleted: %v", cat)
	}
	n := 0
	if err := c.blobs.Walk(func(d digest.Digest, _ string, size int64) error {
		n++
		t.Errorf("blob %s (%d bytes) still in the bucket after everything was deleted", d, size)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("after deleting everything: %d blobs, %d bytes in the bucket", n, c.bucketBytes())
	c.fsck()
}

// fsckLive runs kvreg fsck --deep over the shared database and bucket with
// the replicas still serving (and idle), which must be clean.
func (c *cluster) fsckLive(what string) {
	c.t.Helper()
	out, err := exec.Command(c.bin, "fsck", "--deep", "--root", c.t.TempDir(), "--db", c.db, "--blob-store", c.store).CombinedOutput()
	if err != nil {
		c.t.Fatalf("fsck --deep %s: %v\n%s", what, err, out)
	}
}
