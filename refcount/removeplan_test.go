package refcount_test

import (
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/regtest"
	"github.com/opencontainers/go-digest"
)

// forBackends runs fn once per backend the environment chooses.
func forBackends(t *testing.T, fn func(t *testing.T, b regtest.Backend)) {
	bs, err := regtest.Backends()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		t.Run(b.Name, func(t *testing.T) { fn(t, b) })
	}
}

// storeState is what a dry run must leave as it found: the counters and
// per-repository figures, every repository's tags, the stored files and
// the pin rows.
type storeState struct {
	stats refcount.StatsReport
	tags  map[string][]refcount.TagRow
	files map[string]int64
	pins  int
}

func stateOf(t *testing.T, f *fixture) storeState {
	t.Helper()
	st, err := f.Stats(0)
	if err != nil {
		t.Fatal(err)
	}
	st.DBBytes = 0 // the file's size is the database's business
	s := storeState{stats: *st, tags: map[string][]refcount.TagRow{}, files: f.StoredFiles(), pins: pinRows(t, f.Registry.Registry)}
	for _, r := range st.Repositories {
		l, err := f.List(r.Name)
		if err != nil {
			t.Fatal(err)
		}
		s.tags[r.Name] = l.Tags
	}
	return s
}

// planThenRemove dry-runs target, checks that the store is unchanged, then
// removes it for real and checks that the real delete freed exactly what
// the plan said, blob for blob.
func planThenRemove(t *testing.T, f *fixture, target string) *refcount.RemoveReport {
	t.Helper()
	before := stateOf(t, f)
	plan, err := f.RemovePlan(target)
	if err != nil {
		t.Fatalf("plan %s: %v", target, err)
	}
	if !plan.DryRun {
		t.Fatal("a plan that does not say it is one")
	}
	f.MustClean()
	if after := stateOf(t, f); !reflect.DeepEqual(before, after) {
		t.Fatalf("the dry run of %s changed the store:\nbefore %+v\nafter  %+v", target, before, after)
	}
	for _, b := range plan.Blobs {
		if !f.exists(digest.Digest(b.Digest)) {
			t.Fatalf("the dry run removed %s", b.Digest)
		}
	}
	// A second plan says the same: the first left nothing behind.
	again, err := f.RemovePlan(target)
	if err != nil || !reflect.DeepEqual(plan, again) {
		t.Fatalf("second plan %+v (%v), first %+v", again, err, plan)
	}
	rm, err := f.Remove(target)
	if err != nil {
		t.Fatalf("rm %s: %v", target, err)
	}
	if rm.ReclaimedBytes != plan.ReclaimedBytes || !reflect.DeepEqual(rm.Blobs, plan.Blobs) ||
		!reflect.DeepEqual(rm.Manifests, plan.Manifests) || !reflect.DeepEqual(rm.Tags, plan.Tags) {
		t.Fatalf("rm %s:\n%+v\nplanned:\n%+v", target, rm, plan)
	}
	var sum int64
	for _, b := range rm.Blobs {
		sum += b.Size
		if f.exists(digest.Digest(b.Digest)) {
			t.Fatalf("rm kept %s", b.Digest)
		}
	}
	if sum != rm.ReclaimedBytes {
		t.Fatalf("blobs sum to %d, reclaimed %d", sum, rm.ReclaimedBytes)
	}
	freed := before.stats.Totals.BlobBytes - stateOf(t, f).stats.Totals.BlobBytes
	if freed != plan.ReclaimedBytes {
		t.Fatalf("the store's blob bytes went down by %d, the plan said %d", freed, plan.ReclaimedBytes)
	}
	f.MustClean()
	return plan
}

// The dry run of a tag, an image and a repository delete says exactly what
// the delete then frees (shared layers stay out of it), and changes
// nothing.
func TestRemovePlanMatchesTheDelete(t *testing.T) {
	forBackends(t, func(t *testing.T, b regtest.Backend) {
		f := newFixture(t, regtest.Options{Backend: b})
		base := f.blob("app/a", 5000)
		l1, l2, l3 := f.blob("app/a", 1100), f.blob("app/a", 1200), f.blob("app/b", 1300)
		d1 := f.image("app/a", "v1", base, l1)
		f.image("app/a", "v2", base, l2)
		m1, err := f.GetManifest("app/a", string(d1), true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.PutManifest("app/a", "", []string{"latest"}, refcount.MediaTypeOCIManifest, m1.Content, ""); err != nil {
			t.Fatal(err)
		}
		f.image("app/b", "v1", l3)

		// A tag that shares its image with another: nothing goes but the tag.
		p := planThenRemove(t, f, "app/a:latest")
		if p.ReclaimedBytes != 0 || len(p.Blobs) != 0 || len(p.Manifests) != 0 || !reflect.DeepEqual(p.Tags, []string{"app/a:latest"}) {
			t.Fatalf("plan of a shared tag: %+v", p)
		}
		// The image by digest, with its tag: its config and own layer, not
		// the base v2 still uses.
		p = planThenRemove(t, f, "app/a@"+string(d1))
		if want := int64(1100 + 100); p.ReclaimedBytes != want || len(p.Blobs) != 2 ||
			len(p.Manifests) != 1 || p.Manifests[0].Digest != string(d1) || !reflect.DeepEqual(p.Tags, []string{"app/a:v1"}) {
			t.Fatalf("plan of an image: %+v, want %d bytes", p, want)
		}
		for _, bl := range p.Blobs {
			if bl.Digest == string(base) {
				t.Fatal("the plan frees the shared base layer")
			}
		}
		// The last tag of the repository: now the base goes too.
		p = planThenRemove(t, f, "app/a:v2")
		if want := int64(5000 + 1200 + 100); p.ReclaimedBytes != want {
			t.Fatalf("plan of the last image: %d bytes, want %d", p.ReclaimedBytes, want)
		}
		// A whole repository.
		p = planThenRemove(t, f, "app/b")
		if want := int64(1300 + 100); p.ReclaimedBytes != want || len(p.Manifests) != 1 {
			t.Fatalf("plan of a repository: %+v, want %d bytes", p, want)
		}
		// What does not exist: the delete's own error.
		if _, err := f.RemovePlan("app/b:v1"); !errors.Is(err, refcount.ErrNameUnknown) && !errors.Is(err, refcount.ErrManifestUnknown) {
			t.Fatalf("plan of a gone tag: %v", err)
		}
		if _, err := f.RemovePlan("nope"); !errors.Is(err, refcount.ErrNameUnknown) {
			t.Fatalf("plan of an unknown repository: %v", err)
		}
	})
}

// A dry run inside the window of a HEAD's pin reports what the delete
// would free then: not the pinned layer, which the delete turns into a
// lease. The dry run keeps the pin, so the delete that follows does too.
func TestRemovePlanInAPinWindow(t *testing.T) {
	forBackends(t, func(t *testing.T, b regtest.Backend) {
		forPinModes(t, func(t *testing.T, shared bool) {
			f := newFixture(t, regtest.Options{Backend: b, Shared: shared, PinWindow: pinWindow})
			const repo = "pin/plan"
			pinned, own := f.blob(repo, 4000), f.blob(repo, 2500)
			f.image(repo, "a", pinned, own)
			if _, err := f.StatBlob(repo, pinned, true, ""); err != nil {
				t.Fatalf("HEAD: %v", err)
			}
			p := planThenRemove(t, f, repo+":a")
			if want := int64(2500 + 100); p.ReclaimedBytes != want {
				t.Fatalf("plan in the pin window: %d bytes, want %d", p.ReclaimedBytes, want)
			}
			if !f.exists(pinned) {
				t.Fatal("the pinned layer went")
			}
			f.Clock.Advance(pinWindow + 1)
			if _, err := f.Sweep(1000); err != nil {
				t.Fatal(err)
			}
			if f.exists(pinned) {
				t.Fatal("the pinned layer outlived its window")
			}
		})
	})
}

// Dry runs while images are pushed and overwritten leave no trace: every
// push lands, every plan says the same, fsck is clean, and the delete that
// follows frees what the plans said.
func TestRemovePlanDuringPushes(t *testing.T) {
	forBackends(t, func(t *testing.T, b regtest.Backend) {
		f := newFixture(t, regtest.Options{Backend: b})
		layer := f.blob("race/planned", 3000)
		f.image("race/planned", "v1", layer)
		want, err := f.RemovePlan("race/planned:v1")
		if err != nil {
			t.Fatal(err)
		}
		const pushes = 30
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		wg.Add(2)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewSource(2))
			for i := range pushes {
				// The same tag, overwritten: each push frees the last.
				if _, err := pushVia(f.Registry.Registry, rnd, "race/pushed", fmt.Sprint("t", i%3)); err != nil {
					errs <- fmt.Errorf("push %d: %w", i, err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := range pushes {
				p, err := f.RemovePlan("race/planned:v1")
				if err != nil {
					errs <- fmt.Errorf("plan %d: %w", i, err)
					return
				}
				if !reflect.DeepEqual(p, want) {
					errs <- fmt.Errorf("plan %d: %+v, want %+v", i, p, want)
					return
				}
			}
		}()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		f.MustClean()
		l, err := f.List("race/pushed")
		if err != nil || len(l.Tags) != 3 {
			t.Fatalf("pushed tags %+v (%v)", l, err)
		}
		if _, err := f.List("race/planned"); err != nil {
			t.Fatal(err)
		}
		planThenRemove(t, f, "race/planned:v1")
	})
}

// Expired leases the delete's transaction sweeps on its way are not the
// target's: the plan leaves them out, and the delete reports them apart.
func TestRemovePlanLeavesTheSweepOut(t *testing.T) {
	forBackends(t, func(t *testing.T, b regtest.Backend) {
		f := newFixture(t, regtest.Options{Backend: b})
		loose := f.blob("sweep/x", 700) // a lease only, which expires
		f.image("sweep/x", "v1", f.blob("sweep/x", 900))
		f.Clock.Advance(2 * time.Hour)
		plan, err := f.RemovePlan("sweep/x:v1")
		if err != nil {
			t.Fatal(err)
		}
		if plan.ReclaimedBytes != 900+100 || plan.SweptBytes != 0 {
			t.Fatalf("plan %+v", plan)
		}
		if !f.exists(loose) {
			t.Fatal("the dry run swept the expired upload")
		}
		rm, err := f.Remove("sweep/x:v1")
		if err != nil {
			t.Fatal(err)
		}
		if rm.ReclaimedBytes != plan.ReclaimedBytes || !reflect.DeepEqual(rm.Blobs, plan.Blobs) || rm.SweptBytes != 700 {
			t.Fatalf("rm %+v, plan %+v", rm, plan)
		}
		if f.exists(loose) {
			t.Fatal("the delete did not sweep the expired upload")
		}
	})
}
