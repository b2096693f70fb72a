package refcount_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/policy"
	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

// pushed is an image the tests pushed: its manifest and the bytes of the
// blobs only it holds.
type pushed struct {
	d     digest.Digest
	bytes int64
}

// ownImage pushes an image of a new config (100 bytes) and a new layer of
// layer bytes under tag.
func (f *fixture) ownImage(repo, tag string, layer int) pushed {
	f.t.Helper()
	d := f.image(repo, tag, f.blob(repo, layer))
	return pushed{d: d, bytes: 100 + int64(layer)}
}

func (f *fixture) tagSet(repo string) map[string]bool {
	f.t.Helper()
	tags, _, err := f.Tags(repo, "", -1)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]bool{}
	for _, t := range tags {
		out[t] = true
	}
	return out
}

func (f *fixture) blobBytes() int64 {
	f.t.Helper()
	c, err := f.Totals(false)
	if err != nil {
		f.t.Fatal(err)
	}
	return c.BlobBytes
}

// Twelve pushes to a repository whose rule keeps 10: after every push at
// most 10 countable tags remain (latest, kept by name, does not count),
// the oldest go, and the push's Reclaimed is exactly their image's bytes.
func TestRetentionKeepLastOnPush(t *testing.T) {
	f := newFixture(t, regtest.Options{Policies: &policy.Set{Retentions: []policy.Retention{
		{Repos: []string{"ci/*"}, KeepLast: 10, KeepTags: []string{"latest"}},
	}}})
	const repo = "ci/app"
	f.ownImage(repo, "latest", 50)
	var imgs []pushed
	for i := 1; i <= 12; i++ {
		f.Clock.Advance(time.Second)
		before := f.blobBytes()
		layer := f.blob(repo, 1000+i)
		body := imageBody([]string{string(f.blob(repo, 100)), string(layer)}, f.size)
		res, err := f.PutManifest(repo, "", []string{fmt.Sprintf("t%02d", i)}, refcount.MediaTypeOCIManifest, body, "")
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, pushed{d: res.Digest, bytes: 100 + int64(1000+i)})
		tags := f.tagSet(repo)
		if !tags["latest"] {
			t.Fatalf("push %d removed latest, which keep-tags keeps", i)
		}
		if n := len(tags) - 1; n > 10 || n != min(i, 10) {
			t.Fatalf("after push %d: %d countable tags, want %d: %v", i, n, min(i, 10), tags)
		}
		var want int64
		if i > 10 {
			gone := fmt.Sprintf("t%02d", i-10)
			if tags[gone] {
				t.Fatalf("after push %d: %s, the least recently pushed, is still there", i, gone)
			}
			want = imgs[i-11].bytes
			if f.exists(imgs[i-11].d) {
				t.Errorf("manifest %s of %s still stored", imgs[i-11].d, gone)
			}
		}
		if res.Reclaimed != want {
			t.Errorf("push %d reclaimed %d, want %d", i, res.Reclaimed, want)
		}
		// What the push uploaded (config and layer) minus what it freed.
		if got := f.blobBytes() - before; got != 100+int64(1000+i)-want {
			t.Errorf("push %d: store grew by %d, want %d", i, got, 100+int64(1000+i)-want)
		}
	}
	// Retention applied already: the plan is empty, the sweep a no-op.
	plan, err := f.RetentionPlan()
	if err != nil || len(plan.Tags) != 0 || plan.ReclaimedBytes != 0 {
		t.Fatalf("plan after the pushes: %+v %v", plan, err)
	}
}

// A rule configured over a repository that has more tags: the plan names
// the tags that would go and the exact bytes; the sweep removes those and
// the store shrinks by exactly that; a second sweep finds nothing.
func TestRetentionPlanMatchesSweep(t *testing.T) {
	f := newFixture(t, regtest.Options{})
	const repo = "ci/app"
	shared := f.blob(repo, 4000) // a layer every image has: never freed
	var imgs []pushed
	for i := 1; i <= 12; i++ {
		f.Clock.Advance(time.Second)
		layer := 1000 + i
		d := f.image(repo, fmt.Sprintf("t%02d", i), shared, f.blob(repo, layer))
		imgs = append(imgs, pushed{d: d, bytes: 100 + int64(layer)})
	}
	// One image under two tags: it goes only with both.
	if _, err := f.PutManifest(repo, "", []string{"t00"}, refcount.MediaTypeOCIManifest, mustManifest(t, f, repo, imgs[11].d), ""); err != nil {
		t.Fatal(err)
	}
	f.SetPolicies(&policy.Set{Retentions: []policy.Retention{{Repos: []string{"ci/*"}, KeepLast: 10}}})
	plan, err := f.RetentionPlan()
	if err != nil {
		t.Fatal(err)
	}
	// t00 is the newest push (the second tag of image 12), so t01..t03 go.
	wantTags := []string{repo + ":t01", repo + ":t02", repo + ":t03"}
	wantBytes := imgs[0].bytes + imgs[1].bytes + imgs[2].bytes
	if !plan.DryRun || !reflect.DeepEqual(plan.Tags, wantTags) || plan.ReclaimedBytes != wantBytes || len(plan.Manifests) != 3 || len(plan.Blobs) != 6 {
		t.Fatalf("plan: %+v; want tags %v, %d bytes, 3 manifests, 6 blobs", plan, wantTags, wantBytes)
	}
	if tags := f.tagSet(repo); len(tags) != 13 {
		t.Fatalf("the plan changed the tags: %v", tags)
	}
	before := f.blobBytes()
	rep, err := f.RetentionSweep(f.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rep.DryRun || !reflect.DeepEqual(rep.Tags, plan.Tags) || rep.ReclaimedBytes != plan.ReclaimedBytes || !reflect.DeepEqual(rep.Blobs, plan.Blobs) || !reflect.DeepEqual(rep.Manifests, plan.Manifests) {
		t.Fatalf("sweep %+v differs from its plan %+v", rep, plan)
	}
	if shrunk := before - f.blobBytes(); shrunk != plan.ReclaimedBytes {
		t.Fatalf("the store shrank by %d, the plan said %d", shrunk, plan.ReclaimedBytes)
	}
	for _, b := range plan.Blobs {
		if f.exists(digest.Digest(b.Digest)) {
			t.Errorf("freed blob %s still stored", b.Digest)
		}
	}
	if !f.exists(shared) {
		t.Error("the shared layer was freed")
	}
	if tags := f.tagSet(repo); len(tags) != 10 || tags["t03"] || !tags["t04"] || !tags["t00"] {
		t.Fatalf("after the sweep: %v", tags)
	}
	again, err := f.RetentionSweep(f.Clock.Now())
	if err != nil || len(again.Tags) != 0 || again.ReclaimedBytes != 0 {
		t.Fatalf("second sweep: %+v %v", again, err)
	}
}

func mustManifest(t *testing.T, f *fixture, repo string, d digest.Digest) []byte {
	t.Helper()
	info, err := f.GetManifest(repo, string(d), true)
	if err != nil {
		t.Fatal(err)
	}
	return info.Content
}

// keep-pulled-within: a pull keeps an image's tags; a tag whose image
// nobody pulled (or pushed) within the window goes at the next sweep.
// Pulls are recorded at most once an hour per manifest.
func TestRetentionPulledWithin(t *testing.T) {
	f := newFixture(t, regtest.Options{Policies: &policy.Set{Retentions: []policy.Retention{
		{Repos: []string{"ci/*"}, KeepPulledWithin: 24 * time.Hour},
		{Repos: []string{"keep/*"}, KeepLast: 1, KeepPulledWithin: 24 * time.Hour},
	}}})
	a := f.ownImage("ci/app", "a", 10)
	b := f.ownImage("ci/app", "b", 20)
	f.ownImage("ci/app", "c", 30)
	f.Clock.Advance(2 * time.Hour)
	for i := 0; i < 3; i++ {
		if err := f.TouchCached("ci/app", b.d, f.Clock.Now()); err != nil {
			t.Fatal(err)
		}
		f.Clock.Advance(time.Minute)
	}
	if n := f.CacheWrites(); n != 1 {
		t.Errorf("3 pulls within an hour wrote %d times, want 1", n)
	}
	// Not a tracked repository: no row.
	other := f.ownImage("other/app", "x", 10)
	if err := f.TouchCached("other/app", other.d, f.Clock.Now()); err != nil || f.CacheWrites() != 1 {
		t.Errorf("a pull of an untracked repository was recorded (%d writes, %v)", f.CacheWrites(), err)
	}
	if rep, err := f.RetentionSweep(f.Clock.Now()); err != nil || len(rep.Tags) != 0 {
		t.Fatalf("sweep within the window: %+v %v", rep, err)
	}
	f.Clock.Advance(23 * time.Hour) // a and c pushed 25h ago, b pulled 23h ago
	plan, err := f.RetentionPlan()
	if err != nil || !reflect.DeepEqual(plan.Tags, []string{"ci/app:a", "ci/app:c"}) || plan.ReclaimedBytes != 110+130 {
		t.Fatalf("plan: %+v %v", plan, err)
	}
	rep, err := f.RetentionSweep(f.Clock.Now())
	if err != nil || !reflect.DeepEqual(rep.Tags, plan.Tags) || rep.ReclaimedBytes != plan.ReclaimedBytes {
		t.Fatalf("sweep %+v %v, plan %+v", rep, err, plan)
	}
	if tags := f.tagSet("ci/app"); len(tags) != 1 || !tags["b"] {
		t.Fatalf("after the sweep: %v", tags)
	}
	if f.exists(a.d) {
		t.Error("a's manifest still stored")
	}
	// keep-last 1 with keep-pulled-within: a pulled image's tag outlives
	// the push that makes it the second newest; the unpulled one does not.
	k1 := f.ownImage("keep/app", "k1", 10)
	if err := f.TouchCached("keep/app", k1.d, f.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	f.Clock.Advance(time.Second)
	f.ownImage("keep/app", "k2", 20)
	if tags := f.tagSet("keep/app"); len(tags) != 2 {
		t.Fatalf("keep/app after k2: %v (k1 was pulled a second ago)", tags)
	}
	f.Clock.Advance(25 * time.Hour)
	f.ownImage("keep/app", "k3", 30)
	if tags := f.tagSet("keep/app"); len(tags) != 1 || !tags["k3"] {
		t.Fatalf("keep/app after k3: %v", tags)
	}
}

// Two replicas sweeping at once over one PostgreSQL database remove each
// tag once: together they remove what the plan said, and free its bytes
// once.
func TestRetentionSweepReplicas(t *testing.T) {
	bs, err := regtest.Backends()
	if err != nil {
		t.Fatal(err)
	}
	var a *fixture
	for _, be := range bs {
		if be.DB == "postgres" {
			a = newFixture(t, regtest.Options{Backend: be, Shared: true, Policies: &policy.Set{Retentions: []policy.Retention{
				{Repos: []string{"ci/*"}, KeepPulledWithin: time.Hour},
			}}})
		}
	}
	if a == nil {
		t.Skipf("replicas share a PostgreSQL database: %s=postgres", regtest.EnvBackends)
	}
	b := a.Replica()
	shared := map[string]digest.Digest{}
	for i := 0; i < 12; i++ {
		repo := fmt.Sprintf("ci/r%d", i%3)
		if shared[repo] == "" {
			shared[repo] = a.blob(repo, 3000)
		}
		a.image(repo, fmt.Sprintf("t%d", i), shared[repo], a.blob(repo, 500+i))
	}
	a.Clock.Advance(2 * time.Hour)
	plan, err := a.RetentionPlan()
	if err != nil || len(plan.Tags) != 12 {
		t.Fatalf("plan: %+v %v", plan, err)
	}
	reps := make(chan *refcount.RetentionReport, 2)
	errs := make(chan error, 2)
	for _, r := range []*refcount.Registry{a.Registry.Registry, b.Registry} {
		go func() {
			rep, err := r.RetentionSweep(a.Clock.Now())
			reps <- rep
			errs <- err
		}()
	}
	seen := map[string]int{}
	var freed int64
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		rep := <-reps
		for _, tag := range rep.Tags {
			seen[tag]++
		}
		freed += rep.ReclaimedBytes
	}
	for _, tag := range plan.Tags {
		if seen[tag] != 1 {
			t.Errorf("%s removed %d times", tag, seen[tag])
		}
	}
	if len(seen) != len(plan.Tags) || freed != plan.ReclaimedBytes {
		t.Fatalf("the sweeps removed %v and freed %d; the plan: %v, %d", seen, freed, plan.Tags, plan.ReclaimedBytes)
	}
}

// A tag pushed again with the content it names is the newest push: the
// push does not remove it, and the next one counts it as recent.
func TestRetentionRepushSameContent(t *testing.T) {
	f := newFixture(t, regtest.Options{Policies: &policy.Set{Retentions: []policy.Retention{
		{Repos: []string{"ci/*"}, KeepLast: 2},
	}}})
	const repo = "ci/app"
	a := f.ownImage(repo, "a", 10)
	f.Clock.Advance(time.Second)
	f.ownImage(repo, "b", 20)
	f.Clock.Advance(time.Second)
	if _, err := f.PutManifest(repo, "", []string{"a"}, refcount.MediaTypeOCIManifest, mustManifest(t, f, repo, a.d), ""); err != nil {
		t.Fatal(err)
	}
	f.Clock.Advance(time.Second)
	f.ownImage(repo, "c", 30)
	if tags := f.tagSet(repo); len(tags) != 2 || !tags["a"] || !tags["c"] {
		t.Fatalf("after a pushed again and c: %v, want a and c (b is the least recently pushed)", tags)
	}
}

// A tag retention removes inside a push is a delete event of its own,
// after the push's, with the bytes it freed.
func TestRetentionDeletesAreEvents(t *testing.T) {
	f := newFixture(t, regtest.Options{
		Policies: &policy.Set{Retentions: []policy.Retention{{Repos: []string{"ci/*"}, KeepLast: 1}}},
		Events:   []refcount.Endpoint{{Name: "all", Actions: []string{refcount.ActionPush, refcount.ActionDelete}}},
	})
	const repo = "ci/app"
	var ds []digest.Digest
	var freed int64
	for i := 1; i <= 2; i++ {
		f.Clock.Advance(time.Second)
		body := imageBody([]string{string(f.blob(repo, 100+i)), string(f.blob(repo, 1000+i))}, f.size)
		res, err := f.PutManifest(repo, "", []string{fmt.Sprintf("t%d", i)}, refcount.MediaTypeOCIManifest, body, "")
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, res.Digest)
		freed = res.Reclaimed
	}
	rep, err := f.Outbox(0)
	if err != nil || len(rep.Endpoints) != 1 {
		t.Fatalf("outbox: %+v %v", rep, err)
	}
	es := rep.Endpoints[0].Entries
	if len(es) != 3 {
		t.Fatalf("%d events, want push t1, push t2, delete t1", len(es))
	}
	del := es[2].Event
	if es[1].Event.Action != refcount.ActionPush || del.Action != refcount.ActionDelete || del.Tag != "t1" ||
		del.Digest != string(ds[0]) || del.Reclaimed != freed || freed != 101+1001 {
		t.Fatalf("events %+v %+v; the push freed %d", es[1].Event, del, freed)
	}
}

// A push that sets more tags than keep-last keeps is refused, with
// nothing changed: a push never leaves more tags than the rule allows, and
// its answer names every tag it sets.
func TestRetentionRefusesAPushOfMoreTagsThanItKeeps(t *testing.T) {
	f := newFixture(t, regtest.Options{Policies: &policy.Set{Retentions: []policy.Retention{{Repos: []string{"ci/*"}, KeepLast: 1, KeepTags: []string{"latest"}}}}})
	const repo = "ci/app"
	f.Clock.Advance(time.Second)
	old := imageBody([]string{string(f.blob(repo, 100)), string(f.blob(repo, 1000))}, f.size)
	if _, err := f.PutManifest(repo, "", []string{"old"}, refcount.MediaTypeOCIManifest, old, ""); err != nil {
		t.Fatal(err)
	}
	f.Clock.Advance(time.Second)
	body := imageBody([]string{string(f.blob(repo, 101)), string(f.blob(repo, 1001))}, f.size)
	if _, err := f.PutManifest(repo, "", []string{"a", "b"}, refcount.MediaTypeOCIManifest, body, ""); !errors.Is(err, refcount.ErrRetention) {
		t.Fatalf("a push of two tags under keep-last 1: %v, want ErrRetention", err)
	}
	if tags := f.tagSet(repo); !tags["old"] || len(tags) != 1 {
		t.Fatalf("after the refused push: tags %v", tags)
	}
	// A tag keep-tags keeps does not count: a and latest go through, old goes.
	res, err := f.PutManifest(repo, "", []string{"a", "latest"}, refcount.MediaTypeOCIManifest, body, "")
	if err != nil {
		t.Fatal(err)
	}
	if tags := f.tagSet(repo); !tags["a"] || !tags["latest"] || tags["old"] || len(tags) != 2 || res.Reclaimed != 1100 {
		t.Fatalf("after a push of a and latest: tags %v, reclaimed %d", tags, res.Reclaimed)
	}
}
