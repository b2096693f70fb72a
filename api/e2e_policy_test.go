package api_test

import (
	"math/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/refcount/policy"
)

// Through HTTP, an immutable tag refuses a push of other content, a retag
// onto it, the DELETE of the tag and of its manifest with 403 DENIED and
// a message naming the tag and the digest it keeps; nothing changes, and
// pushing the same content again is a 201.
func TestE2EImmutableTag(t *testing.T) {
	r := startRegistry(t, regOptions{Policies: &policy.Set{Immutables: []policy.Immutable{{Repos: []string{"prod/*"}, Tags: []string{"v*"}}}}})
	rng := rand.New(rand.NewSource(17))
	img := randomOCIImage(rng, nil, 3<<10)
	other := randomOCIImage(rng, nil, 4<<10)
	r.pushImage("prod/app", "v1", img)
	r.pushImage("prod/app", "dev", other)
	r.pushManifest("prod/app", "v1", img) // the same content: 201

	denied := func(what string, resp response) {
		t.Helper()
		expectError(t, what, resp, http.StatusForbidden, "DENIED")
		for _, want := range []string{"prod/app:v1", img.Digest, "immutable"} {
			if !strings.Contains(string(resp.Body), want) {
				t.Errorf("%s: body %s does not name %s", what, resp.Body, want)
			}
		}
	}
	fresh := randomOCIImage(rng, nil, 5<<10)
	for _, b := range fresh.Blobs() {
		r.pushBlob("prod/app", b)
	}
	denied("push of other content", r.putManifest("prod/app", "v1", fresh.MediaType, fresh.Body))
	denied("retag onto v1", r.putManifest("prod/app", "v1", other.MediaType, other.Body))
	denied("DELETE of the tag", r.del("/v2/prod/app/manifests/v1"))
	denied("DELETE of its manifest", r.del("/v2/prod/app/manifests/"+img.Digest))
	r.expectTags("prod/app", "v1", "dev")
	r.pull("prod/app", "v1", img)
	r.pull("prod/app", "dev", other)
}

// Through HTTP, a push to a repository whose rule keeps 2 tags leaves 2,
// the least recently pushed going with its blobs; a GET records the pull
// that keep-pulled-within reads, once.
func TestE2ERetentionKeepLast(t *testing.T) {
	r := startRegistry(t, regOptions{Policies: &policy.Set{Retentions: []policy.Retention{
		{Repos: []string{"ci/*"}, KeepLast: 2, KeepPulledWithin: 24 * time.Hour},
	}}})
	rng := rand.New(rand.NewSource(18))
	var imgs []manifest
	for i, tag := range []string{"a", "b", "c"} {
		img := randomOCIImage(rng, nil, (i+1)<<10)
		imgs = append(imgs, img)
		r.reg.Clock.Advance(time.Minute)
		r.pushImage("ci/app", tag, img)
	}
	r.expectTags("ci/app", "b", "c")
	r.expectManifestGone("ci/app", imgs[0].Digest)
	r.expectBlobsFreed("ci/app", imgs[0].Blobs())
	r.pull("ci/app", "b", imgs[1])
	r.pull("ci/app", "b", imgs[1])
	if n := r.reg.CacheWrites(); n != 1 {
		t.Errorf("two pulls wrote %d pull records, want 1", n)
	}
	// b was pulled within the day: it outlives the push that makes it the
	// third newest. Two days later, without pulls, the next push leaves
	// the two newest alone.
	r.reg.Clock.Advance(2 * time.Hour)
	r.pull("ci/app", "b", imgs[1])
	r.reg.Clock.Advance(23 * time.Hour)
	r.pushImage("ci/app", "d", randomOCIImage(rng, nil, 1<<10))
	r.expectTags("ci/app", "b", "c", "d")
	r.reg.Clock.Advance(48 * time.Hour)
	r.pushImage("ci/app", "e", randomOCIImage(rng, nil, 1<<10))
	r.expectTags("ci/app", "d", "e")
	r.expectBlobsFreed("ci/app", imgs[1].Blobs())
}
