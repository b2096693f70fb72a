package refcount_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/refcount"
	"github.com/kvreg/kvreg/refcount/policy"
	"github.com/kvreg/kvreg/refcount/regtest"
)

var prodImmutable = policy.Immutable{Repos: []string{"prod/*"}, Tags: []string{"v*"}}

// An immutable tag refuses a push of other content, a retag onto it, its
// delete, the delete of its manifest and of its repository, each with
// ErrImmutable naming the tag, the rule and the digest it keeps, and
// nothing changed; the same content again is accepted. Other tags of the
// repository move freely, and retention leaves it alone.
func TestImmutableTags(t *testing.T) {
	f := newFixture(t, regtest.Options{Policies: &policy.Set{
		Immutables: []policy.Immutable{prodImmutable},
		Retentions: []policy.Retention{{Repos: []string{"prod/*"}, KeepLast: 1}},
	}})
	const repo = "prod/app"
	v1 := f.ownImage(repo, "v1", 10)
	body := mustManifest(t, f, repo, v1.d)
	if res, err := f.PutManifest(repo, "", []string{"v1"}, refcount.MediaTypeOCIManifest, body, ""); err != nil || res.Digest != v1.d {
		t.Fatalf("the same content again: %+v %v", res, err)
	}
	other := f.ownImage(repo, "dev", 20)
	totals, err := f.Totals(false)
	if err != nil {
		t.Fatal(err)
	}
	refused := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, refcount.ErrImmutable) {
			t.Fatalf("%s: %v, want ErrImmutable", what, err)
		}
		for _, want := range []string{repo + ":v1", string(v1.d), "prod/*"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %q does not name %s", what, err, want)
			}
		}
	}
	// Other content pushed under v1 (a new image, and a retag of one
	// stored).
	layer := f.blob(repo, 30)
	newBody := imageBody([]string{string(f.blob(repo, 100)), string(layer)}, f.size)
	_, err = f.PutManifest(repo, "", []string{"v1"}, refcount.MediaTypeOCIManifest, newBody, "")
	refused("push of other content", err)
	_, err = f.PutManifest(repo, "", []string{"v1"}, refcount.MediaTypeOCIManifest, mustManifest(t, f, repo, other.d), "")
	refused("retag onto v1", err)
	_, err = f.DeleteTag(repo, "v1")
	refused("tag delete", err)
	_, err = f.DeleteManifest(repo, v1.d)
	refused("manifest delete", err)
	_, err = f.DeleteRepo(repo)
	refused("repository delete", err)
	_, err = f.Remove(repo)
	refused("kvreg rm of the repository", err)
	_, err = f.RemovePlan(repo + ":v1")
	refused("kvreg rm --dry-run of the tag", err)
	if tags := f.tagSet(repo); len(tags) != 2 || !tags["v1"] || !tags["dev"] {
		t.Fatalf("tags after the refusals: %v", tags)
	}
	if info, err := f.GetManifest(repo, "v1", false); err != nil || info.Digest != v1.d {
		t.Fatalf("v1 now %+v %v", info, err)
	}
	after, err := f.Totals(false)
	if err != nil {
		t.Fatal(err)
	}
	// The refused push left its uploads (leased), nothing else.
	after.Blobs, after.BlobBytes, after.Links, after.UnreferencedBlobs, after.UnreferencedBytes, after.Leases = totals.Blobs, totals.BlobBytes, totals.Links, totals.UnreferencedBlobs, totals.UnreferencedBytes, totals.Leases
	if after != totals {
		t.Errorf("the refusals changed the store:\n%+v\nwant\n%+v", after, totals)
	}
	// A tag no rule protects moves and goes; retention (keep-last 1)
	// counts and removes only those.
	f.Clock.Advance(time.Second)
	f.ownImage(repo, "dev", 40)
	f.Clock.Advance(time.Second)
	f.ownImage(repo, "next", 50)
	if tags := f.tagSet(repo); len(tags) != 2 || !tags["v1"] || !tags["next"] {
		t.Fatalf("after retention: %v (v1 is immutable, next the newest)", tags)
	}
	if _, err := f.DeleteTag(repo, "next"); err != nil {
		t.Fatal(err)
	}
	// Another repository is not under the rule.
	f.ownImage("dev/app", "v1", 10)
	f.ownImage("dev/app", "v1", 20)
	if _, err := f.DeleteRepo("dev/app"); err != nil {
		t.Fatal(err)
	}
}

// The cache's eviction skips an image carrying an immutable tag.
func TestImmutableNotEvicted(t *testing.T) {
	f := newFixture(t, regtest.Options{CachePrefixes: []string{"hub"}, Policies: &policy.Set{
		Immutables: []policy.Immutable{{Repos: []string{"hub/*"}, Tags: []string{"pinned"}}},
	}})
	keep := f.ownImage("hub/lib", "pinned", 10)
	gone := f.ownImage("hub/lib", "other", 20)
	rep, err := f.EvictCache(0)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Images != 1 || len(rep.Evicted) != 1 || rep.Evicted[0] != "hub/lib@"+string(gone.d) {
		t.Fatalf("evicted %+v, want only %s", rep, gone.d)
	}
	if info, err := f.GetManifest("hub/lib", "pinned", false); err != nil || info.Digest != keep.d {
		t.Fatalf("pinned: %+v %v", info, err)
	}
}
