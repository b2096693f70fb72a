package api_test

import (
	"net/http"
	"testing"
)

// A multi-arch image: two children pushed by digest, an OCI index pushed by
// tag. Deleting the index's tag frees the index, both children and the
// layers only they use, but not a layer another image of the repository uses.
func TestE2EMultiArch(t *testing.T) {
	r, rng := startSeeded(t, 5)

	shared := randomLayer(rng, mtOCILayer, 48<<10)
	child1 := randomOCIImage(rng, []blob{shared}, 30<<10)
	child2 := randomOCIImage(rng, nil, 31<<10, 7<<10)
	other := randomOCIImage(rng, []blob{shared}, 9<<10)
	idx := index(mtOCIIndex, child1, child2)

	// Children by digest, then the index by tag.
	for _, c := range []manifest{child1, child2} {
		resp := r.pushImage("multi", c.Digest, c)
		if loc := resp.Header.Get("Location"); loc != "/v2/multi/manifests/"+c.Digest && loc != r.url("/v2/multi/manifests/"+c.Digest) {
			t.Errorf("PUT child by digest: Location %q", loc)
		}
	}
	r.pushManifest("multi", "v1", idx)
	r.pushImage("multi", "other", other)

	r.pull("multi", "v1", idx)
	r.pull("multi", idx.Digest, idx)
	r.pull("multi", "other", other)
	r.checkInvariants(blobsOf(idx, other))

	// A child that an index lists cannot be deleted from under it.
	resp := r.del("/v2/multi/manifests/" + child1.Digest)
	if resp.Status < 400 || resp.Status >= 500 {
		t.Fatalf("DELETE of a child an index lists: %s, want a 4xx refusal", resp)
	}
	r.pull("multi", "v1", idx)

	expectStatus(t, "DELETE index tag", r.del("/v2/multi/manifests/v1"), http.StatusAccepted)

	for _, m := range []manifest{idx, child1, child2} {
		r.expectManifestGone("multi", m.Digest)
	}
	gone := []blob{*child1.Config, child1.Layers[1], *child2.Config, child2.Layers[0], child2.Layers[1]}
	files := r.blobFiles()
	for _, b := range gone {
		if _, ok := files[b.Digest]; ok {
			t.Errorf("file of %s, used only by the deleted index's children, is still on disk", b.Digest)
		}
		r.expectBlobGone("multi", b)
	}
	if _, ok := files[shared.Digest]; !ok {
		t.Fatalf("the layer shared with another image was deleted")
	}
	r.pull("multi", "other", other)
	r.expectTags("multi", "other")
	r.checkInvariants(other.Blobs())
}

// The same with a Docker manifest list of schema2 children.
func TestE2EMultiArchDockerList(t *testing.T) {
	r, rng := startSeeded(t, 51)
	c1 := randomDockerImage(rng, 11<<10)
	c2 := randomDockerImage(rng, 12<<10)
	list := index(mtDockerList, c1, c2)
	for _, c := range []manifest{c1, c2} {
		r.pushImage("dl", c.Digest, c)
	}
	r.pushManifest("dl", "v1", list)
	r.pull("dl", "v1", list)
	r.checkInvariants(blobsOf(list))

	expectStatus(t, "DELETE list by digest", r.del("/v2/dl/manifests/"+list.Digest), http.StatusAccepted)
	for _, m := range []manifest{list, c1, c2} {
		r.expectManifestGone("dl", m.Digest)
	}
	r.expectBlobFiles()
	r.checkInvariants()
}

// Overwriting an index with another that shares one child frees the old
// index and the child only it listed; a nested index is freed through its
// parent.
func TestE2EIndexOverwriteSharedChild(t *testing.T) {
	r, rng := startSeeded(t, 52)
	c1 := randomOCIImage(rng, nil, 4<<10)
	c2 := randomOCIImage(rng, nil, 5<<10)
	c3 := randomOCIImage(rng, nil, 6<<10)
	for _, c := range []manifest{c1, c2, c3} {
		r.pushImage("ix", c.Digest, c)
	}
	old := index(mtOCIIndex, c1, c2)
	r.pushManifest("ix", "v", old)
	inner := index(mtOCIIndex, c3)
	r.pushManifest("ix", inner.Digest, inner)
	outer := index(mtOCIIndex, c2, inner)
	r.pushManifest("ix", "v", outer)

	r.expectManifestGone("ix", old.Digest)
	r.expectManifestGone("ix", c1.Digest)
	for _, b := range c1.Blobs() {
		r.expectBlobGone("ix", b)
	}
	r.pull("ix", "v", outer)
	r.checkInvariants(blobsOf(outer))

	expectStatus(t, "DELETE v", r.del("/v2/ix/manifests/v"), http.StatusAccepted)
	for _, m := range []manifest{outer, inner, c2, c3} {
		r.expectManifestGone("ix", m.Digest)
	}
	r.expectBlobFiles()
	r.checkInvariants()
}
