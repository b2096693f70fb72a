package api_test

import (
	"net/http"
	"testing"
)

// Pushing an image that is already there under a second tag, the way docker
// does it (HEAD every blob, told "exists", PUT the manifest), and then
// deleting both tags frees the blobs at once. The HEADs pinned the blobs for
// a push in flight; once the manifest PUT has arrived, that push is over.
func TestE2ERetagDockerStyleThenDelete(t *testing.T) {
	r, rng := startSeeded(t, 9)
	img := randomOCIImage(rng, nil, 30<<10, 20<<10)

	if n := r.pushImageLikeDocker("dock", "t1", img); n != len(img.Blobs()) {
		t.Fatalf("first push uploaded %d blobs, want %d", n, len(img.Blobs()))
	}
	if n := r.pushImageLikeDocker("dock", "t2", img); n != 0 {
		t.Fatalf("second push uploaded %d blobs, want 0 (all exist)", n)
	}
	r.pull("dock", "t2", img)
	r.checkInvariants(img.Blobs())

	expectStatus(t, "DELETE t1", r.del("/v2/dock/manifests/t1"), http.StatusAccepted)
	expectStatus(t, "DELETE t2", r.del("/v2/dock/manifests/t2"), http.StatusAccepted)
	r.expectManifestGone("dock", img.Digest)
	r.expectBlobsFreed("dock", img.Blobs())
	r.checkInvariants()
}

// The same when the client uploads the blobs again instead of asking
// (clients that do not HEAD first): the uploads' leases end when the
// manifest PUT arrives, even though that manifest was already stored.
func TestE2ERetagReuploadThenDelete(t *testing.T) {
	r, rng := startSeeded(t, 91)
	img := randomOCIImage(rng, nil, 30<<10, 20<<10)

	r.pushImage("reup", "t1", img)
	r.pushImage("reup", "t2", img) // every blob uploaded again
	r.checkInvariants(img.Blobs())

	expectStatus(t, "DELETE by digest", r.del("/v2/reup/manifests/"+img.Digest), http.StatusAccepted)
	r.expectManifestGone("reup", "t1")
	r.expectManifestGone("reup", "t2")
	r.expectBlobsFreed("reup", img.Blobs())
	r.checkInvariants()
}

// Pulling as containerd does (HEAD by tag, GET by digest, GET blobs), then
// deleting or overwriting the tag, frees the image at once: a pull does not
// hold what it read.
func TestE2EPullThenDeleteOrOverwrite(t *testing.T) {
	r, rng := startSeeded(t, 92)

	pullLikeContainerd := func(repo, tag string, m manifest) {
		t.Helper()
		h := r.head("/v2/"+repo+"/manifests/"+tag, hdr("Accept", allManifestTypes))
		expectStatus(t, "HEAD by tag", h, http.StatusOK)
		if got := h.Header.Get("Docker-Content-Digest"); got != m.Digest {
			t.Fatalf("HEAD by tag: digest %q, want %q", got, m.Digest)
		}
		r.pull(repo, m.Digest, m)
	}

	a := randomOCIImage(rng, nil, 10<<10)
	r.pushImage("pull", "v1", a)
	pullLikeContainerd("pull", "v1", a)
	expectStatus(t, "DELETE tag after a pull", r.del("/v2/pull/manifests/v1"), http.StatusAccepted)
	r.expectManifestGone("pull", a.Digest)
	r.expectBlobFiles()

	b := randomOCIImage(rng, nil, 11<<10)
	c := randomOCIImage(rng, nil, 12<<10)
	r.pushImage("pull", "v2", b)
	pullLikeContainerd("pull", "v2", b)
	r.pushImage("pull", "v2", c)
	r.expectManifestGone("pull", b.Digest)
	r.pull("pull", "v2", c)
	r.checkInvariants(c.Blobs())
}

// The same for a multi-arch image pushed twice in full (blobs, children by
// digest, index under a second tag): deleting the index frees everything.
func TestE2ERetagIndexReuploadThenDelete(t *testing.T) {
	r, rng := startSeeded(t, 93)
	c1 := randomOCIImage(rng, nil, 3<<10)
	c2 := randomOCIImage(rng, nil, 4<<10)
	idx := index(mtOCIIndex, c1, c2)
	for _, tag := range []string{"t1", "t2"} {
		for _, c := range []manifest{c1, c2} {
			r.pushImage("reidx", c.Digest, c)
		}
		r.pushManifest("reidx", tag, idx)
	}
	r.pull("reidx", "t2", idx)
	r.checkInvariants(blobsOf(idx))

	expectStatus(t, "DELETE index by digest", r.del("/v2/reidx/manifests/"+idx.Digest), http.StatusAccepted)
	for _, m := range []manifest{idx, c1, c2} {
		r.expectManifestGone("reidx", m.Digest)
	}
	r.expectBlobFiles()
	r.checkInvariants()
}
