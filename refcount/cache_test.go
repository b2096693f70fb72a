package refcount_test

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

// cacheFixture is a registry whose repositories under hub/ and quay/ are
// cached ones.
func cacheFixture(t *testing.T) *fixture {
	return newFixture(t, regtest.Options{CachePrefixes: []string{"hub", "quay"}})
}

// cachedImage pushes an image of a new config and the given layers to repo
// under tag ("": by digest) and returns its digest and its config's.
func (f *fixture) cachedImage(repo, tag string, layers ...digest.Digest) (m, config digest.Digest) {
	f.t.Helper()
	config = f.blob(repo, 100)
	bl := []string{string(config)}
	for _, l := range layers {
		bl = append(bl, string(l))
	}
	return f.manifest(repo, tag, refcount.MediaTypeOCIManifest, string(imageBody(bl, f.size))), config
}

// sharedBlob uploads the same bytes to each repository and returns their
// digest.
func (f *fixture) sharedBlob(size int, repos ...string) digest.Digest {
	f.t.Helper()
	b := make([]byte, size)
	f.rnd.Read(b)
	d := digest.FromBytes(b)
	for _, repo := range repos {
		if _, err := f.PutBlob(repo, d, strings.NewReader(string(b)), int64(size), 0); err != nil {
			f.t.Fatal(err)
		}
	}
	return d
}

// indexBody is an OCI index of the given manifests of repo.
func (f *fixture) indexBody(repo string, children ...digest.Digest) string {
	f.t.Helper()
	var parts []string
	for _, ch := range children {
		info, err := f.GetManifest(repo, string(ch), false)
		if err != nil {
			f.t.Fatal(err)
		}
		parts = append(parts, fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d}`, info.MediaType, ch, info.Size))
	}
	return fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[%s]}`, refcount.MediaTypeOCIIndex, strings.Join(parts, ","))
}

// mustPull reads a manifest and each blob given, in full, through repo.
func (f *fixture) mustPull(repo, ref string, blobs ...digest.Digest) {
	f.t.Helper()
	if _, err := f.GetManifest(repo, ref, true); err != nil {
		f.t.Fatalf("pull %s:%s: %v", repo, ref, err)
	}
	for _, d := range blobs {
		rc, _, err := f.OpenBlob(repo, d)
		if err != nil {
			f.t.Fatalf("blob %s of %s: %v", d, repo, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || digest.FromBytes(b) != d {
			f.t.Fatalf("blob %s of %s: %d bytes, %v", d, repo, len(b), err)
		}
	}
}

func (f *fixture) usage() refcount.CacheUsage {
	f.t.Helper()
	u, err := f.CacheUsage()
	if err != nil {
		f.t.Fatal(err)
	}
	return u
}

func (f *fixture) evict(max int64) refcount.EvictReport {
	f.t.Helper()
	rep, err := f.EvictCache(max)
	if err != nil {
		f.t.Fatal(err)
	}
	return rep
}

func (f *fixture) touch(repo string, d digest.Digest) {
	f.t.Helper()
	if err := f.TouchCached(repo, d, f.Clock.Now()); err != nil {
		f.t.Fatal(err)
	}
}

// rows reports whether a manifest's and a tag's cache rows exist.
func (f *fixture) rows(repo string, d digest.Digest, tag string) (cached, checked bool) {
	f.t.Helper()
	err := f.DB().View(func(tx *kv.Tx) error {
		var err error
		if _, cached, err = tx.Cached(repo, string(d)); err != nil {
			return err
		}
		_, checked, err = tx.CachedTag(repo, tag)
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return cached, checked
}

// Two cached images in two cached repositories share a base layer; a
// budget that fits one evicts the least recently pulled, whose own blobs
// go at once, and leaves the other whole.
func TestEvictCacheLeastRecentlyPulled(t *testing.T) {
	f := cacheFixture(t)
	base := f.sharedBlob(1000, "hub/a", "quay/b")
	ownA, ownB := f.blob("hub/a", 2000), f.blob("quay/b", 2000)
	a, cfgA := f.cachedImage("hub/a", "latest", base, ownA)
	b, cfgB := f.cachedImage("quay/b", "latest", base, ownB)
	if err := f.MarkFetched("hub/a", a, f.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := f.MarkFetched("quay/b", b, f.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := f.SetCheckedTag("quay/b", "latest", b, f.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	u := f.usage()
	manBytes := u.Bytes - 1000 - 2*2000 - 2*100
	if u.Images != 2 || u.Manifests != 2 || manBytes <= 0 {
		t.Fatalf("usage %+v", u)
	}
	// b pulled after a, then a again: b is the least recently pulled.
	f.Clock.Advance(2 * time.Minute)
	f.touch("quay/b", b)
	f.Clock.Advance(2 * time.Minute)
	f.touch("hub/a", a)

	budget := u.Bytes - 2000
	rep := f.evict(budget)
	if rep.Images != 1 || !slices.Equal(rep.Evicted, []string{"quay/b@" + string(b)}) {
		t.Fatalf("evicted %+v, want quay/b@%s alone", rep, b)
	}
	if rep.Freed != 2000+100 {
		t.Errorf("freed %d bytes, want the evicted image's own blobs, 2100", rep.Freed)
	}
	after := f.usage()
	if after.Bytes > budget || after.Images != 1 || after.Bytes != 1000+2000+100+manBytes/2 {
		t.Errorf("usage after eviction %+v (budget %d)", after, budget)
	}
	if f.exists(ownB) || f.exists(cfgB) {
		t.Errorf("the evicted image's own blobs are still stored")
	}
	if !f.exists(base) || !f.exists(ownA) || !f.exists(cfgA) {
		t.Errorf("blobs of the surviving image were removed")
	}
	f.mustPull("hub/a", "latest", cfgA, base, ownA)
	if _, err := f.GetManifest("quay/b", "latest", false); !errors.Is(err, refcount.ErrManifestUnknown) && !errors.Is(err, refcount.ErrNameUnknown) {
		t.Errorf("evicted image's tag: %v", err)
	}
	if cached, checked := f.rows("quay/b", b, "latest"); cached || checked {
		t.Errorf("cache rows of the evicted image left: cached %v, tag %v", cached, checked)
	}
	if cached, _ := f.rows("hub/a", a, "latest"); !cached {
		t.Errorf("the survivor lost its cache row")
	}
	// Within the budget: nothing more goes.
	if rep := f.evict(budget); rep.Images != 0 {
		t.Errorf("a second eviction within the budget evicted %v", rep.Evicted)
	}
	f.MustClean()
}

// Recency follows the pulls: pulling the older image again makes the
// other one the first to go.
func TestEvictCacheOrderFollowsTouch(t *testing.T) {
	f := cacheFixture(t)
	var ds []digest.Digest
	for i := range 3 {
		d, _ := f.cachedImage(fmt.Sprintf("hub/r%d", i), "v1", f.blob(fmt.Sprintf("hub/r%d", i), 500))
		f.touch(fmt.Sprintf("hub/r%d", i), d)
		f.Clock.Advance(time.Minute)
		ds = append(ds, d)
	}
	f.touch("hub/r0", ds[0]) // r0 is now the most recent: r1, r2, r0
	f.Clock.Advance(time.Minute)
	// Filled just now, its row not written yet: its push is its pull.
	fresh, _ := f.cachedImage("hub/r3", "v1", f.blob("hub/r3", 500))
	rep := f.evict(0)
	want := []string{"hub/r1@" + string(ds[1]), "hub/r2@" + string(ds[2]), "hub/r0@" + string(ds[0]), "hub/r3@" + string(fresh)}
	if !slices.Equal(rep.Evicted, want) {
		t.Fatalf("eviction order %v, want %v", rep.Evicted, want)
	}
	if u := f.usage(); u != (refcount.CacheUsage{}) {
		t.Errorf("usage after evicting everything: %+v", u)
	}
}

// An index and its two child manifests are one image: evicted together,
// with a recency that its children's pulls raise.
func TestEvictCacheIndexIsOneImage(t *testing.T) {
	f := cacheFixture(t)
	c1, cfg1 := f.cachedImage("hub/multi", "", f.blob("hub/multi", 700))
	c2, cfg2 := f.cachedImage("hub/multi", "", f.blob("hub/multi", 800))
	idx := f.manifest("hub/multi", "latest", refcount.MediaTypeOCIIndex, f.indexBody("hub/multi", c1, c2))
	f.touch("hub/multi", idx)
	f.Clock.Advance(time.Minute)
	other, _ := f.cachedImage("hub/other", "latest", f.blob("hub/other", 300))
	f.touch("hub/other", other)
	f.Clock.Advance(time.Minute)
	f.touch("hub/multi", c1) // a pull of the child: the index is now the most recent
	if u := f.usage(); u.Images != 2 || u.Manifests != 4 {
		t.Fatalf("usage %+v: want 2 images of 4 manifests", u)
	}
	rep := f.evict(f.usage().Bytes - 1)
	if !slices.Equal(rep.Evicted, []string{"hub/other@" + string(other)}) {
		t.Fatalf("evicted %v, want hub/other first (the index's child was pulled since)", rep.Evicted)
	}
	f.mustPull("hub/multi", "latest", cfg1, cfg2)
	rep = f.evict(0)
	if rep.Images != 1 || !slices.Equal(rep.Evicted, []string{"hub/multi@" + string(idx)}) {
		t.Fatalf("evicted %+v, want the index alone", rep)
	}
	for _, d := range []digest.Digest{c1, c2, idx} {
		if _, err := f.GetManifest("hub/multi", string(d), false); err == nil {
			t.Errorf("manifest %s survived its index's eviction", d)
		}
		if cached, _ := f.rows("hub/multi", d, ""); cached {
			t.Errorf("cache row of %s survived", d)
		}
	}
	if f.exists(cfg1) || f.exists(cfg2) {
		t.Errorf("the children's blobs are still stored")
	}
	if u := f.usage(); u != (refcount.CacheUsage{}) {
		t.Errorf("usage %+v after evicting everything", u)
	}
}

// A layer that a pushed image of a local repository also uses survives
// the cached image's eviction, and no longer counts against the budget.
func TestEvictCacheKeepsBlobOfPushedImage(t *testing.T) {
	f := cacheFixture(t)
	layer := f.sharedBlob(4000, "team/app", "hub/app")
	pushed, pcfg := f.cachedImage("team/app", "1.0", layer)
	cached, _ := f.cachedImage("hub/app", "1.0", layer)
	f.touch("hub/app", cached)
	if u := f.usage(); u.Bytes < 4000 {
		t.Fatalf("usage %+v does not count the shared layer", u)
	}
	rep := f.evict(0)
	if rep.Images != 1 || rep.Freed != 100 {
		t.Fatalf("evicted %+v: want one image freeing only its config", rep)
	}
	if !f.exists(layer) {
		t.Fatal("the layer a pushed image uses was removed")
	}
	f.mustPull("team/app", "1.0", pcfg, layer)
	if _, err := f.GetManifest("team/app", string(pushed), false); err != nil {
		t.Fatal(err)
	}
	if u := f.usage(); u != (refcount.CacheUsage{}) {
		t.Errorf("usage %+v: a blob no cached image uses still counts", u)
	}
}

// A cached manifest's and tag's rows go with them: a tag deleted, a tag
// moved by a push (the manifest it left goes too), a manifest deleted.
// Repositories that are not cached get no rows.
func TestCacheRowsGoWithTheirRecords(t *testing.T) {
	f := cacheFixture(t)
	now := f.Clock.Now()
	mark := func(repo, tag string, d digest.Digest) {
		t.Helper()
		if err := f.MarkFetched(repo, d, now); err != nil {
			t.Fatal(err)
		}
		if err := f.SetCheckedTag(repo, tag, d, now); err != nil {
			t.Fatal(err)
		}
		if cached, checked := f.rows(repo, d, tag); !cached || !checked {
			t.Fatalf("rows of %s:%s not written", repo, tag)
		}
	}
	m1, _ := f.cachedImage("hub/r", "t", f.blob("hub/r", 10))
	mark("hub/r", "t", m1)
	if _, err := f.DeleteTag("hub/r", "t"); err != nil {
		t.Fatal(err)
	}
	if cached, checked := f.rows("hub/r", m1, "t"); cached || checked {
		t.Errorf("after DeleteTag: cached row %v, tag row %v", cached, checked)
	}

	m2, _ := f.cachedImage("hub/r", "u", f.blob("hub/r", 10))
	mark("hub/r", "u", m2)
	m3, _ := f.cachedImage("hub/r", "u", f.blob("hub/r", 10))
	if cached, checked := f.rows("hub/r", m2, "u"); cached || checked {
		t.Errorf("after overwriting the tag: cached row of the old manifest %v, tag row %v", cached, checked)
	}
	if checked, _, ok, err := f.CheckedTag("hub/r", "u"); ok || err != nil {
		t.Errorf("moved tag still checked at %v (%v)", checked, err)
	}
	mark("hub/r", "u", m3)
	if checked, up, ok, err := f.CheckedTag("hub/r", "u"); !ok || err != nil || up != m3 || !checked.Equal(now) {
		t.Errorf("CheckedTag: %v %s %v %v", checked, up, ok, err)
	}
	if _, err := f.DeleteManifest("hub/r", m3); err != nil {
		t.Fatal(err)
	}
	if cached, checked := f.rows("hub/r", m3, "u"); cached || checked {
		t.Errorf("after DeleteManifest: cached row %v, tag row %v", cached, checked)
	}

	local, _ := f.cachedImage("team/x", "t", f.blob("team/x", 10))
	if err := f.MarkFetched("team/x", local, now); !errors.Is(err, refcount.ErrNotCached) {
		t.Errorf("MarkFetched of a local repository: %v", err)
	}
	if err := f.SetCheckedTag("team/x", "t", local, now); !errors.Is(err, refcount.ErrNotCached) {
		t.Errorf("SetCheckedTag of a local repository: %v", err)
	}
	f.touch("team/x", local)
	if cached, checked := f.rows("team/x", local, "t"); cached || checked {
		t.Errorf("rows in a local repository: %v %v", cached, checked)
	}
	if err := f.SetCheckedTag("hub/r", "nosuch", m1, now); !errors.Is(err, refcount.ErrManifestUnknown) {
		t.Errorf("SetCheckedTag of a missing tag: %v", err)
	}
}

// Pulls write a manifest's last pull at most once a minute; the others
// only read.
func TestTouchCachedWritesOncePerMinute(t *testing.T) {
	f := cacheFixture(t)
	d, _ := f.cachedImage("hub/t", "latest", f.blob("hub/t", 10))
	updates := func() (uint64, bool) {
		s, ok := f.StoreStats()
		return s.Updates, ok
	}
	f.touch("hub/t", d)
	first := f.Clock.Now()
	w0 := f.CacheWrites()
	u0, counted := updates()
	for range 10 {
		f.Clock.Advance(5 * time.Second)
		f.touch("hub/t", d)
	}
	// A manifest that is not there (evicted meanwhile): nothing to write.
	f.touch("hub/t", digest.FromString("gone"))
	if w := f.CacheWrites(); w != w0 {
		t.Errorf("%d writes for pulls within a minute and of a missing manifest", w-w0)
	}
	if u, _ := updates(); counted && u != u0 {
		t.Errorf("%d write transactions for pulls within a minute", u-u0)
	}
	f.Clock.Advance(15 * time.Second)
	f.touch("hub/t", d)
	if w := f.CacheWrites(); w != w0+1 {
		t.Errorf("%d writes for a pull a minute later, want 1", w-w0)
	}
	if u, _ := updates(); counted && u != u0+1 {
		t.Errorf("%d write transactions for a pull a minute later, want 1", u-u0)
	}
	err := f.DB().View(func(tx *kv.Tx) error {
		row, ok, err := tx.Cached("hub/t", string(d))
		if err == nil && (!ok || row.Pulled != f.Clock.Now().UnixNano() || row.Pulled == first.UnixNano()) {
			t.Errorf("row %+v %v: want pulled at %v", row, ok, f.Clock.Now())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// fsck reports a cache row that names nothing, and repair removes it.
func TestFsckOrphanCacheRows(t *testing.T) {
	f := cacheFixture(t)
	d, _ := f.cachedImage("hub/o", "latest", f.blob("hub/o", 10))
	f.touch("hub/o", d)
	f.update(func(tx *kv.Tx) error {
		if err := tx.PutCached("hub/o", "sha256:"+strings.Repeat("0", 64), kv.Cached{Pulled: 1}); err != nil {
			return err
		}
		return tx.PutCachedTag("hub/o", "gone", kv.CachedTag{Checked: 1, Upstream: string(d)})
	})
	got := kinds(f.Problems())
	want := []string{
		refcount.ProblemOrphanCacheRow + " hub/o:gone",
		refcount.ProblemOrphanCacheRow + " hub/o@sha256:" + strings.Repeat("0", 64),
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("fsck found %v, want %v", got, want)
	}
	if _, err := f.Repair(false, false); err != nil {
		t.Fatal(err)
	}
	f.MustClean()
	if cached, _ := f.rows("hub/o", d, ""); !cached {
		t.Error("repair removed a row that names a manifest")
	}
}

// Stats shows the cache's usage and budget when there are cached
// repositories; ls marks them and shows each tag's last pull.
func TestStatsShowCache(t *testing.T) {
	f := cacheFixture(t)
	d, _ := f.cachedImage("hub/s", "latest", f.blob("hub/s", 1000))
	f.cachedImage("hub/s", "never", f.blob("hub/s", 1000))
	f.cachedImage("team/s", "latest", f.blob("team/s", 1000))
	f.cachedImage("hubs/s", "latest", f.blob("hubs/s", 1000)) // not under hub/
	f.touch("hub/s", d)
	ls, err := f.List("")
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.Repositories) != 3 || !ls.Repositories[0].Cached || ls.Repositories[1].Cached || ls.Repositories[2].Cached {
		t.Errorf("ls: %+v", ls.Repositories)
	}
	ls, err = f.List("hub/s")
	if err != nil {
		t.Fatal(err)
	}
	if !ls.Cached || len(ls.Tags) != 2 || !ls.Tags[0].Pulled.Equal(f.Clock.Now()) || !ls.Tags[1].Pulled.IsZero() {
		t.Errorf("ls hub/s: %+v", ls)
	}
	rep, err := f.Stats(0)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Cache == nil || rep.Cache.Images != 2 || rep.Cache.Manifests != 2 || rep.Cache.Bytes != f.usage().Bytes || rep.Cache.Bytes < 2200 {
		t.Fatalf("stats cache %+v", rep.Cache)
	}
}

// Evictions started at once (after two fills) delete for the excess once.
func TestEvictCacheConcurrentCallsEvictOnce(t *testing.T) {
	f := cacheFixture(t)
	for i := range 4 {
		repo := fmt.Sprintf("hub/c%d", i)
		d, _ := f.cachedImage(repo, "latest", f.blob(repo, 1000))
		f.touch(repo, d)
		f.Clock.Advance(time.Minute)
	}
	budget := f.usage().Bytes - 1
	reps := make(chan refcount.EvictReport, 2)
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			rep, err := f.EvictCache(budget)
			reps <- rep
			errs <- err
		}()
	}
	total := 0
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		total += (<-reps).Images
	}
	if total != 1 {
		t.Fatalf("%d images evicted for an excess of one byte", total)
	}
	if u := f.usage(); u.Images != 3 || u.Bytes > budget {
		t.Errorf("usage %+v, budget %d", u, budget)
	}
}
